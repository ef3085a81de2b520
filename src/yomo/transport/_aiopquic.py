"""The optional aiopquic (picoquic) QUIC backend behind the same ``FrameConnection`` API.

Why: picoquic moves packets on its own C thread, several times faster than qh3.
It needs Python 3.12+ and Linux glibc or macOS arm64 wheels (``pip install
'pyyomo[fast]'``), so it is only used when chosen: ``YOMO_QUIC_BACKEND=aiopquic``
or ``QuicSettings(backend="aiopquic")``.

How it differs from qh3, and what this module does about it:

* sending: stream bytes go into a per-stream ring that picoquic's thread
  pulls from; a full ring raises ``BufferError``. Frames queue here, are
  coalesced once per event-loop turn, and go into the ring as it empties
  (aiopquic signals a drained ring through its event queue; a short timer
  backs that up). ``send_backlog`` is ring bytes plus queued bytes.
* receiving: picoquic grants the peer flow-control credit as Python takes
  bytes out of its ring. A dialled connection owns its picoquic thread, so
  pausing means not taking events: the peer is held by real flow control.
  The zipper's connections share one engine whose events are taken for all
  of them at once, so one connection cannot be paused alone. A zipper
  connection's unread frames may therefore pass ``recv_high_water``; at
  ``_SERVER_RECV_CAP_FACTOR`` x ``recv_high_water`` the whole engine stops
  taking events (every connection waits, held by flow control) until the
  reader is half a high-water mark below the cap. If it is still above after
  ``_SERVER_BRAKE_SECONDS`` (a reader stuck, or waiting on a peer that itself
  waits on the engine), that connection is closed with a reason and the
  engine goes on.
* closing: picoquic sends only the error code (0x13), never a reason phrase,
  and reports only the code, so ``close_reason`` of a connection closed by
  its peer is "closed by peer".
* picoquic answers keep-alives and acknowledgements on its own thread, so
  the connection needs no ping task; ``keep_alive_interval`` is set instead.
* a server binds every address of the family (the host only picks IPv4 or
  IPv6), and cannot ask a client for a certificate (no mutual TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import logging
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from yomo.errors import ConnectError, ConnectionClosedError, TimeoutError, TransportError
from yomo.wire import Frame

from .qlog import warn_unsupported
from .quic import ALPN, CLOSE_CODE, FrameConnection, Listener, QuicSettings, _describe_code
from .tls import TlsConfig

__all__ = ["NAME", "AiopquicConnection", "dial", "listen"]

log = logging.getLogger("yomo.transport")

NAME = "aiopquic"
#: Most bytes handed to picoquic's ring in one call; small frames are joined up to this.
_SEND_CHUNK = 256 * 1024
#: Seconds between checks of the send ring while a writer waits (backs up aiopquic's events).
_SEND_POLL = 0.005
#: At this many times ``recv_high_water`` unread bytes, a zipper stops taking events at all.
_SERVER_RECV_CAP_FACTOR = 4
#: Seconds a zipper's engine may stay stopped for one connection before that connection is closed.
_SERVER_BRAKE_SECONDS = 2.0

_lib_cache: SimpleNamespace | None = None


def _lib() -> SimpleNamespace:
    """aiopquic's modules, imported on first use (the package is optional)."""
    global _lib_cache
    if _lib_cache is None:
        try:
            aio = importlib.import_module("aiopquic.asyncio")
            config = importlib.import_module("aiopquic.quic.configuration")
            events = importlib.import_module("aiopquic.quic.events")
        except ImportError as exc:
            raise TransportError(
                "QUIC backend 'aiopquic' is not installed (it needs Python 3.12+; "
                f"pip install 'pyyomo[fast]'): {exc}"
            ) from exc
        try:
            from importlib.metadata import version

            ver = version("aiopquic")
        except Exception:  # pragma: no cover - metadata missing
            ver = "?"
        _lib_cache = SimpleNamespace(
            version=ver,
            connect=aio.connect,
            serve=aio.serve,
            base_protocol=aio.QuicConnectionProtocol,
            configuration=config.QuicConfiguration,
            events=events,
            protocol_class=None,
        )
        _lib_cache.protocol_class = _make_protocol_class(_lib_cache)
        logging.getLogger("aiopquic.quic.connection").addFilter(_quiet_yomo_closes)
    return _lib_cache


