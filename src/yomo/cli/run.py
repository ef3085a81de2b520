"""``yomo run FILE.py``: load a stream-function file and run it until Ctrl-C (Go: cli/run.go).

What a file defines (``handler``, ``data_tags``, ``init``, ``wanted_target``, and for
an LLM function ``description`` and ``input_schema``) is read and checked by
:mod:`yomo.cli.function_file`, apart from the command, so that tests and tools can
check a file without connecting anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

import click

from yomo._signals import add_loop_signals, remove_loop_signals
from yomo.errors import (
    ConnectError,
    ConnectionClosedError,
    RejectedError,
    YomoError,
)

from .function_file import FunctionFile, FunctionFileError, load_function_file, user_traceback

__all__ = ["FunctionFile", "FunctionFileError", "load_function_file", "run", "run_function"]

logger = logging.getLogger("yomo.cli")

#: Seconds ``connect`` keeps retrying an unreachable zipper (``ReconnectPolicy`` default).
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Tool calls an LLM function file handles at once: a slow call (a web request, a
#: model) must not hold up the others, as Go runs each call in its own goroutine.
LLM_CONCURRENCY = 16


async def run_function(
    function: FunctionFile,
    *,
    name: str,
    zipper: str,
    credential: str | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    echo: Callable[[str], Any] = click.echo,
) -> None:
    """Connect ``function`` to ``zipper`` and serve until SIGINT/SIGTERM or a final error.

    Raises:
        FunctionFileError: ``init()`` failed.
        RejectedError: the zipper rejected the function.
        ConnectError: the zipper stayed unreachable for ``connect_timeout`` seconds.
        ConnectionClosedError: the zipper ended the function (goaway).
    """
    from yomo.aio import ReconnectPolicy, StreamFunction
    from yomo.client.sfn import HandlerError

    sfn = StreamFunction(
        name,
        zipper,
        observe_data_tags=function.tags,
        wanted_target=function.wanted_target,
        credential=credential or None,
        reconnect=ReconnectPolicy(connect_timeout=connect_timeout),
        logger=logging.getLogger("yomo.sfn"),
        description=function.description,
        input_schema=function.input_schema,
        concurrency=LLM_CONCURRENCY if function.description else 1,
    )
    connected = False

    def on_error(error: BaseException) -> None:
        if isinstance(error, HandlerError):
            inner = error.error
            logger.error("%s", error.message, exc_info=(type(inner), inner, inner.__traceback__))
        elif connected:  # before that, connect() raises and the command reports it
            logger.warning("%s", error)

    sfn.set_error_handler(on_error)
    if function.init is not None:
        sfn.init(function.init)
    if function.handler is not None:
        sfn.set_handler(function.handler)
    else:
        assert function.pipe is not None
        sfn.set_pipe_handler(function.pipe)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals: list[str] = []

    def on_signal(sig_name: str) -> None:
        signals.append(sig_name)
        if len(signals) > 1:
            echo(f"yomo: received {sig_name} again, exiting now")
            os._exit(130)
        stop.set()

    installed = add_loop_signals(loop, on_signal)
    try:
        tags = ", ".join(f"0x{t:x}" for t in function.tags)
        if sfn.function_definition is not None:
            echo(f"yomo: LLM function {name!r} from {function.path}")
            echo(f"yomo: function definition: {sfn.function_definition.to_bytes().decode()}")
        else:
            echo(f"yomo: stream function {name!r} from {function.path}, observing [{tags}]")
        echo(f"yomo: connecting to zipper {zipper} ...")
        connecting = asyncio.ensure_future(sfn.connect())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
            await sfn.close()
            echo(f"yomo: received {signals[0]}, stopped before connecting")
            return
        stopping.cancel()
        try:
            connecting.result()
        except (YomoError, asyncio.CancelledError):
            await sfn.close()
            raise
        except Exception as exc:  # init() raised
            await sfn.close()
            raise FunctionFileError(
                f"{function.path}: init() failed: {type(exc).__name__}: {exc}",
                details=user_traceback(exc, function.path),
            ) from exc
        connected = True
        echo(f"yomo: stream function {name!r} is running (Ctrl-C to stop)")
        waiting = asyncio.ensure_future(sfn.wait())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        stopping.cancel()
        if stop.is_set():
            echo(f"yomo: received {signals[0]}, closing the connection")
            await sfn.close()
            echo(f"yomo: stream function {name!r} closed")
            return
        final = sfn.final_error
        await sfn.close()
        if final is not None:
            raise final
    finally:
        remove_loop_signals(loop, installed)


@click.command()
@click.argument("file", metavar="FILE.py", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "-z",
    "--zipper",
    default="localhost:9000",
    show_default=True,
    metavar="HOST:PORT",
    envvar="YOMO_SFN_ZIPPER",
    show_envvar=True,
    help="Zipper address, host:port.",
)
@click.option(
    "-n",
    "--name",
    default=None,
    metavar="NAME",
    envvar="YOMO_SFN_NAME",
    show_envvar=True,
    help="Stream function name.  [default: the file name without .py]",
)
@click.option(
    "-d",
    "--credential",
    default=None,
    metavar="CRED",
    envvar="YOMO_SFN_CREDENTIAL",
    show_envvar=True,
    help="Credential for the zipper, e.g. token:<secret>.",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_CONNECT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="How long to keep retrying an unreachable zipper before giving up.",
)
def run(
    file: str, zipper: str, name: str | None, credential: str | None, connect_timeout: float
) -> None:
    """Run the stream function defined in FILE.py until Ctrl-C.

    FILE.py defines handler(ctx) (plain or async def) or pipe(stream), the tags
    to observe as data_tags() or DATA_TAGS, and optionally init() and
    wanted_target(). An LLM function defines description(), optionally
    input_schema() (its argument type) and handler(ctx), and needs no tags.
    Flags win over the YOMO_SFN_* variables and ./.env.
    """
    try:
        from yomo.session import parse_address

        parse_address(zipper)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        function = load_function_file(file)
    except FunctionFileError as exc:
        if exc.details:
            click.echo(exc.details.rstrip("\n"), err=True)
        raise click.ClickException(str(exc)) from exc
    try:
        asyncio.run(
            run_function(
                function,
                name=name or function.stem,
                zipper=zipper,
                credential=credential,
                connect_timeout=connect_timeout,
            )
        )
    except FunctionFileError as exc:
        if exc.details:
            click.echo(exc.details.rstrip("\n"), err=True)
        raise click.ClickException(str(exc)) from exc
    except (RejectedError, ConnectError, ConnectionClosedError, YomoError) as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:  # no signal handlers (Windows): Ctrl-C lands here
        click.echo("yomo: interrupted")
