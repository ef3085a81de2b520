"""The shell tools as a user runs them: ``yomo pub``, ``yomo sub`` and ``yomo stats``.

Real ``python -m yomo`` processes against a real zipper; ``yomo sub`` must print each
frame at once and end cleanly on Ctrl-C.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from .cli_process import YomoProcess, clean_env, free_udp_port, run_yomo


def _sub(tmp_path: Path, addr: str, *args: str) -> YomoProcess:
    p = YomoProcess(["sub", *args, "-z", addr], tmp_path)
    p.wait_line("yomo: subscribed to", stream="stderr")
    return p


def _pub_stdin(tmp_path: Path, args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "yomo", "pub", *args],
        input=data,
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        timeout=60,
    )


def _clean_exit(p: YomoProcess) -> None:
    assert p.wait(15) == 0, p.output
    text = p.output
    assert "Traceback" not in text and "Task was destroyed" not in text, text
    assert "Exception ignored" not in text, text


def test_pub_reaches_sub_at_once_and_sub_stops_cleanly_on_ctrl_c(tmp_path, sync_zipper):
    z = sync_zipper()
    sub = _sub(tmp_path, z.addr, "0x33", "52")
    try:
        pub = run_yomo(["pub", "0x33", "hello yomo", "-z", z.addr], tmp_path)
        assert pub.proc.returncode == 0, pub.output
        assert pub.stderr[-1] == f"yomo: wrote 1 frame(s), 10 bytes, under tag 0x33 to {z.addr}"
        line = sub.wait_line("hello yomo", timeout=10, stream="stdout")
        assert line.startswith("[0x33] 10 bytes tid=") and line.endswith(": hello yomo"), line

        binary = _pub_stdin(tmp_path, ["0x34", "-z", z.addr], b"\x00\x01\xff")
        assert binary.returncode == 0, binary.stderr
        assert sub.wait_line("hex:0001ff", timeout=10, stream="stdout").startswith("[0x34] 3 bytes")

        lines = _pub_stdin(tmp_path, ["0x33", "--lines", "-z", z.addr], b"one\ntwo\n")
        assert lines.returncode == 0, lines.stderr
        sub.wait_line(": two", timeout=10, stream="stdout")

        counted = run_yomo(
            ["pub", "0x33", "tick", "--count", "5", "--rate", "100", "-z", z.addr], tmp_path
        )
        assert counted.proc.returncode == 0, counted.output
        assert "wrote 5 frame(s), 20 bytes" in counted.stderr[-1]
        lines_seen = lambda: sum(": tick" in line for line in sub.stdout)  # noqa: E731
        import time

        deadline = time.monotonic() + 10
        while lines_seen() < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lines_seen() == 5, sub.output

        sub.signal(signal.SIGINT)
        _clean_exit(sub)
        assert sub.stderr[-1] == "yomo: received 9 frame(s)", sub.output
    finally:
        sub.stop()


def test_sub_json_and_count(tmp_path, sync_zipper):
    z = sync_zipper()
    sub = _sub(tmp_path, z.addr, "0x33", "--json", "--count", "2")
    try:
        for text in ("first", "second", "third"):
            assert run_yomo(["pub", "0x33", text, "-z", z.addr], tmp_path).proc.returncode == 0
            if sub.proc.poll() is not None:
                break
        _clean_exit(sub)
        records = [json.loads(line) for line in sub.stdout]
        assert [r["text"] for r in records] == ["first", "second"]
        assert records[0]["tag"] == "0x33" and records[0]["size"] == 5
        assert records[0]["tid"] and records[0]["source_id"]
    finally:
        sub.stop()


def test_pub_and_sub_errors(tmp_path):
    port = free_udp_port()
    bad_tag = run_yomo(["pub", "0xZZ", "x"], tmp_path)
    assert bad_tag.proc.returncode == 2
    assert "expected a number like 0x33 or 51, got '0xZZ'" in bad_tag.output
    reserved = run_yomo(["sub", "0x33", "0xF001"], tmp_path)
    assert reserved.proc.returncode == 2
    assert "tag 0xf001 is reserved for the system" in reserved.output
    too_big = run_yomo(["pub", "0x100000000", "x"], tmp_path)
    assert too_big.proc.returncode == 2
    assert "tag 0x100000000 is out of range" in too_big.output
    both = run_yomo(["pub", "0x33", "x", "--file", "-"], tmp_path)
    assert both.proc.returncode == 2 and "give DATA or --file, not both" in both.output
    down = run_yomo(
        ["pub", "0x33", "x", "-z", f"127.0.0.1:{port}", "--connect-timeout", "1"], tmp_path
    )
    assert down.proc.returncode == 1
    assert down.stderr[-1].startswith(f"Error: yomo: cannot connect to zipper at 127.0.0.1:{port}")
    assert down.stderr[-1].endswith(f"(is `yomo serve` running at 127.0.0.1:{port}?)")
    assert "Traceback" not in down.output


def test_stats_prints_tables_from_a_monitor(tmp_path, sync_zipper, sync_clients):
    z = sync_zipper(monitor="127.0.0.1:0")
    sink = sync_clients.sink(z.addr, "table-fn", [0x33])
    src = sync_clients.source(z.addr, "table-src")
    src.connect()
    src.write(0x33, b"data")
    sink.wait(1)
    host, mport = z.monitor_address
    p = run_yomo(["stats", f"{host}:{mport}"], tmp_path)
    assert p.proc.returncode == 0, p.output
    out = "\n".join(p.stdout)
    assert out.startswith("zipper 'zipper' serving, up ")
    assert "CONNECTIONS" in out and "table-fn" in out and "table-src" in out
    tag_line = next(line for line in p.stdout if line.strip().startswith("0x33"))
    assert tag_line.split()[3:5] == ["1", "1"], tag_line  # frames in, frames out
    as_json = run_yomo(["stats", f"http://{host}:{mport}/", "--json"], tmp_path)
    data = json.loads("\n".join(as_json.stdout))
    assert data["stats"]["tags"]["0x33"]["frames_in"] == 1
    assert {c["name"] for c in data["connections"]} == {"table-fn", "table-src"}


def test_stats_without_a_monitor_says_so(tmp_path):
    port = free_udp_port()
    p = run_yomo(["stats", f"127.0.0.1:{port}"], tmp_path)
    assert p.proc.returncode == 1
    assert p.stderr[-1].startswith(
        f"Error: yomo: cannot reach the monitor at http://127.0.0.1:{port}"
    )
    assert p.stderr[-1].endswith(f"(is `yomo serve --monitor 127.0.0.1:{port}` running?)")
