"""Independent scanners over the offline plan: checkov's `terraform_plan` framework on the
Terraform-plan view (programs/tfplan.py) and its `kubernetes` framework on the manifests
(programs/k8s_yaml.py), with the project's triage (policy/scan-triage.yaml) applied.

checkov runs from its own virtualenv (`.tools/checkov`, made by scripts/install-scan-tools.sh
from `make setup`), never from the project's: its pinned dependencies would fight ours.

Triage entries: `check` (a checkov id), `resource` (an fnmatch pattern on checkov's resource id:
`aws_s3_bucket.oidc_edge_bucket`, `Deployment.<namespace>.<name>`), `stacks` (where it applies)
and `reason`. An entry that matches no failure of a stack it names is stale: the finding it
excused is gone (or renamed), so the entry must go too.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TRIAGE_FILE = REPO_ROOT / "policy" / "scan-triage.yaml"
CHECKOV = Path(os.environ.get("K8S_PLATFORM_CHECKOV", REPO_ROOT / ".tools" / "checkov" / "bin" / "checkov"))


class ScanError(Exception):
    """The scan could not run (no checkov, bad triage file); the message says what to do."""


@dataclass(frozen=True)
class TriageEntry:
    check: str
    resource: str
    stacks: tuple[str, ...]
    reason: str

    def matches(self, finding: "Finding") -> bool:
        return finding.check == self.check and fnmatch.fnmatchcase(finding.resource, self.resource)


@dataclass(frozen=True)
class Finding:
    framework: str
    check: str
    name: str
    resource: str


@dataclass
class ScanResult:
    stack: str
    passed: int = 0
    failed: list[Finding] = field(default_factory=list)
    triaged: list[tuple[Finding, TriageEntry]] = field(default_factory=list)
    untriaged: list[Finding] = field(default_factory=list)
    stale: list[TriageEntry] = field(default_factory=list)
    unmapped_types: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.untriaged and not self.stale


def load_triage(path: Path = TRIAGE_FILE) -> list[TriageEntry]:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ScanError(f"{path}: {exc}") from exc
    entries, problems = [], []
    for i, item in enumerate(raw.get("triage") or []):
        where = f"{path.name}: triage[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a mapping with check, resource, stacks, reason")
            continue
        missing = [k for k in ("check", "resource", "stacks", "reason") if not item.get(k)]
        unknown = sorted(set(item) - {"check", "resource", "stacks", "reason"})
        if missing or unknown:
            problems.append(
                f"{where}: "
                + "; ".join(
                    ([f"missing {', '.join(missing)}"] if missing else [])
                    + ([f"unknown {', '.join(unknown)}"] if unknown else [])
                )
            )
            continue
        stacks = item["stacks"] if isinstance(item["stacks"], list) else [item["stacks"]]
        if not str(item["check"]).startswith("CKV"):
            problems.append(f"{where}.check: '{item['check']}' is not a checkov id (CKV_..., CKV2_...)")
            continue
        entries.append(
            TriageEntry(str(item["check"]), str(item["resource"]), tuple(map(str, stacks)), str(item["reason"]))
        )
    if problems:
        raise ScanError("\n".join(problems))
    return entries


def run_checkov(tfplan: dict[str, Any], manifests_yaml: str, checkov: Path = CHECKOV) -> list[dict[str, Any]]:
    """checkov's JSON reports (one per framework) of both exports."""
    return run_checkov_many({"plan": (tfplan, manifests_yaml)}, checkov)["plan"]


