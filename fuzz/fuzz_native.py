"""Differential fuzzer: the native (Rust) decoder against the Python one, on the same inputs.

The native data path reads Y3 in Rust (``native/src/y3.rs``: the frame reader and the
DataFrame's children; ``native/src/metadata.rs``: the metadata map). Every input goes to
both, and they must agree:

- framing: ``yomo._native.split_frames`` (whole, and fed in small chunks as QUIC reads
  may cut it) against ``yomo.wire.FrameDecoder``: both accept or both reject; accepted,
  the same DataFrames field by field, and every other frame decodes (``decode_frame``,
  as the native path's Python side does) to the frame Python read; rejected, the same
  close reason (Rust's own errors word for word; a bad non-DataFrame body is found by
  ``decode_frame`` on the native path, so its offset counts from the frame);
- metadata: ``yomo._native.read_metadata`` against ``yomo.wire.decode_metadata``: both
  accept or both reject, the same map and ``yomo-target``; merged with entries on top,
  the same map as ``merge_metadata`` (empty bytes when nothing is left, as Go encodes).

A panic in Rust surfaces as ``pyo3_runtime.PanicException`` and fails the run, as does
anything but a ``ProtocolError`` from Python. Inputs are seeded random bytes and
structure-aware mutations of real frames (the Go vectors in ``tests/data``, frames made
by the encoder with random tags, metadata maps and payloads): bit flips, truncation,
length fields rewritten, splices and concatenations.

    python fuzz/fuzz_native.py -runs=1000000      # what the reliability suite runs

Prints ``fuzz_native: N inputs in S s, no divergence`` or the first divergent input as
hex (exit 1). Add that input to ``tests/unit/test_native_fuzz_cases.py``.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

from yomo.errors import ProtocolError
from yomo.wire import (
    FrameDecoder,
    decode_frame,
    decode_metadata,
    encode_data_frame,
    encode_metadata,
    merge_metadata,
)

__all__ = ["check_input", "check_metadata", "inputs", "main"]

ROOT = Path(__file__).resolve().parents[1]
VECTORS = (
    ROOT / "tests" / "data" / "go_frames.json",
    ROOT.parent / "shared" / "vectors" / "frames.json",
)
MAX_FRAME = 1 << 12
_OFFSET = re.compile(r" \(at offset \d+\)$")


#: What the inputs reached (printed at the end, to show the run went past the header).
REACHED = {"framed": 0, "rejected": 0, "data_frames": 0, "metadata_read": 0}


class Divergence(AssertionError):
    """The two decoders disagree on an input."""


def _native() -> Any:
    from yomo import _native

    return _native


def _python_frames(data: bytes) -> tuple[list[Any], str | None]:
    try:
        return FrameDecoder(max_frame_size=MAX_FRAME).feed(data), None
    except ProtocolError as exc:
        return [], exc.message


def _native_path(data: bytes, chunk: int) -> tuple[list[Any], str | None, bool]:
    """What the native path makes of ``data``: frames, error, and whether the error came
    from Python's decode of a non-DataFrame body (its offset counts from the frame)."""
    from yomo.wire import DataFrame

    items, error = _native().split_frames(data, MAX_FRAME, chunk)
    frames: list[Any] = []
    for item in items:
        if isinstance(item, tuple):
            frames.append(DataFrame(tag=item[0], metadata=item[1], payload=item[2]))
            continue
        try:
            frames.append(decode_frame(item))
        except ProtocolError as exc:
            return frames, exc.message, True
    return frames, error, False


def check_input(data: bytes) -> None:
    """Raise :class:`Divergence` when the native and Python decoders disagree on ``data``."""
    want, want_error = _python_frames(data)
    REACHED["rejected" if want_error else "framed"] += 1
    chunk = (data[0] % 7 + 1) if data else 1
    for step in (0, chunk):
        got, error, from_body = _native_path(data, step)
        if want_error is None:
            if error is not None or got != want:
                raise Divergence(f"python accepts, native (chunk {step}): {error or got}")
        elif error is None:
            raise Divergence(f"python rejects ({want_error}), native (chunk {step}) accepts")
        elif from_body:
            if _OFFSET.sub("", error) != _OFFSET.sub("", want_error):
                raise Divergence(f"reasons differ (chunk {step}): {error!r} vs {want_error!r}")
        elif error != want_error:
            raise Divergence(f"reasons differ (chunk {step}): {error!r} vs {want_error!r}")
    for frame in want:
        metadata = getattr(frame, "metadata", None)
        REACHED["data_frames"] += metadata is not None
        if metadata:
            check_metadata(metadata)
    check_metadata(data)


