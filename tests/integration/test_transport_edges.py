"""Transport edge cases on real QUIC connections over loopback."""

from __future__ import annotations

import asyncio
import logging

import pytest

from yomo.errors import ConnectionClosedError
from yomo.transport import QuicSettings, TlsConfig, dial, listen
from yomo.wire import DataFrame


@pytest.fixture(params=["qh3", "aioquic"])
def backend(request, monkeypatch) -> str:
    monkeypatch.setenv("YOMO_QUIC_BACKEND", request.param)
    return request.param


async def test_send_after_quic_closed_underneath_raises_connection_closed(backend):
    """When the QUIC connection ends before its ConnectionTerminated event is handled,
    writing must raise ConnectionClosedError (qh3 raised its own error, which killed the
    zipper's task for the producer that happened to route a frame there)."""
    accepted: asyncio.Queue = asyncio.Queue()

    async def on_connection(conn) -> None:
        await conn.read_frame()
        await accepted.put(conn)
        await conn.wait_closed()

    listener = await listen("127.0.0.1", 0, on_connection, tls=TlsConfig())
    client = await dial(*listener.address, tls=TlsConfig())
    try:
        client.send_nowait(DataFrame(tag=1, payload=b"hello"))
        server_side = await asyncio.wait_for(accepted.get(), 5.0)
        # end the QUIC connection without going through FrameConnection.close
        server_side._protocol._quic.close(error_code=0x13, reason_phrase="gone")
        # until the connection is seen closed, a write either works or raises
        # ConnectionClosedError, never the QUIC library's own error
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while True:
            try:
                server_side.send_nowait(DataFrame(tag=1, payload=b"x"))
            except ConnectionClosedError:
                break
            assert loop.time() < deadline, "writes kept working on a closed connection"
            await asyncio.sleep(0.01)
        assert server_side.closed
        assert server_side.close_reason == "gone"
        await asyncio.wait_for(server_side.wait_closed(), 5.0)
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(server_side.read_frame(), 5.0)
    finally:
        await client.aclose()
        listener.close()


async def test_an_address_in_use_is_a_listen_error_with_the_cause(backend):
    """The transport's one error boundary: the socket's OSError becomes a ListenError
    (a TransportError, still an OSError for callers that catch that), cause chained."""
    from yomo.errors import ListenError, TransportError

    async def on_connection(conn) -> None:
        await conn.wait_closed()

    first = await listen("127.0.0.1", 0, on_connection, tls=TlsConfig())
    try:
        with pytest.raises(ListenError, match=r"cannot listen on 127\.0\.0\.1:") as info:
            await listen("127.0.0.1", first.address[1], on_connection, tls=TlsConfig())
        assert isinstance(info.value, TransportError) and isinstance(info.value, OSError)
        assert isinstance(info.value.__cause__, OSError)
        assert not isinstance(info.value.__cause__, TransportError)
    finally:
        await first.aclose()


async def test_a_dial_that_fails_is_a_connect_error_with_the_cause(backend, tmp_path):
    """A zipper whose certificate the client does not trust: ConnectError, with the
    library's error chained."""
    from yomo.errors import ConnectError
    from yomo.transport import QuicSettings
    from yomo.transport.tls import generate_ca

    async def on_connection(conn) -> None:
        await conn.wait_closed()

    listener = await listen("127.0.0.1", 0, on_connection, tls=TlsConfig())
    try:
        other_ca = generate_ca(tmp_path)  # did not sign the zipper's self-signed certificate
        strict = TlsConfig(verify_peer=True, ca_file=other_ca.cert_file)
        with pytest.raises(ConnectError, match="cannot connect to zipper") as info:
            await dial(*listener.address, tls=strict, settings=QuicSettings(handshake_timeout=2.0))
        assert info.value.__cause__ is not None
    finally:
        await listener.aclose()


async def test_aioquic_clients_connect_to_the_qh3_server_without_errors(caplog):
    """qh3 2.1's server, limited to three times what it received before the client's
    address is validated, raised "packet builder capacity exhausted" out of transmit when
    the rest of that allowance was too small for its next packet: with aioquic clients
    (a 1,200-byte Initial) on every connection, an ERROR traceback in the zipper's log,
    the datagrams of that burst dropped and the handshake left to retransmissions."""
    caplog.set_level(logging.WARNING)
    accepted: asyncio.Queue = asyncio.Queue()

    async def on_connection(conn) -> None:
        await accepted.put(await conn.read_frame())
        await conn.wait_closed()

    server = QuicSettings(backend="qh3")
    listener = await listen("127.0.0.1", 0, on_connection, tls=TlsConfig(), settings=server)
    clients = []
    try:
        for i in range(5):
            client = await dial(
                *listener.address, tls=TlsConfig(), settings=QuicSettings(backend="aioquic")
            )
            clients.append(client)
            client.send_nowait(DataFrame(tag=1, payload=b"%d" % i))
            frame = await asyncio.wait_for(accepted.get(), 5.0)
            assert isinstance(frame, DataFrame) and frame.payload == b"%d" % i
    finally:
        for client in clients:
            await client.aclose()
        listener.close()
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert problems == []


def _rmem_max() -> int | None:
    try:
        with open("/proc/sys/net/core/rmem_max") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


async def test_the_zipper_socket_gets_a_large_receive_buffer(backend):
    """A zipper socket with the kernel's default buffer (~208 KiB) dropped tens of
    thousands of datagrams under a few thousand connections (their keep-alive ACKs
    among them: idle timeouts). It asks for quic-go's 7 MiB, as far as the kernel allows."""
    import socket

    from yomo.transport import _compat as compat
    from yomo.transport._server import SOCKET_BUFFER

    limit = _rmem_max()
    if limit is None:
        pytest.skip("no /proc/sys/net/core/rmem_max: the kernel's limit is unknown here")

    async def on_connection(conn) -> None:
        await conn.wait_closed()

    listener = await listen("127.0.0.1", 0, on_connection, tls=TlsConfig())
    try:
        sock = compat.server_transport(listener._server).get_extra_info("socket")
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert got >= min(SOCKET_BUFFER, limit)  # Linux reports twice what it grants
    finally:
        await listener.aclose()
