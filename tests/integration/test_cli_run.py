"""``yomo init`` and ``yomo run`` as a user runs them: real subprocesses, a real ``yomo serve``."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import yomo
from yomo.transport import TlsConfig

from .cli_process import YomoProcess, clean_env, free_udp_port, run_yomo, start_serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ``yomo serve`` (no auth) for the module; yields its address."""
    p, addr = start_serve(tmp_path_factory.mktemp("serve"))
    yield addr
    p.signal()
    p.wait(15)


class Sink:
    """An in-process stream function that keeps what arrives on ``tags``."""

    def __init__(self, addr: str, tags: list[int]) -> None:
        self.got: list[tuple[int, bytes]] = []
        self._cond = threading.Condition()
        self.sfn = yomo.StreamFunction("sink", addr, observe_data_tags=tags, tls=TlsConfig())
        self.sfn.set_handler(self._on)
        self.sfn.connect()

    def _on(self, ctx: yomo.Context) -> None:
        with self._cond:
            self.got.append((ctx.tag, ctx.data))
            self._cond.notify_all()

    def wait(self, n: int, timeout: float = 10.0) -> list[tuple[int, bytes]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.got) < n:
                left = deadline - time.monotonic()
                assert left > 0, f"sink has {self.got}, wanted {n} frames"
                self._cond.wait(left)
            return list(self.got)

    def close(self) -> None:
        self.sfn.close()


def write(addr: str, tag: int, payloads: list[bytes]) -> None:
    with yomo.Source("test-source", addr, tls=TlsConfig()) as source:
        for payload in payloads:
            source.write(tag, payload)


def wait_observed(serve_hint: YomoProcess, name: str) -> None:
    serve_hint.wait_line(f"stream function {name!r} is running")


# -- init, then run the generated app --------------------------------------------------------


def test_init_then_run_the_generated_app_against_serve(tmp_path: Path, served: str) -> None:
    init = run_yomo(["init", "-t", "normal", "hello-fn"], tmp_path)
    assert init.proc.returncode == 0, init.output
    project = tmp_path / "hello-fn"
    assert sorted(p.name for p in project.iterdir()) == [
        ".env",
        "README.md",
        "app.py",
        "test_app.py",
    ]
    assert "YOMO_SFN_NAME=hello-fn" in (project / ".env").read_text()

    sink = Sink(served, [0x34])
    run = YomoProcess(["run", "app.py", "-z", served], project)
    try:
        wait_observed(run, "hello-fn")  # the name comes from the generated .env
        write(served, 0x33, [b"hello", b"yomo"])
        assert sink.wait(2) == [(0x34, b"HELLO"), (0x34, b"YOMO")]
        run.wait_line("app: received 'yomo' on tag 0x33")
        run.signal()
        assert run.wait(15) == 0, run.output
        run.wait_line("closing the connection")
        run.wait_line("stream function 'hello-fn' closed")
    finally:
        run.stop()
        sink.close()


@pytest.mark.parametrize(("kind", "passed"), [("normal", 2), ("llm", 3)])
def test_the_generated_test_passes(tmp_path: Path, kind: str, passed: int) -> None:
    assert run_yomo(["init", "-t", kind, "fn"], tmp_path).proc.returncode == 0
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore"],
        cwd=tmp_path / "fn",
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{passed} passed" in out.stdout


def test_init_refuses_an_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    p = run_yomo(["init", "taken"], tmp_path)
    assert p.proc.returncode == 1
    assert p.stderr == ["Error: yomo: taken already exists; choose another name or remove it first"]
    assert sorted(x.name for x in (tmp_path / "taken").iterdir()) == ["keep.txt"]


# -- other function files ----------------------------------------------------------------------

ASYNC_FN = """
DATA_TAGS = [0x40]

async def handler(ctx):
    await ctx.write(0x41, b"async:" + ctx.data)
"""

PIPE_FN = """
def data_tags():
    return 0x50

def pipe(stream):
    for n, data in enumerate(stream):
        yield 0x51, b"%d:" % n + data
"""

TARGET_FN = """
import helper  # a sibling module, importable as with `python app.py`

DATA_TAGS = [0x60]

def wanted_target():
    return "alice"

def handler(ctx):
    return 0x61, helper.PREFIX + ctx.data
"""


