"""The client core's names, where ``yomo.client`` users import them from.

The core itself is the session layer (``yomo.session``), which the zipper's mesh
links use too; this module keeps ``yomo.client.core.ReconnectPolicy`` and friends
importable from the client package.
"""

from __future__ import annotations

from yomo.session import (
    THREAD_PENDING_BYTES,
    ClientCore,
    ClientState,
    ErrorHandler,
    ReconnectPolicy,
    RepeatedErrorLog,
    new_id,
    parse_address,
)

__all__ = [
    "THREAD_PENDING_BYTES",
    "ClientCore",
    "ClientState",
    "ErrorHandler",
    "ReconnectPolicy",
    "RepeatedErrorLog",
    "new_id",
    "parse_address",
]
