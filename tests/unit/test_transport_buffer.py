"""The transport's buffering and backpressure decisions, without QUIC (``_buffer``)."""

from __future__ import annotations

import pytest

from yomo.errors import ConnectError, RemoteProtocolError, YomoError
from yomo.transport._buffer import FRAME_OVERHEAD, FrameBuffer, SendGate, frame_size
from yomo.transport._errors import describe, ignore_quic_errors, map_quic_errors
from yomo.wire import DataFrame


def _frame(n: int) -> bytes:
    return DataFrame(tag=0x33, payload=b"x" * n).encode()


def test_frames_come_out_in_order_and_count_their_size():
    buf = FrameBuffer(max_frame_size=1 << 20, high_water=10_000)
    data = _frame(10) + _frame(20)
    assert buf.feed(data[:5]) == 0 and buf.partial == 5 and buf.size == 0
    assert buf.feed(data[5:]) == 2 and len(buf) == 2
    assert buf.size == 2 * FRAME_OVERHEAD + 30
    first, second = buf.pop(), buf.pop()
    assert isinstance(first, DataFrame) and first.payload == b"x" * 10
    assert isinstance(second, DataFrame) and second.payload == b"x" * 20
    assert buf.pop() is None and buf.size == 0


def test_reading_pauses_above_high_water_and_resumes_at_half():
    buf = FrameBuffer(max_frame_size=1 << 20, high_water=1000)
    for _ in range(3):
        buf.feed(_frame(300))
    assert buf.over_high_water and not buf.may_resume  # 3 x 364 = 1092 bytes
    buf.pop()
    assert not buf.over_high_water and not buf.may_resume  # 728 > 500
    buf.pop()
    assert buf.may_resume  # 364 <= 500


def test_bad_bytes_raise_the_decoders_error_and_poison_the_buffer():
    buf = FrameBuffer(max_frame_size=64, high_water=1000)
    with pytest.raises(RemoteProtocolError):
        buf.feed(_frame(1000))  # larger than max_frame_size
    with pytest.raises(RemoteProtocolError):
        buf.feed(_frame(1))


def test_frame_size_counts_payload_and_overhead():
    assert frame_size(DataFrame(tag=1, payload=b"abc")) == FRAME_OVERHEAD + 3


def test_send_gate_blocks_past_high_water_and_releases_at_half():
    gate = SendGate(1000)
    assert not gate.blocks(1000) and gate.blocks(1001)
    assert not gate.releases(501) and gate.releases(500)


def test_quic_errors_become_the_named_yomo_error_with_the_cause():
    cause = OSError(98, "Address already in use")
    with pytest.raises(ConnectError, match="yomo: dial: Address already in use") as info:
        with map_quic_errors(lambda detail: ConnectError(f"dial: {detail}")):
            raise cause
    assert info.value.__cause__ is cause


def test_yomo_errors_pass_the_boundary_unchanged():
    original = YomoError("already ours")
    with pytest.raises(YomoError) as info:
        with map_quic_errors(ConnectError):
            raise original
    assert info.value is original


def test_describe_names_errors_without_text():
    assert describe(TimeoutError()) == "timed out"
    assert describe(AssertionError()) == "AssertionError"
    assert describe(ValueError("bad stream")) == "bad stream"


def test_best_effort_calls_ignore_library_errors_but_not_cancellation():
    with ignore_quic_errors():
        raise AssertionError("connection has not been started")  # qh3, after close
    with pytest.raises(KeyboardInterrupt), ignore_quic_errors():
        raise KeyboardInterrupt
