"""One QUIC connection's single bidirectional stream as a stream of YoMo frames.

The only module that imports the QUIC library. Two backends share one API
(qh3 is a fork of aioquic): ``qh3`` (default, about 3.5x faster) and
``aioquic`` (the only one that can ask a client for its certificate, so the
zipper uses it for mutual TLS). ``YOMO_QUIC_BACKEND`` picks one explicitly.

Backpressure, both ways, with bounded memory:

* sending: ``write_frame`` queues bytes on the QUIC stream and waits while more
  than ``send_high_water`` bytes are unsent (the peer's flow control or the
  congestion window is holding them back);
* receiving: decoded frames wait in a queue; when it holds more than
  ``recv_high_water`` bytes the connection stops processing datagrams (it
  holds a bounded number and lets QUIC retransmit the rest), so the peer gets
  no acknowledgements and its congestion control stops it. Reading resumes
  below the low-water mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from yomo.errors import (
    ConnectError,
    ConnectionClosedError,
    ProtocolError,
    RemoteProtocolError,
    TimeoutError,
    TransportError,
)
from yomo.wire import Frame, FrameDecoder

from ._cids import index_connection_ids
from .qlog import qlog_enabled, qlog_logger
from .settings import (
    ALPN,
    BACKEND_ENV,
    CLOSE_CODE,
    DEFAULT_CLIENT_SETTINGS,
    DEFAULT_ZIPPER_SETTINGS,
    QuicSettings,
    choose_backend,
)
from .tls import TlsConfig, generate_self_signed

__all__ = [
    "ALPN",
    "CLOSE_CODE",
    "DEFAULT_CLIENT_SETTINGS",
    "DEFAULT_ZIPPER_SETTINGS",
    "FrameConnection",
    "Listener",
    "QuicSettings",
    "backend_info",
    "dial",
    "listen",
]

log = logging.getLogger("yomo.transport")

# qh3 logs every normal close by the peer as a WARNING ("Native peer close");
# the transport reports closes itself, so keep the library to errors unless
# the application configured its logger.
_quic_log = logging.getLogger("quic")
if _quic_log.level == logging.NOTSET:
    _quic_log.setLevel(logging.ERROR)

_BACKENDS = ("qh3", "aioquic", "aiopquic")
#: Datagrams of a received batch fed to QUIC at once; a pause takes effect between slices.
_BATCH_SLICE = 8
#: Seconds between the PINGs a paused reader sends to show it is alive.
_PAUSED_PING = 0.2


@dataclass
class _Backend:
    name: str
    version: str
    serve: Any
    connect: Any
    base_protocol: type[Any]
    configuration: Any
    events: Any
    protocol_class: type[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.protocol_class = _make_protocol_class(self)


_loaded: dict[str, _Backend] = {}


def _backend(name: str | None) -> _Backend:
    name = name or os.environ.get(BACKEND_ENV) or "qh3"
    if name == "native":  # the caller checks wants_native() first; this is the fallback
        name = "qh3"
    if name not in _BACKENDS:
        raise TransportError(f"unknown QUIC backend {name!r} (choose from {', '.join(_BACKENDS)})")
    cached = _loaded.get(name)
    if cached is not None:
        return cached
    try:
        lib = importlib.import_module(name)
        aio = importlib.import_module(f"{name}.asyncio")
        config = importlib.import_module(f"{name}.quic.configuration")
        events = importlib.import_module(f"{name}.quic.events")
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise TransportError(f"QUIC backend {name!r} is not installed: {exc}") from exc
    backend = _Backend(
        name=name,
        version=getattr(lib, "__version__", "?"),
        serve=aio.serve,
        connect=aio.connect,
        base_protocol=aio.QuicConnectionProtocol,
        configuration=config.QuicConfiguration,
        events=events,
    )
    _loaded[name] = backend
    return backend


def backend_info(name: str | None = None) -> str:
    """``"qh3 2.1.0"``: the QUIC library a new connection would use."""
    b = _backend(name)
    return f"{b.name} {b.version}"


class FrameConnection:
    """A QUIC connection carrying YoMo frames on its one bidirectional stream.

    Read with ``read_frame``; write with ``write_frame`` (waits for room) or
    ``send_nowait`` + ``drain``. ``close(reason)`` closes with code 0x13.
    """

    def __init__(self, protocol: Any, settings: QuicSettings, *, is_client: bool) -> None:
        self._protocol = protocol
        self._settings = settings
        self._is_client = is_client
        self._stream_id: int | None = None
        self._decoder = FrameDecoder(max_frame_size=settings.max_frame_size)
        self._frames: deque[tuple[Frame, int]] = deque()
        self._frames_bytes = 0
        self._readable = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._closed = asyncio.Event()
        self.close_reason: str | None = None
        self.closed_by_peer = False
        self._error: BaseException | None = None
        self.bytes_received = 0
        self.bytes_sent = 0
        """Bytes queued on the stream so far: the stream offset after the last write."""
        self.datagrams_dropped = 0
        self._keepalive: asyncio.Task[None] | None = None
        self._exit_stack: contextlib.AsyncExitStack | None = None

    # -- information -------------------------------------------------------

    @property
    def remote_address(self) -> tuple[str, int]:
        """The peer's ``(host, port)``."""
        quic = self._protocol._quic
        addr = getattr(quic, "_remote_addr", None)
        if addr is None:
            paths = getattr(quic, "_network_paths", None)
            addr = paths[0].addr if paths else None
        if not addr:
            return ("", 0)
        host = str(addr[0])
        if host.startswith("::ffff:"):
            host = host[7:]
        return (host, int(addr[1]))

    @property
    def closed(self) -> bool:
        """True once the connection is closed, by either side."""
        return self._closed.is_set()

    @property
    def has_room(self) -> bool:
        """False while more than ``send_high_water`` bytes wait to be sent."""
        return self._drained.is_set()

    @property
    def send_backlog(self) -> int:
        """Bytes queued on the stream that are not on the wire yet."""
        if self._stream_id is None:
            return 0
        return int(self._protocol._unsent(self._stream_id))

    @property
    def recv_backlog(self) -> int:
        """Bytes of received frames waiting for ``read_frame``."""
        return self._frames_bytes

    def _closed_error(self) -> ConnectionClosedError:
        """What using a closed connection raises: the close reason, and who closed it."""
        return ConnectionClosedError(
            self.close_reason or "connection closed", remote=self.closed_by_peer
        )

    # -- reading -----------------------------------------------------------

    def _on_stream_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        if self._stream_id is None:
            self._stream_id = stream_id
        elif stream_id != self._stream_id:
            return  # YoMo uses one stream; others are ignored (Go takes the first)
        if data:
            self.bytes_received += len(data)
            try:
                frames = self._decoder.feed(data)
            except ProtocolError as exc:
                self._error = exc
                self._abort(exc.message)
                return
            for frame in frames:
                size = _frame_size(frame)
                self._frames.append((frame, size))
                self._frames_bytes += size
            if frames:
                self._readable.set()
                if self._frames_bytes > self._settings.recv_high_water:
                    self._protocol._pause_reading()
        if end_stream and not self._closed.is_set():
            # YoMo has no half-close: a peer that ends its stream is done. Close the
            # whole connection, so a client that sends FIN and then only PINGs does
            # not keep it (and its memory) forever; the reader sees why.
            pending = self._decoder.buffered
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
        while not self._frames:
            if self._closed.is_set():
                if self._error is not None:
                    raise self._error
                raise self._closed_error()
            self._readable.clear()
            await self._readable.wait()
        frame, size = self._frames.popleft()
        self._frames_bytes -= size
        if self._frames_bytes <= self._settings.recv_high_water // 2:
            self._protocol._resume_reading()
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
        protocol = self._protocol
        if self._stream_id is None:
            if not self._is_client:
                raise ConnectionClosedError("the peer has not opened a stream yet")
            self._stream_id = protocol._quic.get_next_available_stream_id()
        try:
            protocol._quic.send_stream_data(self._stream_id, payload)
        except Exception as exc:  # qh3 raises once its connection is closed underneath us
            self._on_quic_closed(str(exc))
            raise self._closed_error() from None
        self.bytes_sent += len(payload)
        protocol._transmit_soon()
        if self._drained.is_set() and self.send_backlog > self._settings.send_high_water:
            self._drained.clear()

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

    async def drain_all(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until everything written has been sent and acknowledged.

        A ping coming back is not enough: with loss, earlier packets may still
        wait for retransmission, and closing the connection would drop them.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.send_backlog > 0 and not self._closed.is_set():
            if loop.time() >= deadline:
                raise TimeoutError(f"{self.send_backlog} bytes still unsent after {timeout:g} s")
            await asyncio.sleep(0.005)
        stream_id = self._stream_id
        while stream_id is not None and not self._closed.is_set():
            unacked = self._protocol._unacked(stream_id)
            if unacked <= 0:
                break
            if loop.time() >= deadline:
                raise TimeoutError(f"{unacked} bytes still unacknowledged after {timeout:g} s")
            await asyncio.sleep(0.005)
        if not self._closed.is_set():
            await self._ping(max(deadline - loop.time(), 0.05))

    async def _ping(self, timeout: float) -> None:
        """Ping the peer and wait (bounded) for the answer; never leaves an error unretrieved.

        The library's ping waiter outlives a timed-out wait and gets a ConnectionError
        when the connection dies later (a dead mesh peer at shutdown): retrieve it.
        """
        protocol = self._protocol
        try:
            await asyncio.wait_for(protocol.ping(), timeout)
        except Exception:
            pass
        finally:
            for waiter in list(getattr(protocol, "_ping_waiters", {}).values()):
                waiter.add_done_callback(_retrieve)

    def unacknowledged(self) -> int:
        """Bytes written that the peer's transport has not acknowledged yet (at most).

        aioquic: exact, from the stream. qh3 keeps its stream state native and tells
        only unsent bytes and the connection's bytes in flight, so this adds the two
        (packet overhead included: a little more than the stream's share).
        """
        if self._stream_id is None:
            return 0
        return int(self._protocol._unacknowledged(self._stream_id))

    def ping_nowait(self) -> None:
        """Send a PING now (its acknowledgement shows the peer is alive); never raises."""
        with contextlib.suppress(Exception):
            self._protocol._quic.send_ping(0)
            self._protocol.transmit()

    def heard_now(self) -> None:
        """Count the peer as heard now (after our own loop stalled, silence proves nothing)."""
        self._protocol.last_rx = self._protocol._loop.time()

    def silent_for(self) -> float:
        """Seconds since the last datagram arrived from the peer."""
        protocol = self._protocol
        return float(protocol._loop.time() - protocol.last_rx)

    def _check_drained(self) -> None:
        if not self._drained.is_set() and (
            self._stream_id is None or self.send_backlog <= self._settings.send_high_water // 2
        ):
            self._drained.set()

    # -- closing -----------------------------------------------------------

    def close(self, reason: str = "", code: int = CLOSE_CODE) -> None:
        """Close the connection with YoMo's error code and ``reason`` (idempotent)."""
        if self._closed.is_set():
            return
        self.close_reason = reason or "closed"
        with contextlib.suppress(Exception):
            self._protocol._quic.close(error_code=code, reason_phrase=reason)
            self._protocol.transmit()
        self._on_terminated(reason or "closed", remote=False)

    def _abort(self, reason: str) -> None:
        log.debug("closing connection to %s: %s", self.remote_address, reason)
        self.close(reason)

    def _on_quic_closed(self, detail: str) -> None:
        """The QUIC connection ended before its ConnectionTerminated event reached us."""
        event = getattr(self._protocol._quic, "_close_event", None)
        if event is not None:
            reason = event.reason_phrase or _describe_code(event.error_code)
            self._on_terminated(reason, remote=True)
        else:
            self._on_terminated(f"connection closed: {detail}", remote=False)

    def _on_terminated(self, reason: str, *, remote: bool) -> None:
        if self._closed.is_set():
            return
        if self.close_reason is None:
            self.close_reason = reason
            self.closed_by_peer = remote
        self._closed.set()
        self._readable.set()
        self._drained.set()
        if self._keepalive is not None:
            self._keepalive.cancel()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await self._closed.wait()

    async def aclose(self, reason: str = "") -> None:
        """Close and release the socket of a dialled connection."""
        self.close(reason)
        stack, self._exit_stack = self._exit_stack, None
        if stack is not None:
            # Our CONNECTION_CLOSE is sent: skip the library's draining wait (seconds
            # without RTT samples), so the socket goes at once and a program that ends
            # right after close() leaves no pending task ("Task was destroyed").
            closed = getattr(self._protocol, "_closed", None)
            if isinstance(closed, asyncio.Event):
                closed.set()
            # CONNECTION_CLOSE is already out; the library's draining period and
            # socket release finish in the background (bounded) instead of
            # holding up every client close for up to a second.
            _in_background(stack.aclose(), 3.0)

    async def _keep_alive(self, interval: float) -> None:
        with contextlib.suppress(asyncio.CancelledError, Exception):  # closed: no more pings
            while not self._closed.is_set():
                await asyncio.sleep(interval)
                self._protocol._quic.send_ping(0)
                self._protocol.transmit()


def _frame_size(frame: Frame) -> int:
    payload = getattr(frame, "payload", None)
    return 64 + (len(payload) if payload is not None else 0)


def _make_protocol_class(backend: _Backend) -> type[Any]:
    events = backend.events
    StreamDataReceived = events.StreamDataReceived
    ConnectionTerminated = events.ConnectionTerminated
    HandshakeCompleted = events.HandshakeCompleted

    batched_transmit = backend.name == "aioquic"

    class _YomoProtocol(backend.base_protocol):  # type: ignore[name-defined,misc]
        async def wait_connected(self) -> None:
            try:
                await super().wait_connected()
            finally:
                # A dial that times out leaves the library's waiter behind; its
                # ConnectionError is reported by dial(), so retrieve it here.
                waiter = getattr(self, "_connected_waiter", None)
                if waiter is not None:
                    waiter.add_done_callback(_retrieve)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.conn: FrameConnection | None = None
            self._paused = False
            self._held: deque[tuple[bytes, Any]] = deque()
            self._handshake_done = asyncio.Event()
            self._on_handshake: Callable[[Any], None] | None = None
            self._quic_name = backend.name
            self.last_rx = self._loop.time()

        # -- flow control on the receive side --
        def datagram_received(self, data: bytes | str, addr: Any) -> None:
            self.last_rx = self._loop.time()
            if self._paused:
                conn = self.conn
                if len(self._held) < (conn._settings.held_datagrams if conn else 512):
                    self._held.append((data, addr))  # type: ignore[arg-type]
                elif conn is not None:
                    conn.datagrams_dropped += 1
                return
            # Feed the datagram now but transmit once per loop turn: a burst of
            # datagrams then costs one batch of ACKs instead of one per packet.
            self._quic.receive_datagram(data, addr, now=self._loop.time())
            self._process_events()
            self._check_peer_close()
            self._transmit_soon()

        def _check_peer_close(self) -> None:
            # Both libraries report a peer's CONNECTION_CLOSE only after the draining
            # period (about 3 PTO); tell our reader at once, with the peer's reason.
            close = getattr(self._quic, "_close_event", None)
            conn = self.conn
            if close is not None and conn is not None and not conn.closed:
                reason = close.reason_phrase or _describe_code(close.error_code)
                conn._on_terminated(reason, remote=True)

        def datagrams_received(self, data: list[bytes], addr: Any) -> None:
            # qh3's batched UDP transport (recvmmsg/GRO, used by its clients) hands
            # whole batches here and never calls datagram_received; without this a
            # paused reader kept taking data and its queue grew without bound.
            # Feed it in small slices, so a pause stops the rest of the batch.
            quic = self._quic
            self.last_rx = self._loop.time()
            many = getattr(quic, "receive_many_datagrams", None)
            start, end = 0, len(data)
            while start < end and not self._paused and many is not None:
                many(data[start : start + _BATCH_SLICE], addr, now=self._loop.time())
                self._process_events()
                start += _BATCH_SLICE
            for datagram in data[start:]:
                self.datagram_received(datagram, addr)  # holds them while paused
            if start:
                self._check_peer_close()
                self._transmit_soon()

        def _pause_reading(self) -> None:
            if not self._paused:
                self._paused = True
                self._schedule_trickle()
                self._loop.call_later(_PAUSED_PING, self._ping_while_paused)

        def _ping_while_paused(self) -> None:
            # Held datagrams are not acknowledged (that is what slows the peer), so
            # show the peer we are alive: a PING every _PAUSED_PING s keeps its
            # dead-zipper watchdog (ClientCore, ReconnectPolicy.dead_after) quiet.
            conn = self.conn
            if not self._paused or conn is None or conn.closed:
                return
            conn.ping_nowait()
            self._loop.call_later(_PAUSED_PING, self._ping_while_paused)

        def _schedule_trickle(self) -> None:
            # While paused, let one held datagram through now and then so that
            # the connection's idle timer never fires for a merely slow reader.
            # The idle timeout in force is the smaller of ours and the peer's (a
            # client's 40 s meets the zipper's 5 s), so pace by that.
            conn = self.conn
            idle = conn._settings.idle_timeout if conn is not None else 5.0
            peer = _peer_idle_timeout(self._quic)
            if peer is not None:
                idle = min(idle, peer)
            self._loop.call_later(max(idle / 4, 0.05), self._trickle)

        def _trickle(self) -> None:
            if not self._paused:
                return
            conn = self.conn
            # Trickling adds to the reader's queue; past twice the high-water mark
            # it stops, so memory stays bounded even for a reader stalled for hours
            # (the connection then times out and the client reconnects).
            full = conn is not None and conn._frames_bytes > 2 * conn._settings.recv_high_water
            if self._held and not full:
                data, addr = self._held.popleft()
                super().datagram_received(data, addr)
            if self._paused and not (self.conn is not None and self.conn.closed):
                self._schedule_trickle()

        def _resume_reading(self) -> None:
            if not self._paused:
                return
            self._paused = False
            held, self._held = self._held, deque()
            while held and not self._paused:
                data, addr = held.popleft()
                super().datagram_received(data, addr)
            if held:  # paused again while replaying: keep the rest
                held.extend(self._held)
                self._held = held
            conn = self.conn
            if conn is not None:
                conn._check_drained()

        def _unsent(self, stream_id: int) -> int:
            quic = self._quic
            getter = getattr(quic, "get_send_buffer_size", None)
            if getter is not None:
                return int(getter(stream_id))
            stream = quic._streams.get(stream_id)
            if stream is None:
                return 0
            sender = stream.sender
            return int(sender._buffer_stop - sender.next_offset)

        def _unacknowledged(self, stream_id: int) -> int:
            quic = self._quic
            core = getattr(quic, "_core", None)
            if core is not None and hasattr(core, "bytes_in_flight"):  # qh3
                return int(quic.get_send_buffer_size(stream_id)) + int(core.bytes_in_flight)
            stream = getattr(quic, "_streams", {}).get(stream_id)
            if stream is None:
                return 0
            sender = stream.sender
            return int(sender._buffer_stop - sender._buffer_start)

        def _unacked(self, stream_id: int) -> int:
            """Bytes sent but not acknowledged yet (qh3: all packets in flight)."""
            quic = self._quic
            core = getattr(quic, "_core", None)
            if core is not None and hasattr(core, "bytes_in_flight"):
                return int(core.bytes_in_flight)
            stream = getattr(quic, "_streams", {}).get(stream_id)
            if stream is None:
                return 0
            sender = stream.sender
            return int(sender._buffer_stop - sender._buffer_start)

        def transmit(self) -> None:
            if batched_transmit:
                self._transmit_batched()
            else:
                super().transmit()
            conn = self.conn
            if conn is not None and not conn._drained.is_set():
                conn._check_drained()

        def _transmit_batched(self) -> None:
            # aioquic sends one sendto() per datagram. Behind the zipper's shared
            # qh3 socket (Go clients land here) hand the whole burst to its
            # batched sender (GSO/sendmmsg) instead; otherwise as aioquic does.
            transport = self._transport
            send_many = getattr(transport, "sendto_many", None)
            if send_many is None:
                super().transmit()
                return
            self._transmit_task = None
            batch: list[bytes] = []
            batch_addr: Any = None
            for data, addr in self._quic.datagrams_to_send(now=self._loop.time()):
                if batch and addr != batch_addr:
                    send_many(batch, batch_addr)
                    batch = []
                batch.append(data)
                batch_addr = addr
            if batch:
                send_many(batch, batch_addr)
            self._rearm_timer(self._quic.get_timer())

        def _rearm_timer(self, timer_at: float | None) -> None:
            timer: Any = getattr(self, "_timer", None)
            if timer is not None and getattr(self, "_timer_at", None) != timer_at:
                timer.cancel()
                timer = None
            if timer is None and timer_at is not None:
                timer = self._loop.call_at(timer_at, self._handle_timer)
            self._timer = timer
            self._timer_at = timer_at

        def quic_event_received(self, event: Any) -> None:
            conn = self.conn
            if isinstance(event, StreamDataReceived):
                if conn is not None:
                    conn._on_stream_data(event.stream_id, event.data, event.end_stream)
            elif isinstance(event, HandshakeCompleted):
                self._handshake_done.set()
                if self._on_handshake is not None:
                    self._on_handshake(self)
            elif isinstance(event, ConnectionTerminated):
                if conn is not None:
                    reason = event.reason_phrase or _describe_code(event.error_code)
                    conn._on_terminated(reason, remote=True)
                self._handshake_done.set()

    _YomoProtocol.__name__ = f"YomoProtocol_{backend.name}"
    return _YomoProtocol


def _peer_idle_timeout(quic: Any) -> float | None:
    """The peer's max_idle_timeout in seconds, once its transport parameters are known."""
    seconds = getattr(quic, "_remote_max_idle_timeout", None)  # aioquic
    if seconds:
        return float(seconds)
    params = getattr(getattr(quic, "_tls", None), "remote_transport_parameters", None)  # qh3
    millis = getattr(params, "max_idle_timeout", None)
    if millis:
        return float(millis) / 1000
    return None


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _describe_code(code: int) -> str:
    if code == 0:
        return "connection closed"
    if code == CLOSE_CODE:
        return "closed by peer"
    return f"connection closed with error code {code:#x}"


def _resolve_backend(settings: QuicSettings, tls: TlsConfig, *, server: bool) -> _Backend:
    asked = choose_backend(settings)
    if asked is not None and asked != "native":  # native: the pure-Python default below
        backend = _backend(asked)
        if server and tls.verify_peer and backend.name != "aioquic":
            raise TransportError(
                f"mutual TLS on the zipper needs the aioquic backend ({backend.name} cannot "
                "request client certificates)"
            )
        return backend
    return _backend("aioquic" if (server and tls.verify_peer) else "qh3")


def _configuration(
    backend: _Backend, settings: QuicSettings, *, is_client: bool, server_name: str | None
) -> Any:
    config = backend.configuration(
        is_client=is_client,
        alpn_protocols=[ALPN],
        idle_timeout=settings.idle_timeout,
        max_data=settings.max_data,
        max_stream_data=settings.max_stream_data,
    )
    if server_name is not None:
        config.server_name = server_name
    if qlog_enabled():
        config.quic_logger = qlog_logger(backend.name, is_client=is_client)
    return config


# --- server -----------------------------------------------------------------


class Listener:
    """A listening zipper socket; ``address`` is the bound ``(host, port)``."""

    def __init__(self, server: Any, address: tuple[str, int], tls_mode: str, backend: str) -> None:
        self._server = server
        self.address = address
        self.tls_mode = tls_mode
        self.backend = backend

    def close(self) -> None:
        """Stop accepting and close the socket (established connections are the caller's)."""
        self._server.close()

    async def aclose(self, timeout: float = 1.0) -> None:
        """Close, and wait (bounded) until the port is free again for a new listener."""
        transport = getattr(self._server, "_transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        self._server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while sock is not None and sock.fileno() != -1 and loop.time() < deadline:
            await asyncio.sleep(0.005)


async def listen(
    host: str,
    port: int,
    on_connection: Callable[[FrameConnection], Awaitable[None]],
    *,
    tls: TlsConfig | None = None,
    settings: QuicSettings = DEFAULT_ZIPPER_SETTINGS,
) -> Listener:
    """Listen for YoMo clients; ``on_connection`` runs as a task per connection.

    The task starts once the QUIC/TLS handshake is done (and, with mutual TLS,
    the client certificate verified); the connection is closed when it returns.
    """
    tls = tls or TlsConfig.from_env()
    backend = _resolve_backend(settings, tls, server=True)
    if tls.cert_file and tls.key_file:
        cert_file, key_file = tls.cert_file, tls.key_file
    else:
        pair = generate_self_signed(host)
        cert_file, key_file = pair.cert_file, pair.key_file
    if backend.name == "aiopquic":  # optional backend, in its own module
        from . import _aiopquic

        return await _aiopquic.listen(
            host,
            port,
            on_connection,
            tls=tls,
            settings=settings,
            cert_file=cert_file,
            key_file=key_file,
        )

    def server_config(b: _Backend) -> Any:
        config = _configuration(b, settings, is_client=False, server_name=None)
        config.load_cert_chain(cert_file, key_file)
        if tls.verify_peer:
            config.cafile = tls.ca_file
            config.verify_mode = ssl.CERT_REQUIRED
        return config

    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def run(conn: FrameConnection) -> None:
        try:
            await on_connection(conn)
        except Exception:  # the handler's own bugs must not kill the listener
            log.exception("connection handler failed")
        finally:
            conn.close()

    def handshake_done(protocol: Any) -> None:
        conn = protocol.conn
        if conn is None:
            return
        if tls.verify_peer:
            problem = _verify_client_certificate(protocol, tls)
            if problem is not None:
                log.warning("rejected client %s: %s", conn.remote_address, problem)
                conn.close(problem)
                return
        interval = min(settings.keep_alive, settings.idle_timeout / 3)
        if interval > 0:
            conn._keepalive = loop.create_task(conn._keep_alive(interval))
        task = loop.create_task(run(conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def protocol_factory(b: _Backend) -> Callable[..., Any]:
        def create_protocol(*args: Any, **kwargs: Any) -> Any:
            protocol = b.protocol_class(*args, **kwargs)
            protocol.conn = FrameConnection(protocol, settings, is_client=False)
            protocol._on_handshake = handshake_done
            if tls.verify_peer:
                _request_client_certificate(protocol)
            return protocol

        return create_protocol

    config, create_protocol = server_config(backend), protocol_factory(backend)
    compat: tuple[_Backend, Any, Any] | None = None
    if backend.name == "qh3":
        try:
            aioquic = _backend("aioquic")
        except Exception as exc:  # pragma: no cover - aioquic is a dependency
            log.warning("aioquic unavailable, Go (quic-go) clients cannot connect: %s", exc)
        else:
            compat = (aioquic, server_config(aioquic), protocol_factory(aioquic))
    try:
        server = await _serve(backend, host, port, config, create_protocol, compat)
    except OSError as exc:
        raise TransportError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sockname = server._transport.get_extra_info("sockname")
    name = backend.name if compat is None else f"{backend.name} (+aioquic for empty client ids)"
    return Listener(server, (str(sockname[0]), int(sockname[1])), tls.mode, name)


class _SplitServer(asyncio.DatagramProtocol):
    """One UDP socket, two QUIC servers: qh3 for most clients, aioquic for empty client ids.

    qh3 2.1 cannot serve a client whose source connection id is empty: the
    handshake fails ("initial_source_connection_id does not match") and its
    replies go to the client's original destination id. quic-go, so every Go
    YoMo client, uses empty ids; aioquic serves them fine. A datagram goes to
    the server that owns its destination id; a new connection goes to aioquic
    when its first packet carries an empty source id, to qh3 otherwise.
    """

    def __init__(self, fast: Any, compat: Any, cid_length: int) -> None:
        self.fast = fast
        self.compat = compat
        self._cid_length = cid_length
        self._transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        self.fast.connection_made(transport)
        self.compat.connection_made(transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._route(data).datagram_received(data, addr)

    def _route(self, data: bytes) -> Any:
        compat = self.compat
        if len(data) > 6 and data[0] & 0x80:  # long header: DCID length at byte 5
            end = 6 + data[5]
            dcid = bytes(data[6:end])
            if dcid in compat._protocols:
                return compat
            if dcid in self.fast._protocols:
                return self.fast
            return compat if end < len(data) and data[end] == 0 else self.fast
        if compat._protocols and bytes(data[1 : 1 + self._cid_length]) in compat._protocols:
            return compat
        return self.fast

    def close(self) -> None:
        for server in (self.fast, self.compat):
            for protocol in set(server._protocols.values()):
                protocol.close()
            server._protocols.clear()
        self._transport.close()


async def _serve(
    backend: _Backend,
    host: str,
    port: int,
    config: Any,
    create_protocol: Any,
    compat: tuple[_Backend, Any, Any] | None = None,
) -> Any:
    """Listen; with qh3 on Linux through its batched (recvmmsg/GSO) UDP transport.

    With ``compat`` (aioquic backend, config, protocol factory) the socket is
    shared with an aioquic server for clients qh3 cannot serve (``_SplitServer``).
    """
    if backend.name == "qh3":

        def factory() -> Any:
            server = importlib.import_module("qh3.asyncio.server").QuicServer(
                configuration=config, create_protocol=create_protocol
            )
            index_connection_ids(server)
            return server

        if compat is not None:
            qh3_factory = factory
            compat_server = importlib.import_module("aioquic.asyncio.server").QuicServer

            def factory() -> Any:
                aioquic_server = compat_server(configuration=compat[1], create_protocol=compat[2])
                index_connection_ids(aioquic_server)
                return _SplitServer(qh3_factory(), aioquic_server, compat[1].connection_id_length)

        try:
            transport_mod = importlib.import_module("qh3.asyncio._transport")
            optimized = transport_mod.create_optimized_datagram_transport
        except (ImportError, AttributeError):
            optimized = None
        if optimized is not None:
            import socket

            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
                _, server = await optimized(asyncio.get_running_loop(), factory, sock=sock)
            except BaseException:
                sock.close()
                raise
            return server
        if compat is not None:
            _, server = await asyncio.get_running_loop().create_datagram_endpoint(
                factory, local_addr=(host, port)
            )
            return server
    server = await backend.serve(host, port, configuration=config, create_protocol=create_protocol)
    index_connection_ids(server)
    return server


def _request_client_certificate(protocol: Any) -> None:
    """Make aioquic's server ask for a client certificate (mutual TLS).

    aioquic has the handshake step but no public switch; the TLS context is
    created when the first packet arrives, so the flag is set right after.
    """
    quic = protocol._quic
    initialize = quic._initialize

    def _initialize(*args: Any, **kwargs: Any) -> None:
        initialize(*args, **kwargs)
        quic.tls._request_client_certificate = True

    quic._initialize = _initialize


def _verify_client_certificate(protocol: Any, tls: TlsConfig) -> str | None:
    context = getattr(protocol._quic, "tls", None)
    cert = getattr(context, "_peer_certificate", None)
    if cert is None:
        return "mutual TLS: the client presented no certificate"
    try:
        from aioquic.tls import verify_certificate

        verify_certificate(
            certificate=cert,
            chain=list(getattr(context, "_peer_certificate_chain", [])),
            cafile=tls.ca_file,
        )
    except Exception as exc:
        return f"mutual TLS: client certificate not trusted: {exc}"
    return None


# --- client -----------------------------------------------------------------


async def dial(
    host: str,
    port: int,
    *,
    tls: TlsConfig | None = None,
    settings: QuicSettings = DEFAULT_CLIENT_SETTINGS,
) -> FrameConnection:
    """Connect to a zipper and return the frame connection (handshake done).

    Raises:
        ConnectError: the zipper did not answer within ``handshake_timeout`` or TLS failed.
    """
    tls = tls or TlsConfig.from_env()
    backend = _resolve_backend(settings, tls, server=False)
    if backend.name == "aiopquic":  # optional backend, in its own module
        from . import _aiopquic

        return await _aiopquic.dial(host, port, tls=tls, settings=settings)
    config = _configuration(backend, settings, is_client=True, server_name=host)
    if tls.cert_file and tls.key_file:
        config.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.verify_peer:
        config.verify_mode = ssl.CERT_REQUIRED
        config.cafile = tls.ca_file
    else:
        config.verify_mode = ssl.CERT_NONE

    created: list[Any] = []

    def create_protocol(*args: Any, **kwargs: Any) -> Any:
        protocol = backend.protocol_class(*args, **kwargs)
        protocol.conn = FrameConnection(protocol, settings, is_client=True)
        created.append(protocol)
        return protocol

    stack = contextlib.AsyncExitStack()
    try:
        protocol = await asyncio.wait_for(
            stack.enter_async_context(
                backend.connect(host, port, configuration=config, create_protocol=create_protocol)
            ),
            settings.handshake_timeout,
        )
    except asyncio.TimeoutError as exc:
        await _discard(stack, created)
        raise ConnectError(
            f"cannot connect to zipper {host}:{port}: no QUIC handshake within "
            f"{settings.handshake_timeout:.1f} s"
        ) from exc
    except (ConnectionError, OSError) as exc:
        await _discard(stack, created)
        detail = str(exc) or type(exc).__name__
        if created:
            failed = created[0].conn
            if failed is not None and failed.close_reason:
                detail = failed.close_reason
        raise ConnectError(f"cannot connect to zipper {host}:{port}: {detail}") from exc
    conn: FrameConnection = protocol.conn
    conn._exit_stack = stack
    interval = min(settings.keep_alive, settings.idle_timeout / 3)
    if interval > 0:
        conn._keepalive = asyncio.get_running_loop().create_task(conn._keep_alive(interval))
    return conn  # type: ignore[no-any-return]


async def _discard(stack: contextlib.AsyncExitStack, created: list[Any]) -> None:
    for protocol in created:
        waiter = getattr(protocol, "_connected_waiter", None)
        if waiter is not None:  # its ConnectionError is ours to report, not asyncio's
            waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
        with contextlib.suppress(Exception):
            protocol._quic.close()
    _in_background(stack.aclose(), 3.0)


_background: set[asyncio.Task[Any]] = set()


def _in_background(coro: Awaitable[Any], timeout: float) -> None:
    """Run cleanup ``coro`` without waiting for it, bounded by ``timeout``, errors ignored."""

    async def run() -> None:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(coro, timeout)

    task = asyncio.get_running_loop().create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)
