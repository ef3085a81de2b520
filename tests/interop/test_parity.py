"""What Go YoMo v1.22.3 itself makes of zipper addresses and cron specs, against ours.

The Go side is tests/interop/go/cmd/parity: ``core.ParseZipperAddr`` (what
``NewClient`` and ``yomo run -z`` use) and robfig/cron's standard parser (what
``sfn.SetCronHandler`` uses), run on the same inputs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from goharness import GoBins

from yomo.client.schedule import parse_schedule
from yomo.session.address import join_address, parse_address

ADDRESSES = [
    "",
    "zipper",
    "zipper.example.com",
    ":9100",
    "localhost:",
    "127.0.0.1:9000",
    "[::1]",
    "[::1]:9001",
    "[fe80::1%eth0]:9000",
    "::1",
    "a:b:c",
    "h:abc",
    "[::1",
    "h]:1",
    "[h]x:1",
    "h:1:",
]

SPECS = [
    "@every 1h30m",
    "@every 90s",
    "@hourly",
    "@daily",
    "@midnight",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
    "*/15 9-17 * * mon-fri",
    "TZ=Asia/Tokyo 0 9 * * *",
    "CRON_TZ=UTC @daily",
    "TZ=America/Sao_Paulo 0 0 * * *",
    "TZ=Asia/Kathmandu 15 * * * *",
    "0 2 * * *",
    "30 1 * * *",
    "30 2 * * *",
    "0 3 * * sun",
    "0 0 */2 * mon",
    "*/1 * 15 * mon",
    "5/15 * * * *",
    "0-59/20 0-23/5 * * *",
    "0 0 1 jan,JUL *",
    "0 0 1 */3 *",
    "0 12 1-7 * 1",
    "0 0 ? * ?",
    "1,2,,3 * * * *",
    "59 23 31 12 *",
    "0 0 29 2 *",
    "0 0 31 * *",
    # refused by Go's parser (Go's sfn then never runs them; ours raise)
    "0 30 * * * *",
    "0 0 * * 7",
    "0 0 L * *",
    "@reboot",
    "",
    "*/0 * * * *",
    "60 * * * *",
]
#: Around both daylight-saving changes of 2024 in New York and Berlin, a leap day,
#: and a year end.
STARTS = [1710000000, 1711846000, 1730000000, 1730595000, 951782400, 1704067199]
ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "UTC"]


def _go(go_bins: GoBins, *args: str, tz: str | None = None) -> list[dict[str, object]]:
    env = {"PATH": "/usr/bin:/bin"}
    if tz is not None:
        env["TZ"] = tz
    out = subprocess.run(
        [str(Path(go_bins.dir) / "parity"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_zipper_addresses_read_as_go_reads_them(go_bins: GoBins) -> None:
    rows = _go(go_bins, "addr", *ADDRESSES)
    assert [r["in"] for r in rows] == ADDRESSES
    for row in rows:
        addr = str(row["in"])
        if "error" in row:
            with pytest.raises(ValueError):
                parse_address(addr)
        else:
            assert join_address(*parse_address(addr)) == row["out"], addr


@pytest.mark.parametrize("zone", ZONES)
def test_cron_specs_run_when_go_runs_them(go_bins: GoBins, zone: str) -> None:
    checked = 0
    for start in STARTS:
        rows = _go(go_bins, "cron", "-from", str(start), "-n", "8", *SPECS, tz=zone)
        assert [r["spec"] for r in rows] == SPECS
        for row in rows:
            spec = str(row["spec"])
            go_times = row.get("next")
            if "error" in row or not go_times:  # refused, or it never runs in Go
                with pytest.raises(ValueError):
                    parse_schedule(spec, zone=ZoneInfo(zone))
                continue
            schedule = parse_schedule(spec, zone=ZoneInfo(zone))
            if spec.startswith("@every"):  # Go aligns runs on whole seconds
                assert schedule.next_after(float(start)) == go_times[0]  # type: ignore[index]
                continue
            ours: list[int] = []
            t: float | None = float(start)
            for _ in go_times:  # type: ignore[union-attr]
                t = schedule.next_after(t)
                assert t is not None
                ours.append(int(t))
            assert ours == go_times, (zone, start, spec)
            checked += 1
    assert checked >= 150


async def test_qlog_files_are_named_and_framed_as_gos(
    go_bins: GoBins, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """YOMO_QLOG_TRACE=true: Go's client and ours each leave ./log_<id>_client.qlog, JSON-SEQ."""
    import re

    from goharness import GoProcess
    from pypeers import PLAIN_TLS

    import yomo.aio
    from yomo.transport.settings import DEFAULT_ZIPPER_SETTINGS, QuicSettings

    # The zipper on the pure-Python path: Go's client is far less likely to block there.
    quic = dataclasses.replace(DEFAULT_ZIPPER_SETTINGS, backend="qh3")
    async with yomo.aio.Zipper("z", "127.0.0.1", 0, tls=PLAIN_TLS, quic=quic) as zipper:
        # Go v1.22.3's qlog tracer never starts the trace writer's goroutine (core/
        # client_options.go qlogTracer returns quic-go v0.57.1's NewFileSeq without Run):
        # its file keeps only the header, and once 50 events are queued the connection's
        # loop blocks for good. Close always hangs; Connect hangs when the 50th event comes
        # before the handshake's answer (18 runs in 80 against our native zipper here,
        # which sends more packets early; 0 in 48 on the pure-Python path; never with the
        # tracer off; docs/interop.md). A stuck attempt is stopped and retried afresh.
        for attempt in range(6):
            go_dir = tmp_path / f"go{attempt}"
            go_dir.mkdir()
            go = GoProcess(
                "go-source",
                [str(go_bins.source), f"-zipper={zipper.addr}", "-n=2", "-linger=200ms"],
                env={"YOMO_QLOG_TRACE": "true"},
                cwd=go_dir,
            )
            try:
                await asyncio.to_thread(go.wait_event, "summary", 8)
                await asyncio.sleep(0.3)  # its header is on disk by then
                break
            except TimeoutError:
                if attempt == 5:
                    raise
                print(
                    f"go-source attempt {attempt + 1}: Connect blocked by its qlog writer; retrying"
                )
            finally:
                await asyncio.to_thread(go.stop)
        go_dir.rename(tmp_path / "go")
        (tmp_path / "py").mkdir()
        monkeypatch.chdir(tmp_path / "py")
        monkeypatch.setenv("YOMO_QLOG_TRACE", "true")
        async with yomo.aio.Source(
            "src", zipper.addr, tls=PLAIN_TLS, quic=QuicSettings(backend="qh3")
        ) as src:
            await src.write(0x33, b"hello")
    for side in ("go", "py"):
        (path,) = [p for p in (tmp_path / side).iterdir() if p.name.endswith("_client.qlog")]
        assert re.fullmatch(r"log_[0-9a-f]+_client\.qlog", path.name), path.name
        text = path.read_text()
        assert text.startswith("\x1e{"), (side, text[:40])
        header = json.loads(text[1:].split("\x1e")[0])
        assert (header["qlog_format"], header["qlog_version"]) == ("JSON-SEQ", "0.3"), side
