"""The rough edges a new user hits (issue 13, part 4), each as the user would meet it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import yomo

from .cli_process import clean_env, run_yomo
from .clients_helpers import PLAIN_TLS

IN, OUT = 0x33, 0x34


def _program(tmp_path: Path, body: str) -> subprocess.Popen[bytes]:
    path = tmp_path / "program.py"
    path.write_text(textwrap.dedent(body))
    return subprocess.Popen(
        [sys.executable, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
        start_new_session=True,
    )


def _wait_for_connection(z: yomo.Zipper, name: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(c.name == name for c in z.connections()):
        assert time.monotonic() < deadline, f"{name} did not connect"
        time.sleep(0.05)


def test_a_failing_handler_shows_its_traceback_once_then_counts_repeats(tmp_path, sync_zipper):
    z = sync_zipper()
    p = _program(
        tmp_path,
        f"""
        import yomo
        from yomo.transport import TlsConfig

        def handler(ctx):
            return {{"oops": 1}}[ctx.data.decode()]

        fn = yomo.StreamFunction("broken", "{z.addr}", observe_data_tags=[{IN}], tls=TlsConfig())
        fn.set_handler(handler)
        fn.connect()
        print("ready", flush=True)
        fn.wait()
        """,
    )
    try:
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        with yomo.Source("src", z.addr, tls=PLAIN_TLS) as source:
            for _ in range(5):
                source.write(IN, b"nope")
        deadline = time.monotonic() + 20
        while z.stats()["tags"].get(IN, {}).get("frames_out", 0) < 5:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # the handler runs after delivery; give it a moment to fail 5 times
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    text = err.decode()
    assert p.returncode == 0, text
    assert text.count("Traceback (most recent call last)") == 1, text
    assert "KeyError: 'nope'" in text
    assert "stream function 'broken': yomo: handler of 'broken' failed on tag 0x33" in text
    assert "... repeated 4 times" in text, text
    assert "KeyboardInterrupt" not in text and "Task was destroyed" not in text, text


@pytest.mark.parametrize(
    ("returned", "shown"),
    [("ctx.data.upper()", "bytes b'HELLO'"), ("(0x34,)", "tuple (52,)"), ("0x34", "int 52")],
)
def test_a_handler_returning_the_wrong_shape_says_what_to_return(
    sync_zipper, sync_clients, returned, shown
):
    z = sync_zipper()
    errors: list[BaseException] = []
    fn = sync_clients.sfn(z.addr, "shape", [IN])
    fn.set_handler(eval(f"lambda ctx: {returned}"))
    fn.set_error_handler(errors.append)
    fn.connect()
    src = sync_clients.source(z.addr, "src")
    src.connect()
    src.write(IN, b"hello")
    deadline = time.monotonic() + 10
    while not errors:
        assert time.monotonic() < deadline, "no error reported"
        time.sleep(0.02)
    message = str(errors[0])
    assert f"the handler of 'shape' returned {shown}; return (tag, data) or None" in message


def test_source_write_json_and_bytes_like_data(sync_zipper, sync_clients):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [IN])
    src = sync_clients.source(z.addr, "src")
    src.connect()
    src.write_json(IN, {"temp": 21.5, "place": "Zürich"})
    src.write(IN, bytearray(b"from a bytearray"))
    src.write(IN, memoryview(b"..from a memoryview")[2:])
    sink.wait(3)
    first, second, third = sink.data()
    assert json.loads(first) == {"temp": 21.5, "place": "Zürich"}
    assert first == '{"temp":21.5,"place":"Zürich"}'.encode()
    assert second == b"from a bytearray" and third == b"from a memoryview"


async def test_async_source_write_json(aio_zipper, aio_clients):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [IN])
    src = aio_clients.source(z.addr, "src")
    await src.connect()
    await src.write_json(IN, [1, "two"])
    await src.write(IN, bytearray(b"ba"))
    await sink.wait_async(2)
    assert sink.data() == [b'[1,"two"]', b"ba"]
    with pytest.raises(TypeError):
        await src.write_json(IN, object())


def test_bytes_like_data_passes_the_type_checker(tmp_path: Path) -> None:
    from mypy import api

    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        textwrap.dedent(
            """
            import yomo, yomo.aio

            def sync(src: yomo.Source, ctx: yomo.Context) -> None:
                src.write(0x33, bytearray(b"x"))
                src.write(0x33, memoryview(b"x"))
                src.write_json(0x33, {"a": 1})
                ctx.write(0x34, bytearray(b"x"))

            async def aio(src: yomo.aio.Source, ctx: yomo.AsyncContext) -> None:
                await src.write(0x33, memoryview(b"x"))
                await src.write_json(0x33, [1])
                await ctx.write(0x34, bytearray(b"x"))
            """
        )
    )
    out, err, status = api.run(["--strict", "--no-incremental", str(snippet)])
    assert status == 0, out + err


def test_wait_ends_cleanly_on_ctrl_c(tmp_path, sync_zipper):
    z = sync_zipper()
    p = _program(
        tmp_path,
        f"""
        import yomo
        from yomo.transport import TlsConfig

        import sys, threading, time

        def announce():  # "ready" once the main thread is inside wait(), not before
            main = threading.main_thread().ident
            while True:
                frame = sys._current_frames().get(main)
                while frame is not None and not (  # yomo's wait(), not Thread.start's
                    frame.f_code.co_name == "wait" and "yomo" in frame.f_code.co_filename
                ):
                    frame = frame.f_back
                if frame is not None:
                    print("ready", flush=True)
                    return
                time.sleep(0.01)

        fn = yomo.StreamFunction("waiter", "{z.addr}", observe_data_tags=[{IN}], tls=TlsConfig())
        fn.set_handler(lambda ctx: None)
        fn.connect()
        threading.Thread(target=announce, daemon=True).start()
        fn.wait()
        print("after wait", flush=True)
        """,
    )
    try:
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        _wait_for_connection(z, "waiter")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err.decode()
    assert out == b"after wait\n"
    assert err == b"", err.decode()  # no traceback, no "Task was destroyed"
    deadline = time.monotonic() + 10
    while any(c.name == "waiter" for c in z.connections()):  # closed, not left to time out
        assert time.monotonic() < deadline, "the zipper still has the function"
        time.sleep(0.05)


@pytest.mark.parametrize("name", ["my fn", "1st-fn", "fn!", "x" * 65, "über"])
def test_init_refuses_names_that_are_not_function_names(tmp_path: Path, name: str) -> None:
    p = run_yomo(["init", name], tmp_path)
    assert p.proc.returncode == 1, p.output
    assert p.stderr[-1] == (
        f"Error: yomo: {name!r} is not a valid function name: use letters, digits, '-' and "
        "'_', starting with a letter, at most 64 characters (the directory's name becomes the "
        "stream function's name)"
    )
    assert not (tmp_path / name).exists()


def test_init_accepts_a_path_whose_last_part_is_a_function_name(tmp_path: Path) -> None:
    (tmp_path / "projects").mkdir()
    p = run_yomo(["init", "projects/my-fn_2"], tmp_path)
    assert p.proc.returncode == 0, p.output
    assert "YOMO_SFN_NAME=my-fn_2" in (tmp_path / "projects/my-fn_2/.env").read_text()
