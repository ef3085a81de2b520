"""The ``bridge:`` section of ``zipper.yaml``: the AI bridge and the MCP server.

Go: pkg/bridge/ai/config.go and pkg/bridge/mcp/config.go. The keys are Go's::

    bridge:
      ai:
        server:
          addr: localhost:8000      # Go's default ":8000"
          provider: openai          # default: the first provider configured
        providers:
          openai:                   # one block per provider, Go's key names
            api_key: <KEY>          # empty: Go's environment variable (OPENAI_API_KEY)
            model: gpt-4o
      mcp:
        server:
          addr: localhost:9090      # Go's default ":9090"

Beyond Go, ``bridge.ai.server`` and ``bridge.mcp.server`` also take ``token`` (a
bearer token the HTTP endpoints require), and ``bridge.ai.server`` takes the
per-request limits ``max_body_bytes``, ``max_concurrent_calls``, ``call_timeout``
and ``request_timeout`` (seconds, or a Go duration such as ``"90s"``).

Where we differ from Go, we say so: an address without a host (``:8000``) listens
on 127.0.0.1 here (Go: every interface; write ``0.0.0.0:8000`` for that), like the
zipper's own default; the MCP server also runs without ``bridge.ai`` (Go starts it
only with an AI section); unknown provider names and keys are reported at start-up
instead of logged and skipped.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml

from yomo._asgi import parse_http_address
from yomo.errors import ConfigError

from ._config_checks import ConfigPath, fail, warn_unknown

__all__ = [
    "DEFAULT_AI_ADDR",
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONCURRENT_CALLS",
    "DEFAULT_MCP_ADDR",
    "DEFAULT_REQUEST_TIMEOUT",
    "AIConfig",
    "AIServerConfig",
    "BridgeConfig",
    "MCPConfig",
    "parse_bridge",
]

#: Where the AI bridge listens (Go: pkg/bridge/ai/config.go ParseConfig, ":8000").
DEFAULT_AI_ADDR = ":8000"
#: Where the MCP server listens (Go: pkg/bridge/mcp/config.go ParseConfig, ":9090").
DEFAULT_MCP_ADDR = ":9090"
#: Seconds a tool call may take before Go's timeout result (Go: ai.RunFunctionTimeout).
DEFAULT_CALL_TIMEOUT = 60.0
#: Seconds one HTTP request may take in all (Go: ai.RequestTimeout).
DEFAULT_REQUEST_TIMEOUT = 360.0
#: Largest request body accepted (beyond Go, which reads any size).
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
#: Chat, invoke and MCP tool requests served at once; more are answered 429 (beyond Go).
DEFAULT_MAX_CONCURRENT_CALLS = 256

_AI_KEYS = ("server", "providers")
_MCP_KEYS = ("server",)
_BRIDGE_KEYS = ("ai", "mcp")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True, kw_only=True)
class AIServerConfig:
    """``bridge.ai.server``: where the OpenAI-compatible HTTP API listens, and its limits."""

    addr: str = DEFAULT_AI_ADDR
    """``host:port``; ``:8000`` means 127.0.0.1:8000 (see the module notes)."""
    provider: str = ""
    """The provider to use, a key of ``providers``; empty: the first one configured."""
    token: str = field(default="", repr=False)
    """When set, requests need ``Authorization: Bearer <token>`` (beyond Go)."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrent_calls: int = DEFAULT_MAX_CONCURRENT_CALLS
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    """Seconds a tool call may take; then the LLM gets Go's timeout text as its result."""
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    """Seconds one chat or invoke request may take in all; then 504."""

    def __post_init__(self) -> None:
        _check_limits(self, "AIServerConfig")

    @property
    def address(self) -> tuple[str, int]:
        """``addr`` as ``(host, port)``."""
        return parse_http_address(self.addr, what="bridge.ai.server.addr")


