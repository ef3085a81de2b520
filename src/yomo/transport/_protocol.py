"""The asyncio protocol under a ``FrameConnection`` for the qh3 and aioquic backends.

qh3 is a fork of aioquic, so one subclass of each library's
``QuicConnectionProtocol`` serves both (``make_protocol_class``). What it adds:
a reader that can pause (held datagrams, a trickle that keeps the idle timer
quiet, PINGs while paused), qh3's batched receive, aioquic's batched send
behind the zipper's shared qh3 socket, and an early look at a peer's close.
Library internals are reached only through ``_compat``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from . import _compat as compat
from ._common import describe_code, retrieve
from ._frame_connection import FrameConnection

__all__ = ["make_protocol_class", "route_event"]

#: Datagrams of a received batch fed to QUIC at once; a pause takes effect between slices.
_BATCH_SLICE = 8
#: Seconds between the PINGs a paused reader sends to show it is alive.
_PAUSED_PING = 0.2


def make_protocol_class(name: str, base_protocol: type[Any], events: Any) -> type[Any]:
    """A ``QuicConnectionProtocol`` subclass of library ``name`` that feeds a ``FrameConnection``."""
    batched_transmit = name == "aioquic"
    own_transmit = name == "qh3"
    terminated = events.ConnectionTerminated

    class _YomoProtocol(base_protocol):  # type: ignore[valid-type,misc]
        # the zipper's slow lane (``_lane.SlowLane``): datagrams of ours waiting
        # there, stream bytes moved when it last looked, and when they last moved
        lane_waiting = 0
        lane_moved = 0
        lane_active = 0.0
        lane_timer = False  # its timer fired while datagrams waited there

        async def wait_connected(self) -> None:
            try:
                await super().wait_connected()
            finally:
                # A dial that times out leaves the library's waiter behind; its
                # ConnectionError is reported by dial(), so retrieve it here.
                waiter = compat.connected_waiter(self)
                if waiter is not None:
                    waiter.add_done_callback(retrieve)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.conn: FrameConnection | None = None
            self.quic = compat.quic_of(self)
            self.event_loop = compat.loop_of(self)
            self.paused = False
            self.held: deque[tuple[bytes, Any]] = deque()
            self.on_handshake: Callable[[Any], None] | None = None
            self.last_rx = self.event_loop.time()

        # -- flow control on the receive side --
        def datagram_received(self, data: bytes | str, addr: Any) -> None:
            now = self.last_rx = self.event_loop.time()
            self.receive_at(data, addr, now)  # type: ignore[arg-type]

        def receive_at(self, data: bytes, addr: Any, now: float) -> None:
            """Process a datagram as if now were ``now``, when it arrived.

            The zipper's slow lane processes a quiet connection's datagram late;
            giving QUIC its arrival time keeps that wait out of the connection's RTT
            samples, so its PTO (and the idle and draining periods qh3 stretches to
            3 PTO) stays what the path needs.
            """
            if self.lane_timer and not self.lane_waiting:  # the last one: re-arm it
                self.lane_timer = False
                compat.transmit_soon(self)
            if self.paused:
                conn = self.conn
                if len(self.held) < (conn.settings.held_datagrams if conn else 512):
                    self.held.append((data, addr))  # type: ignore[arg-type]
                elif conn is not None:
                    conn.datagrams_dropped += 1
                return
            # Feed the datagram now but transmit once per loop turn: a burst of
            # datagrams then costs one batch of ACKs instead of one per packet.
            self.quic.receive_datagram(data, addr, now=now)
            compat.process_events(self)
            self._check_peer_close()
            compat.transmit_soon(self)

        def _handle_timer(self) -> None:
            if self.lane_waiting:
                # The peer's datagrams wait in the zipper's slow lane, and they may
                # answer what this deadline is for (the ACK a PTO would probe for;
                # any datagram, for the idle timer). Firing now sent a PTO probe
                # after another while the ACK waited (and the probes' ACKs queued
                # behind it). The lane's last delivery arms the timer again.
                compat.forget_timer(self)
                self.lane_timer = True
                return
            super()._handle_timer()

        def _check_peer_close(self) -> None:
            # A peer's CONNECTION_CLOSE is an event only after the draining period
            # (about 3 PTO); tell our reader at once, with the peer's reason.
            conn = self.conn
            if conn is None or conn.closed:
                return
            close = compat.close_event(self.quic)
            if close is not None:
                reason, code = close
                conn.on_terminated(reason or describe_code(code), remote=True)

        def datagrams_received(self, data: list[bytes], addr: Any) -> None:
            # qh3's batched UDP transport (recvmmsg/GRO, used by its clients) hands
            # whole batches here and never calls datagram_received; without this a
            # paused reader kept taking data and its queue grew without bound.
            # Feed it in small slices, so a pause stops the rest of the batch.
            quic = self.quic
            loop = self.event_loop
            self.last_rx = loop.time()
            many = getattr(quic, "receive_many_datagrams", None)
            start, end = 0, len(data)
            while start < end and not self.paused and many is not None:
                many(data[start : start + _BATCH_SLICE], addr, now=loop.time())
                compat.process_events(self)
                start += _BATCH_SLICE
            for datagram in data[start:]:
                self.datagram_received(datagram, addr)  # holds them while paused
            if start:
                self._check_peer_close()
                compat.transmit_soon(self)

        def pause_reading(self) -> None:
            """Stop feeding datagrams to QUIC (the connection's reader is behind)."""
            if not self.paused:
                self.paused = True
                self._schedule_trickle()
                self.event_loop.call_later(_PAUSED_PING, self._ping_while_paused)

        def _ping_while_paused(self) -> None:
            # Held datagrams are not acknowledged (that is what slows the peer), so
            # show the peer we are alive: a PING every _PAUSED_PING s keeps its
            # dead-zipper watchdog (ClientCore, ReconnectPolicy.dead_after) quiet.
            conn = self.conn
            if not self.paused or conn is None or conn.closed:
                return
            conn.ping_nowait()
            self.event_loop.call_later(_PAUSED_PING, self._ping_while_paused)

        def _schedule_trickle(self) -> None:
            # While paused, let one held datagram through now and then so that
            # the connection's idle timer never fires for a merely slow reader.
            # The idle timeout in force is the smaller of ours and the peer's (a
            # client's 40 s meets the zipper's 5 s), so pace by that.
            conn = self.conn
            idle = conn.settings.idle_timeout if conn is not None else 5.0
            peer = compat.peer_idle_timeout(self.quic)
            if peer is not None:
                idle = min(idle, peer)
            self.event_loop.call_later(max(idle / 4, 0.05), self._trickle)

        def _trickle(self) -> None:
            if not self.paused:
                return
            conn = self.conn
            # Trickling adds to the reader's queue; past twice the high-water mark
            # it stops, so memory stays bounded even for a reader stalled for hours
            # (the connection then times out and the client reconnects).
            full = conn is not None and conn.recv_backlog > 2 * conn.settings.recv_high_water
            if self.held and not full:
                data, addr = self.held.popleft()
                super().datagram_received(data, addr)
            if self.paused and not (self.conn is not None and self.conn.closed):
                self._schedule_trickle()

        def resume_reading(self) -> None:
            """Feed the held datagrams and take new ones again (the reader caught up)."""
            if not self.paused:
                return
            self.paused = False
            held, self.held = self.held, deque()
            while held and not self.paused:
                data, addr = held.popleft()
                super().datagram_received(data, addr)
            if held:  # paused again while replaying: keep the rest
                held.extend(self.held)
                self.held = held
            conn = self.conn
            if conn is not None:
                conn.check_drained()

        def transmit(self) -> None:
            if own_transmit:  # qh3: see compat.datagrams_to_send
                compat.transmit_qh3(self)
            elif not (batched_transmit and compat.transmit_batched(self)):
                super().transmit()
            conn = self.conn
            if conn is not None and not conn.has_room:
                conn.check_drained()

        def quic_event_received(self, event: Any) -> None:
            route_event(self, event, events)
            if type(event) is terminated:
                self._release()

        def _release(self) -> None:
            # The connection ended: break the cycles it is part of, so reference
            # counting frees it once its owners let go (a mass close then leaves
            # nothing for the cycle collector; docs/transport.md).
            self.conn = None  # the FrameConnection keeps pointing here, not back
            compat.release_terminated(self)

        def connection_lost(self, exc: Exception | None) -> None:
            # A dialled connection's own socket closed (the zipper's shared one
            # never calls this on a connection): nothing more can come or go.
            conn = self.conn
            if conn is not None:
                conn.on_terminated("the connection's socket closed", remote=False)
            self._release()
            if own_transmit:
                compat.transport_lost(self)

    _YomoProtocol.__name__ = f"YomoProtocol_{name}"
    return _YomoProtocol


def route_event(protocol: Any, event: Any, events: Any) -> None:
    """Hand one library event (from module ``events``) to the protocol's connection.

    Every backend's protocol routes its events here: stream data and the end of
    the connection go to ``protocol.conn``, a completed handshake to
    ``protocol.on_handshake``.
    """
    conn = protocol.conn
    if isinstance(event, events.StreamDataReceived):
        if conn is not None:
            conn.on_stream_data(event.stream_id, event.data, event.end_stream)
    elif isinstance(event, events.HandshakeCompleted):
        if protocol.on_handshake is not None:
            protocol.on_handshake(protocol)
    elif isinstance(event, events.ConnectionTerminated):
        if conn is not None:
            reason = event.reason_phrase or describe_code(event.error_code)
            conn.on_terminated(reason, remote=True)
