"""programs/gc_tuning.py: what `settle` frees before it freezes the heap."""

from __future__ import annotations

import gc
import weakref

import pytest

from programs import gc_tuning


class _Node:
    pass


def _garbage_cycle() -> weakref.ref:
    """A cycle nothing refers to: only the cyclic collector can free it."""
    node = _Node()
    node.me = node
    return weakref.ref(node)


@pytest.mark.parametrize(
    ("settled_before", "keep_garbage", "freed"),
    [
        (True, False, True),  # a later run: the previous run's garbage is collected, then frozen
        (False, False, False),  # the first settle of a process only freezes (the import heap)
        (True, True, False),  # after keep_garbage_until_exit: frozen as it is, freed at exit
    ],
)
def test_settle_collects_the_previous_runs_garbage_unless_told_to_keep_it(
    monkeypatch, settled_before, keep_garbage, freed
):
    monkeypatch.setattr(gc_tuning, "_frozen", settled_before)
    monkeypatch.setattr(gc_tuning, "_collect_on_settle", True)  # restored after, whatever this test sets
    if keep_garbage:
        gc_tuning.keep_garbage_until_exit()
    gc.disable()  # no collection of its own between the cycle and `settle`
    try:
        ref = _garbage_cycle()
        gc_tuning.settle()
    finally:
        gc.enable()
    assert (ref() is None) is freed



def test_a_child_that_exits_collects_nothing(monkeypatch):
    """`no_collection_until_exit` (the warm runner's children): the collector is off, and `settle`
    leaves garbage in place."""
    monkeypatch.setattr(gc_tuning, "_frozen", True)
    monkeypatch.setattr(gc_tuning, "_collect_on_settle", True)
    was_enabled = gc.isenabled()
    try:
        gc_tuning.no_collection_until_exit()
        assert not gc.isenabled()
        ref = _garbage_cycle()
        gc_tuning.settle()
        assert ref() is not None
    finally:
        if was_enabled:
            gc.enable()
