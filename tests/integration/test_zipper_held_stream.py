"""A producer held by a slow function under ``block``, on the native path, with the
default windows: nothing lost, nothing twice, order kept, no connection closed.

quinn-proto 0.11.19 keeps a stream's unread bytes as one piece per STREAM frame and
closes the connection ("too many gaps in stream buffer") once compaction leaves more
than 1,024 pieces; full packets are kept apart from the runs of small ones between
them (docs/guarantees.md, native/src/credit.rs). The producer here writes that mix on
purpose: one ~1 KiB frame in a packet of its own, then two tiny frames in a packet
each, and writes only while nothing is queued (flow control open), so the pattern
reaches the zipper as sent. Before the fix, the zipper (reading nothing while it held
the producer) closed the producer's connection, or the function's own connection
closed the same way while its inbox was full; the frames in those buffers were lost.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from support.zippers import PLAIN_TLS
from yomo._version import SPEC_VERSION
from yomo.transport import QuicSettings, dial
from yomo.transport import _compat as compat
from yomo.wire import ClientType, HandshakeFrame

from .helpers import Inbox, eventually, frame_bytes, seq_payload

TAG = 0x61
BIG = 1050  # with its header and the packet's, one frame fills a 1,200-byte packet
#: (small frame's payload, small frames per big one): the first mix ended the producer's
#: connection first, the second often the function's (measured before the fix)
PATTERNS = [(20, 2), (0, 3)]
#: the function's own inbox is kept small so the hold comes sooner; its QUIC windows
#: (and the zipper's) are the defaults: 2 MiB
FUNCTION_QUIC = QuicSettings(recv_high_water=256 * 1024)
#: the producer is flow-controlled (nothing leaves its queue) this long: the zipper holds it
BLOCKED_FOR = 0.5
#: the least credit the native zipper grants past the bytes read (native/src/credit.rs)
READ_AHEAD = 128 * 1024
#: ... and the most: this many of the producer's pieces (STREAM frames) of their average
#: size, half of what makes quinn compact its buffer at all (credit.rs `PIECES`)
PIECES = 1024


class PatternProducer:
    """A source on a pure-Python QUIC stack (qh3, or aioquic) that sends one packet per frame."""

    def __init__(self, conn, small: int, smalls: int, big: int = BIG) -> None:
        self.conn = conn
        self.small = small
        self.smalls = smalls
        self.big = big
        self.quic = conn._quic
        self.protocol = conn._protocol
        self.stream = conn._stream_id
        self.sent = 0
        #: stream bytes written: one packet per frame, so each frame is one piece
        self.bytes = 0
        #: aioquic only: the most credit the zipper granted past the bytes sent
        self.headroom = 0

    def _send(self, size: int) -> None:
        data = frame_bytes(TAG, seq_payload(self.sent, size))
        self.quic.send_stream_data(self.stream, data)
        self.sent += 1
        self.bytes += len(data)
        self.protocol.transmit()
        self.look()

    def look(self) -> None:
        """Note the zipper's credit past what was sent (aioquic shows its MAX_DATA)."""
        if hasattr(self.quic, "_remote_max_data"):
            granted = self.quic._remote_max_data - self.quic._remote_max_data_used
            self.headroom = max(self.headroom, granted)

    def _send_group(self) -> None:
        self._send(self.big)
        for _ in range(self.smalls):
            self._send(self.small)

    async def run_until_blocked(self, limit: float) -> bool:
        """Write big/small/small until flow control holds the producer for BLOCKED_FOR
        (True), or the connection closes or ``limit`` seconds pass (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        blocked_since: float | None = None
        while not self.conn.closed and loop.time() < deadline:
            self.look()
            if compat.unsent_stream_bytes(self.quic, self.stream) > 0:
                now = loop.time()
                blocked_since = blocked_since or now
                if now - blocked_since >= BLOCKED_FOR:
                    return True
                await asyncio.sleep(0.002)
                continue
            blocked_since = None
            self._send_group()
            await asyncio.sleep(0)
        return False

    async def run_for(self, seconds: float) -> None:
        """Write the same pattern for ``seconds`` (the zipper reading: flow control open)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.conn.closed and loop.time() < deadline:
            self.look()
            if compat.unsent_stream_bytes(self.quic, self.stream) > 0:
                await asyncio.sleep(0.002)
                continue
            self._send_group()
            await asyncio.sleep(0)


async def _producer(
    z, small: int, smalls: int, backend: str = "qh3", big: int = BIG
) -> PatternProducer:
    host, port = z.address
    conn = await dial(host, port, tls=PLAIN_TLS, settings=QuicSettings(backend=backend))
    conn.send_nowait(
        HandshakeFrame(
            name="producer", id="producer-0", client_type=ClientType.SOURCE, version=SPEC_VERSION
        )
    )
    await asyncio.wait_for(conn.read_frame(), 5.0)
    return PatternProducer(conn, small, smalls, big)


