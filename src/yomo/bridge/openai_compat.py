"""The provider interface, its error, and the OpenAI-compatible provider the others build on.

Go: pkg/bridge/ai/provider/provider.go (the interface) and the openai provider.
``yomo.bridge.providers`` builds providers by name from these;
``yomo.bridge.anthropic`` and ``yomo.bridge.vertexai`` use the helpers here, so
neither needs the table of names (and nothing imports in a circle).

Requests and responses are the chat-completions JSON: request bodies pass through as
the caller wrote them, and the OpenAI-compatible providers hand back the provider's
JSON as dicts (the SDK's ``cast_to=object``) rather than ``ChatCompletion`` models.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal, Protocol

from yomo.errors import ConfigError, YomoError

__all__ = [
    "ModelRule",
    "OpenAICompatible",
    "Provider",
    "ProviderError",
    "http_client",
    "max_retries",
    "openai_module",
    "provider_error",
    "require",
]

ModelRule = Literal["override", "default", "fixed"]


class ProviderError(YomoError):
    """The provider failed; ``status`` is what the bridge answers its caller."""

    def __init__(self, message: str, *, status: int, code: str = "") -> None:
        self.status = status
        self.code = code
        super().__init__(message)


class Provider(Protocol):
    """What the bridge needs of an LLM provider."""

    @property
    def name(self) -> str: ...

    async def chat(self, body: dict[str, Any]) -> Any:
        """One non-streamed completion: a ``ChatCompletion`` as its JSON dict (or a model)."""

    def stream(self, body: dict[str, Any]) -> AsyncIterator[Any]:
        """Streamed completion: ``ChatCompletionChunk`` dicts (or models). Errors raise
        ProviderError."""

    async def aclose(self) -> None: ...


def require(module: str, who: str) -> Any:
    """Import ``module`` for ``who``, or say which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"{who} needs the {module.split('.')[0]} package: pip install 'pyyomo[ai]' ({exc})"
        ) from exc


def openai_module() -> Any:
    """The ``openai`` SDK, or a ConfigError that says how to install it."""
    return require("openai", "the AI bridge")


def http_client(sdk: Any) -> Any:
    """The SDK's aiohttp transport when aiohttp is installed (the ``ai`` extra brings it).

    The SDK's default pure-Python HTTP stack spends most of a bridge's CPU at a
    hundred requests at once (bench/RESULTS.md); its documented aiohttp transport
    does the same work for a fraction. Without aiohttp: the SDK's default.
    """
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return None
    factory = getattr(sdk, "DefaultAioHttpClient", None)
    return factory() if factory is not None else None


def provider_error(exc: BaseException, provider: str, sdk: Any = None) -> ProviderError:
    """Turn an ``openai`` (or ``anthropic``: ``sdk``) error into a ProviderError.

    4xx answers of the provider (unknown model, bad request) keep their status and
    text: the caller's request was wrong. 5xx and unreachable providers are 502,
    timeouts 504 (Go answers the provider's status or 400 for everything else).
    """
    openai = sdk or openai_module()
    if isinstance(exc, openai.APITimeoutError) and not _refused(exc):
        return ProviderError(f"provider {provider}: request timed out", status=504, code="timeout")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return ProviderError(
            f"provider {provider} is unreachable: {cause}", status=502, code="provider_unreachable"
        )
    if isinstance(exc, openai.APIStatusError):
        message = _error_message(exc.body) or exc.message
        code = getattr(exc, "code", None)
        kind = getattr(exc, "type", None)
        status = exc.status_code if 400 <= exc.status_code < 500 else 502
        return ProviderError(
            f"provider {provider}: {message}",
            status=status,
            code=(code if isinstance(code, str) else "")
            or (kind if isinstance(kind, str) else "")
            or "provider_error",
        )
    return ProviderError(f"provider {provider}: {exc}", status=502, code="provider_error")


def _refused(exc: BaseException) -> bool:
    """True when a "timeout" was really a refused connection (the aiohttp transport
    reports a refused connect as a connect timeout)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, OSError) and not isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _error_message(body: object) -> str:
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return ""


class OpenAICompatible:
    """A provider reached with the OpenAI SDK (any OpenAI-compatible endpoint)."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str | None,
        api_key: str,
        model: str,
        model_rule: ModelRule,
        client: Any = None,
        default_query: Mapping[str, str] | None = None,
        default_headers: Mapping[str, str] | None = None,
        max_retries: int = 2,
        timeout: float = 600.0,
        request_hook: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        openai = openai_module()
        self._name = name
        self.model = model
        self.model_rule = model_rule
        self.request_hook = request_hook
        self._error: type[Exception] = openai.OpenAIError
        self.client = client or openai.AsyncOpenAI(
            api_key=api_key or "none",  # the SDK refuses an empty key; local servers take any
            base_url=base_url,
            default_query=dict(default_query or {}) or None,
            default_headers=dict(default_headers or {}) or None,
            max_retries=max_retries,
            timeout=timeout,
            http_client=http_client(openai),
        )
        self._chunk_stream: Any = openai.AsyncStream[object]

    @property
    def name(self) -> str:
        return self._name

    @property
    def base_url(self) -> str:
        return str(self.client.base_url)

    def prepare(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body to send: the model chosen by the provider's rule."""
        body = dict(body)
        if self.model and (
            self.model_rule in ("override", "fixed")
            or (self.model_rule == "default" and not body.get("model"))
        ):
            body["model"] = self.model
        if self.request_hook is not None:
            self.request_hook(body)
        return body

    async def chat(self, body: dict[str, Any]) -> Any:
        try:
            return await self.client.post(
                "/chat/completions", body=self.prepare(body), cast_to=object
            )
        except self._error as exc:
            raise provider_error(exc, self._name) from exc

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[Any]:
        body = self.prepare(body)
        body["stream"] = True
        try:
            chunks = await self.client.post(
                "/chat/completions",
                body=body,
                cast_to=object,
                stream=True,
                stream_cls=self._chunk_stream,
            )
            async with chunks:
                async for chunk in chunks:
                    yield chunk
        except self._error as exc:
            raise provider_error(exc, self._name) from exc

    async def aclose(self) -> None:
        await self.client.close()


def max_retries(name: str, settings: Mapping[str, str], default: int = 2) -> int:
    """The ``max_retries`` setting (the SDK's retries on connection errors and 5xx)."""
    if not settings.get("max_retries"):
        return default
    try:
        value = int(settings["max_retries"])
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(
            f"bridge.ai.providers.{name}.max_retries: expected an integer >= 0, "
            f"got {settings['max_retries']!r}"
        )
    return value
