"""The ``yomo`` command: a click group whose subcommands live one per module.

Like Go's ``yomo`` (Go: cli/root.go), the group loads ``./.env`` when present,
takes ``-v`` for verbose output and ``-V``/``--version``; logging goes to stderr unless
the ``YOMO_LOG_*`` variables say otherwise (see ``yomo._logging``). ``-v`` and
``--log-level`` are also accepted after the subcommand.
To add a command, write ``yomo/cli/<name>.py`` with one ``click.Command`` and
register it in :data:`COMMANDS` below.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import click

from yomo._logging import LOG_FORMAT, LOG_LEVELS, configure_logging
from yomo._version import __version__
from yomo.cli._logopts import add_log_options, set_log_level
from yomo.cli.init import init
from yomo.cli.pub import pub
from yomo.cli.run import run
from yomo.cli.serve import serve
from yomo.cli.stats import stats
from yomo.cli.sub import sub
from yomo.cli.version import version

__all__ = [
    "COMMANDS",
    "LOG_FORMAT",
    "LOG_LEVELS",
    "cli",
    "configure_logging",
    "main",
]


@click.group(name="yomo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(list(LOG_LEVELS), case_sensitive=False),
    default="info",
    show_default=True,
    envvar="YOMO_LOG_LEVEL",
    show_envvar=True,
    help="Lowest level of log records written to stderr.",
)
@click.option("-v", "--verbose", is_flag=True, help="Verbose output (same as --log-level debug).")
@click.version_option(
    __version__, "-V", "--version", prog_name="yomo", message="YoMo for Python version: %(version)s"
)
def cli(log_level: str, verbose: bool) -> None:
    """YoMo for Python: serve a zipper, run stream functions."""
    set_log_level(logging.DEBUG if verbose else LOG_LEVELS[log_level.lower()])


#: Every subcommand, in help order.
COMMANDS: tuple[click.Command, ...] = (serve, run, pub, sub, stats, init, version)
for _command in COMMANDS:
    cli.add_command(add_log_options(_command))


def _load_dotenv() -> None:
    """Load ``./.env`` without overriding the environment (Go: cli/root.go initDotEnv)."""
    if not os.path.isfile(".env"):
        return
    from dotenv import load_dotenv

    try:
        load_dotenv(".env", override=False)
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"Error: yomo: cannot load .env: {exc}", err=True)
        raise SystemExit(1) from exc


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``yomo`` console script and of ``python -m yomo``.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Raises:
        SystemExit: always, with the command's exit code (0 ok, 1 error, 2 usage).
    """
    _load_dotenv()
    cli.main(args=list(argv) if argv is not None else None, prog_name="yomo")
