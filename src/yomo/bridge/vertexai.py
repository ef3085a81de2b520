"""The vertexai provider: Vertex AI's OpenAI-compatible endpoint, Google credentials.

Go: pkg/bridge/ai/provider/vertexai/provider.go. Settings ``project_id``,
``location``, ``model`` (default ``gemini-2.5-flash``) and ``credentials_file`` (a
service-account key; without it, Google's application default credentials), and
beyond Go ``api_endpoint`` (another address of the same API, e.g. a proxy). The
endpoint is ``https://{location}-aiplatform.googleapis.com/v1/projects/{project}/
locations/{location}/endpoints/openapi`` (``aiplatform.googleapis.com`` for the
``global`` location); model names get Go's ``google/`` prefix. The access token
comes from ``google-auth`` (a pure-Python wheel, in the ``ai`` extra) and is
refreshed before it expires. Gemini's ``extra_content`` (thought signatures) on
tool calls passes through the bridge's turns unchanged, so Go's cache of them is
not needed here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from yomo.errors import ConfigError

from .openai_compat import OpenAICompatible, max_retries

__all__ = ["DEFAULT_MODEL", "VertexAIProvider", "vertexai_provider"]

DEFAULT_MODEL = "gemini-2.5-flash"
_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_UNPREFIXED = ("zai-org/glm-5-maas",)  # Go keeps this partner model's name as it is


def _model(name: str) -> str:
    if name in _UNPREFIXED or name.startswith("google/"):
        return name
    return f"google/{name}"


def _credentials(credentials_file: str) -> Any:
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
        from google.oauth2 import service_account
    except ImportError as exc:
        raise ConfigError(
            f"the vertexai provider needs google-auth: pip install 'pyyomo[ai]' ({exc})"
        ) from exc
    try:
        if credentials_file:
            return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                credentials_file, scopes=[_SCOPE]
            )
        credentials, _ = google.auth.default(scopes=[_SCOPE])
        return credentials
    except (OSError, ValueError, DefaultCredentialsError) as exc:
        where = credentials_file or "the application default credentials"
        raise ConfigError(
            f"bridge.ai.providers.vertexai: cannot load Google credentials from {where}: {exc}"
        ) from exc


class VertexAIProvider(OpenAICompatible):
    """Vertex AI through the OpenAI SDK, with a refreshed Google access token."""

    def __init__(
        self, *, base_url: str, model: str, credentials: Any, max_retries: int = 2
    ) -> None:
        super().__init__(
            "vertexai",
            base_url=base_url,
            api_key="pending",
            model=_model(model),
            model_rule="default",
            max_retries=max_retries,
            request_hook=self._prefix,
        )
        self.credentials = credentials
        self._lock = asyncio.Lock()

    @staticmethod
    def _prefix(body: dict[str, Any]) -> None:
        if body.get("model"):
            body["model"] = _model(str(body["model"]))

    async def _token(self) -> None:
        if self.credentials.valid and self.client.api_key == self.credentials.token:
            return  # the common case: no lock to take per request
        async with self._lock:
            if not self.credentials.valid:
                from google.auth.transport.requests import Request

                await asyncio.to_thread(self.credentials.refresh, Request())
            self.client.api_key = self.credentials.token

    async def chat(self, body: dict[str, Any]) -> Any:
        await self._token()
        return await super().chat(body)

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[Any]:
        await self._token()
        async for chunk in super().stream(body):
            yield chunk


def vertexai_provider(settings: Mapping[str, str]) -> VertexAIProvider:
    """The provider from Go's settings (``project_id`` and ``location`` required)."""
    missing = [k for k in ("project_id", "location") if not settings.get(k)]
    if missing:
        raise ConfigError(f"bridge.ai.providers.vertexai: {', '.join(missing)} required")
    project, location = settings["project_id"], settings["location"]
    host = (
        "aiplatform.googleapis.com"
        if location == "global"
        else f"{location}-aiplatform.googleapis.com"
    )
    base_url = f"https://{host}/v1/projects/{project}/locations/{location}/endpoints/openapi"
    # beyond Go: another endpoint of the same API (a proxy, a private endpoint)
    base_url = settings.get("api_endpoint") or base_url
    credentials = _credentials(settings.get("credentials_file", ""))
    return VertexAIProvider(
        base_url=base_url,
        model=settings.get("model") or DEFAULT_MODEL,
        credentials=credentials,
        max_retries=max_retries("vertexai", settings),
    )
