"""The native data path (``yomo._native``, Rust: quinn + rustls) behind the transport API.

``NativeConnection`` is a ``FrameConnection`` for clients: the QUIC work, framing and
buffering run on the native side's threads; this class only moves batches. A write is
one call that appends the encoded frame to the native send queue (any thread, no await
while there is room); received frames come in batches, one call per wake-up. The native
side wakes the event loop through a socket watched with ``loop.add_reader``, so it never
needs the GIL on the data path. It is a ``TrackedConnection``: it tells what the zipper's
transport acknowledged (proven from quinn's send window, ``native/src/acked.rs``) and
when the zipper was last heard from, so the client core notices a dead zipper fast and
writes again what was never acknowledged.

``NativeServer`` is the zipper's data path: it listens, hands every connection's first
frame to the zipper's Python policy, and routes DataFrames itself (see
``yomo.zipper.server``).

Why this module is over ~400 lines: the client and the zipper halves are thin
wrappers of one Rust module that share its wake-up machinery (``_Wakeup``: a socket the
loop watches) and its batch hand-over; each half is short, and keeping them together
keeps every call into ``yomo._native`` in one file (as ``_compat.py`` does for the
QUIC libraries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

from yomo.errors import ConnectError, RemoteProtocolError, TimeoutError
from yomo.wire import Frame, decode_frame, make_data_frame

from ._state import ConnectionState
from .qlog import warn_unsupported
from .reset_key import stateless_reset_key
from .settings import (
    CLOSE_CODE,
    DEFAULT_CLIENT_SETTINGS,
    DEFAULT_DEAD_AFTER,
    DEFAULT_DROP_THRESHOLD,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_ZIPPER_SETTINGS,
    QuicSettings,
)
from .tls import TlsConfig, generate_self_signed

try:
    from yomo import _native
except ImportError:  # built without Rust: the pure-Python path serves
    _native = None  # type: ignore[assignment]

__all__ = ["NativeConnection", "NativeServer", "available", "native_info"]

_CONNECTING, _OPEN, _CLOSED = 0, 1, 2
#: Bytes of frames collected before they are handed over within a loop turn.
_FLUSH_BYTES = 64 * 1024


def available() -> bool:
    """True when the native module was built into this install."""
    return _native is not None


def native_info() -> str:
    """``"native (quinn 0.11, rustls 0.23)"`` for ``yomo version`` and logs."""
    if _native is None:
        return "native (not built)"
    versions = dict(_native.versions())
    return f"native (quinn {versions['quinn']}, rustls {versions['rustls']})"


class _Wakeup:
    """A socket pair: the native side writes a byte, the loop calls ``callback``."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self.reader, writer = socket.socketpair()
        self.reader.setblocking(False)
        writer.setblocking(False)
        self._callback = callback
        self._loop.add_reader(self.reader.fileno(), self._on_readable)
        self._fd: int | None = writer.detach()

    def take_fd(self) -> int:
        """The writing end, handed to (and from then on owned and closed by) the native side."""
        fd, self._fd = self._fd, None
        if fd is None:
            raise RuntimeError("yomo: the wake-up socket was already handed over")
        return fd

    def _on_readable(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self.reader.recv(4096):
                pass
        self._callback()

    def close(self) -> None:
        """Stop watching (the native side closes the writing end when it is done with it)."""
        if self.reader.fileno() != -1:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.reader.fileno())
            self.reader.close()
        if self._fd is not None:  # never handed over
            os.close(self._fd)
            self._fd = None
        self._callback = _nothing


def _nothing() -> None:
    return None


def _frame(item: Any) -> Frame:
    if type(item) is tuple:
        return make_data_frame(*item)
    return decode_frame(item)


