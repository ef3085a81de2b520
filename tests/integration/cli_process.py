"""Run the real ``yomo`` command (``python -m yomo``) in a subprocess and watch its output.

Every process started here is stopped by ``stop()``; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["YomoProcess", "clean_env", "free_udp_port", "run_yomo", "start_serve", "write_config"]


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that was free a moment ago (``yomo serve`` cannot print port 0's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without YOMO_* variables (so the host's settings don't leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOMO_")}
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


class YomoProcess:
    """``python -m yomo <args>`` with its stdout and stderr collected line by line."""

    def __init__(
        self, args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.args = list(args)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "yomo", *self.args],
            cwd=cwd,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream: object, lines: list[str]) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            with self._cond:
                lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self._cond.notify_all()

    @property
    def output(self) -> str:
        """stdout then stderr, as text."""
        with self._cond:
            return "\n".join(self.stdout) + "\n--- stderr\n" + "\n".join(self.stderr)

    def wait_line(self, text: str, timeout: float = 15.0, stream: str = "any") -> str:
        """Wait until a line containing ``text`` appears; return it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                sources = {
                    "stdout": self.stdout,
                    "stderr": self.stderr,
                    "any": self.stdout + self.stderr,
                }[stream]
                for line in sources:
                    if text in line:
                        return line
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                    raise AssertionError(
                        f"yomo {' '.join(self.args)} exited rc={self.proc.returncode} "
                        f"without printing {text!r}\n{self.output}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no line with {text!r} within {timeout:g} s\n{self.output}"
                    )
                self._cond.wait(min(left, 0.2))

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for the process to exit by itself; return its exit code."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"still running after {timeout:g} s\n{self.output}") from None
        for t in self._threads:
            t.join(5)
        return rc

    def signal(self, sig: int = signal.SIGINT) -> None:
        """Send ``sig`` to the process."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        return self.proc.returncode


def run_yomo(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> YomoProcess:
    """Run ``yomo <args>`` to completion (bounded); the result has ``proc.returncode``."""
    p = YomoProcess(args, cwd, env)
    p.wait(timeout)
    return p


def write_config(
    path: Path, port: int, token: str | None = None, name: str = "test-zipper"
) -> Path:
    """A zipper.yaml on 127.0.0.1:``port`` (token auth when ``token``)."""
    text = f"name: {name}\nhost: 127.0.0.1\nport: {port}\n"
    if token is not None:
        text += f"auth:\n  type: token\n  token: {token}\n"
    path.write_text(text)
    return path


def start_serve(tmp: Path, token: str | None = None, attempts: int = 3) -> tuple[YomoProcess, str]:
    """``yomo serve -c <tmp zipper.yaml>`` on a free port, ready; returns it and its address."""
    last = ""
    for _ in range(attempts):
        port = free_udp_port()
        config = write_config(tmp / f"zipper-{port}.yaml", port, token)
        p = YomoProcess(["serve", "-c", str(config)], tmp)
        try:
            p.wait_line("listening on", timeout=20.0)
        except AssertionError as exc:  # e.g. the port was taken in between
            p.stop()
            last = str(exc)
            continue
        return p, f"127.0.0.1:{port}"
    raise AssertionError(f"yomo serve did not start:\n{last}")
