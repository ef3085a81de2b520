"""The optional aiopquic backend (Python 3.12+): the core zipper/source/function behaviours
with aiopquic on both ends, its bounded buffers, its close codes, and mixing with qh3.

Skipped (with the reason printed by ``pytest -ra``) where aiopquic is not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

import pytest

pytest.importorskip(
    "aiopquic", reason="aiopquic backend needs Python 3.12+ and pip install 'pyyomo[fast]'"
)

from yomo.client.core import ClientState
from yomo.errors import ConnectError, ConnectionClosedError, TimeoutError, TransportError
from yomo.transport import (
    DEFAULT_ZIPPER_SETTINGS,
    FrameConnection,
    QuicSettings,
    TlsConfig,
    backend_info,
    dial,
    listen,
)
from yomo.transport._aiopquic import (
    _SERVER_RECV_CAP_FACTOR,
    AiopquicConnection,
)
from yomo.transport.tls import generate_ca, issue_certificate
from yomo.wire import DataFrame, HandshakeAckFrame, RejectedFrame

from .helpers import (
    PLAIN_TLS,
    Inbox,
    Pair,
    eventually,
    frame_bytes,
    seq_of,
    seq_payload,
)

KIB = 1024
AQ = QuicSettings(backend="aiopquic")
SMALL = {
    "send_high_water": 64 * KIB,
    "recv_high_water": 256 * KIB,
    "max_data": 256 * KIB,
    "max_stream_data": 256 * KIB,
}


@pytest.fixture(autouse=True)
def _aiopquic_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Zipper and clients pick their backend from the environment: aiopquic here."""
    monkeypatch.setenv("YOMO_QUIC_BACKEND", "aiopquic")


async def _serve(handler, settings: QuicSettings = AQ, tls: TlsConfig = PLAIN_TLS):
    return await listen("127.0.0.1", 0, handler, tls=tls, settings=settings)


# --- the core behaviours through a zipper --------------------------------------------


async def test_both_ends_run_aiopquic(zipper, clients):
    z = await zipper()
    assert z._listener is not None and z._listener.backend.startswith("aiopquic ")
    assert backend_info().startswith("aiopquic ")
    src = await clients.source(z, "src-aq")
    assert isinstance(src._conn, AiopquicConnection)
    await eventually(lambda: len(z.connections()) == 1, "registration")
    info = z.connections()[0]
    assert info.remote_address[0] == "127.0.0.1" and info.remote_address[1] > 0


async def test_handshake_and_routing_by_tag(zipper, clients, raw):
    z = await zipper()
    _, reply = await raw.handshake(z, name="raw-aq")
    assert isinstance(reply, HandshakeAckFrame)
    _, inbox_a = await clients.sfn(z, "sfn-a", [0x10])
    _, inbox_b = await clients.sfn(z, "sfn-b", [0x11, 0x10])
    src = await clients.source(z, "src")
    await src.send(frame_bytes(0x10, b"to-both"))
    await src.send(frame_bytes(0x11, b"to-b"))
    await src.send(frame_bytes(0x12, b"to-nobody"))
    await inbox_b.wait_count(2)
    await inbox_a.wait_count(1)
    assert inbox_a.payloads() == [b"to-both"]
    assert inbox_b.payloads() == [b"to-both", b"to-b"]
    await eventually(lambda: z.stats()["unobserved"] == 1, "the unobserved frame counted")


async def test_ten_thousand_frames_arrive_once_in_order(zipper, clients):
    z = await zipper()
    pair = await Pair.start(clients, z, 0x21)
    await pair.send(10_000, size=KIB)
    await pair.check(timeout=60.0)


async def test_frame_larger_than_a_ring_write_arrives_intact(zipper, clients):
    z = await zipper()
    _, inbox = await clients.sfn(z, "sfn-big", [0x22])
    src = await clients.source(z, "src-big")
    big = bytes(range(256)) * (3 * 4096 + 7)  # about 3 MiB: split into several ring writes
    await src.send(frame_bytes(0x22, big))
    await src.send(frame_bytes(0x22, b"after"))
    await inbox.wait_count(2, timeout=20.0)
    assert inbox.payloads() == [big, b"after"]


