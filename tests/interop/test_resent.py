"""A re-sent frame's mark (``yomo-resent``) never reaches a stream function's own writes.

A source writes again what its lost connection never had acknowledged, each frame
marked with the connection it was first written on (``yomo.wire.resent``). Our zipper
strips the mark as it routes; Go's zipper does not know the key and passes it on, as it
passes on any metadata. A stream function writes its results with the handled frame's
metadata (Go: core/serverless/context.go Write), so with Go's zipper our function
would copy the producer's mark into its own writes: foreign marks the zipper ignores,
and the function's own re-sends would keep them and not be de-duplicated. The
function drops the mark before handling; the Go sink shows what each zipper passes on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from goharness import GoPeers, zipper_addr
from pypeers import PLAIN_TLS, py_sfn

from yomo.aio import Zipper
from yomo.session.dial import handshake
from yomo.session.handshake import hello_frame
from yomo.transport import DEFAULT_CLIENT_SETTINGS, dial
from yomo.wire import ClientType, encode_data_frame, encode_metadata
from yomo.wire.resent import RESENT, mark_resent

__all__: list[str] = []

T_IN, T_OUT = 0x51, 0x52
N = 20


async def _marked_source(addr: str) -> Any:
    """A source connection writing by hand what a reconnected source re-sends."""
    host, port = addr.rsplit(":", 1)
    conn = await dial(host, int(port), tls=PLAIN_TLS, settings=DEFAULT_CLIENT_SETTINGS)
    hello = hello_frame(name="src", connection_id="src-1", client_type=ClientType.SOURCE)
    return await handshake(conn, hello, zipper=addr, timeout=10.0)


async def test_a_functions_writes_never_carry_a_handled_frames_re_send_mark(
    any_zipper: Any, go_peer: GoPeers
) -> None:
    fn = py_sfn(any_zipper, name="py-fn", observe=(T_IN,), out_tag=T_OUT, spec="upper")
    await fn.sfn.connect()
    sink = py_sfn(any_zipper, name="py-sink", observe=(T_OUT,), out_tag=None)
    await sink.sfn.connect()
    go_sink = await asyncio.to_thread(
        go_peer.sink, any_zipper, name="go-sink", observe=(T_IN, T_OUT)
    )
    src = await _marked_source(zipper_addr(any_zipper))
    try:
        for i in range(N):
            md = encode_metadata({"yomo-source-id": "src", "yomo-tid": f"t{i}"})
            # frame i of the source's earlier connection src-0, written again on src-1
            src.send_nowait(mark_resent(encode_data_frame(T_IN, md, b"f%02d" % i), "src-0", i))
        await sink.wait_count({T_OUT: N}, 30.0)
        await go_sink.async_wait_for(lambda p: len(p.frames()) >= 2 * N, 30.0, "both tags")
    finally:
        await src.aclose()
    outs = sink.by_tag(T_OUT)
    assert sorted(f.head for f in outs) == [b"F%02d" % i for i in range(N)]
    assert all(RESENT not in f.md for f in outs), [f.md for f in outs]
    assert all(RESENT not in f.md for f in fn.frames)  # handlers never see it either
    # the function's writes keep the rest of the handled frame's metadata (Go's rule)
    assert sorted(f.tid or "" for f in outs) == sorted(f"t{i}" for i in range(N))
    seen = {(f["tag"], f.get("md", {}).get(RESENT)) for f in go_sink.frames()}
    outs_marks = {mark for tag, mark in seen if tag == T_OUT}
    assert outs_marks == {None}, seen
    in_marks = {mark for tag, mark in seen if tag == T_IN}
    if isinstance(any_zipper, Zipper):
        assert in_marks == {None}, seen  # our zipper strips the mark as it routes
    else:
        assert in_marks == {f"src-0/{i}" for i in range(N)}, seen  # Go's passes it on
