"""``-v`` and ``--log-level`` on every subcommand, so they work after it too.

``yomo -v serve`` and ``yomo serve -v`` mean the same; a later option wins.
"""

from __future__ import annotations

import logging

import click

from yomo._logging import LOG_LEVELS, configure_logging
from yomo.errors import ConfigError

__all__ = ["add_log_options", "set_log_level"]


def set_log_level(level: int) -> None:
    """Configure the command's logging at ``level`` (with the ``YOMO_LOG_*`` variables)."""
    try:
        configure_logging(level)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _on_level(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        set_log_level(LOG_LEVELS[value.lower()])


def _on_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        set_log_level(logging.DEBUG)


def add_log_options(command: click.Command) -> click.Command:
    """Give ``command`` the ``--log-level`` and ``-v/--verbose`` options of the group."""
    command.params.append(
        click.Option(
            ["--log-level"],
            type=click.Choice(list(LOG_LEVELS), case_sensitive=False),
            default=None,
            expose_value=False,
            callback=_on_level,
            help="Lowest level of log records written (also before the command).",
        )
    )
    command.params.append(
        click.Option(
            ["-v", "--verbose"],
            is_flag=True,
            expose_value=False,
            callback=_on_verbose,
            help="Verbose output (same as --log-level debug).",
        )
    )
    return command
