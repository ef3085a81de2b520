"""The re-send mark: which earlier write a re-sent DataFrame repeats.

A client that lost its connection writes the frames the zipper's transport never
acknowledged again on its next connection (``yomo.session.journal``). The zipper may
have routed some of them already (it was only paused, or its acknowledgements were
lost), so each re-sent frame carries, in its metadata, the connection it was first
written on and its place there: ``yomo-resent: "<connection id>/<n>"`` (the n-th
DataFrame of that connection, from 0). A zipper that kept that connection's count
routes each frame once (``yomo.zipper.resend``); others pass the key on unchanged.

Why not ``(source id, tid)``: a stream function's writes keep the handled frame's
source id and tid (docs/protocol.md section 6), so one tid may name many frames.
"""

from __future__ import annotations

from .frames import DataFrame, encode_data_frame
from .metadata import decode_metadata, encode_metadata
from .parse import decode_frame

__all__ = ["RESENT", "client_key", "mark_resent", "parse_resent"]

#: Metadata key of a re-sent frame: ``"<connection id>/<n>"``.
RESENT = "yomo-resent"


def mark_resent(frame: bytes, connection_id: str, index: int) -> bytes:
    """``frame`` (an encoded DataFrame) marked as the ``index``-th write of ``connection_id``.

    A frame already marked by this client (re-sent before, on a connection that died
    too) keeps its first mark: it names where the frame was first written. A mark of
    another client (a handled frame's metadata copied by hand into a write, or passed
    on by Go's zipper, which does not strip it) is replaced: it is not this write's.
    """
    decoded = decode_frame(frame)
    if not isinstance(decoded, DataFrame):
        return frame
    md = decode_metadata(decoded.metadata)
    mark = md.get(RESENT)
    if mark is not None:
        parsed = parse_resent(mark)
        if parsed is not None and client_key(parsed[0]) == client_key(connection_id):
            return frame
    md[RESENT] = f"{connection_id}/{index}"
    return encode_data_frame(decoded.tag, encode_metadata(md), decoded.payload)


def client_key(connection_id: str) -> str:
    """The client id of ``<client id>-<n>`` (the whole id when it has no ``-``)."""
    head, sep, _ = connection_id.rpartition("-")
    return head if sep else connection_id


def parse_resent(value: str) -> tuple[str, int] | None:
    """``"abc-1/42"`` -> ``("abc-1", 42)``; None for anything else."""
    connection_id, sep, index = value.rpartition("/")
    if not sep or not connection_id or not index.isdigit() or len(index) > 18:
        return None
    return connection_id, int(index)
