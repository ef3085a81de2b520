"""Exact frame accounting: sequence numbers per producer in every payload.

A payload starts with ``producer (u32) | seq (u64) | sent at (f64, Unix s)`` and is
padded to its size. A ``Ledger`` on the receiving side counts, per producer, what
arrived once, what arrived again (duplicates) and what arrived after a later
frame of the same producer (reordered); lost is then exact: written minus the
distinct frames delivered. Pure code, no I/O, so it is unit-tested.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HEADER",
    "Ledger",
    "ProducerLedger",
    "gaps",
    "merge_ranges",
    "pack",
    "ranges_to_set",
    "replay_trail",
    "unpack",
]

HEADER = struct.Struct(">IQd")
#: One delivery in a sink's trail file: producer, seq, receive time, connection number.
TRAIL = struct.Struct(">IQdI")


def pack(producer: int, seq: int, sent_at: float, size: int) -> bytes:
    """A payload of ``size`` bytes (at least the header) carrying the sequence number."""
    head = HEADER.pack(producer, seq, sent_at)
    return head + b"." * max(0, size - len(head))


def unpack(payload: bytes) -> tuple[int, int, float]:
    """``(producer, seq, sent_at)`` of a payload made by ``pack``."""
    return HEADER.unpack_from(payload)  # type: ignore[return-value]


@dataclass
class ProducerLedger:
    """What one receiver got from one producer."""

    seen: set[int] = field(default_factory=set)
    delivered: int = 0
    duplicated: int = 0
    reordered: int = 0
    highest: int = -1

    def add(self, seq: int) -> None:
        if seq in self.seen:
            self.duplicated += 1
            return
        self.seen.add(seq)
        self.delivered += 1
        if seq < self.highest:
            self.reordered += 1
        else:
            self.highest = seq


@dataclass
class Ledger:
    """Per producer accounting on one receiver, plus the delivery timeline."""

    producers: dict[int, ProducerLedger] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    connection: str = ""
    on_connection: set[tuple[int, int]] = field(default_factory=set)
    duplicated_same_connection: int = 0

    def add(self, payload: bytes, now: float, connection: str = "") -> None:
        """Book one received payload; ``connection`` is the receiver's connection id then."""
        producer, seq, sent_at = unpack(payload)
        book = self.producers.get(producer)
        if book is None:
            book = self.producers[producer] = ProducerLedger()
        before = book.duplicated
        book.add(seq)
        if connection != self.connection:  # a new connection: its own duplicate count
            self.connection = connection
            self.on_connection = set()
        key = (producer, seq)
        if key in self.on_connection:
            self.duplicated_same_connection += 1
        else:
            self.on_connection.add(key)
        if book.duplicated == before:
            self.times.append(now)
            self.latencies.append(now - sent_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "producers": {
                str(p): {
                    "ranges": merge_ranges(b.seen),
                    "delivered": b.delivered,
                    "duplicated": b.duplicated,
                    "reordered": b.reordered,
                }
                for p, b in self.producers.items()
            },
            "times": [round(t, 4) for t in self.times],
            "duplicated_same_connection": self.duplicated_same_connection,
        }


def replay_trail(data: bytes) -> dict[str, Any]:
    """A killed sink's report, rebuilt from its trail file (see ``clients_proc.py``)."""
    ledger = Ledger()
    usable = len(data) - len(data) % TRAIL.size
    for producer, seq, now, conn in TRAIL.iter_unpack(data[:usable]):
        ledger.add(HEADER.pack(producer, seq, now), now, str(conn))
    return ledger.to_json()


def merge_ranges(seqs: Iterable[int]) -> list[list[int]]:
    """``{0,1,2,5,6}`` -> ``[[0, 3], [5, 7]]`` (half-open), compact for JSON."""
    out: list[list[int]] = []
    for seq in sorted(seqs):
        if out and out[-1][1] == seq:
            out[-1][1] = seq + 1
        else:
            out.append([seq, seq + 1])
    return out


def ranges_to_set(ranges: Iterable[Iterable[int]]) -> set[int]:
    """The inverse of ``merge_ranges``."""
    out: set[int] = set()
    for start, end in ranges:
        out.update(range(start, end))
    return out


def gaps(times: list[float], longer_than: float) -> list[tuple[float, float]]:
    """Stretches of the sorted delivery timeline with nothing delivered for ``longer_than`` s."""
    return [(a, b) for a, b in itertools.pairwise(times) if b - a > longer_than]