async def test_rejection_arrives_before_the_close(zipper, raw):
    z = await zipper()
    conn, reply = await raw.handshake(z, version="2023-06-01")
    assert isinstance(reply, RejectedFrame)
    assert reply.message.startswith("version negotiation failed")
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(conn.read_frame(), 5.0)
    # picoquic carries the error code only: the reason is the code's description
    assert info.value.remote
    assert conn.closed_by_peer
    assert conn.close_reason == "closed by peer"


async def test_zipper_stop_closes_clients(zipper, raw):
    z = await zipper()
    conn, reply = await raw.handshake(z, name="raw-stop")
    assert isinstance(reply, HandshakeAckFrame)
    await z.stop("going down for test")
    await asyncio.wait_for(conn.wait_closed(), 5.0)
    assert conn.closed_by_peer
    assert conn.close_reason == "closed by peer"


async def test_sfn_reconnects_to_a_restarted_zipper(zipper, clients):
    z1 = await zipper()
    port = z1.address[1]
    reconnected = asyncio.Event()
    sfn, inbox = await clients.sfn(z1, "sfn-re", [5])
    sfn.add_reconnected_handler(reconnected.set)
    src = await clients.source(z1, "src-re")
    await src.send(frame_bytes(5, b"before"))
    await inbox.wait_payload(b"before")

    await z1.stop()
    await eventually(lambda: sfn.state is ClientState.RECONNECTING, "the sfn to notice")
    z2 = await zipper(port=port)
    await asyncio.wait_for(reconnected.wait(), 8.0)
    assert sfn.connection_id.endswith(("-1", "-2", "-3", "-4", "-5"))
    await eventually(lambda: src.state is ClientState.CONNECTED, "the source to reconnect")
    await src.send(frame_bytes(5, b"after"))
    await inbox.wait_payload(b"after")
    assert [c.name for c in z2.connections()].count("sfn-re") == 1


# --- close codes on bare connections ------------------------------------------------


async def test_close_codes_both_ways():
    accepted: asyncio.Queue[FrameConnection] = asyncio.Queue()

    async def handler(conn: FrameConnection) -> None:
        await accepted.put(conn)
        await conn.wait_closed()

    listener = await _serve(handler)
    try:
        port = listener.address[1]
        # the client closes with YoMo's code: the server learns it was the peer
        client = await dial("127.0.0.1", port, tls=PLAIN_TLS, settings=AQ)
        client.send_nowait(frame_bytes(1, b"hello"))
        server_side = await asyncio.wait_for(accepted.get(), 5.0)
        frame = await asyncio.wait_for(server_side.read_frame(), 5.0)
        assert isinstance(frame, DataFrame) and bytes(frame.payload) == b"hello"
        await client.aclose("client done")
        assert client.close_reason == "client done" and not client.closed_by_peer
        await asyncio.wait_for(server_side.wait_closed(), 5.0)
        assert server_side.closed_by_peer
        assert server_side.close_reason == "closed by peer"

        # the server closes with another code: the client sees that code
        client = await dial("127.0.0.1", port, tls=PLAIN_TLS, settings=AQ)
        client.send_nowait(frame_bytes(1, b"hi"))
        server_side = await asyncio.wait_for(accepted.get(), 5.0)
        server_side.close("bad client", code=0x2A)
        with pytest.raises(ConnectionClosedError) as info:
            await asyncio.wait_for(client.read_frame(), 5.0)
        assert info.value.remote
        assert client.close_reason == "connection closed with error code 0x2a"
        with pytest.raises(ConnectionClosedError):
            client.send_nowait(b"x")
        await client.aclose()
    finally:
        listener.close()


async def test_connect_errors():
    # nobody listening: the handshake times out
    with pytest.raises(ConnectError, match="no QUIC handshake within"):
        await dial("127.0.0.1", 9, tls=PLAIN_TLS, settings=replace(AQ, handshake_timeout=0.3))


