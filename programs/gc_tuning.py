"""Garbage-collector settings for processes that run the program under mocks.

Measured (cProfile of an offline dev run): about a third of the program phase was CPython's cyclic
collector walking objects that can never be garbage — the hundreds of thousands of classes, functions
and type hints the SDK modules create at import, and in a long-lived process (the test suite, a
warm runner) the runs it keeps. The SDK's Output and task churn triggers a collection every 700
allocations by default, and every few of those walk that whole heap again.

So: collections are rarer (`tune`), and what survives up to the start of a run is moved out of the
collector's view (`settle`: one collection, then `gc.freeze`). Garbage is still collected — a run's
own cycles go in its own collections, and the next `settle` frees what the previous run left.
Standard library only: platformctl calls `tune` before it imports anything heavy.
"""

from __future__ import annotations

import gc

# Allocations between young collections, and young/middle collections between older ones: sized so
# that a run of a few hundred resources needs a handful of full collections, not hundreds.
THRESHOLDS = (50_000, 20, 20)


def tune() -> None:
    """Rarer collections for the rest of the process (idempotent)."""
    gc.set_threshold(*THRESHOLDS)


def settle() -> None:
    """Collect what is garbage now, then stop scanning the survivors (imports, kept results).

    The first time in a process only freezes: a collection then would walk the whole import heap
    (a few tenths of a second) to free almost nothing. Later, the collection walks only what was
    allocated since the last settle (the previous run). Whether this process froze before is kept
    here, not asked of `gc.get_freeze_count()`: that walks every frozen object (measured 0.2-0.3 s a
    call once a long test session had frozen a few million)."""
    global _frozen
    if _frozen and _collect_on_settle:
        gc.collect()
    gc.freeze()
    _frozen = True


def keep_garbage_until_exit() -> None:
    """For a process that makes many runs and then exits within minutes (the test suite's workers):
    from now on `settle` freezes without collecting first. Every cycle that is garbage at a settle
    (each run's futures and tasks, ~12 MiB a dev run, and whatever else the process dropped since)
    is kept, finalizers unrun, until the process exits; each run saves the collection of it
    (0.06-0.14 s a dev run, measured alternating runs in one process). Measured on the suite's two
    workers at their end: max RSS 633 and 566 MiB against 418 and 331, open descriptors 79 and 61
    against 61 and 61. A process that lives on (the Automation API's caller) keeps the default."""
    global _collect_on_settle
    _collect_on_settle = False


def no_collection_until_exit() -> None:
    """For a forked child that runs one stack and exits (the warm runner's): no cyclic collection
    at all. What it inherited is frozen already; what it allocates lives until its exit a second
    later (tens of MiB at most). A dev child measured 5-15 % less CPU."""
    gc.disable()
    keep_garbage_until_exit()


# Set by the first `settle` of this process (a forked child inherits it with the frozen heap).
_frozen = False
_collect_on_settle = True
