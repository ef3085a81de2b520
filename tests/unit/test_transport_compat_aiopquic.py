"""One test per aiopquic private-name access in ``yomo.transport._compat``.

aiopquic has wheels for Python 3.12+ only: these run in the 3.12 pass of
scripts/test.sh (and skip, saying so, elsewhere).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("aiopquic", reason="aiopquic needs Python 3.12+ (the 3.12 pass runs it)")

from aiopquic.asyncio import connect, serve
from aiopquic.quic.configuration import QuicConfiguration

from yomo.transport import _compat as compat
from yomo.transport.tls import generate_self_signed


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def server(tmp_path: Any) -> AsyncIterator[tuple[Any, int]]:
    cert = generate_self_signed("127.0.0.1", directory=str(tmp_path))
    config = QuicConfiguration(is_client=False, alpn_protocols=["yomo"])
    config.load_cert_chain(cert.cert_file, cert.key_file)
    port = _free_port()
    quic_server = await serve("127.0.0.1", port, configuration=config)
    yield quic_server, port
    quic_server.close()


def _client_config() -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=["yomo"])
    config.verify_mode = 0  # ssl.CERT_NONE
    return config


async def test_aiopquic_engine(server: tuple[Any, int]) -> None:
    quic_server, port = server
    engine = compat.aiopquic_engine(quic_server)
    assert engine is not None and engine.eventfd >= 0
    async with connect("127.0.0.1", port, configuration=_client_config()) as client:
        assert compat.aiopquic_engine(compat.quic_of(client)) is None  # dialled: its own


async def test_aiopquic_connected(server: tuple[Any, int]) -> None:
    _, port = server
    async with connect("127.0.0.1", port, configuration=_client_config()) as client:
        assert compat.aiopquic_connected(compat.quic_of(client))


async def test_aiopquic_eventfd_reader(server: tuple[Any, int]) -> None:
    _, port = server
    async with connect("127.0.0.1", port, configuration=_client_config()) as client:
        reader = compat.aiopquic_eventfd_reader(client)
        assert callable(reader)
        reader()  # takes whatever events are ready; none is an error


async def test_aiopquic_handshake_done() -> None:
    port = _free_port()  # nobody answers: the handshake never completes by itself
    async with connect(
        "127.0.0.1", port, configuration=_client_config(), wait_connected=False
    ) as client:
        waiting = asyncio.ensure_future(client.wait_connected())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        compat.aiopquic_handshake_done(client)
        await asyncio.wait_for(waiting, 1.0)


async def test_aiopquic_handshake_failed() -> None:
    port = _free_port()
    async with connect(
        "127.0.0.1", port, configuration=_client_config(), wait_connected=False
    ) as client:
        waiting = asyncio.ensure_future(client.wait_connected())
        await asyncio.sleep(0.01)
        compat.aiopquic_handshake_failed(client, ConnectionError("refused"))
        with pytest.raises(ConnectionError, match="refused"):
            await asyncio.wait_for(waiting, 1.0)
        assert compat.protocol_closed(client)