class NativeConnection(ConnectionState):
    """A client's connection to a zipper on the native data path (see the module docs).

    Same interface as the pure-Python ``FrameConnection``: ``read_frame``,
    ``send_nowait``/``drain``/``write_frame``, ``has_room``, ``drain_all``, ``close``.
    """

    def __init__(self, native: Any, wakeup: _Wakeup, settings: QuicSettings) -> None:
        super().__init__()
        self.native = native
        self._wakeup = wakeup
        self._settings = settings
        # received items as the native side hands them over (see ``read_items``)
        self._frames: list[Any] = []
        self._frames_bytes = 0
        self._opened = asyncio.Event()
        self._changed = asyncio.Event()
        self._connect_error: str | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._loop = asyncio.get_running_loop()
        self.bytes_sent = 0
        """Bytes written on the stream so far (the stream offset after the last write)."""

    # -- wake-ups ----------------------------------------------------------

    def _take(self) -> None:
        """Move received frames from the native queue to ours, while ours has room
        (half of ``recv_high_water`` each: above it the native side stops reading)."""
        if self._frames_bytes > self._settings.recv_high_water // 2:
            return
        items, size = self.native.take()
        if items:
            if self._frames:  # decoded when read: no work per frame here
                self._frames.extend(items)
            else:
                self._frames = items
            self._frames_bytes += size
            self._readable.set()

    def _poll(self) -> None:
        native = self.native
        native.rearm()
        self._take()
        status = native.status
        if status != _CONNECTING:
            self._opened.set()
        if not self._drained.is_set() and (
            status == _CLOSED or native.send_backlog <= self._settings.send_high_water // 2
        ):
            self._drained.set()
        if status == _CLOSED and not self._closed.is_set():
            self._on_closed()
        self._changed.set()

    def _on_closed(self) -> None:
        info = self.native.close_info()
        reason, remote, kind = info if info is not None else ("closed", False, "closed")
        if self.close_reason is None:
            self.close_reason = reason
            self.closed_by_peer = remote
        if kind == "protocol":
            self._error = RemoteProtocolError(reason)
        elif kind == "connect":
            self._connect_error = reason
        self._closed.set()
        self._readable.set()
        self._drained.set()
        self._opened.set()

    # -- information -------------------------------------------------------

    @property
    def remote_address(self) -> tuple[str, int]:
        """The zipper's ``(host, port)``."""
        host, port = self.native.remote_address
        return (host, port)

    @property
    def send_backlog(self) -> int:
        """Bytes queued on the stream that the zipper has not taken yet."""
        return int(self.native.send_backlog) + self._pending_bytes

    @property
    def recv_backlog(self) -> int:
        """Bytes of received frames waiting for ``read_frame``."""
        return int(self.native.recv_backlog) + self._frames_bytes

    @property
    def bytes_received(self) -> int:
        """Stream bytes received from the zipper so far."""
        return int(self.native.bytes_received)

    def unacknowledged(self) -> int:
        """Bytes written that the zipper's transport is not proven to have acknowledged.

        Never less than the truth (a frame is never taken as delivered that may not be);
        at most a few KiB more (``native/src/acked.rs``). Also asks the native side for a
        fresh measurement, seen by the next call.
        """
        written, acked = self.native.acked()  # written: a mesh link's forwarded frames too
        return max(0, int(written) + self._pending_bytes - int(acked))

    def silent_for(self) -> float:
        """Seconds since the last datagram from the zipper."""
        return float(self.native.silent_for())

    def heard_now(self) -> None:
        """Count the zipper as heard now (our own loop stalled: silence proves nothing)."""
        self.native.heard_now()

    def ping_nowait(self) -> None:
        """Make the zipper answer now (an ack-eliciting frame); never raises."""
        with contextlib.suppress(Exception):
            self.native.ping()

    # -- reading -----------------------------------------------------------

    async def read_frame(self) -> Frame:
        """The next frame from the zipper.

        Raises:
            ConnectionClosedError: the connection closed (``remote`` tells who closed it).
            RemoteProtocolError: the zipper sent bytes that are not a frame.
        """
        if not self._frames:
            await self._fill()
        frames = self._frames
        item = frames.pop(0)  # the per-batch path is read_items
        if frames:  # as the native side counts it (an estimate of the frame's length)
            size = 64 + (len(item[1]) + len(item[2]) + 16 if type(item) is tuple else len(item))
            self._frames_bytes = max(0, self._frames_bytes - size)
        else:
            self._frames_bytes = 0
        return _frame(item)

    async def _fill(self) -> None:
        """Wait until at least one frame has been received (raises like ``read_frame``)."""
        while True:
            self._take()
            if self._frames:
                return
            await self._wait_readable()

    async def read_batch(self) -> list[Frame]:
        """Every frame received so far (at least one), in order; raises like ``read_frame``."""
        return [_frame(item) for item in await self.read_items()]

    async def read_items(self) -> list[Any]:
        """Every frame received so far (at least one), in order, as the native side hands
        them over: ``(tag, metadata, payload)`` for a DataFrame (its metadata checked to be
        a map of strings), encoded bytes (``decode_item``) for other frames. One call per
        batch, nothing done per frame (the stream function's fast path, ``ClientCore``).

        Raises:
            ConnectionClosedError: the connection closed.
            RemoteProtocolError: the zipper sent bytes that are not a frame.
        """
        if not self._frames:
            await self._fill()
        items, self._frames = self._frames, []
        self._frames_bytes = 0
        return items

    decode_item = staticmethod(_frame)

    # -- writing -----------------------------------------------------------

    def send_nowait(self, data: Frame | bytes) -> None:
        """Queue a frame (or its encoded bytes) without waiting.

        Frames written in one event-loop turn go to the native side in one call (at
        the end of the turn, or once ``_FLUSH_BYTES`` are pending).

        Raises:
            ConnectionClosedError: the connection is closed.
        """
        if self._closed.is_set():
            raise self._closed_error()
        if type(data) is bytes:
            payload: bytes = data
        elif isinstance(data, (bytes, bytearray, memoryview)):
            payload = bytes(data)  # the native side takes a list of bytes objects
        else:
            payload = data.encode()
        pending = self._pending
        pending.append(payload)
        size = len(payload)
        self._pending_bytes += size
        self.bytes_sent += size
        if self._pending_bytes >= _FLUSH_BYTES:
            self.flush()
        elif len(pending) == 1:
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand the frames written so far to the native side (one call)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._pending_bytes = 0
        backlog = self.native.send_frames(pending)  # one call, no join (see send_frames)
        if backlog < 0:
            self._poll()
        elif backlog > self._settings.send_high_water:
            self._drained.clear()

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until the unsent backlog is below half the high-water mark.

        Raises:
            ConnectionClosedError: the connection closed while waiting.
            TimeoutError: ``timeout`` seconds passed first.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        self.flush()
        while not self._drained.is_set():
            self.native.want_writable(self._settings.send_high_water // 2)
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"peer did not read for {timeout:g} s")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        if self._closed.is_set():
            raise self._closed_error()

    async def write_frame(self, data: Frame | bytes, timeout: float | None = None) -> None:
        """Send a frame, waiting while the zipper is not reading (bounded by ``timeout``)."""
        self.send_nowait(data)
        await self.drain(timeout)

    async def drain_all(self, timeout: float = 5.0) -> None:
        """Send everything written, end the stream, and wait (bounded) for the zipper's
        acknowledgement. Nothing can be sent afterwards.

        Raises:
            TimeoutError: not acknowledged within ``timeout`` seconds.
        """
        self.flush()
        self.native.finish()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.native.finished is None and not self._closed.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"{self.send_backlog} bytes still unacknowledged after {timeout:g} s"
                )
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))

    # -- closing -----------------------------------------------------------

    def close(self, reason: str = "", code: int = CLOSE_CODE) -> None:
        """Close with YoMo's error code and ``reason`` (idempotent)."""
        if self._closed.is_set():
            return
        self.close_reason = reason or "closed"
        self.flush()
        self.native.close(reason, code)
        self._poll()

    async def aclose(self, reason: str = "") -> None:
        """Close and stop watching the native side."""
        self.close(reason)
        self._wakeup.close()


