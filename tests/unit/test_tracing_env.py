"""OTEL_EXPORTER_OTLP_ENDPOINT turns tracing on without a tracer provider, as in Go."""

from __future__ import annotations

import pytest

from yomo.client import tracing
from yomo.client.tracing import OTLP_ENDPOINT_ENV, Tracing


@pytest.fixture(autouse=True)
def _fresh_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_providers", {})


def test_no_endpoint_no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OTLP_ENDPOINT_ENV, raising=False)
    assert Tracing(None, "svc").enabled is False


def test_endpoint_builds_one_otlp_provider_named_yomo(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="tracing extra")
    from opentelemetry.sdk.trace import TracerProvider

    monkeypatch.setenv(
        OTLP_ENDPOINT_ENV, "http://127.0.0.1:1"
    )  # nothing listens: export fails fast
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    first = Tracing(None, "fn-a")
    assert first.enabled
    provider = tracing.provider_from_env()
    assert isinstance(provider, TracerProvider)
    # Go: pkg/trace ServiceName, the same for every client of the process
    assert provider.resource.attributes["service.name"] == "yomo"
    assert tracing.provider_from_env() is provider
    assert Tracing(None, "fn-b")._tracer is not None
    assert set(tracing._providers) == {"yomo"}
    md: dict[str, str] = {}
    with first.span("handler", md):
        pass
    assert len(md["yomo-trace-id"]) == 32 and len(md["yomo-span-id"]) == 16
    assert md["yomo-traced"] == "true"
    provider.shutdown()


def test_otel_service_name_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="tracing extra")
    monkeypatch.setenv(OTLP_ENDPOINT_ENV, "http://127.0.0.1:1")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing")
    provider = tracing.provider_from_env()
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "billing"
    provider.shutdown()


def test_explicit_provider_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    monkeypatch.setenv(OTLP_ENDPOINT_ENV, "http://127.0.0.1:1")
    mine = TracerProvider()
    t = Tracing(mine, "svc")
    assert t.enabled
    assert tracing._providers == {}
