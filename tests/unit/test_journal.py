"""The client's journal: frames kept until acknowledged, bounded, with the recent acks."""

from __future__ import annotations

from yomo.session.journal import Journal


def test_trim_forgets_acknowledged_frames_and_remembers_when():
    j = Journal()
    offset = 0
    for i in range(5):
        offset += 10
        j.add(offset, b"f%d" % i)
    assert j.trim(25, now=1.0) == 2  # frames ending at 10 and 20; 30 is not whole
    assert j.unacked() == [b"f2", b"f3", b"f4"]
    assert j.trim(50, now=2.0) == 3
    assert j.unacked() == [] and j.bytes == 0
    assert j.acked_since(1.5) == 3
    assert j.acked_since(0.0) == 5


def test_bounded_in_bytes_and_counts_what_it_forgot():
    j = Journal(max_bytes=100)
    for i in range(30):
        j.add((i + 1) * 10, b"x" * 10)
    assert j.bytes <= 100
    assert len(j) == 10
    assert j.untracked == 20
    assert j.unacked()[0] == b"x" * 10


def test_resent_frames_are_marked_with_their_first_connection_and_place() -> None:
    from yomo.wire import DataFrame, decode_frame, decode_metadata, encode_data_frame
    from yomo.wire import encode_metadata as enc
    from yomo.wire.resent import RESENT, parse_resent

    def frame(i: int, md: dict[str, str]) -> bytes:
        return encode_data_frame(0x10, enc({"yomo-tid": f"t{i}", **md}), b"%d" % i)

    j = Journal(max_bytes=1 << 20, connection_id="cid-3")
    sent = 0
    for i in range(5):
        data = frame(i, {RESENT: "cid-1/7"} if i == 4 else {})
        sent += len(data)
        j.add(sent, data)
    j.trim(2 * len(frame(0, {})), now=0.0)  # the first two acknowledged
    marks = []
    for data in j.resend():
        f = decode_frame(data)
        assert isinstance(f, DataFrame)
        md = decode_metadata(f.metadata)
        marks.append(parse_resent(md[RESENT]))
        assert md["yomo-tid"] == f"t{int(f.payload)}" and f.tag == 0x10
    # places 2 and 3 of this connection; the fifth keeps the mark of its first write
    assert marks == [("cid-3", 2), ("cid-3", 3), ("cid-1", 7)]
    assert parse_resent("no-slash") is None and parse_resent("a/-1") is None


def test_a_re_send_replaces_another_clients_mark() -> None:
    """A mark naming another client (a handled frame's, copied into a function's write)
    is not this write's: the re-send carries this connection's own mark instead."""
    from yomo.wire import DataFrame, decode_frame, decode_metadata, encode_data_frame
    from yomo.wire import encode_metadata as enc
    from yomo.wire.resent import RESENT, client_key, mark_resent

    foreign = encode_data_frame(0x10, enc({"yomo-tid": "t", RESENT: "src-0/5"}), b"x")
    own = encode_data_frame(0x10, enc({"yomo-tid": "t", RESENT: "fn-0/2"}), b"x")
    broken = encode_data_frame(0x10, enc({RESENT: "garbage"}), b"x")

    def mark(data: bytes) -> str:
        f = decode_frame(data)
        assert isinstance(f, DataFrame)
        return decode_metadata(f.metadata)[RESENT]

    assert mark(mark_resent(foreign, "fn-1", 9)) == "fn-1/9"
    assert mark(mark_resent(own, "fn-1", 9)) == "fn-0/2"  # its first write's place
    assert mark(mark_resent(broken, "fn-1", 9)) == "fn-1/9"
    assert client_key("a-b-7") == "a-b" and client_key("plain") == "plain"


def test_over_its_bound_it_trims_what_is_acknowledged_by_now_before_forgetting():
    """A fast writer fills the journal between two watchdog trims: over ``max_bytes`` the
    journal asks what is acknowledged by now and trims that first, so frames that may
    still be re-sent are not forgotten (and not counted as untracked) needlessly."""
    acked = [0]
    j = Journal(max_bytes=100, acked_to=lambda: acked[0], clock=lambda: 5.0)
    for i in range(30):
        j.add((i + 1) * 10, b"x" * 10)
        acked[0] = (i + 1) * 10 - 40  # the transport acknowledged all but the last 4
    assert j.untracked == 0
    assert j.bytes <= 100
    assert j.acked_since(5.0) == 30 - len(j)
    # nothing acknowledged any more: it forgets the oldest, as before, and counts them
    stuck = Journal(max_bytes=100, acked_to=lambda: 0, clock=lambda: 0.0)
    for i in range(30):
        stuck.add((i + 1) * 10, b"x" * 10)
    assert len(stuck) == 10 and stuck.untracked == 20
