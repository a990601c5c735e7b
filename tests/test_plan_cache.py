"""The plan cache: what its key covers, that an unchanged stack is not run again, and what forces a run."""

from __future__ import annotations

import json
import shutil

import pytest

from programs.api import offline_preview
from programs.offline import REPO_ROOT
from programs.platformctl import plan_cache
from programs.platformctl.cli import main

PLAN = {
    "project": "k8s-platform",
    "stack": "s",
    "resources": [
        {
            "urn": "u",
            "type": "t",
            "name": "n",
            "parent": None,
            "custom": True,
            "inputs": {},
            "dependencies": [],
            "protect": False,
        }
    ],
    "outputs": {},
    "policy": {"violations": []},
}


@pytest.fixture
def cache_on(monkeypatch, tmp_path):
    monkeypatch.delenv(plan_cache.NO_CACHE_ENV, raising=False)
    monkeypatch.setenv(plan_cache.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_key_changes_with_each_input(tmp_path, cache_on, monkeypatch):
    stack = tmp_path / "Pulumi.s.yaml"
    stack.write_text("config:\n  k8s-platform:environment: dev\n")
    first = plan_cache.cache_key("s", stack)
    assert plan_cache.cache_key("s", stack) == first  # deterministic
    assert plan_cache.cache_key("t", stack) != first  # the stack name is in the plan
    stack.write_text("config:\n  k8s-platform:environment: prod\n")
    assert plan_cache.cache_key("s", stack) != first
    second = plan_cache.cache_key("s", stack)
    (tmp_path / "Pulumi.yaml").write_text("name: k8s-platform\n")  # a project file beside the stack wins
    assert plan_cache.cache_key("s", stack) != second
    third = plan_cache.cache_key("s", stack)
    monkeypatch.setattr(plan_cache, "sdk_versions", lambda: {"pulumi": "9.9.9"})
    assert plan_cache.cache_key("s", stack) != third


def test_the_source_tree_digest_sees_any_edit(tmp_path):
    for top in plan_cache.SOURCE_DIRS:
        shutil.copytree(REPO_ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__", "venv", "*.pyc"))
    before = plan_cache.source_tree_digest(tmp_path)
    assert plan_cache.source_tree_digest(tmp_path) == before
    target = tmp_path / "components" / "network" / "vpc.py"
    target.write_text(target.read_text() + "\n# an edit\n")
    assert plan_cache.source_tree_digest(tmp_path) != before
    target.write_text(target.read_text().removesuffix("\n# an edit\n"))
    assert plan_cache.source_tree_digest(tmp_path) == before
    (tmp_path / "policy" / "config" / "extra.json").write_text("{}")  # pack config is part of the tree
    assert plan_cache.source_tree_digest(tmp_path) != before
    (tmp_path / "components" / "__pycache__").mkdir(exist_ok=True)
    (tmp_path / "components" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert plan_cache.source_tree_digest(tmp_path) == plan_cache.source_tree_digest(tmp_path)


def test_store_and_lookup_round_trip_and_prune_older_entries(tmp_path, cache_on):
    stack = tmp_path / "Pulumi.s.yaml"
    stack.write_text("config: {}\n")
    assert plan_cache.lookup("s", stack) is None
    old_entry = plan_cache.store("s", stack, PLAN)
    assert plan_cache.lookup("s", stack) == PLAN
    plan_cache.store("s-2", stack, PLAN)  # another stack's entry stays
    stack.write_text("config: {a: 1}\n")
    assert plan_cache.lookup("s", stack) is None
    new_entry = plan_cache.store("s", stack, PLAN)
    assert new_entry != old_entry and not old_entry.exists() and new_entry.exists()
    assert plan_cache.lookup("s-2", stack) is None  # s-2's key was for the old bytes
    assert len(list(cache_on.glob("plan-s-2-*.json"))) == 1


def test_preview_runs_once_then_reads_the_cache(tmp_path, cache_on, monkeypatch, capsys):
    calls = []

    def compute(stack, config_file, show_secrets, policy_config=None):
        calls.append((stack, show_secrets))
        return json.loads(json.dumps({**PLAN, "stack": stack}))

    monkeypatch.setattr(offline_preview, "offline_plan", compute)
    stack = tmp_path / "Pulumi.s.yaml"
    stack.write_text("config: {}\n")
    base = ["preview", "--stack", "s", "--offline", "--config-file", str(stack)]
    assert main(base + ["--json", str(tmp_path / "a.json")]) == 0
    assert main(base + ["--json", str(tmp_path / "b.json")]) == 0
    assert calls == [("s", False)]
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads((tmp_path / "b.json").read_text())
    assert "unchanged since its cached plan" in capsys.readouterr().err
    assert main(base + ["--no-cache", "--quiet"]) == 0
    assert main(base + ["--show-secrets", "--quiet"]) == 0  # revealed secrets never come from or go to disk
    assert calls == [("s", False), ("s", False), ("s", True)]
    stack.write_text("config: {x: 1}\n")
    assert main(base + ["--quiet"]) == 0
    assert len(calls) == 4
    monkeypatch.setenv(plan_cache.NO_CACHE_ENV, "1")
    assert main(base + ["--quiet"]) == 0
    assert len(calls) == 5


def test_a_failed_preview_is_not_cached(tmp_path, cache_on, monkeypatch):
    from components.config import ConfigError

    def compute(stack, config_file, show_secrets, policy_config=None):
        raise ConfigError(["k8s-platform:network.vpcCidr: not a private block"])

    monkeypatch.setattr(offline_preview, "offline_plan", compute)
    stack = tmp_path / "Pulumi.s.yaml"
    stack.write_text("config: {}\n")
    assert main(["preview", "--stack", "s", "--offline", "--config-file", str(stack), "--quiet"]) == 2
    assert not cache_on.exists() or not list(cache_on.glob("plan-*.json"))


def test_installed_versions_are_what_importlib_metadata_reads():
    from importlib import metadata

    versions = plan_cache.sdk_versions()
    for dist in plan_cache._VERSIONED:
        assert versions[dist] == metadata.version(dist), dist


def test_a_cached_report_prints_exactly_what_the_run_that_built_it_printed(tmp_path, cache_on, monkeypatch, capsys):
    plan = json.loads(json.dumps(PLAN))
    plan["resources"][0]["protect"] = True
    plan["policy"] = {
        "config": "policy/config/dev.json",
        "violations": [
            {"policy": "p-advisory", "level": "advisory", "urn": "u", "message": "advice"},
            {"policy": "p-mandatory", "level": "mandatory", "urn": None, "message": "refused"},
        ],
    }
    plan["outputs"] = {"clusterName": "c", "token": "[secret]"}
    monkeypatch.setattr(offline_preview, "offline_plan", lambda *a, **k: json.loads(json.dumps(plan)))
    stack = tmp_path / "Pulumi.s.yaml"
    stack.write_text("config: {}\n")
    base = ["preview", "--stack", "s", "--offline", "--config-file", str(stack)]
    assert main(base) == 1  # a mandatory violation, run
    built = capsys.readouterr()
    assert main(base) == 1  # the same, from the cache
    cached = capsys.readouterr()
    assert cached.out == built.out
    assert "1 resources planned offline (1 protected); 1 mandatory and 1 advisory" in cached.out
    assert "unchanged since its cached plan" in cached.err and "p-mandatory" in cached.err


def test_a_cache_hit_imports_neither_the_sdk_nor_the_config_models(tmp_path, cache_on):
    """What keeps a re-preview of an unchanged stack fast: the cached plan is reported before
    pulumi, the config models or the Python API are imported."""
    import os
    import subprocess
    import sys

    stack = tmp_path / "Pulumi.s.yaml"
    stack.write_text("config: {}\n")
    assert plan_cache.store("s", stack, PLAN) is not None
    probe = (
        "import sys\n"
        "from programs.platformctl import cli\n"
        f"code = cli.main(['preview', '--offline', '--quiet', '--stack', 's', '--config-file', {str(stack)!r}])\n"
        "heavy = sorted(m for m in ('pulumi', 'pulumi_aws', 'components.config', 'programs.api', 'programs.offline',"
        " 'policy.offline_runner', 'importlib.metadata') if m in sys.modules)\n"
        "print('HEAVY', heavy, 'CODE', code)\n"
    )
    env = {**os.environ, plan_cache.CACHE_ENV: str(cache_on)}
    env.pop(plan_cache.NO_CACHE_ENV, None)
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert "HEAVY [] CODE 0" in out.stdout, out.stdout + out.stderr
    assert "unchanged since its cached plan" not in out.stderr  # --quiet
