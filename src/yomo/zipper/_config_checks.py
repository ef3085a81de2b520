"""Checks shared by the zipper's config parsers (``config.py``, ``bridge_config.py``),
and reading YAML with the position of every value, for their messages.

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

__all__ = [
    "ConfigPath",
    "check_host",
    "check_monitor",
    "check_name",
    "check_port",
    "check_str",
    "describe",
    "dotted",
    "fail",
    "load_yaml",
    "warn_unknown",
]

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


def check_str(
    value: object,
    *,
    source: str,
    path: ConfigPath,
    secret: bool = False,
    marks: Mapping[ConfigPath, yaml.Mark] | None = None,
) -> str:
    """``value`` if it is a string, else the ConfigError naming ``path`` (never a secret)."""
    if not isinstance(value, str):
        mark = marks.get(path) if marks else None
        fail(source, path, "a string", value, mark, secret=secret)
    return value


def check_name(
    value: object,
    *,
    source: str,
    path: ConfigPath,
    marks: Mapping[ConfigPath, yaml.Mark] | None = None,
) -> str:
    """``value`` if it is a non-empty string, else the ConfigError naming ``path``."""
    if not isinstance(value, str) or not value:
        mark = marks.get(path) if marks else None
        fail(source, path, "a non-empty string", value, mark)
    return value


check_host = check_name


def check_monitor(
    value: object, *, source: str, marks: Mapping[ConfigPath, yaml.Mark] | None = None
) -> None:
    """Refuse a ``monitor`` value that is not ``HOST:PORT``."""
    from yomo._asgi import parse_http_address

    path: ConfigPath = ("monitor",)
    if not isinstance(value, str):
        fail(
            source,
            path,
            "HOST:PORT, e.g. 127.0.0.1:8222",
            value,
            marks.get(path) if marks else None,
        )
    try:
        parse_http_address(value, what="monitor")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None


def check_port(
    value: object,
    *,
    source: str,
    path: ConfigPath,
    allow_zero: bool,
    marks: Mapping[ConfigPath, yaml.Mark] | None = None,
) -> int:
    """``value`` if it is a port (0 too when ``allow_zero``), else the ConfigError."""
    low = 0 if allow_zero else 1
    # bool is an int in Python but not a port; YAML's `port: yes` is a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 65535:
        mark = marks.get(path) if marks else None
        fail(source, path, f"an integer {low}..65535", value, mark)
    return value


def load_yaml(raw: bytes, source: str) -> tuple[object, dict[ConfigPath, yaml.Mark]]:
    """Parse one YAML document safely; also return where each mapping value starts."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(raw)  # the reader checks the encoding right here
        node = loader.get_single_node()
        if node is None:
            return None, {}
        marks: dict[ConfigPath, yaml.Mark] = {}
        _index_marks(node, (), marks, source)
        data: object = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "cannot parse"
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{source}: invalid YAML: {problem}{where}") from exc
    except yaml.reader.ReaderError as exc:  # bytes that are not UTF-8/16 text
        raise ConfigError(
            f"{source}: invalid YAML: not UTF-8 or UTF-16 text ({exc.reason} at byte {exc.position})"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from exc
    finally:
        if loader is not None:
            loader.dispose()
    return data, marks


def _index_marks(
    node: yaml.Node, path: ConfigPath, marks: dict[ConfigPath, yaml.Mark], source: str
) -> None:
    marks[path] = node.start_mark
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[str, yaml.Mark] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
            continue
        key = key_node.value
        if key in seen:  # yaml.v3, which Go uses, rejects duplicate keys too
            first = seen[key]
            where = dotted((*path, key))
            mark = key_node.start_mark
            raise ConfigError(
                f"{source}: {where}: defined twice, at line {first.line + 1} and line "
                f"{mark.line + 1}"
            )
        seen[key] = key_node.start_mark
        _index_marks(value_node, (*path, key), marks, source)
