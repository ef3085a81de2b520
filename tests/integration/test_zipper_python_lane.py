"""The qh3 zipper's slow lane (``yomo.transport._lane``) with real qh3 clients.

Datagrams of quiet connections (no stream bytes for a while) wait in a FIFO that
loop callbacks drain a slice at a time; new connections and active ones go first.
Here: idle connections live through the lane past the idle timeout (their
keep-alive traffic goes through it), and while a burst of closes waits in the lane
a new client completes its whole handshake (QUIC, then HandshakeFrame ->
HandshakeAck) before any of them is processed, and a pair routes frames; every close is
then handled; and a quiet connection's wait in the lane stays out of its RTT (so out
of its PTO, and the idle and draining periods qh3 stretches to 3 PTO).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from yomo._version import SPEC_VERSION
from yomo.transport import DEFAULT_ZIPPER_SETTINGS, QuicSettings, dial
from yomo.wire import ClientType, HandshakeAckFrame, HandshakeFrame
from yomo.zipper.server import Zipper

from .helpers import PLAIN_TLS, Clients, eventually, frame_bytes

CROWD = 150
TAG = 0x22
QH3 = QuicSettings(backend="qh3")


def _lane(z: Zipper) -> Any:
    """The zipper's slow lane (its qh3 server's)."""
    return z._listener._server.lane  # type: ignore[union-attr]


async def _yomo_client(z: Zipper, name: str) -> Any:
    """A qh3 connection that completed the YoMo handshake (a source)."""
    host, port = z.address
    conn = await dial(host, port, tls=PLAIN_TLS, settings=QH3)
    conn.send_nowait(
        HandshakeFrame(name=name, id=name, client_type=ClientType.SOURCE, version=SPEC_VERSION)
    )
    reply = await asyncio.wait_for(conn.read_frame(), 30.0)
    assert isinstance(reply, HandshakeAckFrame), reply
    return conn


async def _crowd(z: Zipper) -> list[Any]:
    crowd = await asyncio.gather(*(_yomo_client(z, f"idle-{i}") for i in range(CROWD)))
    await eventually(lambda: len(z.connections()) == CROWD, f"{CROWD} connections", 30.0)
    return list(crowd)


async def test_idle_connections_live_through_the_lane(zipper):
    settings = dataclasses.replace(DEFAULT_ZIPPER_SETTINGS, backend="qh3")
    z = await zipper(quic=settings)
    lane = _lane(z)
    crowd = await _crowd(z)
    try:
        before = lane.deferred
        # past the idle timeout (5 s): the zipper's keep-alive PINGs and the clients'
        # ACKs of them keep the connections open; the ACKs come through the lane
        await asyncio.sleep(settings.idle_timeout + 1.5)
        assert len(z.connections()) == CROWD, "idle connections were lost in the lane"
        assert lane.deferred - before >= CROWD, "quiet connections' datagrams bypassed the lane"
        assert lane.dropped == 0
        assert not any(c.closed for c in crowd)
    finally:
        for c in crowd:
            c.abort("test done")


async def test_new_handshake_goes_before_queued_closes(zipper, clients: Clients):
    settings = dataclasses.replace(DEFAULT_ZIPPER_SETTINGS, backend="qh3")
    z = await zipper(quic=settings)
    lane = _lane(z)
    crowd = await _crowd(z)
    await asyncio.sleep(lane.quiet_after + 0.5)  # the crowd is quiet now
    # the lane holds what it drains until the new client is in (a slice of any length
    # would race the handshake's loop turns): the closes stay unprocessed meanwhile
    held: list[tuple[bytes, Any, float]] = []
    deliver = lane._deliver
    lane._deliver = lambda *datagram: held.append(datagram)
    for c in crowd:
        c.close("mass close")
    await eventually(lambda: held or lane.pending, "closes queued in the lane", 10.0)

    newcomer = await _yomo_client(z, "newcomer")
    assert len(z.connections()) == CROWD + 1, "a close was processed before the newcomer"
    assert held or lane.pending

    lane._deliver = deliver
    for datagram in held:
        deliver(*datagram)
    _, inbox = await clients.sfn(z, "lane-sfn", [TAG], quic=QH3)
    src = await clients.source(z, name="lane-source", quic=QH3)
    for i in range(20):
        await src.send(frame_bytes(TAG, f"frame {i}".encode()))
    await eventually(lambda: inbox.count(TAG) == 20, "the pair's 20 frames", 20.0)
    await eventually(
        lambda: sorted(c.name for c in z.connections()) == ["lane-sfn", "lane-source", "newcomer"],
        "every close handled",
        20.0,
    )
    assert lane.pending == 0 and lane.dropped == 0
    newcomer.abort("test done")


async def test_the_wait_in_the_lane_is_no_round_trip_time(zipper):
    settings = dataclasses.replace(DEFAULT_ZIPPER_SETTINGS, backend="qh3")
    z = await zipper(quic=settings)
    lane = _lane(z)
    client = await _yomo_client(z, "quiet")
    (protocol,) = set(z._listener._server._fast_ids.values())  # type: ignore[union-attr]
    core = protocol.quic._core  # qh3's connection state (its RTT estimate, PTO count)
    await asyncio.sleep(lane.quiet_after + 0.5)  # quiet now
    samples: list[float] = []  # the RTT estimate's latest sample after each delivery
    deliver = lane._deliver

    def recording(*datagram: Any) -> None:
        deliver(*datagram)
        samples.append(core.latest_rtt)

    lane._deliver = recording
    lane._drain = lambda: None  # the lane holds what waits there
    probes = core.pto_total
    protocol.conn.ping_nowait()  # the client's ACK of it waits in the lane
    await eventually(lambda: lane.pending, "the PING's ACK waiting in the lane", 10.0)
    hold = 2.0
    await asyncio.sleep(hold)
    fired = core.pto_total - probes
    del lane._drain
    lane._drain()
    await eventually(lambda: not lane.pending and samples, "the lane drained", 10.0)
    # no PTO probe after PTO probe while the ACK waited (each one's ACK queued too)
    assert fired == 0, f"{fired} PTO probes while the ACK waited in the lane"
    # processed as of its arrival, the ACK's RTT sample is the loopback's, not the hold
    assert max(samples) < hold / 2, samples
    assert core.smoothed_rtt < hold / 2
    assert not protocol.lane_timer  # its timer runs again
    assert not client.closed and len(z.connections()) == 1
    client.abort("test done")
