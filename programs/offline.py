"""Run the real Pulumi program in-process under mocks and capture every registered resource.

This is the one harness used by the tests and by `platformctl preview --offline`. It records,
for every resource, what the engine would see: URN, type, name, parent, custom, the inputs under
their engine (camelCase) names, dependencies, provider and `protect`. Secret inputs stay wrapped
in `Secret` so the plan writer can mask them; providers' `additional_secret_outputs` are honoured as
the engine does. What the mocks would silently get wrong is refused with `OfflineProgramError`:
provider invokes, `Resource.get` reads, remote (multi-language) components and duplicate URNs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.config import StackConfig, parse_stack_config
from programs import gc_tuning
from programs.mock_resources import MockContext, mock_state
from programs.stack_files import (  # noqa: F401 (the one stack-file reader; these names stay importable here)
    REPO_ROOT,
    project_config,
    read_stack_file,
    stack_file,
)

PROJECT = "k8s-platform"

_SECRET_SIG = rpc._special_secret_sig
_SIG_KEY = rpc._special_sig_key
_RESOURCE_SIG = rpc._special_resource_sig
_ASSET_SIG = rpc._special_asset_sig
_ARCHIVE_SIG = rpc._special_archive_sig

# Mocks are process-global: one offline run at a time per process.
_RUN_LOCK = threading.Lock()


@dataclass(frozen=True)
class Secret:
    """A value the engine would treat as secret."""

    value: Any


@dataclass
class CapturedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    dependencies: list[str]
    protect: bool
    provider: str | None = None
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class OfflineRun:
    project: str
    stack: str
    config: StackConfig
    resources: list[CapturedResource]
    outputs: dict[str, Any]  # values may be `Secret`
    warnings: list[str] = field(default_factory=list)  # the program's `pulumi.log.warn` messages, in order

    def of_type(self, typ: str) -> list[CapturedResource]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str | None = None) -> CapturedResource:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected exactly one {typ}{' named ' + name if name else ''}, found {len(found)}")
        return found[0]

    def by_urn(self) -> dict[str, CapturedResource]:
        return {r.urn: r for r in self.resources}

    def children_of(self, urn: str) -> list[CapturedResource]:
        return [r for r in self.resources if r.parent == urn]


def normalize_urn(urn: str) -> str:
    """Mock URNs of top-level resources carry a `pulumi:pulumi:Stack$` type prefix the engine does not add."""
    return urn.replace("::pulumi:pulumi:Stack$", "::")


def decode_struct(value: Any) -> Any:
    """Engine wire value (as from `MessageToDict`) -> Python, secrets as `Secret`, resource refs as URNs."""
    if isinstance(value, dict):
        sig = value.get(_SIG_KEY)
        if sig == _SECRET_SIG:
            inner = decode_struct(value.get("value"))
            return inner if isinstance(inner, Secret) else Secret(inner)
        if sig == _RESOURCE_SIG:
            return normalize_urn(value.get("urn", ""))
        if sig == _ASSET_SIG:
            return {"asset": value.get("path") or value.get("uri") or "(text)", "text": value.get("text")}
        if sig == _ARCHIVE_SIG:
            return {"archive": value.get("path") or value.get("uri") or sorted((value.get("assets") or {}).keys())}
        return {k: decode_struct(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_struct(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def reveal(value: Any) -> Any:
    """Strip `Secret` wrappers (for the mocks, which compute on real values)."""
    if isinstance(value, Secret):
        return reveal(value.value)
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def contains_secret(value: Any) -> bool:
    if isinstance(value, Secret):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


def secret_strings(value: Any, inside: bool = False) -> list[str]:
    """Every string held inside a `Secret` anywhere in `value`: what must never appear in plaintext."""
    if isinstance(value, Secret):
        return secret_strings(value.value, True)
    if isinstance(value, dict):
        return [s for v in value.values() for s in secret_strings(v, inside)]
    if isinstance(value, list):
        return [s for v in value for s in secret_strings(v, inside)]
    return [value] if inside and isinstance(value, str) else []


class OfflineProgramError(RuntimeError):
    """The program did something an offline plan cannot show faithfully (one line per problem)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


# The URN of the resource this thread is registering: MockResourceArgs carries none, and the monitor
# calls `new_resource` on the thread that runs its RegisterResource.
_REGISTERING = threading.local()


class _PlatformMocks(pulumi_mocks.Mocks):
    def __init__(self, ctx: MockContext):
        self.ctx = ctx

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        inputs = reveal(_unwrap_rpc(args.inputs))
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider-id", inputs
        return mock_state(self.ctx, args.typ, args.name, inputs, getattr(_REGISTERING, "urn", None))

    def call(self, args: pulumi_mocks.MockCallArgs):
        # The program is built to need no provider invokes; one that appears is a design regression.
        raise OfflineProgramError(
            [
                f"offline preview: the program invoked {args.token}; use a config value or an SSM-parameter "
                "selector instead of a provider invoke"
            ]
        )


