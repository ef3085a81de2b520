"""Zipper mesh: links to peer zippers, so frames from local producers reach every region.

Go: zipper.go (downstream zippers). For every configured peer except itself a
zipper keeps one ``Link``: a client of type UpstreamZipper (0x5E), named after
this zipper, that authenticates with the peer's credential and redials forever
with backoff. Every DataFrame from a local source or function is handed to each
link; frames that arrive from a peer are never forwarded again (the server
checks the client type), so in a full mesh each frame reaches each zipper once.

Forwarding never blocks the router. Each link has a queue bounded in bytes and a
sender task that moves frames onto the QUIC connection:

- queue full (the peer is slower than the producers): the new frame is dropped;
- link down or still connecting: the frame is dropped (Go drops them too);
- the connection has no room for ``send_timeout`` seconds (1 s, like Go's write
  deadline): the frame at the head of the queue is dropped;
- the connection dies with frames its peer's transport never acknowledged (sent into
  a cut, say, before the link noticed): counted when the link goes down
  (``dropped_unacknowledged``; an upper bound: some of them may have arrived).

Drops are counted per link and reason and logged as a rate-limited warning.
``stats()`` returns, per peer, the link's state and counters (see docs/mesh.md).

Why this module is over ~400 lines: ``Link`` (one peer: its reconnecting client, its
bounded queue, its sender, its counters) is most of it, and ``Mesh`` only starts, stops
and asks its links; they are one mechanism (docs/mesh.md), and each is one job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

from yomo.errors import ConnectionClosedError, TimeoutError, YomoError
from yomo.session import ClientCore, ClientOptions, ClientState
from yomo.transport import QuicSettings, TlsConfig
from yomo.transport.connection import TrackedConnection
from yomo.wire import ClientType

from .config import MeshPeer
from .options import MeshOptions

__all__ = [
    "Link",
    "LinkState",
    "Mesh",
    "MeshZipper",
]

#: Seconds between two drop warnings of one link.
DROP_LOG_INTERVAL = 5.0
#: Sent frames a link remembers until they are acknowledged (past it the oldest is
#: forgotten, as if acknowledged; far more than a connection's windows hold).
MAX_INFLIGHT = 1 << 20

LinkState = Literal["connecting", "up", "down", "closed"]
Forwarder = Callable[[int, bytes, bytes], None]


class MeshZipper(Protocol):
    """What the mesh needs of its zipper (``yomo.zipper.server.Zipper`` has it)."""

    name: str
    log: logging.Logger
    tls: TlsConfig | None
    quic: QuicSettings

    @property
    def forwards_natively(self) -> bool:
        """True when the data path forwards frames to mesh links itself."""

    def add_forwarder(self, forward: Forwarder) -> Callable[[], None]:
        """Get every frame not received from a mesh peer; returns a remover."""

    def set_mesh_link(self, name: str, conn: Any, max_queue_bytes: int) -> None:
        """Native path: forward to peer ``name`` over ``conn`` (None: link down)."""

    def mesh_link_stats(self, name: str) -> tuple[int, int, int, int, int, int] | None:
        """Native path: the link's counters."""


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Link:
    """One zipper's link to one peer: a reconnecting client, a bounded queue, a sender."""

    def __init__(
        self,
        mesh: Mesh,
        peer: MeshPeer,
        options: MeshOptions,
    ) -> None:
        self.mesh = mesh
        self.peer = peer
        self.address = _address(peer.host, peer.port)
        self.max_queue_bytes = options.max_queue_bytes
        self.send_timeout = options.send_timeout
        self.reconnect = options.reconnect
        self.log = mesh.log
        self.state: LinkState = "connecting"
        self.core: ClientCore | None = None
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.forwarded = 0
        self.bytes_forwarded = 0
        self.dropped_queue_full = 0
        self.dropped_link_down = 0
        self.dropped_send_timeout = 0
        self.dropped_unacknowledged = 0
        #: Stream offsets where the frames sent on the current connection end, until acked.
        self._inflight: deque[int] = deque()
        self._inflight_conn: Any = None
        self.ups = 0
        self.downs = 0
        self.last_error = ""
        self.since = time.time()
        self._wake = asyncio.Event()
        self._last_drop_log = 0.0
        self._drops_at_last_log = 0
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def dropped(self) -> int:
        """Frames for this peer that were not sent, or were sent and never acknowledged."""
        return (
            self.dropped_queue_full
            + self.dropped_link_down
            + self.dropped_send_timeout
            + self.dropped_unacknowledged
        )

    # -- the hot path ------------------------------------------------------

    def offer(self, encoded: bytes) -> None:
        """Queue a frame for the peer, or drop it; never blocks."""
        if self.state != "up":
            self.dropped_link_down += 1
            self._log_drops()
            return
        size = len(encoded)
        if self.queued_bytes + size > self.max_queue_bytes and self.queue:
            self.dropped_queue_full += 1
            self._log_drops()
            return
        self.queue.append(encoded)
        self.queued_bytes += size
        self._wake.set()

    def _log_drops(self) -> None:
        now = time.monotonic()
        if now - self._last_drop_log < DROP_LOG_INTERVAL:
            return
        self._last_drop_log = now
        total = self.dropped
        self.log.warning(
            "mesh %r -> %r (%s) is %s: dropped %d frame(s) since last report "
            "(%d in all: %d link down, %d queue full, %d send timeout, %d unacknowledged)",
            self.mesh.name,
            self.peer.name,
            self.address,
            "down" if self.state != "up" else "not keeping up",
            total - self._drops_at_last_log,
            total,
            self.dropped_link_down,
            self.dropped_queue_full,
            self.dropped_send_timeout,
            self.dropped_unacknowledged,
        )
        self._drops_at_last_log = total

    def _drop_queue(self) -> None:
        self._count_unacknowledged()
        if self.queue:
            self.dropped_link_down += len(self.queue)
            self.queue.clear()
            self.queued_bytes = 0
            self._log_drops()

    def _sent(self, conn: Any) -> None:
        """Remember where the frame just sent on ``conn`` ends, until it is acknowledged."""
        if conn is not self._inflight_conn:
            self._count_unacknowledged()
            self._inflight_conn = conn
        inflight = self._inflight
        inflight.append(conn.bytes_sent)
        if len(inflight) % 64 == 0 or len(inflight) > MAX_INFLIGHT:
            self._trim(conn)
            while len(inflight) > MAX_INFLIGHT:
                inflight.popleft()

    def _trim(self, conn: Any) -> int:
        """Forget the frames ``conn``'s peer acknowledged; returns the acknowledged offset."""
        acked = int(conn.bytes_sent - conn.unacknowledged())
        inflight = self._inflight
        while inflight and inflight[0] <= acked:
            inflight.popleft()
        return acked

    def _count_unacknowledged(self) -> None:
        """The connection in use is done: its frames never acknowledged are lost."""
        conn, self._inflight_conn = self._inflight_conn, None
        if conn is None or not self._inflight:
            return
        with contextlib.suppress(Exception):  # a closed connection still knows what was acked
            self._trim(conn)
        self.dropped_unacknowledged += len(self._inflight)
        self._inflight.clear()

    # -- state -------------------------------------------------------------

    def _set_up(self) -> None:
        if self.state == "up":
            return
        self.state = "up"
        self.since = time.time()
        self.ups += 1
        core = self.core
        if self.mesh.native and core is not None:  # the zipper's data path forwards itself
            self.mesh.zipper.set_mesh_link(self.peer.name, core.connection, self.max_queue_bytes)
        self.log.info(
            "mesh link %r -> %r (%s) is up (id %s)",
            self.mesh.name,
            self.peer.name,
            self.address,
            core.connection_id if core is not None else "?",
        )

    def _set_down(self, reason: str) -> None:
        self.last_error = reason
        if self.state != "up":
            return
        if self.mesh.native:
            self.mesh.zipper.set_mesh_link(self.peer.name, None, self.max_queue_bytes)
        self.state = "down"
        self.since = time.time()
        self.downs += 1
        self._drop_queue()
        self.log.warning(
            "mesh link %r -> %r (%s) is down: %s; redialling",
            self.mesh.name,
            self.peer.name,
            self.address,
            reason,
        )

    def _on_error(self, error: BaseException) -> None:
        message = getattr(error, "message", None) or str(error) or type(error).__name__
        self._set_down(message)

    # -- tasks -------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run()), loop.create_task(self._send_loop())]

    async def stop(self, reason: str) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        was_up = self.state == "up"
        self.state = "closed"
        self.queue.clear()
        self.queued_bytes = 0
        core, self.core = self.core, None
        if core is not None:
            # Boundary: closing a link is best effort; it must not stop the mesh's own close.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(core.close(reason, drain_timeout=0.5), 2.0)
        if was_up:
            self.log.info("mesh link %r -> %r closed", self.mesh.name, self.peer.name)

    def _new_core(self) -> ClientCore:
        zipper = self.mesh.zipper
        core = ClientCore(
            zipper.name,
            self.address,
            ClientType.UPSTREAM_ZIPPER,
            options=ClientOptions(
                credential=self.peer.credential,
                tls=zipper.tls or TlsConfig.from_env(),
                quic=zipper.quic,
                reconnect=dataclasses.replace(
                    self.reconnect, connect_timeout=math.inf, enabled=True
                ),
                write_timeout=self.send_timeout,
                logger=self.log.getChild("client"),
            ),
        )
        core.add_error_handler(self._on_error)
        core.add_reconnected_handler(self._set_up)
        return core

    async def _run(self) -> None:
        """Keep a client to the peer alive forever; a rejection ends one client, not the link."""
        attempt = 0
        while True:
            core = self.core = self._new_core()
            try:
                await core.connect()  # retries unreachable peers without end
            except YomoError as exc:  # rejected (bad credential, version): retry later
                self.last_error = exc.message
                delay = self.reconnect.delay(attempt)
                attempt += 1
                self.log.warning(
                    "mesh link %r -> %r (%s) failed: %s; retrying in %.1f s",
                    self.mesh.name,
                    self.peer.name,
                    self.address,
                    exc.message,
                    delay,
                )
                await core.close("rejected")
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._set_up()
            await core.wait()  # the client redials by itself; it ends on goaway or rejection
            error = core.final_error
            self._set_down(str(error) if error is not None else "client closed")
            await asyncio.sleep(self.reconnect.delay(0))

    async def _send_loop(self) -> None:
        """Move queued frames onto the connection; drop what cannot go within the timeout."""
        sent_in_a_row = 0
        while True:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            data = self.queue.popleft()
            self.queued_bytes -= len(data)
            core = self.core
            conn = core.connection if core is not None else None
            if (
                conn is None
                or conn.closed
                or self.state != "up"
                or core is None
                or core.state is not ClientState.CONNECTED
            ):
                self.dropped_link_down += 1
                self._log_drops()
                continue
            try:
                await conn.drain(self.send_timeout)  # returns at once when there is room
                conn.send_nowait(data)
            except TimeoutError:
                self.dropped_send_timeout += 1
                self._log_drops()
                continue
            except ConnectionClosedError:
                self.dropped_link_down += 1
                self._log_drops()
                continue
            self.forwarded += 1
            self.bytes_forwarded += len(data)
            if isinstance(conn, TrackedConnection):
                self._sent(conn)
            sent_in_a_row += 1
            if sent_in_a_row >= 64:  # let the loop breathe while the queue drains
                sent_in_a_row = 0
                await asyncio.sleep(0)

    def stats(self) -> dict[str, Any]:
        forwarded, sent_bytes, queue_full, link_down, queued, unacked = (
            self.mesh.zipper.mesh_link_stats(self.peer.name) if self.mesh.native else None
        ) or (0, 0, 0, 0, 0, 0)
        queue_full += self.dropped_queue_full
        link_down += self.dropped_link_down
        unacked += self.dropped_unacknowledged
        return {
            "address": self.address,
            "state": self.state,
            "since": self.since,
            "forwarded": self.forwarded + forwarded,
            "bytes_forwarded": self.bytes_forwarded + sent_bytes,
            "dropped": queue_full + link_down + self.dropped_send_timeout + unacked,
            "dropped_link_down": link_down,
            "dropped_queue_full": queue_full,
            "dropped_send_timeout": self.dropped_send_timeout,
            "dropped_unacknowledged": unacked,
            "queued_frames": len(self.queue),
            "queued_bytes": self.queued_bytes + queued,
            "ups": self.ups,
            "downs": self.downs,
            "last_error": self.last_error,
        }