@pytest.mark.parametrize(
    ("source", "tag", "out_tag", "expected"),
    [
        (ASYNC_FN, 0x40, 0x41, [b"async:a", b"async:b"]),
        (PIPE_FN, 0x50, 0x51, [b"0:a", b"1:b"]),
    ],
    ids=["async-handler", "pipe"],
)
def test_run_async_handler_and_pipe(
    tmp_path: Path, served: str, source: str, tag: int, out_tag: int, expected: list[bytes]
) -> None:
    (tmp_path / "fn.py").write_text(source)
    sink = Sink(served, [out_tag])
    run = YomoProcess(["run", "fn.py", "-z", served, "-n", "custom-name"], tmp_path)
    try:
        wait_observed(run, "custom-name")
        write(served, tag, [b"a", b"b"])
        assert sink.wait(2) == [(out_tag, p) for p in expected]
        run.signal()
        assert run.wait(15) == 0, run.output
    finally:
        run.stop()
        sink.close()


def test_run_wanted_target_and_sibling_import(tmp_path: Path, served: str) -> None:
    (tmp_path / "fn.py").write_text(TARGET_FN)
    (tmp_path / "helper.py").write_text("PREFIX = b'to-alice:'\n")
    sink = Sink(served, [0x61])
    run = YomoProcess(["run", "fn.py", "-z", served], tmp_path)
    try:
        wait_observed(run, "fn")
        with yomo.Source("targeting", served, tls=TlsConfig()) as source:
            source.write_with_target(0x60, b"not for you", "bob")
            source.write_with_target(0x60, b"hi", "alice")
        assert sink.wait(1) == [(0x61, b"to-alice:hi")]
        run.signal()
        assert run.wait(15) == 0, run.output
    finally:
        run.stop()
        sink.close()


# -- settings: flags, environment, .env --------------------------------------------------------

GOOD_FN = "DATA_TAGS = [0x33]\n\ndef handler(ctx):\n    pass\n"


@pytest.mark.parametrize(
    ("dotenv", "env", "flags", "name", "zipper"),
    [
        ("", {}, [], "fn", "localhost:9000"),
        (
            "YOMO_SFN_NAME=from-dotenv\nYOMO_SFN_ZIPPER=127.0.0.1:{port}\n",
            {},
            [],
            "from-dotenv",
            "127.0.0.1:{port}",
        ),
        (
            "YOMO_SFN_NAME=from-dotenv\n",
            {"YOMO_SFN_NAME": "from-env", "YOMO_SFN_ZIPPER": "127.0.0.1:{port}"},
            [],
            "from-env",
            "127.0.0.1:{port}",
        ),
        (
            "YOMO_SFN_NAME=from-dotenv\nYOMO_SFN_ZIPPER=127.0.0.1:1\n",
            {"YOMO_SFN_NAME": "from-env"},
            ["-n", "from-flag", "-z", "127.0.0.1:{port}"],
            "from-flag",
            "127.0.0.1:{port}",
        ),
    ],
    ids=["defaults", "dotenv", "env-beats-dotenv", "flags-win"],
)
def test_settings_precedence(
    tmp_path: Path,
    dotenv: str,
    env: dict[str, str],
    flags: list[str],
    name: str,
    zipper: str,
) -> None:
    port = str(free_udp_port())  # nobody listens there: the run fails after announcing itself
    (tmp_path / "fn.py").write_text(GOOD_FN)
    if dotenv:
        (tmp_path / ".env").write_text(dotenv.replace("{port}", port))
    env = {k: v.replace("{port}", port) for k, v in env.items()}
    flags = [f.replace("{port}", port) for f in flags]
    p = YomoProcess(["run", "fn.py", "--connect-timeout", "0.1", *flags], tmp_path, env)
    try:
        p.wait_line(f"yomo: stream function {name!r} from fn.py, observing [0x33]")
        p.wait_line(f"yomo: connecting to zipper {zipper.replace('{port}', port)} ...")
    finally:
        p.stop()


