"""``YOMO_QLOG_TRACE=true`` writes a qlog file per QUIC connection (Go: core/client_options.go).

Go writes ``./log_<connection id>_<role>.qlog`` (JSON-SEQ) for its clients; so do our
clients, and our zipper too, on the Python QUIC libraries (qh3, aioquic). The native
data path says once that it writes none.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

import yomo.aio
from yomo.transport import qlog
from yomo.transport.settings import DEFAULT_ZIPPER_SETTINGS, QuicSettings

from .clients_helpers import PLAIN_TLS

IN = 0x33


def _records(path: Path) -> list[dict[str, object]]:
    """The JSON-SEQ records of a qlog file (RFC 7464: each starts with RS)."""
    text = path.read_text()
    assert text.startswith("\x1e"), text[:40]
    return [json.loads(chunk) for chunk in text.split("\x1e") if chunk.strip()]


async def _one_write(aio_zipper, backend: str) -> None:
    z = await aio_zipper(quic=dataclasses.replace(DEFAULT_ZIPPER_SETTINGS, backend=backend))
    async with yomo.aio.Source(
        "traced", z.addr, tls=PLAIN_TLS, quic=QuicSettings(backend=backend)
    ) as src:
        await src.write(IN, b"hello")
    await z.stop()


@pytest.mark.parametrize("backend", ["qh3", "aioquic"])
@pytest.mark.parametrize("value", ["true", "TRUE"])
async def test_each_connection_writes_a_qlog_file_per_side(
    aio_zipper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOMO_QLOG_TRACE", value)
    await _one_write(aio_zipper, backend)
    files = sorted(tmp_path.glob("log_*.qlog"))
    assert len(files) == 2, files
    roles = {}
    for path in files:
        header, *events = _records(path)
        assert header["qlog_version"] == "0.3" and header["qlog_format"] == "JSON-SEQ"
        trace = header["trace"]
        assert isinstance(trace, dict)
        odcid = trace["common_fields"]["ODCID"]
        role = trace["vantage_point"]["type"]
        assert path.name == f"log_{odcid}_{role}.qlog"
        names = {e["name"] for e in events}
        assert {"transport:packet_sent", "transport:packet_received"} <= names, names
        roles[role] = odcid
    assert set(roles) == {"client", "server"}
    assert roles["client"] == roles["server"], "both sides of one connection"


@pytest.mark.parametrize("value", [None, "", "1", "yes", "false"])
async def test_only_true_turns_it_on(
    aio_zipper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    monkeypatch.chdir(tmp_path)
    if value is None:
        monkeypatch.delenv("YOMO_QLOG_TRACE", raising=False)
    else:
        monkeypatch.setenv("YOMO_QLOG_TRACE", value)
    await _one_write(aio_zipper, "qh3")
    assert list(tmp_path.glob("*.qlog")) == []


async def test_events_are_on_disk_while_the_connection_lives(
    aio_zipper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOMO_QLOG_TRACE", "true")
    z = await aio_zipper(quic=dataclasses.replace(DEFAULT_ZIPPER_SETTINGS, backend="qh3"))
    src = yomo.aio.Source("traced", z.addr, tls=PLAIN_TLS, quic=QuicSettings(backend="qh3"))
    await src.connect()
    await src.write(IN, b"hello")
    try:
        (client,) = tmp_path.glob("log_*_client.qlog")
        names = {e["name"] for e in _records(client)[1:]}
        assert "transport:packet_sent" in names  # a process that dies now leaves this
    finally:
        await src.close()


async def test_the_native_path_says_it_writes_none(
    aio_zipper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("yomo._native", reason="the native data path is not built here")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOMO_QLOG_TRACE", "true")
    monkeypatch.setattr(qlog, "_warned", set())
    caplog.set_level(logging.WARNING, "yomo.transport")
    await _one_write(aio_zipper, "native")
    warnings = [r.getMessage() for r in caplog.records if "qlog" in r.getMessage()]
    assert warnings == [
        "YOMO_QLOG_TRACE=true: the native data path (quinn) writes no qlog; "
        "YOMO_QUIC_BACKEND=qh3 or aioquic does"
    ]
    assert list(tmp_path.glob("*.qlog")) == []
