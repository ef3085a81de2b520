"""Every golden byte vector of the Go reference encoding (tests/data/go_frames.json), both ways."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from yomo.errors import RemoteProtocolError
from yomo.wire import (
    ConnectToFrame,
    DataFrame,
    FrameDecoder,
    GoawayFrame,
    HandshakeAckFrame,
    HandshakeFrame,
    RejectedFrame,
    decode_frame,
    decode_length,
    decode_packet,
    decode_uint32,
    encode_frame,
    encode_length,
    encode_uint32,
)

VECTORS_PATH = Path(__file__).resolve().parents[1] / "data" / "go_frames.json"

VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())


def _build(spec: dict[str, Any]) -> Any:
    kind = spec["type"]
    if kind == "DataFrame":
        return DataFrame(
            tag=spec["tag"],
            metadata=spec["metadata_utf8"].encode(),
            payload=spec["payload_utf8"].encode(),
        )
    if kind == "HandshakeFrame":
        return HandshakeFrame(
            name=spec["name"],
            id=spec["id"],
            client_type=spec["client_type"],
            observe_data_tags=tuple(spec["observe_data_tags"]),
            auth_name=spec["auth_name"],
            auth_payload=spec["auth_payload"],
            version=spec["version"],
            function_definition=spec.get("function_definition_utf8", "").encode(),
            wanted_target=spec["wanted_target"],
        )
    if kind == "HandshakeAckFrame":
        return HandshakeAckFrame()
    if kind == "RejectedFrame":
        return RejectedFrame(message=spec["message"])
    if kind == "GoawayFrame":
        return GoawayFrame(message=spec["message"])
    if kind == "ConnectToFrame":
        return ConnectToFrame(endpoint=spec["endpoint"])
    raise AssertionError(f"vector of unknown frame type {kind}")


def _ids(items: list[dict[str, Any]], key: str) -> list[str]:
    return [str(item.get(key, item.get("hex"))) for item in items]


def test_vector_file_has_every_section() -> None:
    for section in ("frames", "length_pvarint32", "uint32_nvarint", "packets", "malformed"):
        assert VECTORS[section], section
    kinds = {v["frame"]["type"] for v in VECTORS["frames"]}
    assert kinds == {
        "DataFrame",
        "HandshakeFrame",
        "HandshakeAckFrame",
        "RejectedFrame",
        "GoawayFrame",
        "ConnectToFrame",
    }


@pytest.mark.parametrize("vector", VECTORS["frames"], ids=_ids(VECTORS["frames"], "name"))
def test_frame_encodes_to_vector(vector: dict[str, Any]) -> None:
    frame = _build(vector["frame"])
    assert frame.encode().hex() == vector["hex"]
    assert encode_frame(frame).hex() == vector["hex"]


@pytest.mark.parametrize("vector", VECTORS["frames"], ids=_ids(VECTORS["frames"], "name"))
def test_frame_decodes_from_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    expected = _build(vector["frame"])
    assert decode_frame(data) == expected
    assert decode_frame(memoryview(data)) == expected
    assert type(decode_frame(data)).TYPE == expected.TYPE


@pytest.mark.parametrize("vector", VECTORS["frames"], ids=_ids(VECTORS["frames"], "name"))
def test_frame_vector_through_stream_decoder(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    expected = _build(vector["frame"])
    whole = FrameDecoder()
    assert whole.feed(data * 3) == [expected] * 3
    assert whole.buffered == 0
    bytewise = FrameDecoder()
    got = []
    for i in range(len(data)):
        got += bytewise.feed(data[i : i + 1])
    assert got == [expected]
    assert bytewise.buffered == 0


@pytest.mark.parametrize(
    "vector", VECTORS["length_pvarint32"], ids=_ids(VECTORS["length_pvarint32"], "value")
)
def test_length_varint_vector(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    assert encode_length(vector["value"]).hex() == vector["hex"]
    assert decode_length(raw) == (vector["value"], len(raw))
    assert decode_length(b"\xaa" + raw + b"\x00", 1) == (vector["value"], len(raw) + 1)


@pytest.mark.parametrize(
    "vector", VECTORS["uint32_nvarint"], ids=_ids(VECTORS["uint32_nvarint"], "value")
)
def test_uint32_vector(vector: dict[str, Any]) -> None:
    assert encode_uint32(vector["value"]).hex() == vector["hex"]
    assert decode_uint32(bytes.fromhex(vector["hex"])) == vector["value"]


@pytest.mark.parametrize("vector", VECTORS["packets"], ids=_ids(VECTORS["packets"], "about"))
def test_packet_vector(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    packet, end = decode_packet(raw)
    assert end == len(raw)
    assert packet.encode() == raw


def test_packet_vectors_decode_to_the_described_structure() -> None:
    by_hex = {v["hex"]: decode_packet(bytes.fromhex(v["hex"]))[0] for v in VECTORS["packets"]}
    uint_packet = by_hex["0a0200ff"]
    assert (uint_packet.seq_id, uint_packet.is_node) == (0x0A, False)
    assert decode_uint32(uint_packet.value) == 255
    empty_node = by_hex["8600"]
    assert (empty_node.seq_id, empty_node.is_node, empty_node.children) == (0x06, True, ())
    nested = by_hex["86028300"]
    assert nested.children is not None and len(nested.children) == 1
    assert (nested.children[0].seq_id, nested.children[0].children) == (0x03, ())
    empty_primitive = by_hex["0400"]
    assert (empty_primitive.seq_id, empty_primitive.value, empty_primitive.is_node) == (
        0x04,
        b"",
        False,
    )


@pytest.mark.parametrize("vector", VECTORS["malformed"], ids=_ids(VECTORS["malformed"], "about"))
def test_malformed_vector_is_rejected(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    with pytest.raises(RemoteProtocolError) as packet_error:
        decode_packet(raw)
    assert packet_error.value.offset is not None
    with pytest.raises(RemoteProtocolError) as frame_error:
        decode_frame(raw)
    assert frame_error.value.offset is not None
    assert str(frame_error.value).startswith("yomo: ")
