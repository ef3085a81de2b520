"""``wait()`` returns on SIGINT and SIGTERM, as Go's ``Wait`` does (core/client.go), and
``yomo.Zipper.serve()`` stops on them, as Go's zipper does: real programs, real signals.

Each program connects to a zipper of the test, prints ``ready``, waits, prints ``after``
and ends; a signal must close its clients (the zipper sees them go at once, not after an
idle timeout), end it with status 0 and print nothing on stderr (no traceback).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import yomo
import yomo.aio
from yomo import _signals

from .cli_process import clean_env
from .clients_helpers import PLAIN_TLS

IN = 0x33

_PROGRAMS = {
    "sync-sfn": """
        fn = yomo.StreamFunction("waiter", ADDR, observe_data_tags=[0x33], tls=TLS)
        fn.set_handler(lambda ctx: None)
        fn.connect()
        fn.wait()
        """,
    "sync-source": """
        src = yomo.Source("waiter", ADDR, tls=TLS)
        src.connect()
        src.wait()
        """,
    "aio-sfn": """
        async def main():
            fn = yomo.aio.StreamFunction("waiter", ADDR, observe_data_tags=[0x33], tls=TLS)
            fn.set_handler(lambda ctx: None)
            await fn.connect()
            await fn.wait()

        asyncio.run(main())
        """,
    "aio-two": """
        async def main():
            fn = yomo.aio.StreamFunction("waiter", ADDR, observe_data_tags=[0x33], tls=TLS)
            fn.set_handler(lambda ctx: None)
            src = yomo.aio.Source("waiter-2", ADDR, tls=TLS)
            await fn.connect()
            await src.connect()
            await asyncio.gather(fn.wait(), src.wait())  # one signal ends both, as in Go

        asyncio.run(main())
        """,
}


def _start(tmp_path: Path, addr: str, body: str) -> subprocess.Popen[bytes]:
    head = f"""
        import asyncio, signal, sys, threading, time
        import yomo, yomo.aio, yomo._signals
        from yomo.transport import TlsConfig
        ADDR, TLS = {addr!r}, TlsConfig()

        def announce():  # "ready" once wait() (or serve()) has taken SIGINT
            while signal.getsignal(signal.SIGINT) is not yomo._signals._dispatch:
                time.sleep(0.01)
            print("ready", flush=True)

        threading.Thread(target=announce, daemon=True).start()
        """
    path = tmp_path / "program.py"
    path.write_text(
        textwrap.dedent(head) + textwrap.dedent(body) + '\nprint("after", flush=True)\n'
    )
    return subprocess.Popen(
        [sys.executable, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
        start_new_session=True,
    )


def _names(z: yomo.Zipper) -> set[str]:
    return {c.name for c in z.connections()}


def _until(test: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


#: How the zipper reports a client's own close: its reason (pure-Python data path), or the
#: end of its stream (native); a client that died is reported after an idle timeout.
_CLEAN_CLOSES = (": client closed", ": stream closed by peer")


def _closed_by_client(caplog: pytest.LogCaptureFixture, name: str) -> bool:
    """The zipper logged the client's own close (not an idle timeout): it closed itself."""
    return any(
        r.getMessage().startswith("disconnected: ")
        and f" {name!r} " in r.getMessage()
        and r.getMessage().endswith(_CLEAN_CLOSES)
        for r in caplog.records
    )


def _signal_and_finish(
    p: subprocess.Popen[bytes],
    z: yomo.Zipper,
    names: set[str],
    sig: signal.Signals,
    caplog: pytest.LogCaptureFixture,
) -> tuple[bytes, bytes]:
    try:
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        _until(lambda: names <= _names(z), "the program's clients connected")
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    for name in names:  # closed by the program, not found dead by the zipper's idle timeout
        _until(lambda: _closed_by_client(caplog, name), f"{name} closed itself")  # noqa: B023
    return out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("program", sorted(_PROGRAMS))
def test_a_signal_ends_wait_cleanly(tmp_path, sync_zipper, caplog, program, sig):
    caplog.set_level(logging.INFO, "yomo.zipper")
    z = sync_zipper()
    p = _start(tmp_path, z.addr, _PROGRAMS[program])
    names = {"waiter", "waiter-2"} if program == "aio-two" else {"waiter"}
    out, err = _signal_and_finish(p, z, names, sig, caplog)
    assert p.returncode == 0, err.decode()
    assert out == b"after\n"
    assert err == b"", err.decode()


def test_a_program_that_handles_sigterm_itself_keeps_its_handler(tmp_path, sync_zipper, caplog):
    caplog.set_level(logging.INFO, "yomo.zipper")
    z = sync_zipper()
    body = """
        async def main():
            fn = yomo.aio.StreamFunction("waiter", ADDR, observe_data_tags=[0x33], tls=TLS)
            fn.set_handler(lambda ctx: None)
            await fn.connect()
            loop = asyncio.get_running_loop()

            def mine():
                print("mine", flush=True)
                loop.create_task(fn.close())

            loop.add_signal_handler(signal.SIGTERM, mine)
            await fn.wait()

        asyncio.run(main())
        """
    p = _start(tmp_path, z.addr, body)
    out, err = _signal_and_finish(p, z, {"waiter"}, signal.SIGTERM, caplog)
    assert p.returncode == 0, err.decode()
    assert out == b"mine\nafter\n"


def test_sync_zipper_serve_stops_on_sigterm(tmp_path):
    body = """
        z = yomo.Zipper("z", "127.0.0.1", 0, tls=TLS, stats_interval=0)
        z.start()
        print(z.addr, flush=True)
        z.serve()
        print(z.state, flush=True)
        """
    p = _start(tmp_path, "unused", body)
    try:
        assert p.stdout is not None
        addr = p.stdout.readline().decode().strip()
        assert p.stdout.readline() == b"ready\n"
        closed: list[BaseException] = []
        src = yomo.Source("src", addr, tls=PLAIN_TLS)
        src.set_error_handler(closed.append)
        src.connect()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        # the zipper closed the connection with its reason (Go: server.Close on SIGTERM)
        _until(lambda: any("received SIGTERM" in str(e) for e in closed), "the zipper's reason")
        src.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err.decode()
    assert out == b"stopped\nafter\n"
    assert err == b"", err.decode()


async def test_wait_gives_the_handlers_back(aio_zipper, aio_clients):
    z = await aio_zipper()
    fn = aio_clients.sfn(z.addr, "waiter", [IN])
    fn.set_handler(lambda ctx: None)
    await fn.connect()
    before = {sig: signal.getsignal(sig) for sig in _signals.STOP_SIGNALS}
    waiting = asyncio.ensure_future(fn.wait())
    await asyncio.sleep(0.1)
    taken = {sig: signal.getsignal(sig) for sig in _signals.STOP_SIGNALS}
    await fn.close()
    await asyncio.wait_for(waiting, 10)
    assert {sig: signal.getsignal(sig) for sig in _signals.STOP_SIGNALS} == before
    # pytest's own SIGINT handling stays: only default handlers are taken
    for sig, handler in before.items():
        assert (taken[sig] is _signals._dispatch) == _signals._free(handler)
