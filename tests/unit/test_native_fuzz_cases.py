"""Inputs on which the differential fuzzer (``fuzz/fuzz_native.py``) found the native
(Rust) and Python decoders disagreeing, kept as regression cases, and a short run of
the fuzzer itself: both must accept or reject the same bytes and read the same fields."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from yomo.transport.native import available

pytestmark = pytest.mark.skipif(
    not available(), reason="yomo._native is not built (no Rust toolchain at install)"
)

FUZZ = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_native.py"


def _fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_native", FUZZ)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_native", module)
    spec.loader.exec_module(module)
    return module


CASES = {
    # metadata {"": bin(84 61 65 6f), "": "g-rro..."}: the overridden first value is not
    # UTF-8; Python read the map (the dict kept only the last value), Rust refused it
    "repeated key, bad first value": "82a0c4048461656fa0ac672d72726f00656d7943c3a9",
}


@pytest.mark.parametrize("hexdata", list(CASES.values()), ids=list(CASES))
def test_found_cases_agree(hexdata: str) -> None:
    from yomo.wire import encode_data_frame

    fuzz = _fuzzer()
    data = bytes.fromhex(hexdata)
    fuzz.check_metadata(data)
    fuzz.check_input(data)
    fuzz.check_input(encode_data_frame(0x33, data, b"payload"))  # as a frame's metadata


def test_merge_orders_may_differ_but_maps_agree() -> None:
    # {"中BCy": "", "o": "t", "中BCy": "m-"} merged with a target: Rust keeps entry order
    # as set, Python as first inserted; Go re-encodes from an unordered map
    fuzz = _fuzzer()
    md = bytes.fromhex("83a6e4b8ad424379c400a16fa174a6e4b8ad424379c4026d2d")
    fuzz.check_metadata(md)


def test_a_short_differential_run_finds_nothing() -> None:
    fuzz = _fuzzer()
    for data in fuzz.inputs(3000, seed=7):
        fuzz.check_input(data)
