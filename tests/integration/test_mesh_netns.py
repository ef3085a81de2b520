"""Zipper mesh across separate network hosts: three network namespaces joined by veth links.

Topology (every address lives only inside these namespaces)::

    ns a: zipper 10.254.10.1 --veth 10.254.1.0/30-- ns b: zipper 10.254.11.1
       \\                                              /
        veth 10.254.2.0/30 -- ns c: zipper 10.254.12.1 -- veth 10.254.3.0/30

Each namespace runs tests/integration/netns_runner.py: a zipper on its own
address (a /32 on its loopback, reached over the direct veth), a stream function
and a source. The test cuts the a-b link, shows that every other path keeps
working and that frames for the cut pair are dropped and counted, then brings the
link back and shows the pair recovers. Skips (with the reason) only when network
namespaces cannot be created here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.netns

TAG = 0x33
PORT = 9000
RUNNER = Path(__file__).with_name("netns_runner.py")
NODES = ("a", "b", "c")
#: Each node's zipper address (a /32 on the namespace's loopback).
ADDRESS = {"a": "10.254.10.1", "b": "10.254.11.1", "c": "10.254.12.1"}
#: Point-to-point links: (x, y) -> third octet of their 10.254.k.0/30 (x is .1, y is .2).
LINKS = {("a", "b"): 1, ("a", "c"): 2, ("b", "c"): 3}


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=check)


class Net:
    """The namespaces and veth links of one test; ``destroy`` removes them all."""

    def __init__(self) -> None:
        tag = os.getpid()
        self.ns = {n: f"yomo-t-{tag}-{n}" for n in NODES}
        self.dev = {(x, y): f"y{tag % 100000}{x}{y}" for x, y in LINKS}
        self.dev.update({(y, x): f"y{tag % 100000}{y}{x}" for x, y in LINKS})
        self.created: list[str] = []

    def link_address(self, x: str, y: str) -> str:
        """The address of ``x`` on its link to ``y``."""
        k = LINKS.get((x, y))
        if k is not None:
            return f"10.254.{k}.1"
        return f"10.254.{LINKS[(y, x)]}.2"

    def create(self) -> None:
        for n in NODES:
            _ip("netns", "add", self.ns[n])
            self.created.append(self.ns[n])
            _ip("-n", self.ns[n], "link", "set", "lo", "up")
            _ip("-n", self.ns[n], "addr", "add", f"{ADDRESS[n]}/32", "dev", "lo")
        for x, y in LINKS:
            _ip(
                "link", "add", self.dev[(x, y)], "netns", self.ns[x], "type", "veth",
                "peer", "name", self.dev[(y, x)], "netns", self.ns[y],
            )  # fmt: skip
            for a, b in ((x, y), (y, x)):
                _ip(
                    "-n", self.ns[a], "addr", "add",
                    f"{self.link_address(a, b)}/30", "dev", self.dev[(a, b)],
                )  # fmt: skip
                _ip("-n", self.ns[a], "link", "set", self.dev[(a, b)], "up")
        for x, y in LINKS:
            self.route(x, y)
            self.route(y, x)

    def route(self, x: str, y: str) -> None:
        """In ``x``, reach ``y``'s zipper over their direct link."""
        _ip(
            "-n", self.ns[x], "route", "replace", f"{ADDRESS[y]}/32",
            "via", self.link_address(y, x), "dev", self.dev[(x, y)],
        )  # fmt: skip

    def cut(self, x: str, y: str) -> None:
        _ip("-n", self.ns[x], "link", "set", self.dev[(x, y)], "down")

    def restore(self, x: str, y: str) -> None:
        _ip("-n", self.ns[x], "link", "set", self.dev[(x, y)], "up")
        self.route(x, y)  # a link going down takes its routes with it
        self.route(y, x)

    def destroy(self) -> None:
        for ns in reversed(self.created):
            _ip("netns", "del", ns, check=False)
        self.created.clear()


@pytest.fixture
def net() -> Iterator[Net]:
    net = Net()
    probe = net.ns["a"]
    try:
        result = _ip("netns", "add", probe, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"network namespaces unavailable: cannot run ip: {exc}")
    if result.returncode != 0:
        reason = f"network namespaces unavailable: ip netns add failed: {result.stderr.strip()}"
        print(reason)
        pytest.skip(reason)
    _ip("netns", "del", probe, check=False)
    try:
        net.create()
        yield net
    finally:
        net.destroy()