def _quiet_yomo_closes(record: logging.LogRecord) -> bool:
    """Drop aiopquic's warning for a close with YoMo's own code: every YoMo close has it."""
    args = record.args
    return not (
        record.msg == "connection closed (%s): error=%d"
        and isinstance(args, tuple)
        and len(args) == 2
        and args[1] == CLOSE_CODE
    )


def _pow2(n: int) -> int:
    return 1 << max(n - 1, 1).bit_length()


def _configuration(
    settings: QuicSettings, *, is_client: bool, server_name: str | None, family: int | None
) -> Any:
    warn_unsupported("aiopquic backend")
    idle = settings.idle_timeout
    keep_alive = min(settings.keep_alive, idle / 3)
    config = _lib().configuration(
        is_client=is_client,
        alpn_protocols=[ALPN],
        idle_timeout=idle,
        keep_alive_interval=keep_alive if keep_alive > 0 else None,
        max_data=settings.max_data,
        max_stream_data=settings.max_stream_data,
        max_datagram_frame_size=None,
        # the ring must take one coalesced write and a high-water mark's worth
        stream_ring_cap=_pow2(max(2 * settings.send_high_water, 2 * _SEND_CHUNK)),
        ip_family=family,
    )
    if server_name is not None:
        config.server_name = server_name
    return config