def check_metadata(md: bytes, over: tuple[tuple[str, str], ...] = (("yomo-target", "fz"),)) -> None:
    """Raise :class:`Divergence` when the two metadata readers disagree on ``md``."""
    try:
        want: dict[str, str] | None = decode_metadata(md)
    except ProtocolError:
        want = None
    entries, target, error = _native().read_metadata(md)
    if want is None:
        if error is None:
            raise Divergence(f"metadata: python rejects, native reads {entries}")
        return
    if error is not None:
        raise Divergence(f"metadata: python reads {want}, native rejects: {error}")
    REACHED["metadata_read"] += 1
    if dict(entries) != want or target != want.get("yomo-target"):
        raise Divergence(f"metadata: {entries} / {target!r} vs {want}")
    merged, merged_target, error = _native().read_metadata(md, list(over))
    expect = merge_metadata(want, dict(over))
    # the same map (entry order carries no meaning: Go's zipper re-encodes from a Go map)
    if error is not None or (merged == b"") != (not expect) or decode_metadata(merged) != expect:
        raise Divergence(f"metadata merge: {merged!r} ({error}) vs {encode_metadata(expect)!r}")
    if merged_target != expect.get("yomo-target"):
        raise Divergence(f"metadata merge target: {merged_target!r} vs {expect}")


def _seeds() -> list[bytes]:
    seeds = [b"\xa9\x00", b"\xbf\x05\x01\x01\x15\x02\x00"]
    for path in VECTORS:
        if path.is_file():
            v = json.loads(path.read_text())
            for key in ("frames", "packets", "malformed"):
                seeds += [bytes.fromhex(x["hex"]) for x in v.get(key, [])]
    return seeds


def _text(rng: random.Random) -> str:
    alphabet = "yomo-targetid_ABCé中\x00"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))


def _metadata(rng: random.Random) -> bytes:
    """A metadata map, mostly valid MessagePack (str or bin entries, duplicates, nil)."""
    import msgpack

    roll = rng.random()
    if roll < 0.05:
        return b""
    if roll < 0.1:
        return b"\xc0"
    pairs = [(_text(rng), _text(rng)) for _ in range(rng.randrange(0, 5))]
    if rng.random() < 0.3:
        pairs.append(("yomo-target", _text(rng)))
    if rng.random() < 0.2 and pairs:  # a repeated key (dicts cannot hold one: by hand)
        k, _ = rng.choice(pairs)
        pairs.append((k, _text(rng)))
    n = len(pairs)
    out = bytearray()
    out += bytes([0x80 | n]) if n < 16 else b"\xde" + n.to_bytes(2, "big")
    for k, v in pairs:
        for s in (k, v):
            raw = s.encode()
            out += msgpack.packb(raw if rng.random() < 0.2 else s, use_bin_type=True)
    return bytes(out)


def _frame(rng: random.Random) -> bytes:
    tag = rng.choice([0, 1, 0x10, 0x7F, 0x80, 0xFF, 0xF000, 0xFFFF, 0x7FFFFFFF, 0x80000000])
    if rng.random() < 0.5:
        tag = rng.randrange(0, 1 << 32)
    payload = rng.randbytes(rng.choice([0, 1, 5, 63, 64, 200, 1000]))
    return encode_data_frame(tag, _metadata(rng), payload)


def _mutate(rng: random.Random, buf: bytearray) -> bytearray:
    for _ in range(rng.randrange(0, 4)):
        if not buf:
            break
        op = rng.randrange(5)
        i = rng.randrange(len(buf))
        if op == 0:
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[i] = rng.choice([0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xFF, rng.randrange(256)])
        elif op == 2:
            del buf[i : i + rng.randrange(1, 4)]
        elif op == 3:
            buf[i:i] = rng.randbytes(rng.randrange(1, 4))
        else:  # a length byte: a frame's or a child's
            j = min(len(buf) - 1, rng.choice([1, 3, 4, 6]))
            buf[j] = rng.randrange(256)
    return buf


def inputs(runs: int, seed: int = 1) -> Any:
    """``runs`` inputs from a seeded PRNG: random bytes, mutated vectors and frames."""
    rng = random.Random(seed)
    seeds = _seeds()
    for i in range(runs):
        kind = i % 4
        if kind == 0:
            yield rng.randbytes(rng.randrange(0, 257))
        elif kind == 1:
            buf = bytearray(b"".join(rng.choice(seeds) for _ in range(rng.randrange(1, 4))))
            yield bytes(_mutate(rng, buf)[: rng.randrange(len(buf) + 1)])
        elif kind == 2:
            buf = bytearray(b"".join(_frame(rng) for _ in range(rng.randrange(1, 3))))
            yield bytes(_mutate(rng, buf) if rng.random() < 0.7 else buf)
        else:
            yield bytes(_mutate(rng, bytearray(_metadata(rng))))


def main(argv: list[str]) -> int:
    runs = 100_000
    for arg in argv[1:]:
        if arg.startswith("-runs="):
            runs = int(arg.split("=", 1)[1])
    started = time.monotonic()
    done = 0
    for data in inputs(runs):
        try:
            check_input(data)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a divergence, a non-ProtocolError, a Rust panic
            # (pyo3's PanicException is a BaseException)
            print(f"fuzz_native: input {done} diverges: {type(exc).__name__}: {exc}")
            print(f"fuzz_native: input hex {data.hex()}")
            return 1
        done += 1
    took = time.monotonic() - started
    reached = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in REACHED.items())
    print(f"fuzz_native: {done} inputs in {took:.0f} s, no divergence ({reached})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
