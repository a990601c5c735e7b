"""The offline preview: the real program under Pulumi mocks, the policy pack on what it registered.

`offline_plan` returns the plan JSON document (`programs/plan.py` describes its shape) with the
stack's facts in `stackInfo` and the pack's findings in `policy.violations`; the policy config is
found before the program runs, so a missing one costs no run. `read_plan_file` reads a saved plan
(for `--diff` and `policy check`), every problem naming the file. `plan_events` turns a plan into the
engine events a real preview of a new stack would send (one `create` step per resource, one policy
event per finding, a summary), so one event callback serves offline and Automation API previews alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pulumi.automation import events as ev

from components.config import ConfigError
from programs.deployed_version import with_deployed_version
from programs.offline import run_offline
from programs.plan import build_plan
from programs.platformctl.policy_gate import apply_policies, resolve_policy_config
from programs.platformctl.preview_report import stack_info
from programs.stack_files import REPO_ROOT, read_stack_file, stack_file


def offline_plan(
    stack: str,
    config_file: Path | None,
    show_secrets: bool,
    policy_config: Path | None = None,
    root: Path = REPO_ROOT,
    deployed_version: str | None = None,
) -> dict[str, Any]:
    """Plan dict of one stack; raises ConfigError / ValueError / FileNotFoundError on bad input and
    `OfflineProgramError` when the program does something an offline plan cannot show.

    The policy config is found before the program runs: a missing one costs no run. `deployed_version`
    (from a previous plan) becomes `cluster.eks.deployedVersion`, so a skipped minor is refused."""
    if config_file is not None and not config_file.exists():
        raise FileNotFoundError(f"{config_file}: no such stack file (--config-file)")
    path = config_file or stack_file(stack, root)
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path} (stacks: Pulumi.<stack>.yaml beside Pulumi.yaml)")
    raw = read_stack_file(path)
    if deployed_version is not None:
        raw = with_deployed_version(raw, deployed_version)
    policy_path = resolve_policy_config(stack, raw, policy_config)
    try:
        run = run_offline(stack, raw)
    except ConfigError as exc:
        exc.source = path  # the header then names the file the problems are in
        raise
    plan = build_plan(run, show_secrets=show_secrets)
    plan["stackInfo"] = stack_info(run.config)
    return apply_policies(plan, run, stack, policy_path)


def read_plan_file(path: Path) -> dict[str, Any]:
    """A saved plan JSON; every problem names the file."""
    try:
        plan = json.loads(path.read_text())
    except OSError as exc:
        raise FileNotFoundError(f"{path}: cannot read the plan ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a plan JSON file ({exc})") from None
    if not isinstance(plan, dict) or not isinstance(plan.get("resources"), list):
        raise ValueError(
            f"{path}: not a plan (expected an object with a 'resources' list, as "
            "`platformctl preview --offline --json` writes)"
        )
    return plan


def plan_events(plan: dict[str, Any], seconds: float = 0.0) -> Iterator[ev.EngineEvent]:
    """The engine events of a first `pulumi preview` of this plan (every resource a planned create)."""
    from policy.offline_runner import PACK_NAME, PACK_VERSION

    now = int(time.time())
    seq = 0

    def event(**kind: Any) -> ev.EngineEvent:
        nonlocal seq
        seq += 1
        return ev.EngineEvent(seq, now, **kind)

    for res in plan["resources"]:
        new = ev.StepEventStateMetadata(
            res["type"],
            res["urn"],
            "",
            res.get("parent") or "",
            "",
            custom=res.get("custom"),
            protect=res.get("protect"),
            inputs=res.get("inputs"),
        )
        meta = ev.StepEventMetadata(ev.OpType.CREATE, res["urn"], res["type"], "", new=new)
        yield event(resource_pre_event=ev.ResourcePreEvent(meta, planning=True))
    for warning in plan.get("warnings") or []:
        yield event(diagnostic_event=ev.DiagnosticEvent(warning + "\n", "never", "warning", urn=None, ephemeral=False))
    for v in (plan.get("policy") or {}).get("violations", []):
        yield event(
            policy_event=ev.PolicyEvent(
                v["message"],
                "never",
                v["policy"],
                PACK_NAME,
                PACK_VERSION,
                PACK_VERSION,
                v["level"],
                v.get("urn") or None,
            )
        )
    changes = {ev.OpType.CREATE: len(plan["resources"])} if plan["resources"] else {}
    yield event(summary_event=ev.SummaryEvent(False, int(seconds), changes, {PACK_NAME: PACK_VERSION}))
