"""Target routing across languages: write_with_target / WriteWithTarget against wanted targets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from goharness import GoPeers, GoProcess
from pypeers import PySink, py_sfn, run_py_source

__all__: list[str] = []

T_SRC, T_TRIG, T_OUT = 0x20, 0x22, 0x21
N = 5


def _count(receiver: GoProcess | PySink, tag: int) -> int:
    if isinstance(receiver, PySink):
        return len(receiver.by_tag(tag))
    return len([f for f in receiver.frames() if f["tag"] == tag])


def _heads(receiver: GoProcess | PySink, tag: int) -> set[bytes]:
    """The first 3 bytes of each payload of tag (the reply prefix)."""
    if isinstance(receiver, PySink):
        return {bytes(f.head[:3]) for f in receiver.by_tag(tag)}
    return {bytes.fromhex(f["head"])[:3] for f in receiver.frames() if f["tag"] == tag}


async def test_targeted_writes_reach_only_the_wanted_functions(
    any_zipper: Any, go_peer: GoPeers
) -> None:

    def go_sink(name: str, target: str, observe: tuple[int, ...]) -> Awaitable[GoProcess]:
        return asyncio.to_thread(
            go_peer.sink, any_zipper, name=name, wanted_target=target, observe=observe
        )

    async def py_sink(name: str, target: str, observe: tuple[int, ...]) -> PySink:
        sink = py_sfn(any_zipper, name=name, wanted_target=target, observe=observe, out_tag=None)
        await sink.sfn.connect()
        return sink

    go_alice = await go_sink("go-alice", "alice", (T_TRIG, T_OUT))
    py_bob = await py_sink("py-bob", "bob", (T_TRIG, T_OUT))
    py_alice = await py_sink("py-alice", "alice", (T_SRC,))
    go_bob = await go_sink("go-bob", "bob", (T_SRC,))
    py_plain = await py_sink("py-plain", "", (T_SRC, T_OUT))
    # Replies: Go's Context.WriteWithTarget to bob, Python's ctx.write_with_target to alice.
    await asyncio.to_thread(
        go_peer.sfn, any_zipper, name="go-fn", observe=(T_TRIG,), out_tag=T_OUT,
        transform="prefix:go>", mode="handler", out_target="bob",
    )  # fmt: skip
    py_fn = py_sfn(any_zipper, name="py-fn", observe=(T_TRIG,), out_tag=T_OUT, spec="prefix:py>",
                   out_target="alice")  # fmt: skip
    await py_fn.sfn.connect()

    go_source = go_peer.source(any_zipper, n=N, sizes=(16,), tags=(T_SRC,), target="bob")
    # lingers (1 s, the default): a Go zipper drops what it acknowledged but has not routed
    # when the source closes (docs/interop.md, Closing); the native client closes fast
    await run_py_source(any_zipper, n=N, sizes=(16,), tags=(T_SRC,), target="alice")
    await run_py_source(any_zipper, n=N, sizes=(16,), tags=(T_TRIG,), name="py-trigger")
    assert await go_source.async_wait_exit(30) == 0, go_source.tail()

    want = {
        (go_bob, T_SRC): N,  # Go WriteWithTarget("bob")
        (py_alice, T_SRC): N,  # Python write_with_target("alice")
        (go_alice, T_TRIG): N,  # untargeted frames reach targeted functions too
        (py_bob, T_TRIG): N,
        (go_alice, T_OUT): N,  # Python ctx.write_with_target("alice")
        (py_bob, T_OUT): N,  # Go ctx.WriteWithTarget("bob")
    }
    for (receiver, tag), n in want.items():
        if isinstance(receiver, PySink):
            await receiver.wait_count({tag: n}, 30)
        else:
            await receiver.async_wait_for(lambda p, t=tag, k=n: _count(p, t) >= k, 30, f"{n}x{tag}")
    await asyncio.sleep(0.5)
    await py_fn.close()

    receivers: list[GoProcess | PySink] = [go_alice, py_bob, py_alice, go_bob, py_plain]
    got = {(r, t): _count(r, t) for r in receivers for t in (T_SRC, T_TRIG, T_OUT)}
    for key, count in got.items():
        who = key[0].sfn.name if isinstance(key[0], PySink) else key[0].name
        assert count == want.get(key, 0), (who, hex(key[1]), count)
    assert _heads(go_alice, T_OUT) == {b"py>"}
    assert _heads(py_bob, T_OUT) == {b"go>"}
    assert {f["target"] for f in go_bob.frames()} == {"bob"}
    assert {f["target"] for f in go_alice.frames() if f["tag"] == T_OUT} == {"alice"}
    for sink in (py_bob, py_alice, py_plain):
        await sink.close()
