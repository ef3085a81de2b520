"""Runs the real Go YoMo (v1.22.3) for interop tests: builds it once, starts zippers and peers."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CACHE_DIR",
    "GO_MODULE_DIR",
    "LEGACY_VERSION",
    "YOMO_VERSION",
    "GoBins",
    "GoBuildError",
    "GoPeers",
    "GoProcess",
    "GoToolchain",
    "GoZipper",
    "GoZippers",
    "LegacyBuild",
    "ZipperAddress",
    "build_go_bins",
    "cache_is_warm",
    "expected_payload",
    "find_go_toolchain",
    "free_udp_port",
    "sha256hex",
    "transform",
    "try_build_legacy_cli",
    "zipper_addr",
]

#: The Go YoMo release every harness binary is built from (see go/go.mod).
YOMO_VERSION = "v1.22.3"
#: The oldest release docs/protocol.md covers; the harness tries to build it too.
LEGACY_VERSION = "v1.17.5"

GO_MODULE_DIR = Path(__file__).resolve().parent / "go"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Everything Go writes (module cache, build cache, binaries) lives here; .cache/ is git-ignored.
CACHE_DIR = Path(os.environ.get("YOMO_INTEROP_GO_CACHE", REPO_ROOT / ".cache" / "go"))

_PEER_COMMANDS = ("source", "sfn", "sink")
_BUILD_TIMEOUT = 900.0
_READY_MSG = "zipper is up and running"


class GoBuildError(RuntimeError):
    """A `go` command failed; the message carries its full output."""


@dataclass(frozen=True)
class GoToolchain:
    """A usable `go` binary and the environment every Go command runs with."""

    go: str
    version: str
    env: Mapping[str, str]

    def run(
        self, args: Sequence[str], cwd: Path, timeout: float = _BUILD_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run `go <args>` in cwd, stdout and stderr merged."""
        return subprocess.run(
            [self.go, *args],
            cwd=cwd,
            env=dict(self.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )


def _go_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(cache / "mod"),
        GOCACHE=str(cache / "build"),
        GOBIN=str(cache / "bin"),
        GOFLAGS="-mod=mod",
        GOTOOLCHAIN="local",
    )
    return env


