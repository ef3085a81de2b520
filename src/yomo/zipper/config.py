"""Zipper configuration: frozen dataclasses and a loader for Go YoMo's ``zipper.yaml``.

The file format is Go's (docs/protocol.md section 8, Go: pkg/config/config.go)::

    name: zipper-sgp          # required
    host: 0.0.0.0             # required
    port: 9000                # required; 0 picks a free port
    auth:                     # optional
      type: token             # "token" or "none"
      token: <CREDENTIAL>
    mesh:                     # optional: peer name -> where to reach it
      zipper-aus:
        host: 10.0.0.2
        port: 9000
        credential: "token:<CREDENTIAL>"
    monitor: 127.0.0.1:8222   # optional, ours: the HTTP monitor endpoint (docs/monitor.md)

Where this loader differs from Go, it is stricter and says so in words:

- Go reads a missing field and a zero value alike; here ``port: 0`` means "pick a
  free port" (the zipper reports the real one) and a missing ``port`` is an error.
- Go turns any ``auth`` block with a ``type`` into token auth; here ``type`` must
  be ``token`` (with a non-empty ``token``) or ``none``.
- Go ignores keys it does not know; so do we, with a logged warning naming each
  one, except a key close to a known one (``auht``, ``tokne``, ``prot``): that is
  an error with "did you mean", because a typo in ``auth:`` must never start a
  zipper without authentication. ``bridge`` (the AI bridge and MCP server) is read
  by ``yomo.zipper.bridge_config``; ``monitor`` (ours) is the monitor endpoint.
- Mesh peers need a ``host`` and a ``port`` in 1..65535 (Go finds out on dial).

Every problem raises :class:`yomo.errors.ConfigError` with a message such as
``yomo: zipper.yaml: mesh.zipper-aus.port: expected an integer 1..65535, got 'abc'
(line 9, column 11)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from yomo.errors import ConfigError

from ._config_checks import (
    ConfigPath,
    check_host,
    check_monitor,
    check_name,
    check_port,
    check_str,
    dotted,
    fail,
    load_yaml,
    warn_unknown,
)

if TYPE_CHECKING:
    from .bridge_config import BridgeConfig

__all__ = [
    "AUTH_TYPES",
    "DEFAULT_AUTH_TYPE",
    "DEFAULT_CONFIG",
    "DEFAULT_HOST",
    "DEFAULT_NAME",
    "DEFAULT_PORT",
    "AuthConfig",
    "MeshPeer",
    "ZipperConfig",
    "load_config",
    "parse_config",
]

logger = logging.getLogger(__name__)

#: Name of a zipper started without a config file (Go: cli/template/example/zipper.tmpl).
DEFAULT_NAME = "zipper"
#: Listening host without a config file. Go's template binds 0.0.0.0; we stay on
#: loopback unless told otherwise (Go: core/server.go ParseZipperAddr uses localhost).
DEFAULT_HOST = "127.0.0.1"
#: The YoMo port (Go: core/server.go ParseZipperAddr, cli/run.go "localhost:9000").
DEFAULT_PORT = 9000
#: No authentication unless configured (Go: zipper.go RunZipper adds auth only if asked).
DEFAULT_AUTH_TYPE = "none"
#: The auth types a zipper understands (Go: pkg/auth/token.go registers "token").
AUTH_TYPES = ("none", "token")

_CONFIG_EXTENSIONS = (".yaml", ".yml")  # Go: pkg/config/config.go ErrConfigExt
_TOP_LEVEL_KEYS = ("name", "host", "port", "auth", "mesh", "bridge", "monitor")
_AUTH_KEYS = ("type", "token")
_MESH_KEYS = ("host", "port", "credential")


@dataclass(frozen=True, kw_only=True)
class AuthConfig:
    """How sources, stream functions and upstream zippers must authenticate."""

    type: str = DEFAULT_AUTH_TYPE
    """``"token"`` (clients present ``token:<token>``) or ``"none"`` (anyone may connect)."""

    token: str = field(default="", repr=False)
    """The shared secret for ``type="token"``; must be non-empty then. Kept out of ``repr``."""

    def __post_init__(self) -> None:
        _check_auth(self.type, self.token, source="AuthConfig", path=())


@dataclass(frozen=True, kw_only=True)
class MeshPeer:
    """Another zipper that this one forwards data to (Go: pkg/config/config.go Mesh).

    A zipper skips a peer whose name equals its own, so one mesh section can be
    shared by every zipper of the mesh (Go: zipper.go NewZipper).
    """

    name: str
    """The peer's name, the key under ``mesh:`` in the file."""

    host: str
    """Host name or IP address to dial."""

    port: int
    """UDP port to dial, 1..65535."""

    credential: str = field(default="", repr=False)
    """What to present to the peer, ``"authType:payload"`` (e.g. ``"token:s3cret"``);
    empty when the peer does not authenticate. Kept out of ``repr``."""

    def __post_init__(self) -> None:
        check_name(self.name, source="MeshPeer", path=("name",))
        check_host(self.host, source="MeshPeer", path=("host",))
        check_port(self.port, source="MeshPeer", path=("port",), allow_zero=False)
        check_str(self.credential, source="MeshPeer", path=("credential",), secret=True)


