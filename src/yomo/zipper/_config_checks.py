"""Checks shared by the zipper's config parsers (``config.py``, ``bridge_config.py``).

Each names the file and the dotted key path of a bad value, with its line and
column when known, and never echoes a secret.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import Any, NoReturn

import yaml

from yomo.errors import ConfigError

__all__ = ["ConfigPath", "describe", "dotted", "fail", "warn_unknown"]

#: Where a value sits in the file: ``("bridge", "ai", "server", "addr")``.
ConfigPath = tuple[str, ...]

logger = logging.getLogger("yomo.zipper.config")


def warn_unknown(
    data: Mapping[Any, object], known: tuple[str, ...], source: str, path: ConfigPath
) -> None:
    """Warn about keys Go would ignore; refuse the ones that look like a typo of a known key."""
    for key in data:
        if key in known:
            continue
        where = dotted((*path, str(key)))
        close = difflib.get_close_matches(str(key).lower(), known, n=1, cutoff=0.7)
        if close:
            raise ConfigError(
                f"{source}: {where}: unknown key, did you mean {dotted((*path, close[0]))!r}?"
            )
        logger.warning("%s: %s: unknown key, ignored", source, where)


def fail(
    source: str,
    path: ConfigPath,
    expected: str,
    got: object,
    mark: yaml.Mark | None = None,
    *,
    secret: bool = False,
) -> NoReturn:
    """Raise the ConfigError for a value that is not ``expected``."""
    where = dotted(path) or "(top level)"
    message = f"{source}: {where}: expected {expected}, got {describe(got, secret=secret)}"
    if mark is not None:
        message += f" (line {mark.line + 1}, column {mark.column + 1})"
    raise ConfigError(message)


def dotted(path: ConfigPath) -> str:
    """``("mesh", "b")`` -> ``"mesh.b"``."""
    return ".".join(path)


def describe(value: object, *, secret: bool = False) -> str:
    """A short, YAML-flavoured description of a bad value; never echoes secrets."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if secret:
        return "an empty string" if value == "" else f"a value of type {type(value).__name__}"
    if isinstance(value, (str, int, float)):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return f"a value of type {type(value).__name__}"
