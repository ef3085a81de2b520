"""TLS on a real zipper: the self-signed default, and mutual TLS with a test CA."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from yomo.client.core import ReconnectPolicy
from yomo.errors import ConnectError, ConnectionClosedError
from yomo.transport import DEFAULT_ZIPPER_SETTINGS, TlsConfig, dial
from yomo.transport.tls import CertificatePair, generate_ca, issue_certificate
from yomo.wire import ClientType, HandshakeAckFrame

from .helpers import frame_bytes

#: Mutual TLS runs on the default (native) data path; on the pure-Python one
#: (YOMO_QUIC_BACKEND=qh3 or aioquic) only aioquic can ask for a client certificate.
MTLS_ZIPPER = replace(
    DEFAULT_ZIPPER_SETTINGS,
    backend="aioquic" if os.environ.get("YOMO_QUIC_BACKEND") in ("qh3", "aioquic") else None,
)
NO_RETRY = ReconnectPolicy(initial_delay=0.05, connect_timeout=0.5, enabled=False)


class Pki:
    """A test CA with a zipper and a client certificate, and a second, unrelated CA."""

    def __init__(self, root: Path) -> None:
        self.ca = generate_ca(root / "ca", "yomo-test-ca")
        self.server = issue_certificate(self.ca, root / "ca", "zipper")
        self.client = issue_certificate(self.ca, root / "ca", "client", hosts=())
        self.other_ca = generate_ca(root / "other", "other-ca")
        self.other_server = issue_certificate(self.other_ca, root / "other", "zipper")
        self.other_client = issue_certificate(self.other_ca, root / "other", "client", hosts=())

    def tls(self, pair: CertificatePair | None, ca: CertificatePair | None = None) -> TlsConfig:
        ca = ca or self.ca
        return TlsConfig(
            cert_file=pair.cert_file if pair else None,
            key_file=pair.key_file if pair else None,
            ca_file=ca.cert_file,
            verify_peer=True,
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


async def test_self_signed_default(zipper, clients):
    z = await zipper(tls=TlsConfig())
    _, inbox = await clients.sfn(z, "sfn", [1], tls=TlsConfig())
    src = await clients.source(z, tls=TlsConfig())
    await src.send(frame_bytes(1, b"secret"))
    await inbox.wait_payload(b"secret")


async def test_client_verifying_self_signed_zipper_fails(zipper, pki):
    z = await zipper(tls=TlsConfig())
    host, port = z.address
    with pytest.raises(ConnectError):
        await dial(host, port, tls=TlsConfig(ca_file=pki.ca.cert_file, verify_peer=True))
    assert z.connections() == []


async def test_mutual_tls_client_with_ca_certificate_connects(zipper, clients, pki):
    z = await zipper(tls=pki.tls(pki.server), quic=MTLS_ZIPPER)
    _, inbox = await clients.sfn(z, "sfn-mtls", [1], tls=pki.tls(pki.client))
    src = await clients.source(z, "src-mtls", tls=pki.tls(pki.client))
    for i in range(10):
        await src.send(frame_bytes(1, b"m%d" % i))
    await inbox.wait_count(10)
    assert inbox.payloads() == [b"m%d" % i for i in range(10)]
    assert {c.name for c in z.connections()} == {"sfn-mtls", "src-mtls"}


async def _refused(z, raw, tls: TlsConfig) -> str:
    """Dial with ``tls``: either the TLS handshake fails, or the zipper closes right after."""
    try:
        conn = await raw.dial(z, tls=tls)
    except ConnectError as exc:
        return str(exc)
    # whatever it sends (if the close has not arrived yet), nothing is served
    with contextlib.suppress(ConnectionClosedError):
        conn.send_nowait(frame_bytes(1, b"x"))
    with pytest.raises(ConnectionClosedError):
        await asyncio.wait_for(conn.read_frame(), 5.0)
    assert conn.closed_by_peer
    assert conn.close_reason
    return conn.close_reason


async def test_mutual_tls_client_without_certificate_is_refused(zipper, clients, raw, pki):
    z = await zipper(tls=pki.tls(pki.server), quic=MTLS_ZIPPER)
    reason = await _refused(z, raw, pki.tls(None))
    assert reason == "mutual TLS: the client presented no certificate"
    assert z.connections() == []
    # and ClientCore reports it as a connect failure that names the reason
    core = clients.make(z, "src-nocert", ClientType.SOURCE, tls=pki.tls(None), reconnect=NO_RETRY)
    with pytest.raises(ConnectError, match="the client presented no certificate"):
        await core.connect()


async def test_mutual_tls_client_with_other_ca_certificate_is_refused(zipper, clients, raw, pki):
    z = await zipper(tls=pki.tls(pki.server), quic=MTLS_ZIPPER)
    # the client trusts the zipper but presents a certificate of another CA
    reason = await _refused(z, raw, pki.tls(pki.other_client))
    assert reason.startswith("mutual TLS: client certificate not trusted: "), reason
    assert z.connections() == []
    core = clients.make(
        z, "src-othercert", ClientType.SOURCE, tls=pki.tls(pki.other_client), reconnect=NO_RETRY
    )
    with pytest.raises(ConnectError, match="client certificate not trusted"):
        await core.connect()


async def test_client_rejects_zipper_certificate_of_other_ca(zipper, clients, pki):
    z = await zipper(tls=pki.tls(pki.other_server, pki.other_ca), quic=MTLS_ZIPPER)
    core = clients.make(z, "src-verify", ClientType.SOURCE, tls=pki.tls(pki.client))
    core.reconnect = NO_RETRY
    with pytest.raises(ConnectError, match="issuer certificate"):
        await core.connect()
    assert z.connections() == []


async def test_mutual_tls_raw_handshake_after_tls(zipper, raw, pki):
    z = await zipper(tls=pki.tls(pki.server), quic=MTLS_ZIPPER)
    conn, reply = await raw.handshake(z, name="raw-mtls", tls=pki.tls(pki.client))
    assert isinstance(reply, HandshakeAckFrame)
    assert not conn.closed
