"""Zipper addresses read as Go's core.ParseZipperAddr reads them (v1.22.3).

The rows were printed by Go itself (tests/interop/go/cmd/parity, ``parity addr``);
tests/interop/test_parity.py checks them against the live Go binary.
"""

from __future__ import annotations

import pytest

import yomo.aio
from yomo.session.address import join_address, parse_address

# (input, what Go returns): None where Go returns an error
GO_ROWS = [
    ("", "localhost:9000"),
    ("zipper", "zipper:9000"),
    (":9100", "localhost:9100"),
    ("localhost:", "localhost:9000"),
    ("10.0.0.2:9001", "10.0.0.2:9001"),
    ("[::1]", "[::1]:9000"),
    ("[::1]:9000", "[::1]:9000"),
    ("[::1]:", "[::1]:9000"),
    ("::1", None),
    ("a:b:c", None),
    ("h:abc", None),
    ("[::1", None),
    ("h]:1", None),
    ("[h]x:1", None),
]


@pytest.mark.parametrize(("addr", "go"), GO_ROWS)
def test_go_defaults(addr: str, go: str | None) -> None:
    if go is None:
        with pytest.raises(ValueError, match=r"^yomo: zipper address "):
            parse_address(addr)
    else:
        assert join_address(*parse_address(addr)) == go


@pytest.mark.parametrize("addr", ["h:0", "h:-1", "h:+80", "h:99999", "h:\u0661"])
def test_ports_go_only_refuses_when_dialling_are_refused_here(addr: str) -> None:
    with pytest.raises(ValueError, match="port"):
        parse_address(addr)


def test_messages_say_what_is_wrong() -> None:
    with pytest.raises(ValueError) as info:
        parse_address("::1")
    assert str(info.value) == (
        "yomo: zipper address '::1': too many colons (an IPv6 host needs brackets: [::1]:9000)"
    )
    with pytest.raises(ValueError) as info:
        parse_address("zipper:http")
    assert str(info.value) == "yomo: zipper address 'zipper:http': invalid port 'http'"


def test_clients_take_go_style_addresses() -> None:
    assert yomo.aio.Source("s", "zipper")._core.zipper_addr == "zipper:9000"
    assert yomo.aio.Source("s", ":9100")._core.zipper_addr == "localhost:9100"
    assert yomo.aio.StreamFunction("f", "[::1]")._core.zipper_addr == "[::1]:9000"
    with pytest.raises(ValueError, match="invalid port"):
        yomo.aio.Source("s", "zipper:http")
