"""``/metrics``: a Prometheus collector that reads the zipper's counters when scraped.

The data path keeps plain integers; nothing here is updated per frame. Each
scrape takes one ``stats()`` and one ``connections()`` snapshot and turns them
into metric families named ``yomo_*``. Label values come only from bounded
sets: tags are at most ``max_tag_stats`` (the rest is ``tag="other"``),
function names at most :data:`MAX_LABEL_VALUES` (the rest ``function="other"``),
mesh peers come from the config, reasons and client types are fixed lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from yomo._version import SPEC_VERSION, __version__

from ..stats import ConnectionInfo, format_tag

__all__ = ["MAX_LABEL_VALUES", "MonitoredZipper", "ZipperCollector"]

#: Distinct values of a client-chosen label (function names, bridge kinds) per metric.
MAX_LABEL_VALUES = 64
_OTHER = "other"

# (stats key, metric name, help) of the per-tag counters.
_TAG_COUNTERS = (
    ("frames_in", "yomo_frames_in", "Data frames received, by tag."),
    ("bytes_in", "yomo_bytes_in", "Payload bytes received, by tag."),
    ("frames_out", "yomo_frames_out", "Data frames delivered to stream functions, by tag."),
    ("bytes_out", "yomo_bytes_out", "Payload bytes delivered to stream functions, by tag."),
    ("unobserved", "yomo_unobserved_frames", "Frames no stream function observed, by tag."),
    ("dropped", "yomo_dropped_frames", "Frames dropped for slow stream functions, by tag."),
)

# (family, metric name, help, label, stats key) of the families with one label from stats().
_LABELLED: tuple[tuple[Any, str, str, str, str], ...] = (
    (GaugeMetricFamily, "yomo_connections", "Connections, by client type.", "type", "connections"),
    (
        CounterMetricFamily,
        "yomo_rejections",
        "Connections refused, by reason.",
        "reason",
        "rejections_by_reason",
    ),
)

#: Label values present even at 0, so that a dashboard's series exist from the start.
_ALWAYS = {"connections": ("Source", "StreamFunction", "UpstreamZipper")}


class MonitoredZipper(Protocol):
    """What the monitor reads of a zipper: two cheap snapshots."""

    name: str

    def stats(self) -> dict[str, Any]: ...

    def connections(self) -> list[ConnectionInfo]: ...


class ZipperCollector(Collector):
    """Builds the ``yomo_*`` metric families from a zipper's snapshots on each scrape."""

    def __init__(self, zipper: MonitoredZipper) -> None:
        self.zipper = zipper

    def collect(self) -> Iterable[Metric]:
        stats = self.zipper.stats()
        yield from _zipper_metrics(stats)
        yield from _tag_metrics(stats)
        yield from _function_metrics(self.zipper.connections())
        if "mesh" in stats:
            yield from _mesh_metrics(stats["mesh"])
        if isinstance(stats.get("bridge"), Mapping):
            yield from _bridge_metrics(stats["bridge"])


def _zipper_metrics(stats: Mapping[str, Any]) -> Iterator[Metric]:
    info = InfoMetricFamily("yomo_zipper", "The zipper's name and versions.")
    info.add_metric(
        [], {"name": stats["name"], "version": __version__, "spec_version": SPEC_VERSION}
    )
    yield info
    serving = GaugeMetricFamily("yomo_serving", "1 while the zipper serves, 0 otherwise.")
    serving.add_metric([], 1.0 if stats["state"] == "serving" else 0.0)
    yield serving
    yield GaugeMetricFamily("yomo_uptime_seconds", "Seconds since start.", value=stats["uptime"])
    yield CounterMetricFamily("yomo_handshakes", "Handshakes accepted.", value=stats["handshakes"])
    for cls, name, help_text, label, key in _LABELLED:
        values = {**dict.fromkeys(_ALWAYS.get(key, ()), 0), **stats[key]}
        yield _by_label(cls, name, help_text, label, sorted(values.items()))
    yield CounterMetricFamily(
        "yomo_auth_failures",
        "Handshakes refused for their credential.",
        value=stats["auth_failures"],
    )
    yield CounterMetricFamily(
        "yomo_protocol_errors",
        "Connections closed for bytes that break the protocol.",
        value=stats["protocol_errors"],
    )
    yield GaugeMetricFamily(
        "yomo_tag_stats_limit",
        'Distinct tags counted one by one; later tags are counted as tag="other".',
        value=stats["max_tag_stats"],
    )


def _tag_metrics(stats: Mapping[str, Any]) -> Iterator[Metric]:
    tags: Mapping[int, Mapping[str, int]] = stats["tags"]
    other: Mapping[str, int] = stats["other_tags"]
    for key, name, help_text in _TAG_COUNTERS:
        values = [(format_tag(tag), counters[key]) for tag, counters in tags.items()]
        if any(other.values()):
            values.append((_OTHER, other[key]))
        yield _by_label(CounterMetricFamily, name, help_text, "tag", values)


