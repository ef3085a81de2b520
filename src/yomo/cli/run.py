"""``yomo run FILE.py``: load a stream-function file and run it until Ctrl-C (Go: cli/run.go).

A stream-function file defines, by convention:

- ``handler(ctx)`` (plain or ``async def``) or ``pipe(stream)``, exactly one;
- ``data_tags()`` returning the observed tags, or a module constant ``DATA_TAGS``;
- optionally ``init()`` (run once before the first frame) and ``wanted_target()``.

The loader (:func:`load_function_file`) is separate from the command so that
tests and tools can check a file without connecting anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import click

from yomo.errors import (
    ConnectError,
    ConnectionClosedError,
    RejectedError,
    TagError,
    YomoError,
)

__all__ = ["FunctionFile", "FunctionFileError", "load_function_file", "run", "run_function"]

logger = logging.getLogger("yomo.cli")

#: Seconds ``connect`` keeps retrying an unreachable zipper (``ReconnectPolicy`` default).
DEFAULT_CONNECT_TIMEOUT = 10.0


class FunctionFileError(YomoError):
    """A stream-function file cannot be used; ``details`` is text to show before the message."""

    def __init__(self, message: str, details: str = "") -> None:
        self.details = details
        super().__init__(message)


@dataclass(frozen=True)
class FunctionFile:
    """What a stream-function file defines, checked."""

    path: Path
    """The file."""
    module: ModuleType
    """The imported module."""
    tags: tuple[int, ...]
    """The tags to observe (from ``data_tags()`` or ``DATA_TAGS``)."""
    handler: Callable[..., Any] | None = None
    """``handler(ctx)``, when the file defines it."""
    pipe: Callable[..., Any] | None = None
    """``pipe(stream)``, when the file defines it."""
    init: Callable[[], Any] | None = None
    """``init()``, when the file defines it."""
    wanted_target: str = ""
    """What ``wanted_target()`` returned; empty when the file does not define it."""

    @property
    def stem(self) -> str:
        """The file name without ``.py``: the default function name."""
        return self.path.stem


def _user_traceback(exc: BaseException, path: Path) -> str:
    """The traceback of ``exc`` without the frames of the import machinery."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith("<frozen importlib") or filename == __file__:
            tb = tb.tb_next
            continue
        break
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _import(path: Path) -> ModuleType:
    stem = path.stem
    name = stem if stem.isidentifier() and stem not in sys.modules else "yomo_function_main"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FunctionFileError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)  # sibling modules import as they would with `python FILE`
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise FunctionFileError(
            f"{path} does not import: {type(exc).__name__}: {exc}",
            details=_user_traceback(exc, path),
        ) from exc
    return module


def _callable_or_none(module: ModuleType, name: str, path: Path) -> Callable[..., Any] | None:
    value = getattr(module, name, None)
    if value is None:
        return None
    if not callable(value):
        raise FunctionFileError(f"{path}: {name} must be a function, got {type(value).__name__}")
    return value  # type: ignore[no-any-return]


def _call_user(fn: Callable[[], Any], what: str, path: Path) -> Any:
    try:
        return fn()
    except Exception as exc:
        raise FunctionFileError(
            f"{path}: {what} failed: {type(exc).__name__}: {exc}",
            details=_user_traceback(exc, path),
        ) from exc


def _tags(module: ModuleType, path: Path) -> tuple[int, ...]:
    fn = _callable_or_none(module, "data_tags", path)
    if fn is not None:
        raw, where = _call_user(fn, "data_tags()", path), "data_tags()"
    elif hasattr(module, "DATA_TAGS"):
        raw, where = module.DATA_TAGS, "DATA_TAGS"
    else:
        raise FunctionFileError(
            f"{path}: no tags to observe: define data_tags() returning a list of tags, "
            "or a DATA_TAGS constant"
        )
    values: Iterable[Any]
    if isinstance(raw, int):
        values = (raw,)
    elif isinstance(raw, (list, tuple, set, frozenset)):
        values = raw
    else:
        raise FunctionFileError(
            f"{path}: {where} must be a list of integer tags, got {type(raw).__name__}"
        )
    from yomo.wire import check_tag

    tags: list[int] = []
    for value in values:
        try:
            tags.append(check_tag(value))
        except TagError as exc:
            raise FunctionFileError(f"{path}: bad tag in {where}: {exc.message}") from None
        except TypeError as exc:
            message = str(exc).removeprefix("yomo: ")
            raise FunctionFileError(f"{path}: bad tag in {where}: {message}") from None
    if not tags:
        raise FunctionFileError(f"{path}: no tags to observe: {where} is empty")
    return tuple(dict.fromkeys(tags))


def load_function_file(path: str | os.PathLike[str]) -> FunctionFile:
    """Import a stream-function file and check what it defines.

    Raises:
        FunctionFileError: the file is missing, does not import, defines neither or both
            of ``handler`` and ``pipe``, has no tags or a tag out of range.
    """
    file = Path(path)
    if not file.is_file():
        raise FunctionFileError(f"file not found: {path}")
    module = _import(file)
    handler = _callable_or_none(module, "handler", file)
    pipe = _callable_or_none(module, "pipe", file)
    if handler is None and pipe is None:
        raise FunctionFileError(
            f"{file}: defines neither handler(ctx) nor pipe(stream); define one of them"
        )
    if handler is not None and pipe is not None:
        raise FunctionFileError(f"{file}: defines both handler and pipe; keep one of them")
    tags = _tags(module, file)
    target_fn = _callable_or_none(module, "wanted_target", file)
    target = _call_user(target_fn, "wanted_target()", file) if target_fn is not None else ""
    if not isinstance(target, str):
        raise FunctionFileError(
            f"{file}: wanted_target() must return a str, got {type(target).__name__}"
        )
    return FunctionFile(
        path=file,
        module=module,
        tags=tags,
        handler=handler,
        pipe=pipe,
        init=_callable_or_none(module, "init", file),
        wanted_target=target,
    )


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

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig.name)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            continue
        installed.append(sig)
    try:
        tags = ", ".join(f"0x{t:x}" for t in function.tags)
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
                details=_user_traceback(exc, function.path),
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
        final = sfn._core.final_error
        await sfn.close()
        if final is not None:
            raise final
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


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
    wanted_target(). Flags win over the YOMO_SFN_* variables and ./.env.
    """
    try:
        from yomo.client.core import parse_address

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
