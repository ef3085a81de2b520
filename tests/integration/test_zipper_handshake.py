"""Handshake on a real zipper: ack and registration, version check, token auth, no retry."""

from __future__ import annotations

import asyncio

import pytest

from yomo.client.core import ReconnectPolicy
from yomo.errors import AuthenticationError, ConnectError, ConnectionClosedError, RejectedError
from yomo.transport import QuicSettings
from yomo.wire import ClientType, HandshakeAckFrame, RejectedFrame
from yomo.zipper.auth import TokenAuth

from .helpers import eventually


async def test_handshake_ack_registers_connection(zipper, clients):
    z = await zipper()
    sfn, _ = await clients.sfn(z, "sfn-a", [0x10, 0x11], wanted_target="room-1")
    src = await clients.source(z, "src-a")

    infos = {c.name: c for c in z.connections()}
    assert set(infos) == {"sfn-a", "src-a"}
    f = infos["sfn-a"]
    assert f.client_type == "StreamFunction"
    assert f.client_id == f"{sfn.client_id}-0" == sfn.connection_id
    assert f.observed_tags == (0x10, 0x11)
    assert f.wanted_target == "room-1"
    assert f.remote_address[0] == "127.0.0.1"
    s = infos["src-a"]
    assert s.client_type == "Source"
    assert s.client_id == f"{src.client_id}-0"
    assert s.observed_tags == ()
    assert f.number != s.number
    assert z.stats()["connections"] == {"StreamFunction": 1, "Source": 1}

    await src.close()
    await eventually(lambda: len(z.connections()) == 1, "the source to be unregistered")
    assert z.connections()[0].name == "sfn-a"


async def test_raw_handshake_gets_ack(zipper, raw):
    z = await zipper()
    conn, reply = await raw.handshake(z, name="raw-sfn", client_type=ClientType.STREAM_FUNCTION)
    assert isinstance(reply, HandshakeAckFrame)
    await eventually(lambda: len(z.connections()) == 1, "registration")
    assert z.connections()[0].client_id == "raw-id-0"
    assert not conn.closed


async def _expect_rejection(raw, z, message: str, **handshake) -> None:
    conn, reply = await raw.handshake(z, **handshake)
    assert isinstance(reply, RejectedFrame)
    assert reply.message == message
    # the zipper then closes the connection, with the same text as reason
    with pytest.raises(ConnectionClosedError):
        await asyncio.wait_for(conn.read_frame(), 5.0)
    assert conn.close_reason == message
    assert conn.closed_by_peer
    assert z.connections() == []


async def test_wrong_version_is_rejected(zipper, raw):
    z = await zipper()
    await _expect_rejection(
        raw,
        z,
        "version negotiation failed: client=2023-06-01, server=2024-01-03",
        version="2023-06-01",
    )
    assert z.stats()["rejections"] == 1


async def test_bad_token_is_rejected(zipper, raw):
    z = await zipper(authenticators=[TokenAuth("s3cret")])
    await _expect_rejection(raw, z, "invalid token: wrong", auth_name="token", auth_payload="wrong")


async def test_unknown_auth_name_is_rejected(zipper, raw):
    z = await zipper(authenticators=[TokenAuth("s3cret")])
    await _expect_rejection(
        raw, z, "authentication not found: basic", auth_name="basic", auth_payload="s3cret"
    )


async def test_no_credential_with_token_auth_is_rejected(zipper, raw):
    # Go: an empty auth name goes to the default (first) authenticator, token auth here
    z = await zipper(authenticators=[TokenAuth("s3cret")])
    await _expect_rejection(raw, z, "invalid token: ")


async def test_good_token_is_accepted(zipper, raw, clients):
    z = await zipper(authenticators=[TokenAuth("s3cret")])
    _, reply = await raw.handshake(z, auth_name="token", auth_payload="s3cret")
    assert isinstance(reply, HandshakeAckFrame)
    src = await clients.source(z, "src-token", credential="token:s3cret")
    assert src.connection_id.endswith("-0")
    assert len(z.connections()) == 2
    assert z.stats()["rejections"] == 0


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        ("token:wrong", "invalid token: wrong"),
        ("basic:s3cret", "authentication not found: basic"),
        (None, "invalid token: "),
    ],
)
async def test_client_core_rejection_is_final(zipper, clients, credential, message):
    z = await zipper(authenticators=[TokenAuth("s3cret")])
    errors: list[BaseException] = []
    core = clients.make(z, "src-bad", ClientType.SOURCE, credential=credential)
    core.add_error_handler(errors.append)
    with pytest.raises(AuthenticationError) as info:
        await core.connect()
    assert isinstance(info.value, RejectedError)
    assert info.value.reason == message
    assert core.closed
    assert core.final_error is info.value
    assert errors == [info.value]
    # no retry: wait well past the reconnect delay, the zipper saw exactly one attempt
    await asyncio.sleep(core.reconnect.initial_delay * 4 + 0.2)
    assert z.stats()["rejections"] == 1
    assert core.connection_id.endswith("-0")
    await asyncio.wait_for(core.wait(), 1.0)
    with pytest.raises(Exception, match="closed"):
        await core.connect()


async def test_unknown_client_type_is_rejected(zipper, raw):
    z = await zipper()
    await _expect_rejection(raw, z, "unknown client type 0x42", client_type=0x42)


async def test_connect_to_nothing_fails_within_connect_timeout(zipper, clients):
    z = await zipper()
    addr = z.addr
    await z.stop()
    core = clients.make(
        addr,
        "src-nowhere",
        ClientType.SOURCE,
        reconnect=ReconnectPolicy(initial_delay=0.05, max_delay=0.1, connect_timeout=1.0),
        quic=QuicSettings(handshake_timeout=0.3),
    )
    with pytest.raises(ConnectError, match="cannot connect to zipper"):
        await core.connect()
    assert core.closed


async def test_credential_without_colon_goes_to_default_authenticator(zipper, clients):
    # Go's NewCredential: no colon -> empty auth name, the whole string is the payload
    z = await zipper(authenticators=[TokenAuth("s3cret")])
    src = await clients.source(z, "src-bare", credential="s3cret")
    assert src.connection_id.endswith("-0")
    bad = clients.make(z, "src-bare-bad", ClientType.SOURCE, credential="nope")
    with pytest.raises(AuthenticationError, match="invalid token: nope"):
        await bad.connect()
