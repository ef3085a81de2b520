"""The indexed connection-id table: a closing connection drops only its own ids."""

from __future__ import annotations

import pytest

from yomo.transport._cids import CidTable, index_connection_ids


def test_table_tracks_ids_per_protocol():
    a, b = object(), object()
    t = CidTable()
    t[b"a1"], t[b"a2"], t[b"b1"] = a, a, b
    del t[b"a1"]
    t[b"b2"] = b
    t[b"a2"] = b  # an id moving to another connection leaves the first one's set
    assert t.pop(b"nope", None) is None
    with pytest.raises(KeyError):
        t.pop(b"nope")
    t.drop_protocol(a)
    assert dict(t) == {b"a2": b, b"b1": b, b"b2": b}
    t.drop_protocol(b)
    assert dict(t) == {} and t._by_protocol == {}


@pytest.mark.parametrize("library", ["qh3", "aioquic"])
async def test_servers_use_the_index(library):
    import importlib

    server_cls = importlib.import_module(f"{library}.asyncio.server").QuicServer
    config = importlib.import_module(f"{library}.quic.configuration").QuicConfiguration(
        is_client=False
    )
    server = server_cls(configuration=config, create_protocol=lambda *a, **k: None)
    index_connection_ids(server)
    p, q = object(), object()
    for i in range(1000):
        server._protocols[b"p%d" % i] = p
    server._protocols[b"q"] = q
    server._connection_terminated(p)
    assert dict(server._protocols) == {b"q": q}
