"""LLM providers: every one Go v1.22.3's bridge has, behind one small interface.

Go: pkg/bridge/ai/provider/*/provider.go and pkg/bridge/ai/config.go
NewProviderFromConfig. The OpenAI-compatible ones (openai, azopenai, azaifoundry,
cloudflare_azure, cloudflare_openai, ollama, vllm, deepseek, xai, cerebras,
githubmodels, gemini through Google's OpenAI-compatible endpoint, vertexai through
Vertex AI's) use the official ``openai`` SDK; anthropic uses the official
``anthropic`` SDK (``yomo.bridge.anthropic``). Settings are Go's keys with Go's
environment-variable fallbacks and defaults; each provider keeps Go's model rule:
``override`` (the configured model replaces the request's), ``default`` (used when
the request names none) or ``fixed`` (deployment-bound: the request's is ignored).

Requests and responses are the chat-completions JSON: request bodies pass through as
the caller wrote them, and the OpenAI-compatible providers hand back the provider's
JSON as dicts (the SDK's ``cast_to=object``) rather than ``ChatCompletion`` models, so
fields this bridge does not know pass through, and no pydantic model is built and
dumped again per LLM turn (bench/RESULTS.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from yomo.errors import ConfigError

from .openai_compat import (
    ModelRule,
    OpenAICompatible,
    Provider,
    http_client,
    max_retries,
    openai_module,
)

__all__ = ["PROVIDER_NAMES", "build_provider"]

# -- the providers by name (Go: pkg/bridge/ai/config.go NewProviderFromConfig) -------------


def _setting(settings: Mapping[str, str], key: str, *env: str, default: str = "") -> str:
    value = settings.get(key, "")
    for name in env:
        if value:
            break
        value = os.environ.get(name, "")
    return value or default


def _require(name: str, settings: Mapping[str, str], *keys: str) -> None:
    missing = [k for k in keys if not settings.get(k)]
    if missing:
        raise ConfigError(
            f"bridge.ai.providers.{name}: {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} required"
        )


def _openai_like(
    name: str,
    settings: Mapping[str, str],
    *,
    base_url: str | None,
    api_key: str,
    model: str,
    rule: ModelRule,
    **extra: Any,
) -> OpenAICompatible:
    extra["max_retries"] = max_retries(name, settings)
    return OpenAICompatible(
        name, base_url=base_url, api_key=api_key, model=model, model_rule=rule, **extra
    )


def _azopenai(s: Mapping[str, str]) -> Provider:
    openai = openai_module()
    api_key = _setting(s, "api_key", "AZURE_OPENAI_API_KEY")
    endpoint = _setting(s, "api_endpoint", "AZURE_OPENAI_API_ENDPOINT")
    deployment = _setting(s, "deployment_id", "AZURE_OPENAI_DEPLOYMENT_ID")
    version = _setting(s, "api_version", "AZURE_OPENAI_API_VERSION")
    _require(
        "azopenai",
        {"api_endpoint": endpoint, "deployment_id": deployment},
        "api_endpoint",
        "deployment_id",
    )
    client = openai.AsyncAzureOpenAI(
        api_key=api_key or "none",
        azure_endpoint=endpoint,
        api_version=version or None,
        http_client=http_client(openai),
    )
    # Go maps every model to the deployment: the deployment is in the URL.
    return _openai_like(
        "azopenai", s, base_url=None, api_key=api_key, model=deployment, rule="fixed", client=client
    )


def _azaifoundry(s: Mapping[str, str]) -> Provider:
    _require("azaifoundry", s, "api_endpoint")
    endpoint = s["api_endpoint"].rstrip("/") + "/models/"
    version = s.get("api_version", "")
    return _openai_like(
        "azaifoundry",
        s,
        base_url=endpoint,
        api_key=s.get("api_key", ""),
        model=s.get("model", ""),
        rule="fixed",
        default_query={"api-version": version} if version else None,
        default_headers={"api-key": s.get("api_key", "")} if s.get("api_key") else None,
    )


def _cloudflare_azure(s: Mapping[str, str]) -> Provider:
    _require("cloudflare_azure", s, "endpoint", "api_key", "resource", "deployment_id")
    base = f"{s['endpoint'].rstrip('/')}/azure-openai/{s['resource']}/{s['deployment_id']}"
    version = s.get("api_version", "")
    return _openai_like(
        "cloudflare_azure",
        s,
        base_url=base,
        api_key=s["api_key"],
        model="",
        rule="default",
        default_query={"api-version": version} if version else None,
        default_headers={"api-key": s["api_key"]},
    )


def _cloudflare_openai(s: Mapping[str, str]) -> Provider:
    _require("cloudflare_openai", s, "endpoint")
    return _openai_like(
        "cloudflare_openai",
        s,
        base_url=f"{s['endpoint'].rstrip('/')}/openai",
        api_key=_setting(s, "api_key", "OPENAI_API_KEY"),
        model=_setting(s, "model", "OPENAI_MODEL"),
        rule="fixed",
    )


def _simple(
    name: str,
    base_url: str,
    *,
    key_env: tuple[str, ...] = (),
    model_env: tuple[str, ...] = (),
    model: str = "",
    rule: ModelRule = "default",
    endpoint_key: str = "",
    endpoint_env: tuple[str, ...] = (),
    fixed_key: str = "",
) -> Callable[[Mapping[str, str]], Provider]:
    def build(s: Mapping[str, str]) -> Provider:
        base = base_url
        if endpoint_key:
            base = _setting(s, endpoint_key, *endpoint_env, default=base_url)
        return _openai_like(
            name,
            s,
            base_url=base or None,
            api_key=fixed_key or _setting(s, "api_key", *key_env),
            model=_setting(s, "model", *model_env, default=model),
            rule=rule,
        )

    return build


def _openai_provider(s: Mapping[str, str]) -> Provider:
    # Go: OPENAI_BASE_URL moves the endpoint; api_endpoint does the same here (beyond Go).
    base = s.get("api_endpoint") or os.environ.get("OPENAI_BASE_URL") or None
    return _openai_like(
        "openai",
        s,
        base_url=base,
        api_key=_setting(s, "api_key", "OPENAI_API_KEY"),
        model=_setting(s, "model", "OPENAI_MODEL"),
        rule="override",
    )


def _anthropic(s: Mapping[str, str]) -> Provider:
    from .anthropic import AnthropicProvider

    provider: Provider = AnthropicProvider(
        api_key=_setting(s, "api_key", "ANTHROPIC_API_KEY"),
        model=_setting(s, "model", "ANTHROPIC_MODEL", default="claude-3-7-sonnet-latest"),
        base_url=s.get("api_endpoint") or None,
        max_retries=max_retries("anthropic", s),
    )
    return provider


def _vertexai(s: Mapping[str, str]) -> Provider:
    from .vertexai import vertexai_provider

    provider: Provider = vertexai_provider(s)
    return provider


_BUILDERS: dict[str, Callable[[Mapping[str, str]], Provider]] = {
    "openai": _openai_provider,
    "azopenai": _azopenai,
    "azaifoundry": _azaifoundry,
    "cloudflare_azure": _cloudflare_azure,
    "cloudflare_openai": _cloudflare_openai,
    "ollama": _simple(
        "ollama",
        "http://localhost:11434/v1",
        model_env=("OLLAMA_MODEL",),
        endpoint_key="api_endpoint",
        endpoint_env=("OLLAMA_API_ENDPOINT",),
        fixed_key="ollama",
    ),
    "vllm": _simple(
        "vllm",
        "http://127.0.0.1:8000",
        model="meta-llama/Llama-3.2-7B-Instruct",
        endpoint_key="api_endpoint",
    ),
    "deepseek": _simple("deepseek", "https://api.deepseek.com/v1", model="deepseek-chat"),
    "xai": _simple("xai", "https://api.x.ai/v1", model="grok-beta"),
    "cerebras": _simple(
        "cerebras",
        "https://api.cerebras.ai/v1",
        key_env=("CEREBRAS_API_KEY",),
        model_env=("CEREBRAS_MODEL",),
        model="llama3.1-8b",
    ),
    "githubmodels": _simple(
        "githubmodels",
        "https://models.inference.ai.azure.com",
        key_env=("GITHUB_TOKEN",),
        rule="override",
    ),
    "gemini": _simple(
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta/openai/",
        model="gemini-2.0-flash",
    ),
    "anthropic": _anthropic,
    "vertexai": _vertexai,
}

#: Every provider name ``bridge.ai.providers`` accepts (Go's names).
PROVIDER_NAMES = tuple(_BUILDERS)


def build_provider(
    name: str, settings: Mapping[str, str], *, timeout: float | None = None
) -> Provider:
    """The provider called ``name`` configured with ``settings`` (Go's keys).

    ``timeout`` bounds each HTTP request to the provider (the SDK's own default
    otherwise); the bridge passes its ``request_timeout``.

    Raises:
        ConfigError: an unknown name (Go's "unknown provider" text), a missing required
            setting, or the provider's SDK is not installed.
    """
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ConfigError(
            f"bridge.ai.providers: unknown provider: {name} (known: {', '.join(PROVIDER_NAMES)})"
        )
    provider = builder(settings)
    if timeout is not None and isinstance(provider, OpenAICompatible):
        provider.client = provider.client.with_options(timeout=timeout)
    return provider
