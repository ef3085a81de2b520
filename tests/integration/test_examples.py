"""Every example in examples/ runs to its end by itself and prints what it promises.

(examples/mesh/run_demo.py is run by test_mesh.py.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str, timeout: float = 30.0) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOMO_", "OTEL_"))}
    env["PYTHONUNBUFFERED"] = "1"
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=EXAMPLES.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, f"{name} exited {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_every_example_is_listed_in_the_readme() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    for script in sorted(EXAMPLES.glob("*.py")):
        assert f"python examples/{script.name}" in readme, script.name


def test_basic_pipeline() -> None:
    out = run_example("basic_pipeline.py")
    assert "source   -> 0x33 'hello yomo #1'" in out
    for i in range(1, 11):
        assert f"sink     <- 0x34 'HELLO YOMO #{i}'" in out
    assert "done: wrote 10, uppercased 10, sink received 10 in " in out
    assert "zipper: 0x33 in 10 out 10, 0x34 in 10 out 10" in out


def test_basic_pipeline_for_a_duration() -> None:
    out = run_example("basic_pipeline.py", "--seconds", "1", "--rate", "20")
    m = re.search(r"done: wrote (\d+), uppercased (\d+), sink received (\d+) in", out)
    assert m is not None, out
    written, upper, received = (int(g) for g in m.groups())
    assert written > 1 and written == upper == received


def test_pipe_handler_keeps_order() -> None:
    out = run_example("pipe_handler.py")
    assert "sink    <- 1 -> total 1" in out
    assert "sink    <- 20 -> total 210" in out
    assert "done: 20 totals, in order: True" in out


def test_target_routing() -> None:
    out = run_example("target_routing.py")
    assert (
        "alice got 2: ['hi alice, this is for you only', 'announcement to everyone']" in out
        or "alice got 2: ['announcement to everyone', 'hi alice, this is for you only']" in out
    )
    assert "bob got 2:" in out and "hi bob, a private note" in out
    assert "carol" not in out.split("alice got")[1]


def test_auth_token() -> None:
    out = run_example("auth_token.py")
    assert "guarded <- 'hello from a trusted source'" in out
    assert "intruder rejected: yomo: rejected by zipper: invalid token: guess" in out
    assert "zipper rejections: 1" in out


def test_tls_certs() -> None:
    out = run_example("tls_certs.py")
    assert "(mutual TLS)" in out
    assert "secure-fn <- 'encrypted and mutually authenticated'" in out
    assert "stranger refused: yomo: cannot connect to zipper at 127.0.0.1:" in out


def test_cron() -> None:
    out = run_example("cron.py")
    assert "sink    <- 'tick 1 at " in out
    assert "sink    <- 'tick 3 at " in out
    assert "done: 3 ticks in " in out


def test_tracing() -> None:
    out = run_example("tracing.py")
    if out.startswith("skipped:"):
        pytest.skip(out.strip())
    assert re.search(r"trace [0-9a-f]{32}: source:source -> uppercase:uppercase -> sink:sink", out)
    assert "done: 9 spans, 3 traces, each spans all 3 services: True" in out


@pytest.mark.timeout(900)  # the first run downloads and builds Go YoMo
def test_go_mixed() -> None:
    if shutil.which("go") is None:
        print("skipping: `go` is not on PATH")
        pytest.skip("Go is not installed (no `go` on PATH)")
    out = run_example("go_mixed.py", timeout=900)
    assert out.count("(uppercased by Python, bytes match: True)") == 5, out
    for i in range(5):
        assert f"py-sink   <- 0x36 'go:python says {i}' (written by the Go function)" in out
    assert "done: Go sink got 5, Python sink got 5" in out