def test_credential_from_env_is_used(tmp_path: Path) -> None:
    p_serve, addr = start_serve(tmp_path, token="s3cret")
    try:
        (tmp_path / "fn.py").write_text(GOOD_FN)
        run = YomoProcess(
            ["run", "fn.py", "-z", addr], tmp_path, {"YOMO_SFN_CREDENTIAL": "token:s3cret"}
        )
        try:
            wait_observed(run, "fn")
            run.signal()
            assert run.wait(15) == 0, run.output
        finally:
            run.stop()
        # and -d wins over the environment
        bad = run_yomo(
            ["run", "fn.py", "-z", addr, "-d", "token:wrong"],
            tmp_path,
            {"YOMO_SFN_CREDENTIAL": "token:s3cret"},
        )
        assert bad.proc.returncode == 1, bad.output
        assert bad.stderr[-1] == "Error: yomo: rejected by zipper: invalid token: wrong"
        assert sum(line.startswith("Error:") for line in bad.stderr) == 1
    finally:
        p_serve.signal()
        p_serve.wait(15)


# -- errors: one line each, exit code 1 --------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, "Error: yomo: file not found: fn.py"),
        (
            {"fn.py": "DATA_TAGS = [0x33]\n"},
            "Error: yomo: fn.py: defines neither handler(ctx) nor pipe(stream); define one of them",
        ),
        (
            {"fn.py": "def handler(ctx):\n    pass\n"},
            "Error: yomo: fn.py: no tags to observe: define data_tags() returning a list of tags, "
            "or a DATA_TAGS constant",
        ),
        (
            {"fn.py": "def data_tags():\n    return []\n\ndef handler(ctx):\n    pass\n"},
            "Error: yomo: fn.py: no tags to observe: data_tags() is empty",
        ),
        (
            {"fn.py": "DATA_TAGS = [0x33, 0x1_0000_0000]\n\ndef handler(ctx):\n    pass\n"},
            "Error: yomo: fn.py: bad tag in DATA_TAGS: tag 0x100000000 is out of range: data "
            "tags are 0x0..0xffffffff",
        ),
        (
            {"fn.py": "DATA_TAGS = [0xF001]\n\ndef handler(ctx):\n    pass\n"},
            "Error: yomo: fn.py: bad tag in DATA_TAGS: tag 0xf001 is reserved for the system "
            "(0xF000..0xFFFF)",
        ),
        (
            {"fn.py": "DATA_TAGS = [1]\nhandler = 1\ndef pipe(s):\n    pass\n"},
            "Error: yomo: fn.py: handler must be a function, got int",
        ),
        (
            {"fn.py": "DATA_TAGS = [1]\ndef handler(c):\n    pass\ndef pipe(s):\n    pass\n"},
            "Error: yomo: fn.py: defines both handler and pipe; keep one of them",
        ),
    ],
    ids=[
        "not-found",
        "no-handler",
        "no-tags",
        "empty-tags",
        "tag-too-big",
        "tag-reserved",
        "handler-not-callable",
        "both",
    ],
)
def test_file_errors(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    p = run_yomo(["run", "fn.py"], tmp_path)
    assert p.proc.returncode == 1, p.output
    assert p.stderr == [expected]


def test_a_file_that_does_not_import_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "fn.py").write_text(
        "import json\n\n\ndef broken():\n    return 1 / 0\n\nbroken()\n"
    )
    p = run_yomo(["run", "fn.py"], tmp_path)
    assert p.proc.returncode == 1, p.output
    assert p.stderr[0] == "Traceback (most recent call last):"
    assert any('fn.py", line 7, in <module>' in line for line in p.stderr)
    assert any('fn.py", line 5, in broken' in line for line in p.stderr)
    assert not any("importlib" in line for line in p.stderr)
    assert p.stderr[-1] == (
        "Error: yomo: fn.py does not import: ZeroDivisionError: division by zero"
    )


def test_a_syntax_error_shows_where(tmp_path: Path) -> None:
    (tmp_path / "fn.py").write_text("def handler(ctx)\n    pass\n")
    p = run_yomo(["run", "fn.py"], tmp_path)
    assert p.proc.returncode == 1, p.output
    assert any('fn.py", line 1' in line for line in p.stderr)
    assert p.stderr[-1].startswith("Error: yomo: fn.py does not import: SyntaxError: ")


