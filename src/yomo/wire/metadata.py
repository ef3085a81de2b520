"""DataFrame metadata: a MessagePack map of str to str, with Go's set/delete semantics.

docs/protocol.md section 4. The frame codec carries metadata as opaque bytes; this module turns
them into a dict and back. Go: core/metadata/metadata.go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgpack

from yomo.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "SOURCE_ID",
    "SPAN_ID",
    "TARGET",
    "TID",
    "TRACED",
    "TRACE_ID",
    "WANTED_TARGET",
    "decode_metadata",
    "encode_metadata",
    "merge_metadata",
    "source_metadata_encoder",
    "source_metadata_head",
]

#: Id of the client that first wrote the data.
SOURCE_ID = "yomo-source-id"
#: Transaction id, new for every write from a source.
TID = "yomo-tid"
#: OpenTelemetry trace id (32 hex chars).
TRACE_ID = "yomo-trace-id"
#: OpenTelemetry span id (16 hex chars).
SPAN_ID = "yomo-span-id"
#: ``"true"``/``"false"``: whether a real span was recorded.
TRACED = "yomo-traced"
#: Only stream functions whose wanted target equals this value receive the frame.
TARGET = "yomo-target"
#: Set on the zipper's side from the handshake's wanted target.
WANTED_TARGET = "yomo-wanted-target"


def _text(value: object) -> str | None:
    """A msgpack str as is, a bin as UTF-8 text (Go's decoder takes both), else None."""
    if type(value) is str:
        return value
    if type(value) is bytes:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def decode_metadata(b: bytes | bytearray | memoryview) -> dict[str, str]:
    """Decode DataFrame metadata.

    Args:
        b: the metadata bytes of a DataFrame.

    Returns:
        The map; empty bytes (and a msgpack nil, which Go decodes as an empty map) give ``{}``.

    Raises:
        RemoteProtocolError: ``b`` is not exactly one MessagePack map of strings to strings.
    """
    if not len(b):
        return {}
    try:
        # maps as lists of pairs (arrays stay tuples): every entry is checked, also one
        # that a repeated key overrides, as the native reader does (metadata.rs)
        value = msgpack.unpackb(
            b, raw=False, strict_map_key=False, use_list=False, object_pairs_hook=list
        )
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(
            f"metadata holds a string that is not valid UTF-8: {exc.reason}"
        ) from None
    except msgpack.ExtraData as exc:
        raise RemoteProtocolError(
            f"metadata has {len(exc.extra)} bytes after the MessagePack map"
        ) from None
    except (ValueError, msgpack.UnpackException, TypeError, OverflowError) as exc:
        raise RemoteProtocolError(f"metadata is not valid MessagePack: {exc}") from None
    if value is None:
        return {}
    if type(value) is not list:
        raise RemoteProtocolError(
            f"metadata must be a MessagePack map of strings, got {type(value).__name__}"
        )
    out: dict[str, str] = {}
    for k, v in value:
        key = _text(k)
        val = _text(v)
        if key is None or val is None:
            raise RemoteProtocolError(
                "metadata must be a MessagePack map of strings to strings, "
                f"got {type(k).__name__} -> {type(v).__name__} entry"
            )
        out[key] = val
    return out


def _set(m: dict[str, str], k: object, v: object) -> None:
    # Go: metadata.M.Set: empty key is ignored, empty value deletes
    if not isinstance(k, str) or not isinstance(v, str):
        raise LocalProtocolError(
            f"metadata keys and values must be str, got {type(k).__name__} -> {type(v).__name__}"
        )
    if not k:
        return
    if not v:
        m.pop(k, None)
    else:
        m[k] = v


def encode_metadata(m: Mapping[str, str]) -> bytes:
    """Encode metadata as a MessagePack map.

    Args:
        m: keys to values; an empty key is skipped and an empty value drops its key.

    Returns:
        The msgpack bytes, or ``b""`` when nothing is left (Go's ``M.Encode``).

    Raises:
        LocalProtocolError: a key or value is not a str, or not encodable as UTF-8.
    """
    clean: dict[str, str] = {}
    for k, v in m.items():
        _set(clean, k, v)
    if not clean:
        return b""
    try:
        data: bytes = msgpack.packb(clean, use_bin_type=True)
    except (UnicodeEncodeError, ValueError, TypeError) as exc:
        raise LocalProtocolError(f"metadata cannot be encoded: {exc}") from None
    return data


def source_metadata_encoder(source_id: str) -> Callable[[str], bytes]:
    """A fast encoder of a source's per-write metadata, ``{yomo-source-id, yomo-tid}``.

    Returns ``encode(tid)``, byte for byte what ``encode_metadata({SOURCE_ID: source_id,
    TID: tid})`` gives for a non-empty ``tid``, without building a dict per write.
    """
    if not source_id:
        return lambda tid: encode_metadata({SOURCE_ID: source_id, TID: tid})
    packb = msgpack.packb
    head: bytes = b"\x82" + packb(SOURCE_ID) + packb(source_id) + packb(TID)

    def encode(tid: str) -> bytes:
        if not tid:
            return encode_metadata({SOURCE_ID: source_id, TID: tid})
        packed: bytes = packb(tid)
        return head + packed

    return encode


#: Length of the tids ``yomo.session.new_id`` makes (URL-safe ASCII characters).
TID_SIZE = 21


def source_metadata_head(source_id: str) -> bytes:
    """A source write's metadata up to its tid's own bytes: ``head + tid.encode()`` is
    ``encode_metadata({SOURCE_ID: source_id, TID: tid})`` for a tid of ``TID_SIZE`` ASCII
    characters (``yomo.wire.data_frame_encoder`` builds the rest once per tag)."""
    packb = msgpack.packb
    head: bytes = b"\x82" + packb(SOURCE_ID) + packb(source_id) + packb(TID)
    return head + bytes([0xA0 | TID_SIZE])


def merge_metadata(base: Mapping[str, str], over: Mapping[str, str]) -> dict[str, str]:
    """Merge ``over`` on top of ``base``: its values win, its empty values delete the key.

    Both maps go through Go's ``Set`` rules, so the result holds no empty key or value.

    Raises:
        LocalProtocolError: a key or value is not a str.
    """
    out: dict[str, str] = {}
    for k, v in base.items():
        _set(out, k, v)
    for k, v in over.items():
        _set(out, k, v)
    return out
