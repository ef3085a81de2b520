"""The zipper: accepts sources and stream functions, authenticates them, routes frames.

Go: core/server.go. Each connection gets a task that reads its frames; a
DataFrame is routed to every stream function observing its tag (and wanted
target), then handed to the mesh forwarders unless it came from a mesh peer.

Slow consumers: with the default ``"block"`` policy nothing is dropped; a
producer whose frame went to a function that is not reading waits until that
function drains (QUIC flow control slows it in turn), while producers and
functions not involved keep flowing. With ``"drop"`` a frame for a function
whose unsent backlog is over ``drop_threshold`` is dropped, counted and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

from yomo.ai import FUNCTION_CALL_TAG, FunctionCallError, FunctionDefinition
from yomo.errors import (
    ConfigError,
    ConnectionClosedError,
    ConnectToError,
    ProtocolError,
    RejectedError,
    RemoteProtocolError,
    StateError,
    TimeoutError,
)
from yomo.session.handshake import DEFAULT_HANDSHAKE_TIMEOUT, ZipperHandshake
from yomo.transport import (
    DEFAULT_ZIPPER_SETTINGS,
    Listener,
    QuicSettings,
    TlsConfig,
    listen,
)
from yomo.transport.connection import Connection
from yomo.transport.native import NativeServer
from yomo.transport.settings import wants_native
from yomo.wire import (
    RESERVED_TAG_MAX,
    RESERVED_TAG_MIN,
    ClientType,
    ConnectToFrame,
    DataFrame,
    Frame,
    GoawayFrame,
    HandshakeAckFrame,
    HandshakeFrame,
    RejectedFrame,
    decode_frame,
    decode_metadata,
    encode_data_frame,
    encode_metadata,
)
from yomo.wire import metadata as md_keys

from .auth import (
    DEFAULT_AUTH_FAILURES_PER_SECOND,
    AuthBrake,
    Authenticator,
    AuthFailed,
    authenticate,
    authenticator_for,
)
from .config import MeshPeer, ZipperConfig
from .functions import (
    MESH_ANNOUNCE_INTERVAL,
    MESH_FUNCTIONS_TAG,
    DuplicateFunctionError,
    FunctionRegistry,
    encode_announcement,
)
from .hooks import (
    ConnectionHandler,
    ConnectionMiddleware,
    ConnectionRegistry,
    Connector,
    FrameContext,
    FrameHandler,
    FrameMiddleware,
    MetadataRouter,
    VersionNegotiator,
    check_version,
    compose,
    default_version_negotiator,
)
from .memory import FrameListener
from .mesh import Mesh
from .router import Router, TagRouter
from .stats import (
    DEFAULT_MAX_TAG_STATS,
    ConnectionInfo,
    StatsWatcher,
    TagCounters,
    ZipperStats,
)

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "RESERVED_TAG_MESSAGE",
    "ConnectionInfo",
    "SlowConsumerPolicy",
    "Zipper",
    "ZipperState",
]

#: Go v1.22.3 closes a connection that writes a reserved tag with this text
#: (Go: core/frame/frame.go ErrReservedTag, core/server.go RejectReservedTagMiddleware).
RESERVED_TAG_MESSAGE = "[0xF000, 0xFFFF] is reserved; please do not write within this range"
#: Characters of a client-chosen string (name, version, auth name) a log line shows.
LOG_TEXT_LIMIT = 128
#: Observed tags a log line lists before it only counts the rest.
LOG_TAGS_LIMIT = 16
#: A connection that frames wait for and that has been silent this long is closed.
DEFAULT_DEAD_AFTER = 1.0
#: Seconds between checks of a connection a producer waits for.
DEAD_CHECK_INTERVAL = 0.25
DEFAULT_DROP_THRESHOLD = 8 * 1024 * 1024
SlowConsumerPolicy = Literal["block", "drop"]
ZipperState = Literal["new", "starting", "serving", "stopping", "stopped"]
StatsSection = Callable[[], dict[str, Any]]
Forwarder = Callable[[int, bytes, bytes], None]
"""Called with (tag, metadata bytes, encoded frame) for every frame that is not from a mesh peer."""

_CLIENT_TYPE_NAMES = {
    ClientType.SOURCE: "Source",
    ClientType.UPSTREAM_ZIPPER: "UpstreamZipper",
    ClientType.STREAM_FUNCTION: "StreamFunction",
}


_TAG_FIELDS = ("frames_in", "bytes_in", "frames_out", "bytes_out", "unobserved", "dropped")


def _clip(text: str, limit: int = LOG_TEXT_LIMIT) -> str:
    """A client-chosen string for a log line: at most ``limit`` characters, and says how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text)} chars)"


def _tags_for_log(tags: Sequence[int]) -> str:
    shown = ", ".join(f"0x{t:x}" for t in tags[:LOG_TAGS_LIMIT])
    more = len(tags) - LOG_TAGS_LIMIT
    return f"{shown}, ... ({len(tags)} tags)" if more > 0 else shown


def _type_name(client_type: int) -> str:
    name = _CLIENT_TYPE_NAMES.get(client_type)  # type: ignore[call-overload]
    return str(name) if name is not None else f"Unknown(0x{client_type:02x})"


class _NativeClient:
    """The handle of a client connection on the native data path, as the zipper's policy
    sees it (what a FrameConnection is on the pure-Python path)."""

    def __init__(self, server: NativeServer, number: int, address: tuple[str, int]) -> None:
        self.server = server
        self.number = number
        self.remote_address = address
        self.close_reason: str | None = None

    def send_nowait(self, frame: Frame) -> None:
        if not self.server.native.send_to(self.number, frame.encode()):
            raise ConnectionClosedError("connection closed")

    def close(self, reason: str = "", _tries: int = 40) -> None:
        self.server.native.close_connection(self.number, reason)
        # The native side registers an accepted connection a moment after accept(); a close
        # before that is lost, so repeat it until the "closed" event has come (2 s at most).
        if _tries and self.close_reason is None:
            asyncio.get_running_loop().call_later(0.05, self.close, reason, _tries - 1)


_Refusal = tuple[str, "HandshakeFrame | None", str, "str | None"]
"""Why a handshake is refused: (message to the client, its frame, reason counted, what
the log says instead of the message, or None for the message itself, "" for nothing)."""