async def dial(
    host: str,
    port: int,
    *,
    tls: TlsConfig | None = None,
    settings: QuicSettings = DEFAULT_CLIENT_SETTINGS,
) -> NativeConnection:
    """Connect to a zipper on the native path; returns once the QUIC handshake is done.

    Raises:
        ConnectError: the zipper did not answer within ``handshake_timeout`` or TLS failed.
    """
    assert _native is not None
    warn_unsupported("native data path (quinn)")
    tls = tls or TlsConfig.from_env()
    holder: list[NativeConnection] = []
    wakeup = _Wakeup(lambda: holder[0]._poll() if holder else None)
    try:
        native = _native.Connection(
            host,
            port,
            host,
            settings,
            tls.cert_file,
            tls.key_file,
            tls.ca_file,
            tls.verify_peer,
            wakeup.take_fd(),
        )
    except (ValueError, OSError) as exc:
        wakeup.close()
        raise ConnectError(f"cannot connect to zipper {host}:{port}: {exc}") from exc
    conn = NativeConnection(native, wakeup, settings)
    holder.append(conn)
    conn._poll()
    backstop = settings.handshake_timeout + 1.0
    try:
        await asyncio.wait_for(conn._opened.wait(), backstop)
    except BaseException as exc:
        native.close("client closed")
        wakeup.close()
        if isinstance(exc, asyncio.TimeoutError):  # the native side never told us, even
            # of its own handshake timeout (a starved loop): a failed dial all the same,
            # so the session redials instead of its supervisor dying on a bare TimeoutError
            raise ConnectError(
                f"cannot connect to zipper {host}:{port}: no QUIC handshake within {backstop:g} s"
            ) from None
        raise
    if conn._connect_error is not None:  # no QUIC/TLS handshake (else: closed right after)
        wakeup.close()
        raise ConnectError(f"cannot connect to zipper {host}:{port}: {conn._connect_error}")
    return conn


