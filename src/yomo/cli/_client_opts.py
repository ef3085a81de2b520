"""Options and helpers shared by the shell tools ``yomo pub`` and ``yomo sub``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from yomo.errors import ConnectError, RejectedError, YomoError

__all__ = [
    "ClientArgs",
    "client_logger",
    "client_options",
    "parse_tag",
    "run_until_signal",
    "tag_argument",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: Seconds a shell tool keeps trying to reach the zipper before it gives up.
DEFAULT_CONNECT_TIMEOUT = 5.0


def client_logger() -> logging.Logger:
    """The clients' logger of a shell tool: quiet about connecting unless -v asked for debug."""
    log = logging.getLogger("yomo.cli.client")
    log.setLevel(logging.DEBUG if logging.getLogger().level <= logging.DEBUG else logging.WARNING)
    return log


def parse_tag(text: str) -> int:
    """``0x33``, ``51`` or ``0o63`` as a data tag.

    Raises:
        click.BadParameter: not a number, out of range or reserved.
    """
    from yomo.wire import check_tag

    try:
        tag = int(text.strip(), 0)
    except ValueError:
        raise click.BadParameter(f"expected a number like 0x33 or 51, got {text!r}") from None
    try:
        return check_tag(tag)
    except YomoError as exc:
        raise click.BadParameter(exc.message) from None


def _tag_callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(parse_tag(v) for v in value)
    return parse_tag(value)


@dataclass(frozen=True)
class ClientArgs:
    """What ``-z``, ``-d``, ``-n`` and ``--connect-timeout`` said."""

    zipper_addr: str
    credential: str | None
    name: str | None
    connect_timeout: float

    def client_kwargs(self, default_name: str) -> dict[str, Any]:
        """Positional name and address plus keyword options for ``yomo.aio`` clients."""
        from yomo.session import ReconnectPolicy

        return {
            "name": self.name or default_name,
            "zipper_addr": self.zipper_addr,
            "credential": self.credential,
            "reconnect": ReconnectPolicy(connect_timeout=self.connect_timeout),
            "logger": client_logger(),
        }


def client_options(command: F) -> F:
    """``-z``, ``-d``, ``-n`` and ``--connect-timeout`` (as ``yomo run`` has them), given to
    the command as one ``client: ClientArgs``."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        zipper_addr: str,
        credential: str | None,
        name: str | None,
        connect_timeout: float,
        **kwargs: Any,
    ) -> Any:
        client = ClientArgs(zipper_addr, credential, name, connect_timeout)
        return command(*args, client=client, **kwargs)

    decorated: Any = wrapper
    for option in reversed(
        (
            click.option(
                "-z",
                "--zipper",
                "zipper_addr",
                metavar="HOST:PORT",
                default="localhost:9000",
                show_default=True,
                help="The zipper to connect to.",
            ),
            click.option("-d", "--credential", default=None, help="Credential, e.g. token:s3cret."),
            click.option("-n", "--name", default=None, help="Client name shown by the zipper."),
            click.option(
                "--connect-timeout",
                type=click.FloatRange(min=0),
                default=DEFAULT_CONNECT_TIMEOUT,
                show_default=True,
                metavar="SECONDS",
                help="How long to keep trying to reach the zipper.",
            ),
        )
    ):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


def tag_argument(*, many: bool) -> Callable[[F], F]:
    """The ``TAG`` (or ``TAG...``) argument, parsed from hex or decimal."""
    return click.argument(
        "tags" if many else "tag", nargs=-1 if many else 1, required=True, callback=_tag_callback
    )


def run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(stop)`` on a new loop; SIGINT/SIGTERM set ``stop`` (a second one cancels).

    Connection errors become one ``Error: yomo: …`` line; Ctrl-C never prints a traceback.
    """

    async def runner() -> T:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        task = asyncio.current_task()

        def on_signal() -> None:
            if stop.is_set() and task is not None:
                task.cancel()
            stop.set()

        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal)
                installed.append(sig)
        try:
            return await main(stop)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(runner())
    except (ConnectError, RejectedError) as exc:
        raise click.ClickException(str(exc)) from None
    except YomoError as exc:
        raise click.ClickException(str(exc)) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise SystemExit(130) from None
