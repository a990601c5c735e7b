"""Fold Pulumi engine events into progress lines and a run summary (pure: no I/O, no CLI).

The Automation API hands `on_event` one `pulumi.automation.events.EngineEvent` at a time, from a
watcher thread. `EventFold.feed(event)` returns the progress lines that event produces and keeps
the running summary; `fold_events(events)` does the same for a recorded sequence. The shell
(`automation.py`) only prints the lines, so everything here is tested with recorded sequences.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pulumi.automation import events as ev

from programs.platformctl import exit_codes

# Pulumi's own display symbols, so the view reads like `pulumi up`.
OP_SYMBOL = {
    "create": "+",
    "update": "~",
    "delete": "-",
    "replace": "+-",
    "create-replacement": "++",
    "delete-replaced": "--",
    "read": ">",
    "read-replacement": ">>",
    "refresh": "~",
    "import": "=",
    "import-replacement": "=>",
    "discard": "-",
    "discard-replaced": "-",
    "remove-pending-replace": "-",
    "same": " ",
}
# (while running, when done) per op; a preview only plans, so it uses the bare op.
OP_VERBS = {
    "create": ("creating", "created"),
    "update": ("updating", "updated"),
    "delete": ("deleting", "deleted"),
    "replace": ("replacing", "replaced"),
    "create-replacement": ("creating replacement", "created replacement"),
    "delete-replaced": ("deleting original", "deleted original"),
    "read": ("reading", "read"),
    "refresh": ("refreshing", "refreshed"),
    "import": ("importing", "imported"),
}
# How the summary names each op, in display order.
CHANGE_WORDS = [
    ("create", "to create", "created"),
    ("update", "to update", "updated"),
    ("replace", "to replace", "replaced"),
    ("delete", "to delete", "deleted"),
    ("import", "to import", "imported"),
    ("read", "to read", "read"),
    ("refresh", "to refresh", "refreshed"),
]
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class PolicyViolation:
    pack: str
    policy: str
    level: str  # mandatory | advisory | remediate | disabled
    urn: str | None
    message: str


@dataclass
class RunSummary:
    """What a run did, folded from its events."""

    changes: dict[str, int] = field(default_factory=dict)  # op -> count; the engine's own summary when seen
    engine_summary: bool = False
    completed: int = 0  # non-trivial steps whose outputs arrived
    failed: list[str] = field(default_factory=list)  # URNs whose operation failed
    errors: list[str] = field(default_factory=list)  # diagnostic errors, first line each
    warnings: list[str] = field(default_factory=list)
    policy: list[PolicyViolation] = field(default_factory=list)
    policy_packs: dict[str, str] = field(default_factory=dict)  # pack -> version the engine ran
    duration_seconds: int | None = None
    cancelled: bool = False

    @property
    def mandatory(self) -> list[PolicyViolation]:
        return [v for v in self.policy if v.level == "mandatory"]

    @property
    def advisory(self) -> list[PolicyViolation]:
        return [v for v in self.policy if v.level != "mandatory"]


def urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if urn else ""


def urn_type(urn: str) -> str:
    parts = urn.split("::")
    return parts[-2].rsplit("$", 1)[-1] if len(parts) >= 2 else ""


def first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _op(value: ev.OpType | str) -> str:
    return value.value if isinstance(value, ev.OpType) else str(value)


class EventFold:
    """Running state of one operation; `feed` returns the progress lines of one event."""

    def __init__(self, operation: str = "preview"):
        self.operation = operation
        self.summary = RunSummary()
        self._seen_steps: dict[str, int] = {}  # counted by us, used when no SummaryEvent arrives
        self.in_progress: set[str] = set()  # URNs whose step started and has not finished

    @property
    def planning(self) -> bool:
        return self.operation == "preview"

    def feed(self, event: ev.EngineEvent) -> list[str]:
        if event.resource_pre_event is not None:
            return self._pre(event.resource_pre_event)
        if event.res_outputs_event is not None:
            return self._outputs(event.res_outputs_event)
        if event.res_op_failed_event is not None:
            return self._failed(event.res_op_failed_event)
        if event.diagnostic_event is not None:
            return self._diagnostic(event.diagnostic_event)
        if event.policy_event is not None:
            return self._policy(event.policy_event)
        if event.summary_event is not None:
            return self._summary(event.summary_event)
        if event.cancel_event is not None:
            self.summary.cancelled = True
            return ["cancelled"]
        return []  # prelude, stdout (already in the CLI's own output), debugger

    def _pre(self, pre: ev.ResourcePreEvent) -> list[str]:
        meta = pre.metadata
        op = _op(meta.op)
        self._seen_steps[op] = self._seen_steps.get(op, 0) + 1  # like the engine, the stack itself counts
        if op == "same" or meta.type == STACK_TYPE:
            return []
        planning = self.planning or bool(pre.planning)
        if not planning:
            self.in_progress.add(meta.urn)
        verb = op if planning else OP_VERBS.get(op, (op, op))[0]
        return [f"{OP_SYMBOL.get(op, '?'):>2} {meta.type}  {urn_name(meta.urn)}  {verb}"]

    def _outputs(self, out: ev.ResOutputsEvent) -> list[str]:
        meta = out.metadata
        op = _op(meta.op)
        if op == "same" or meta.type == STACK_TYPE or self.planning or out.planning:
            return []
        self.in_progress.discard(meta.urn)
        self.summary.completed += 1
        done = OP_VERBS.get(op, (op, op))[1]
        return [
            f"{OP_SYMBOL.get(op, '?'):>2} {meta.type}  {urn_name(meta.urn)}  {done} ({self.summary.completed} done)"
        ]

    def _failed(self, failed: ev.ResOpFailedEvent) -> list[str]:
        meta = failed.metadata
        self.in_progress.discard(meta.urn)
        self.summary.failed.append(meta.urn)
        return [f" ✗ {meta.type}  {urn_name(meta.urn)}  {_op(meta.op)} failed"]

    def _diagnostic(self, diag: ev.DiagnosticEvent) -> list[str]:
        if diag.ephemeral:
            return []
        text = first_line(diag.message)
        if not text:
            return []
        where = f"{urn_name(diag.urn)}: " if diag.urn else ""
        if diag.severity == "error":
            self.summary.errors.append(f"{where}{text}")
            return [f"error: {where}{text}"]
        if diag.severity == "warning":
            self.summary.warnings.append(f"{where}{text}")
            return [f"warning: {where}{text}"]
        return []  # info/debug: the program's own prints, already in the CLI output

    def _policy(self, pol: ev.PolicyEvent) -> list[str]:
        violation = PolicyViolation(
            pol.policy_pack_name, pol.policy_name, pol.enforcement_level, pol.resource_urn, first_line(pol.message)
        )
        self.summary.policy.append(violation)
        where = f" ({urn_name(pol.resource_urn)})" if pol.resource_urn else ""
        return [f"policy {violation.level}: {violation.pack}/{violation.policy}: {violation.message}{where}"]

    def _summary(self, summ: ev.SummaryEvent) -> list[str]:
        self.summary.engine_summary = True
        self.summary.changes = {_op(k): int(v) for k, v in (summ.resource_changes or {}).items()}
        self.summary.duration_seconds = summ.duration_seconds
        self.summary.policy_packs = dict(summ.policy_packs or {})
        return []

    def status(self) -> str:
        """The live status line: what is running now (a terminal shows it below the step lines)."""
        if self.planning:
            planned = sum(n for op, n in self._seen_steps.items() if op != "same")
            return f"{planned} changes planned, {self._seen_steps.get('same', 0)} unchanged"
        bits = [f"{self.summary.completed} done", f"{len(self.in_progress)} in progress"]
        if self.summary.failed:
            bits.append(f"{len(self.summary.failed)} failed")
        return ", ".join(bits)

    def result(self) -> RunSummary:
        if not self.summary.engine_summary:
            self.summary.changes = {op: n for op, n in self._seen_steps.items() if n}
        return self.summary


def fold_events(events: Iterable[ev.EngineEvent], operation: str = "preview") -> tuple[list[str], RunSummary]:
    fold = EventFold(operation)
    lines: list[str] = []
    for event in events:
        lines.extend(fold.feed(event))
    return lines, fold.result()


def change_phrase(changes: dict[str, int], planning: bool) -> str:
    parts = [f"{changes[op]} {future if planning else past}" for op, future, past in CHANGE_WORDS if changes.get(op)]
    if changes.get("same"):
        parts.append(f"{changes['same']} unchanged")
    return ", ".join(parts) if parts else "no changes"


def render_summary(stack: str, operation: str, summary: RunSummary) -> str:
    """One line a human (or a CI log) reads: what changed, policy, failures, time."""
    planning = operation == "preview"
    bits = [change_phrase(summary.changes, planning)]
    if summary.policy or summary.policy_packs:
        bits.append(f"{len(summary.mandatory)} mandatory and {len(summary.advisory)} advisory policy violations")
    if summary.failed:
        bits.append(f"{len(summary.failed)} failed")
    if summary.errors:
        bits.append(f"{len(summary.errors)} errors")
    if summary.duration_seconds is not None:
        bits.append(f"{summary.duration_seconds}s")
    return f"{operation} {stack}: " + "; ".join(bits)


# Texts the CLI, the backend and the AWS provider print when credentials are missing (lower case).
# Each maps to the one line platformctl prints instead of the engine's multi-line diagnostics.
_AWS_MISSING = (
    "no valid credential sources",
    "nocredentialproviders",
    "unable to validate aws credentials",
    "failed to refresh cached credentials",
    "no ec2 imds role found",
)
_AWS_INVALID = (
    "invalid credentials configured",
    "expiredtoken",
    "the security token included in the request is expired",
    "invalidclienttokenid",
    "the security token included in the request is invalid",
)
_BACKEND = (
    "pulumi_access_token must be set",
    "you must be logged in",
    "no credentials provided or are invalid",
    "not logged in to",
)


def credentials_problem(text: str) -> str | None:
    """The one-line explanation when `text` (an error or diagnostics) says credentials are missing."""
    low = (text or "").lower()
    if any(s in low for s in _BACKEND):
        return "not logged in to a Pulumi backend: run `pulumi login <backend-url>` or set PULUMI_ACCESS_TOKEN"
    if any(s in low for s in _AWS_INVALID):
        return "AWS credentials are expired or invalid: refresh them (e.g. `aws sso login`) and retry"
    if any(s in low for s in _AWS_MISSING):
        return (
            "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) "
            "for the stack's account"
        )
    return None


def outcome_code(summary: RunSummary, error_text: str | None = None) -> int:
    """Exit code of a run from its folded events and, if the operation raised, the error text."""
    texts = "\n".join([error_text or "", *summary.errors])
    if credentials_problem(texts):
        return exit_codes.CREDENTIALS_MISSING
    if summary.mandatory:
        return exit_codes.POLICY_VIOLATION
    if error_text is not None or summary.errors or summary.failed or summary.cancelled:
        return exit_codes.DEPLOY_FAILED
    return exit_codes.OK
