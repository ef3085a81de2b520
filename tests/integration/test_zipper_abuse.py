"""Issue 17: half-open connections, the connection cap, secrets and sizes in logs, the auth
brake and reserved tags. Each bad connection is closed (or refused) with a reason, counted,
and the well-behaved pair beside it loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from yomo.transport import DEFAULT_ZIPPER_SETTINGS, FrameConnection, QuicSettings
from yomo.transport.native import available as native_available
from yomo.wire import (
    ClientType,
    HandshakeAckFrame,
    HandshakeFrame,
    RejectedFrame,
    encode_data_frame,
)
from yomo.zipper.auth import TokenAuth
from yomo.zipper.server import RESERVED_TAG_MESSAGE

from .helpers import Pair, eventually, frame_bytes
from .test_zipper_bad_input import TAG, _after_handshake, _closed_reason, _survives


@pytest.fixture(autouse=True)
def _python_clients(monkeypatch):
    """Clients and the attacker's raw connections on the pure-Python path (they write half
    frames and FIN below the frame API); the zipper on each data path (``zipper`` below)."""
    monkeypatch.setenv("YOMO_QUIC_BACKEND", "qh3")


@pytest.fixture(params=["qh3", "native"])
def zipper(request, zipper):
    """The conftest's factory, with the zipper on the data path of the parameter."""
    if request.param == "native" and not native_available():
        pytest.skip("yomo._native is not built (no Rust toolchain at install)")

    async def make(**options):
        quic = options.pop("quic", DEFAULT_ZIPPER_SETTINGS)
        return await zipper(quic=replace(quic, backend=request.param), **options)

    return make


#: An attacker's keep-alive: a PING every 0.2 s keeps any idle timer from firing.
PINGING = QuicSettings(keep_alive=0.2)


def _send_fin(conn: FrameConnection, data: bytes) -> None:
    """``data`` on the connection's stream and then FIN (below the frame API, on purpose)."""
    protocol = conn._protocol
    if conn._stream_id is None:
        conn._stream_id = protocol._quic.get_next_available_stream_id()
    protocol._quic.send_stream_data(conn._stream_id, data, end_stream=True)
    protocol.transmit()


