"""Zipper config: the Go YAML format, every rejection, and the dataclasses' own checks."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import pytest

from yomo.errors import ConfigError, YomoError
from yomo.zipper.config import (
    DEFAULT_CONFIG,
    DEFAULT_PORT,
    AuthConfig,
    MeshPeer,
    ZipperConfig,
    load_config,
    parse_config,
)

FULL = """\
### general ###
name: zipper-sgp
host: 0.0.0.0
port: 9000

### auth ###
auth:
  type: token
  token: s3cret

### cascading mesh ###
mesh:
  zipper-sgp:
    host: 1.1.1.1
    port: 9000
    credential: "token: s3cret"
  zipper-aus:
    host: 2.2.2.2
    port: 9001
    credential: "token:other"
  zipper-usa:
    host: 3.3.3.3
    port: 9002
"""

MINIMAL = "name: z\nhost: 127.0.0.1\nport: 9000\n"


def write(tmp_path: Path, text: str, name: str = "zipper.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str, name: str = "zipper.yaml") -> str:
    path = write(tmp_path, text, name)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"yomo: {path}: "), message
    return message[len(f"yomo: {path}: ") :]


# -- valid files ---------------------------------------------------------------------------


def test_full_file_with_auth_and_mesh(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert config == ZipperConfig(
        name="zipper-sgp",
        host="0.0.0.0",
        port=9000,
        auth=AuthConfig(type="token", token="s3cret"),
        mesh=(
            MeshPeer(name="zipper-sgp", host="1.1.1.1", port=9000, credential="token: s3cret"),
            MeshPeer(name="zipper-aus", host="2.2.2.2", port=9001, credential="token:other"),
            MeshPeer(name="zipper-usa", host="3.3.3.3", port=9002),
        ),
    )


def test_minimal_file_and_yml_extension(tmp_path: Path) -> None:
    config = load_config(str(write(tmp_path, MINIMAL, "zipper.yml")))
    assert config == ZipperConfig(name="z", host="127.0.0.1", port=9000)
    assert config.auth is None and config.mesh == ()


def test_port_zero_means_any_free_port(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "name: z\nhost: ::1\nport: 0\n")).port == 0
    assert ZipperConfig(port=0).port == 0


def test_auth_none_and_empty_sections(tmp_path: Path) -> None:
    text = MINIMAL + "auth:\n  type: none\nmesh:\n"
    config = load_config(write(tmp_path, text))
    assert config.auth is None
    assert config.mesh == ()


def test_unknown_keys_warn_but_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = MINIMAL + (
        "bridge:\n  ai:\n    server:\n      addr: :8000\n"
        "colour: blue\n"
        "mesh:\n  zipper-usa:\n    host: 3.3.3.3\n    port: 9000\n    auth: 'token: x'\n"
    )
    with caplog.at_level(logging.WARNING, logger="yomo.zipper.config"):
        config = load_config(write(tmp_path, text))
    assert config.mesh == (MeshPeer(name="zipper-usa", host="3.3.3.3", port=9000),)
    warnings = "\n".join(r.getMessage() for r in caplog.records)
    assert "bridge" not in warnings
    assert config.bridge is not None and config.bridge.ai is not None
    assert "colour: unknown key, ignored" in warnings
    assert "mesh.zipper-usa.auth: unknown key, ignored" in warnings


def test_go_test_config_loads(tmp_path: Path) -> None:
    """The shape of Go's own test/config.yaml (bridge section, `auth` typo in mesh) loads."""
    text = FULL + "  zipper-deu:\n    host: 4.4.4.4\n    port: 9000\n    auth: 'token: x'\n"
    text += "bridge:\n  mcp:\n    server:\n      addr: :9090\n"
    config = load_config(write(tmp_path, text))
    assert [p.name for p in config.mesh] == ["zipper-sgp", "zipper-aus", "zipper-usa", "zipper-deu"]


def test_parse_config_from_dict() -> None:
    config = parse_config(
        {
            "name": "z",
            "host": "h",
            "port": 1,
            "auth": {"type": "token", "token": "t"},
            "mesh": {"b": {"host": "x", "port": 2}},
        }
    )
    assert config.auth == AuthConfig(type="token", token="t")
    assert config.mesh == (MeshPeer(name="b", host="x", port=2),)


