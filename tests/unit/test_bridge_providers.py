"""Providers by name with Go's settings, defaults and environment fallbacks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from yomo.bridge.anthropic import AnthropicProvider, to_messages_request
from yomo.bridge.openai_compat import OpenAICompatible
from yomo.bridge.providers import PROVIDER_NAMES, build_provider
from yomo.errors import ConfigError

GO_PROVIDERS = {
    "openai",
    "azopenai",
    "azaifoundry",
    "cloudflare_azure",
    "cloudflare_openai",
    "ollama",
    "vllm",
    "deepseek",
    "xai",
    "cerebras",
    "githubmodels",
    "gemini",
    "anthropic",
    "vertexai",
}


def test_every_go_provider_has_a_name() -> None:
    assert set(PROVIDER_NAMES) == GO_PROVIDERS


def test_unknown_provider_uses_gos_text() -> None:
    with pytest.raises(ConfigError, match="unknown provider: huggingface"):
        build_provider("huggingface", {})


@pytest.mark.parametrize(
    ("name", "settings", "base", "model", "rule"),
    [
        ("vllm", {}, "http://127.0.0.1:8000", "meta-llama/Llama-3.2-7B-Instruct", "default"),
        ("ollama", {}, "http://localhost:11434/v1/", "", "default"),
        ("deepseek", {"api_key": "k"}, "https://api.deepseek.com/v1/", "deepseek-chat", "default"),
        ("xai", {}, "https://api.x.ai/v1/", "grok-beta", "default"),
        ("cerebras", {}, "https://api.cerebras.ai/v1/", "llama3.1-8b", "default"),
        (
            "githubmodels",
            {"model": "gpt-4o"},
            "https://models.inference.ai.azure.com",
            "gpt-4o",
            "override",
        ),
        (
            "gemini",
            {},
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            "gemini-2.0-flash",
            "default",
        ),
        (
            "cloudflare_openai",
            {"endpoint": "https://gw/acc/gw", "model": "m"},
            "https://gw/acc/gw/openai/",
            "m",
            "fixed",
        ),
        (
            "azaifoundry",
            {"api_endpoint": "https://x.ai.azure.com", "model": "m"},
            "https://x.ai.azure.com/models/",
            "m",
            "fixed",
        ),
    ],
)
def test_openai_compatible_defaults(
    name: str, settings: dict[str, str], base: str, model: str, rule: str, monkeypatch: Any
) -> None:
    for var in ("OLLAMA_API_ENDPOINT", "OLLAMA_MODEL", "CEREBRAS_MODEL", "OPENAI_MODEL"):
        monkeypatch.delenv(var, raising=False)
    provider = build_provider(name, settings)
    assert isinstance(provider, OpenAICompatible)
    assert provider.name == name
    assert provider.base_url.rstrip("/") == base.rstrip("/")
    assert (provider.model, provider.model_rule) == (model, rule)


def test_environment_fallbacks(monkeypatch: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    provider = build_provider("openai", {})
    assert isinstance(provider, OpenAICompatible)
    assert provider.client.api_key == "env-key" and provider.model == "env-model"
    assert provider.base_url.startswith("http://127.0.0.1:1/v1")
    monkeypatch.setenv("OLLAMA_API_ENDPOINT", "http://127.0.0.1:2/v1")
    assert build_provider("ollama", {}).base_url.startswith("http://127.0.0.1:2/v1")  # type: ignore[attr-defined]


def test_model_rules() -> None:
    def prepared(rule: str, request_model: str) -> str:
        provider = OpenAICompatible(
            "p",
            base_url="http://127.0.0.1:1",
            api_key="",
            model="mine",
            model_rule=rule,  # type: ignore[arg-type]
        )
        return str(provider.prepare({"model": request_model, "messages": []}).get("model"))

    assert prepared("override", "theirs") == "mine"
    assert prepared("fixed", "theirs") == "mine"
    assert prepared("default", "theirs") == "theirs"
    assert prepared("default", "") == "mine"


@pytest.mark.parametrize(
    ("name", "settings", "missing"),
    [
        ("cloudflare_azure", {"endpoint": "e"}, "api_key, resource, deployment_id are required"),
        ("azopenai", {"api_endpoint": "https://x"}, "deployment_id is required"),
        ("vertexai", {"location": "us"}, "project_id required"),
    ],
)
def test_required_settings(
    name: str, settings: dict[str, str], missing: str, monkeypatch: Any
) -> None:
    for var in ("AZURE_OPENAI_DEPLOYMENT_ID", "AZURE_OPENAI_API_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match=missing):
        build_provider(name, settings)


def test_vertexai_without_credentials_says_so(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="cannot load Google credentials from"):
        build_provider(
            "vertexai",
            {
                "project_id": "p",
                "location": "us-central1",
                "credentials_file": str(tmp_path / "no.json"),
            },
        )


def test_anthropic_request_conversion() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"c":"x"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "w", "description": "d", "parameters": {"type": "object"}},
            }
        ],
        "stop": "END",
    }
    params = to_messages_request(body, "claude-x")
    assert params["model"] == "claude-x" and params["max_tokens"] == 2048
    assert params["system"] == [{"type": "text", "text": "be brief"}]
    assert params["messages"] == [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "w", "input": {"c": "x"}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}],
        },
    ]
    assert params["tools"] == [
        {"name": "w", "description": "d", "input_schema": {"type": "object"}}
    ]
    assert params["stop_sequences"] == ["END"]
    assert "temperature" not in params
    json.dumps(params)


def test_anthropic_defaults(monkeypatch: Any) -> None:
    monkeypatch.delenv("ANTHROPIC_MODEL", raising=False)
    provider = build_provider("anthropic", {"api_key": "k"})
    assert isinstance(provider, AnthropicProvider)
    assert provider.model == "claude-3-7-sonnet-latest"


def test_missing_sdk_says_which_extra(monkeypatch: Any) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "openai", None)  # as if not installed
    with pytest.raises(
        ConfigError, match=r"the AI bridge needs the openai package: pip install 'pyyomo\[ai\]'"
    ):
        build_provider("vllm", {})
    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(ConfigError, match=r"the anthropic provider needs the anthropic package"):
        build_provider("anthropic", {})
