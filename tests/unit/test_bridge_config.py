"""The bridge: section of zipper.yaml (Go: pkg/bridge/ai/config.go, pkg/bridge/mcp/config.go)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from yomo.errors import ConfigError
from yomo.zipper.bridge_config import (
    DEFAULT_CALL_TIMEOUT,
    AIConfig,
    AIServerConfig,
    BridgeConfig,
    MCPConfig,
)
from yomo.zipper.config import load_config

MINIMAL = "name: z\nhost: 127.0.0.1\nport: 9000\n"


def load(tmp_path: Path, text: str) -> BridgeConfig | None:
    path = tmp_path / "zipper.yaml"
    path.write_text(MINIMAL + text)
    return load_config(path).bridge


def test_no_bridge_section(tmp_path: Path) -> None:
    assert load(tmp_path, "") is None
    assert load(tmp_path, "bridge:\n") is None


def test_gos_defaults(tmp_path: Path) -> None:
    bridge = load(tmp_path, "bridge:\n  ai:\n    server:\n  mcp:\n")
    assert bridge == BridgeConfig(ai=AIConfig(), mcp=MCPConfig())
    assert bridge.ai is not None and bridge.mcp is not None
    assert bridge.ai.server.addr == ":8000" and bridge.mcp.addr == ":9090"
    assert bridge.ai.server.address == ("127.0.0.1", 8000)
    assert bridge.ai.server.call_timeout == DEFAULT_CALL_TIMEOUT == 60.0
    assert bridge.ai.server.request_timeout == 360.0


def test_gos_example_with_providers(tmp_path: Path) -> None:
    bridge = load(
        tmp_path,
        "bridge:\n"
        "  ai:\n"
        "    server:\n"
        "      addr: 0.0.0.0:8000\n"
        "      provider: vllm\n"
        "    providers:\n"
        "      vllm:\n"
        "        api_endpoint: http://127.0.0.1:9999/v1\n"
        "        model: llama\n"
        "      azopenai:\n"
        "        api_key: k\n"
        "        api_version: 2024-02-01\n"
        "        deployment_id: 1234\n"
        "  mcp:\n"
        "    server:\n"
        "      addr: localhost:9191\n",
    )
    assert bridge is not None and bridge.ai is not None and bridge.mcp is not None
    assert bridge.ai.server.address == ("0.0.0.0", 8000)
    assert bridge.ai.server.provider == "vllm"
    assert dict(bridge.ai.providers["vllm"]) == {
        "api_endpoint": "http://127.0.0.1:9999/v1",
        "model": "llama",
    }
    # Go reads provider settings as strings: numbers keep their text
    assert bridge.ai.providers["azopenai"]["deployment_id"] == "1234"
    assert bridge.mcp.address == ("localhost", 9191)


def test_limits_and_token(tmp_path: Path) -> None:
    bridge = load(
        tmp_path,
        "bridge:\n  ai:\n    server:\n      token: s3cret\n      max_body_bytes: 1000\n"
        "      max_concurrent_calls: 7\n      call_timeout: 500ms\n      request_timeout: 2m\n"
        "  mcp:\n    server:\n      token: other\n      call_timeout: 3\n",
    )
    assert bridge is not None and bridge.ai is not None and bridge.mcp is not None
    server = bridge.ai.server
    assert (server.token, server.max_body_bytes, server.max_concurrent_calls) == ("s3cret", 1000, 7)
    assert (server.call_timeout, server.request_timeout) == (0.5, 120.0)
    assert "s3cret" not in repr(bridge)
    assert (bridge.mcp.token, bridge.mcp.call_timeout) == ("other", 3.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bridge: 3\n", "bridge: expected a mapping with ai and/or mcp, got 3"),
        (
            "bridge:\n  ai:\n    server:\n      addr: 8000\n",
            "bridge.ai.server.addr: expected a string, got 8000",
        ),
        (
            "bridge:\n  ai:\n    server:\n      addr: localhost\n",
            "bridge.ai.server.addr: expected HOST:PORT",
        ),
        (
            "bridge:\n  ai:\n    server:\n      call_timeout: soon\n",
            "bridge.ai.server.call_timeout: expected a positive duration",
        ),
        (
            "bridge:\n  ai:\n    server:\n      max_concurrent_calls: 0\n",
            "bridge.ai.server.max_concurrent_calls: expected a positive integer, got 0",
        ),
        (
            "bridge:\n  ai:\n    server:\n      provider: openai\n    providers:\n      vllm: {}\n",
            "bridge.ai.server.provider: 'openai' is not under bridge.ai.providers "
            "(configured: 'vllm')",
        ),
        (
            "bridge:\n  ai:\n    providers:\n      openai: [1]\n",
            "bridge.ai.providers.openai: expected a mapping of setting: value, got a list",
        ),
    ],
)
def test_bad_values_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"zipper\.yaml: ") as info:
        load(tmp_path, text)
    assert message in str(info.value)


def test_unknown_keys_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="yomo.zipper.config"):
        load(tmp_path, "bridge:\n  ai:\n    server:\n      colour: red\n  other: 1\n")
    text = caplog.text
    assert "bridge.ai.server.colour: unknown key, ignored" in text
    assert "bridge.other: unknown key, ignored" in text


def test_dataclass_checks() -> None:
    with pytest.raises(ConfigError, match="call_timeout"):
        AIServerConfig(call_timeout=0)
    with pytest.raises(ConfigError, match="call_timeout"):
        MCPConfig(call_timeout=-1)
    frozen = AIConfig(providers={"x": {"a": "b"}})
    with pytest.raises(TypeError):
        frozen.providers["x"]["a"] = "c"  # type: ignore[index]
