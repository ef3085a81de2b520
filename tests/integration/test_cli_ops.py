"""``yomo serve`` for operators: --monitor, the config's monitor key, --host/--port overrides,
the periodic summary line, -v/--log-level after the subcommand, YOMO_LOG_* variables."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yomo
from yomo.transport import TlsConfig

from .cli_process import YomoProcess, clean_env, free_udp_port, write_config


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _monitor_url(p: YomoProcess) -> str:
    line = p.wait_line("monitor listening on http://")
    match = re.search(r"(http://\S+)", line)
    assert match, line
    return match.group(1)


def test_serve_monitor_flag_summary_and_verbose_after_the_subcommand(tmp_path: Path) -> None:
    port = free_udp_port()
    config = write_config(tmp_path / "zipper.yaml", 1)  # --port overrides the config's port
    config.write_text(config.read_text().replace("host: 127.0.0.1", "host: 0.0.0.0"))
    p = YomoProcess(
        [
            "serve",
            "-c",
            str(config),
            "--host",  # and --host the config's host
            "127.0.0.1",
            "--port",
            str(port),
            "--monitor",
            "127.0.0.1:0",
            "--stats-interval",
            "1",
            "-v",
        ],
        tmp_path,
    )
    try:
        url = _monitor_url(p)
        p.wait_line(f"zipper 'test-zipper' listening on 127.0.0.1:{port}")
        p.wait_line("DEBUG")  # -v after the subcommand turned on debug records
        status, body = _get(f"{url}/healthz")
        assert status == 200 and json.loads(body)["status"] == "serving"
        with yomo.Source("probe", f"127.0.0.1:{port}", tls=TlsConfig()) as source:
            source.write(0x33, b"ping")
        p.wait_line("connected: Source 'probe'")
        p.wait_line("on tags no stream function observes: 0x33")
        line = p.wait_line("stats: ")
        assert "frames/s" in line and "dropped" in line, line
        stats = json.loads(_get(f"{url}/api/stats")[1])
        assert stats["tags"]["0x33"]["unobserved"] == 1
        p.signal(signal.SIGINT)
        assert p.wait(15) == 0, p.output
    finally:
        p.stop()


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_monitor_from_the_config_file_and_log_level_after_the_subcommand(tmp_path: Path) -> None:
    port, mport = free_udp_port(), _free_tcp_port()
    config = write_config(tmp_path / "zipper.yaml", port)
    config.write_text(config.read_text() + f"monitor: 127.0.0.1:{mport}\n")
    p = YomoProcess(["serve", "-c", str(config), "--log-level", "warn"], tmp_path)
    try:
        deadline = time.monotonic() + 20
        status = 0
        while status != 200 and time.monotonic() < deadline and p.proc.poll() is None:
            try:
                status, _ = _get(f"http://127.0.0.1:{mport}/healthz")
            except OSError:  # not listening yet
                time.sleep(0.1)
        assert status == 200, p.output
        p.signal(signal.SIGINT)
        assert p.wait(15) == 0, p.output
    finally:
        p.stop()
    assert not [line for line in p.stderr if " INFO " in line], p.output


def test_yomo_log_variables_json_output_file(tmp_path: Path) -> None:
    port = free_udp_port()
    config = write_config(tmp_path / "zipper.yaml", port)
    log_file = tmp_path / "yomo.log"
    env = {"YOMO_LOG_FORMAT": "json", "YOMO_LOG_OUTPUT": str(log_file)}
    p = YomoProcess(["serve", "-c", str(config)], tmp_path, env)
    try:
        with yomo.Source("probe", f"127.0.0.1:{port}", tls=TlsConfig(), reconnect=None) as s:
            s.write(0x33, b"x")
    finally:
        p.signal(signal.SIGINT)
        assert p.wait(15) == 0, p.output
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert any(r["msg"].startswith("zipper 'test-zipper' listening on") for r in records)
    assert all({"time", "level", "logger", "msg"} <= set(r) for r in records)
    assert not [line for line in p.stderr if "listening on" in line]


def test_the_library_honours_yomo_log_variables(tmp_path: Path) -> None:
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    program = (
        "import logging, yomo\n"
        "logging.getLogger('yomo.zipper').debug('debug line')\n"
        "logging.getLogger('yomo.zipper').info('info line')\n"
        "logging.getLogger('yomo.client').error('error line')\n"
    )
    env = clean_env(
        {
            "YOMO_LOG_LEVEL": "debug",
            "YOMO_LOG_FORMAT": "json",
            "YOMO_LOG_OUTPUT": str(out),
            "YOMO_LOG_ERROR_OUTPUT": str(err),
            "YOMO_LOG_VERBOSE": "true",
        }
    )
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    main = [json.loads(line) for line in out.read_text().splitlines()]
    errors = [json.loads(line) for line in err.read_text().splitlines()]
    assert [r["msg"] for r in main] == ["debug line", "info line"]
    assert [(r["level"], r["msg"]) for r in errors] == [("ERROR", "error line")]
    assert main[0]["source"].startswith("<string>:")


def test_a_bad_yomo_log_value_is_one_clear_error(tmp_path: Path) -> None:
    p = YomoProcess(["version"], tmp_path, {"YOMO_LOG_FORMAT": "xml"})
    assert p.wait(30) == 1, p.output
    assert p.stderr[-1] == "Error: yomo: YOMO_LOG_FORMAT: expected 'text' or 'json', got 'xml'"
