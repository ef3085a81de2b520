"""``FrameConnection``: one QUIC connection's single stream as a stream of YoMo frames.

Backpressure, both ways, with bounded memory (the decisions are ``_buffer``'s):

* sending: ``write_frame`` queues bytes on the QUIC stream and waits while more
  than ``send_high_water`` bytes are unsent (the peer's flow control or the
  congestion window is holding them back);
* receiving: decoded frames wait in a ``FrameBuffer``; above ``recv_high_water``
  bytes the protocol stops processing datagrams (``_protocol.py`` holds a
  bounded number and lets QUIC retransmit the rest), so the peer gets no
  acknowledgements and its congestion control stops it. Reading resumes below
  the low-water mark.

The protocol (``_protocol.py``, ``_aiopquic.py``) drives a connection through
its ``on_*`` methods; the connection drives the protocol through
``pause_reading``, ``resume_reading``, ``transmit`` and ``ping``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from yomo.errors import ConnectionClosedError, ProtocolError, RemoteProtocolError, TimeoutError
from yomo.wire import Frame

from . import _compat as compat
from ._buffer import FrameBuffer, SendGate
from ._common import describe_code, in_background, retrieve
from ._errors import ignore_quic_errors, map_quic_errors, raise_mapped
from ._state import ConnectionState
from .settings import CLOSE_CODE, QuicSettings

__all__ = ["FrameConnection"]

log = logging.getLogger("yomo.transport")


class FrameConnection(ConnectionState):
    """A QUIC connection carrying YoMo frames on its one bidirectional stream.

    Read with ``read_frame``; write with ``write_frame`` (waits for room) or
    ``send_nowait`` + ``drain``. ``close(reason)`` closes with code 0x13.
    """

    def __init__(self, protocol: Any, settings: QuicSettings, *, is_client: bool) -> None:
        super().__init__()
        self._protocol = protocol
        self._quic = compat.quic_of(protocol)
        self._loop = asyncio.get_running_loop()
        self.settings = settings
        self._is_client = is_client
        self._stream_id: int | None = None
        self._buffer = FrameBuffer(
            max_frame_size=settings.max_frame_size, high_water=settings.recv_high_water
        )
        self._gate = SendGate(settings.send_high_water)
        self.bytes_received = 0
        self.bytes_sent = 0
        """Bytes queued on the stream so far: the stream offset after the last write."""
        self.datagrams_dropped = 0
        self.keepalive: asyncio.TimerHandle | None = None
        """The next keep-alive check (started by ``listen``/``dial``), cancelled on close."""
        self._keep_alive_every = 0.0
        self.exit_stack: contextlib.AsyncExitStack | None = None
        """What ``aclose`` releases: a dialled connection's library context."""

    # -- information -------------------------------------------------------

    @property
    def remote_address(self) -> tuple[str, int]:
        """The peer's ``(host, port)``."""
        addr = compat.remote_address(self._quic)
        if not addr:
            return ("", 0)
        host = str(addr[0])
        if host.startswith("::ffff:"):
            host = host[7:]
        return (host, int(addr[1]))

    @property
    def send_backlog(self) -> int:
        """Bytes queued on the stream that are not on the wire yet."""
        if self._stream_id is None:
            return 0
        return compat.unsent_stream_bytes(self._quic, self._stream_id)

    @property
    def recv_backlog(self) -> int:
        """Bytes of received frames waiting for ``read_frame``."""
        return self._buffer.size

    # -- reading -----------------------------------------------------------

    def on_stream_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        """The protocol's input: bytes (and perhaps the end) of a stream arrived."""
        if self._stream_id is None:
            self._stream_id = stream_id
        elif stream_id != self._stream_id:
            return  # YoMo uses one stream; others are ignored (Go takes the first)
        if data:
            self.bytes_received += len(data)
            try:
                completed = self._buffer.feed(data)
            except ProtocolError as exc:
                self._error = exc
                self.abort(exc.message)
                return
            if completed:
                self._readable.set()
                if self._buffer.over_high_water:
                    self._protocol.pause_reading()
        if end_stream and not self._closed.is_set():
            # YoMo has no half-close: a peer that ends its stream is done. Close the
            # whole connection, so a client that sends FIN and then only PINGs does
            # not keep it (and its memory) forever; the reader sees why.
            pending = self._buffer.partial
            if pending:
                self._error = RemoteProtocolError(
                    f"the peer ended its stream inside a frame ({pending} bytes of it received)"
                )
                self.close(self._error.message)
            else:
                self.close("stream closed by peer")
            self.closed_by_peer = True

    async def read_frame(self) -> Frame:
        """The next frame from the peer.

        Raises:
            ConnectionClosedError: the connection closed (``remote`` tells who closed it).
            RemoteProtocolError: the peer sent bytes that are not a frame (the
                connection is then closed with that reason).
        """
        buffer = self._buffer
        frame = buffer.pop()
        while frame is None:
            await self._wait_readable()
            frame = buffer.pop()
        if buffer.size <= buffer.low_water:  # buffer.may_resume, inline: once per frame
            self._protocol.resume_reading()
        return frame

    # -- writing -----------------------------------------------------------

    def send_nowait(self, data: Frame | bytes) -> None:
        """Queue a frame (or its encoded bytes) on the stream without waiting.

        Raises:
            ConnectionClosedError: the connection is closed.
        """
        if self._closed.is_set():
            raise self._closed_error()
        payload = data if isinstance(data, (bytes, bytearray, memoryview)) else data.encode()
        if self._stream_id is None:
            if not self._is_client:
                raise ConnectionClosedError("the peer has not opened a stream yet")
            self._stream_id = self._quic.get_next_available_stream_id()
        self._send(self._stream_id, payload)

    def _send(self, stream_id: int, payload: bytes | bytearray | memoryview) -> None:
        """Hand ``payload`` to the QUIC library (each backend's own way)."""
        try:
            self._quic.send_stream_data(stream_id, payload)
        except Exception as exc:  # the error boundary, inline on the per-frame path
            raise_mapped(self._lost, exc)
        self.bytes_sent += len(payload)
        compat.transmit_soon(self._protocol)
        if self._drained.is_set() and self._gate.blocks(self.send_backlog):
            self._drained.clear()

    def _lost(self, detail: str) -> ConnectionClosedError:
        """The library refused a write: its connection ended before its event reached us."""
        close = compat.close_event(self._quic)
        if close is not None:
            reason, code = close
            self.on_terminated(reason or describe_code(code), remote=True)
        else:
            self.on_terminated(f"connection closed: {detail}", remote=False)
        return self._closed_error()

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until the unsent backlog is below the high-water mark.

        Raises:
            ConnectionClosedError: the connection closed while waiting.
            TimeoutError: ``timeout`` seconds passed first.
        """
        while not self._drained.is_set():
            if self._closed.is_set():
                raise self._closed_error()
            waiter = asyncio.ensure_future(self._drained.wait())
            closer = asyncio.ensure_future(self._closed.wait())
            try:
                done, _ = await asyncio.wait(
                    {waiter, closer}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waiter.cancel()
                closer.cancel()
            if not done:
                raise TimeoutError(f"peer did not read for {timeout:g} s")
        if self._closed.is_set():
            raise self._closed_error()

    async def write_frame(self, data: Frame | bytes, timeout: float | None = None) -> None:
        """Send a frame, waiting while the peer is not reading (bounded by ``timeout``)."""
        self.send_nowait(data)
        await self.drain(timeout)

    def check_drained(self) -> None:
        """Release waiting writers once the backlog fell to the low-water mark."""
        if not self._drained.is_set() and (
            self._stream_id is None or self._gate.releases(self.send_backlog)
        ):
            self._drained.set()

    async def drain_all(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until everything written has been sent and acknowledged.

        A ping coming back is not enough: with loss, earlier packets may still
        wait for retransmission, and closing the connection would drop them.
        """
        loop = self._loop
        deadline = loop.time() + timeout
        while self.send_backlog > 0 and not self._closed.is_set():
            if loop.time() >= deadline:
                raise TimeoutError(f"{self.send_backlog} bytes still unsent after {timeout:g} s")
            await asyncio.sleep(0.005)
        stream_id = self._stream_id
        while stream_id is not None and not self._closed.is_set():
            unacked = self._in_flight(stream_id)
            if unacked <= 0:
                break
            if loop.time() >= deadline:
                raise TimeoutError(f"{unacked} bytes still unacknowledged after {timeout:g} s")
            await asyncio.sleep(0.005)
        if not self._closed.is_set():
            await self._ping(max(deadline - loop.time(), 0.05))

    def _in_flight(self, stream_id: int) -> int:
        """Bytes sent but not acknowledged yet (qh3: all packets in flight)."""
        in_flight = compat.bytes_in_flight(self._quic)
        if in_flight is not None:
            return in_flight
        return compat.unacked_stream_bytes(self._quic, stream_id)

    async def _ping(self, timeout: float) -> None:
        """Ping the peer and wait (bounded) for the answer; never leaves an error unretrieved.

        The library's ping waiter outlives a timed-out wait and gets a ConnectionError
        when the connection dies later (a dead mesh peer at shutdown): retrieve it.
        """
        protocol = self._protocol
        try:
            with map_quic_errors(_Gone):
                await asyncio.wait_for(protocol.ping(), timeout)
        except _Gone:
            pass  # no answer in time, or the connection died: drain_all is best effort
        finally:
            compat.retrieve_ping_waiters(protocol, retrieve)

    def unacknowledged(self) -> int:
        """Bytes written that the peer's transport has not acknowledged yet (at most).

        aioquic: exact, from the stream. qh3 keeps its stream state native and tells
        only unsent bytes and the connection's bytes in flight, so this adds the two
        (packet overhead included: a little more than the stream's share).

        Raises:
            ConnectionClosedError: the library's connection is gone.
        """
        if self._stream_id is None:
            return 0
        with map_quic_errors(ConnectionClosedError):
            in_flight = compat.bytes_in_flight(self._quic)
            if in_flight is not None:
                return compat.unsent_stream_bytes(self._quic, self._stream_id) + in_flight
            return compat.unacked_stream_bytes(self._quic, self._stream_id)

    def ping_nowait(self) -> None:
        """Send a PING now (its acknowledgement shows the peer is alive); never raises."""
        with ignore_quic_errors():
            self._quic.send_ping(0)
            self._protocol.transmit()

    def heard_now(self) -> None:
        """Count the peer as heard now (after our own loop stalled, silence proves nothing)."""
        self._protocol.last_rx = self._loop.time()

    def silent_for(self) -> float:
        """Seconds since the last datagram arrived from the peer."""
        return float(self._loop.time() - self._protocol.last_rx)

    # -- closing -----------------------------------------------------------

    def close(self, reason: str = "", code: int = CLOSE_CODE) -> None:
        """Close the connection with YoMo's error code and ``reason`` (idempotent)."""
        if self._closed.is_set():
            return
        self.close_reason = reason or "closed"
        with ignore_quic_errors():
            self._quic.close(error_code=code, reason_phrase=reason)
            self._protocol.transmit()
        self.on_terminated(reason or "closed", remote=False)

    def abort(self, reason: str) -> None:
        """Close because something went wrong here (a bad frame, a stuck reader)."""
        log.debug("closing connection to %s: %s", self.remote_address, reason)
        self.close(reason)

    def on_terminated(self, reason: str, *, remote: bool) -> None:
        """The protocol's input: the QUIC connection ended (``remote``: the peer ended it)."""
        if self._closed.is_set():
            return
        if self.close_reason is None:
            self.close_reason = reason
            self.closed_by_peer = remote
        self._closed.set()
        self._readable.set()
        self._drained.set()
        if self.keepalive is not None:
            self.keepalive.cancel()

    async def aclose(self, reason: str = "") -> None:
        """Close and release the socket of a dialled connection."""
        self.close(reason)
        stack, self.exit_stack = self.exit_stack, None
        if stack is not None:
            # Our CONNECTION_CLOSE is sent: skip the library's draining wait (seconds
            # without RTT samples), so the socket goes at once and a program that ends
            # right after close() leaves no pending task ("Task was destroyed").
            compat.mark_closed(self._protocol)
            # The library's draining period and socket release finish in the
            # background (bounded) instead of holding up every client close.
            in_background(stack.aclose(), 3.0)

    def start_keep_alive(self, interval: float) -> None:
        """PING the peer whenever nothing came from it for ``interval`` s, until closed.

        As quic-go does: a peer that sends (data, ACKs, its own PINGs) needs no
        PING. One timer per connection, not a task: a zipper holding 10,000 idle
        connections runs 5,000 of these a second (2 s keep-alive).
        """
        if interval > 0:
            self._keep_alive_every = interval
            self.keepalive = self._loop.call_later(interval, self._keep_alive)

    def _keep_alive(self) -> None:
        if self._closed.is_set():
            return
        every = self._keep_alive_every
        heard = getattr(self._protocol, "last_rx", None)
        if isinstance(heard, float) and heard + every > self._loop.time():
            self.keepalive = self._loop.call_at(heard + every, self._keep_alive)
            return
        try:
            with map_quic_errors(_Gone):
                self._quic.send_ping(0)
                self._protocol.transmit()
        except _Gone:
            return
        self.keepalive = self._loop.call_later(every, self._keep_alive)


class _Gone(ConnectionClosedError):
    """A best-effort call (ping, close) found the library's connection gone; never escapes."""
