"""``yomo serve`` with a bridge: section, as a user runs it."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx

from support.scripted_llm import ScriptedLLM

from .cli_process import YomoProcess, free_udp_port, run_yomo


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(tmp: Path, bridge: str) -> Path:
    path = tmp / "zipper.yaml"
    path.write_text(f"name: z\nhost: 127.0.0.1\nport: {free_udp_port()}\n" + bridge)
    return path


def test_serve_runs_the_ai_bridge_and_mcp_server(tmp_path: Path) -> None:
    api, mcp = free_tcp_port(), free_tcp_port()
    with ScriptedLLM() as llm:
        path = config(
            tmp_path,
            "bridge:\n"
            f"  ai:\n    server:\n      addr: 127.0.0.1:{api}\n"
            f"    providers:\n      vllm:\n        api_endpoint: {llm.base_url}\n"
            f"  mcp:\n    server:\n      addr: 127.0.0.1:{mcp}\n",
        )
        p = YomoProcess(["serve", "-c", str(path)], tmp_path)
        try:
            p.wait_line(f"AI bridge on http://127.0.0.1:{api} with provider vllm")
            p.wait_line(f"mcp server listening on http://127.0.0.1:{mcp}")
            answer = httpx.post(
                f"http://127.0.0.1:{api}/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
            assert answer.json()["choices"][0]["message"]["content"] == "hello"
            assert httpx.get(f"http://127.0.0.1:{mcp}/health", timeout=10).status_code == 200
            p.signal(signal.SIGINT)
            assert p.wait(15) == 0, p.output
        finally:
            p.stop()


def test_serve_stops_at_start_on_a_broken_bridge(tmp_path: Path) -> None:
    cases = [
        ("bridge:\n  ai:\n    server:\n", "bridge.ai.providers: no provider configured"),
        (
            "bridge:\n  ai:\n    providers:\n      huggingface: {}\n",
            "unknown provider: huggingface",
        ),
        (
            "bridge:\n  ai:\n    server:\n      provider: x\n    providers:\n      vllm: {}\n",
            "bridge.ai.server.provider: 'x' is not under bridge.ai.providers",
        ),
    ]
    for text, message in cases:
        p = run_yomo(["serve", "-c", str(config(tmp_path, text))], tmp_path)
        assert p.proc.returncode == 1, p.output
        assert message in p.output


def test_serve_says_which_bridge_port_is_taken(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        text = f"bridge:\n  mcp:\n    server:\n      addr: 127.0.0.1:{port}\n"
        p = run_yomo(["serve", "-c", str(config(tmp_path, text))], tmp_path)
        assert p.proc.returncode == 1, p.output
        assert f"mcp server: cannot listen on 127.0.0.1:{port}" in p.output
    finally:
        taken.close()