def test_init_failure_is_reported(tmp_path: Path, served: str) -> None:
    (tmp_path / "fn.py").write_text(GOOD_FN + "\ndef init():\n    raise RuntimeError('no model')\n")
    p = run_yomo(["run", "fn.py", "-z", served], tmp_path)
    assert p.proc.returncode == 1, p.output
    assert any("raise RuntimeError('no model')" in line for line in p.stderr)
    assert p.stderr[-1] == "Error: yomo: fn.py: init() failed: RuntimeError: no model"


def test_unreachable_zipper_says_where_it_tried(tmp_path: Path) -> None:
    (tmp_path / "fn.py").write_text(GOOD_FN)
    port = free_udp_port()
    p = run_yomo(["run", "fn.py", "-z", f"127.0.0.1:{port}", "--connect-timeout", "1"], tmp_path)
    assert p.proc.returncode == 1, p.output
    last = p.stderr[-1]
    assert last.startswith(f"Error: yomo: cannot connect to zipper at 127.0.0.1:{port} after "), (
        last
    )
    assert " in 1 s: " in last
    assert last.endswith(f"(is `yomo serve` running at 127.0.0.1:{port}?)"), last
    assert sum(line.startswith("Error:") for line in p.stderr) == 1


def test_a_bad_zipper_address_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "fn.py").write_text(GOOD_FN)
    p = run_yomo(["run", "fn.py", "-z", "nowhere:http"], tmp_path)
    assert p.proc.returncode == 1, p.output
    assert p.stderr == ["Error: yomo: zipper address 'nowhere:http': invalid port 'http'"]


def test_ctrl_c_while_connecting_exits_cleanly(tmp_path: Path) -> None:
    (tmp_path / "fn.py").write_text(GOOD_FN)
    port = free_udp_port()
    p = YomoProcess(["run", "fn.py", "-z", f"127.0.0.1:{port}"], tmp_path)
    try:
        p.wait_line("connecting to zipper")
        time.sleep(0.3)
        p.signal()
        assert p.wait(15) == 0, p.output
        p.wait_line("received SIGINT, stopped before connecting")
    finally:
        p.stop()


def test_a_failing_handler_is_logged_and_the_function_keeps_going(
    tmp_path: Path, served: str
) -> None:
    (tmp_path / "fn.py").write_text(
        "DATA_TAGS = [0x70]\n\n"
        "def handler(ctx):\n"
        "    if ctx.data == b'bad':\n"
        "        raise ValueError('cannot take bad')\n"
        "    return 0x71, ctx.data\n"
    )
    sink = Sink(served, [0x71])
    run = YomoProcess(["run", "fn.py", "-z", served], tmp_path)
    try:
        wait_observed(run, "fn")
        write(served, 0x70, [b"bad", b"good"])
        assert sink.wait(1) == [(0x71, b"good")]
        run.wait_line("handler of 'fn' failed on tag 0x70: ValueError: cannot take bad")
        run.wait_line("raise ValueError('cannot take bad')")
        run.signal()
        assert run.wait(15) == 0, run.output
    finally:
        run.stop()
        sink.close()


def test_run_survives_a_zipper_restart(tmp_path: Path) -> None:
    first, addr = start_serve(tmp_path)
    config = tmp_path / f"zipper-{addr.rsplit(':', 1)[1]}.yaml"  # written by start_serve
    (tmp_path / "fn.py").write_text(GOOD_FN.replace("pass", "return 0x34, ctx.data.upper()"))
    run = YomoProcess(["run", "fn.py", "-z", addr], tmp_path)
    second = None
    try:
        wait_observed(run, "fn")
        first.signal()
        assert first.wait(15) == 0, first.output
        second = YomoProcess(["serve", "-c", str(config)], tmp_path)  # same port
        second.wait_line("connected: StreamFunction 'fn'", timeout=30)
        run.wait_line("stream function 'fn' reconnected to")
        sink = Sink(addr, [0x34])
        try:
            write(addr, 0x33, [b"again"])
            assert sink.wait(1) == [(0x34, b"AGAIN")]
        finally:
            sink.close()
        run.signal()
        assert run.wait(15) == 0, run.output
    finally:
        run.stop()
        first.stop()
        if second is not None:
            second.stop()