def test_default_config() -> None:
    assert DEFAULT_CONFIG == ZipperConfig(name="zipper", host="127.0.0.1", port=9000, auth=None)
    assert DEFAULT_PORT == 9000


def test_configs_are_frozen_and_keyword_only() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_CONFIG.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        ZipperConfig("z")  # type: ignore[misc]
    assert dataclasses.replace(DEFAULT_CONFIG, port=0).port == 0


def test_secrets_stay_out_of_repr() -> None:
    text = repr(
        ZipperConfig(
            auth=AuthConfig(type="token", token="s3cret"),
            mesh=(MeshPeer(name="p", host="h", port=1, credential="token:hunter2"),),
        )
    )
    assert "s3cret" not in text and "hunter2" not in text


# -- file level errors ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["zipper.json", "zipper.yoml", "zipper", "zipper.YAML"])
def test_rejects_wrong_extension(tmp_path: Path, name: str) -> None:
    message = error_of(tmp_path, MINIMAL, name)
    assert message == 'the extension of the config file must be ".yaml" or ".yml"'


def test_rejects_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read the file: No such file"):
        load_config(path)


def test_rejects_directory(tmp_path: Path) -> None:
    path = tmp_path / "dir.yaml"
    path.mkdir()
    with pytest.raises(ConfigError, match=r"dir\.yaml: cannot read the file"):
        load_config(path)


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    message = error_of(tmp_path, "name: z\nhost: [1, 2\nport: 9000\n")
    assert message.startswith("invalid YAML: ")
    assert re.search(r"\(line \d+, column \d+\)$", message), message


def test_invalid_yaml_bad_indentation(tmp_path: Path) -> None:
    message = error_of(tmp_path, "name: z\n host: h\nport: 1\n")
    assert message == "invalid YAML: mapping values are not allowed here (line 2, column 6)"


def test_invalid_yaml_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "zipper.yaml"
    path.write_bytes(b"name: \xff\xfe\xfa\n")
    with pytest.raises(
        ConfigError, match=r"invalid YAML: not UTF-8 or UTF-16 text \(.* at byte 6\)$"
    ):
        load_config(path)


def test_rejects_unsafe_tags(tmp_path: Path) -> None:
    message = error_of(tmp_path, "name: !!python/object/apply:os.getcwd []\nhost: h\nport: 1\n")
    assert message.startswith("invalid YAML: could not determine a constructor")


def test_rejects_duplicate_keys(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "port: 9001\n")
    assert message == "port: defined twice, at line 3 and line 4"


def test_rejects_two_documents(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "---\n" + MINIMAL)
    assert message.startswith("invalid YAML: ")


def test_empty_file_misses_name(tmp_path: Path) -> None:
    assert error_of(tmp_path, "") == "name: missing; expected a non-empty string"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    message = error_of(tmp_path, "- name: z\n")
    assert message == (
        "(top level): expected a mapping with name, host and port, got a list (line 1, column 1)"
    )