class Mesh:
    """The links of one zipper to its mesh peers; the server starts, stops and asks it.

    Args:
        zipper: the zipper whose frames are forwarded (its name, TLS and QUIC settings are used).
        peers: the configured peers; the one named like the zipper is skipped.
        options: how the links queue, send and redial (``yomo.zipper.options.MeshOptions``).
    """

    def __init__(
        self,
        zipper: MeshZipper,
        peers: Iterable[MeshPeer],
        options: MeshOptions = MeshOptions(),
    ) -> None:
        self.zipper = zipper
        self.name = zipper.name
        self.log = zipper.log.getChild("mesh")
        self.links: dict[str, Link] = {}
        for peer in peers:
            if peer.name == zipper.name or peer.name in self.links:
                continue
            self.links[peer.name] = Link(self, peer, options)
        self._remove_forwarder: Callable[[], None] | None = None
        #: On the native data path the zipper forwards to the links' connections itself
        #: (``Zipper.set_mesh_link``); Python only keeps them up and sends announcements.
        self.native = zipper.forwards_natively

    async def start(self) -> None:
        """Start every link in the background and begin forwarding; returns at once."""
        if self._remove_forwarder is not None or not self.links:
            return
        for link in self.links.values():
            link.start()
        self._remove_forwarder = (
            (lambda: None) if self.native else self.zipper.add_forwarder(self._forward)
        )
        self.log.info(
            "mesh %r: linking to %s",
            self.name,
            ", ".join(f"{n} ({link.address})" for n, link in self.links.items()),
        )

    def _forward(self, tag: int, metadata: bytes, encoded: bytes) -> None:
        for link in self.links.values():
            link.offer(encoded)

    def announce(self, encoded: bytes) -> None:
        """Send a frame of the zipper's own to every peer (the LLM function list). On the
        pure-Python path the mesh gets these as a forwarder already."""
        if self.native:
            for link in self.links.values():
                link.offer(encoded)

    async def stop(self, reason: str = "zipper is shutting down") -> None:
        """Stop forwarding and close every link."""
        remove, self._remove_forwarder = self._remove_forwarder, None
        if remove is None:
            return
        with contextlib.suppress(ValueError):
            remove()
        await asyncio.gather(*(link.stop(reason) for link in self.links.values()))

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per peer name: link state, frames forwarded, dropped (by reason) and queued."""
        return {name: link.stats() for name, link in self.links.items()}

    def link_states(self) -> dict[str, LinkState]:
        """Per peer name, the link's state."""
        return {name: link.state for name, link in self.links.items()}