@dataclass(frozen=True, kw_only=True)
class ZipperConfig:
    """Everything a zipper needs to start. Derive variants with :func:`dataclasses.replace`."""

    name: str = DEFAULT_NAME
    """The zipper's name; it is sent to peers and shows in logs."""

    host: str = DEFAULT_HOST
    """The address to listen on, e.g. ``"0.0.0.0"`` or ``"::"`` for every interface."""

    port: int = DEFAULT_PORT
    """UDP port to listen on, 0..65535; 0 picks a free port (see ``Zipper.address``)."""

    auth: AuthConfig | None = None
    """Client authentication; ``None`` (like ``AuthConfig(type="none")``) admits everyone."""

    mesh: tuple[MeshPeer, ...] = ()
    """Peer zippers, each with a distinct name."""

    bridge: BridgeConfig | None = None
    """The AI bridge and/or MCP server to serve (``yomo.zipper.bridge_config``)."""

    monitor: str | None = None
    """``HOST:PORT`` of the HTTP monitor endpoint (health, metrics, live page); ``None``: off."""

    def __post_init__(self) -> None:
        source = "ZipperConfig"
        if self.monitor is not None:
            check_monitor(self.monitor, source=source)
        check_name(self.name, source=source, path=("name",))
        check_host(self.host, source=source, path=("host",))
        check_port(self.port, source=source, path=("port",), allow_zero=True)
        if self.auth is not None and not isinstance(self.auth, AuthConfig):
            fail(source, ("auth",), "an AuthConfig or None", self.auth)
        if not isinstance(self.mesh, tuple):
            fail(source, ("mesh",), "a tuple of MeshPeer", self.mesh)
        seen: set[str] = set()
        for peer in self.mesh:
            if not isinstance(peer, MeshPeer):
                fail(source, ("mesh",), "a tuple of MeshPeer", peer)
            if peer.name in seen:
                raise ConfigError(f"{source}: mesh.{peer.name}: the peer name is used twice")
            seen.add(peer.name)


def load_config(path: str | os.PathLike[str]) -> ZipperConfig:
    """Read a Go-format zipper config file (Go: pkg/config/config.go ParseConfigFile).

    Args:
        path: A ``.yaml`` or ``.yml`` file (the extension is checked like Go does,
            case-sensitively).

    Returns:
        The validated configuration.

    Raises:
        ConfigError: wrong extension, unreadable file, invalid YAML, or a field that
            is missing, of the wrong type or out of range. The message names the
            file, the field path and what was expected. Unknown keys only log a
            warning on the ``yomo.zipper.config`` logger.
    """
    source = os.fspath(path)
    if os.path.splitext(source)[1] not in _CONFIG_EXTENSIONS:
        raise ConfigError(f'{source}: the extension of the config file must be ".yaml" or ".yml"')
    try:
        with open(source, "rb") as f:
            raw = f.read()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise ConfigError(f"{source}: cannot read the file: {reason}") from exc
    data, marks = load_yaml(raw, source)
    if data is None:  # an empty file, like Go, is a config without fields
        data = {}
    if not isinstance(data, Mapping):
        fail(source, (), "a mapping with name, host and port", data, marks.get(()))
    return _parse(data, source, marks, from_file=True)


def parse_config(data: Mapping[str, object], source: str = "<dict>") -> ZipperConfig:
    """Build a :class:`ZipperConfig` from an already parsed mapping, e.g. ``yaml.safe_load``.

    Args:
        data: The same structure as the file; ``name``, ``host`` and ``port`` are
            required.
        source: What to call the input in error messages.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: as :func:`load_config`, minus the file checks.
    """
    if not isinstance(data, Mapping):
        fail(source, (), "a mapping with name, host and port", data)
    return _parse(data, source, {}, from_file=False)


# -- parsing -------------------------------------------------------------------------------