@pytest.mark.parametrize(("small", "smalls"), PATTERNS)
async def test_held_producer_loses_nothing_with_default_windows(
    zipper, clients, caplog, small, smalls
):
    caplog.set_level(logging.INFO, logger="yomo")
    z = await zipper()  # default windows, slow_consumer="block"
    if not z.backend.startswith("native"):
        pytest.skip(f"the native data path is not in use ({z.backend})")
    gate = asyncio.Event()
    inbox = Inbox(gate=gate)
    await clients.sfn(z, "slow", [TAG], inbox=inbox, quic=FUNCTION_QUIC)
    producer = await _producer(z, small, smalls)
    try:
        # the function stops in its first handler: its inbox, its window, the zipper's
        # queue to it and then the producer's window fill up; the producer is held
        held = await producer.run_until_blocked(limit=20.0)
        closes = [r.getMessage() for r in caplog.records if "too many gaps" in r.getMessage()]
        assert not closes, f"connections closed: {closes}"
        assert not producer.conn.closed, f"producer closed: {producer.conn.close_reason}"
        assert held, f"the zipper never held the producer ({producer.sent} frames written)"
        assert inbox.count() == 1
        gate.set()
        # released: it flows again, with the windows reopened
        await producer.run_for(1.0)
        assert not producer.conn.closed, f"producer closed: {producer.conn.close_reason}"
        written = producer.sent
        await inbox.wait_count(written, timeout=20.0)
        await eventually(lambda: inbox.count() >= written, "every frame", 1.0)
    finally:
        gate.set()
        await producer.conn.aclose("test done")
    seqs = inbox.seqs(TAG)
    missing = sorted(set(range(written)) - set(seqs))
    assert not missing, f"{len(missing)} frames lost, first {missing[:5]}"
    assert len(seqs) == len(set(seqs)), f"{len(seqs) - len(set(seqs))} frames delivered twice"
    assert seqs == list(range(written)), "frames out of order"
    assert "too many gaps" not in caplog.text
    assert z.stats()["unobserved"] == 0  # the function was never away
    assert z.stats()["tags"][TAG]["frames_out"] == written


#: (big frame's payload, small frame's payload, small frames per big one, held): the mix
#: of full and small packets of the held-producer tests, only full packets, and only small
#: ones (not held: too slow a producer to fill the function's windows in time)
CREDIT_PATTERNS = [(BIG, 20, 2, True), (BIG, BIG, 0, True), (20, 20, 3, False)]


@pytest.mark.parametrize(("big", "small", "smalls", "hold"), CREDIT_PATTERNS)
async def test_the_zipper_grants_at_most_1024_pieces_past_the_bytes_sent(
    zipper, clients, big, small, smalls, hold
):
    """What quinn may buffer for a producer, unread, is bounded whatever the zipper's
    reading task does: the credit (MAX_DATA) the zipper grants never passes the bytes
    the producer sent by more than 1,024 of its pieces (STREAM frames, one per packet
    here) of their average size, or `READ_AHEAD` if that is more, flowing, held for a
    slow function, and released (credit.rs: a reading task that does not run for tens of
    milliseconds on a loaded machine let a full-speed Go source fill 2 MiB of quinn's
    buffer in small pieces, and the connection closed with 'too many gaps', 1 bench run
    in 40; quinn compacts at 2,048 pieces). A producer of full packets gets more than
    `READ_AHEAD` (a full-speed one would wait for credit otherwise), one of small
    packets no more. Seen from the producer (aioquic shows the zipper's MAX_DATA);
    nothing is lost either."""
    z = await zipper()
    if not z.backend.startswith("native"):
        pytest.skip(f"the native data path is not in use ({z.backend})")
    gate = asyncio.Event()
    inbox = Inbox(gate=gate)
    await clients.sfn(z, "slow", [TAG], inbox=inbox, quic=FUNCTION_QUIC)
    producer = await _producer(z, small, smalls, backend="aioquic", big=big)
    try:
        await producer.run_for(0.5)  # flowing: the function takes what comes
        assert producer.sent > 0 and not producer.conn.closed
        if hold:
            held = await producer.run_until_blocked(limit=20.0)
            assert held, f"the zipper never held the producer ({producer.sent} frames written)"
        gate.set()
        await producer.run_for(1.0)  # released: the held bytes are routed, the window reopens
        written = producer.sent
        await inbox.wait_count(written, timeout=20.0)
    finally:
        gate.set()
        await producer.conn.aclose("test done")
    piece = producer.bytes / producer.sent
    # 5 %: the zipper averages whole 64 KiB spans, a group of frames may straddle two
    bound = max(READ_AHEAD, PIECES * piece * 1.05)
    assert 0 < producer.headroom <= bound, (producer.headroom, piece)
    if PIECES * piece > 2 * READ_AHEAD:
        assert producer.headroom > READ_AHEAD, (producer.headroom, piece)
    seqs = inbox.seqs(TAG)
    assert seqs == list(range(written)), "frames lost, twice or out of order"