@dataclass(frozen=True, kw_only=True)
class AIConfig:
    """``bridge.ai``: the HTTP API and the LLM providers it may use."""

    server: AIServerConfig = field(default_factory=AIServerConfig)
    providers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Provider name -> its settings (Go's keys: ``api_key``, ``api_endpoint``, ``model``...)."""

    def __post_init__(self) -> None:
        frozen = {name: MappingProxyType(dict(v)) for name, v in self.providers.items()}
        object.__setattr__(self, "providers", MappingProxyType(frozen))


@dataclass(frozen=True, kw_only=True)
class MCPConfig:
    """``bridge.mcp.server``: where the MCP server listens (``/mcp``, ``/sse``, ``/health``)."""

    addr: str = DEFAULT_MCP_ADDR
    token: str = field(default="", repr=False)
    """When set, requests need ``Authorization: Bearer <token>`` (beyond Go)."""
    call_timeout: float = DEFAULT_CALL_TIMEOUT

    def __post_init__(self) -> None:
        if not isinstance(self.call_timeout, (int, float)) or self.call_timeout <= 0:
            fail("MCPConfig", ("call_timeout",), "a positive number of seconds", self.call_timeout)

    @property
    def address(self) -> tuple[str, int]:
        """``addr`` as ``(host, port)``."""
        return parse_http_address(self.addr, what="bridge.mcp.server.addr")


@dataclass(frozen=True, kw_only=True)
class BridgeConfig:
    """``bridge:``; a part left out is not served."""

    ai: AIConfig | None = None
    mcp: MCPConfig | None = None


def _check_limits(server: AIServerConfig, source: str) -> None:
    for name in ("max_body_bytes", "max_concurrent_calls"):
        value = getattr(server, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(source, (name,), "a positive integer", value)
    for name in ("call_timeout", "request_timeout"):
        value = getattr(server, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            fail(source, (name,), "a positive number of seconds", value)


# -- parsing ---------------------------------------------------------------------------


def parse_bridge(
    value: object, source: str, marks: Mapping[ConfigPath, yaml.Mark]
) -> BridgeConfig | None:
    """Parse the ``bridge`` value of a config file; ``None`` when it is absent or empty."""
    path: ConfigPath = ("bridge",)
    if value is None:
        return None
    section = _mapping(value, source, path, marks, "a mapping with ai and/or mcp")
    warn_unknown(section, _BRIDGE_KEYS, source, path)
    ai = _parse_ai(section.get("ai"), source, marks) if "ai" in section else None
    mcp = _parse_mcp(section.get("mcp"), source, marks) if "mcp" in section else None
    if ai is None and mcp is None:
        return None
    return BridgeConfig(ai=ai, mcp=mcp)


# (strings, positive integers, durations) of each ``server`` section
_AI_SERVER = (
    ("addr", "provider", "token"),
    ("max_body_bytes", "max_concurrent_calls"),
    ("call_timeout", "request_timeout"),
)
_MCP_SERVER: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = (
    ("addr", "token"),
    (),
    ("call_timeout",),
)


def _parse_ai(value: object, source: str, marks: Mapping[ConfigPath, yaml.Mark]) -> AIConfig:
    section, options = _part(value, source, marks, "ai", _AI_KEYS, _AI_SERVER)
    spath: ConfigPath = ("bridge", "ai", "server")
    _check_addr(options.get("addr", DEFAULT_AI_ADDR), source, (*spath, "addr"), marks)
    ppath: ConfigPath = ("bridge", "ai", "providers")
    providers: dict[str, dict[str, str]] = {}
    raw = _mapping(section.get("providers"), source, ppath, marks, "a mapping of provider names")
    for name, settings in raw.items():
        npath: ConfigPath = (*ppath, str(name))
        entry = _mapping(settings, source, npath, marks, "a mapping of setting: value")
        providers[str(name)] = {
            str(k): _string(v, source, (*npath, str(k)), marks, True, scalar=True)
            for k, v in entry.items()
            if v is not None
        }
    provider = options.get("provider", "")
    if provider and provider not in providers:
        where = _where(marks, (*spath, "provider"))
        known = ", ".join(repr(p) for p in providers) or "none"
        raise ConfigError(
            f"{source}: bridge.ai.server.provider: {provider!r} is not under "
            f"bridge.ai.providers (configured: {known}){where}"
        )
    return AIConfig(server=AIServerConfig(**options), providers=providers)


def _parse_mcp(value: object, source: str, marks: Mapping[ConfigPath, yaml.Mark]) -> MCPConfig:
    _, options = _part(value, source, marks, "mcp", _MCP_KEYS, _MCP_SERVER)
    addr_path: ConfigPath = ("bridge", "mcp", "server", "addr")
    _check_addr(options.get("addr", DEFAULT_MCP_ADDR), source, addr_path, marks)
    return MCPConfig(**options)


def _part(
    value: object,
    source: str,
    marks: Mapping[ConfigPath, yaml.Mark],
    name: str,
    keys: tuple[str, ...],
    spec: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]],
) -> tuple[Mapping[Any, object], dict[str, Any]]:
    """``bridge.<name>`` as a mapping, and the keys of its ``server`` that are set, checked."""
    path: ConfigPath = ("bridge", name)
    section = _mapping(value, source, path, marks, f"a mapping with {' and '.join(keys)}")
    warn_unknown(section, keys, source, path)
    spath: ConfigPath = (*path, "server")
    server = _mapping(section.get("server"), source, spath, marks, "a mapping")
    strings, ints, durations = spec
    warn_unknown(server, strings + ints + durations, source, spath)
    options: dict[str, Any] = {}
    for key in strings:
        if server.get(key) not in (None, ""):
            options[key] = _string(server[key], source, (*spath, key), marks, key == "token")
    for key in ints:
        if server.get(key) is not None:
            options[key] = _positive_int(server[key], source, (*spath, key), marks)
    for key in durations:
        if server.get(key) is not None:
            options[key] = _duration(server[key], source, (*spath, key), marks)
    return section, options


def _where(marks: Mapping[ConfigPath, yaml.Mark], path: ConfigPath) -> str:
    mark = marks.get(path)
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""


def _mapping(
    value: object,
    source: str,
    path: ConfigPath,
    marks: Mapping[ConfigPath, yaml.Mark],
    expected: str,
) -> Mapping[Any, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        fail(source, path, expected, value, marks.get(path))
    return value


def _string(
    value: object,
    source: str,
    path: ConfigPath,
    marks: Mapping[ConfigPath, yaml.Mark],
    secret: bool = False,
    *,
    scalar: bool = False,
) -> str:
    # Go reads provider settings as map[string]string: any scalar becomes its text
    # (an api_version of 2024-02-01 is a date to PyYAML).
    if scalar and isinstance(value, bool):
        return "true" if value else "false"
    if scalar and isinstance(value, (int, float)):
        return str(value)
    if scalar and isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if not isinstance(value, str):
        fail(source, path, "a string", value, marks.get(path), secret=secret)
    return value


def _positive_int(
    value: object, source: str, path: ConfigPath, marks: Mapping[ConfigPath, yaml.Mark]
) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fail(source, path, "a positive integer", value, marks.get(path))
    return value


def _duration(
    value: object, source: str, path: ConfigPath, marks: Mapping[ConfigPath, yaml.Mark]
) -> float:
    """Seconds from a number or a Go-style duration (``"500ms"``, ``"90s"``, ``"2m"``)."""
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds is None or seconds <= 0:
        fail(
            source,
            path,
            'a positive duration (seconds, or "500ms", "90s", "2m")',
            value,
            marks.get(path),
        )
    return seconds


def _check_addr(
    addr: str, source: str, path: ConfigPath, marks: Mapping[ConfigPath, yaml.Mark]
) -> None:
    try:
        parse_http_address(addr, what=".".join(path))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}{_where(marks, path)}") from None
