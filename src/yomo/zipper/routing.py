"""Routing on the pure-Python data path: read a client's frames, deliver them, hold producers.

Go: core/server.go handleFrame / dispatchToDownstreams. Each registered client
has a read loop; a DataFrame gets the client's merged metadata, goes through
the frame middleware (if any) and the router, and is written to every stream
function observing its tag (and wanted target), then handed to the forwarders
(the mesh) unless it came from a mesh peer. Reserved tags and any other frame
type close the writer, as Go does.

Slow consumers: with the default ``"block"`` policy nothing is dropped; a
producer whose frame went to a function that is not reading waits until that
function drains (QUIC flow control slows it in turn), while producers and
functions not involved keep flowing, and a function silent for ``dead_after``
while producers wait is closed. With ``"drop"`` a frame for a function whose
unsent backlog is over ``drop_threshold`` is dropped, counted and logged.
The native path does all of this in Rust (``native/src/``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import cast

from yomo.errors import ConnectionClosedError, ProtocolError, TimeoutError
from yomo.wire import (
    RESERVED_TAG_MAX,
    RESERVED_TAG_MIN,
    ClientType,
    DataFrame,
    decode_metadata,
    encode_data_frame,
    encode_metadata,
)
from yomo.wire import metadata as md_keys
from yomo.wire.resent import RESENT

from .hooks import (
    FrameContext,
    FrameHandler,
    MetadataRouter,
    compose,
)
from .options import ZipperOptions
from .registered import RegisteredClient, ZipperParts, clip, registered
from .resend import FORWARDING, ResendLedger
from .router import Router, TagRouter
from .startup_hold import StartupHold
from .stats import TagCounters

__all__ = [
    "DEAD_CHECK_INTERVAL",
    "RESERVED_TAG_MESSAGE",
    "Forwarder",
    "Routing",
]

#: Go v1.22.3 closes a connection that writes a reserved tag with this text
#: (Go: core/frame/frame.go ErrReservedTag, core/server.go RejectReservedTagMiddleware).
RESERVED_TAG_MESSAGE = "[0xF000, 0xFFFF] is reserved; please do not write within this range"
#: Seconds between checks of a connection a producer waits for.
DEAD_CHECK_INTERVAL = 0.25

Forwarder = Callable[[int, bytes, bytes], None]
"""Called with (tag, metadata bytes, encoded frame) for every frame that is not from a mesh peer."""


class Routing:
    """Routes, frame by frame, what registered clients write (the pure-Python data path).

    Args:
        options: the zipper's options (its router, frame middleware, slow-consumer
            policy: ``slow_consumer``, ``drop_threshold``, ``dead_after``, and
            ``startup_hold``: seconds after the start that frames nobody observes yet are
            held, ``yomo.zipper.startup_hold``; off with a custom router).
        parts: the zipper's counters (frames are counted in them), logger and registry
            (a metadata router's answers are looked up in it).
    """

    def __init__(self, options: ZipperOptions, parts: ZipperParts) -> None:
        self._stats = parts.stats
        self._log = parts.log
        self._connector = parts.connector
        router = options.router
        self._metadata_router: MetadataRouter | None = None
        self._router: Router[RegisteredClient] = TagRouter()
        if isinstance(router, MetadataRouter):
            self._metadata_router = router
        elif router is not None:
            # the zipper adds its RegisteredClient objects, so the router returns those
            self._router = cast("Router[RegisteredClient]", router)
        self._frame_middleware = tuple(options.frame_middleware)
        route: FrameHandler = self._route_context
        self._frame_handler = compose(route, self._frame_middleware)
        self._drop = options.slow_consumer == "drop"
        self._drop_threshold = options.drop_threshold
        self._dead_after = options.dead_after
        self.forwarders: list[Forwarder] = []
        """Called for every frame not from a mesh peer (the zipper's ``add_forwarder``)."""
        # the default tag router only: a custom one decides who observes what
        self.hold = StartupHold(options.startup_hold if router is None else 0.0)
        self.resend = ResendLedger()

    def welcome(self, client: RegisteredClient) -> None:
        """After its HandshakeAck: a new function gets what was held for it (startup_hold)."""
        if client.client_type != ClientType.STREAM_FUNCTION:
            return
        for tag, size, frame in self.hold.take_for(client.tags, client.wanted_target):
            client.conn.send_nowait(frame)
            client.frames_out += 1
            counters = self._stats.tag(tag)
            counters.frames_out += 1
            counters.bytes_out += size

    def expire_hold(self) -> None:
        """Once the startup hold is over: count what nobody took as unobserved."""
        for tag in self.hold.expire_due():
            self._stats.tag(tag).unobserved += 1
            self._stats.unobserved += 1

    def closed(self, client: RegisteredClient) -> None:
        """``client`` is gone: keep its re-send record a while (``yomo.zipper.resend``)."""
        if client.progress is not None:
            self.resend.closed(client.progress)

    def add(self, client: RegisteredClient) -> None:
        """Route to ``client`` the tags it observes (stream functions only)."""
        client.progress = self.resend.opened(client.client_id)
        if client.client_type != ClientType.STREAM_FUNCTION:
            return
        if self._metadata_router is not None:
            self._metadata_router.add(client)
        else:
            self._router.add(client.number, client.tags, client.wanted_target, client)

    def remove(self, number: int) -> None:
        """Forget every route to connection ``number``."""
        if self._metadata_router is not None:
            self._metadata_router.remove(number)
        else:
            self._router.remove(number)

    async def read_loop(self, client: RegisteredClient) -> None:
        """Route what ``client`` writes until its connection closes or misbehaves."""
        conn = client.conn
        read = conn.read_frame
        route = self.route
        reserved_min, reserved_max = RESERVED_TAG_MIN, RESERVED_TAG_MAX
        while True:
            try:
                frame = await read()
            except ConnectionClosedError:
                return
            except ProtocolError as exc:
                self._stats.protocol_errors += 1
                self._log.warning("closed %s: %s", client.describe(), clip(exc.message, 256))
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
                self._log.warning("closed %s: %s", client.describe(), message)
                conn.close(message)
                return
            try:
                waits = route(client, frame)
            except ProtocolError as exc:
                self._stats.protocol_errors += 1
                self._log.warning("closed %s: %s", client.describe(), exc.message)
                conn.close(exc.message)
                return
            if waits:
                for dest in waits:
                    await self._wait_for(dest)

    async def _wait_for(self, dest: RegisteredClient) -> None:
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
                elif silent_for() > self._dead_after:
                    unacked = conn.unacknowledged()
                    message = f"not answering for {self._dead_after:g} s"
                    self._log.warning(
                        "closed %s: %s; %d bytes routed to it were not acknowledged and are lost",
                        dest.describe(),
                        message,
                        unacked,
                    )
                    self._stats.dead_connections += 1
                    conn.close(message)
                    return

    def route(self, client: RegisteredClient, frame: DataFrame) -> list[RegisteredClient] | None:
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
        md = decode_metadata(raw_md)  # checked on every frame, as Go and the native path do
        mark = md.pop(RESENT, None)
        if client.progress is not None:  # whose frame, where: each destination once (resend.py)
            client.place = self.resend.admit(client.progress, client.frames_in - 1, mark)
        if mark is not None:
            raw_md = encode_metadata(md)
        if client.merge and _merge(md, client.merge):
            raw_md = encode_metadata(md)
        if self._frame_middleware or self._metadata_router is not None:
            ctx = FrameContext(client, tag, md, bytes(payload))
            ctx._received = (raw_md, dict(md))
            self._frame_handler(ctx)
            waits: list[RegisteredClient] | None = ctx._waits
            return waits
        dests = self._router.route(tag, md.get(md_keys.TARGET))
        return self._deliver(client, tag, raw_md, payload, dests, counters)

    def _route_context(self, ctx: FrameContext) -> None:
        """The innermost frame handler: route what the middleware left (Go: handleFrame)."""
        client = ctx.connection
        assert isinstance(client, RegisteredClient)
        tag, md = ctx.tag, ctx.metadata
        if self._metadata_router is not None:
            dests = []
            for c in self._metadata_router.route_frame(tag, md):
                dest = registered(self._connector, c.number)
                if dest is not None:
                    dests.append(dest)
        else:
            dests = self._router.route(tag, md.get(md_keys.TARGET))
        received = ctx._received
        # the received bytes go on unless a middleware changed the metadata
        raw_md = received[0] if received is not None and md == received[1] else encode_metadata(md)
        ctx._waits = self._deliver(client, tag, raw_md, ctx.payload, dests, self._stats.tag(tag))

    def _deliver(
        self,
        client: RegisteredClient,
        tag: int,
        raw_md: bytes,
        payload: bytes | memoryview,
        dests: list[RegisteredClient],
        counters: TagCounters,
    ) -> list[RegisteredClient] | None:
        """Send one frame to ``dests`` and the forwarders; returns who the producer waits for."""
        size = len(payload)
        from_mesh = client.client_type == ClientType.UPSTREAM_ZIPPER
        if not dests and (from_mesh or not self.forwarders):
            target = decode_metadata(raw_md).get(md_keys.TARGET, "") if raw_md else ""
            if self.hold.hold(tag, target, encode_data_frame(tag, raw_md, bytes(payload)), size):
                return None  # just after the start: for a function registering soon
            counters.unobserved += 1
            self._stats.unobserved += 1
            if self._log.isEnabledFor(logging.DEBUG):
                self._log.debug("no observer for tag 0x%x (%d bytes)", tag, size)
            return None
        encoded = encode_data_frame(tag, raw_md, bytes(payload))
        waits: list[RegisteredClient] | None = None
        drop = self._drop
        closed = 0
        place, fresh = client.place, self.resend.fresh
        for dest in dests:
            if place is not None and not fresh(*place, dest.number):
                continue  # it had this frame: a re-sent copy (resend.py)
            conn = dest.conn
            if conn.closed:  # gone, not unregistered yet
                closed += 1
                continue
            if drop and conn.send_backlog > self._drop_threshold:
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
        if closed == len(dests) and (from_mesh or not self.forwarders):
            counters.unobserved += 1  # every observer just went away: nobody got it
            self._stats.unobserved += 1
        if not from_mesh and self.forwarders and (place is None or fresh(*place, FORWARDING)):
            for forward in self.forwarders:
                forward(tag, raw_md, encoded)
        return waits

    def _count_drop(self, dest: RegisteredClient, tag: int, counters: TagCounters) -> None:
        dest.dropped += 1
        counters.dropped += 1
        self._stats.drops += 1
        now = time.monotonic()
        self._log.debug("dropped a frame of tag 0x%x for slow %s", tag, dest.describe())
        if now - dest.last_drop_log >= 1.0:
            dest.last_drop_log = now
            self._log.warning(
                "slow consumer %s: dropping frames (%d dropped so far, backlog %d bytes)",
                dest.describe(),
                dest.dropped,
                dest.conn.send_backlog,
            )


def _merge(md: dict[str, str], merge: Mapping[str, str]) -> bool:
    """Merge a connection's metadata into a frame's (an empty value deletes; Go:
    core/metadata.go Set); returns True when that changed ``md``."""
    changed = False
    for key, value in merge.items():
        if value:
            if md.get(key) != value:
                md[key] = value
                changed = True
        elif key in md:
            del md[key]
            changed = True
    return changed
