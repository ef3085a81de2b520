"""The frozen heap of a pure-Python zipper (``yomo.zipper.heap``): when it freezes,
and that what freezing holds back (cyclic garbage in the frozen heap) is collected
once enough connections closed, in a quiet second."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from yomo.zipper.heap import LOOK_EVERY, LOOK_FLOOR, FrozenHeap

__all__: list[str] = []


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Node:
    """One half of a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def clock() -> Iterator[Clock]:
    yield Clock()
    gc.unfreeze()


def cycles(n: int) -> list[Node]:
    nodes = []
    for _ in range(n):
        a, b = Node(), Node()
        a.other, b.other = b, a
        nodes.append(a)
    return nodes


def frozen(node: Node) -> bool:
    """True when ``node`` is in the frozen heap (no collection sees it)."""
    return not any(node in gc.get_objects(generation) for generation in range(3))


def test_the_first_holder_freezes_and_the_last_thaws(clock: Clock) -> None:
    heap = FrozenHeap(clock=clock)
    first = heap.hold()
    second = heap.hold()
    assert gc.get_freeze_count() > 0
    first.release()
    first.release()  # twice: still one zipper's release
    assert heap.holders == 1
    assert gc.get_freeze_count() > 0  # one zipper still runs
    second.release()
    assert gc.get_freeze_count() == 0


def test_ticks_freeze_new_objects_once_every_interval(clock: Clock) -> None:
    heap = FrozenHeap(every=1.0, clock=clock)
    share = heap.hold()
    (node,) = cycles(1)
    share.tick(10, 0)  # within the second: nothing
    assert not frozen(node)
    clock.now += 1.0
    share.tick(10, 0)
    assert frozen(node)
    share.release()


def test_frozen_cyclic_garbage_is_collected_once_enough_connections_closed(
    clock: Clock,
) -> None:
    heap = FrozenHeap(clock=clock)
    share = heap.hold()
    leaked = cycles(100)
    refs = [weakref.ref(node) for node in leaked]
    clock.now += 1.0
    share.tick(2 * LOOK_FLOOR, 0)  # frozen while alive ...
    del leaked  # ... then garbage: the collector does not see it
    gc.collect()
    assert all(r() is not None for r in refs)
    # as many closes as connections were open at the peak: not due yet
    clock.now += 1.0
    share.tick(0, 2 * LOOK_FLOOR)
    assert heap.looks == 0
    # one more, but in a busy second (a mass close): it waits
    clock.now += 1.0
    share.tick(0, 2 * LOOK_FLOOR + 100)
    assert heap.looks == 0
    # the first quiet second: one full look frees them, and the heap is frozen again
    clock.now += 1.0
    share.tick(0, 2 * LOOK_FLOOR + 101)
    assert heap.looks == 1
    assert not any(r() is not None for r in refs)
    assert gc.get_freeze_count() > 0
    share.release()


def test_a_look_that_never_finds_a_quiet_second_runs_anyway(clock: Clock) -> None:
    heap = FrozenHeap(clock=clock)
    share = heap.hold()
    closed = 0
    while heap.looks == 0:
        clock.now += 1.0
        closed += 100  # busy seconds only
        share.tick(10, closed)
        assert closed <= 4 * LOOK_FLOOR + 100
    assert closed > 4 * LOOK_FLOOR
    share.release()


def test_frozen_cyclic_garbage_with_no_connection_closing_is_collected_in_time(
    clock: Clock,
) -> None:
    """Garbage that is no connection's (an AI bridge request, say) waits at most
    ``LOOK_EVERY``, and a busy second puts the look off."""
    heap = FrozenHeap(clock=clock)
    share = heap.hold()
    leaked = cycles(10)
    refs = [weakref.ref(node) for node in leaked]
    clock.now += 1.0
    share.tick(5, 0)  # frozen while alive, then garbage
    del leaked
    clock.now += LOOK_EVERY - 2.0
    share.tick(5, 0)
    assert heap.looks == 0
    assert all(r() is not None for r in refs)
    clock.now += 1.0
    share.tick(5, 100)  # due, but a busy second
    assert heap.looks == 0
    clock.now += 1.0
    share.tick(5, 100)
    assert heap.looks == 1
    assert not any(r() is not None for r in refs)
    clock.now += 1.0
    share.tick(5, 100)  # the clock starts again from the look
    assert heap.looks == 1
    share.release()


def test_no_look_while_collections_are_off(clock: Clock) -> None:
    heap = FrozenHeap(clock=clock)
    share = heap.hold()
    gc.disable()
    try:
        clock.now += 1.0
        share.tick(0, 10 * LOOK_FLOOR)
    finally:
        gc.enable()
    assert heap.looks == 0
    share.release()


def test_zippers_in_one_process_are_counted_together(clock: Clock) -> None:
    """Two zippers share the heap: each reports its own running count of closes, and a
    look is due on their sum (one zipper's count is never taken as the other's news)."""
    heap = FrozenHeap(clock=clock)
    busy, small = heap.hold(), heap.hold()
    clock.now += 1.0
    busy.tick(3 * LOOK_FLOOR, 0)
    clock.now += 1.0
    busy.tick(3 * LOOK_FLOOR, 2 * LOOK_FLOOR)  # 2,000 closed of 3,000: not due
    for second in range(1, 20):
        clock.now += 1.0  # then the big zipper closes nothing, the small one 1 a second
        if second % 2:
            busy.tick(3 * LOOK_FLOOR, 2 * LOOK_FLOOR)
        else:
            small.tick(1, second)
    assert heap.looks == 0
    # the big zipper closes the rest and stops: its closes still count, and the
    # look comes in the first quiet second after
    clock.now += 1.0
    busy.tick(0, 3 * LOOK_FLOOR + 1)
    busy.release()
    assert heap.looks == 0  # a busy second
    clock.now += 1.0
    small.tick(1, 20)
    assert heap.looks == 1
    small.release()
    assert gc.get_freeze_count() == 0


def test_holds_and_releases_from_threads_balance() -> None:
    heap = FrozenHeap()

    def zipper() -> None:
        for _ in range(200):
            share = heap.hold()
            share.tick(1, 1)
            share.release()

    threads = [threading.Thread(target=zipper) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert heap.holders == 0
    assert gc.get_freeze_count() == 0
