"""Fuzz the wire decoder: any input must yield frames or raise ProtocolError, nothing else.

With atheris installed this is a libFuzzer target (coverage-guided); without it, a
hypothesis-driven loop over random and mutated inputs, bounded in time. Same flag both ways:

    python fuzz/fuzz_decoder.py -max_total_time=60

Checks per input: decode_frame, FrameDecoder fed whole and in chunks (same result either
way), decode_packet and decode_metadata raise only ProtocolError, and a decoded frame
re-encodes to bytes that decode to the same frame.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

try:
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]
except ImportError:  # the fallback below needs only hypothesis
    atheris = None

if atheris is not None:
    with atheris.instrument_imports():
        from yomo.errors import ProtocolError
        from yomo.wire import (
            FrameDecoder,
            decode_frame,
            decode_metadata,
            decode_packet,
            encode_frame,
        )
else:
    from yomo.errors import ProtocolError
    from yomo.wire import FrameDecoder, decode_frame, decode_metadata, decode_packet, encode_frame

#: Go's vectors: the repository's copy, and the project's shared one where it exists.
VECTORS = (
    Path(__file__).resolve().parents[1] / "tests" / "data" / "go_frames.json",
    Path(__file__).resolve().parents[2] / "shared" / "vectors" / "frames.json",
)


def _frames_or_error(data: bytes, chunk: int) -> tuple[list[object], bool]:
    decoder = FrameDecoder(max_frame_size=1 << 16)
    got: list[object] = []
    try:
        for i in range(0, len(data), chunk):
            got += decoder.feed(data[i : i + chunk])
    except ProtocolError:
        assert decoder.buffered == 0
        return got, True
    assert decoder.buffered <= (1 << 16) + 6
    return got, False


def test_one_input(data: bytes) -> None:
    """The fuzz target. Raises AssertionError (or anything not a ProtocolError) on a bug."""
    try:
        frame = decode_frame(data)
    except ProtocolError:
        pass
    else:
        again = encode_frame(frame)
        assert decode_frame(again) == frame, (data.hex(), frame)

    whole, whole_failed = _frames_or_error(data, max(len(data), 1))
    chunk = (data[0] % 7 + 1) if data else 1
    parts, parts_failed = _frames_or_error(data, chunk)
    assert whole_failed == parts_failed, data.hex()
    if not whole_failed:
        assert whole == parts, data.hex()

    for fn in (decode_packet, decode_metadata):
        try:
            fn(data)
        except ProtocolError:
            pass


def _seeds() -> list[bytes]:
    seeds = [b"\xa9\x00", b"\xbf\x05\x01\x01\x15\x02\x00"]
    for path in VECTORS:
        if path.is_file():
            v = json.loads(path.read_text())
            seeds += [
                bytes.fromhex(x["hex"])
                for key in ("frames", "packets", "malformed")
                for x in v.get(key, [])
            ]
    return seeds


def _random_runs(runs: int) -> int:
    """Exactly ``runs`` inputs from a seeded PRNG (random bytes and mutated seeds): fast."""
    import random

    rng = random.Random(1)
    seeds = _seeds()
    started = time.monotonic()
    for i in range(runs):
        if i % 2:
            data = rng.randbytes(rng.randrange(0, 257))
        else:
            buf = bytearray(b"".join(rng.choice(seeds) for _ in range(rng.randrange(1, 4))))
            for _ in range(rng.randrange(0, 5)):
                buf[rng.randrange(len(buf))] ^= rng.randrange(1, 256)
            data = bytes(buf[: rng.randrange(len(buf) + 1)]) + rng.randbytes(rng.randrange(0, 5))
        test_one_input(data)
    took = time.monotonic() - started
    print(f"fuzz_decoder (random fallback): {runs} inputs in {took:.0f} s, no failure")
    return 0


def _fallback(seconds: float, runs: int | None = None) -> int:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    seeds = _seeds()

    def mutate(case: tuple[int, list[tuple[int, int]], int, bytes]) -> bytes:
        which, flips, keep, tail = case
        buf = bytearray(b"".join(seeds[(which + i) % len(seeds)] for i in range(which % 3 + 1)))
        for where, xor in flips:
            buf[where % len(buf)] ^= xor
        return bytes(buf[: keep % (len(buf) + 1)]) + tail

    inputs = st.one_of(
        st.binary(max_size=256),
        st.tuples(
            st.integers(0, 1000),
            st.lists(st.tuples(st.integers(0), st.integers(1, 255)), max_size=4),
            st.integers(0),
            st.binary(max_size=4),
        ).map(mutate),
    )
    count = 0

    @settings(
        max_examples=2000,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=inputs)
    def batch(data: bytes) -> None:
        nonlocal count
        count += 1
        test_one_input(data)

    started = time.monotonic()
    deadline = started + seconds
    while (count < runs) if runs is not None else (time.monotonic() < deadline):
        batch()
    took = time.monotonic() - started
    print(f"fuzz_decoder (hypothesis fallback): {count} inputs in {took:.0f} s, no failure")
    return 0


def main(argv: list[str]) -> int:
    if atheris is not None:
        atheris.Setup(argv, lambda data: test_one_input(bytes(data)))
        atheris.Fuzz()
        return 0
    seconds, runs = 60.0, None
    for arg in argv[1:]:
        if arg.startswith("-max_total_time="):
            seconds = float(arg.split("=", 1)[1])
        elif arg.startswith("-runs="):
            runs = int(arg.split("=", 1)[1])
    return _random_runs(runs) if runs is not None else _fallback(seconds)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
