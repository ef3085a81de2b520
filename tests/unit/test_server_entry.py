"""The zipper socket's entry (``transport/_server.py`` ``_Entry``): an established
connection's datagram goes straight to its connection (no second header parse in
the QUIC server); handshake packets and unknown ids go to the right server (qh3, or
aioquic for clients with empty connection ids)."""

from __future__ import annotations

from typing import Any

from yomo.transport._server import _Entry


class Recorder:
    def __init__(self, name: str, log: list[tuple[str, bytes]]) -> None:
        self.name, self.log = name, log
        self._protocols: dict[bytes, Any] = {}  # what compat.server_protocols reads

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.log.append((self.name, data))


def _long(dcid: bytes, scid: bytes) -> bytes:
    """A long-header (Initial) packet's first bytes: DCID and SCID with their lengths."""
    return (
        bytes([0xC0])
        + b"\x00\x00\x00\x01"
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
        + b"rest"
    )


def test_datagrams_go_to_their_connection_or_server() -> None:
    log: list[tuple[str, bytes]] = []
    fast, slow = Recorder("qh3", log), Recorder("aioquic", log)
    a, b = Recorder("conn-a", log), Recorder("conn-b", log)
    fast._protocols[b"A" * 8] = a
    slow._protocols[b"B" * 8] = b
    entry = _Entry(fast, slow, 8)
    to_a, to_b = b"\x41" + b"A" * 8 + b"data", b"\x52" + b"B" * 8 + b"data"
    unknown, no_fixed_bit = b"\x41" + b"C" * 8 + b"data", b"\x01" + b"A" * 8 + b"data"
    new_go, new_py = _long(b"D" * 8, b""), _long(b"E" * 8, b"F" * 8)
    for datagram in (to_a, to_b, unknown, no_fixed_bit, new_go, new_py, _long(b"B" * 8, b"")):
        entry.datagram_received(datagram, ("127.0.0.1", 1))
    assert log == [
        ("conn-a", to_a),
        ("conn-b", to_b),
        ("qh3", unknown),
        ("qh3", no_fixed_bit),
        ("aioquic", new_go),  # an empty source id: quic-go, served by aioquic
        ("qh3", new_py),
        ("aioquic", _long(b"B" * 8, b"")),  # a handshake packet of an aioquic connection
    ]


def test_one_server_takes_everything_but_its_connections() -> None:
    log: list[tuple[str, bytes]] = []
    only = Recorder("aioquic", log)
    a = Recorder("conn-a", log)
    only._protocols[b"A" * 8] = a
    entry = _Entry(only, None, 8)
    to_a = b"\x41" + b"A" * 8 + b"x"
    entry.datagram_received(to_a, None)
    entry.datagram_received(_long(b"D" * 8, b""), None)
    assert log == [("conn-a", to_a), ("aioquic", _long(b"D" * 8, b""))]
