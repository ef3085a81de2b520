"""An indexed connection-id table for the qh3 and aioquic QUIC servers (mass close).

Both libraries' ``QuicServer`` keep a table (connection id -> protocol) and, when
a connection ends, scan every entry to find its ids: O(connections) per close, so
10,000 connections closing at once cost 10,000 x 20,000 steps and stalled the zipper
for a minute (issue 17 item 2). ``index_connection_ids(server)`` swaps in a dict that
also keeps protocol -> ids, and a close hook that drops just those (``_compat``).
"""

from __future__ import annotations

from typing import Any

from . import _compat as compat

__all__ = ["CidTable", "index_connection_ids"]


class CidTable(dict[bytes, Any]):
    """``cid -> protocol`` that also knows each protocol's cids."""

    def __init__(self) -> None:
        super().__init__()
        self._by_protocol: dict[Any, set[bytes]] = {}

    def __setitem__(self, cid: bytes, protocol: Any) -> None:
        old = self.get(cid)
        if old is not None and old is not protocol:
            self._forget(cid, old)
        super().__setitem__(cid, protocol)
        self._by_protocol.setdefault(protocol, set()).add(cid)

    def __delitem__(self, cid: bytes) -> None:
        protocol = self[cid]
        super().__delitem__(cid)
        self._forget(cid, protocol)

    def pop(self, cid: bytes, *default: Any) -> Any:  # type: ignore[override]
        if cid not in self:
            if default:
                return default[0]
            raise KeyError(cid)
        protocol = self[cid]
        del self[cid]
        return protocol

    def clear(self) -> None:
        super().clear()
        self._by_protocol.clear()

    def _forget(self, cid: bytes, protocol: Any) -> None:
        cids = self._by_protocol.get(protocol)
        if cids is not None:
            cids.discard(cid)
            if not cids:
                del self._by_protocol[protocol]

    def drop_protocol(self, protocol: Any) -> None:
        """Remove every cid of ``protocol``: O(its cids), not O(table)."""
        for cid in self._by_protocol.pop(protocol, ()):
            if self.get(cid) is protocol:
                super().__delitem__(cid)


def index_connection_ids(server: Any) -> None:
    """Give a qh3/aioquic ``QuicServer`` the indexed table (before any connection arrives)."""
    table = CidTable()
    for cid, protocol in compat.server_protocols(server).items():  # none at start; kept if any
        table[cid] = protocol
    compat.install_cid_table(server, table, table.drop_protocol)