def _check_recv_buffer(sizes: tuple[int, int]) -> None:
    """Warn (as quic-go does) when the kernel granted the zipper's UDP socket less
    receive buffer than asked: bursts of datagrams may then be dropped."""
    got, wanted = sizes
    if got < wanted:  # Linux reports twice what was set; the ask is the floor
        logging.getLogger("yomo.transport").warning(
            "yomo: the zipper's UDP receive buffer is %d KiB (wanted %d KiB): bursts of "
            "datagrams may be dropped; raise net.core.rmem_max (sysctl -w "
            "net.core.rmem_max=%d)",
            got // 1024,
            wanted // 1024,
            wanted,
        )


class NativeServer:
    """The zipper's native data path: a listening socket, handshakes, routing, counters.

    ``on_events`` is called on the loop with batches of event tuples (see
    ``yomo._native.Zipper.take_events``); the zipper answers handshakes with
    ``accept``/``reject``.
    """

    backend = "native"

    def __init__(self, native: Any, wakeup: _Wakeup, tls: TlsConfig) -> None:
        self.native = native
        self._wakeup = wakeup
        host, port = native.address
        self.address: tuple[str, int] = (host, port)
        self.tls_mode = tls.mode
        self.backend = native_info()

    @classmethod
    async def start(
        cls,
        host: str,
        port: int,
        on_events: Callable[[list[tuple[Any, ...]]], None],
        *,
        tls: TlsConfig | None = None,
        settings: QuicSettings = DEFAULT_ZIPPER_SETTINGS,
        drop: bool = False,
        drop_threshold: int = DEFAULT_DROP_THRESHOLD,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        dead_after: float = DEFAULT_DEAD_AFTER,
        startup_hold: tuple[float, int] = (0.0, 0),
    ) -> NativeServer:
        """Listen on ``host:port``. A function that producers wait for and that has been
        silent for ``dead_after`` seconds is closed (0: never). ``startup_hold`` is
        (seconds, bytes): frames nobody observes yet just after the start are held that
        long for the functions that register then (``yomo.zipper.startup_hold``).

        Raises:
            TransportError: the address cannot be bound or the certificates are unusable.
        """
        from yomo.errors import TransportError

        assert _native is not None
        warn_unsupported("native data path (quinn)")
        tls = tls or TlsConfig.from_env()
        reset_key = stateless_reset_key(tls, host, port)
        if tls.cert_file and tls.key_file:
            cert_file, key_file = tls.cert_file, tls.key_file
        else:
            pair = generate_self_signed(host)
            cert_file, key_file = pair.cert_file, pair.key_file
        holder: list[Any] = []

        def poll() -> None:
            if holder:
                holder[0].rearm()
                events = holder[0].take_events()
                if events:
                    on_events(events)

        wakeup = _Wakeup(poll)
        try:
            native = _native.Zipper(
                host,
                port,
                settings,
                cert_file,
                key_file,
                tls.ca_file,
                tls.verify_peer,
                wakeup.take_fd(),
                drop,
                drop_threshold,
                handshake_timeout,
                dead_after,
                reset_key,
                *startup_hold,
            )
        except (OSError, ValueError) as exc:
            wakeup.close()
            raise TransportError(f"cannot listen on {host}:{port}: {exc}") from exc
        holder.append(native)
        _check_recv_buffer(native.recv_buffer)
        return cls(native, wakeup, tls)

    def accept(
        self,
        handshake_id: int,
        number: int,
        client_type: int,
        tags: Sequence[int],
        wanted_target: str,
        merge: dict[str, str],
        reply: bytes,
        client_id: str = "",
    ) -> bool:
        """Register a handshake as connection ``number``; False if it went away meanwhile.
        ``client_id`` is the handshake's id (re-sent frames name it: ``yomo.wire.resent``)."""
        return bool(
            self.native.accept(
                handshake_id,
                number,
                client_type,
                list(tags),
                wanted_target,
                list(merge.items()),
                reply,
                client_id,
            )
        )

    def reject(self, handshake_id: int, reply: bytes | None, reason: str) -> None:
        """Send ``reply`` (a RejectedFrame) if given and close with ``reason``."""
        self.native.reject(handshake_id, reply, reason)

    async def aclose(self, reason: str, timeout: float = 1.0) -> None:
        """Close every connection with ``reason`` and release the port (bounded)."""
        self.native.flush_acks()
        await asyncio.sleep(0.05)  # clients learn what arrived (they re-send the rest)
        self.native.stop(reason)
        await asyncio.sleep(0.05)  # let the CONNECTION_CLOSE frames go out
        await asyncio.to_thread(self.native.close_socket, timeout)
        self._wakeup.close()
