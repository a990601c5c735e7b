"""Shared fixtures: the shipped stacks' raw config and their offline runs (computed once per session)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from programs import gc_tuning
from programs.offline import OfflineRun, read_stack_file, run_offline, stack_file

_RUNS: dict[str, OfflineRun] = {}


def shipped_config(stack: str) -> dict[str, Any]:
    return read_stack_file(stack_file(stack))


def offline_run(stack: str) -> OfflineRun:
    """The offline run of a shipped stack; cached because every run re-executes the whole program."""
    if stack not in _RUNS:
        _RUNS[stack] = run_offline(stack, shipped_config(stack))
    return _RUNS[stack]


@pytest.fixture(scope="session")
def dev_run() -> OfflineRun:
    return offline_run("dev")


@pytest.fixture(scope="session")
def prod_run() -> OfflineRun:
    return offline_run("prod")


def mutated_config(stack: str, key: str, value: Any) -> dict[str, Any]:
    """Copy of a shipped stack's config with one dotted key set (or removed with value=DELETE)."""
    cfg = copy.deepcopy(shipped_config(stack))
    top, *rest = key.split(".")
    full = top if ":" in top else f"k8s-platform:{top}"
    if not rest:
        if value is DELETE:
            cfg.pop(full, None)
        else:
            cfg[full] = value
        return cfg
    node = cfg.setdefault(full, {})
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(rest[-1], None)
    else:
        node[rest[-1]] = value
    return cfg


_VARIANTS: dict[str, OfflineRun] = {}


def variant_run(stack: str, key: str, value: Any) -> OfflineRun:
    """The offline run of a shipped stack with one dotted key changed, computed once per session for
    each distinct variant (tests read runs, never change them)."""
    cfg = mutated_config(stack, key, value)
    ident = json.dumps([stack, cfg], sort_keys=True, default=repr)
    if ident not in _VARIANTS:
        _VARIANTS[ident] = run_offline(stack, cfg)
    return _VARIANTS[ident]


def variants_run(stack: str, changes: dict[str, Any]) -> OfflineRun:
    """Like `variant_run`, with several dotted keys set at once (same per-session cache)."""
    cfg = shipped_config(stack)
    for key, value in changes.items():
        top, *rest = key.split(".")
        full = top if ":" in top else f"k8s-platform:{top}"
        node = cfg.setdefault(full, {})
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        if rest:
            node[rest[-1]] = value
        else:
            cfg[full] = value
    ident = json.dumps([stack, cfg], sort_keys=True, default=repr)
    if ident not in _VARIANTS:
        _VARIANTS[ident] = run_offline(stack, cfg)
    return _VARIANTS[ident]


@pytest.fixture
def mutate_config() -> Callable[..., dict[str, Any]]:
    """Copy of a shipped stack's config with one dotted key set (or removed with value=DELETE)."""
    return mutated_config


DELETE = object()


def pytest_configure(config):
    # The collector settings platformctl uses (programs/gc_tuning.py); each offline run also settles
    # the heap first, so the runs this session keeps are not rescanned by every later collection.
    gc_tuning.tune()
    # Off for the whole session, module- and session-scoped fixtures included (they are built before
    # the per-test fixture below): the suite must neither read nor write the repository's plan cache.
    os.environ.setdefault("PLATFORMCTL_NO_CACHE", "1")


@pytest.fixture(autouse=True)
def _no_plan_cache(monkeypatch):
    """Tests see fresh runs: the plan cache (programs/platformctl/plan_cache.py) is off unless a test
    turns it on for itself."""
    monkeypatch.setenv("PLATFORMCTL_NO_CACHE", "1")
