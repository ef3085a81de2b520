"""The zipper: its lifecycle and the API its users and tools see.

Go: core/server.go. A ``Zipper`` listens (on the native data path, or the
pure-Python one when hooks must see every frame), admits each connection
(``admission``: handshake, auth, registration), serves it (``routing``: its
frames to the stream functions observing their tags, then to the mesh), and
reports (``stats()``, ``connections()``, the monitor, the log). Its mesh links,
the AI bridge and the monitor start and stop with it.

Why this module is over ~400 lines: it is the one class users construct and call
(``yomo.aio.Zipper``, behind ``yomo.Zipper``): its constructor documents every
option, and start/stop, the native path's event batch, stats and connection
listings are each short; the policy they apply lives in the modules beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from yomo.errors import ConfigError, ConnectionClosedError, StateError, TimeoutError
from yomo.transport import DEFAULT_HANDSHAKE_TIMEOUT, Listener, TlsConfig, listen
from yomo.transport.connection import Connection
from yomo.transport.native import NativeServer
from yomo.transport.settings import wants_native
from yomo.wire import GoawayFrame, HandshakeAckFrame, encode_data_frame, encode_metadata
from yomo.wire import metadata as md_keys

from .admission import Admission
from .auth import Authenticator, authenticator_for
from .burstlog import BurstLog
from .config import ZipperConfig
from .functions import (
    MESH_ANNOUNCE_INTERVAL,
    MESH_FUNCTIONS_TAG,
    FunctionRegistry,
    encode_announcement,
)
from .heap import HeapShare, frozen_heap
from .hooks import (
    ConnectionHandler,
    ConnectionRegistry,
    Connector,
    compose,
)
from .memory import FrameListener
from .mesh import Mesh
from .options import SlowConsumerPolicy, ZipperKeywords, ZipperOptions
from .registered import (
    RegisteredClient,
    ZipperParts,
    registered,
    registered_clients,
    type_name,
)
from .routing import RESERVED_TAG_MESSAGE, Forwarder, Routing
from .stats import ConnectionInfo, StatsWatcher, ZipperStats

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "RESERVED_TAG_MESSAGE",
    "ConnectionInfo",
    "SlowConsumerPolicy",
    "Zipper",
    "ZipperState",
]

ZipperState = Literal["new", "starting", "serving", "stopping", "stopped"]
StatsSection = Callable[[], dict[str, Any]]


class Zipper:
    """A YoMo zipper on asyncio. ``yomo.Zipper`` is the same in synchronous form.

    Args:
        name: the zipper's name (used in logs and as its mesh identity).
        host, port: where to listen; port 0 picks a free port (see ``address``).
        options: a whole ``yomo.ZipperOptions``; keyword arguments change fields of it.
        **keywords: the fields of ``yomo.ZipperOptions``, each documented there:
            ``authenticators``, ``tls``, ``quic``, ``slow_consumer``, ``drop_threshold``,
            ``handshake_timeout``, ``auth_failures_per_second``, ``dead_after``, ``mesh``,
            ``mesh_options``, ``router``, ``connection_middleware``, ``frame_middleware``,
            ``version_negotiator``, ``connector``, ``listeners`` (the extension points of
            ``yomo.zipper.hooks``), ``logger``, ``stats_interval``, ``bridge``,
            ``bridge_credential``, ``monitor``, ``max_tag_stats`` and ``startup_hold``.

    Raises:
        ConfigError: an option out of its range (named in the message).
    """

    def __init__(
        self,
        name: str = "zipper",
        host: str = "127.0.0.1",
        port: int = 9000,
        *,
        options: ZipperOptions | None = None,
        **keywords: Unpack[ZipperKeywords],
    ) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"port: expected 0..65535, got {port}")
        options = ZipperOptions.build(options, keywords)
        self.options = options
        """What the zipper was configured with (``yomo.zipper.options``)."""
        self.name = name
        self.host = host
        self.port = port
        self.authenticators = tuple(options.authenticators)
        self.tls = options.tls
        self.quic = options.quic
        self.slow_consumer: SlowConsumerPolicy = options.slow_consumer
        self.drop_threshold = options.drop_threshold
        self.handshake_timeout = options.handshake_timeout
        self.dead_after = options.dead_after
        self.mesh_peers = tuple(options.mesh)
        self.mesh_options = options.mesh_options
        self.log = options.logger or logging.getLogger("yomo.zipper")
        self._disconnects = BurstLog(self.log, "disconnected")
        self.stats_interval = options.stats_interval
        self.monitor_address = options.monitor_address
        """Where the monitor listens: as asked before ``start``, the bound address after."""
        self.state: ZipperState = "new"
        self._connector: Connector = (
            options.connector if options.connector is not None else ConnectionRegistry()
        )
        self._connection_middleware = tuple(options.connection_middleware)
        self._listeners = tuple(options.listeners)
        self.python_frames = options.router is not None or bool(
            options.frame_middleware or options.listeners
        )
        """True when hooks need Python to see every frame (a custom router, frame
        middleware, extra listeners): the zipper then serves on the pure-Python path."""
        self._listener: Listener | NativeServer | None = None
        self._stopped = asyncio.Event()
        self._stats = ZipperStats(max_tags=options.max_tag_stats)
        self._stats_sections: dict[str, StatsSection] = {}
        self._monitor: Any = None
        self._background: list[asyncio.Task[None]] = []
        self._mesh: Mesh | None = None
        self._connections: set[Any] = set()  # what the listeners accepted (Python path)
        self._ended = 0  # how many of them ended
        self._tasks: set[asyncio.Task[None]] = set()
        self.functions = FunctionRegistry()
        """The LLM functions (tools) registered by handshake; the AI bridge reads it."""
        self.bridge_config: Any = options.bridge
        self.bridge_credential = options.bridge_credential
        self.functions_announce_interval = MESH_ANNOUNCE_INTERVAL
        """Seconds between announcements of this zipper's LLM functions to mesh peers."""
        self._bridge: Any = None
        self._native: NativeServer | None = None
        self._heap: HeapShare | None = None  # frozen while serving on qh3 (yomo.zipper.heap)
        parts = ZipperParts(self._stats, self.log, self._connector)
        self._admission = Admission(options, parts, self.functions)
        self._routing = Routing(options, parts)
        self._forwarders = self._routing.forwarders

    @classmethod
    def from_config(cls, config: ZipperConfig, **keywords: Unpack[ZipperKeywords]) -> Zipper:
        """A zipper from a parsed ``zipper.yaml`` (see ``yomo.zipper.config``); keywords
        set what the file does not (its ``bridge`` and ``monitor`` unless given here)."""
        auths: list[Authenticator] = list(keywords.pop("authenticators", ()))
        if config.auth is not None and config.auth.type == "token":
            keywords.setdefault("bridge_credential", f"token:{config.auth.token}")
        if config.auth is not None:
            auth = authenticator_for(config.auth.type, config.auth.token)
            if auth is not None:
                auths.append(auth)
        keywords.setdefault("bridge", config.bridge)
        keywords.setdefault("monitor", config.monitor)
        keywords["authenticators"] = auths
        keywords["mesh"] = config.mesh
        return cls(config.name, config.host, config.port, **keywords)

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
                    startup_hold=(self._routing.hold.window, self._routing.hold.max_bytes),
                )
                self._listener = self._native
                if self._forwarders:
                    self._native.native.set_tap(True)
            else:
                self._listener = await listen(
                    self.host, self.port, self.serve_connection, tls=tls, settings=self.quic
                )
                self._routing.hold.start()
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
            self._mesh = Mesh(self, self.mesh_peers, self.mesh_options)
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
        if self._listener.backend.startswith("qh3"):
            # qh3's closed connections are freed without the collector, so freezing
            # the heap is safe enough to keep full collections short (aioquic's are not)
            self._heap = frozen_heap().hold()
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
        self._disconnects.flush()
        if self._heap is not None:
            self._heap.release()
            self._heap = None
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
        if self._native is None:
            return [
                p.info(
                    p.conn.remote_address,
                    (
                        p.frames_in,
                        p.frames_out,
                        p.dropped,
                        p.conn.send_backlog,
                        p.conn.recv_backlog,
                    ),
                )
                for p in self._all_clients()
            ]
        counters = self._native.native.connections()
        out = []
        for p in self._all_clients():
            row = counters.get(p.number)
            if row is not None:  # else closed; its "closed" event is on its way
                address = row[5]
                out.append(p.info((address[0], address[1]), tuple(row[:5])))
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
            key = type_name(client.client_type)
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
        if self._native is not None:
            result["resent"] = {"duplicates": self._native.native.stats()["resent_duplicates"]}
        else:
            result["resent"] = {"duplicates": self._routing.resend.duplicates}
        for name, section in self._stats_sections.items():
            result[name] = section()
        return result

    def _counters(self) -> ZipperStats:
        """The counters: the handshake's, plus on the native path the data path's own."""
        if self._native is None:
            return self._stats
        return self._stats.with_native(self._native.native.stats())

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
        """Once a second: the periodic summary line, unobserved-tag warnings, the heap's freeze."""
        watcher = StatsWatcher(self.stats, self.log, summary_interval=self.stats_interval)
        while True:
            await asyncio.sleep(1.0)
            if self._heap is not None:
                self._heap.tick(len(self._connections), self._ended)
            self._routing.expire_hold()
            try:
                watcher.tick()
            except Exception:  # a broken stats section must not end the watch
                self.log.exception("stats: cannot read the zipper's counters")

    # -- one connection ----------------------------------------------------

    def _client(self, number: int) -> RegisteredClient | None:
        return registered(self._connector, number)

    def _all_clients(self) -> list[RegisteredClient]:
        return registered_clients(self._connector)

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
            message = f"yomo: the zipper is full ({cap} connections, max_connections)"
            self._admission.refused_full(conn.remote_address, message)
            conn.close(message)
            return
        self._connections.add(conn)
        try:
            client = await self._handshake(conn)
            if client is None:
                return
            try:
                await self._serve(client, lambda _: self._routing.read_loop(client))
            finally:
                self._unregister(client)
        finally:
            self._connections.discard(conn)
            self._ended += 1

    async def _serve(self, client: RegisteredClient, innermost: ConnectionHandler) -> None:
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

    async def _handshake(self, conn: Connection) -> RegisteredClient | None:
        """Admit ``conn`` (``yomo.zipper.admission``), route to it, acknowledge it."""
        client = await self._admission.handshake(conn, self._stopped.is_set)
        if client is None:
            return None
        self._routing.add(client)
        try:
            conn.send_nowait(HandshakeAckFrame())
            self._routing.welcome(client)  # then what was held for it (startup_hold)
        except ConnectionClosedError:
            self._unregister(client)
            return None
        self._admission.connected(client, conn.remote_address)
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
                self._admission.native_refused(tuple(event[1]), event[2], event[3])
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

    def _native_handshake(self, handshake_id: int, data: bytes, address: tuple[str, int]) -> None:
        server = self._native
        assert server is not None
        address = (address[0], address[1])
        client = self._admission.native_handshake(server, handshake_id, data, address)
        if client is None:
            return
        accepted = server.accept(
            handshake_id,
            client.number,
            client.client_type,
            client.tags,
            client.wanted_target,
            client.merge,
            HandshakeAckFrame().encode(),
            client.client_id,
        )
        if not accepted:  # gone while Python decided
            self._unregister(client)
            return
        self._admission.connected(client, address)
        if self._connection_middleware:  # the native path serves it; Python waits for its end
            ended = client.ended = asyncio.Event()

            async def until_ended(_: Any) -> None:
                await ended.wait()

            task = asyncio.get_running_loop().create_task(self._serve(client, until_ended))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _unregister(self, client: RegisteredClient) -> None:
        if self._connector.get(client.number) is None:
            return
        self._connector.remove(client.number)
        if client.ended is not None:
            client.ended.set()
        self._routing.remove(client.number)
        self._routing.closed(client)
        if self.functions.unregister(client.number) is not None:
            self.log.info("unregistered LLM function of %s", client.describe())
        self._disconnects.line(client.describe, client.conn.close_reason or "closed")