async def test_server_certificate_verified_by_the_client(tmp_path):
    ca = generate_ca(tmp_path / "ca")
    leaf = issue_certificate(ca, tmp_path / "srv", "zipper")
    other = generate_ca(tmp_path / "other", name="other-ca")

    async def handler(conn: FrameConnection) -> None:
        frame = await conn.read_frame()
        await conn.write_frame(frame)
        await conn.wait_closed()

    server_tls = TlsConfig(cert_file=leaf.cert_file, key_file=leaf.key_file)
    listener = await _serve(handler, tls=server_tls)
    try:
        port = listener.address[1]
        good = TlsConfig(ca_file=ca.cert_file, verify_peer=True)
        conn = await dial("127.0.0.1", port, tls=good, settings=AQ)
        await conn.write_frame(frame_bytes(3, b"echo"))
        frame = await asyncio.wait_for(conn.read_frame(), 5.0)
        assert isinstance(frame, DataFrame) and bytes(frame.payload) == b"echo"
        await conn.aclose()
        bad = TlsConfig(ca_file=other.cert_file, verify_peer=True)
        with pytest.raises(ConnectError):
            await dial("127.0.0.1", port, tls=bad, settings=replace(AQ, handshake_timeout=2.0))
    finally:
        listener.close()


async def test_mutual_tls_zipper_is_refused(tmp_path):
    ca = generate_ca(tmp_path)

    async def handler(conn: FrameConnection) -> None:  # pragma: no cover - never runs
        await conn.wait_closed()

    tls = TlsConfig(ca_file=ca.cert_file, verify_peer=True)
    with pytest.raises(TransportError, match="mutual TLS on the zipper needs the aioquic"):
        await _serve(handler, tls=tls)


# --- bounded memory ------------------------------------------------------------------


async def test_stalled_client_reader_holds_the_sender_back():
    """A dialled connection that stops reading withholds flow-control credit."""
    settings = replace(AQ, **SMALL)
    size = 8 * KIB
    written: list[int] = []
    writer_done = asyncio.Event()
    peak_send = 0

    async def handler(conn: FrameConnection) -> None:
        nonlocal peak_send
        await conn.read_frame()  # the client's hello opens the stream
        try:
            for i in range(2000):  # 16 MB: far more than every buffer on the way together
                await conn.write_frame(frame_bytes(7, seq_payload(i, size)), timeout=1.0)
                written.append(i)
                peak_send = max(peak_send, conn.send_backlog)
        except TimeoutError:
            pass
        finally:
            writer_done.set()
        await conn.wait_closed()

    listener = await _serve(handler, settings=settings)
    try:
        client = await dial("127.0.0.1", listener.address[1], tls=PLAIN_TLS, settings=settings)
        client.send_nowait(frame_bytes(1, b"hello"))
        await asyncio.wait_for(writer_done.wait(), 20.0)
        assert 0 < len(written) < 2000  # the writer was held back and timed out
        recv_bound = SMALL["recv_high_water"] + SMALL["max_stream_data"] + size + 64
        assert client.recv_backlog <= recv_bound
        assert peak_send <= SMALL["send_high_water"] + size + 64
        # nothing was lost: the reader gets every frame written, in order
        seqs = []
        while len(seqs) < len(written):
            frame = await asyncio.wait_for(client.read_frame(), 5.0)
            assert isinstance(frame, DataFrame)
            seqs.append(seq_of(frame))
        assert seqs == written
        await client.aclose()
    finally:
        listener.close()


async def _stalled_function_setup(zipper, clients, *, write_timeout: float):
    zq = replace(DEFAULT_ZIPPER_SETTINGS, **SMALL)
    cq = QuicSettings(**SMALL)
    z = await zipper(quic=zq, slow_consumer="block")
    gate = asyncio.Event()
    slow = Inbox(gate=gate)
    await clients.sfn(z, "slow", [0x51], inbox=slow, quic=cq)
    producer = await clients.source(z, "producer", quic=cq, write_timeout=write_timeout)
    return z, gate, slow, producer


class _Peak:
    """Largest zipper-side queue of frames from the producer, sampled."""

    def __init__(self, z) -> None:
        self.z = z
        self.value = 0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            for c in self.z.connections():
                if c.name == "producer":
                    self.value = max(self.value, c.recv_backlog)
            await asyncio.sleep(0.002)

    def stop(self) -> None:
        self._task.cancel()


