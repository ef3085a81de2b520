"""One test per private-name access in ``yomo.transport._compat`` (named after it).

Each runs the real library (qh3 and aioquic here; aiopquic under Python 3.12+,
the 3.12 pass of scripts/test.sh) on loopback, so a library upgrade that moves
one of its private names fails the test of the function that reads it.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from yomo.transport import _compat as compat
from yomo.transport._cids import CidTable
from yomo.transport.tls import generate_ca, generate_self_signed, issue_certificate

LIBRARIES = ["qh3", "aioquic"]


async def eventually(check: Any, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def _modules(library: str) -> tuple[Any, Any, Any, Any]:
    aio = importlib.import_module(f"{library}.asyncio")
    config = importlib.import_module(f"{library}.quic.configuration")
    events = importlib.import_module(f"{library}.quic.events")
    server = importlib.import_module(f"{library}.asyncio.server")
    return aio, config.QuicConfiguration, events, server


@dataclass
class Pair:
    library: str
    client: Any
    server_protocols: list[Any]
    server: Any
    port: int
    received: list[bytes] = field(default_factory=list)


@pytest.fixture(params=LIBRARIES)
async def pair(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Pair]:
    """A real client and server of one library on loopback, handshake done."""
    library = request.param
    aio, configuration, events, _ = _modules(library)
    cert = generate_self_signed("127.0.0.1", directory=str(tmp_path))
    received: list[bytes] = []

    class Recording(aio.QuicConnectionProtocol):  # type: ignore[misc]
        def quic_event_received(self, event: Any) -> None:
            if isinstance(event, events.StreamDataReceived):
                received.append(event.data)

    server_side: list[Any] = []

    def create_server_protocol(*args: Any, **kwargs: Any) -> Any:
        protocol = Recording(*args, **kwargs)
        server_side.append(protocol)
        return protocol

    server_config = configuration(is_client=False, alpn_protocols=["yomo"], idle_timeout=7.0)
    server_config.load_cert_chain(cert.cert_file, cert.key_file)
    server = await aio.serve(
        "127.0.0.1", 0, configuration=server_config, create_protocol=create_server_protocol
    )
    port = compat.server_transport(server).get_extra_info("sockname")[1]
    client_config = configuration(is_client=True, alpn_protocols=["yomo"], idle_timeout=9.0)
    client_config.verify_mode = 0  # ssl.CERT_NONE
    async with aio.connect(
        "127.0.0.1", port, configuration=client_config, create_protocol=Recording
    ) as client:
        p = Pair(library, client, server_side, server, port, received)
        yield p
        client.close()
    server.close()


# --- the protocol -------------------------------------------------------------------


async def test_quic_of(pair: Pair) -> None:
    quic = compat.quic_of(pair.client)
    assert hasattr(quic, "send_stream_data") and hasattr(quic, "datagrams_to_send")


async def test_loop_of(pair: Pair) -> None:
    assert compat.loop_of(pair.client) is asyncio.get_running_loop()


async def test_process_events(pair: Pair) -> None:
    client, server = compat.quic_of(pair.client), compat.quic_of(pair.server_protocols[0])
    loop = asyncio.get_running_loop()
    sid = client.get_next_available_stream_id()
    client.send_stream_data(sid, b"hello")
    pair.client.transmit()
    await eventually(lambda: b"hello" in pair.received)
    # the server's answer is fed to the client by hand: only process_events reports it
    server.send_stream_data(sid, b"answer")
    addr = compat.remote_address(client)
    for data, _ in server.datagrams_to_send(now=loop.time()):
        client.receive_datagram(data, addr, now=loop.time())
    assert b"answer" not in pair.received
    compat.process_events(pair.client)
    assert b"answer" in pair.received


async def test_transmit_soon(pair: Pair) -> None:
    quic = compat.quic_of(pair.client)
    quic.send_stream_data(quic.get_next_available_stream_id(), b"soon")
    compat.transmit_soon(pair.client)
    await eventually(lambda: b"soon" in pair.received)


async def test_datagrams_to_send(pair: Pair) -> None:
    quic = compat.quic_of(pair.client)
    quic.send_stream_data(quic.get_next_available_stream_id(), b"due")
    loop = asyncio.get_running_loop()
    datagrams = compat.datagrams_to_send(quic, loop.time())
    assert datagrams and all(isinstance(d, bytes) for d, _ in datagrams)
    for data, addr in datagrams:
        pair.client._transport.sendto(data, addr)
    await eventually(lambda: b"due" in pair.received)
    if pair.library == "qh3":  # the names the qh3 2.x path reads
        assert callable(quic._core.poll_transmit) and quic._handshake_complete
        assert callable(quic._call_core) and callable(quic._log_datagram)


async def test_transmit_qh3(pair: Pair) -> None:
    if pair.library != "qh3":
        pytest.skip("transmit_qh3 replaces qh3's transmit only")
    quic = compat.quic_of(pair.client)
    quic.send_stream_data(quic.get_next_available_stream_id(), b"sent")
    compat.transmit_qh3(pair.client)
    await eventually(lambda: b"sent" in pair.received)
    assert pair.client._timer_at == quic.get_timer()  # the timer re-armed


async def test_mark_closed(pair: Pair) -> None:
    compat.mark_closed(pair.client)
    await asyncio.wait_for(pair.client.wait_closed(), 1.0)


async def test_protocol_closed(pair: Pair) -> None:
    assert not compat.protocol_closed(pair.client)
    pair.client.close()
    await eventually(lambda: compat.protocol_closed(pair.client))


async def test_release_terminated(pair: Pair) -> None:
    server = pair.server_protocols[0]
    pair.client.close()
    await eventually(lambda: compat.protocol_closed(server), timeout=10.0)
    quic = compat.quic_of(server)
    context = quic.tls
    assert context.alpn_cb is not None  # what there is to break
    compat.release_terminated(server)
    handlers = (
        server._connection_id_issued_handler,
        server._connection_id_retired_handler,
        server._connection_terminated_handler,
    )
    for handler in handlers:  # the server's partials held the protocol
        assert server not in getattr(handler, "keywords", {}).values()
    assert [getattr(context, name) for name in compat._TLS_CALLBACKS] == [None] * 4
    if pair.library == "qh3":  # QuicConnection <-> QuicTlsBridge
        assert quic._tls._version_change_handler is None


async def test_transport_lost(pair: Pair) -> None:
    if pair.library != "qh3":
        pytest.skip("asyncio's own transports drop their protocol themselves")
    client = pair.client
    client.close()
    await asyncio.wait_for(client.wait_closed(), 10.0)
    compat.transmit_soon(client)
    compat.transport_lost(client)
    assert (client._transport, client._sendto_many, client._timer, client._transmit_task) == (
        None,
        None,
        None,
        None,
    )
    compat.transmit_qh3(client)  # nothing to send on: a no-op


@pytest.mark.parametrize("library", LIBRARIES)
async def test_connected_waiter(library: str) -> None:
    aio, configuration, _, _ = _modules(library)
    quic = importlib.import_module(f"{library}.quic.connection").QuicConnection(
        configuration=configuration(is_client=True)
    )
    protocol = aio.QuicConnectionProtocol(quic)
    assert compat.connected_waiter(protocol) is None
    task = asyncio.ensure_future(protocol.wait_connected())
    await asyncio.sleep(0)
    waiter = compat.connected_waiter(protocol)
    assert isinstance(waiter, asyncio.Future) and not waiter.done()
    task.cancel()


async def test_heard_from_peer(pair: Pair) -> None:
    assert compat.heard_from_peer(compat.quic_of(pair.client))
    _, configuration, _, _ = _modules(pair.library)
    fresh = importlib.import_module(f"{pair.library}.quic.connection").QuicConnection(
        configuration=configuration(is_client=True)
    )
    fresh.connect(("127.0.0.1", pair.port), now=0.0)
    assert not compat.heard_from_peer(fresh)


async def test_retrieve_ping_waiters(pair: Pair) -> None:
    task = asyncio.ensure_future(pair.client.ping())
    await asyncio.sleep(0)
    done: list[Any] = []
    compat.retrieve_ping_waiters(pair.client, done.append)
    await asyncio.wait_for(task, 2.0)
    await eventually(lambda: len(done) == 1)


async def test_transmit_batched(pair: Pair) -> None:
    if pair.library != "aioquic":
        pytest.skip("transmit_batched serves aioquic connections only (qh3 batches itself)")
    protocol = pair.client
    assert not compat.transmit_batched(protocol)  # a plain transport: aioquic's own transmit
    real = protocol._transport
    batches: list[int] = []

    class Batched:
        def sendto_many(self, batch: list[bytes], addr: Any) -> None:
            batches.append(len(batch))
            for data in batch:
                real.sendto(data, addr)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    protocol.connection_made(Batched())
    quic = compat.quic_of(protocol)
    quic.send_stream_data(quic.get_next_available_stream_id(), b"batched")
    assert compat.transmit_batched(protocol)
    assert batches and sum(batches) >= 1
    await eventually(lambda: b"batched" in pair.received)
    protocol.connection_made(real)


# --- the sans-IO connection ---------------------------------------------------------


async def test_remote_address(pair: Pair) -> None:
    addr = compat.remote_address(compat.quic_of(pair.client))
    assert (str(addr[0]).removeprefix("::ffff:"), int(addr[1])) == ("127.0.0.1", pair.port)
    server_view = compat.remote_address(compat.quic_of(pair.server_protocols[0]))
    assert int(server_view[1]) > 0


async def test_unsent_stream_bytes(pair: Pair) -> None:
    quic = compat.quic_of(pair.client)
    sid = quic.get_next_available_stream_id()
    quic.send_stream_data(sid, b"x" * 5000)
    assert compat.unsent_stream_bytes(quic, sid) == 5000
    pair.client.transmit()
    assert compat.unsent_stream_bytes(quic, sid) < 5000


async def test_bytes_in_flight(pair: Pair) -> None:
    quic = compat.quic_of(pair.client)
    if pair.library == "aioquic":
        assert compat.bytes_in_flight(quic) is None  # aioquic: per stream instead
        return
    assert compat.bytes_in_flight(quic) is not None
    quic.send_stream_data(quic.get_next_available_stream_id(), b"y" * 3000)
    list(quic.datagrams_to_send(now=asyncio.get_running_loop().time()))  # sent, never delivered
    in_flight = compat.bytes_in_flight(quic)
    assert in_flight is not None and in_flight >= 3000


async def test_unacked_stream_bytes(pair: Pair) -> None:
    if pair.library != "aioquic":
        pytest.skip("qh3 tells bytes in flight per connection (test_bytes_in_flight)")
    quic = compat.quic_of(pair.client)
    sid = quic.get_next_available_stream_id()
    quic.send_stream_data(sid, b"z" * 3000)
    assert compat.unacked_stream_bytes(quic, sid) == 3000
    pair.client.transmit()
    await eventually(lambda: compat.unacked_stream_bytes(quic, sid) == 0)


async def test_close_event(pair: Pair) -> None:
    quic = compat.quic_of(pair.client)
    assert compat.close_event(quic) is None
    server = pair.server_protocols[0]
    compat.quic_of(server).close(error_code=0x13, reason_phrase="bye")
    server.transmit()
    await eventually(lambda: compat.close_event(quic) is not None)
    assert compat.close_event(quic) == ("bye", 0x13)


async def test_peer_idle_timeout(pair: Pair) -> None:
    assert compat.peer_idle_timeout(compat.quic_of(pair.client)) == 7.0
    assert compat.peer_idle_timeout(compat.quic_of(pair.server_protocols[0])) == 9.0


async def _mutual_tls_server(tmp_path: Any) -> tuple[Any, list[Any], int, Any]:
    aio, configuration, _, _ = _modules("aioquic")
    ca = generate_ca(str(tmp_path))
    server_pair = issue_certificate(ca, str(tmp_path), "server")
    client_pair = issue_certificate(ca, str(tmp_path), "client")
    server_side: list[Any] = []

    def create_protocol(*args: Any, **kwargs: Any) -> Any:
        protocol = aio.QuicConnectionProtocol(*args, **kwargs)
        compat.request_client_certificate(compat.quic_of(protocol))
        server_side.append(protocol)
        return protocol

    config = configuration(is_client=False, alpn_protocols=["yomo"])
    config.load_cert_chain(server_pair.cert_file, server_pair.key_file)
    server = await aio.serve("127.0.0.1", 0, configuration=config, create_protocol=create_protocol)
    port = compat.server_transport(server).get_extra_info("sockname")[1]
    client_config = configuration(is_client=True, alpn_protocols=["yomo"])
    client_config.load_verify_locations(ca.cert_file)
    client_config.load_cert_chain(client_pair.cert_file, client_pair.key_file)
    client_config.server_name = "localhost"
    return server, server_side, port, client_config


async def test_request_client_certificate(tmp_path: Any) -> None:
    aio = importlib.import_module("aioquic.asyncio")
    server, server_side, port, client_config = await _mutual_tls_server(tmp_path)
    try:
        async with aio.connect("127.0.0.1", port, configuration=client_config):
            await eventually(lambda: bool(server_side))
            tls = compat.quic_of(server_side[0]).tls
            assert tls._request_client_certificate is True
    finally:
        server.close()


async def test_peer_certificate(tmp_path: Any) -> None:
    aio = importlib.import_module("aioquic.asyncio")
    server, server_side, port, client_config = await _mutual_tls_server(tmp_path)
    try:
        async with aio.connect("127.0.0.1", port, configuration=client_config):
            cert, chain = compat.peer_certificate(compat.quic_of(server_side[0]))
            assert cert is not None and "client" in cert.subject.rfc4514_string()
            assert isinstance(chain, list)
    finally:
        server.close()


# --- the servers --------------------------------------------------------------------


async def test_server_protocols(pair: Pair) -> None:
    protocols = compat.server_protocols(pair.server)
    assert pair.server_protocols[0] in protocols.values()


async def test_install_cid_table(pair: Pair) -> None:
    server = pair.server
    table = CidTable()
    for cid, protocol in compat.server_protocols(server).items():
        table[cid] = protocol
    dropped: list[Any] = []

    def drop(protocol: Any) -> None:
        dropped.append(protocol)
        table.drop_protocol(protocol)

    compat.install_cid_table(server, table, drop)
    assert compat.server_protocols(server) is table
    # the hook is bound when a connection is made: a new connection, closed, is dropped
    aio, configuration, _, _ = _modules(pair.library)
    config = configuration(is_client=True, alpn_protocols=["yomo"], idle_timeout=1.0)
    config.verify_mode = 0
    async with aio.connect("127.0.0.1", pair.port, configuration=config) as second:
        await eventually(lambda: len(pair.server_protocols) == 2)
        second.close()
    newcomer = pair.server_protocols[1]
    await eventually(lambda: dropped == [newcomer], timeout=10.0)
    assert newcomer not in table.values()


async def test_server_transport(pair: Pair) -> None:
    transport = compat.server_transport(pair.server)
    assert transport.get_extra_info("sockname")[1] == pair.port


def test_optimized_datagram_transport() -> None:
    factory = compat.optimized_datagram_transport()
    if sys.platform.startswith("linux"):
        assert callable(factory)


@pytest.mark.parametrize(
    ("library", "hook"),
    [(lib, hook) for lib, hooks in compat.OVERRIDDEN_HOOKS.items() for hook in hooks],
)
def test_overridden_hooks(library: str, hook: str) -> None:
    if library == "aiopquic":
        pytest.importorskip("aiopquic", reason="aiopquic needs Python 3.12+ (the 3.12 pass)")
    base = importlib.import_module(f"{library}.asyncio").QuicConnectionProtocol
    assert callable(getattr(base, hook, None)), f"{library} has no {hook}"


def test_checked_versions_name_every_library() -> None:
    assert set(compat.CHECKED_VERSIONS) == {"qh3", "aioquic", "aiopquic"}
    assert set(compat.OVERRIDDEN_HOOKS) == set(compat.CHECKED_VERSIONS)
