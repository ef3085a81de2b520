"""Slow consumers on a real zipper, with small buffers so the limits are reached quickly.

"block": the producer feeding a stalled function waits, others keep flowing, nothing is
lost. "drop": frames for the stalled function are dropped and counted, the producer is
never held up. Either way the zipper's buffers for the two stay under their bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, replace

from yomo.transport import DEFAULT_ZIPPER_SETTINGS, QuicSettings

from .helpers import Inbox, Pair, eventually, frame_bytes, seq_payload

KIB = 1024
SLOW_TAG = 0x51
FAST_TAG = 0x52
SIZE = 8 * KIB
COUNT = 600  # 4.8 MB: several times everything the path from producer to function can hold
BUFFERS = {
    "send_high_water": 64 * KIB,
    "recv_high_water": 256 * KIB,
    "max_data": 256 * KIB,
    "max_stream_data": 256 * KIB,
    "held_datagrams": 256,  # more than a window's worth: pausing loses no datagram
}
ZIPPER_QUIC = replace(DEFAULT_ZIPPER_SETTINGS, **BUFFERS)
CLIENT_QUIC = QuicSettings(**BUFFERS)
#: a writer waits once over its high-water mark: one more frame may be queued; bytes the
#: peer has not acknowledged (at most its receive window) may count again when resent
SEND_BOUND = BUFFERS["send_high_water"] + BUFFERS["max_stream_data"] + SIZE + 64
#: reading pauses once over the high-water mark; what QUIC already holds for the stream
#: (at most its receive window, e.g. data past a gap) may still be delivered at once
RECV_BOUND = BUFFERS["recv_high_water"] + BUFFERS["max_stream_data"] + SIZE + 64


@dataclass
class Peaks:
    """Largest zipper-side backlogs seen for the stalled function and its producer."""

    slow_send: int = 0
    producer_recv: int = 0
    samples: int = 0


async def _sample(z, peaks: Peaks) -> None:
    while True:
        for c in z.connections():
            if c.name == "slow":
                peaks.slow_send = max(peaks.slow_send, c.send_backlog)
            elif c.name == "producer":
                peaks.producer_recv = max(peaks.producer_recv, c.recv_backlog)
        peaks.samples += 1
        await asyncio.sleep(0.002)


async def _setup(zipper, clients, **options):
    z = await zipper(quic=ZIPPER_QUIC, **options)
    gate = asyncio.Event()
    slow_inbox = Inbox(gate=gate)
    await clients.sfn(z, "slow", [SLOW_TAG], inbox=slow_inbox, quic=CLIENT_QUIC)
    producer = await clients.source(z, "producer", quic=CLIENT_QUIC)
    pair = await Pair.start(clients, z, FAST_TAG)
    return z, gate, slow_inbox, producer, pair


class Producer:
    def __init__(self, core) -> None:
        self.core = core
        self.sent = 0

    async def run(self) -> None:
        for i in range(COUNT):
            await self.core.send(frame_bytes(SLOW_TAG, seq_payload(i, SIZE)))
            self.sent += 1


def _info(z, name: str):
    return next(c for c in z.connections() if c.name == name)


async def _until_zipper_stops_reading_producer(z) -> None:
    """Wait until backpressure has reached the producer: the zipper has stopped reading it.

    The pure-Python path queues the producer's frames until its queue passes the
    high-water mark; the native path stops reading the producer once the function's
    queue passes the mark and leaves the producer's bytes to QUIC flow control. It lets
    the producer go only below half the mark, and while it holds it the queue still
    drains into the function's stream window, so the queue may settle anywhere above
    half the mark. Bounded waits: a loaded machine (the full suite) needs more than 5 s.
    """
    if z.backend.startswith("native"):
        await eventually(
            lambda: _info(z, "slow").send_backlog > BUFFERS["send_high_water"] // 2,
            "the zipper's queue to the stalled function to stay above its release mark",
            timeout=30.0,
        )
        return
    await eventually(
        lambda: _info(z, "producer").recv_backlog > BUFFERS["recv_high_water"],
        "the zipper's queue from the producer to pass its high-water mark",
        timeout=30.0,
    )


async def test_block_policy_stalls_only_the_producer_of_a_slow_function(zipper, clients):
    z, gate, slow_inbox, producer_core, pair = await _setup(zipper, clients, slow_consumer="block")
    peaks = Peaks()
    sampler = asyncio.ensure_future(_sample(z, peaks))
    producer = Producer(producer_core)
    task = asyncio.ensure_future(producer.run())
    try:
        await slow_inbox.wait_count(1)  # the function is now stuck in its handler
        await _until_zipper_stops_reading_producer(z)
        # an unrelated pair keeps flowing while the producer is held up
        await pair.send(300, size=SIZE)
        await pair.check()
        stalled_at = producer.sent
        await pair.send(100, size=SIZE)
        await pair.check()
        assert not task.done()
        assert producer.sent < COUNT
        # the producer may creep forward only by what the bounded buffers let through
        assert producer.sent - stalled_at < 64
        assert slow_inbox.count() == 1
        assert z.stats()["drops"] == 0

        gate.set()
        await asyncio.wait_for(task, 15.0)
        await slow_inbox.wait_count(COUNT, timeout=15.0)
        assert slow_inbox.seqs() == list(range(COUNT))
    finally:
        sampler.cancel()
        task.cancel()
        gate.set()
    assert peaks.samples > 10
    assert 0 < peaks.slow_send <= SEND_BOUND
    assert peaks.producer_recv <= RECV_BOUND
    stats = z.stats()
    assert stats["drops"] == 0
    assert stats["tags"][SLOW_TAG]["frames_out"] == COUNT
    assert stats["tags"][FAST_TAG]["frames_out"] == pair.sent


async def test_drop_policy_drops_and_counts_for_a_slow_function(zipper, clients):
    threshold = 128 * KIB
    z, gate, slow_inbox, producer_core, pair = await _setup(
        zipper, clients, slow_consumer="drop", drop_threshold=threshold
    )
    peaks = Peaks()
    sampler = asyncio.ensure_future(_sample(z, peaks))
    producer = Producer(producer_core)
    try:
        await slow_inbox.wait_count(0)
        # the producer is never held up by the stalled function
        task = asyncio.ensure_future(producer.run())
        # small frames: the pair's whole traffic fits under the threshold, so it never drops
        await pair.send(200, size=64)
        await asyncio.wait_for(task, 15.0)
        await pair.check()
        # every frame the zipper got is either sent to the function or dropped
        await eventually(
            lambda: z.stats()["tags"][SLOW_TAG]["frames_in"] == COUNT, "all frames routed"
        )
        stats = z.stats()
        drops = stats["drops"]
        assert drops > 0
        slow_tag = stats["tags"][SLOW_TAG]
        assert slow_tag["dropped"] == drops
        assert slow_tag["frames_out"] + drops == COUNT
        info = _info(z, "slow")
        assert info.dropped == drops
        assert info.frames_out == COUNT - drops
        assert _info(z, "pair-sfn").dropped == 0
        assert stats["tags"][FAST_TAG]["dropped"] == 0
        assert slow_inbox.count() == 1

        gate.set()
        await slow_inbox.wait_count(COUNT - drops, timeout=15.0)
        seqs = slow_inbox.seqs()
        assert len(seqs) == COUNT - drops
        assert seqs == sorted(set(seqs))  # in order, no duplicates
        assert seqs[0] == 0
    finally:
        sampler.cancel()
        gate.set()
        with contextlib.suppress(Exception):
            task.cancel()
    assert peaks.samples > 10
    assert 0 < peaks.slow_send <= threshold + BUFFERS["max_stream_data"] + SIZE + 64
    assert peaks.producer_recv <= RECV_BOUND
    # the function that keeps up lost nothing
    await pair.send(50, size=64)
    await pair.check()


async def test_block_policy_slow_function_does_not_stall_other_functions_of_same_producer(
    zipper, clients
):
    """One producer, two tags: the frames for the healthy function are delayed only behind
    frames already accepted, and everything arrives once the stalled one resumes."""
    z = await zipper(quic=ZIPPER_QUIC, slow_consumer="block")
    gate = asyncio.Event()
    slow = Inbox(gate=gate)
    await clients.sfn(z, "slow", [SLOW_TAG], inbox=slow, quic=CLIENT_QUIC)
    _, healthy = await clients.sfn(z, "healthy", [FAST_TAG], quic=CLIENT_QUIC)
    src = await clients.source(z, "producer", quic=CLIENT_QUIC, write_timeout=20.0)

    async def produce() -> None:
        for i in range(200):
            await src.send(frame_bytes(SLOW_TAG, seq_payload(i, SIZE)))
            await src.send(frame_bytes(FAST_TAG, seq_payload(i, 16)))

    task = asyncio.ensure_future(produce())
    try:
        await slow.wait_count(1)
        await healthy.wait_count(1)
        assert not task.done()
        gate.set()
        await asyncio.wait_for(task, 15.0)
        await slow.wait_count(200, timeout=15.0)
        await healthy.wait_count(200, timeout=15.0)
    finally:
        gate.set()
        task.cancel()
    assert slow.seqs() == list(range(200))
    assert healthy.seqs() == list(range(200))
    assert z.stats()["drops"] == 0


async def test_stalled_function_outlives_the_idle_timeout(zipper, clients):
    """A function stuck in its handler for several idle timeouts keeps its connection."""
    idle = 0.6
    z = await zipper(quic=replace(ZIPPER_QUIC, idle_timeout=idle, keep_alive=idle / 3))
    gate = asyncio.Event()
    slow = Inbox(gate=gate)
    core, _ = await clients.sfn(z, "slow", [SLOW_TAG], inbox=slow, quic=CLIENT_QUIC)
    src = await clients.source(z, "producer", quic=CLIENT_QUIC)
    lost: list[BaseException] = []
    core.add_error_handler(lost.append)
    producer = Producer(src)
    task = asyncio.ensure_future(producer.run())
    try:
        await _until_zipper_stops_reading_producer(z)
        await asyncio.sleep(idle * 4)
        assert lost == []
        assert core.connection_id.endswith("-0")
        gate.set()
        await asyncio.wait_for(task, 15.0)
        await slow.wait_count(COUNT, timeout=15.0)
    finally:
        gate.set()
        task.cancel()
    assert slow.seqs() == list(range(COUNT))
    assert lost == []
    assert [c.client_id for c in z.connections() if c.name == "slow"] == [core.connection_id]