# -- field errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("host: h\nport: 1\n", "name: missing; expected a non-empty string"),
        ("name: z\nport: 1\n", "host: missing; expected a non-empty string"),
        ("name: z\nhost: h\n", "port: missing; expected an integer 0..65535"),
        (
            "name: ''\nhost: h\nport: 1\n",
            "name: expected a non-empty string, got '' (line 1, column 7)",
        ),
        (
            "name: [a]\nhost: h\nport: 1\n",
            "name: expected a non-empty string, got a list (line 1, column 7)",
        ),
        (
            "name: z\nhost: 12\nport: 1\n",
            "host: expected a non-empty string, got 12 (line 2, column 7)",
        ),
        (
            "name: z\nhost: h\nport: abc\n",
            "port: expected an integer 0..65535, got 'abc' (line 3, column 7)",
        ),
        (
            "name: z\nhost: h\nport: '9000'\n",
            "port: expected an integer 0..65535, got '9000' (line 3, column 7)",
        ),
        (
            "name: z\nhost: h\nport: 65536\n",
            "port: expected an integer 0..65535, got 65536 (line 3, column 7)",
        ),
        (
            "name: z\nhost: h\nport: -1\n",
            "port: expected an integer 0..65535, got -1 (line 3, column 7)",
        ),
        (
            "name: z\nhost: h\nport: true\n",
            "port: expected an integer 0..65535, got true (line 3, column 7)",
        ),
        (
            "name: z\nhost: h\nport: 90.5\n",
            "port: expected an integer 0..65535, got 90.5 (line 3, column 7)",
        ),
        (
            "name: z\nhost: h\nport:\n",
            "port: expected an integer 0..65535, got null (line 3, column 6)",
        ),
    ],
)
def test_top_level_field_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert error_of(tmp_path, text) == expected


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            "auth: token\n",
            "auth: expected a mapping with type and token, got 'token' (line 4, column 7)",
        ),
        ("auth:\n  token: t\n", "auth.type: missing; expected one of 'none', 'token'"),
        (
            "auth:\n  type: jwt\n  token: t\n",
            "auth.type: expected one of 'none', 'token', got 'jwt' (line 5, column 9)",
        ),
        (
            "auth:\n  type: token\n",
            "auth.token: expected a non-empty token when auth.type is 'token', got an empty string",
        ),
        (
            "auth:\n  type: token\n  token: ''\n",
            "auth.token: expected a non-empty token when auth.type is 'token', got an empty string"
            " (line 6, column 10)",
        ),
        (
            "auth:\n  type: token\n  token: 12345\n",
            "auth.token: expected a string, got a value of type int (line 6, column 10)",
        ),
    ],
)
def test_auth_errors(tmp_path: Path, auth: str, expected: str) -> None:
    assert error_of(tmp_path, MINIMAL + auth) == expected


@pytest.mark.parametrize(
    ("mesh", "expected"),
    [
        (
            "mesh: [a, b]\n",
            "mesh: expected a mapping of peer name to host/port, got a list (line 4, column 7)",
        ),
        (
            "mesh:\n  zipper-aus: 2.2.2.2\n",
            "mesh.zipper-aus: expected a mapping with host and port, got '2.2.2.2'"
            " (line 5, column 15)",
        ),
        ("mesh:\n  zipper-aus:\n", "mesh.zipper-aus.host: missing; expected a non-empty string"),
        (
            "mesh:\n  zipper-aus:\n    host: h\n",
            "mesh.zipper-aus.port: missing; expected an integer 1..65535",
        ),
        (
            "mesh:\n  zipper-aus:\n    host: h\n    port: abc\n",
            "mesh.zipper-aus.port: expected an integer 1..65535, got 'abc' (line 7, column 11)",
        ),
        (
            "mesh:\n  zipper-aus:\n    host: h\n    port: 0\n",
            "mesh.zipper-aus.port: expected an integer 1..65535, got 0 (line 7, column 11)",
        ),
        (
            "mesh:\n  zipper-aus:\n    host: ''\n    port: 1\n",
            "mesh.zipper-aus.host: expected a non-empty string, got '' (line 6, column 11)",
        ),
        (
            "mesh:\n  zipper-aus:\n    host: h\n    port: 1\n    credential: [x]\n",
            "mesh.zipper-aus.credential: expected a string, got a list (line 8, column 17)",
        ),
        (
            "mesh:\n  7:\n    host: h\n    port: 1\n",
            "mesh.7: expected a non-empty peer name, got 7 (line 6, column 5)",
        ),
    ],
)
def test_mesh_errors(tmp_path: Path, mesh: str, expected: str) -> None:
    assert error_of(tmp_path, MINIMAL + mesh) == expected


def test_error_is_a_yomo_error_and_value_error(tmp_path: Path) -> None:
    with pytest.raises(YomoError):
        load_config(write(tmp_path, "name: z\n"))
    with pytest.raises(ValueError):
        load_config(write(tmp_path, "name: z\n"))


# -- the Python API ------------------------------------------------------------------------