async def test_half_handshake_then_fin_and_pings_is_closed_and_counted(zipper, clients, raw):
    z = await zipper()

    async def bad() -> str:
        conn = await raw.dial(z, settings=PINGING)
        hello = HandshakeFrame(name="half", client_type=ClientType.SOURCE, version="2024-01-03")
        data = hello.encode()
        _send_fin(conn, data[: len(data) // 2])
        return await _closed_reason(conn)

    reason = await _survives(z, clients, bad, "the peer ended its stream inside a frame")
    assert reason == "the peer ended its stream inside a frame (16 bytes of it received)"


async def test_truncated_data_frame_then_fin_is_closed_with_a_reason(zipper, clients, raw):
    z = await zipper()

    async def bad() -> str:
        conn = await _after_handshake(raw, z)
        _send_fin(conn, encode_data_frame(TAG, b"", b"x" * 100)[:40])
        return await _closed_reason(conn)

    await _survives(z, clients, bad, "ended its stream inside a frame")
    assert not any(c.name == "bad" for c in z.connections())


async def test_fin_after_a_whole_handshake_closes_the_connection(zipper, raw):
    z = await zipper()
    conn = await _after_handshake(raw, z)
    _send_fin(conn, b"")
    await eventually(lambda: not any(c.name == "bad" for c in z.connections()), "bad gone")
    await asyncio.wait_for(conn.wait_closed(), 5.0)


async def test_max_connections_is_enforced(zipper, clients, raw):
    z = await zipper(quic=replace(DEFAULT_ZIPPER_SETTINGS, max_connections=4))
    pair = await Pair.start(clients, z, TAG)  # two connections
    ok = [await raw.handshake(z, name=f"ok-{i}", id=f"ok-{i}") for i in range(2)]
    assert all(isinstance(reply, HandshakeAckFrame) for _, reply in ok)
    refused = await raw.dial(z)
    reason = await _closed_reason(refused)
    assert reason == "yomo: the zipper is full (4 connections, max_connections)"
    await eventually(lambda: z.stats()["refused_connections"] == 1, "the refusal counted")
    await pair.send(50)
    await pair.check()
    # a slot that frees up is usable again
    await ok[0][0].aclose("done")
    await eventually(lambda: len(z.connections()) == 3, "a slot free")
    _, reply = await raw.handshake(z, name="later", id="later-0")
    assert isinstance(reply, HandshakeAckFrame)


async def test_wrong_token_is_never_logged(zipper, raw, caplog):
    caplog.set_level(logging.DEBUG, logger="yomo")
    z = await zipper(authenticators=[TokenAuth("right-one")])
    conn, reply = await raw.handshake(z, auth_name="token", auth_payload="guess-Zq81x")
    assert isinstance(reply, RejectedFrame)
    assert reply.message == "invalid token: guess-Zq81x"  # the client's own text, as Go's
    await _closed_reason(conn)
    assert "guess-Zq81x" not in caplog.text
    assert "invalid token (not logged)" in caplog.text
    assert z.stats()["auth_failures"] == 1


async def test_auth_brake_limits_failed_checks_per_address(zipper, raw, clients):
    z = await zipper(authenticators=[TokenAuth("right-one")], auth_failures_per_second=3)
    replies = []
    for i in range(8):
        conn, reply = await raw.handshake(z, id=f"g-{i}", auth_name="token", auth_payload=f"g{i}")
        assert isinstance(reply, RejectedFrame)
        replies.append(reply.message)
        await conn.aclose()
    checked = [m for m in replies if m.startswith("invalid token")]
    braked = [m for m in replies if "too many failed authentication attempts" in m]
    assert len(checked) + len(braked) == 8
    assert 3 <= len(checked) <= 5, replies  # the bucket's 3, plus what refilled meanwhile
    assert braked and braked[0].startswith(
        "yomo: too many failed authentication attempts from 127.0.0.1; retry in "
    )
    stats = z.stats()
    assert stats["auth_throttled"] == len(braked)
    assert stats["auth_failures"] == len(checked)
    # the brake lifts by itself: a good credential gets in once a token is back
    await asyncio.sleep(0.5)
    src = await clients.source(z, "good", credential="token:right-one")
    assert src.state.value == "connected"


async def test_names_and_tag_lists_are_clipped_in_logs(zipper, raw, caplog):
    caplog.set_level(logging.DEBUG, logger="yomo")
    z = await zipper()
    conn, reply = await raw.handshake(z, name="N" * (1 << 20), id="I" * 5000)
    assert isinstance(reply, HandshakeAckFrame)
    await conn.aclose()
    conn, reply = await raw.handshake(
        z, name="many", id="many-0", client_type=ClientType.STREAM_FUNCTION, tags=range(100_000)
    )
    assert isinstance(reply, HandshakeAckFrame)
    await conn.aclose()
    await eventually(lambda: not z.connections(), "both gone")
    conn, reply = await raw.handshake(z, name="v", version="V" * 100_000)
    assert isinstance(reply, RejectedFrame)
    assert len(caplog.text) < 8 * 1024, len(caplog.text)
    assert "(1048576 chars)" in caplog.text
    assert "(100000 tags)" in caplog.text


@pytest.mark.parametrize("tag", [0xF000, 0xF001, 0xFFFF])
async def test_reserved_tags_close_the_connection_as_go_does(zipper, clients, raw, tag):
    z = await zipper()

    async def bad() -> str:
        conn = await _after_handshake(raw, z)
        conn.send_nowait(frame_bytes(tag, b"system?"))
        return await _closed_reason(conn)

    reason = await _survives(z, clients, bad, RESERVED_TAG_MESSAGE)
    assert reason == RESERVED_TAG_MESSAGE
    assert tag not in z.stats()["tags"]  # refused before routing: not even counted as in


@pytest.mark.parametrize("tag", [0xEFFF, 0x10000])
async def test_tags_next_to_the_reserved_range_are_routed(zipper, clients, raw, tag):
    z = await zipper()
    _, inbox = await clients.sfn(z, "edge", [tag])
    conn = await _after_handshake(raw, z)
    conn.send_nowait(frame_bytes(tag, b"fine"))
    await inbox.wait_payload(b"fine")
