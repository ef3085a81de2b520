"""``yomo serve`` as a user runs it: start, serve a client, stop on SIGINT/SIGTERM with exit 0."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import yomo
from yomo.transport import TlsConfig

from .cli_process import YomoProcess, free_udp_port, start_serve, write_config


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_starts_serves_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    p, addr = start_serve(tmp_path)
    try:
        with yomo.Source("probe", addr, tls=TlsConfig()) as source:
            source.write(0x33, b"ping")
        p.wait_line("connected: Source 'probe'")
        p.signal(sig)
        assert p.wait(15) == 0, p.output
        p.wait_line(f"received {sig.name}, stopping the zipper")
        p.wait_line(f"zipper 'test-zipper' stopped: received {sig.name}")
    finally:
        p.stop()


def test_serve_closes_connected_functions_on_sigint(tmp_path: Path) -> None:
    p, addr = start_serve(tmp_path)
    sfn = yomo.StreamFunction("watcher", addr, observe_data_tags=[1], tls=TlsConfig())
    sfn.set_handler(lambda ctx: None)
    try:
        sfn.connect()
        p.wait_line("connected: StreamFunction 'watcher'")
        p.signal(signal.SIGINT)
        assert p.wait(15) == 0, p.output
        p.wait_line("disconnected: StreamFunction 'watcher'")
    finally:
        sfn.close()
        p.stop()


def test_serve_with_token_auth_rejects_a_bad_credential(tmp_path: Path) -> None:
    p, addr = start_serve(tmp_path, token="s3cret")
    try:
        ok = yomo.Source("good", addr, credential="token:s3cret", tls=TlsConfig())
        ok.connect()
        ok.close()
        bad = yomo.Source("bad", addr, credential="token:nope", tls=TlsConfig())
        with pytest.raises(yomo.AuthenticationError, match="invalid token"):
            bad.connect()
        p.wait_line("rejected Source 'bad'")
        p.signal(signal.SIGINT)
        assert p.wait(15) == 0, p.output
    finally:
        p.stop()


def test_serve_on_a_taken_port_fails_with_one_line(tmp_path: Path) -> None:
    first, addr = start_serve(tmp_path)
    try:
        port = int(addr.rsplit(":", 1)[1])
        config = write_config(tmp_path / "again.yaml", port)
        second = YomoProcess(["serve", "-c", str(config)], tmp_path)
        assert second.wait(20) == 1, second.output
        last = second.stderr[-1]
        assert last.startswith("Error: yomo: cannot "), last
        assert f"127.0.0.1:{port}" in last and "in use" in last, last
    finally:
        first.signal(signal.SIGINT)
        first.wait(15)


def test_serve_with_a_missing_config_exits_1(tmp_path: Path) -> None:
    p = YomoProcess(["serve", "-c", str(tmp_path / f"nope-{free_udp_port()}.yaml")], tmp_path)
    assert p.wait(20) == 1, p.output
    assert p.stderr[-1].startswith("Error: yomo: ")
