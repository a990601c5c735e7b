"""The typed results of `programs.api`: frozen dataclasses, one documented field at a time.

Every result carries `exit_code`, the code `platformctl` exits with for the same run
(`programs.platformctl.exit_codes`: 0 ok, 1 a mandatory policy failed, 2 bad input or a missing tool,
3 the run failed, 4 the stack is locked, 5 credentials missing, 6 no such stack, 7 a fleet stack
failed, 8 a fleet stack timed out), and `errors`, the input problems that stopped it before anything ran.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from programs.platformctl import events, exit_codes

# `k8s-platform:network.podCidr: ...`, `aws:region: ...`: a problem line that starts with a config key.
_KEYED = re.compile(r"^(?P<key>[A-Za-z0-9_-]+:[A-Za-z0-9_.\[\]-]+): (?P<message>.+)$", re.S)


@dataclass(frozen=True)
class InputProblem:
    """One thing wrong with the input, found before any resource is registered."""

    key: str | None
    """The config key it concerns (`k8s-platform:network.podCidr`), or None when it is not one key (a missing file)."""
    message: str
    """What is wrong and what is allowed."""
    kind: str = "config"
    """config (the stack file's values), file (a missing or unreadable file), argument (a bad option),
    policy-config (the policy pack's enforcement file), program (something an offline plan cannot show),
    tool (the pulumi CLI is missing)."""

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message

    @classmethod
    def parse(cls, line: str, kind: str = "config") -> InputProblem:
        """Split `key: message`; a line without a leading config key keeps `key=None`."""
        match = _KEYED.match(line)
        if match and kind in ("config", "policy-config"):
            return cls(match["key"], match["message"], kind)
        return cls(None, line, kind)


@dataclass(frozen=True)
class Violation:
    """One policy finding, as the policy pack (offline) or the engine (Automation API) reported it."""

    policy: str
    """The policy's name, e.g. `imdsv2-required`."""
    level: str
    """mandatory | advisory (| remediate | disabled, from the engine)."""
    urn: str | None
    """The resource it concerns; None (or "") for a stack-wide policy."""
    message: str
    """What is wrong, first line."""
    pack: str
    """The policy pack that reported it."""


@dataclass(frozen=True)
class Step:
    """One resource operation the engine planned (preview) or performed (up, destroy, refresh)."""

    op: str
    """create, update, replace, delete, same, read, refresh, ..."""
    urn: str
    type: str
    """The resource's type token, e.g. `aws:ec2/vpc:Vpc`."""
    name: str
    """The resource's name (the last URN segment)."""


@dataclass(frozen=True)
class Resource:
    """One resource of an offline plan: what the engine would register (the plan JSON's `resources[]`)."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    """False for a ComponentResource."""
    protect: bool
    dependencies: tuple[str, ...]
    """URNs this resource depends on."""
    inputs: Mapping[str, Any]
    """Inputs under their engine (camelCase) names; secret values are "[secret]" unless `show_secrets`."""

    @classmethod
    def from_plan(cls, entry: Mapping[str, Any]) -> Resource:
        return cls(
            entry["urn"],
            entry["type"],
            entry["name"],
            entry.get("parent"),
            bool(entry.get("custom")),
            bool(entry.get("protect")),
            tuple(entry.get("dependencies") or ()),
            entry.get("inputs") or {},
        )


@dataclass(frozen=True)
class _Result:
    stack: str
    """The stack name."""
    exit_code: int
    """The exit code platformctl uses for the same outcome."""
    violations: tuple[Violation, ...] = ()
    """Every policy finding, mandatory and advisory."""
    errors: tuple[InputProblem, ...] = ()
    """Input problems that stopped the run before anything was registered (exit code 2, or 3 for `program`)."""
    message: str = ""
    """One line saying what went wrong; "" when the run succeeded."""

    @property
    def ok(self) -> bool:
        return self.exit_code == exit_codes.OK

    @property
    def mandatory(self) -> tuple[Violation, ...]:
        """The findings that fail the run (exit code 1)."""
        return tuple(v for v in self.violations if v.level == "mandatory")

    @property
    def advisory(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.level != "mandatory")


@dataclass(frozen=True)
class RunResult(_Result):
    """What one operation did, folded from the engine's events."""

    operation: str = "preview"
    """preview | up | destroy | refresh."""
    changes: Mapping[str, int] = field(default_factory=dict)
    """Steps per op (`{"create": 3, "same": 40}`), the engine's own summary when it sent one."""
    steps: tuple[Step, ...] = ()
    """Every non-trivial step, in the order the engine announced them."""
    failed: tuple[str, ...] = ()
    """URNs whose operation failed."""
    engine_errors: tuple[str, ...] = ()
    """The engine's error diagnostics, first line each."""
    warnings: tuple[str, ...] = ()
    duration_seconds: int | None = None
    policy_packs: Mapping[str, str] = field(default_factory=dict)
    """Policy pack -> version the engine ran."""
    summary: events.RunSummary | None = field(default=None, repr=False, compare=False)
    """The same events folded the way `platformctl` renders them (its summary line)."""

    @property
    def transient(self) -> bool:
        """Worth retrying: another update held the stack's lock."""
        return self.exit_code == exit_codes.CONCURRENT_UPDATE


@dataclass(frozen=True)
class PreviewResult(RunResult):
    """A preview: offline (the program under Pulumi mocks, the policy pack on its resources) or the engine's."""

    offline: bool = True
    resources: tuple[Resource, ...] = ()
    """Offline: every resource the program registers. Through the Automation API: () (see `steps`)."""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    """Offline: the stack outputs; secret values are "[secret]" unless `show_secrets`."""
    plan: Mapping[str, Any] | None = None
    """Offline: the plan JSON document `platformctl preview --offline --json` writes (also on bad input:
    no resources, the problems under `errors`)."""
    policy_config: str | None = None
    """The policy config the pack ran with."""
    stack_info: Mapping[str, Any] = field(default_factory=dict)
    """Offline: what `platformctl preview` prints as its header (the plan's `stackInfo`: environment,
    region, account, cluster kind/name/version, zones, safeguards)."""
    cached: bool = False
    """Offline: the plan came from the plan cache (the stack, its files and the program are unchanged
    since it was stored), so the program did not run."""
    diff: Mapping[str, Any] | None = None
    """With `diff_against`: resources `added`, `removed` and `changed` (per input key) against the
    saved plan, what `platformctl preview --diff` prints."""
    config_source: str | None = None
    """With config `errors`: the stack file they are in."""

    @property
    def protected(self) -> int:
        """Offline: resources planned with `protect`."""
        return sum(1 for r in self.resources if r.protect)


@dataclass(frozen=True)
class UpdateResult(RunResult):
    """An up, destroy or refresh through the Automation API."""


@dataclass(frozen=True)
class StackResult:
    """One stack of a fleet, after its retries."""

    name: str
    code: int
    """This stack's exit code (as `platformctl preview|up` would exit for it; 8 when it timed out)."""
    attempts: int
    seconds: float
    detail: str = ""
    """One line when not ok."""
    resources: int | None = None
    """Offline: resources planned."""
    changes: str = ""
    """What changed, in words (`3 to create, 40 unchanged`)."""

    @property
    def ok(self) -> bool:
        return self.code == exit_codes.OK


@dataclass(frozen=True)
class FleetResult:
    """Many stacks under a concurrency bound."""

    operation: str
    offline: bool
    parallel: int
    exit_code: int
    """0 when every stack succeeded, 7 when one failed, 2 on bad arguments (nothing ran)."""
    stacks: tuple[StackResult, ...] = ()
    """Per stack, in the order given."""
    wall_seconds: float = 0.0
    errors: tuple[InputProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return self.exit_code == exit_codes.OK

    @property
    def failed(self) -> tuple[StackResult, ...]:
        return tuple(s for s in self.stacks if not s.ok)

    def as_dict(self) -> dict[str, Any]:
        """The JSON `platformctl fleet --json` writes."""
        return {
            "operation": self.operation,
            "offline": self.offline,
            "parallel": self.parallel,
            "wallSeconds": round(self.wall_seconds, 3),
            "stacks": [asdict(s) for s in self.stacks],
        }


@dataclass(frozen=True)
class PolicyReport(_Result):
    """The policy pack applied to a saved plan with a stack's enforcement config."""

    config: str | None = None
    """The policy config used (relative to the working directory when inside it)."""
    resources: int = 0
    """Resources checked."""
    plan: Mapping[str, Any] | None = None
    """The plan with its `policy` section replaced by this check."""
