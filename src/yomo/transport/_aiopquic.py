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

This module holds the connection and the protocol (a little over 400 lines, most
of them these notes: the two share the send ring and pause state, and split
apart each would need the other's internals); ``_aiopquic_setup.py`` listens
(with the engine brake) and dials. Library internals are reached through ``_compat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections import deque
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Protocol

from yomo.errors import TimeoutError, TransportError
from yomo.wire import Frame

from . import _compat as compat
from ._backends import configuration
from ._common import describe_code
from ._errors import ignore_quic_errors
from ._frame_connection import FrameConnection
from ._protocol import route_event
from .qlog import warn_unsupported
from .settings import CLOSE_CODE, QuicSettings

__all__ = [
    "NAME",
    "SERVER_BRAKE_SECONDS",
    "AiopquicConnection",
    "EngineBrake",
    "aiopquic_configuration",
    "load",
    "version",
]

log = logging.getLogger("yomo.transport")

NAME = "aiopquic"
#: Most bytes handed to picoquic's ring in one call; small frames are joined up to this.
_SEND_CHUNK = 256 * 1024
#: Seconds between checks of the send ring while a writer waits (backs up aiopquic's events).
_SEND_POLL = 0.005
#: At this many times ``recv_high_water`` unread bytes, a zipper stops taking events at all.
_SERVER_RECV_CAP_FACTOR = 4
#: Seconds a zipper's engine may stay stopped for one connection before that connection is closed.
SERVER_BRAKE_SECONDS = 2.0

_lib_cache: SimpleNamespace | None = None


def load() -> SimpleNamespace:
    """aiopquic's modules and our protocol class, imported on first use (optional package).

    Raises:
        TransportError: aiopquic is not installed.
    """
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
        _lib_cache = SimpleNamespace(
            version=version(),
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


def version() -> str:
    """The installed aiopquic's version (``"?"`` when its metadata is missing)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("aiopquic")
    except PackageNotFoundError:
        return "?"


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


def aiopquic_configuration(
    settings: QuicSettings, *, is_client: bool, server_name: str | None, family: int | None
) -> Any:
    """aiopquic's ``QuicConfiguration``: YoMo's, plus picoquic's keep-alive and ring size."""
    warn_unsupported("aiopquic backend")
    keep_alive = min(settings.keep_alive, settings.idle_timeout / 3)
    return configuration(
        load().configuration,
        settings,
        is_client=is_client,
        server_name=server_name,
        keep_alive_interval=keep_alive if keep_alive > 0 else None,
        max_datagram_frame_size=None,
        # the ring must take one coalesced write and a high-water mark's worth
        stream_ring_cap=_pow2(max(2 * settings.send_high_water, 2 * _SEND_CHUNK)),
        ip_family=family,
    )


class EngineBrake(Protocol):
    """Stops a zipper's shared engine while one connection is over its cap (the setup's)."""

    def engage(self, conn: AiopquicConnection) -> None:
        """Stop taking events for everyone until ``conn`` reads (bounded in time)."""

    def release(self, conn: AiopquicConnection) -> None:
        """``conn`` caught up or closed: take events again if no one else holds the brake."""


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
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._ring_bound = 0  # ring bytes at the last flush: the ring only shrinks until the next
        self._flush_handle: asyncio.Handle | None = None
        self._poll_handle: asyncio.TimerHandle | None = None
        self._address: tuple[str, int] | None = None
        self.braking: EngineBrake | None = None  # the zipper's engine is stopped for this one
        cap = _SERVER_RECV_CAP_FACTOR * settings.recv_high_water
        self._brake_cap = cap
        self._brake_release = cap - settings.recv_high_water // 2

    # -- information -------------------------------------------------------

    @property
    def remote_address(self) -> tuple[str, int]:
        """The peer's ``(host, port)``."""
        if self._address is None:
            addr = None
            with ignore_quic_errors():
                addr = self._quic.peer_address()
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
        with ignore_quic_errors():
            ring = int(self._quic.tx_data_ring_used(self._stream_id))
        return ring + self._pending_bytes

    # -- reading -----------------------------------------------------------

    async def read_frame(self) -> Frame:
        """The next frame from the peer (see ``FrameConnection.read_frame``)."""
        frame = await super().read_frame()
        if self.braking is not None and self.recv_backlog <= self._brake_release:
            self.braking.release(self)
        return frame

    # -- writing -----------------------------------------------------------

    def _send(self, stream_id: int, payload: bytes | bytearray | memoryview) -> None:
        """Queue ``payload`` here; ``_flush`` moves it into picoquic's ring once per turn."""
        if type(payload) is not bytes:
            payload = bytes(payload)
        size = len(payload)
        if size > _SEND_CHUNK:
            for start in range(0, size, _SEND_CHUNK):
                self._pending.append(payload[start : start + _SEND_CHUNK])
        else:
            self._pending.append(payload)
        self._pending_bytes += size
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)
        high = self.settings.send_high_water
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
        quic = self._quic
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

    def check_drained(self) -> None:
        """Move queued bytes on, and release waiting writers once the backlog is low."""
        if self._pending:
            self._flush()
        if self._drained.is_set() and not self._pending:
            return
        if self._closed.is_set():
            self._drained.set()
            return
        backlog = self.send_backlog
        if backlog <= self.settings.send_high_water // 2 and not self._drained.is_set():
            self._drained.set()
        if not self._drained.is_set() or self._pending:
            self._watch_send()

    def _watch_send(self) -> None:
        """Ask picoquic to report the next pull from the ring, and poll as a backup."""
        if self._stream_id is not None:
            with ignore_quic_errors():
                self._quic.set_tx_data_drain_pending(self._stream_id)
        if self._poll_handle is None and not self._closed.is_set():
            self._poll_handle = self._loop.call_later(_SEND_POLL, self._poll_send)

    def _poll_send(self) -> None:
        self._poll_handle = None
        self.check_drained()

    async def drain_all(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until everything written has left and nothing is in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.send_backlog > 0 and not self._closed.is_set():
            if loop.time() >= deadline:
                raise TimeoutError(f"{self.send_backlog} bytes still unsent after {timeout:g} s")
            self.check_drained()
            await asyncio.sleep(0.002)
        quic = self._quic
        while not self._closed.is_set() and loop.time() < deadline:
            quality: dict[str, Any] = {}
            with ignore_quic_errors():
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
        with ignore_quic_errors():
            self._quic.close(error_code=code)
        self.on_terminated(reason or "closed", remote=False)

    def on_terminated(self, reason: str, *, remote: bool) -> None:
        """The QUIC connection ended: also release the brake and drop queued bytes."""
        super().on_terminated(reason, remote=remote)
        if self.braking is not None:
            self.braking.release(self)
        self._pending.clear()
        self._pending_bytes = 0
        for handle in (self._flush_handle, self._poll_handle):
            if handle is not None:
                handle.cancel()
        self._flush_handle = self._poll_handle = None


def _make_protocol_class(lib: SimpleNamespace) -> type[Any]:
    """aiopquic's ``QuicConnectionProtocol`` subclass that feeds an ``AiopquicConnection``."""
    events = lib.events
    ConnectionTerminated = events.ConnectionTerminated
    HandshakeCompleted = events.HandshakeCompleted

    class _AiopquicProtocol(lib.base_protocol):  # type: ignore[name-defined,misc]
        def __init__(self, quic: Any, stream_handler: Any = None) -> None:
            super().__init__(quic, stream_handler=stream_handler)
            self.conn: AiopquicConnection | None = None
            self.quic = compat.quic_of(self)
            self.paused = False
            self.brake: EngineBrake | None = None  # set on a zipper's connections
            self.on_handshake: Callable[[Any], None] | None = None

        def _process_events(self) -> None:
            # aiopquic's own loop, with a stop while reading is paused: events
            # left in the connection's queue wait, and (for a dialled
            # connection) picoquic's ring keeps the rest and holds the peer.
            quic = self.quic
            while not self.paused:
                event = quic.next_event()
                if event is None:
                    break
                if isinstance(event, HandshakeCompleted):
                    compat.aiopquic_handshake_done(self)
                elif isinstance(event, ConnectionTerminated):
                    exc = None
                    if not compat.aiopquic_connected(quic):
                        detail = describe_code(event.error_code)
                        exc = ConnectionError(f"connection terminated during handshake ({detail})")
                    compat.aiopquic_handshake_failed(self, exc)
                try:
                    self.quic_event_received(event)
                # Isolation, as aiopquic's own loop does: a bug handling one event is
                # logged and the connection's other events still get handled.
                except Exception:
                    log.exception("aiopquic event %s failed", type(event).__name__)
            conn = self.conn
            if conn is not None and (conn._pending or not conn.has_room):
                conn.check_drained()

        def quic_event_received(self, event: Any) -> None:
            conn = self.conn
            if conn is not None and isinstance(event, HandshakeCompleted):
                _ = conn.remote_address  # cache it while the connection is known
            route_event(self, event, events)

        # -- flow control on the receive side --

        def pause_reading(self) -> None:
            """Stop taking events (dialled), or brake the zipper's shared engine."""
            conn = self.conn
            if compat.aiopquic_engine(self.quic) is not None:  # zipper: see module notes
                brake = self.brake
                if (
                    brake is not None
                    and conn is not None
                    and conn.braking is None
                    and conn.recv_backlog > conn._brake_cap
                    and not conn.closed
                ):
                    brake.engage(conn)
                return
            if not self.paused:
                self.paused = True
                fd = self.quic.eventfd
                loop = compat.loop_of(self)
                if fd >= 0 and loop is not None:
                    with contextlib.suppress(ValueError, OSError):  # fd already closed
                        loop.remove_reader(fd)

        def resume_reading(self) -> None:
            """Take events again (the reader caught up)."""
            if not self.paused:
                return
            self.paused = False
            fd = self.quic.eventfd
            loop = compat.loop_of(self)
            if fd >= 0 and loop is not None and not compat.protocol_closed(self):
                loop.add_reader(fd, compat.aiopquic_eventfd_reader(self))
            self._process_events()

    return _AiopquicProtocol