_AnyConnection = Any
"""A FrameConnection (pure-Python path) or a _NativeClient (native path)."""


class _Client:
    """A registered client of this zipper (a source, a stream function or an upstream
    zipper's mesh link): identity from its handshake and its counters. Not a mesh peer,
    which is a zipper this one dials (``yomo.zipper.mesh``)."""

    __slots__ = (
        "client_id",
        "client_type",
        "closed_by_zipper",
        "conn",
        "connected_at",
        "dropped",
        "ended",
        "frames_in",
        "frames_out",
        "last_drop_log",
        "merge",
        "name",
        "number",
        "tags",
        "wanted_target",
    )

    def __init__(
        self, number: int, hf: HandshakeFrame, merge: dict[str, str], conn: _AnyConnection
    ) -> None:
        self.number = number
        self.name = hf.name
        self.client_id = hf.id
        self.client_type = hf.client_type
        self.tags = tuple(hf.observe_data_tags)
        self.wanted_target = hf.wanted_target
        self.merge = merge
        self.conn = conn
        self.connected_at = time.time()
        self.frames_in = 0
        self.frames_out = 0
        self.dropped = 0
        self.last_drop_log = 0.0
        self.ended: asyncio.Event | None = None  # native path, with connection middleware
        self.closed_by_zipper = False  # close() was called (its reason is the one sent)

    # what hooks see of it (yomo.zipper.hooks.ClientConnection)

    @property
    def observe_data_tags(self) -> tuple[int, ...]:
        return self.tags

    @property
    def metadata(self) -> Mapping[str, str]:
        return MappingProxyType(self.merge)

    @property
    def remote_address(self) -> tuple[str, int]:
        address: tuple[str, int] = self.conn.remote_address
        return address

    def close(self, reason: str) -> None:
        self.closed_by_zipper = True
        self.conn.close(reason)

    def describe(self) -> str:
        return (
            f"{_type_name(self.client_type)} {_clip(self.name)!r} "
            f"(id {_clip(self.client_id)}, #{self.number})"
        )