class AiopquicConnection(FrameConnection):
    """``FrameConnection`` over aiopquic: sends through picoquic's ring (see module notes)."""

    # picoquic tells neither what the peer acknowledged nor when it last sent a packet,
    # so this is not a ``TrackedConnection`` (a None member opts a class out of a
    # runtime-checkable protocol): the client core and the zipper then rely on the QUIC
    # idle timeout, as on the native path.
    unacknowledged = None  # type: ignore[assignment]
    silent_for = None  # type: ignore[assignment]

    def __init__(self, protocol: Any, settings: QuicSettings, *, is_client: bool) -> None:
        super().__init__(protocol, settings, is_client=is_client)
        self._loop = asyncio.get_running_loop()
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._ring_bound = 0  # ring bytes at the last flush: the ring only shrinks until the next
        self._flush_handle: asyncio.Handle | None = None
        self._poll_handle: asyncio.TimerHandle | None = None
        self._address: tuple[str, int] | None = None
        self._braking: _Brake | None = None  # the zipper's engine is stopped for this one
        cap = _SERVER_RECV_CAP_FACTOR * settings.recv_high_water
        self._brake_cap = cap
        self._brake_release = cap - settings.recv_high_water // 2

    # -- information -------------------------------------------------------

    @property
    def remote_address(self) -> tuple[str, int]:
        """The peer's ``(host, port)``."""
        if self._address is None:
            addr = None
            with contextlib.suppress(Exception):
                addr = self._protocol._quic.peer_address()
            if not addr:
                return ("", 0)
            self._address = (str(addr[0]), int(addr[1]))
        return self._address

    @property
    def send_backlog(self) -> int:
        """Bytes queued here or in picoquic's ring that are not on the wire yet."""
        if self._stream_id is None:
            return self._pending_bytes
        ring = 0
        with contextlib.suppress(Exception):
            ring = int(self._protocol._quic.tx_data_ring_used(self._stream_id))
        return ring + self._pending_bytes

    # -- reading -----------------------------------------------------------

    async def read_frame(self) -> Frame:
        """The next frame from the peer (see ``FrameConnection.read_frame``)."""
        frame = await super().read_frame()
        if self._braking is not None and self._frames_bytes <= self._brake_release:
            self._braking.release(self)
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
        if type(payload) is not bytes:
            payload = bytes(payload)
        if self._stream_id is None:
            if not self._is_client:
                raise ConnectionClosedError("the peer has not opened a stream yet")
            self._stream_id = self._protocol._quic.get_next_available_stream_id()
        size = len(payload)
        if size > _SEND_CHUNK:
            for start in range(0, size, _SEND_CHUNK):
                self._pending.append(payload[start : start + _SEND_CHUNK])
        else:
            self._pending.append(payload)
        self._pending_bytes += size
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)
        high = self._settings.send_high_water
        if (
            self._drained.is_set()
            and self._pending_bytes + self._ring_bound > high
            and self.send_backlog > high
        ):
            self._drained.clear()
            self._watch_send()

    def _flush(self) -> None:
        """Move queued bytes into picoquic's ring, as many as fit; coalesce small frames."""
        self._flush_handle = None
        pending = self._pending
        if not pending or self._stream_id is None:
            return
        quic = self._protocol._quic
        if quic.closed:
            return
        sid = self._stream_id
        while pending:
            if len(pending) > 1 and len(pending[0]) + len(pending[1]) <= _SEND_CHUNK:
                parts = [pending.popleft()]
                size = len(parts[0])
                while pending and size + len(pending[0]) <= _SEND_CHUNK:
                    part = pending.popleft()
                    parts.append(part)
                    size += len(part)
                pending.appendleft(b"".join(parts))
            chunk = pending[0]
            try:
                quic.send_stream_data(sid, chunk)
            except BufferError:  # ring (or picoquic's event ring) full: retry when it drains
                self._watch_send()
                break
            pending.popleft()
            self._pending_bytes -= len(chunk)
        self._ring_bound = int(quic.tx_data_ring_used(sid))

    def _check_drained(self) -> None:
        if self._pending:
            self._flush()
        if self._drained.is_set() and not self._pending:
            return
        if self._closed.is_set():
            self._drained.set()
            return
        backlog = self.send_backlog
        if backlog <= self._settings.send_high_water // 2 and not self._drained.is_set():
            self._drained.set()
        if not self._drained.is_set() or self._pending:
            self._watch_send()

    def _watch_send(self) -> None:
        """Ask picoquic to report the next pull from the ring, and poll as a backup."""
        if self._stream_id is not None:
            with contextlib.suppress(Exception):
                self._protocol._quic.set_tx_data_drain_pending(self._stream_id)
        if self._poll_handle is None and not self._closed.is_set():
            self._poll_handle = self._loop.call_later(_SEND_POLL, self._poll_send)

    def _poll_send(self) -> None:
        self._poll_handle = None
        self._check_drained()

    async def drain_all(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until everything written has left and nothing is in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.send_backlog > 0 and not self._closed.is_set():
            if loop.time() >= deadline:
                raise TimeoutError(f"{self.send_backlog} bytes still unsent after {timeout:g} s")
            self._check_drained()
            await asyncio.sleep(0.002)
        quic = self._protocol._quic
        while not self._closed.is_set() and loop.time() < deadline:
            quality: dict[str, Any] = {}
            with contextlib.suppress(Exception):
                quality = quic.path_quality()
            if quality and not quality.get("bytes_in_transit"):
                return
            await asyncio.sleep(0.002)

    # -- closing -----------------------------------------------------------

    def close(self, reason: str = "", code: int = CLOSE_CODE) -> None:
        """Close with YoMo's error code (picoquic sends no reason phrase; idempotent)."""
        if self._closed.is_set():
            return
        self.close_reason = reason or "closed"
        if self._pending:
            self._flush()
        with contextlib.suppress(Exception):
            self._protocol._quic.close(error_code=code)
        self._on_terminated(reason or "closed", remote=False)

    def _on_terminated(self, reason: str, *, remote: bool) -> None:
        super()._on_terminated(reason, remote=remote)
        if self._braking is not None:
            self._braking.release(self)
        self._pending.clear()
        self._pending_bytes = 0
        for handle in (self._flush_handle, self._poll_handle):
            if handle is not None:
                handle.cancel()
        self._flush_handle = self._poll_handle = None


def _make_protocol_class(lib: SimpleNamespace) -> type[Any]:
    events = lib.events
    StreamDataReceived = events.StreamDataReceived
    ConnectionTerminated = events.ConnectionTerminated
    HandshakeCompleted = events.HandshakeCompleted

    class _AiopquicProtocol(lib.base_protocol):  # type: ignore[name-defined,misc]
        def __init__(self, quic: Any, stream_handler: Any = None) -> None:
            super().__init__(quic, stream_handler=stream_handler)
            self.conn: AiopquicConnection | None = None
            self._paused = False
            self._brake: _Brake | None = None  # set on a zipper's connections
            self._on_handshake: Callable[[Any], None] | None = None
            self._handshake_done = asyncio.Event()

        def _process_events(self) -> None:
            # aiopquic's own loop, with a stop while reading is paused: events
            # left in the connection's queue wait, and (for a dialled
            # connection) picoquic's ring keeps the rest and holds the peer.
            quic = self._quic
            while not self._paused:
                event = quic.next_event()
                if event is None:
                    break
                if isinstance(event, HandshakeCompleted):
                    waiter = self._connected_waiter
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                elif isinstance(event, ConnectionTerminated):
                    self._closed.set()
                    if not quic._connected:
                        exc = ConnectionError(
                            f"connection terminated during handshake ({_describe_code(event.error_code)})"
                        )
                        self._handshake_error = exc
                        waiter = self._connected_waiter
                        if waiter is not None and not waiter.done():
                            waiter.set_exception(exc)
                try:
                    self.quic_event_received(event)
                except Exception:
                    log.exception("aiopquic event %s failed", type(event).__name__)
            conn = self.conn
            if conn is not None and (conn._pending or not conn._drained.is_set()):
                conn._check_drained()

        def quic_event_received(self, event: Any) -> None:
            conn = self.conn
            if isinstance(event, StreamDataReceived):
                if conn is not None:
                    conn._on_stream_data(event.stream_id, event.data, event.end_stream)
            elif isinstance(event, HandshakeCompleted):
                self._handshake_done.set()
                if conn is not None:
                    _ = conn.remote_address  # cache it while the connection is known
                if self._on_handshake is not None:
                    self._on_handshake(self)
            elif isinstance(event, ConnectionTerminated):
                if conn is not None:
                    conn._on_terminated(_describe_code(event.error_code), remote=True)
                self._handshake_done.set()

        # -- flow control on the receive side --

        def _pause_reading(self) -> None:
            conn = self.conn
            if self._quic._engine is not None:  # zipper side: shared engine, see module notes
                brake = self._brake
                if (
                    brake is not None
                    and conn is not None
                    and conn._braking is None
                    and conn._frames_bytes > conn._brake_cap
                    and not conn.closed
                ):
                    brake.engage(conn)
                return
            if not self._paused:
                self._paused = True
                fd = self._quic.eventfd
                if fd >= 0 and self._loop is not None:
                    with contextlib.suppress(Exception):
                        self._loop.remove_reader(fd)

        def _resume_reading(self) -> None:
            if not self._paused:
                return
            self._paused = False
            fd = self._quic.eventfd
            if fd >= 0 and self._loop is not None and not self._closed.is_set():
                self._loop.add_reader(fd, self._on_eventfd)
            self._process_events()

    return _AiopquicProtocol


# --- server -----------------------------------------------------------------


class _Brake:
    """Stops a zipper's engine from taking events while a connection is over its cap."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.server: Any = None  # aiopquic's QuicServer, once listening
        self.closed = False
        self._held: dict[AiopquicConnection, asyncio.TimerHandle] = {}
        self._stopped = False

    def engage(self, conn: AiopquicConnection) -> None:
        conn._braking = self
        self._held[conn] = self._loop.call_later(_SERVER_BRAKE_SECONDS, self._expire, conn)
        engine = getattr(self.server, "_engine", None)
        if not self._stopped and engine is not None and not self.closed:
            self._stopped = True
            with contextlib.suppress(Exception):
                self._loop.remove_reader(engine.eventfd)

    def release(self, conn: AiopquicConnection) -> None:
        conn._braking = None
        timer = self._held.pop(conn, None)
        if timer is not None:
            timer.cancel()
        if self._stopped and not self._held:
            self._stopped = False
            engine = getattr(self.server, "_engine", None)
            if engine is not None and not self.closed and engine.eventfd >= 0:
                self._loop.add_reader(engine.eventfd, self._drain)
                self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        # aiopquic's own reader, except that nothing is taken while stopped
        engine = getattr(self.server, "_engine", None)
        if not self._stopped and not self.closed and engine is not None:
            engine.drain_and_route()

    def _expire(self, conn: AiopquicConnection) -> None:
        self._held.pop(conn, None)
        conn._abort(
            f"stopped reading with {conn.recv_backlog} bytes unread for "
            f"{_SERVER_BRAKE_SECONDS:g} s; the aiopquic backend cannot hold back one "
            "client of a zipper alone"
        )  # _on_terminated releases the brake

    def close(self) -> None:
        self.closed = True
        for timer in self._held.values():
            timer.cancel()
        self._held.clear()
        if self.server is not None:
            self.server.close()


class _Server:
    """What ``Listener`` closes: the brake, then aiopquic's server."""

    def __init__(self, brake: _Brake) -> None:
        self._brake = brake

    def close(self) -> None:
        self._brake.close()


def _family(host: str) -> int | None:
    if host in ("", "::"):
        return None
    if host == "localhost":
        return socket.AF_INET
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


def _free_port(family: int | None) -> int:
    fam = socket.AF_INET6 if family == socket.AF_INET6 else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as sock:
        sock.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
        return int(sock.getsockname()[1])


async def listen(
    host: str,
    port: int,
    on_connection: Callable[[FrameConnection], Awaitable[None]],
    *,
    tls: TlsConfig,
    settings: QuicSettings,
    cert_file: str,
    key_file: str,
) -> Listener:
    """Listen for YoMo clients with aiopquic (``quic.listen`` has the contract)."""
    if tls.verify_peer:
        raise TransportError(
            "mutual TLS on the zipper needs the aioquic backend (aiopquic cannot "
            "request client certificates)"
        )
    lib = _lib()
    family = _family(host)
    config = _configuration(settings, is_client=False, server_name=None, family=family)
    config.load_cert_chain(cert_file, key_file)
    config.max_connections = settings.max_connections  # aiopquic's own default is 256
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    brake = _Brake(loop)

    async def run(conn: FrameConnection) -> None:
        try:
            await on_connection(conn)
        except Exception:  # the handler's own bugs must not kill the listener
            log.exception("connection handler failed")
        finally:
            conn.close()

    def handshake_done(protocol: Any) -> None:
        conn = protocol.conn
        if conn is None or conn.closed:
            return
        task = loop.create_task(run(conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def create_protocol(quic: Any, stream_handler: Any = None) -> Any:
        protocol = lib.protocol_class(quic, stream_handler=stream_handler)
        protocol.conn = AiopquicConnection(protocol, settings, is_client=False)
        protocol._on_handshake = handshake_done
        protocol._brake = brake
        return protocol

    attempts = 5 if port == 0 else 1
    for attempt in range(attempts):
        bind_port = port or _free_port(family)
        try:
            server = await lib.serve(
                host, bind_port, configuration=config, create_protocol=create_protocol
            )
        except (OSError, RuntimeError) as exc:
            if attempt + 1 < attempts:
                continue
            raise TransportError(f"cannot listen on {host}:{bind_port}: {exc}") from exc
        break
    if host not in ("", "0.0.0.0", "::"):
        log.info(
            "aiopquic listens on every %s address, not only %s",
            "IPv6" if family == socket.AF_INET6 else "IPv4",
            host,
        )
    brake.server = server
    return Listener(_Server(brake), (host, bind_port), tls.mode, f"{NAME} {lib.version}")


# --- client -----------------------------------------------------------------


async def dial(host: str, port: int, *, tls: TlsConfig, settings: QuicSettings) -> FrameConnection:
    """Connect to a zipper with aiopquic (``quic.dial`` has the contract)."""
    lib = _lib()
    config = _configuration(settings, is_client=True, server_name=host, family=None)
    if tls.cert_file and tls.key_file:
        config.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.verify_peer:
        config.verify_mode = ssl.CERT_REQUIRED
        config.cafile = tls.ca_file
    else:
        config.verify_mode = ssl.CERT_NONE

    def create_protocol(quic: Any, stream_handler: Any = None) -> Any:
        protocol = lib.protocol_class(quic, stream_handler=stream_handler)
        protocol.conn = AiopquicConnection(protocol, settings, is_client=True)
        return protocol

    stack = contextlib.AsyncExitStack()
    try:
        protocol = await asyncio.wait_for(
            stack.enter_async_context(
                lib.connect(host, port, configuration=config, create_protocol=create_protocol)
            ),
            settings.handshake_timeout,
        )
    except asyncio.TimeoutError as exc:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(stack.aclose(), 1.0)
        raise ConnectError(
            f"cannot connect to zipper {host}:{port}: no QUIC handshake within "
            f"{settings.handshake_timeout:g} s"
        ) from exc
    except (ConnectionError, OSError, RuntimeError) as exc:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(stack.aclose(), 1.0)
        raise ConnectError(f"cannot connect to zipper {host}:{port}: {exc}") from exc
    conn: AiopquicConnection = protocol.conn
    conn._exit_stack = stack
    return conn
