"""The session layer (``ClientCore``) against a real zipper over in-memory connections.

Handshake, routing between two sessions, rejection and redial, all without QUIC:
the session's dialer opens an in-memory connection (``yomo.zipper.memory``)
whose other end the (unstarted) zipper serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from yomo.errors import AuthenticationError
from yomo.session import ClientCore, ClientState, ReconnectPolicy
from yomo.transport import QuicSettings, TlsConfig
from yomo.wire import ClientType, DataFrame, encode_data_frame, encode_metadata
from yomo.zipper.auth import TokenAuth
from yomo.zipper.memory import MemoryConnection, MemoryListener
from yomo.zipper.server import Zipper

TAG = 0x33
QUICK = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, jitter=0.0, connect_timeout=2.0)


class MemoryNetwork:
    """Dials go to ``zipper`` over in-memory pairs; keeps the zipper ends to cut them."""

    def __init__(self, zipper: Zipper) -> None:
        self.zipper = zipper
        self.listener = MemoryListener()
        self.zipper_ends: list[MemoryConnection] = []
        self.served: list[asyncio.Task[None]] = []

    async def dial(
        self, host: str, port: int, *, tls: TlsConfig | None, settings: QuicSettings
    ) -> MemoryConnection:
        client = await self.listener.dial()
        server = await self.listener.accept()
        assert isinstance(server, MemoryConnection)
        self.zipper_ends.append(server)
        self.served.append(asyncio.ensure_future(self.zipper.serve_connection(server)))
        return client

    def session(self, name: str, client_type: int, **options: object) -> ClientCore:
        return ClientCore(
            name, "memory:9000", client_type, dialer=self.dial, reconnect=QUICK, **options
        )  # type: ignore[arg-type]


@pytest.fixture
async def network() -> AsyncIterator[MemoryNetwork]:
    net = MemoryNetwork(
        Zipper("memory-zipper", port=0, stats_interval=0, authenticators=[TokenAuth("s")])
    )
    sessions: list[ClientCore] = []
    original = net.session

    def tracked(name: str, client_type: int, **options: object) -> ClientCore:
        core = original(name, client_type, **options)
        sessions.append(core)
        return core

    net.session = tracked  # type: ignore[method-assign]
    yield net
    for core in sessions:
        await core.close()
    await net.zipper.stop()
    await asyncio.wait_for(asyncio.gather(*net.served, return_exceptions=True), 2.0)


async def test_two_sessions_meet_at_the_zipper(network: MemoryNetwork) -> None:
    got: asyncio.Queue[DataFrame] = asyncio.Queue()

    async def on_frame(frame: DataFrame) -> None:
        got.put_nowait(frame)

    sfn = network.session(
        "fn",
        ClientType.STREAM_FUNCTION,
        credential="token:s",
        observe_data_tags=[TAG],
        on_frame=on_frame,
    )
    src = network.session("src", ClientType.SOURCE, credential="token:s")
    await sfn.connect()
    await src.connect()
    assert sfn.state is ClientState.CONNECTED and src.state is ClientState.CONNECTED
    assert src.connection_id == f"{src.client_id}-0"
    for i in range(5):
        await src.send(encode_data_frame(TAG, encode_metadata({}), b"%d" % i))
    frames = [await asyncio.wait_for(got.get(), 2.0) for _ in range(5)]
    assert [f.payload for f in frames] == [b"0", b"1", b"2", b"3", b"4"]
    assert {c.client_id for c in network.zipper.connections()} == {
        sfn.connection_id,
        src.connection_id,
    }


async def test_a_refused_credential_is_final(network: MemoryNetwork) -> None:
    src = network.session("src", ClientType.SOURCE, credential="token:wrong")
    with pytest.raises(AuthenticationError, match="invalid token: wrong"):
        await src.connect()
    assert src.state is ClientState.CLOSED
    assert isinstance(src.final_error, AuthenticationError)
    assert len(network.zipper_ends) == 1  # a rejection is not retried


async def test_a_lost_connection_is_redialled_with_the_next_id(network: MemoryNetwork) -> None:
    src = network.session("src", ClientType.SOURCE, credential="token:s")
    reconnected = asyncio.Event()
    src.add_reconnected_handler(reconnected.set)
    await src.connect()
    network.zipper_ends[0].close("cut")
    await asyncio.wait_for(reconnected.wait(), 2.0)
    assert src.state is ClientState.CONNECTED
    assert src.connection_id == f"{src.client_id}-1"
    assert [c.client_id for c in network.zipper.connections()] == [src.connection_id]
    assert src.connection is not None and not src.connection.closed
