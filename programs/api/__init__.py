"""Drive k8s-platform stacks from Python: what `platformctl` does, as functions with typed results.

    from programs import api

    result = api.preview("dev")                      # offline: the program under Pulumi mocks
    result.exit_code, len(result.resources), len(result.mandatory), result.outputs["clusterName"]

    result = api.up("dev", on_event=print)           # Automation API (needs the pulumi CLI)

Operations (all keyword options; none raises for bad input or a failed run, only a bug in platformctl
itself does):

- `preview(stack, offline=True, config_file=None, policy_config=None, diff_against=None, use_cache=True,
  show_secrets=False, on_event=None)` -> `PreviewResult`. Offline it runs the program in this
  process under mocks (one at a time per process) and the policy pack on what it registered, or
  reads the plan cache when nothing changed (`cached`); the policy config is found before the
  program runs; `diff_against` (a saved plan) fills `diff`; `stack_info` is what platformctl prints
  as its header. `offline=False` previews through the Automation API with the pack attached (plus
  the engine options parallel, message, targets, refresh, expect_no_changes, diff).
- `up(stack, ...)`, `destroy(stack, ...)`, `refresh(stack, ...)` -> `UpdateResult`, through the
  Automation API (a LocalWorkspace on the project directory). `up` and `preview` attach the policy
  pack `policy/` with `policy/config/<stack>.json` (else `<environment>.json`) or `policy_config`.
  There is no confirmation prompt: calling `up` or `destroy` is the decision.
- `fleet(stacks=None, operation="preview", offline=True, parallel=None, policy_config=None, retries=2,
  backoff=5.0, timeout=900.0, use_cache=True)` -> `FleetResult`: many stacks (default: the
  repository's) under a bound, failures isolated, lock conflicts retried; offline on the warm
  runner (one forked child per stack), a stack over `timeout` has code 8.
- `ci_up(name, ttl, template=None)` / `ci_down(name)` -> `CiResult`, `ci_reap(parallel=4, dry_run=False)` ->
  `ReapResult` (`programs/api/ci.py`): the ephemeral `ci-<name>` stacks of pipeline runs, made from
  `stacks/ci.yaml`, expiring after `ttl`; reap destroys the expired ones on the fleet scheduler.
- `policy_check(plan, stack, policy_config=None)` -> `PolicyReport`: the pack on a saved plan JSON
  (a plan of another stack is refused unless `policy_config` is given).
- `upgrade.run_upgrade(stack, target, dry_run=False, outputs=None, opener=None, probe=None, ...)` ->
  `upgrade.UpgradeResult` (`programs/api/upgrade.py`): one EKS minor as four checked updates (add-ons,
  control plane, nodes, kube-proxy), refused with the path on a skip; resumes from the deployed state.
- `pins_check.check_pins(sources, stacks=None)` -> `pins_check.PinsReport` (`programs/api/pins_check.py`):
  every pin against the published indexes (`LiveSources`, or `RecordedSources(DIR)`).
- Request level, as `platformctl up` uses it to ask before it deploys: `stack_request(operation,
  stack, ...)` -> `StackRequest` (raises on bad input), then `run(request)` -> `RunResult`.

Results (`programs/api/results.py`): frozen dataclasses. `exit_code` is the code platformctl exits
with for the same outcome (0 ok, 1 mandatory policy, 2 bad input or missing tool, 3 failed, 4 locked,
5 credentials, 6 no such stack, 7 a fleet stack failed, 8 timed out); `ok`; `violations` split by
`mandatory` and `advisory`; `errors`, the input problems (`InputProblem(key, message, kind)`, e.g. key
`k8s-platform:network.podCidr`) that stopped the run before any resource was registered; `message`,
one line when not ok. Secret values in `resources[].inputs`, `outputs` and `plan` are "[secret]"
unless `show_secrets=True`.

Events: `on_event(event)` receives every `pulumi.automation.events.EngineEvent` of the run, the events
platformctl renders as its progress lines, on the Automation API's watcher thread. An offline preview
sends the events a first preview of the same plan would (one planned `create` per resource, a policy
event per finding, the summary) once the program has run. `fleet` calls `on_event(stack, event)`.

Seams for tests and tools: `opener(request)` replaces the LocalWorkspace (anything with
`preview/up/destroy/refresh(on_event=..., **kwargs)`), `root` the project directory, `fleet`'s
`runner`, `sleep` and `clock` the process runner and the waiting.
"""

from programs.api.ci import CiResult, ReapResult, ci_down, ci_reap, ci_up
from programs.api.engine import OPERATIONS, StackRequest
from programs.api.operations import (
    destroy,
    fleet,
    fleet_jobs,
    fleet_problem,
    input_problems,
    policy_check,
    preview,
    refresh,
    run,
    stack_request,
    up,
)
from programs.api.results import (
    FleetResult,
    InputProblem,
    PolicyReport,
    PreviewResult,
    Resource,
    RunResult,
    StackResult,
    Step,
    UpdateResult,
    Violation,
)
from programs.api.scheduler import StackJob, StackOutcome

__all__ = [
    "OPERATIONS",
    "StackRequest",
    "StackJob",
    "StackOutcome",
    "preview",
    "up",
    "destroy",
    "refresh",
    "fleet",
    "ci_up",
    "ci_down",
    "ci_reap",
    "CiResult",
    "ReapResult",
    "fleet_jobs",
    "fleet_problem",
    "policy_check",
    "stack_request",
    "run",
    "input_problems",
    "FleetResult",
    "InputProblem",
    "PolicyReport",
    "PreviewResult",
    "Resource",
    "RunResult",
    "StackResult",
    "Step",
    "UpdateResult",
    "Violation",
]
