"""The monitor endpoint over real HTTP: health, Prometheus metrics, JSON, history, bounds.

A real zipper with real QUIC clients; the endpoint is called with httpx and the
metrics are parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import yomo
from yomo.wire import ClientType
from yomo.zipper.auth import TokenAuth

from .helpers import eventually, frame_bytes

IN = 0x33
UNOBSERVED = 0x99


def _url(z, path: str) -> str:
    host, port = z.monitor_address
    return f"http://{host}:{port}{path}"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text, keyed by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples, metric: str, **labels: str) -> float:
    return samples[(metric, tuple(sorted(labels.items())))]


async def test_healthz_follows_the_zipper_state(zipper):
    from yomo.zipper.server import Zipper

    z = Zipper("health", "127.0.0.1", 0, monitor="127.0.0.1:0", stats_interval=0)
    async with httpx.AsyncClient() as http:
        await z.start()
        try:
            response = await http.get(_url(z, "/healthz"))
            assert response.status_code == 200
            assert response.json() == {"status": "serving", "name": "health"}
            stopping = asyncio.ensure_future(z.stop())
            await asyncio.sleep(0)  # stop() has flipped the state and not yet closed the monitor
            assert z.state == "stopping"
            response = await http.get(_url(z, "/healthz"))  # on the kept-alive connection
            assert response.status_code == 503
            assert response.json()["status"] == "stopping"
            await stopping
        finally:
            await z.stop()
    assert z.state == "stopped"


async def test_healthz_is_503_before_serving(zipper):
    # The same app as a starting zipper's (the state is all that differs): 503 until serving.
    from yomo._asgi import serve_asgi
    from yomo.zipper.monitor import History, build_app
    from yomo.zipper.server import Zipper

    z = Zipper("new", "127.0.0.1", 0, stats_interval=0)
    assert z.state == "new"
    app = build_app(z, History(), state=lambda: z.state)
    server = await serve_asgi(app, "127.0.0.1", 0, name="monitor", log=z.log)
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{server.url}/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "new"
    finally:
        await server.stop()


async def test_metrics_and_json_from_real_traffic(zipper, clients):
    z = await zipper(monitor="127.0.0.1:0", authenticators=[TokenAuth("s3cret")])
    credential = {"credential": "token:s3cret"}
    _, inbox = await clients.sfn(z, "upper-fn", [IN], **credential)
    source = await clients.source(z, "sensor", **credential)
    for i in range(10):
        await source.send(frame_bytes(IN, b"x" * i))
    await source.send(frame_bytes(UNOBSERVED, b"nobody"))
    await inbox.wait_count(10)
    bad = clients.make(z, "intruder", ClientType.SOURCE, credential="token:wrong")
    with pytest.raises(Exception, match="invalid token"):
        await bad.connect()
    await eventually(lambda: z.stats()["unobserved"] == 1, "the unobserved frame counted")

    async with httpx.AsyncClient() as http:
        response = await http.get(_url(z, "/metrics"))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = _samples(response.text)
        stats = (await http.get(_url(z, "/api/stats"))).json()
        conns = (await http.get(_url(z, "/api/connections"))).json()

    assert _value(samples, "yomo_frames_in_total", tag="0x33") == 10
    assert _value(samples, "yomo_bytes_in_total", tag="0x33") == sum(range(10))
    assert _value(samples, "yomo_frames_out_total", tag="0x33") == 10
    assert _value(samples, "yomo_unobserved_frames_total", tag="0x99") == 1
    assert _value(samples, "yomo_connections", type="StreamFunction") == 1
    assert _value(samples, "yomo_connections", type="Source") == 1
    assert _value(samples, "yomo_handshakes_total") == 2
    assert _value(samples, "yomo_rejections_total", reason="auth") == 1
    assert _value(samples, "yomo_auth_failures_total") == 1
    assert _value(samples, "yomo_function_connections", function="upper-fn") == 1
    assert ("yomo_function_backlog_bytes", (("function", "upper-fn"),)) in samples
    assert _value(samples, "yomo_serving") == 1
    info = {"name": "test-zipper", "spec_version": "2024-01-03", "version": yomo.__version__}
    assert _value(samples, "yomo_zipper_info", **info) == 1
    assert all(name.startswith("yomo_") for name, _ in samples)

    assert stats["name"] == "test-zipper" and stats["state"] == "serving"
    assert stats["tags"]["0x33"]["frames_in"] == 10
    assert stats["tags"]["0x99"]["unobserved"] == 1
    assert stats["frames_in"] == 11 and stats["unobserved"] == 1
    assert stats["rejections_by_reason"]["auth"] == 1
    by_name = {c["name"]: c for c in conns}
    assert by_name["upper-fn"]["observed_tags"] == ["0x33"]
    assert by_name["upper-fn"]["client_type"] == "StreamFunction"
    assert by_name["upper-fn"]["frames_out"] == 10
    assert by_name["sensor"]["frames_in"] == 11
    assert by_name["sensor"]["remote_address"].startswith("127.0.0.1:")


async def test_history_gives_rates_per_tag(zipper, clients):
    z = await zipper(monitor="127.0.0.1:0")
    _, inbox = await clients.sfn(z, "fn", [IN])
    source = await clients.source(z)
    sent = 0

    async def rates():
        async with httpx.AsyncClient() as http:
            return (await http.get(_url(z, "/api/history"))).json()

    history = await rates()
    assert history["window"] == 300 and history["interval"] == 1.0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while loop.time() < deadline:  # keep writing until a sample with a rate has been taken
        for _ in range(5):
            await source.send(frame_bytes(IN, b"tick"))
            sent += 1
        history = await rates()
        if history["tag_rates"].get("0x33", {}).get("frames_in", 0) > 0:
            break
        await asyncio.sleep(0.05)
    assert history["tag_rates"]["0x33"]["frames_in"] > 0
    assert history["points"] and max(p["frames_in"] for p in history["points"]) > 0
    await inbox.wait_count(sent)


async def test_tag_labels_are_bounded(zipper, clients):
    z = await zipper(monitor="127.0.0.1:0", max_tag_stats=4)
    source = await clients.source(z)
    for tag in range(0x100, 0x100 + 20):
        await source.send(frame_bytes(tag, b"t"))
    await eventually(lambda: z.stats()["unobserved"] == 20, "20 frames counted")
    stats = z.stats()
    assert len(stats["tags"]) == 4
    assert stats["other_tags"]["frames_in"] == 16
    assert stats["frames_in"] == 20
    async with httpx.AsyncClient() as http:
        samples = _samples((await http.get(_url(z, "/metrics"))).text)
    tags = {dict(labels)["tag"] for name, labels in samples if name == "yomo_frames_in_total"}
    assert tags == {"0x100", "0x101", "0x102", "0x103", "other"}
    assert _value(samples, "yomo_frames_in_total", tag="other") == 16
    assert _value(samples, "yomo_tag_stats_limit") == 4


async def test_mesh_links_and_added_sections(zipper):
    from yomo.zipper.config import MeshPeer

    b = await zipper(name="zipper-b")
    a = await zipper(
        name="zipper-a",
        monitor="127.0.0.1:0",
        mesh=[MeshPeer(name="zipper-b", host="127.0.0.1", port=b.address[1])],
    )
    remove = a.add_stats_section("plugin", lambda: {"note": "text", "n": 2})
    with pytest.raises(ValueError, match="exists already"):
        a.add_stats_section("mesh", dict)
    await eventually(lambda: a.stats()["mesh"]["zipper-b"]["state"] == "up", "link up", 10.0)
    async with httpx.AsyncClient() as http:
        samples = _samples((await http.get(_url(a, "/metrics"))).text)
        stats = (await http.get(_url(a, "/api/stats"))).json()
    assert _value(samples, "yomo_mesh_link_up", peer="zipper-b") == 1
    assert _value(samples, "yomo_mesh_queue_bytes", peer="zipper-b") == 0
    dropped = ("yomo_mesh_dropped_frames_total", (("peer", "zipper-b"), ("reason", "queue_full")))
    assert dropped in samples
    assert stats["plugin"] == {"note": "text", "n": 2}
    remove()
    assert "plugin" not in a.stats()


async def test_bridge_calls_in_the_metrics(zipper):
    from support.scripted_llm import ScriptedLLM, call_tools_then_answer
    from support.wire_tool import WireTool

    from .bridge_helpers import ai_bridge, bridge_url

    with ScriptedLLM(call_tools_then_answer({"get-weather": {"city": "Paris"}})) as llm:
        z = await zipper(monitor="127.0.0.1:0", bridge=ai_bridge(llm.base_url))
        tool = WireTool("get-weather", z.addr, description="current weather of a city")
        await tool.connect()
        try:
            async with httpx.AsyncClient() as http:
                answer = await http.post(bridge_url(z) + "/invoke", json={"prompt": "Paris?"})
                assert answer.status_code == 200, answer.text
                samples = _samples((await http.get(_url(z, "/metrics"))).text)
        finally:
            await tool.close()
    assert _value(samples, "yomo_bridge_requests_total") == 1
    assert _value(samples, "yomo_bridge_llm_turns_total") == 2  # the tool call, the answer
    assert _value(samples, "yomo_bridge_tool_calls_total") == 1
    assert _value(samples, "yomo_bridge_tool_call_results_total", result="answered") == 1
    assert _value(samples, "yomo_bridge_tool_call_results_total", result="timeout") == 0
    assert _value(samples, "yomo_bridge_tool_calls_pending") == 0
    assert _value(samples, "yomo_bridge_requests_in_flight") == 0
    assert _value(samples, "yomo_function_connections", function="get-weather") == 1


async def test_bad_requests_get_clear_answers_and_routing_goes_on(zipper, clients):
    z = await zipper(monitor="127.0.0.1:0")
    _, inbox = await clients.sfn(z, "fn", [IN])
    source = await clients.source(z)
    async with httpx.AsyncClient() as http:
        assert (await http.get(_url(z, "/nope"))).status_code == 404
        assert (await http.post(_url(z, "/metrics"), content=b"{bad json")).status_code == 405
        assert (await http.get(_url(z, "/static/../../__init__.py"))).status_code == 404
        page = await http.get(_url(z, "/"))
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert '<script src="static/monitor.js">' in page.text
        for asset in ("monitor.js", "monitor.css"):
            assert (await http.get(_url(z, f"/static/{asset}"))).status_code == 200
    await source.send(frame_bytes(IN, b"still routing"))
    await inbox.wait_payload(b"still routing")


async def test_a_taken_monitor_port_fails_the_start_and_frees_the_zipper(zipper):
    from yomo.zipper.server import Zipper

    first = await zipper(monitor="127.0.0.1:0")
    z = Zipper("second", "127.0.0.1", 0, monitor=first.monitor_address, stats_interval=0)
    with pytest.raises(OSError, match=r"cannot serve the monitor on 127\.0\.0\.1:"):
        await z.start()
    assert z.state == "stopped"