class Node:
    """A netns_runner process inside one namespace and what it has reported."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.ready = asyncio.Event()
        self.frames: list[str] = []
        self.mesh: dict[str, Any] = {}
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            event = json.loads(line)
            if event["ev"] == "ready":
                self.ready.set()
            elif event["ev"] == "frame":
                self.frames.append(event["payload"])
            elif event["ev"] == "mesh":
                self.mesh = event["mesh"]

    def state(self, peer: str) -> str:
        return str(self.mesh.get(f"zipper-{peer}", {}).get("state", "?"))

    def counter(self, peer: str, key: str) -> int:
        return int(self.mesh.get(f"zipper-{peer}", {}).get(key, 0))

    async def send(self, payload: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": "send", "payload": payload}) + "\n").encode())
        await self.proc.stdin.drain()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 10.0)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.reader, 2.0)


async def eventually(condition: Any, what: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


async def start_node(net: Net, name: str, logs: Path) -> Node:
    config = {
        "name": f"zipper-{name}",
        "host": ADDRESS[name],
        "port": PORT,
        "tag": TAG,
        "lifetime": 90.0,
        "peers": [
            {"name": f"zipper-{n}", "host": ADDRESS[n], "port": PORT} for n in NODES
        ],  # includes itself, which the zipper skips
    }
    with (logs / f"{name}.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", net.ns[name], sys.executable, str(RUNNER), json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )  # fmt: skip
    return Node(name, proc)


async def test_mesh_across_namespaces_survives_a_cut_link(net: Net, tmp_path: Path):
    nodes: dict[str, Node] = {}
    try:
        for n in NODES:
            nodes[n] = await start_node(net, n, tmp_path)
        a, b, c = nodes["a"], nodes["b"], nodes["c"]
        for node in nodes.values():
            await asyncio.wait_for(node.ready.wait(), 20.0)

        def links_up(pairs: list[tuple[str, str]]) -> bool:
            return all(nodes[x].state(y) == "up" for x, y in pairs)

        every_pair = [(x, y) for x in NODES for y in NODES if x != y]
        await eventually(lambda: links_up(every_pair), "all six mesh links up", 20.0)

        # 1. Full mesh: every function gets every source's frame exactly once.
        for n in NODES:
            await nodes[n].send(f"first-{n}")
        for node in nodes.values():
            await eventually(
                lambda node=node: all(f"first-{n}" in node.frames for n in NODES),
                f"{node.name} got every first frame ({node.frames})",
                10.0,
            )

        # 2. Cut a-b: both ends notice (QUIC idle timeout), the other links stay up.
        net.cut("a", "b")
        await eventually(
            lambda: a.state("b") != "up" and b.state("a") != "up", "a-b links down", 20.0
        )
        assert links_up([("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")])
        for n in NODES:
            await nodes[n].send(f"during-{n}")
        await eventually(
            lambda: all(f"during-{n}" in c.frames for n in NODES), "c got every frame", 10.0
        )
        await eventually(lambda: "during-c" in a.frames, "a got c's frame", 10.0)
        await eventually(lambda: "during-c" in b.frames, "b got c's frame", 10.0)
        await eventually(lambda: a.counter("b", "dropped_link_down") >= 1, "a counted a drop", 5.0)
        await eventually(lambda: b.counter("a", "dropped_link_down") >= 1, "b counted a drop", 5.0)

        # 3. Restore the link: the pair reconnects and a <-> b delivery resumes.
        net.restore("a", "b")
        await eventually(lambda: links_up(every_pair), "all links up again", 25.0)
        # exactly one reconnect each: the cut, and nothing else, took the link down
        assert a.counter("b", "ups") == 2
        assert b.counter("a", "ups") == 2
        await a.send("after-a")
        await b.send("after-b")
        await eventually(lambda: "after-a" in b.frames, "b got a's frame", 10.0)
        await eventually(lambda: "after-b" in a.frames, "a got b's frame", 10.0)
        await eventually(
            lambda: "after-a" in c.frames and "after-b" in c.frames, "c got both", 10.0
        )
        # Frames dropped while the link was down never show up later, and nothing doubled.
        assert "during-b" not in a.frames
        assert "during-a" not in b.frames
        for node in nodes.values():
            assert len(node.frames) == len(set(node.frames)), node.frames
    except BaseException:
        for log in sorted(tmp_path.glob("*.log")):  # the nodes' logs help explain a failure
            print(f"--- {log.name}", *log.read_text().splitlines()[-40:], sep="\n")
        raise
    finally:
        await asyncio.gather(*(node.stop() for node in nodes.values()))