def _unwrap_rpc(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return _unwrap_rpc(value.get("value"))
        return {k: _unwrap_rpc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_rpc(v) for v in value]
    return value


class _CaptureMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self.captured: list[CapturedResource] = []
        self.refused: list[str] = []  # reported after the run: the plan would silently miss these
        self._urns: set[str] = set()

    def ReadResource(self, request):
        # `Resource.get(...)` reads live cloud state; under mocks it would return made-up state and
        # never appear in the plan, so the plan would look complete while the real run depends on the cloud.
        self.refused.append(
            f"offline preview: the program reads an existing {request.type} "
            f"'{request.name}' (Resource.get); pass its id/ARN through config instead"
        )
        return super().ReadResource(request)

    def RegisterResource(self, request):
        if request.remote:
            # A multi-language component builds its children in another process: none of them
            # would be registered here, so the plan (and the policy pack) would never see them.
            self.refused.append(
                f"offline preview: {request.type} '{request.name}' is a multi-language "
                "(remote) component whose children are invisible under mocks; build it "
                "from pulumi_aws/pulumi_kubernetes resources"
            )
        _REGISTERING.urn = self.make_urn(request.parent, request.type, request.name)
        try:
            response = super().RegisterResource(request)
        finally:
            _REGISTERING.urn = None
        if request.type == "pulumi:pulumi:Stack":
            return response
        _mark_secret_outputs(response.object, request.additionalSecretOutputs)
        urn = normalize_urn(response.urn)
        if urn in self._urns:
            # The engine fails the whole run on this ("Duplicate resource URN"); the mocks would not.
            self.refused.append(
                f"offline preview: duplicate resource URN {urn}; the engine refuses a second "
                f"{request.type} named '{request.name}' under the same parent"
            )
        self._urns.add(urn)
        inputs = decode_struct(json_format.MessageToDict(request.object, preserving_proto_field_name=True))
        prop_deps = {k: [normalize_urn(u) for u in v.urns] for k, v in request.propertyDependencies.items()}
        self.captured.append(
            CapturedResource(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=normalize_urn(request.parent) if request.parent else None,
                custom=bool(request.custom),
                inputs=inputs,
                dependencies=sorted({normalize_urn(u) for u in request.dependencies}),
                protect=bool(request.protect),
                provider=request.provider.split("::")[-2] if request.provider else None,
                property_dependencies=prop_deps,
            )
        )
        return response


def _mark_secret_outputs(state: struct_pb2.Struct, names: Any) -> None:
    """What the engine does with `additional_secret_outputs` (tls private keys, random passwords): the
    mock monitor does not, so downstream values would look plaintext offline while secret for real."""
    for key in names:
        if key not in state.fields:
            continue
        plain = struct_pb2.Value()
        plain.CopyFrom(state.fields[key])
        wrapper = struct_pb2.Struct()
        wrapper.fields[_SIG_KEY].string_value = _SECRET_SIG
        wrapper.fields["value"].CopyFrom(plain)
        state.fields[key].struct_value.CopyFrom(wrapper)


class _WarningLog(logging.Handler):
    """Where the mock engine logs: the program's warnings are kept for the plan (a real engine shows
    them as diagnostics), not printed by the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.logger = logging.Logger("k8s-platform.offline", logging.WARNING)
        self.logger.propagate = False
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().strip()
        if message and message not in self.messages:
            self.messages.append(message)


@contextlib.contextmanager
def _quiet_sdk():
    """No diagnostics the mock engine would drop: the SDK walks the Python stack of every
    registration into a source-position message (~10 % of an offline run; no plan field holds it),
    and sends debug messages (below)."""
    from pulumi.runtime import resource as runtime_resource
    from pulumi.runtime.proto import source_pb2

    original = getattr(runtime_resource, "_get_stack_trace", None)
    if original is None:
        yield
        return
    runtime_resource._get_stack_trace = source_pb2.StackTrace
    # Likewise its debug channel: four messages a resource, each a protobuf request to the mock engine,
    # which keeps warnings only (~5 % of a run).
    debug = pulumi.log.debug
    pulumi.log.debug = _drop_debug
    try:
        yield
    finally:
        runtime_resource._get_stack_trace = original
        pulumi.log.debug = debug


def _drop_debug(*_args: Any, **_kwargs: Any) -> None:
    return None


async def _resolve_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for key, value in outputs.items():
        out = pulumi.Output.from_input(value)
        val = await out.future()
        resolved[key] = Secret(val) if await out.is_secret() else val
    return resolved


def run_offline(
    stack: str,
    raw_config: dict[str, Any],
    program: Callable[[StackConfig], dict[str, Any]] | None = None,
) -> OfflineRun:
    """Validate config (ConfigError before any resource), run the program under mocks, capture everything."""
    cfg = parse_stack_config(raw_config)
    if program is None:
        from programs.stack import build_stack as program
    with _RUN_LOCK:
        gc_tuning.tune()
        gc_tuning.settle()  # the SDK's import-time objects (and earlier runs') are not rescanned
        mocks = _PlatformMocks(MockContext(region=cfg.region, account_id=cfg.account_id, stack=stack))
        monitor = _CaptureMonitor(mocks)
        settings.reset_options(project=PROJECT, stack=stack, preview=False)
        as_engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw_config.items()}
        pulumi.runtime.set_all_config(as_engine)
        warnings = _WarningLog()
        pulumi.runtime.set_mocks(
            mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor, logger=warnings.logger
        )
        result: dict[str, Any] = {}

        async def body() -> None:
            result["resolved"] = await _resolve_outputs(program(cfg))

        # Same driver the engine's language host uses: run, then wait for every outstanding RPC.
        with _quiet_sdk():
            _sync_await(run_pulumi_func(body))
        if monitor.refused:
            raise OfflineProgramError(monitor.refused)
        return OfflineRun(PROJECT, stack, cfg, monitor.captured, result.get("resolved", {}), warnings.messages)
