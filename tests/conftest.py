"""Shared fixtures: the shipped stacks' raw config and their offline runs (computed once per session)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from programs import gc_tuning, offline
from programs.offline import OfflineRun, read_stack_file, stack_file

# Every run of the program this session, by its stack and exact config: the suite asks for the same
# run from many places (fixtures, the API, the CLI in-process), and each costs 0.5-1 s of CPU.
_RUNS: dict[str, OfflineRun] = {}
_run_program = offline.run_offline
# False while a test that patches something runs (it takes `monkeypatch`, itself or through one of
# its fixtures): what it patched may change the run, so it gets a run of its own.
_SHARE_RUNS = [True]


def _run_once(stack: str, raw_config: dict[str, Any]) -> OfflineRun:
    ident = json.dumps([stack, raw_config], sort_keys=True, default=repr)
    if ident not in _RUNS:
        _RUNS[ident] = _run_program(stack, raw_config)
    return _RUNS[ident]


def _shared_run_offline(stack: str, raw_config: dict[str, Any], program=None) -> OfflineRun:
    """`programs.offline.run_offline` for the session: a run already made with the same stack and
    config is returned as a deep copy (callers outside the fixtures may change what they get)."""
    if program is not None or not _SHARE_RUNS[0]:
        return _run_program(stack, raw_config, program)
    return copy.deepcopy(_run_once(stack, raw_config))


# Installed before any test module imports it (`from programs.offline import run_offline`).
offline.run_offline = _shared_run_offline
run_offline = _shared_run_offline


_SHIPPED: dict[str, dict[str, Any]] = {}


def shipped_config(stack: str) -> dict[str, Any]:
    """A shipped stack file's config, a copy of its own for each caller (600 calls a session; the file
    is read and checked once)."""
    if stack not in _SHIPPED:
        _SHIPPED[stack] = read_stack_file(stack_file(stack))
    return copy.deepcopy(_SHIPPED[stack])


def offline_run(stack: str) -> OfflineRun:
    """The offline run of a shipped stack, made once per session (tests read runs, never change them)."""
    return _run_once(stack, shipped_config(stack))


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


def variant_run(stack: str, key: str, value: Any) -> OfflineRun:
    """The offline run of a shipped stack with one dotted key changed, computed once per session for
    each distinct variant (tests read runs, never change them)."""
    return _run_once(stack, mutated_config(stack, key, value))


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
    return _run_once(stack, cfg)


@pytest.fixture
def mutate_config() -> Callable[..., dict[str, Any]]:
    """Copy of a shipped stack's config with one dotted key set (or removed with value=DELETE)."""
    return mutated_config


DELETE = object()


def pytest_configure(config):
    # The collector settings platformctl uses (programs/gc_tuning.py); each offline run also settles
    # the heap first, so the runs this session keeps are not rescanned by every later collection.
    gc_tuning.tune()
    # The session and its workers end within minutes: each run's garbage is left to their exit.
    gc_tuning.keep_garbage_until_exit()
    # Off for the whole session, module- and session-scoped fixtures included (they are built before
    # the per-test fixture below): the suite must neither read nor write the repository's plan cache.
    os.environ.setdefault("PLATFORMCTL_NO_CACHE", "1")
    # moto builds ~1,300 public AMIs (each with a volume and a snapshot) whenever a test's EC2 backend
    # is created: 0.26 s a test. Tests that launch instances register the image they use.
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    _share_botocore_models()


def _share_botocore_models() -> None:
    """One botocore data loader for every session the suite creates (each boto3 client in a fresh
    session parsed its service's JSON model again: ~60 ms a client, hundreds of clients under moto).
    The loaded models are read-only: nothing in botocore, boto3 or moto changes them in place."""
    import botocore.loaders
    import botocore.session

    shared: dict[Any, Any] = {}
    create = botocore.loaders.create_loader

    def create_shared(search_path_string=None):
        if search_path_string not in shared:
            shared[search_path_string] = create(search_path_string)
        return shared[search_path_string]

    botocore.session.create_loader = create_shared


