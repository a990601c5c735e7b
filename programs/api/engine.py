"""One stack operation through the Automation API (`preview`, `up`, `destroy`, `refresh`; needs the pulumi CLI).

Pure pieces with a thin runner: `stack_request` resolves the stack file and the policy config into a
`StackRequest` (the stack file is validated here, so bad config is reported with its key paths before
the CLI starts), `operation_kwargs` maps that to the Automation API call, `events.EventFold` folds the
engine's events into a `RunSummary` and `events.outcome_code` picks the exit code. `run_request` takes
the stack opener as a parameter, so the whole flow is tested with a recorded event sequence and no CLI.
Nothing here prints: `platformctl` renders the events and the outcome.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config import ConfigError, parse_stack_config
from programs.platformctl import events, exit_codes
from programs.stack_files import REPO_ROOT, read_stack_file, stack_file

OPERATIONS = ("preview", "up", "destroy", "refresh")
# The CLI runs CrossGuard packs on preview and up; destroy and refresh take no --policy-pack.
POLICY_OPERATIONS = frozenset({"preview", "up"})
POLICY_PACK_DIR = "policy"
CHANGING_OPERATIONS = frozenset({"up", "destroy"})

# What reading a stack file and its config can raise: invalid config, a missing file, bad YAML.
INPUT_ERRORS = (ConfigError, FileNotFoundError, ValueError)


def problems_of(exc: BaseException) -> list[str]:
    """The problem lines of an input error, as the plan JSON's `errors` holds them."""
    return list(exc.problems) if isinstance(exc, ConfigError) else [str(exc)]


EventCallback = Callable[[Any], None]  # receives each `pulumi.automation.events.EngineEvent`


@dataclass(frozen=True)
class StackRequest:
    """Everything one Automation API operation needs, resolved from the arguments and the stack file."""

    operation: str
    stack: str
    work_dir: Path
    stack_file: Path
    environment: str
    policy_pack: Path | None
    policy_config: Path | None
    config_file: Path | None = None  # handed to the CLI (--config-file) when not the workspace's own file
    parallel: int | None = None
    message: str | None = None
    targets: tuple[str, ...] = ()
    refresh: bool = False
    expect_no_changes: bool = False
    diff: bool = False


@dataclass
class OperationOutcome:
    code: int
    summary: events.RunSummary = field(default_factory=events.RunSummary)
    message: str = ""  # one line, set when the run did not succeed

    @property
    def transient(self) -> bool:
        """Worth retrying: another update held the stack's lock."""
        return self.code == exit_codes.CONCURRENT_UPDATE


def pulumi_cli_missing() -> bool:
    return shutil.which("pulumi") is None


def policy_paths(root: Path, stack: str, environment: str) -> tuple[Path, Path]:
    """The policy pack and its config: `policy/config/<stack>.json` when a stack has its own (the
    offline policy runner looks there first too), else the environment's `policy/config/<environment>.json`."""
    pack = root / POLICY_PACK_DIR
    own = pack / "config" / f"{stack}.json"
    return pack, own if own.exists() else pack / "config" / f"{environment}.json"


def stack_request(
    operation: str,
    stack: str,
    root: Path = REPO_ROOT,
    *,
    config_file: Path | str | None = None,
    policy_config: Path | str | None = None,
    parallel: int | None = None,
    message: str | None = None,
    targets: tuple[str, ...] | list[str] = (),
    refresh: bool = False,
    expect_no_changes: bool = False,
    diff: bool = False,
) -> StackRequest:
    """Resolve the stack file and policy config; raises ConfigError/ValueError/FileNotFoundError on bad input.

    `policy_config` replaces the stack's own policy config (preview and up only).
    """
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; allowed: {', '.join(OPERATIONS)}")
    path = Path(config_file) if config_file else stack_file(stack, root)
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path} (stacks: Pulumi.<stack>.yaml beside Pulumi.yaml)")
    raw = read_stack_file(path)
    try:
        cfg = parse_stack_config(raw)
    except ConfigError as exc:
        exc.source = path  # the report names the file the problems are in
        raise
    pack, pack_config = policy_paths(root, stack, cfg.environment)
    if policy_config is not None:
        pack_config = Path(policy_config)
    with_policy = operation in POLICY_OPERATIONS
    if parallel is not None and parallel < 1:
        raise ValueError(f"--parallel must be at least 1, got {parallel}")
    return StackRequest(
        operation=operation,
        stack=stack,
        work_dir=root,
        stack_file=path,
        environment=cfg.environment,
        policy_pack=pack if with_policy else None,
        policy_config=pack_config if with_policy else None,
        config_file=path if config_file else None,
        parallel=parallel,
        message=message,
        targets=tuple(targets or ()),
        refresh=bool(refresh) and operation in ("preview", "up"),
        expect_no_changes=bool(expect_no_changes) and operation != "destroy",
        diff=bool(diff),
    )


