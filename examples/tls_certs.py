"""Mutual TLS with generated certificates.

Makes a private CA and certificates with ``yomo.transport.tls.generate_ca``
and ``issue_certificate``; the zipper serves its certificate and requires
client certificates from that CA (``verify_peer=True``), and clients verify
the zipper. The same settings come from ``YOMO_TLS_CERT_FILE``,
``YOMO_TLS_KEY_FILE``, ``YOMO_TLS_CACERT_FILE`` and ``YOMO_TLS_VERIFY_PEER``.
A client with a certificate from another CA is refused. Runs on loopback and
exits by itself::

    python examples/tls_certs.py
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path

import yomo
from yomo import ReconnectPolicy, TlsConfig
from yomo.transport.tls import generate_ca, issue_certificate

TAG = 0x22


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # the refused handshake is logged; keep it quiet
    with tempfile.TemporaryDirectory(prefix="yomo-tls-example-") as tmp:
        certs = Path(tmp)
        ca = generate_ca(certs / "ca")
        server = issue_certificate(ca, certs / "zipper", "zipper", hosts=["localhost", "127.0.0.1"])
        client = issue_certificate(ca, certs / "client", "client")
        print(f"certificates in {certs}: ca.crt, zipper.crt, client.crt")

        zipper_tls = TlsConfig(
            cert_file=server.cert_file,
            key_file=server.key_file,
            ca_file=ca.cert_file,
            verify_peer=True,
        )
        client_tls = TlsConfig(
            cert_file=client.cert_file,
            key_file=client.key_file,
            ca_file=ca.cert_file,
            verify_peer=True,
        )
        got = threading.Event()
        with yomo.Zipper("zipper", "127.0.0.1", 0, tls=zipper_tls, stats_interval=0) as zipper:
            print(f"zipper  listening on {zipper.addr} ({zipper_tls.mode})")
            sfn = yomo.StreamFunction(
                "secure-fn", zipper.addr, observe_data_tags=[TAG], tls=client_tls
            )

            @sfn.set_handler
            def handle(ctx: yomo.Context) -> None:
                print(f"secure-fn <- {ctx.data.decode()!r}", flush=True)
                got.set()

            with sfn, yomo.Source("secure-source", zipper.addr, tls=client_tls) as source:
                print("secure-source and secure-fn connected with certificates from our CA")
                source.write(TAG, b"encrypted and mutually authenticated")
                got.wait(5)

            other_ca = generate_ca(certs / "other-ca", name="someone-else")
            stranger = issue_certificate(other_ca, certs / "stranger", "stranger")
            stranger_tls = TlsConfig(
                cert_file=stranger.cert_file,
                key_file=stranger.key_file,
                ca_file=ca.cert_file,
                verify_peer=True,
            )
            refused = yomo.Source(
                "stranger",
                zipper.addr,
                tls=stranger_tls,
                reconnect=ReconnectPolicy(connect_timeout=1.0),
            )
            try:
                refused.connect()
                print("stranger connected?! (this should not happen)")
            except yomo.ConnectError as exc:
                print(f"stranger refused: {exc}")
            finally:
                refused.close()


if __name__ == "__main__":
    main()