class Zipper:
    """A YoMo zipper on asyncio. ``yomo.Zipper`` is the same in synchronous form.

    Args:
        name: the zipper's name (used in logs and as its mesh identity).
        host, port: where to listen; port 0 picks a free port (see ``address``).
        authenticators: credential checkers; none lets everyone in.
        tls: certificates; defaults to the ``YOMO_TLS_*`` variables.
        quic: QUIC settings; defaults to Go's zipper values.
        slow_consumer: ``"block"`` (lossless, default) or ``"drop"``.
        drop_threshold: with ``"drop"``, the unsent bytes after which frames are dropped.
        handshake_timeout: seconds a new connection has to send its HandshakeFrame.
        auth_failures_per_second: per source address, failed credential checks allowed a
            second (10); past it handshakes from that address are refused unchecked. 0: off.
        dead_after: a function that producers wait for (``"block"``) and that has not
            answered for this long (1 s) is closed, so a dead process holds nobody.
        mesh: peers to forward to (see ``yomo.zipper.mesh``).
        mesh_options: keyword arguments for ``yomo.zipper.mesh.Mesh`` (queue bound, backoff).
        router: a replacement router: a ``yomo.zipper.router.Router`` (tag and target) or a
            ``yomo.zipper.hooks.MetadataRouter`` (the whole metadata: Go's ``Route(tag, md)``).
        connection_middleware, frame_middleware, version_negotiator, connector, listeners:
            the extension points of ``yomo.zipper.hooks`` (Go's ``WithConnMiddleware``,
            ``WithFrameMiddleware``, ``WithVersionNegotiateFunc``, ``WithConnector``,
            ``WithFrameListener``). A custom router, frame middleware or a listener puts the
            zipper on the pure-Python data path (Python sees every frame).
        bridge: a ``yomo.zipper.bridge_config.BridgeConfig``: serve the AI bridge and/or
            the MCP server; they connect to this zipper as clients.
        bridge_credential: what those clients present, e.g. ``"token:<token>"``.
        logger: defaults to ``logging.getLogger("yomo.zipper")``.
        stats_interval: seconds between two INFO summary lines (connections, frames/s,
            drops); 0 turns them off. Unobserved-tag warnings are logged either way.
        monitor: ``"HOST:PORT"`` or ``(host, port)`` of the HTTP monitor endpoint
            (``/healthz``, ``/metrics``, ``/api/*``, a live page; see docs/monitor.md).
        max_tag_stats: distinct tags counted one by one in ``stats()``; later tags are
            added up under ``other_tags``.
    """

    def __init__(
        self,
        name: str = "zipper",
        host: str = "127.0.0.1",
        port: int = 9000,
        *,
        authenticators: Sequence[Authenticator] = (),
        tls: TlsConfig | None = None,
        quic: QuicSettings | None = None,
        slow_consumer: SlowConsumerPolicy = "block",
        drop_threshold: int = DEFAULT_DROP_THRESHOLD,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        auth_failures_per_second: float = DEFAULT_AUTH_FAILURES_PER_SECOND,
        dead_after: float = DEFAULT_DEAD_AFTER,
        mesh: Iterable[MeshPeer] = (),
        mesh_options: Mapping[str, Any] | None = None,
        router: Router[_Client] | MetadataRouter | None = None,
        connection_middleware: Sequence[ConnectionMiddleware] = (),
        frame_middleware: Sequence[FrameMiddleware] = (),
        version_negotiator: VersionNegotiator | None = None,
        connector: Connector | None = None,
        listeners: Sequence[FrameListener] = (),
        logger: logging.Logger | None = None,
        stats_interval: float = 30.0,
        bridge: Any = None,
        bridge_credential: str = "",
        monitor: str | tuple[str, int] | None = None,
        max_tag_stats: int = DEFAULT_MAX_TAG_STATS,
    ) -> None:
        if slow_consumer not in ("block", "drop"):
            raise ConfigError(f"slow_consumer: expected 'block' or 'drop', got {slow_consumer!r}")
        if not 0 <= port <= 65535:
            raise ConfigError(f"port: expected 0..65535, got {port}")
        if max_tag_stats < 0:
            raise ConfigError(f"max_tag_stats: expected 0 or more, got {max_tag_stats}")
        if isinstance(monitor, str):
            from yomo._asgi import parse_http_address

            monitor = parse_http_address(monitor, what="monitor")
        self.name = name
        self.host = host
        self.port = port
        self.authenticators = tuple(authenticators)
        self.tls = tls
        self.quic = quic or DEFAULT_ZIPPER_SETTINGS
        self.slow_consumer: SlowConsumerPolicy = slow_consumer
        self.drop_threshold = drop_threshold
        self.handshake_timeout = handshake_timeout
        self._auth_brake = AuthBrake(auth_failures_per_second)
        self.dead_after = dead_after
        self._last_throttle_log = 0.0
        self._throttled_since_log = 0
        self.mesh_peers = tuple(mesh)
        self.mesh_options = dict(mesh_options or {})
        self.log = logger or logging.getLogger("yomo.zipper")
        self.stats_interval = stats_interval
        self.monitor_address: tuple[str, int] | None = monitor
        """Where the monitor listens: as asked before ``start``, the bound address after."""
        self.state: ZipperState = "new"
        self._metadata_router: MetadataRouter | None = None
        self._router: Router[_Client] = TagRouter()
        if isinstance(router, MetadataRouter):
            self._metadata_router = router
        elif router is not None:
            self._router = router
        self._connector: Connector = connector if connector is not None else ConnectionRegistry()
        self._negotiate = version_negotiator or default_version_negotiator
        self._connection_middleware = tuple(connection_middleware)
        self._frame_middleware = tuple(frame_middleware)
        route: FrameHandler = self._route_context
        self._frame_handler = compose(route, self._frame_middleware)
        self._listeners = tuple(listeners)
        self.python_frames = router is not None or bool(frame_middleware or listeners)
        """True when hooks need Python to see every frame (a custom router, frame
        middleware, extra listeners): the zipper then serves on the pure-Python path."""
        self._numbers = itertools.count(1)
        self._listener: Listener | NativeServer | None = None
        self._stopped = asyncio.Event()
        self._forwarders: list[Forwarder] = []
        self._stats = ZipperStats(max_tags=max_tag_stats)
        self._stats_sections: dict[str, StatsSection] = {}
        self._monitor: Any = None
        self._background: list[asyncio.Task[None]] = []
        self._mesh: Mesh | None = None
        self._connections: set[Any] = set()  # what the listeners accepted (Python path)
        self._tasks: set[asyncio.Task[None]] = set()
        self.functions = FunctionRegistry()
        """The LLM functions (tools) registered by handshake; the AI bridge reads it."""
        self.bridge_config: Any = bridge
        self.bridge_credential = bridge_credential
        self.functions_announce_interval = MESH_ANNOUNCE_INTERVAL
        """Seconds between announcements of this zipper's LLM functions to mesh peers."""
        self._bridge: Any = None
        self._native: NativeServer | None = None

    @classmethod
    def from_config(cls, config: ZipperConfig, **options: Any) -> Zipper:
        """A zipper from a parsed ``zipper.yaml`` (see ``yomo.zipper.config``)."""
        auths: list[Authenticator] = list(options.pop("authenticators", ()))
        if config.auth is not None and config.auth.type == "token":
            options.setdefault("bridge_credential", f"token:{config.auth.token}")
        if config.auth is not None:
            auth = authenticator_for(config.auth.type, config.auth.token)
            if auth is not None:
                auths.append(auth)
        return cls(
            config.name,
            config.host,
            config.port,
            authenticators=auths,
            mesh=config.mesh,
            bridge=options.pop("bridge", config.bridge),
            **{"monitor": config.monitor, **options},
        )

    # -- lifecycle ---------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` the zipper listens on (after ``start``)."""
        if self._listener is None:
            raise StateError("yomo: the zipper is not started")
        return self._listener.address

    @property
    def backend(self) -> str:
        """The data path serving connections, e.g. ``"native (quinn 0.11, rustls 0.23)"``
        or ``"qh3 2.1.0 (+aioquic for empty client ids)"`` (after ``start``)."""
        if self._listener is None:
            raise StateError("yomo: the zipper is not started")
        return self._listener.backend

    @property
    def addr(self) -> str:
        """``host:port`` to give to clients."""
        host, port = self.address
        return f"{host}:{port}"

    async def start(self) -> None:
        """Listen and return; connections are served in the background."""
        if self.state != "new":
            return
        self.state = "starting"
        tls = self.tls or TlsConfig.from_env()
        try:
            if self.monitor_address is not None:  # first, so /healthz says 503 while starting
                from .monitor import Monitor

                monitor = Monitor(self)
                await monitor.start(*self.monitor_address)
                self._monitor = monitor
                self.monitor_address = monitor.address
            native = wants_native(self.quic)
            if native and self.python_frames:
                self.log.info(
                    "zipper %r: a custom router, frame middleware or a listener sees every "
                    "frame, so it serves on the pure-Python data path",
                    self.name,
                )
            if native and not self.python_frames:
                self._native = await NativeServer.start(
                    self.host,
                    self.port,
                    self._on_native_events,
                    tls=tls,
                    settings=self.quic,
                    drop=self.slow_consumer == "drop",
                    drop_threshold=self.drop_threshold,
                    handshake_timeout=self.handshake_timeout,
                    dead_after=self.dead_after if self.slow_consumer == "block" else 0.0,
                )
                self._listener = self._native
                if self._forwarders:
                    self._native.native.set_tap(True)
            else:
                self._listener = await listen(
                    self.host, self.port, self.serve_connection, tls=tls, settings=self.quic
                )
        except BaseException:
            await self._stop_monitor()
            self.state = "stopped"
            raise
        self.log.info(
            "zipper %r listening on %s:%d (auth %s, %s, QUIC %s)",
            self.name,
            *self._listener.address,
            ", ".join(a.name for a in self.authenticators) or "off",
            self._listener.tls_mode,
            self._listener.backend,
        )
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            self._background.append(loop.create_task(self._accept(listener)))
        if self.mesh_peers:
            self._mesh = Mesh(self, self.mesh_peers, **self.mesh_options)
            await self._mesh.start()
            self._background.append(loop.create_task(self._announce_functions()))
        if self.bridge_config is not None:
            from yomo.bridge import Bridge  # type: ignore[import-not-found,unused-ignore]

            self._bridge = Bridge(self, self.bridge_config)
            try:
                await self._bridge.start()
            except BaseException:
                await self.stop("the AI bridge failed to start")
                raise
        self._background.append(loop.create_task(self._watch()))
        self.state = "serving"

    async def serve(self) -> None:
        """Start (if needed) and serve until ``stop`` is called."""
        await self.start()
        await self._stopped.wait()

    async def stop(self, reason: str = "zipper is shutting down") -> None:
        """Stop listening and close every connection with ``reason``."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.state = "stopping"
        if self._bridge is not None:
            await self._bridge.stop()
        if self._mesh is not None:
            await self._mesh.stop()
        if self._native is not None:
            await self._native.aclose(reason)
        else:
            for conn in list(self._connections):
                conn.close(reason)
            if isinstance(self._listener, Listener):
                await asyncio.sleep(0.05)  # let the CONNECTION_CLOSE frames go out
                await self._listener.aclose()
        for listener in self._listeners:
            # best effort at shutdown: one listener failing to close must not stop the rest
            with contextlib.suppress(Exception):
                await listener.aclose()
        for task in list(self._tasks):  # connection middleware waiting on ended connections
            task.cancel()
        for task in self._background:
            task.cancel()
        await self._stop_monitor()
        self.state = "stopped"
        self.log.info("zipper %r stopped: %s", self.name, reason)

    async def _stop_monitor(self) -> None:
        if self._monitor is not None:
            monitor, self._monitor = self._monitor, None
            await monitor.stop()

    async def __aenter__(self) -> Zipper:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- public helpers ----------------------------------------------------

    def add_forwarder(self, forward: Forwarder) -> Callable[[], None]:
        """Call ``forward`` for every frame not received from a mesh peer; returns a remover."""
        self._forwarders.append(forward)
        self._set_tap()

        def remove() -> None:
            self._forwarders.remove(forward)
            self._set_tap()

        return remove

    @property
    def mesh(self) -> Mesh | None:
        """The links to the mesh peers (after ``start``, when peers are configured)."""
        return self._mesh

    @property
    def forwards_natively(self) -> bool:
        """True when the data path forwards frames to mesh links itself (native path)."""
        return self._native is not None

    def set_mesh_link(self, name: str, conn: Any, max_queue_bytes: int) -> None:
        """Native path: forward local frames to mesh peer ``name`` over ``conn`` (a client
        connection on the native path), or count them as dropped while ``conn`` is None."""
        if self._native is None:
            raise StateError("yomo: set_mesh_link needs the native data path")
        native = getattr(conn, "native", None) if conn is not None else None
        self._native.native.set_link(name, native, max_queue_bytes)

    def mesh_link_stats(self, name: str) -> tuple[int, int, int, int, int, int] | None:
        """Native path: ``(forwarded, bytes, dropped_queue_full, dropped_link_down, queued,
        dropped_unacknowledged)``."""
        return None if self._native is None else self._native.native.link_stats(name)

    def _set_tap(self) -> None:
        """On the native path, frames reach Python forwarders only while there are some."""
        if self._native is not None:
            self._native.native.set_tap(bool(self._forwarders))

    def connections(self) -> list[ConnectionInfo]:
        """The registered connections."""
        if self._native is not None:
            return self._native_connections(self._native)
        return [
            ConnectionInfo(
                number=p.number,
                name=p.name,
                client_id=p.client_id,
                client_type=_type_name(p.client_type),
                observed_tags=p.tags,
                wanted_target=p.wanted_target,
                remote_address=p.conn.remote_address,
                frames_in=p.frames_in,
                frames_out=p.frames_out,
                dropped=p.dropped,
                send_backlog=p.conn.send_backlog,
                recv_backlog=p.conn.recv_backlog,
                connected_at=p.connected_at,
            )
            for p in self._all_clients()
        ]

    def _native_connections(self, server: NativeServer) -> list[ConnectionInfo]:
        counters = server.native.connections()
        out = []
        for p in self._all_clients():
            row = counters.get(p.number)
            if row is None:  # closed; its "closed" event is on its way
                continue
            frames_in, frames_out, dropped, send_backlog, recv_backlog, address = row
            out.append(
                ConnectionInfo(
                    number=p.number,
                    name=p.name,
                    client_id=p.client_id,
                    client_type=_type_name(p.client_type),
                    observed_tags=p.tags,
                    wanted_target=p.wanted_target,
                    remote_address=(address[0], address[1]),
                    frames_in=frames_in,
                    frames_out=frames_out,
                    dropped=dropped,
                    send_backlog=send_backlog,
                    recv_backlog=recv_backlog,
                    connected_at=p.connected_at,
                )
            )
        return out

    def goaway(self, who: str | int, message: str = "goaway") -> int:
        """Send a GoawayFrame to connections matching a number, client id or name; returns count."""
        count = 0
        for client in self._all_clients():
            if who in (client.number, client.client_id, client.name):
                with contextlib.suppress(ConnectionClosedError):
                    client.conn.send_nowait(GoawayFrame(message=message))
                asyncio.get_running_loop().call_later(0.2, client.conn.close, message)
                count += 1
        return count

    def add_stats_section(self, name: str, section: StatsSection) -> Callable[[], None]:
        """Add ``stats()[name]`` from ``section()`` (e.g. the AI bridge's counters); returns a remover.

        ``section`` is called on the zipper's loop whenever stats are read, so it must be
        cheap: return counters already kept, never compute them.
        """
        if name in self._stats_sections or name in self.stats():
            raise ConfigError(f"yomo: stats section {name!r} exists already")
        self._stats_sections[name] = section

        def remove() -> None:
            self._stats_sections.pop(name, None)

        return remove

    def stats(self) -> dict[str, Any]:
        """A snapshot: state, connections by type, handshakes and rejections by reason,
        totals and per-tag frames and bytes (at most ``max_tag_stats`` tags, the rest in
        ``other_tags``), drops, unobserved frames, mesh links and added sections.

        Every monitor view (``/metrics``, ``/api/stats``, the page, the log summary) is
        built from this, so it stays the one place that reads the data path's counters.
        """
        by_type: dict[str, int] = {}
        for client in self._all_clients():
            key = _type_name(client.client_type)
            by_type[key] = by_type.get(key, 0) + 1
        result: dict[str, Any] = {
            "name": self.name,
            "state": self.state,
            "connections": by_type,
            **self._counters().snapshot(),
        }
        if self._mesh is not None:
            result["mesh"] = self._mesh.stats()
        if len(self.functions):
            result["llm_functions"] = sorted(f.name for f in self.functions.functions())
        if self._bridge is not None:
            result["bridge"] = self._bridge.stats()
        for name, section in self._stats_sections.items():
            result[name] = section()
        return result

    def _counters(self) -> ZipperStats:
        """The counters: the handshake's, plus on the native path the data path's own
        (read on demand from plain integers; the same per-tag bound applies)."""
        if self._native is None:
            return self._stats
        own = self._stats
        native = self._native.native.stats()
        merged = ZipperStats(max_tags=own.max_tags, started=own.started)
        merged.handshakes = own.handshakes
        merged.dead_connections = own.dead_connections
        merged.rejections = own.rejections + native["rejections"]
        merged.rejections_by_reason = dict(own.rejections_by_reason)
        merged.rejections_by_reason["handshake_timeout"] += native["rejections"]
        merged.protocol_errors = own.protocol_errors + native["protocol_errors"]
        merged.drops = native["drops"]
        merged.unobserved = native["unobserved"]
        for tag, row in sorted(native["tags"].items()):
            counters = merged.tag(tag)
            for name, value in zip(_TAG_FIELDS, row, strict=True):
                setattr(counters, name, getattr(counters, name) + value)
        return merged

    async def _announce_functions(self) -> None:
        """Tell mesh peers which LLM functions are connected here, now and then and on change.

        Their bridges offer them as tools (docs/llm.md); a peer forgets them when the
        announcements stop. A frame sent while a link is down is dropped by the link,
        so the periodic announcement also brings a returning peer up to date.
        """
        changed = asyncio.Event()
        unsubscribe = self.functions.subscribe(changed.set)
        try:
            while True:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), self.functions_announce_interval)
                changed.clear()
                payload = encode_announcement(self.name, self.functions.local())
                md = encode_metadata({md_keys.TID: f"{self.name}-functions"})
                encoded = encode_data_frame(MESH_FUNCTIONS_TAG, md, payload)
                for forward in list(self._forwarders):
                    forward(MESH_FUNCTIONS_TAG, md, encoded)
                if self._mesh is not None:
                    self._mesh.announce(encoded)
        finally:
            unsubscribe()

    async def _watch(self) -> None:
        """Once a second: the periodic summary line and unobserved-tag warnings."""
        watcher = StatsWatcher(self.stats, self.log, summary_interval=self.stats_interval)
        while True:
            await asyncio.sleep(1.0)
            try:
                watcher.tick()
            except Exception:  # a broken stats section must not end the watch
                self.log.exception("stats: cannot read the zipper's counters")

    # -- one connection ----------------------------------------------------

    def _client(self, number: int) -> _Client | None:
        client = self._connector.get(number)
        return client if isinstance(client, _Client) else None

    def _all_clients(self) -> list[_Client]:
        return [p for p in self._connector.find(_everyone) if isinstance(p, _Client)]

    async def _accept(self, listener: FrameListener) -> None:
        """Serve what an extra listener accepts, like QUIC connections (Go: Serve's loop)."""
        while True:
            try:
                conn = await listener.accept()
            except ConnectionClosedError:
                return
            except Exception:  # one bad accept must not end the listener (Go logs and goes on)
                self.log.exception("listener %r: accept failed", listener)
                await asyncio.sleep(0.1)
                continue
            task = asyncio.get_running_loop().create_task(self.serve_connection(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def serve_connection(self, conn: Connection) -> None:
        """Serve one connection until it closes: handshake, then route what it writes.

        The QUIC listener and the extra ``listeners`` call this for every connection of
        the pure-Python data path; unit tests call it with one end of an in-memory
        connection (``yomo.zipper.memory``), so the handshake and routing run without
        a socket, on a zipper that is not started.
        """
        if self._stopped.is_set():  # clients redial at once: none may slip in while stopping
            conn.close("zipper is shutting down")
            return
        cap = self.quic.max_connections
        if len(self._connections) >= cap:
            # Python decides who may connect; a data path that refuses earlier never gets here.
            self._stats.reject("max_connections")
            refused = self._stats.rejections_by_reason["max_connections"]
            message = f"yomo: the zipper is full ({cap} connections, max_connections)"
            if refused == 1 or refused % 1000 == 0:
                self.log.warning(
                    "refused %s: %s (%d refused so far)", conn.remote_address, message, refused
                )
            conn.close(message)
            return
        self._connections.add(conn)
        try:
            client = await self._handshake(conn)
            if client is None:
                return
            try:
                await self._serve(client, lambda _: self._read_loop(client))
            finally:
                self._unregister(client)
        finally:
            self._connections.discard(conn)

    async def _serve(self, client: _Client, innermost: ConnectionHandler) -> None:
        """The connection middleware around ``innermost`` (Go: connHandler). A middleware
        that ends without serving the connection, or raises, ends the connection."""
        if not self._connection_middleware:
            await innermost(client)
            return
        if client.ended is None:  # the client has its HandshakeAck before a middleware may close
            with contextlib.suppress(ConnectionClosedError, TimeoutError):
                await client.conn.drain_all(0.5)
        try:
            await compose(innermost, self._connection_middleware)(client)
        # Plug-in isolation: a failing middleware closes this connection, not the zipper.
        except Exception as exc:
            self.log.error("connection middleware failed on %s: %r", client.describe(), exc)
            client.close(f"yomo: the zipper's connection middleware failed: {type(exc).__name__}")
            return
        if client.closed_by_zipper:  # the middleware closed it: its reason stands
            return
        if not (client.ended.is_set() if client.ended is not None else client.conn.closed):
            client.close("the zipper's connection middleware ended the connection")

    def _log_rejection(
        self,
        message: str,
        hf: HandshakeFrame | None,
        address: tuple[str, int],
        reason: str,
        logged: str | None = None,
    ) -> None:
        """Count a refusal; the log says ``logged`` (no secrets, client strings clipped;
        ``""``: not logged, e.g. the auth brake's refusals, summed up once a second)."""
        self._stats.reject(reason)
        if logged == "":
            return
        who = (
            f"{_type_name(hf.client_type)} {_clip(hf.name)!r} (id {_clip(hf.id)})"
            if hf
            else "client"
        )
        text = _clip(logged if logged is not None else message, 2 * LOG_TEXT_LIMIT)
        if reason == "redirect":
            self.log.info("redirected %s from %s to %s", who, address, text)
        else:
            self.log.warning("rejected %s from %s: %s", who, address, text)

    async def _reject(
        self,
        conn: Connection,
        message: str,
        hf: HandshakeFrame | None,
        reason: str,
        logged: str | None = None,
    ) -> None:
        """Send ``message`` in a RejectedFrame, then close."""
        self._log_rejection(message, hf, conn.remote_address, reason, logged)
        with contextlib.suppress(ConnectionClosedError):  # gone already: nothing to tell
            conn.send_nowait(_refusal(message, reason))
            await _flush(conn)
        conn.close(message)

    def _admit(self, first: Frame, conn: _AnyConnection) -> _Client | _Refusal:
        """The handshake policy, on either data path: a registration, or why not.

        Go: core/server.go handshake (version, auth, client type, LLM function
        registration, wanted target). The caller registers the returned client (its LLM
        function, if any, is registered already), or rejects with the message (the last
        item is the reason counted in ``rejections_by_reason``).
        """
        # Go: core/server.go RejectReservedTagMiddleware applies to data frames once
        # connected; the handshake needs the auth brake, the clipped log and no secret.
        try:
            hf = ZipperHandshake().receive(first)
        except RemoteProtocolError as exc:
            return exc.message, None, "unexpected_frame", None
        try:  # Go: versionNegotiateFunc, which may answer ConnectTo
            check_version(self._negotiate, hf.version)
        except ConnectToError as exc:
            return exc.endpoint, hf, "redirect", None
        except RejectedError as exc:  # clipped in the log: the version is the client's
            return exc.reason, hf, "version", None
        merge = self._authenticate(conn.remote_address, hf)
        if isinstance(merge, tuple):
            return merge
        if hf.client_type not in _CLIENT_TYPE_NAMES:
            return f"unknown client type 0x{hf.client_type:02x}", hf, "client_type", None
        definition: FunctionDefinition | None = None
        if hf.client_type == ClientType.STREAM_FUNCTION and hf.function_definition:
            try:
                definition = FunctionDefinition.from_bytes(hf.function_definition)
            except FunctionCallError as exc:
                return exc.message, hf, "function_definition", None
            # Go: core/server.go tryUseFunctionNameAsTarget: an LLM function gets tool
            # calls on 0xE002, targeted at its name.
            hf = dataclasses.replace(
                hf,
                wanted_target=hf.name,
                observe_data_tags=(*hf.observe_data_tags, FUNCTION_CALL_TAG),
            )
        if hf.wanted_target:
            merge[md_keys.WANTED_TARGET] = hf.wanted_target
        client = _Client(next(self._numbers), hf, merge, conn)
        refusal = self._store(client, hf)
        if refusal is not None:
            return refusal
        if definition is not None:
            try:
                self.functions.register(client.number, definition)
            except DuplicateFunctionError as exc:
                self._connector.remove(client.number)
                return exc.message, hf, "duplicate_function", None
            self.log.info("registered LLM function %r (%s)", definition.name, client.describe())
        return client

    def _authenticate(
        self, address: tuple[str, int], hf: HandshakeFrame
    ) -> dict[str, str] | _Refusal:
        """The connection's metadata from its credential, or the refusal.

        Per source address the auth brake allows ``auth_failures_per_second`` failed
        checks; past that the handshake is refused unchecked, counted, and logged at
        most once a second. The presented credential is never logged.
        """
        if not self.authenticators:
            return {}
        host = address[0]
        now = time.monotonic()
        brake = self._auth_brake
        if not brake.allows(host, now):
            self._throttled_since_log += 1
            wait = brake.retry_after(host, now)
            message = (
                f"yomo: too many failed authentication attempts from {host}; retry in {wait:.1f} s"
            )
            if now - self._last_throttle_log >= 1.0:
                self._last_throttle_log = now
                self.log.warning(
                    "auth brake: refused %d handshake(s) unchecked in the last second "
                    "(latest from %s; %g failures/s allowed per address)",
                    self._throttled_since_log,
                    host,
                    brake.rate,
                )
                self._throttled_since_log = 0
            return message, hf, "auth_throttled", ""
        try:
            return dict(authenticate(self.authenticators, hf.auth_name, hf.auth_payload))
        except AuthFailed as exc:
            brake.failed(host, now)
            return exc.message, hf, "auth", exc.logged

    def _store(self, client: _Client, hf: HandshakeFrame) -> _Refusal | None:
        """Go: core/server.go createConnection (connector.Store); it may refuse or redirect."""
        try:
            self._connector.store(client)
        except ConnectToError as exc:
            return exc.endpoint, hf, "redirect", None
        except RejectedError as exc:
            return exc.reason, hf, "connector", None
        # Plug-in isolation: a failing connector refuses this handshake, not the zipper.
        except Exception as exc:
            self.log.exception("connector: cannot store %s", client.describe())
            return f"the zipper cannot register the connection: {exc!r}", hf, "connector", None
        return None

    def _log_connected(self, client: _Client, address: tuple[str, int]) -> None:
        tags = _tags_for_log(client.tags)
        self.log.info(
            "connected: %s from %s%s",
            client.describe(),
            address,
            f", observes [{tags}]" if tags else "",
        )

    async def _handshake(self, conn: Connection) -> _Client | None:
        try:
            first = await asyncio.wait_for(conn.read_frame(), self.handshake_timeout)
        except asyncio.TimeoutError:
            self._stats.reject("handshake_timeout")
            message = f"handshake timeout: no HandshakeFrame within {self.handshake_timeout:g} s"
            self.log.warning("closed %s: %s", conn.remote_address, message)
            conn.close(message)
            return None
        except ProtocolError as exc:
            self._stats.protocol_errors += 1
            self.log.warning("closed %s: %s", conn.remote_address, _clip(exc.message, 256))
            conn.close(exc.message)
            return None
        except ConnectionClosedError as exc:
            if not self._stopped.is_set():
                # the client went away, or ended its stream, before a whole HandshakeFrame
                self._stats.protocol_errors += 1
                self.log.info(
                    "closed %s before its handshake: %s", conn.remote_address, _clip(exc.reason)
                )
            conn.close(f"closed before the handshake: {exc.reason}")
            return None
        admitted = self._admit(first, conn)
        if isinstance(admitted, tuple):
            await self._reject(conn, *admitted)
            return None
        client = admitted
        if client.client_type == ClientType.STREAM_FUNCTION:
            if self._metadata_router is not None:
                self._metadata_router.add(client)
            else:
                self._router.add(client.number, client.tags, client.wanted_target, client)
        try:
            conn.send_nowait(HandshakeAckFrame())
        except ConnectionClosedError:
            self._unregister(client)
            return None
        self._stats.handshakes += 1
        self._log_connected(client, conn.remote_address)
        return client

    # -- the native data path ----------------------------------------------

    def _on_native_events(self, events: list[tuple[Any, ...]]) -> None:
        """What the native data path reports, in a batch (see yomo._native.Zipper)."""
        for event in events:
            kind = event[0]
            if kind == "tap":
                _, tag, metadata, encoded = event
                for forward in list(self._forwarders):
                    forward(tag, metadata, encoded)
            elif kind == "handshake":
                self._native_handshake(event[1], event[2], event[3])
            elif kind == "closed":
                _, number, reason, protocol_error = event
                client = self._client(number)
                if client is not None:
                    client.conn.close_reason = reason
                    if protocol_error:
                        self.log.warning("closed %s: %s", client.describe(), reason)
                    self._unregister(client)
            elif kind == "refused":
                self._native_refused(tuple(event[1]), event[2], event[3])
            elif kind == "dead":
                _, number, silent, backlog = event
                client = self._client(number)
                self._stats.dead_connections += 1
                self.log.warning(
                    "closed %s: not answering for %g s (silent %.1f s while producers waited); "
                    "%d bytes queued for it, and what it had not acknowledged, are lost",
                    client.describe() if client is not None else f"#{number}",
                    self.dead_after,
                    silent,
                    backlog,
                )
            elif kind == "slow":
                _, number, dropped, backlog = event
                client = self._client(number)
                self.log.warning(
                    "slow consumer %s: dropping frames (%d dropped so far, backlog %d bytes)",
                    client.describe() if client is not None else f"#{number}",
                    dropped,
                    backlog,
                )

    def _native_refused(self, address: tuple[str, int], why: str, reason: str) -> None:
        """A connection the native path closed before registering it: log (and count) it
        as the pure-Python path does."""
        if why == "full":
            self._stats.reject("max_connections")
            refused = self._stats.rejections_by_reason["max_connections"]
            if refused == 1 or refused % 1000 == 0:
                self.log.warning("refused %s: %s (%d refused so far)", address, reason, refused)
        elif why == "fin":  # counted natively, as a protocol error
            self.log.info("closed %s before its handshake: %s", address, _clip(reason))
        elif why == "closed":
            self.log.debug("closed %s: %s", address, reason)
        else:
            self.log.warning("closed %s: %s", address, _clip(reason, 2 * LOG_TEXT_LIMIT))

    def _native_handshake(self, handshake_id: int, data: bytes, address: tuple[str, int]) -> None:
        server = self._native
        assert server is not None
        address = (address[0], address[1])
        try:
            first = decode_frame(data, max_frame_size=self.quic.max_frame_size)
        except ProtocolError as exc:
            self._stats.protocol_errors += 1
            self.log.warning("closed %s: %s", address, exc.message)
            server.reject(handshake_id, None, exc.message)
            return
        handle = _NativeClient(server, 0, address)
        admitted = self._admit(first, handle)
        if isinstance(admitted, tuple):
            message, hf, reason, logged = admitted
            self._log_rejection(message, hf, address, reason, logged)
            server.reject(handshake_id, _refusal(message, reason).encode(), message)
            return
        client = admitted
        handle.number = client.number
        accepted = server.accept(
            handshake_id,
            client.number,
            client.client_type,
            client.tags,
            client.wanted_target,
            client.merge,
            HandshakeAckFrame().encode(),
        )
        if not accepted:  # gone while Python decided
            self._unregister(client)
            return
        self._stats.handshakes += 1
        self._log_connected(client, address)
        if self._connection_middleware:  # the native path serves it; Python waits for its end
            ended = client.ended = asyncio.Event()

            async def until_ended(_: Any) -> None:
                await ended.wait()

            task = asyncio.get_running_loop().create_task(self._serve(client, until_ended))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _unregister(self, client: _Client) -> None:
        if self._connector.get(client.number) is None:
            return
        self._connector.remove(client.number)
        if client.ended is not None:
            client.ended.set()
        if self._metadata_router is not None:
            self._metadata_router.remove(client.number)
        else:
            self._router.remove(client.number)
        if self.functions.unregister(client.number) is not None:
            self.log.info("unregistered LLM function of %s", client.describe())
        reason = client.conn.close_reason or "closed"
        self.log.info("disconnected: %s: %s", client.describe(), reason)

    async def _read_loop(self, client: _Client) -> None:
        conn = client.conn
        read = conn.read_frame
        route = self._route
        reserved_min, reserved_max = RESERVED_TAG_MIN, RESERVED_TAG_MAX
        while True:
            try:
                frame = await read()
            except ConnectionClosedError:
                return
            except ProtocolError as exc:
                self._stats.protocol_errors += 1
                self.log.warning("closed %s: %s", client.describe(), _clip(exc.message, 256))
                conn.close(exc.message)
                return
            if type(frame) is not DataFrame or reserved_min <= frame.tag <= reserved_max:
                # Go: core/server.go RejectReservedTagMiddleware closes with ErrReservedTag's text.
                message = (
                    RESERVED_TAG_MESSAGE
                    if type(frame) is DataFrame
                    else f"unexpected frame from client: {type(frame).__name__}"
                )
                self._stats.protocol_errors += 1
                self.log.warning("closed %s: %s", client.describe(), message)
                conn.close(message)
                return
            try:
                waits = route(client, frame)
            except ProtocolError as exc:
                self._stats.protocol_errors += 1
                self.log.warning("closed %s: %s", client.describe(), exc.message)
                conn.close(exc.message)
                return
            if waits:
                for dest in waits:
                    await self._wait_for(dest)

    async def _wait_for(self, dest: _Client) -> None:
        """Hold the producer until ``dest`` drains; close ``dest`` if it stopped answering.

        A function whose process died leaves its connection open until the idle
        timeout (5 s), holding every producer that feeds it; one that has not
        answered for ``dead_after`` s while frames wait for it is closed at once.
        """
        conn = dest.conn
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            try:
                await conn.drain(DEAD_CHECK_INTERVAL)
                return
            except ConnectionClosedError:
                return
            except TimeoutError:
                silent_for = getattr(conn, "silent_for", None)
                if silent_for is None:
                    continue
                if loop.time() - asked > DEAD_CHECK_INTERVAL + 0.1:
                    conn.heard_now()  # this loop was busy: datagrams may wait unread
                elif silent_for() > self.dead_after:
                    unacked = conn.unacknowledged()
                    message = f"not answering for {self.dead_after:g} s"
                    self.log.warning(
                        "closed %s: %s; %d bytes routed to it were not acknowledged and are lost",
                        dest.describe(),
                        message,
                        unacked,
                    )
                    self._stats.dead_connections += 1
                    conn.close(message)
                    return

    def _route(self, client: _Client, frame: DataFrame) -> list[_Client] | None:
        """Route one frame; returns the destinations the producer must wait for.

        The one place frames are routed on the pure-Python path: with frame middleware or
        a metadata router the frame goes through them (``_route_context``) first.
        """
        tag = frame.tag
        payload = frame.payload
        client.frames_in += 1
        counters = self._stats.tag(tag)
        counters.frames_in += 1
        counters.bytes_in += len(payload)
        raw_md = frame.metadata
        md = decode_metadata(raw_md)
        if client.merge:
            for key, value in client.merge.items():
                if value:
                    md[key] = value
                else:
                    md.pop(key, None)
            raw_md = encode_metadata(md)
        if self._frame_middleware or self._metadata_router is not None:
            ctx = FrameContext(client, tag, md, bytes(payload))
            self._frame_handler(ctx)
            waits: list[_Client] | None = ctx._waits
            return waits
        dests = self._router.route(tag, md.get(md_keys.TARGET))
        return self._deliver(client, tag, raw_md, payload, dests, counters)

    def _route_context(self, ctx: FrameContext) -> None:
        """The innermost frame handler: route what the middleware left (Go: handleFrame)."""
        client = ctx.connection
        assert isinstance(client, _Client)
        tag, md = ctx.tag, ctx.metadata
        if self._metadata_router is not None:
            dests = []
            for c in self._metadata_router.route_frame(tag, md):
                dest = self._client(c.number)
                if dest is not None:
                    dests.append(dest)
        else:
            dests = self._router.route(tag, md.get(md_keys.TARGET))
        raw_md = encode_metadata(md)
        ctx._waits = self._deliver(client, tag, raw_md, ctx.payload, dests, self._stats.tag(tag))

    def _deliver(
        self,
        client: _Client,
        tag: int,
        raw_md: bytes,
        payload: bytes | memoryview,
        dests: list[_Client],
        counters: TagCounters,
    ) -> list[_Client] | None:
        """Send one frame to ``dests`` and the forwarders; returns who the producer waits for."""
        size = len(payload)
        from_mesh = client.client_type == ClientType.UPSTREAM_ZIPPER
        if not dests and (from_mesh or not self._forwarders):
            counters.unobserved += 1
            self._stats.unobserved += 1
            if self.log.isEnabledFor(logging.DEBUG):
                self.log.debug("no observer for tag 0x%x (%d bytes)", tag, size)
            return None
        encoded = encode_data_frame(tag, raw_md, bytes(payload))
        waits: list[_Client] | None = None
        drop = self.slow_consumer == "drop"
        closed = 0
        for dest in dests:
            conn = dest.conn
            if conn.closed:  # gone, not unregistered yet
                closed += 1
                continue
            if drop and conn.send_backlog > self.drop_threshold:
                self._count_drop(dest, tag, counters)
                continue
            try:
                conn.send_nowait(encoded)
            except ConnectionClosedError:
                closed += 1
                continue
            dest.frames_out += 1
            counters.frames_out += 1
            counters.bytes_out += size
            if not drop and not conn.has_room:
                if waits is None:
                    waits = []
                waits.append(dest)
        if closed == len(dests) and (from_mesh or not self._forwarders):
            counters.unobserved += 1  # every observer just went away: nobody got it
            self._stats.unobserved += 1
        if not from_mesh:
            for forward in self._forwarders:
                forward(tag, raw_md, encoded)
        return waits

    def _count_drop(self, dest: _Client, tag: int, counters: TagCounters) -> None:
        dest.dropped += 1
        counters.dropped += 1
        self._stats.drops += 1
        now = time.monotonic()
        self.log.debug("dropped a frame of tag 0x%x for slow %s", tag, dest.describe())
        if now - dest.last_drop_log >= 1.0:
            dest.last_drop_log = now
            self.log.warning(
                "slow consumer %s: dropping frames (%d dropped so far, backlog %d bytes)",
                dest.describe(),
                dest.dropped,
                dest.conn.send_backlog,
            )


def _everyone(_: object) -> bool:
    return True


def _refusal(message: str, reason: str) -> Frame:
    """What a refused handshake is answered with: ConnectTo for a redirect, else Rejected."""
    if reason == "redirect":
        return ConnectToFrame(endpoint=message)
    return RejectedFrame(message=message)


async def _flush(conn: Any, limit: float = 0.5) -> None:
    """Wait (bounded) until what was queued on ``conn`` has left, so a close doesn't eat it."""
    deadline = asyncio.get_running_loop().time() + limit
    while conn.send_backlog > 0 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)