def operation_kwargs(req: StackRequest) -> dict[str, Any]:
    """Keyword arguments of `Stack.<operation>(...)`; only what is set, so the CLI's defaults stay."""
    kwargs: dict[str, Any] = {"color": "never"}
    if req.operation != "preview":
        # The API defaults to `stack history --show-secrets` after up/destroy/refresh, decrypting the
        # stack's secret config into a result platformctl never shows: don't.
        kwargs["show_secrets"] = False
    if req.policy_pack is not None and req.policy_config is not None:
        kwargs["policy_packs"] = [str(req.policy_pack)]
        kwargs["policy_pack_configs"] = [str(req.policy_config)]
    if req.config_file is not None:
        kwargs["config_file"] = str(req.config_file)
    if req.parallel is not None:
        kwargs["parallel"] = req.parallel
    if req.message:
        kwargs["message"] = req.message
    if req.targets:
        kwargs["target"] = list(req.targets)
    if req.refresh:
        kwargs["refresh"] = True
    if req.expect_no_changes:
        kwargs["expect_no_changes"] = True
    if req.diff:
        kwargs["diff"] = True
    return kwargs


def missing_policy_files(req: StackRequest) -> str | None:
    """One line when the policy pack or its config for the environment is absent (never run without it)."""
    if req.policy_pack is None:
        return None
    if not (req.policy_pack / "PulumiPolicy.yaml").exists():
        return f"the policy pack is missing: no {req.policy_pack / 'PulumiPolicy.yaml'}"
    if req.policy_config is None or not req.policy_config.exists():
        return f"no policy config {req.policy_config} for environment '{req.environment}'"
    return None


def open_stack(req: StackRequest):
    """Select the stack in a LocalWorkspace on the project directory (runs `pulumi stack select`)."""
    from pulumi import automation as auto

    workspace = auto.LocalWorkspace(work_dir=str(req.work_dir))
    return auto.Stack.select(req.stack, workspace)


def last_error_line(text: str) -> str:
    """The most telling line of a failed CLI run: its last `error:` line, else its last non-empty line."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith("error:")]
    pick = errors[-1] if errors else (lines[-1] if lines else "unknown error")
    return pick[len("error:") :].strip() if pick.lower().startswith("error:") else pick


def failure_message(req: StackRequest, code: int, summary: events.RunSummary, error_text: str) -> str:
    """One line naming what went wrong (credentials, policy, or the engine's own error)."""
    hint = " (or `platformctl preview --offline`)" if req.operation == "preview" else ""
    problem = events.credentials_problem("\n".join([error_text, *summary.errors]))
    if code == exit_codes.CREDENTIALS_MISSING and problem:
        return f"stack '{req.stack}': {problem}{hint}"
    if code == exit_codes.POLICY_VIOLATION:
        names = sorted({f"{v.pack}/{v.policy}" for v in summary.mandatory})
        return f"stack '{req.stack}': {len(summary.mandatory)} mandatory policy violations ({', '.join(names)})"
    detail = summary.errors[0] if summary.errors else last_error_line(error_text)
    return f"stack '{req.stack}': {req.operation} failed: {detail}"


def cli_missing_line(command: str) -> str:
    """The one line printed when the CLI is absent; `command` as typed after `platformctl`."""
    if command.endswith("preview") or command == "graph":
        hint = "run with --offline to work under Pulumi mocks"
    else:
        alternative = "fleet preview --offline" if command.startswith("fleet") else "preview --offline"
        hint = f"there is no offline {command.split()[-1]}; check the plan with `platformctl {alternative}`"
    return f"the pulumi CLI is not installed; `platformctl {command}` needs it ({hint})"


def run_request(
    req: StackRequest,
    opener: Callable[[StackRequest], Any] = open_stack,
    on_event: EventCallback | None = None,
) -> OperationOutcome:
    """Run one operation, handing every engine event to `on_event`; never raises for engine/CLI failures."""
    from pulumi.automation import errors as auto_errors

    fold = events.EventFold(req.operation)

    def handle(event: Any) -> None:
        fold.feed(event)
        if on_event is not None:
            on_event(event)

    try:
        stack = opener(req)
        getattr(stack, req.operation)(on_event=handle, **operation_kwargs(req))
    except auto_errors.ConcurrentUpdateError:
        return OperationOutcome(
            exit_codes.CONCURRENT_UPDATE,
            fold.result(),
            f"stack '{req.stack}': another update is in progress (the stack is locked)",
        )
    except auto_errors.StackNotFoundError:
        return OperationOutcome(
            exit_codes.STACK_NOT_FOUND,
            fold.result(),
            f"no stack '{req.stack}' in the current backend; create it with `pulumi stack init {req.stack}`",
        )
    except auto_errors.CommandError as exc:
        summary = fold.result()
        code = events.outcome_code(summary, str(exc))
        return OperationOutcome(code, summary, failure_message(req, code, summary, str(exc)))
    except FileNotFoundError as exc:
        if "pulumi" in str(exc):
            return OperationOutcome(exit_codes.CONFIG_ERROR, fold.result(), cli_missing_line(req.operation))
        raise
    except Exception as exc:  # noqa: BLE001 - an unexpected SDK error is still one line, not a traceback
        summary = fold.result()
        return OperationOutcome(
            exit_codes.DEPLOY_FAILED,
            summary,
            f"stack '{req.stack}': {req.operation} failed: {type(exc).__name__}: {exc}",
        )
    summary = fold.result()
    code = events.outcome_code(summary)
    return OperationOutcome(code, summary, "" if code == exit_codes.OK else failure_message(req, code, summary, ""))