def find_go_toolchain(cache: Path = CACHE_DIR) -> GoToolchain | None:
    """The `go` on PATH with the harness environment, or None when there is none."""
    go = shutil.which("go")
    if go is None:
        return None
    env = _go_env(cache)
    out = subprocess.run(
        [go, "version"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if out.returncode != 0:
        raise GoBuildError(f"`{go} version` failed:\n{out.stdout}{out.stderr}")
    return GoToolchain(go=go, version=out.stdout.strip(), env=env)


@dataclass(frozen=True)
class GoBins:
    """Paths of the built binaries and how the build went."""

    dir: Path
    yomo: Path
    source: Path
    sfn: Path
    sink: Path
    yomo_cli_version: str
    seconds: float
    cached: bool


def _source_stamp(toolchain: GoToolchain) -> str:
    h = hashlib.sha256(toolchain.version.encode())
    for path in sorted(GO_MODULE_DIR.rglob("*")):
        if path.is_file() and (path.suffix == ".go" or path.name in ("go.mod", "go.sum")):
            h.update(str(path.relative_to(GO_MODULE_DIR)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@contextlib.contextmanager
def _build_lock(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _bins(cache: Path, version: str, seconds: float, cached: bool) -> GoBins:
    d = cache / "bin"
    return GoBins(d, d / "yomo", d / "source", d / "sfn", d / "sink", version, seconds, cached)


def cache_is_warm(toolchain: GoToolchain, cache: Path = CACHE_DIR) -> bool:
    """True when the binaries for the current sources are already built."""
    stamp = cache / "bin" / ".stamp"
    names = ("yomo", *_PEER_COMMANDS)
    return (
        stamp.is_file()
        and stamp.read_text().strip() == _source_stamp(toolchain)
        and all((cache / "bin" / n).is_file() for n in names)
    )


def build_go_bins(toolchain: GoToolchain, cache: Path = CACHE_DIR) -> GoBins:
    """Build the peers and the reference `yomo` CLI once; later calls reuse them.

    A file lock keeps parallel test workers from building at the same time; a
    stamp of the Go sources and the toolchain version decides whether to rebuild.
    """
    start = time.monotonic()
    with _build_lock(cache):
        bin_dir = cache / "bin"
        if cache_is_warm(toolchain, cache):
            version = (bin_dir / ".yomo-version").read_text().strip()
            return _bins(cache, version, time.monotonic() - start, True)
        bin_dir.mkdir(parents=True, exist_ok=True)
        steps = [
            ["build", "-o", str(bin_dir) + os.sep, "./cmd/..."],
            ["build", "-o", str(bin_dir / "yomo"), "github.com/yomorun/yomo/cmd/yomo"],
        ]
        for args in steps:
            out = toolchain.run(args, GO_MODULE_DIR)
            if out.returncode != 0:
                raise GoBuildError(
                    f"`go {' '.join(args)}` failed (rc={out.returncode}):\n{out.stdout}"
                )
        ver = subprocess.run(
            [str(bin_dir / "yomo"), "version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        version = ver.stdout.strip()
        (bin_dir / ".yomo-version").write_text(version + "\n")
        (bin_dir / ".stamp").write_text(_source_stamp(toolchain) + "\n")
        return _bins(cache, version, time.monotonic() - start, False)


@dataclass(frozen=True)
class LegacyBuild:
    """Outcome of trying to build an older Go YoMo CLI."""

    version: str
    ok: bool
    output: str
    binary: Path | None


def try_build_legacy_cli(
    toolchain: GoToolchain, version: str = LEGACY_VERSION, cache: Path = CACHE_DIR
) -> LegacyBuild:
    """Try to build `github.com/yomorun/yomo/cmd/yomo` at an older version in a scratch module."""
    work = cache / f"legacy-{version}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(
        f"module legacy\n\ngo 1.22\n\nrequire github.com/yomorun/yomo {version}\n"
    )
    (work / "tools.go").write_text(
        '//go:build tools\n\npackage tools\n\nimport _ "github.com/yomorun/yomo/cmd/yomo"\n'
    )
    binary = work / "yomo"
    args = ["build", "-o", str(binary), "github.com/yomorun/yomo/cmd/yomo"]
    with _build_lock(cache):
        out = toolchain.run(args, work)
    if out.returncode != 0:
        return LegacyBuild(version, False, f"$ go {' '.join(args)}\n{out.stdout}".strip(), None)
    return LegacyBuild(version, True, out.stdout, binary)


# --------------------------------------------------------------------------- processes


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port on host that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _go_process_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("YOMO_", "OTEL_")) and k not in ("GOFLAGS", "GODEBUG")
    }
    env.update(
        YOMO_LOG_FORMAT="json",
        YOMO_LOG_OUTPUT="stderr",
        YOMO_LOG_ERROR_OUTPUT="stderr",
        YOMO_LOG_LEVEL="info",
    )
    if extra:
        env.update(extra)
    return env


def _parse(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


class GoProcess:
    """A Go subprocess whose stdout/stderr lines are collected by reader threads.

    `events` holds the JSON objects printed on stdout (the peers' reports);
    `logs` holds the JSON log records on stderr (YoMo's slog output);
    `stdout` / `stderr` keep every raw line.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.events: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        self._closed_streams = 0
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_go_process_env(env),
            cwd=cwd,
            start_new_session=True,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream: Any, is_stdout: bool) -> None:
        raw, parsed = (self.stdout, self.events) if is_stdout else (self.stderr, self.logs)
        for b in iter(stream.readline, b""):
            line = b.decode("utf-8", "replace").rstrip("\r\n")
            obj = _parse(line)
            with self._cond:
                raw.append(line)
                if obj is not None:
                    parsed.append(obj)
                self._cond.notify_all()
        stream.close()
        with self._cond:
            self._closed_streams += 1
            self._cond.notify_all()

    # ------------------------------------------------------------ waiting

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def wait_for(
        self,
        predicate: Callable[[GoProcess], Any],
        timeout: float,
        what: str = "condition",
    ) -> Any:
        """Block until predicate(self) is truthy (and return it), at most timeout seconds.

        Raises TimeoutError with the tail of the output when time runs out, or
        when the process has ended and its output is complete without it.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate(self)
                if result:
                    return result
                if self._closed_streams == 2 and self.proc.poll() is not None:
                    raise TimeoutError(
                        f"{self.name} exited rc={self.proc.returncode} before {what}\n{self.tail()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.name}: no {what} within {timeout}s\n{self.tail()}")
                self._cond.wait(min(left, 0.5))

    def wait_event(self, event: str, timeout: float = 15.0, **fields: Any) -> dict[str, Any]:
        """Wait for a stdout event {"event": event, **fields}; return it."""

        def find(p: GoProcess) -> dict[str, Any] | None:
            for e in p.events:
                if e.get("event") == event and all(e.get(k) == v for k, v in fields.items()):
                    return e
            return None

        found: dict[str, Any] = self.wait_for(find, timeout, f"event {event!r}")
        return found

    def wait_log(self, msg: str, timeout: float = 15.0) -> dict[str, Any]:
        """Wait for a stderr log record whose msg equals msg; return it."""

        def find(p: GoProcess) -> dict[str, Any] | None:
            return next((r for r in p.logs if r.get("msg") == msg), None)

        found: dict[str, Any] = self.wait_for(find, timeout, f"log {msg!r}")
        return found

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end by itself; return its exit code (output fully read)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"{self.name} still running after {timeout}s\n{self.tail()}"
            ) from None
        for t in self._threads:
            t.join(5)
        return rc

    async def async_wait_for(
        self, predicate: Callable[[GoProcess], Any], timeout: float, what: str = "condition"
    ) -> Any:
        """wait_for without blocking the event loop (for tests that run Python YoMo in-process)."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout, what)

    async def async_wait_event(
        self, event: str, timeout: float = 15.0, **fields: Any
    ) -> dict[str, Any]:
        """wait_event without blocking the event loop."""
        return await asyncio.to_thread(lambda: self.wait_event(event, timeout, **fields))

    async def async_wait_exit(self, timeout: float) -> int:
        """wait_exit without blocking the event loop."""
        return await asyncio.to_thread(self.wait_exit, timeout)

    # ------------------------------------------------------------ reading

    def snapshot(self, event: str | None = None) -> list[dict[str, Any]]:
        """A copy of the stdout events so far, optionally only those named event."""
        with self._cond:
            return [e for e in self.events if event is None or e.get("event") == event]

    def frames(self) -> list[dict[str, Any]]:
        """The sink's frame reports so far, in the order it printed them."""
        return self.snapshot("frame")

    def tail(self, n: int = 40) -> str:
        with self._cond:
            out = self.stdout[-n:]
            err = self.stderr[-n:]
        return (
            f"--- {self.name} argv: {' '.join(self.argv)}\n--- stdout (last {n}):\n"
            + "\n".join(out)
            + f"\n--- stderr (last {n}):\n"
            + "\n".join(err)
        )

    # ------------------------------------------------------------ stopping

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL after timeout; returns the exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL now (for crash tests)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        self.proc.wait(10)


# --------------------------------------------------------------------------- zippers


@dataclass(frozen=True)
class ZipperAddress:
    """Where a zipper listens; anything with `.addr` works with GoPeers."""

    host: str
    port: int

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"


def zipper_addr(zipper: Any) -> str:
    """host:port of a GoZipper, ZipperAddress, a Python zipper with `.addr`, or a string."""
    if isinstance(zipper, str):
        return zipper
    addr = getattr(zipper, "addr", None)
    if isinstance(addr, str):
        return addr
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    host, port = getattr(zipper, "host", None), getattr(zipper, "port", None)
    if host is not None and port is not None:
        return f"{host}:{port}"
    raise TypeError(f"cannot tell the address of zipper {zipper!r}")


class GoZipper(GoProcess):
    """The reference Go zipper (`yomo serve -c <config>`) on a loopback port."""

    def __init__(
        self, binary: Path, config: dict[str, Any], config_path: Path, env: Mapping[str, str] | None
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.host: str = config["host"]
        self.port: int = config["port"]
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        super().__init__(
            f"go-zipper[{config['name']}]", [str(binary), "serve", "-c", str(config_path)], env
        )

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def wait_ready(self, timeout: float = 20.0) -> dict[str, Any]:
        """Wait for the zipper's "up and running" log record."""
        return self.wait_log(_READY_MSG, timeout)


@dataclass
class GoZippers:
    """Factory for Go zippers; every zipper it starts is stopped at teardown."""

    bins: GoBins
    tmp_path: Path
    started: list[GoZipper] = field(default_factory=list)

    def __call__(
        self,
        name: str = "zipper-go",
        *,
        token: str | None = None,
        mesh: Mapping[str, Mapping[str, Any]] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        wait: bool = True,
        ready_timeout: float = 20.0,
    ) -> GoZipper:
        """Start a Go zipper named name; token turns on token auth; mesh is the config's mesh map."""
        attempts = 1 if port is not None else 3
        last: Exception | None = None
        for _ in range(attempts):
            config: dict[str, Any] = {
                "name": name,
                "host": host,
                "port": port or free_udp_port(host),
            }
            if token is not None:
                config["auth"] = {"type": "token", "token": token}
            if mesh:
                config["mesh"] = {k: dict(v) for k, v in mesh.items()}
            if extra:
                config.update(extra)
            path = self.tmp_path / f"{name}-{config['port']}.yaml"
            z = GoZipper(self.bins.yomo, config, path, env)
            self.started.append(z)
            if not wait:
                return z
            try:
                z.wait_ready(ready_timeout)
                return z
            except TimeoutError as e:  # e.g. the port was taken between probe and bind
                last = e
                z.stop()
        assert last is not None
        raise last

    def stop_all(self) -> None:
        for z in reversed(self.started):
            z.stop()


# --------------------------------------------------------------------------- peers


def _flags(values: Mapping[str, Any]) -> list[str]:
    argv: list[str] = []
    for key, value in values.items():
        if value is None or value is False:
            continue
        flag = "-" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv.append(f"{flag}={','.join(_tag_str(v) for v in value)}")
        else:
            argv.append(f"{flag}={value}")
    return argv


def _tag_str(v: Any) -> str:
    return hex(v) if isinstance(v, int) and not isinstance(v, bool) else str(v)


@dataclass
class GoPeers:
    """Factory for the Go source, stream function and sink; all are stopped at teardown.

    `zipper` may be a GoZipper, a Python zipper (anything with `.addr`, or
    `.host` and `.port`) or a "host:port" string.
    """

    bins: GoBins
    started: list[GoProcess] = field(default_factory=list)

    def start(
        self, kind: str, zipper: Any, *, env: Mapping[str, str] | None = None, **flags: Any
    ) -> GoProcess:
        """Start peer kind ("source", "sfn", "sink") with -flag=value options; does not wait."""
        if kind not in _PEER_COMMANDS:
            raise ValueError(f"unknown Go peer {kind!r}")
        binary = getattr(self.bins, kind)
        argv = [str(binary), f"-zipper={zipper_addr(zipper)}", *_flags(flags)]
        p = GoProcess(f"go-{kind}[{flags.get('name', kind)}]", argv, env)
        self.started.append(p)
        return p

    def _connected(self, p: GoProcess, wait: bool, timeout: float) -> GoProcess:
        if wait:
            p.wait_for(
                lambda q: any(e.get("event") in ("connected", "connect_error") for e in q.events),
                timeout,
                "connected",
            )
            err = next((e for e in p.snapshot() if e.get("event") == "connect_error"), None)
            if err is not None:
                raise ConnectionError(f"{p.name} could not connect: {err.get('error')}\n{p.tail()}")
        return p

    def source(
        self,
        zipper: Any,
        *,
        n: int = 10,
        sizes: Sequence[int] = (16,),
        tags: Sequence[int] = (0x33,),
        name: str = "go-source",
        credential: str | None = None,
        target: str | None = None,
        interval: str | None = None,
        linger: str | None = None,
        quiet: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> GoProcess:
        """Start a source writing n payloads (expected_payload(i, sizes[i % len])) to tags in turn."""
        return self.start(
            "source",
            zipper,
            env=env,
            name=name,
            credential=credential,
            tags=list(tags),
            n=n,
            sizes=",".join(str(s) for s in sizes),
            target=target,
            interval=interval,
            linger=linger,
            quiet=quiet,
        )

    def sfn(
        self,
        zipper: Any,
        *,
        observe: Sequence[int] = (0x33,),
        out_tag: int | None = 0x34,
        transform: str = "upper",
        mode: str = "handler",
        name: str = "go-sfn",
        credential: str | None = None,
        wanted_target: str | None = None,
        out_target: str | None = None,
        cron: str | None = None,
        verbose: bool = False,
        wait: bool = True,
        timeout: float = 15.0,
        env: Mapping[str, str] | None = None,
    ) -> GoProcess:
        """Start a stream function (mode "handler", "ordered", "pipe" or "cron"); waits until
        connected.

        out_target makes the replies targeted (handler: Context.WriteWithTarget). Mode
        "cron" writes the function's name to out_tag on the schedule ``cron``.
        """
        p = self.start(
            "sfn",
            zipper,
            env=env,
            name=name,
            credential=credential,
            observe=list(observe),
            out_tag=_tag_str(out_tag) if out_tag is not None else "",
            transform=transform,
            mode=mode,
            wanted_target=wanted_target,
            out_target=out_target,
            cron=cron,
            v=verbose,
        )
        return self._connected(p, wait, timeout)

    def sink(
        self,
        zipper: Any,
        *,
        observe: Sequence[int] = (0x34,),
        mode: str = "ordered",
        name: str = "go-sink",
        credential: str | None = None,
        wanted_target: str | None = None,
        wait: bool = True,
        timeout: float = 15.0,
        env: Mapping[str, str] | None = None,
    ) -> GoProcess:
        """Start a reporting stream function; waits until connected. Use .frames() to read it."""
        p = self.start(
            "sink",
            zipper,
            env=env,
            name=name,
            credential=credential,
            observe=list(observe),
            mode=mode,
            wanted_target=wanted_target,
        )
        return self._connected(p, wait, timeout)

    def stop_all(self) -> None:
        for p in reversed(self.started):
            p.stop()


# --------------------------------------------------------------------------- expectations


def expected_payload(seq: int, size: int) -> bytes:
    """The payload the Go source writes as number seq (mirror of peer.Payload)."""
    head = seq.to_bytes(8, "big")[:size]
    n = max(0, size - 8)
    k = (seq + 8) % 26
    rotated = _ALPHABET[k:] + _ALPHABET[:k]
    return head + (rotated * (n // 26 + 1))[:n]


def transform(data: bytes, spec: str) -> bytes:
    """What the Go sfn writes for data under spec (mirror of peer.Transform)."""
    if spec in ("", "identity"):
        return data
    if spec == "upper":
        return data.translate(_UPPER)
    if spec.startswith("prefix:"):
        return spec[len("prefix:") :].encode() + data
    raise ValueError(f"unknown transform {spec!r}")


_ALPHABET = b"abcdefghijklmnopqrstuvwxyz"
_UPPER = bytes(c - 32 if 0x61 <= c <= 0x7A else c for c in range(256))


def sha256hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
