"""Token auth across languages: Python clients on a Go zipper, Go clients on ours; same rejection texts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from goharness import GoPeers, GoProcess, GoZippers
from pypeers import py_sfn, run_py_source

from yomo.aio import Zipper
from yomo.errors import AuthenticationError, RejectedError

__all__: list[str] = []

TOKEN = "s3cret"
TAG = 0x33
#: client credential -> what Go v1.22.3 answers (RejectedFrame message); ours must say the same.
BAD = {"token:wrong": "invalid token: wrong", "": "invalid token: ", "basic:x": "authentication not found: basic"}  # fmt: skip


async def _py_rejection(zipper: object, credential: str, kind: str) -> str:
    try:
        if kind == "source":
            await run_py_source(zipper, n=1, credential=credential or None, linger=0)
        else:
            sink = py_sfn(zipper, credential=credential or None, out_tag=None)
            try:
                await sink.sfn.connect()
            finally:
                await sink.close()
    except RejectedError as exc:
        assert isinstance(exc, AuthenticationError), repr(exc)
        assert str(exc) == f"yomo: rejected by zipper: {exc.reason}"
        return exc.reason
    raise AssertionError(f"python {kind} with {credential!r} was let in")


async def _go_rejection(p: GoProcess) -> str:
    assert await p.async_wait_exit(15) == 2, p.tail()
    errors = [e["error"] for e in p.snapshot("connect_error")]
    assert len(errors) == 1, p.tail()
    return str(errors[0])


async def test_python_clients_on_a_go_zipper_with_token_auth(
    go_zipper: GoZippers, go_peer: GoPeers
) -> None:
    zipper = go_zipper(token=TOKEN)
    sink = py_sfn(zipper, observe=(TAG,), out_tag=None, credential=f"token:{TOKEN}")
    await sink.sfn.connect()
    await run_py_source(zipper, n=3, credential=f"token:{TOKEN}", linger=0.2)
    await sink.wait_count({TAG: 3}, 10)
    await sink.close()

    got = {c: await _py_rejection(zipper, c, "source") for c in BAD}
    got["sfn token:wrong"] = await _py_rejection(zipper, "token:wrong", "sfn")
    assert got == {**BAD, "sfn token:wrong": BAD["token:wrong"]}
    logged = {r["err"] for r in zipper.logs if r.get("msg") == "authentication failed"}
    assert logged == set(BAD.values())


async def test_go_clients_on_our_zipper_with_token_auth(
    py_zipper: Callable[..., Awaitable[Zipper]], go_peer: GoPeers
) -> None:
    zipper = await py_zipper(token=TOKEN)
    sink = await asyncio.to_thread(
        go_peer.sink, zipper, observe=(TAG,), credential=f"token:{TOKEN}"
    )
    ok = go_peer.source(zipper, n=3, credential=f"token:{TOKEN}")
    assert await ok.async_wait_exit(15) == 0, ok.tail()
    await sink.async_wait_for(lambda p: len(p.frames()) >= 3, 10, "3 frames")

    got = {c: await _go_rejection(go_peer.source(zipper, n=1, credential=c or None)) for c in BAD}
    bad_sfn = go_peer.sfn(zipper, credential="token:wrong", wait=False)
    got["sfn token:wrong"] = await _go_rejection(bad_sfn)
    assert got == {**BAD, "sfn token:wrong": BAD["token:wrong"]}
    assert zipper.stats()["rejections"] == 4