@pytest.fixture(autouse=True)
def _share_runs_unless_patched(request):
    """Runs are shared (see `_shared_run_offline`) except in a test that patches: one that takes
    `monkeypatch` directly or through a fixture of its own, unless it is marked
    `patches_outside_the_program` (what it patches is downstream of the run: the plan, the policy
    config, the environment of a command)."""
    if request.node.get_closest_marker("patches_outside_the_program"):
        _SHARE_RUNS[0] = True
        yield
        return
    defs = request.node._fixtureinfo.name2fixturedefs
    patches = any(
        "monkeypatch" in fixturedef.argnames
        for name, fixturedefs in defs.items()
        if name != "_no_plan_cache"
        for fixturedef in fixturedefs
    ) or "monkeypatch" in request.node._fixtureinfo.argnames
    _SHARE_RUNS[0] = not patches
    yield
    _SHARE_RUNS[0] = True


@pytest.fixture(autouse=True)
def _no_plan_cache(monkeypatch):
    """Tests see fresh runs: the plan cache (programs/platformctl/plan_cache.py) is off unless a test
    turns it on for itself."""
    monkeypatch.setenv("PLATFORMCTL_NO_CACHE", "1")


@pytest.hookimpl(optionalhook=True)
def pytest_forked_workers_warm(session):
    """Before `--forked-workers` forks (tests/forked_workers.py): the shipped stacks' runs, which most
    test files read, made once for every worker; then the event loop's threads stopped (as the warm
    runner does before it forks) and the heap settled, so that no worker's collector rescans what it
    inherited."""
    from programs.platformctl.warm_runner import release_event_loop

    for stack in ("dev", "prod", "staging"):
        offline_run(stack)
    release_event_loop()  # the SDK's RPC threads: a fork would copy none of them
    gc_tuning.settle()


# Files that make no offline run of the program (checked by running each alone): the worker forked
# before the warm-up runs these while `pytest_forked_workers_warm` makes the shared runs for the rest.
# A file listed here wrongly only runs slower (it makes its own runs); one missing only waits.
COLD_FILES = frozenset(
    {
        "test_addon_config.py",
        "test_addon_policies.py",
        "test_config.py",
        "test_config_docs.py",
        "test_config_fuzz.py",
        "test_doctor.py",
        "test_eks_access.py",
        "test_eks_config.py",
        "test_events.py",
        "test_fleet.py",
        "test_forked_workers.py",
        "test_k3s_node_drainer.py",
        "test_k3s_user_data.py",
        "test_karpenter_chart.py",
        "test_karpenter_config.py",
        "test_karpenter_iam.py",
        "test_karpenter_interruption.py",
        "test_karpenter_specs.py",
        "test_layering.py",
        "test_max_pods.py",
        "test_oidc_documents.py",
        "test_pins_check.py",
        "test_plan_cache.py",
        "test_probe.py",
        "test_upgrade.py",
        "test_upstream_contracts_max_pods.py",
        "test_workload_identity_config.py",
    }
)


@pytest.hookimpl(optionalhook=True)
def pytest_forked_workers_cold(session, path):
    return True if path.name in COLD_FILES else None  # None: another plugin may answer


# The files that cost most (CPU seconds of a whole-suite run on 2 cores, December 2026), run first:
# workers take files in collection order, and a long file taken last keeps one core busy alone at
# the end. Only an order: a file missing here runs after these, in pytest's order.
HEAVY_FILES_FIRST = (
    "test_warm_runner.py",
    "test_k3s_node_drainer.py",
    "test_forked_workers.py",
    "test_k3s_datastore.py",
    "test_scanners.py",
    "test_doctor.py",
    "test_config_fuzz.py",
    "test_k3s_user_data.py",
    "test_config_corpus.py",
    "test_cluster_addons.py",
    "test_ci.py",
    "test_policy_rules.py",
    "test_k3s_cluster.py",
    "test_probe.py",
    "test_platformctl_preview.py",
    "test_eks_resilience.py",
    "test_k3s_versions.py",
    "test_connect.py",
    "test_k3s_server_zones.py",
    "test_policy_gate.py",
    "test_efs.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: position for position, name in enumerate(HEAVY_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: pytest's order within
