"""Where yomo's log records go: the ``YOMO_LOG_*`` variables, for the library and the CLI.

Go YoMo's default logger reads its configuration from the environment
(Go: core/ylog/logger.go Config); so does this package, once, when ``yomo`` is
imported, if any of these is set:

- ``YOMO_LOG_LEVEL``: ``debug``, ``info`` (default), ``warn``/``warning``, ``error``;
- ``YOMO_LOG_FORMAT``: ``text`` (default) or ``json`` (one object a line: time, level,
  logger, msg, and source/error when present);
- ``YOMO_LOG_OUTPUT``: a file to append records to, or ``stdout``/``stderr`` (default
  stderr, the Python convention; Go writes to stdout);
- ``YOMO_LOG_ERROR_OUTPUT``: where ERROR records go instead (a file, ``stdout`` or
  ``stderr``), like Go's error stream;
- ``YOMO_LOG_VERBOSE``: ``true`` adds the source file and line of each record.

With none of them set the library adds no handler (records propagate to whatever
the application configured). The ``yomo`` command always configures the root
logger through :func:`configure_logging`, with the same variables.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import sys
import warnings
from collections.abc import Mapping
from typing import Literal

from yomo.errors import ConfigError

__all__ = [
    "ENV_VARIABLES",
    "LOG_FORMAT",
    "LOG_LEVELS",
    "JsonFormatter",
    "LogSettings",
    "configure_from_env",
    "configure_logging",
]

#: Level names of ``--log-level`` and ``YOMO_LOG_LEVEL``; ``warn`` is Go's spelling
#: (Go: core/ylog/logger.go parseToSlogLevel).
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

#: One compact line per record: time, level, logger, message.
LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s"
_VERBOSE_FORMAT = LOG_FORMAT + " (%(pathname)s:%(lineno)d)"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

#: The variables read here (Go also reads rotation settings, which are not honoured).
ENV_VARIABLES = (
    "YOMO_LOG_LEVEL",
    "YOMO_LOG_FORMAT",
    "YOMO_LOG_OUTPUT",
    "YOMO_LOG_ERROR_OUTPUT",
    "YOMO_LOG_VERBOSE",
)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LogSettings:
    """How to write log records; :meth:`from_env` reads the ``YOMO_LOG_*`` variables."""

    level: int = logging.INFO
    """The lowest level written."""
    format: Literal["text", "json"] = "text"
    """``text`` lines or ``json`` objects, one per line."""
    output: str = "stderr"
    """``stderr``, ``stdout`` or a file path (appended to)."""
    error_output: str = ""
    """Where ERROR records go instead of ``output``; empty: to ``output`` too."""
    verbose: bool = False
    """Add the source file and line of each record."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> LogSettings:
        """The settings the variables ask for.

        Raises:
            ConfigError: a value is not one of those listed in the module docstring.
        """
        level_name = env.get("YOMO_LOG_LEVEL", "info").strip().lower() or "info"
        if level_name not in LOG_LEVELS:
            choices = ", ".join(LOG_LEVELS)
            raise ConfigError(f"YOMO_LOG_LEVEL: expected one of {choices}, got {level_name!r}")
        fmt = env.get("YOMO_LOG_FORMAT", "").strip().lower() or "text"
        if fmt not in ("text", "json"):
            raise ConfigError(f"YOMO_LOG_FORMAT: expected 'text' or 'json', got {fmt!r}")
        verbose = env.get("YOMO_LOG_VERBOSE", "").strip().lower()
        if verbose not in _TRUE + _FALSE:
            raise ConfigError(f"YOMO_LOG_VERBOSE: expected true or false, got {verbose!r}")
        return cls(
            level=LOG_LEVELS[level_name],
            format="json" if fmt == "json" else "text",
            output=env.get("YOMO_LOG_OUTPUT", "").strip() or "stderr",
            error_output=env.get("YOMO_LOG_ERROR_OUTPUT", "").strip(),
            verbose=verbose in _TRUE,
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with Go slog's keys (``time``, ``level``, ``msg``)."""

    def __init__(self, *, verbose: bool = False) -> None:
        super().__init__()
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.datetime.fromtimestamp(record.created).astimezone()
        level = "WARN" if record.levelno == logging.WARNING else record.levelname
        out: dict[str, object] = {
            "time": created.isoformat(timespec="milliseconds"),
            "level": level,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.verbose:
            out["source"] = f"{record.pathname}:{record.lineno}"
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _StdHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` (or ``sys.stdout``) is at the time of each record."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._std = name

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout if self._std == "stdout" else sys.stderr
        super().emit(record)


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


def _handler(target: str) -> logging.Handler:
    if target.lower() in ("stdout", "stderr"):
        return _StdHandler(target.lower())
    try:
        return logging.FileHandler(target, mode="a", encoding="utf-8", delay=False)
    except OSError as exc:
        raise ConfigError(f"cannot open log file {target!r}: {exc.strerror or exc}") from exc


def _handlers(settings: LogSettings) -> list[logging.Handler]:
    if settings.format == "json":
        formatter: logging.Formatter = JsonFormatter(verbose=settings.verbose)
    else:
        fmt = _VERBOSE_FORMAT if settings.verbose else LOG_FORMAT
        formatter = logging.Formatter(fmt, _DATE_FORMAT)
    main = _handler(settings.output)
    handlers = [main]
    if settings.error_output:
        main.addFilter(_BelowError())
        errors = _handler(settings.error_output)
        errors.setLevel(logging.ERROR)
        handlers.append(errors)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._yomo = True  # type: ignore[attr-defined]  # ours, to replace later
    return handlers


def _install(logger: logging.Logger, settings: LogSettings) -> None:
    handlers = _handlers(settings)  # first, so a bad file leaves the old set-up in place
    for old in list(logger.handlers):
        if getattr(old, "_yomo", False):
            logger.removeHandler(old)
            old.close()
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(settings.level)


def configure_logging(level: int | None = None, env: Mapping[str, str] = os.environ) -> None:
    """The ``yomo`` command's logging: the root logger, by ``YOMO_LOG_*`` and ``level``.

    Calling it again replaces what the previous call installed.

    Raises:
        ConfigError: a ``YOMO_LOG_*`` value is invalid or the log file cannot be opened.
    """
    settings = LogSettings.from_env(env)
    if level is not None:
        settings = dataclasses.replace(settings, level=level)
    _install(logging.getLogger(), settings)
    library = logging.getLogger("yomo")  # the root's handlers take over from the library's
    for old in list(library.handlers):
        if getattr(old, "_yomo", False):
            library.removeHandler(old)
            old.close()
    library.propagate = True
    library.setLevel(logging.NOTSET)


def configure_from_env(env: Mapping[str, str] = os.environ) -> bool:
    """The library's logging: if any ``YOMO_LOG_*`` is set, the ``yomo`` logger writes there.

    Returns whether anything was configured. A bad value is reported as a warning
    (``yomo`` still imports) and leaves logging as it was.
    """
    if not any(env.get(name) for name in ENV_VARIABLES):
        return False
    try:
        settings = LogSettings.from_env(env)
        logger = logging.getLogger("yomo")
        _install(logger, settings)
    except ConfigError as exc:
        warnings.warn(str(exc), stacklevel=2)
        return False
    logger.propagate = False  # the variables say where yomo's records go; not twice
    return True