CAP = _SERVER_RECV_CAP_FACTOR * SMALL["recv_high_water"]
#: the cap, plus what the engine's last passes before it stopped could bring (at most a
#: receive window each; two seen on a loaded machine)
CAP_BOUND = CAP + 2 * SMALL["max_stream_data"] + 8 * KIB + 64


async def test_zipper_holds_a_producer_at_the_cap_without_loss(zipper, clients):
    """Past the cap the zipper's engine stops; a function that catches up in time loses nothing."""
    z, gate, slow, producer = await _stalled_function_setup(zipper, clients, write_timeout=20.0)
    errors: list[BaseException] = []
    producer.add_error_handler(errors.append)
    size, count = 8 * KIB, 600  # 4.8 MB: several times the cap

    async def produce() -> None:
        for i in range(count):
            await producer.send(frame_bytes(0x51, seq_payload(i, size)))

    peak = _Peak(z)
    task = asyncio.ensure_future(produce())
    try:
        await slow.wait_count(1)
        await eventually(lambda: peak.value > CAP, "the producer's queue to pass the cap", 10.0)
        assert not task.done()
        await asyncio.sleep(0.3)  # well under the brake's limit
        gate.set()
        await asyncio.wait_for(task, 20.0)
        await slow.wait_count(count, timeout=20.0)
    finally:
        peak.stop()
        task.cancel()
        gate.set()
    assert slow.seqs() == list(range(count))
    assert peak.value <= CAP_BOUND
    assert errors == []
    assert z.stats()["drops"] == 0


async def test_zipper_closes_a_producer_held_too_long(zipper, clients, caplog):
    """A function that stays stuck: after the brake's limit the producer is closed, bounded."""
    z, gate, slow, producer = await _stalled_function_setup(zipper, clients, write_timeout=2.0)
    size = 8 * KIB
    closed_seen = asyncio.Event()
    producer.add_error_handler(lambda exc: closed_seen.set())

    async def produce() -> None:
        for i in range(1000):  # 8 MB
            with contextlib.suppress(TimeoutError, ConnectionClosedError):
                await producer.send(frame_bytes(0x51, seq_payload(i, size)))
            if closed_seen.is_set():
                return

    caplog.set_level(logging.DEBUG, logger="yomo.transport")
    peak = _Peak(z)
    task = asyncio.ensure_future(produce())
    try:
        await asyncio.wait_for(closed_seen.wait(), 20.0)
    finally:
        peak.stop()
        task.cancel()
        gate.set()
    assert "cannot hold back one client" in caplog.text
    assert CAP < peak.value <= CAP_BOUND
    # what the zipper had taken still arrives, in order
    await slow.wait_count(2)
    seqs = slow.seqs()
    assert seqs == sorted(set(seqs)) and seqs[0] == 0


# --- mixing backends -----------------------------------------------------------------


# qh3 2.1 as a server cannot serve picoquic clients ("packet builder capacity exhausted"
# during the handshake, most attempts on this machine): an aiopquic client needs an
# aiopquic or aioquic zipper. See docs/transport.md.
@pytest.mark.parametrize(
    ("zipper_backend", "client_backend"), [("aiopquic", "qh3"), ("aioquic", "aiopquic")]
)
async def test_aiopquic_interoperates(zipper, clients, zipper_backend, client_backend):
    z = await zipper(quic=replace(DEFAULT_ZIPPER_SETTINGS, backend=zipper_backend))
    assert z._listener is not None and z._listener.backend.startswith(zipper_backend)
    cq = QuicSettings(backend=client_backend)
    _, inbox = await clients.sfn(z, "sfn-mix", [0x30], quic=cq)
    src = await clients.source(z, "src-mix", quic=cq)
    assert type(src._conn).__name__ == (
        "AiopquicConnection" if client_backend == "aiopquic" else "FrameConnection"
    )
    for i in range(500):
        await src.send(frame_bytes(0x30, seq_payload(i, KIB)))
    await inbox.wait_count(500, timeout=20.0)
    assert inbox.seqs() == list(range(500))
