"""TLS both ways through the YOMO_TLS_* variables, with certificates the test makes.

Go reads YOMO_TLS_CERT_FILE / KEY_FILE / CACERT_FILE / VERIFY_PEER from its
environment; our zipper here is built with `TlsConfig.from_env` from the same
variables, and our clients get the equivalent `TlsConfig`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from goharness import GoPeers, GoProcess, GoZippers
from pypeers import py_sfn, run_py_source

from yomo.aio import ReconnectPolicy, TlsConfig, Zipper
from yomo.errors import ConnectError
from yomo.transport.tls import CertificatePair, generate_ca, issue_certificate

__all__: list[str] = []

TAG = 0x33
#: A failing TLS handshake is retried like a broken connection; give up quickly.
ONE_TRY = ReconnectPolicy(initial_delay=0.1, connect_timeout=1.0)


class Pki:
    """A test CA with a server and a client certificate, and an unrelated CA with a client one."""

    def __init__(self, tmp: Path) -> None:
        self.ca = generate_ca(tmp / "ca")
        self.server = issue_certificate(self.ca, tmp / "ca", "zipper", ("localhost", "127.0.0.1"))
        self.client = issue_certificate(self.ca, tmp / "ca", "client", ("localhost",))
        self.other_ca = generate_ca(tmp / "other", "other-ca")
        self.stranger = issue_certificate(self.other_ca, tmp / "other", "stranger", ("localhost",))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def tls_env(
    pair: CertificatePair | None = None, ca: CertificatePair | None = None, verify: bool = False
) -> dict[str, str]:
    env = {}
    if pair is not None:
        env.update(YOMO_TLS_CERT_FILE=pair.cert_file, YOMO_TLS_KEY_FILE=pair.key_file)
    if ca is not None:
        env["YOMO_TLS_CACERT_FILE"] = ca.cert_file
    if verify:
        env["YOMO_TLS_VERIFY_PEER"] = "true"
    return env


async def _py_flows(zipper: object, tls: TlsConfig) -> None:
    sink = py_sfn(zipper, observe=(TAG,), out_tag=None, tls=tls)
    await sink.sfn.connect()
    await run_py_source(zipper, n=3, tls=tls, linger=0.2)
    await sink.wait_count({TAG: 3}, 10)
    await sink.close()


async def _py_refused(zipper: object, tls: TlsConfig) -> str:
    with pytest.raises(ConnectError) as info:
        await run_py_source(zipper, n=1, tls=tls, linger=0, reconnect=ONE_TRY)
    return info.value.message


async def _go_flows(go_peer: GoPeers, zipper: object, env: dict[str, str]) -> None:
    sink = await asyncio.to_thread(go_peer.sink, zipper, observe=(TAG,), env=env)
    source = go_peer.source(zipper, n=3, env=env)
    assert await source.async_wait_exit(15) == 0, source.tail()
    await sink.async_wait_for(lambda p: len(p.frames()) >= 3, 10, "3 frames")


async def _go_refused(p: GoProcess) -> str:
    assert await p.async_wait_exit(15) == 2, p.tail()
    errors = [e["error"] for e in p.snapshot("connect_error")]
    assert len(errors) == 1, p.tail()
    return str(errors[0])


async def test_mutual_tls_go_zipper_python_clients(
    pki: Pki, go_zipper: GoZippers, go_peer: GoPeers
) -> None:
    zipper = go_zipper(env=tls_env(pki.server, pki.ca, verify=True))
    await _py_flows(
        zipper, TlsConfig(**_files(pki.client), ca_file=pki.ca.cert_file, verify_peer=True)
    )

    no_cert = await _py_refused(zipper, TlsConfig(ca_file=pki.ca.cert_file, verify_peer=True))
    stranger = await _py_refused(
        zipper, TlsConfig(**_files(pki.stranger), ca_file=pki.ca.cert_file, verify_peer=True)
    )
    wrong_ca = await _py_refused(
        zipper, TlsConfig(**_files(pki.client), ca_file=pki.other_ca.cert_file, verify_peer=True)
    )
    print(f"\npy client, no cert: {no_cert}\nstranger: {stranger}\nwrong CA: {wrong_ca}")


async def test_mutual_tls_our_zipper_go_clients(
    pki: Pki, py_zipper: Callable[..., Awaitable[Zipper]], go_peer: GoPeers
) -> None:
    tls = TlsConfig.from_env(tls_env(pki.server, pki.ca, verify=True))
    zipper = await py_zipper(tls=tls)
    await _go_flows(go_peer, zipper, tls_env(pki.client, pki.ca, verify=True))

    no_cert = await _go_refused(go_peer.source(zipper, n=1, env=tls_env(ca=pki.ca, verify=True)))
    # Our zipper checks the client certificate right after the QUIC handshake and closes
    # with a reason; Go's client reports that close as "remote conn closed: <reason>".
    assert no_cert == "remote conn closed: mutual TLS: the client presented no certificate"
    stranger = await _go_refused(
        go_peer.source(zipper, n=1, env=tls_env(pki.stranger, pki.ca, verify=True))
    )
    assert stranger.startswith("remote conn closed: mutual TLS: client certificate not trusted")
    wrong_ca = await _go_refused(
        go_peer.source(zipper, n=1, env=tls_env(pki.client, pki.other_ca, verify=True))
    )
    assert "certificate" in wrong_ca, wrong_ca
    print(f"\ngo client, no cert: {no_cert}\nstranger: {stranger}\nwrong CA: {wrong_ca}")
    assert zipper.stats()["connections"].get("Source", 0) == 0


async def test_server_certificate_only_both_ways(
    pki: Pki,
    py_zipper: Callable[..., Awaitable[Zipper]],
    go_zipper: GoZippers,
    go_peer: GoPeers,
) -> None:
    """No client certificates: clients that verify accept a CA-signed zipper, and only that."""
    go = go_zipper(env=tls_env(pki.server))
    await _py_flows(go, TlsConfig(ca_file=pki.ca.cert_file, verify_peer=True))
    await _py_refused(go, TlsConfig(ca_file=pki.other_ca.cert_file, verify_peer=True))

    ours = await py_zipper(tls=TlsConfig.from_env(tls_env(pki.server)))
    await _go_flows(go_peer, ours, tls_env(ca=pki.ca, verify=True))
    wrong_ca = await _go_refused(
        go_peer.source(ours, n=1, env=tls_env(ca=pki.other_ca, verify=True))
    )
    assert "certificate" in wrong_ca, wrong_ca
    # Without YOMO_TLS_VERIFY_PEER=true a Go client takes any certificate (development mode).
    await _go_flows(go_peer, ours, tls_env(ca=pki.other_ca))


def _files(pair: CertificatePair) -> dict[str, str]:
    return {"cert_file": pair.cert_file, "key_file": pair.key_file}