def _function_metrics(connections: Iterable[ConnectionInfo]) -> Iterator[Metric]:
    count: dict[str, int] = {}
    backlog: dict[str, int] = {}
    for conn in connections:
        if conn.client_type != "StreamFunction":
            continue
        name = conn.name
        if name not in count and len(count) >= MAX_LABEL_VALUES:
            name = _OTHER
        count[name] = count.get(name, 0) + 1
        backlog[name] = backlog.get(name, 0) + conn.send_backlog
    yield _by_label(
        GaugeMetricFamily,
        "yomo_function_connections",
        "Stream-function connections, by name.",
        "function",
        sorted(count.items()),
    )
    yield _by_label(
        GaugeMetricFamily,
        "yomo_function_backlog_bytes",
        "Bytes queued for a stream function that are not on the wire yet, by name.",
        "function",
        sorted(backlog.items()),
    )


def _mesh_metrics(mesh: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
    up = GaugeMetricFamily("yomo_mesh_link_up", "1 when the link to a peer is up.", labels=["peer"])
    forwarded = CounterMetricFamily(
        "yomo_mesh_forwarded_frames", "Frames forwarded to a peer.", labels=["peer"]
    )
    forwarded_bytes = CounterMetricFamily(
        "yomo_mesh_forwarded_bytes", "Encoded bytes forwarded to a peer.", labels=["peer"]
    )
    dropped = CounterMetricFamily(
        "yomo_mesh_dropped_frames",
        "Frames for a peer that were dropped.",
        labels=["peer", "reason"],
    )
    queued_frames = GaugeMetricFamily(
        "yomo_mesh_queue_frames", "Frames waiting to be sent to a peer.", labels=["peer"]
    )
    queued_bytes = GaugeMetricFamily(
        "yomo_mesh_queue_bytes", "Bytes waiting to be sent to a peer.", labels=["peer"]
    )
    downs = CounterMetricFamily("yomo_mesh_link_downs", "Times a link went down.", labels=["peer"])
    for peer, link in sorted(mesh.items()):
        up.add_metric([peer], 1.0 if link["state"] == "up" else 0.0)
        forwarded.add_metric([peer], link["forwarded"])
        forwarded_bytes.add_metric([peer], link["bytes_forwarded"])
        for reason in ("link_down", "queue_full", "send_timeout"):
            dropped.add_metric([peer, reason], link[f"dropped_{reason}"])
        queued_frames.add_metric([peer], link["queued_frames"])
        queued_bytes.add_metric([peer], link["queued_bytes"])
        downs.add_metric([peer], link["downs"])
    yield from (up, forwarded, forwarded_bytes, dropped, queued_frames, queued_bytes, downs)


def _by_label(
    cls: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    help_text: str,
    label: str,
    values: Iterable[tuple[str, float]],
) -> Metric:
    """One family with one label, a sample per ``(label value, value)``."""
    family = cls(name, help_text, labels=[label])
    for key, value in values:
        family.add_metric([key], value)
    return family


# (stats()["bridge"] key, metric, help) of the AI bridge's counters and gauges.
_BRIDGE_COUNTERS = (
    ("requests", "yomo_bridge_requests", "HTTP requests to the AI bridge."),
    ("errors", "yomo_bridge_errors", "Bridge requests that ended in an error."),
    ("rejected", "yomo_bridge_rejected", "Bridge requests refused by a limit or the token."),
    ("llm_turns", "yomo_bridge_llm_turns", "Requests made to the LLM provider."),
)
_CALL_RESULTS = (("answered", "answered"), ("timeouts", "timeout"), ("failed", "failed"))


def _bridge_metrics(bridge: Mapping[str, Any]) -> Iterator[Metric]:
    """The AI bridge's counters (``stats()["bridge"]``, see yomo/bridge) as metrics."""
    for key, name, help_text in _BRIDGE_COUNTERS:
        if key in bridge:
            yield CounterMetricFamily(name, help_text, value=bridge[key])
    if "in_flight" in bridge:
        yield GaugeMetricFamily(
            "yomo_bridge_requests_in_flight", "Bridge requests being served.", bridge["in_flight"]
        )
    calls = bridge.get("calls")
    if not isinstance(calls, Mapping):
        return
    yield CounterMetricFamily(
        "yomo_bridge_tool_calls", "Tool calls sent to LLM functions.", value=calls["total"]
    )
    yield _by_label(
        CounterMetricFamily,
        "yomo_bridge_tool_call_results",
        "Tool calls by how they ended.",
        "result",
        [(label, calls[key]) for key, label in _CALL_RESULTS],
    )
    yield CounterMetricFamily(
        "yomo_bridge_tool_call_late_results",
        "Tool results that came after their call gave up.",
        value=calls["late_results"],
    )
    yield GaugeMetricFamily(
        "yomo_bridge_tool_calls_pending", "Tool calls waiting for a result.", calls["pending"]
    )
    yield CounterMetricFamily(
        "yomo_bridge_tool_call_seconds",
        "Seconds rounds of tool calls took, from sending to the last result.",
        value=calls["seconds"],
    )