def _parse(
    data: Mapping[Any, object],
    source: str,
    marks: Mapping[ConfigPath, yaml.Mark],
    *,
    from_file: bool,
) -> ZipperConfig:
    warn_unknown(data, _TOP_LEVEL_KEYS, source, ())
    values: dict[str, object] = {}
    for key in ("name", "host", "port"):
        if key not in data:
            expected = "an integer 0..65535" if key == "port" else "a non-empty string"
            raise ConfigError(f"{source}: {key}: missing; expected {expected}")
        values[key] = data[key]
    name = check_name(values["name"], source=source, path=("name",), marks=marks)
    host = check_host(values["host"], source=source, path=("host",), marks=marks)
    port = check_port(values["port"], source=source, path=("port",), allow_zero=True, marks=marks)
    auth = _parse_auth(data.get("auth"), source, marks)
    mesh = _parse_mesh(data.get("mesh"), source, marks)
    from .bridge_config import parse_bridge

    bridge = parse_bridge(data.get("bridge"), source, marks)
    monitor = data.get("monitor")
    if monitor is not None:
        check_monitor(monitor, source=source, marks=marks)
        assert isinstance(monitor, str)  # checked above
    config = ZipperConfig(
        name=name, host=host, port=port, auth=auth, mesh=mesh, bridge=bridge, monitor=monitor
    )
    if from_file:
        logger.debug("loaded zipper config from %s: %r", source, config)
    return config


def _parse_auth(
    value: object, source: str, marks: Mapping[ConfigPath, yaml.Mark]
) -> AuthConfig | None:
    path: ConfigPath = ("auth",)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        fail(source, path, "a mapping with type and token", value, marks.get(path))
    warn_unknown(value, _AUTH_KEYS, source, path)
    if "type" not in value:
        raise ConfigError(f"{source}: auth.type: missing; expected one of {_auth_types()}")
    auth_type = value["type"]
    token = value.get("token", "")
    _check_auth(auth_type, token, source=source, path=path, marks=marks)
    assert isinstance(auth_type, str) and isinstance(token, str)  # checked above
    if auth_type == "none":
        if token:
            logger.warning("%s: auth.token is ignored because auth.type is 'none'", source)
        return None
    return AuthConfig(type=auth_type, token=token)


def _parse_mesh(
    value: object, source: str, marks: Mapping[ConfigPath, yaml.Mark]
) -> tuple[MeshPeer, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        fail(source, ("mesh",), "a mapping of peer name to host/port", value, marks.get(("mesh",)))
    peers = []
    for name, entry in value.items():
        key_path: ConfigPath = ("mesh", str(name))
        if not isinstance(name, str) or not name:
            fail(source, key_path, "a non-empty peer name", name, marks.get(key_path))
        if entry is None:
            entry = {}
        if not isinstance(entry, Mapping):
            fail(source, key_path, "a mapping with host and port", entry, marks.get(key_path))
        warn_unknown(entry, _MESH_KEYS, source, key_path)
        for required in ("host", "port"):
            if required not in entry:
                expected = "an integer 1..65535" if required == "port" else "a non-empty string"
                raise ConfigError(
                    f"{source}: {dotted((*key_path, required))}: missing; expected {expected}"
                )
        host = check_host(entry["host"], source=source, path=(*key_path, "host"), marks=marks)
        port = check_port(
            entry["port"], source=source, path=(*key_path, "port"), allow_zero=False, marks=marks
        )
        credential = check_str(
            entry.get("credential", ""),
            source=source,
            path=(*key_path, "credential"),
            secret=True,
            marks=marks,
        )
        peers.append(MeshPeer(name=name, host=host, port=port, credential=credential))
    return tuple(peers)


# -- the auth check, shared by the file loader and the dataclasses ------------------------


def _check_auth(
    auth_type: object,
    token: object,
    *,
    source: str,
    path: ConfigPath,
    marks: Mapping[ConfigPath, yaml.Mark] | None = None,
) -> None:
    type_path = (*path, "type")
    token_path = (*path, "token")
    if not isinstance(auth_type, str) or auth_type not in AUTH_TYPES:
        mark = marks.get(type_path) if marks else None
        fail(source, type_path, f"one of {_auth_types()}", auth_type, mark)
    token = check_str(token, source=source, path=token_path, secret=True, marks=marks)
    if auth_type == "token" and not token:
        mark = marks.get(token_path) if marks else None
        fail(
            source,
            token_path,
            "a non-empty token when auth.type is 'token'",
            token,
            mark,
            secret=True,
        )


def _auth_types() -> str:
    return ", ".join(repr(t) for t in AUTH_TYPES)


#: The config ``yomo serve`` uses without ``-c``: "zipper" on 127.0.0.1:9000, no auth.
DEFAULT_CONFIG = ZipperConfig()