def run_checkov_many(
    exports: dict[str, tuple[dict[str, Any], str]], checkov: Path = CHECKOV
) -> dict[str, list[dict[str, Any]]]:
    """One checkov process over several plans' exports ({name: (terraform plan, manifests YAML)}):
    its start-up (several seconds of loading checks) is paid once. The reports are split back per
    name by each check's file."""
    if not checkov.exists():
        raise ScanError(f"checkov not found at {checkov}; run `make setup` (scripts/install-scan-tools.sh)")
    names = list(exports)
    with tempfile.TemporaryDirectory(prefix="k8s-platform-scan-") as tmp:
        files: list[str] = []
        for index, name in enumerate(names):
            tfplan, manifests_yaml = exports[name]
            plan_path, yaml_path = Path(tmp) / f"{index}.tfplan.json", Path(tmp) / f"{index}.k8s.yaml"
            plan_path.write_text(json.dumps(tfplan))
            yaml_path.write_text(manifests_yaml)
            files += ["-f", str(plan_path), "-f", str(yaml_path)]
        env = {
            **os.environ,
            "BC_SKIP_MAPPING": "TRUE",
            "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
            "ANSI_COLORS_DISABLED": "1",
            "LOG_LEVEL": "ERROR",
        }
        proc = subprocess.run(
            [
                str(checkov),
                *files,
                "--framework",
                "terraform_plan",
                "kubernetes",
                "-o",
                "json",
                "--skip-download",
                "--no-fail-on-crash",
            ],
            capture_output=True,
            text=True,
            cwd=tmp,
            env=env,
            timeout=900,
        )
    if proc.returncode not in (0, 1):
        raise ScanError(f"checkov failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    try:
        reports = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise ScanError(f"checkov printed no JSON report: {proc.stdout[-500:]} {proc.stderr[-1500:]}") from exc
    reports = reports if isinstance(reports, list) else [reports]
    if not any(r.get("check_type") == "terraform_plan" for r in reports if isinstance(r, dict)):
        raise ScanError("checkov reported no terraform_plan results: the exported plan was not read")
    return {name: _reports_of_file_index(reports, index) for index, name in enumerate(names)}


def _reports_of_file_index(reports: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    """The part of each framework's report whose checks ran on the files of export `index`."""

    def mine(check: dict[str, Any]) -> bool:
        return Path(str(check.get("file_path", ""))).name.split(".", 1)[0] == str(index)

    split: list[dict[str, Any]] = []
    for report in reports:
        if not isinstance(report, dict) or "results" not in report:
            split.append(report)
            continue
        results = {
            kind: [c for c in report["results"].get(kind, []) if mine(c)] for kind in ("passed_checks", "failed_checks")
        }
        split.append({**report, "results": {**report["results"], **results}})
    return split


def evaluate(stack: str, reports: list[dict[str, Any]], triage: list[TriageEntry]) -> ScanResult:
    result = ScanResult(stack=stack)
    for report in reports:
        if not isinstance(report, dict) or "results" not in report:
            continue
        framework = report.get("check_type", "?")
        result.passed += len(report["results"].get("passed_checks", []))
        for f in report["results"].get("failed_checks", []):
            result.failed.append(Finding(framework, f["check_id"], f.get("check_name", ""), f["resource"]))
    applicable = [t for t in triage if stack in t.stacks]
    used: set[TriageEntry] = set()
    for finding in result.failed:
        entry = next((t for t in applicable if t.matches(finding)), None)
        if entry is None:
            result.untriaged.append(finding)
        else:
            used.add(entry)
            result.triaged.append((finding, entry))
    result.stale = [t for t in applicable if t not in used]
    return result


def scan_plan(plan: dict[str, Any], triage: list[TriageEntry] | None = None, checkov: Path = CHECKOV) -> ScanResult:
    return scan_plans([plan], triage, checkov)[0]


def scan_plans(
    plans: list[dict[str, Any]], triage: list[TriageEntry] | None = None, checkov: Path = CHECKOV
) -> list[ScanResult]:
    """`scan_plan` for several plans with one checkov run (results in the order of `plans`)."""
    from programs.k8s_yaml import to_yaml
    from programs.tfplan import to_terraform_plan

    entries = load_triage() if triage is None else triage
    tfplans = [to_terraform_plan(plan) for plan in plans]
    reports = run_checkov_many({str(i): (tfplans[i], to_yaml(plan)) for i, plan in enumerate(plans)}, checkov)
    results = []
    for i, plan in enumerate(plans):
        result = evaluate(plan["stack"], reports[str(i)], entries)
        result.unmapped_types = list(tfplans[i]["k8s_platform"]["unmapped"])
        results.append(result)
    return results


def render(result: ScanResult) -> str:
    lines = [f"{f.check} {f.resource} ({f.framework}): {f.name}" for f in result.untriaged]
    lines = [f"untriaged: {line}" for line in lines]
    lines += [
        f"stale triage entry: {t.check} {t.resource} (stacks {', '.join(t.stacks)}) matched nothing: "
        f"remove it from policy/scan-triage.yaml"
        for t in result.stale
    ]
    lines += [f"not scanned (no Terraform type): {t}" for t in result.unmapped_types]
    lines.append(
        f"{result.stack}: checkov {result.passed} passed, {len(result.failed)} failed, "
        f"{len(result.triaged)} triaged, {len(result.untriaged)} untriaged; "
        f"{len(result.stale)} stale triage entries"
    )
    return "\n".join(lines)