def test_parse_config_errors_name_the_source() -> None:
    with pytest.raises(ConfigError, match=r"^yomo: <dict>: port: missing"):
        parse_config({"name": "z", "host": "h"})
    with pytest.raises(ConfigError, match=r"^yomo: env: mesh\.a\.port: expected an integer 1"):
        parse_config(
            {"name": "z", "host": "h", "port": 1, "mesh": {"a": {"host": "h", "port": 0}}}, "env"
        )
    with pytest.raises(ConfigError, match=r"^yomo: <dict>: \(top level\): expected a mapping"):
        parse_config([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda: ZipperConfig(port=70000),
            "ZipperConfig: port: expected an integer 0..65535, got 70000",
        ),
        (
            lambda: ZipperConfig(port=True),
            "ZipperConfig: port: expected an integer 0..65535, got true",
        ),
        (lambda: ZipperConfig(name=""), "ZipperConfig: name: expected a non-empty string, got ''"),
        (
            lambda: ZipperConfig(host=None),
            "ZipperConfig: host: expected a non-empty string, got null",
        ),
        (
            lambda: AuthConfig(type="jwt"),
            "AuthConfig: type: expected one of 'none', 'token', got 'jwt'",
        ),
        (lambda: AuthConfig(type="token"), "AuthConfig: token: expected a non-empty token"),
        (
            lambda: MeshPeer(name="p", host="h", port=0),
            "MeshPeer: port: expected an integer 1..65535, got 0",
        ),
        (
            lambda: ZipperConfig(mesh=[MeshPeer(name="p", host="h", port=1)]),
            "ZipperConfig: mesh: expected a tuple of MeshPeer, got a list",
        ),
        (
            lambda: ZipperConfig(
                mesh=(MeshPeer(name="p", host="h", port=1), MeshPeer(name="p", host="i", port=2))
            ),
            "ZipperConfig: mesh.p: the peer name is used twice",
        ),
        (
            lambda: ZipperConfig(auth={"type": "none"}),
            "ZipperConfig: auth: expected an AuthConfig or None",
        ),
    ],
)
def test_dataclasses_validate(make: object, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()  # type: ignore[operator]
    assert str(info.value).startswith("yomo: " + expected), str(info.value)


# -- typos and the monitor key -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("auht:\n  type: token\n  token: s3cret\n", "auht: unknown key, did you mean 'auth'?"),
        ("Auth:\n  type: token\n  token: s3cret\n", "Auth: unknown key, did you mean 'auth'?"),
        (
            "auth:\n  type: token\n  tokne: s3cret\n",
            "auth.tokne: unknown key, did you mean 'auth.token'?",
        ),
        (
            "auth:\n  tpye: token\n  token: s3cret\n",
            "auth.tpye: unknown key, did you mean 'auth.type'?",
        ),
        (
            "mesh:\n  b:\n    host: h\n    port: 1\n    credentail: x\n",
            "mesh.b.credentail: unknown key, did you mean 'mesh.b.credential'?",
        ),
        ("mehs:\n  b:\n    host: h\n    port: 1\n", "mehs: unknown key, did you mean 'mesh'?"),
        ("monitr: 127.0.0.1:8222\n", "monitr: unknown key, did you mean 'monitor'?"),
    ],
)
def test_a_key_close_to_a_known_one_is_an_error(tmp_path: Path, text: str, expected: str) -> None:
    # A typo in auth: must never start a zipper without auth.
    assert error_of(tmp_path, MINIMAL + text) == expected


def test_a_typo_of_a_required_key_says_did_you_mean(tmp_path: Path) -> None:
    assert error_of(tmp_path, "name: z\nhots: 127.0.0.1\nport: 9000\n") == (
        "hots: unknown key, did you mean 'host'?"
    )


def test_monitor_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "monitor: 127.0.0.1:8222\n"))
    assert config.monitor == "127.0.0.1:8222"
    assert load_config(write(tmp_path, MINIMAL)).monitor is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8222", "monitor: expected HOST:PORT (e.g. 127.0.0.1:8222), got '8222'"),
        ("h:99999", "monitor: port 99999 is out of range 0..65535"),
        ("[1", "monitor: expected HOST:PORT (e.g. 127.0.0.1:8222), got '[1'"),
    ],
)
def test_monitor_key_errors(tmp_path: Path, value: str, expected: str) -> None:
    assert error_of(tmp_path, MINIMAL + f"monitor: '{value}'\n") == expected


def test_monitor_key_must_be_text(tmp_path: Path) -> None:
    assert error_of(tmp_path, MINIMAL + "monitor: 8222\n").startswith(
        "monitor: expected HOST:PORT, e.g. 127.0.0.1:8222, got 8222"
    )
