"""`platformctl upgrade --stack S --to X`: one EKS minor, in the documented order, as separate updates.

Why not one `pulumi up` with a new `cluster.eks.version`: the engine would update the control plane
and, in the same run, everything that depends on it (add-ons, nodes), with no point where a person or
a check stands between the steps, and EKS itself refuses a skipped minor only mid-update (README
"Upgrading EKS"). Here each step is its own `up` (with the policy pack) of the whole stack, from a
stack config that holds the parts that must wait:

  a. add-ons        the builds pinned for the target minor that are also valid on the current one
                    (vpc-cni, Pod Identity agent, CoreDNS, EBS CSI); kube-proxy waits
  b. control plane  `cluster.eks.version` = target; nodes held (`systemNodeGroup.version`) and
                    kube-proxy held (`addonVersions.kube-proxy`) at the current minor
  c. data plane     the system node group rolls (update config: max unavailable 1; EKS drains nodes
                    under their PodDisruptionBudgets); Karpenter nodes drift to the target minor's AMI
                    through the node class's alias, under the NodePools' disruption budgets
  d. kube-proxy     to the target minor's build (it follows the control plane)

Between steps it checks health through the stack's outputs and the AWS and Kubernetes APIs (cluster
ACTIVE at the expected version, every add-on ACTIVE and not DEGRADED, the node group ACTIVE, no node
outside the skew policy) and stops at the first failure. The state of the upgrade is what is
deployed (the stack's outputs, the EKS API), never a file of its own: running the same command again
after a fix resumes at the first step not done.

Pure planning (`plan_upgrade`) over an observed state (`observe`), a thin runner (`run_upgrade`) with
the stack opener and the AWS/Kubernetes probe injected, so the flow is tested with recorded events
and API responses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config import StackConfig, parse_stack_config
from components.core.eks_support_calendar import CALENDAR
from components.core.pins import ADDON_NAMES, ADDON_VERSIONS, KUBE_PROXY, SUPPORTED_KUBERNETES_VERSIONS
from components.core.version_skew import minor_of, minor_str, node_skew_problem, upgrade_problem
from programs import deployed_version
from programs.api import engine
from programs.api.engine import INPUT_ERRORS, EventCallback, StackRequest, problems_of
from programs.platformctl import exit_codes
from programs.stack_files import REPO_ROOT, read_stack_file

CONFIG_NAMESPACE = "k8s-platform"
VERSION_KEY = "cluster.eks.version"
DEPLOYED_KEY = "cluster.eks.deployedVersion"
NODES_KEY = "cluster.eks.systemNodeGroup.version"
ADDON_KEY = "cluster.eks.addonVersions"

ADDONS_FIRST = tuple(a for a in ADDON_NAMES if a != KUBE_PROXY)  # valid on both minors: before the control plane
FOLLOW_CONTROL_PLANE = (KUBE_PROXY,)  # built per minor: after the control plane and the nodes

BROKEN_ADDON_STATUSES = ("CREATE_FAILED", "UPDATE_FAILED", "DEGRADED", "DELETE_FAILED")


class UpgradeRefused(Exception):
    """The upgrade cannot start; the message says why and what to do (exit 2)."""


# --------------------------------------------------------------------------------- observing
@dataclass(frozen=True)
class Observed:
    """What is deployed: from the EKS API where a client is at hand, else from the stack's outputs."""

    control_plane: str  # minor, e.g. "1.35"
    addons: dict[str, str]  # EKS add-on name -> installed version
    node_group: str | None  # the system node group's minor
    node_group_name: str | None
    kubelets: tuple[str, ...] | None = None  # every node's kubelet version; None: Kubernetes not looked at
    source: str = "outputs"


class Probe:
    """The AWS and Kubernetes APIs the upgrade looks at: `eks` is a boto3 EKS client (or anything with
    its describe_cluster / describe_addon / describe_nodegroup / list_nodegroups / describe_addon_versions);
    `nodes()` returns the Kubernetes Node objects, or None when the cluster's API is out of reach."""

    def __init__(self, eks: Any | None = None, nodes: Callable[[], list[dict[str, Any]] | None] | None = None):
        self.eks = eks
        self._nodes = nodes
        self.kube_error: str | None = None  # why the Kubernetes API could not be asked (node checks then skipped)

    def nodes(self) -> list[dict[str, Any]] | None:
        return self._nodes() if self._nodes is not None else None


def default_probe(cfg: StackConfig, kubeconfig: dict[str, Any] | None) -> Probe:
    """boto3 (default credentials, the stack's region) and the official Kubernetes client on the kubeconfig."""
    import boto3

    from programs.platformctl.doctor.framework import Context

    ctx = Context(cfg, {}, kubeconfig)

    def nodes() -> list[dict[str, Any]] | None:
        if kubeconfig is None:
            probe.kube_error = "no kubeconfig (pass --kubeconfig, e.g. the one `platformctl connect` writes)"
            return None
        try:
            return ctx.kube_items("/api/v1/nodes")
        except Exception as exc:  # noqa: BLE001 - a private endpoint out of reach: EKS's view still counts
            probe.kube_error = _one_line(exc)
            return None

    probe = Probe(boto3.client("eks", region_name=cfg.region), nodes)
    return probe


def _output_value(value: Any) -> Any:
    return value.value if hasattr(value, "value") and not isinstance(value, dict) else value


def plain_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    """Automation API `OutputValue`s (or `pulumi stack output --json`'s plain values) as plain values."""
    return {k: _output_value(v) for k, v in (outputs or {}).items()}


def _node_group_name(cfg: StackConfig, outputs: dict[str, Any], eks: Any | None) -> str | None:
    name = (outputs.get("systemNodeGroup") or {}).get("name")
    if name or eks is None:
        return name
    prefix = f"{cfg.cluster_name}-system-"
    found = [n for n in eks.list_nodegroups(clusterName=cfg.cluster_name).get("nodegroups", []) if n.startswith(prefix)]
    return found[0] if len(found) == 1 else None


def observe(cfg: StackConfig, outputs: dict[str, Any], probe: Probe | None) -> Observed:
    """The deployed versions; raises UpgradeRefused when nothing says which minor is deployed."""
    outputs = plain_outputs(outputs)
    eks = probe.eks if probe is not None else None
    name = cfg.cluster_name
    addons = {k: v for k, v in (outputs.get("addonVersions") or {}).items() if isinstance(v, str)}
    node_group = (outputs.get("systemNodeGroup") or {}).get("kubernetesVersion")
    control_plane = outputs.get("kubernetesVersion")
    source = "outputs"
    group_name = _node_group_name(cfg, outputs, eks)
    if eks is not None:
        source = "eks"
        control_plane = eks.describe_cluster(name=name)["cluster"]["version"]
        installed = set(eks.list_addons(clusterName=name).get("addons", [])) if hasattr(eks, "list_addons") else None
        for addon in ADDON_NAMES:
            if installed is not None and addon not in installed:
                addons.pop(addon, None)
                continue
            addons[addon] = eks.describe_addon(clusterName=name, addonName=addon)["addon"]["addonVersion"]
        if group_name:
            node_group = eks.describe_nodegroup(clusterName=name, nodegroupName=group_name)["nodegroup"]["version"]
    if not isinstance(control_plane, str) or minor_of(control_plane) is None:
        raise UpgradeRefused(
            f"stack '{cfg.cluster_name}': the deployed Kubernetes version is unknown (no `kubernetesVersion` "
            "output and no EKS API): deploy the stack with this release once, or pass --outputs FILE"
        )
    kubelets = None
    if probe is not None:
        nodes = probe.nodes()
        if nodes is not None:
            kubelets = tuple(((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "?") for n in nodes)
    return Observed(
        minor_str(control_plane),
        addons,
        minor_str(node_group) if isinstance(node_group, str) and minor_of(node_group) else None,
        group_name,
        kubelets,
        source,
    )


# --------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class UpgradeStep:
    id: str  # addons | control-plane | data-plane | kube-proxy
    title: str
    sets: tuple[tuple[str, str], ...]  # (what, version) the step moves, for people
    config: tuple[tuple[str, str | None], ...]  # stack config path (under k8s-platform:) -> value; None removes
    expect_control_plane: str
    expect_addons: dict[str, str]
    expect_node_group: str | None
    done: bool  # already deployed (a resumed upgrade skips it)
    note: str = ""


@dataclass(frozen=True)
class UpgradePlan:
    stack: str
    cluster_name: str
    current: str  # the minor the upgrade starts from
    target: str
    observed: Observed
    steps: tuple[UpgradeStep, ...]
    notes: tuple[str, ...] = ()

    @property
    def pending(self) -> list[UpgradeStep]:
        return [s for s in self.steps if not s.done]


Compatibility = Callable[[str, str, str], "bool | None"]  # (add-on, version, minor) -> listed as compatible?


def eks_compatibility(eks: Any | None) -> Compatibility:
    """`aws eks describe-addon-versions --addon-name A --kubernetes-version M` lists version V; None: no client."""
    cache: dict[tuple[str, str], set[str]] = {}

    def compatible(addon: str, version: str, minor: str) -> bool | None:
        if eks is None:
            return None
        if (addon, minor) not in cache:
            found: set[str] = set()
            kwargs: dict[str, Any] = {"addonName": addon, "kubernetesVersion": minor}
            while True:
                page = eks.describe_addon_versions(**kwargs)
                for item in page.get("addons", []):
                    for v in item.get("addonVersions", []):
                        if any(c.get("clusterVersion") == minor for c in v.get("compatibilities", [])):
                            found.add(v["addonVersion"])
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
            cache[(addon, minor)] = found
        return version in cache[(addon, minor)]

    return compatible


def _user_overrides(cfg: StackConfig, current: str, target: str) -> list[str]:
    """Add-on overrides the upgrade did not set itself (pinned for neither minor): they would stay behind."""
    ours = {ADDON_VERSIONS.get(m, {}).get(a) for m in (current, target) for a in ADDON_NAMES}
    return [f"{a}: {v}" for a, v in cfg.cluster.eks.addon_versions.items() if v not in ours]


def addon_key(addon: str) -> str:
    """The config path of one add-on override; bracketed, since add-on names hold hyphens."""
    return f'{ADDON_KEY}["{addon}"]'


def path_parts(path: str) -> list[str]:
    """`a.b["c-d"]` -> ["a", "b", "c-d"] (the `pulumi config --path` syntax this module writes)."""
    return [m.group(1) or m.group(2) for m in re.finditer(r'\["([^"]+)"\]|([^.\[\]]+)', path)]


def _config(version: str, deployed: str, nodes: str | None, addons: dict[str, str]) -> tuple:
    return (
        (VERSION_KEY, version),
        (DEPLOYED_KEY, deployed),
        (NODES_KEY, nodes),
        *((addon_key(a), addons.get(a)) for a in ADDON_NAMES),
    )


def plan_upgrade(
    stack: str,
    cfg: StackConfig,
    observed: Observed,
    target: str,
    compatible: Compatibility | None = None,
) -> UpgradePlan:
    """The ordered steps from the deployed state to `target`, the done ones marked; raises UpgradeRefused."""
    compatible = compatible or (lambda *_: None)
    if cfg.cluster.kind != "eks":
        raise UpgradeRefused(
            f"stack '{stack}' runs K3s: `platformctl upgrade` upgrades EKS; K3s follows `cluster.k3s.version`"
        )
    if minor_of(target) is None or minor_str(target) != target.removeprefix("v"):
        raise UpgradeRefused(f"--to '{target}': give a Kubernetes minor like 1.36")
    deployed = observed.control_plane
    problem = upgrade_problem(deployed, target)
    if problem:
        raise UpgradeRefused(f"stack '{stack}' is deployed at {deployed}: {problem}")
    if target not in ADDON_VERSIONS:
        raise UpgradeRefused(
            f"EKS {target} has no pinned add-on versions in this release (pinned: "
            f"{', '.join(SUPPORTED_KUBERNETES_VERSIONS)}); bump components/core/pins.py first"
        )
    # Resuming: the control plane is already at the target; the upgrade started one minor below.
    current = deployed if deployed != target else f"{minor_of(target)[0]}.{minor_of(target)[1] - 1}"  # type: ignore[index]
    if cfg.cluster.eks.version not in (current, target):
        raise UpgradeRefused(
            f"k8s-platform:{VERSION_KEY} is {cfg.cluster.eks.version} but the control plane is at {deployed}; "
            f"set it to {deployed} (what is deployed) before upgrading to {target}"
        )
    overrides = _user_overrides(cfg, current, target)
    if overrides:
        raise UpgradeRefused(
            f"k8s-platform:{ADDON_KEY} overrides {', '.join(overrides)}, pinned for neither {current} nor {target}: "
            "remove the overrides (or pin the builds in components/core/pins.py) before upgrading"
        )
    held = cfg.cluster.eks.system_node_group.version
    if held is not None and held != current:
        # Not a hold of this upgrade (it holds the nodes at the minor it starts from): the user's own choice.
        raise UpgradeRefused(
            f"k8s-platform:{NODES_KEY} holds the system nodes at {held}: bring them to {current} first "
            f"(remove the key and `pulumi up`), then upgrade to {target}"
        )
    if current not in ADDON_VERSIONS:
        raise UpgradeRefused(f"EKS {current} has no pinned add-on versions in this release: nothing to step from")
    from_pins, to_pins = ADDON_VERSIONS[current], ADDON_VERSIONS[target]
    installed = set(observed.addons) or set(ADDON_NAMES)

    # The data plane must be within the skew policy of the target before the control plane moves.
    skew = [
        f"system node group at {observed.node_group}: {p}"
        for p in [node_skew_problem(target, observed.node_group, "the system nodes")]
        if observed.node_group and p
    ]
    for kubelet in observed.kubelets or ():
        p = node_skew_problem(target, kubelet, f"a node with kubelet {kubelet}") if minor_of(kubelet) else None
        if p and p not in skew:
            skew.append(p)
    if skew:
        raise UpgradeRefused(
            f"upgrading the control plane to {target} would break the version-skew policy: " + "; ".join(skew)
        )

    if cfg.cluster.eks.compute_mode == "auto-mode":
        # AWS runs the add-ons and the nodes of an Auto Mode cluster: after the control plane it upgrades
        # the components it runs and replaces its nodes by drift (under PodDisruptionBudgets and the
        # NodePools' disruption budgets). The stack owns only the control plane's version.
        step = UpgradeStep(
            "control-plane",
            f"control plane {current} -> {target} (EKS Auto Mode then upgrades the add-ons it runs and "
            "replaces its nodes by drift)",
            (("control plane", target),),
            ((VERSION_KEY, target), (DEPLOYED_KEY, current)),
            target,
            {},
            None,
            deployed == target,
        )
        return UpgradePlan(stack, cfg.cluster_name, current, target, observed, (step,))

    # (a) add-ons first: the target's builds, each also valid on the current minor.
    moving = {a: to_pins[a] for a in ADDONS_FIRST if a in installed and to_pins[a] != from_pins[a]}
    invalid = [f"{a} {v}" for a, v in moving.items() if compatible(a, v, current) is False]
    if invalid:
        raise UpgradeRefused(
            f"no build pinned for {target} is valid on {current} for {', '.join(invalid)} (EKS "
            f"describe-addon-versions lists none for {current}): the add-ons cannot go first; pin a build "
            "listed for both minors in components/core/pins.py"
        )
    not_for_target = [
        f"{a} {to_pins[a]}" for a in sorted(installed) if a in to_pins and compatible(a, to_pins[a], target) is False
    ]
    if not_for_target:
        raise UpgradeRefused(
            f"EKS does not list {', '.join(not_for_target)} for {target} (describe-addon-versions), though "
            f"components/core/pins.py pins them for it: fix the pins before upgrading (`platformctl pins check`)"
        )
    unchecked = [a for a, v in moving.items() if compatible(a, v, current) is None]
    notes = []
    if unchecked:
        notes.append(
            f"not checked against EKS (no API at hand): {', '.join(unchecked)} builds of {target} on {current}"
        )
    for node_class in cfg.karpenter.node_classes if cfg.karpenter.enabled else ():
        alias = node_class.ami_alias or ""
        if "@" in alias and not alias.endswith("@latest"):
            notes.append(
                f"Karpenter node class '{node_class.name}' pins {alias}: once the control plane is at {target} "
                f"Karpenter resolves that release's {target} AMI; confirm it is published (`aws ssm get-parameter` "
                f"on the path `platformctl pins check` prints) or bump the alias first"
            )
    cp_done = deployed == target
    kp_from, kp_to = from_pins[KUBE_PROXY], to_pins[KUBE_PROXY]
    held_kube_proxy = {KUBE_PROXY: kp_from} if KUBE_PROXY in installed else {}
    addons_after_a = {**{a: from_pins[a] for a in installed}, **moving}
    a_done = cp_done or all(observed.addons.get(a) == v for a, v in moving.items())
    steps = [
        UpgradeStep(
            "addons",
            f"add-ons to the {target} builds that also run on {current}",
            tuple(sorted(moving.items())),
            _config(current, current, None, moving),
            current,
            addons_after_a,
            current,
            a_done,
            "" if moving else f"every add-on but kube-proxy is pinned to the same build for {current} and {target}",
        ),
        UpgradeStep(
            "control-plane",
            f"control plane {current} -> {target} (system nodes and kube-proxy held at {current})",
            (("control plane", target),),
            _config(target, current, current, held_kube_proxy),
            target,
            {**{a: to_pins[a] for a in installed}, **held_kube_proxy},
            current,
            cp_done,
        ),
        UpgradeStep(
            "data-plane",
            f"system node group {current} -> {target} (max unavailable 1, under PodDisruptionBudgets); "
            "Karpenter nodes drift to the target's AMI (from step 2 on: their alias resolves per control-plane minor)",
            (("system node group", target),),
            _config(target, target, None, held_kube_proxy),
            target,
            {**{a: to_pins[a] for a in installed}, **held_kube_proxy},
            target,
            cp_done and observed.node_group == target,
        ),
        UpgradeStep(
            "kube-proxy",
            f"kube-proxy to the {target} build",
            ((KUBE_PROXY, kp_to),) if KUBE_PROXY in installed else (),
            _config(target, target, None, {}),
            target,
            {a: to_pins[a] for a in installed},
            target,
            cp_done
            and observed.node_group == target
            and observed.addons.get(KUBE_PROXY, kp_to) == kp_to
            and cfg.cluster.eks.deployed_version == target,
        ),
    ]
    return UpgradePlan(stack, cfg.cluster_name, current, target, observed, tuple(steps), tuple(notes))


def render_plan(plan: UpgradePlan) -> list[str]:
    """What `--dry-run` prints: the path, then each step with the versions it sets."""
    lines = [
        f"upgrade stack '{plan.stack}' (cluster {plan.cluster_name}): EKS {plan.current} -> {plan.target}, "
        f"deployed control plane {plan.observed.control_plane} (from {plan.observed.source})",
    ]
    support = [
        f"{m} standard support until {CALENDAR[m].end_of_standard.isoformat()} "
        f"(extended until {CALENDAR[m].end_of_extended.isoformat()})"
        for m in (plan.current, plan.target)
        if m in CALENDAR
    ]
    if support:
        lines.append("  EKS support: " + "; ".join(support))
    previous: dict[str, str | None] = {}
    for n, step in enumerate(plan.steps, 1):
        state = "done" if step.done and step.sets else "nothing to change" if step.done else "to run"
        lines.append(f"  {n}. {step.id}: {step.title} [{state}]")
        for what, version in step.sets:
            lines.append(f"       {what} -> {version}")
        if step.note:
            lines.append(f"       ({step.note})")
        config = dict(step.config)
        if not step.done:
            shown = ", ".join(f"{k}={v}" for k, v in step.config if v is not None)
            released = [k for k, v in step.config if v is None and previous.get(k) is not None]
            lines.append(f"       stack config: {shown}" + (f"; unset {', '.join(released)}" if released else ""))
        previous = config
    lines += [f"  note: {n}" for n in plan.notes]
    return lines


# --------------------------------------------------------------------------------- health
def health_problems(
    plan: UpgradePlan, step: UpgradeStep | None, probe: Probe | None, outputs: dict[str, Any]
) -> list[str]:
    """Why the stack is not healthy after `step` (None: before the first step); [] when it is."""
    problems: list[str] = []
    expect_cp = step.expect_control_plane if step else plan.observed.control_plane
    if step is not None and outputs:
        out_version = plain_outputs(outputs).get("kubernetesVersion")
        if out_version and minor_str(str(out_version)) != expect_cp:
            problems.append(f"stack output kubernetesVersion is {out_version}, expected {expect_cp}")
    eks = probe.eks if probe is not None else None
    if eks is None:
        return problems
    name = plan.cluster_name
    cluster = eks.describe_cluster(name=name)["cluster"]
    if cluster.get("status") != "ACTIVE":
        problems.append(f"cluster {name} is {cluster.get('status')}, not ACTIVE")
    if minor_str(cluster["version"]) != expect_cp:
        problems.append(f"cluster {name} is at {cluster['version']}, expected {expect_cp}")
    expected = step.expect_addons if step else plan.observed.addons
    for addon in sorted(expected):
        desc = eks.describe_addon(clusterName=name, addonName=addon)["addon"]
        status, version = desc.get("status"), desc.get("addonVersion")
        if status in BROKEN_ADDON_STATUSES or status != "ACTIVE":
            issues = "; ".join(
                f"{i.get('code', '')}: {i.get('message', '')}".strip(": ")
                for i in (desc.get("health") or {}).get("issues") or []
            )
            problems.append(f"add-on {addon} {version} is {status}" + (f" ({issues})" if issues else ""))
        elif step is not None and version != expected[addon]:
            problems.append(f"add-on {addon} is at {version}, expected {expected[addon]}")
    group = plan.observed.node_group_name
    if group:
        ng = eks.describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"]
        if ng.get("status") != "ACTIVE":
            health = "; ".join(i.get("message", "") for i in (ng.get("health") or {}).get("issues") or [])
            problems.append(f"node group {group} is {ng.get('status')}" + (f" ({health})" if health else ""))
        want = step.expect_node_group if step else None
        if want and minor_str(ng.get("version", "0.0")) != want:
            problems.append(f"node group {group} is at {ng.get('version')}, expected {want}")
    nodes = probe.nodes() if probe is not None else None
    for node in nodes or []:
        kubelet = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
        if minor_of(kubelet):
            p = node_skew_problem(expect_cp, kubelet, f"node {node.get('metadata', {}).get('name', '?')}")
            if p:
                problems.append(p)
    return problems


def lagging_nodes(plan: UpgradePlan, probe: Probe | None) -> list[str]:
    """Nodes whose kubelet is still below the target (Karpenter rolls them under its disruption budgets)."""
    nodes = probe.nodes() if probe is not None else None
    out = []
    for node in nodes or []:
        kubelet = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
        if minor_of(kubelet) and minor_str(kubelet) != plan.target:
            out.append(f"{node.get('metadata', {}).get('name', '?')} ({kubelet})")
    return out


# --------------------------------------------------------------------------------- running
@dataclass
class StepRun:
    step: str
    code: int
    message: str = ""
    changes: dict[str, int] = field(default_factory=dict)


@dataclass
class UpgradeResult:
    stack: str
    code: int
    message: str = ""
    plan: UpgradePlan | None = None
    runs: list[StepRun] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code == exit_codes.OK


def _cluster_config(stack: Any) -> dict[str, Any]:
    """The stack's `k8s-platform:cluster` object as the workspace holds it (for which leaves exist)."""
    try:
        value = stack.get_config(f"{CONFIG_NAMESPACE}:cluster")
    except Exception:  # noqa: BLE001 - no such key: nothing set
        return {}
    text = getattr(value, "value", value)
    try:
        return json.loads(text) if isinstance(text, str) else dict(text or {})
    except ValueError:
        return {}


def _has_path(obj: dict[str, Any], path: str) -> bool:
    node: Any = obj
    for part in path_parts(path):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def apply_step_config(stack: Any, step: UpgradeStep) -> None:
    """Set the step's stack config through the workspace (`pulumi config set --path`): it lands in
    Pulumi.<stack>.yaml, so a plain `pulumi up` afterwards deploys the same state."""
    from pulumi.automation import ConfigValue

    current = _cluster_config(stack)
    for path, value in step.config:
        key = f"{CONFIG_NAMESPACE}:{path}"
        inner = path.removeprefix("cluster.")
        if value is None:
            if _has_path(current, inner):
                stack.remove_config(key, path=True)
        else:
            stack.set_config(key, ConfigValue(value=value), path=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {engine.last_error_line(str(exc)) if text else ''}".rstrip(": ")


def _api_failure_code(exc: BaseException) -> int:
    from pulumi.automation import errors as auto_errors

    if isinstance(exc, auto_errors.StackNotFoundError):
        return exit_codes.STACK_NOT_FOUND
    if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError", "NoRegionError"):
        return exit_codes.CREDENTIALS_MISSING
    if isinstance(exc, FileNotFoundError) and "pulumi" in str(exc):
        return exit_codes.CONFIG_ERROR
    return exit_codes.DEPLOY_FAILED


def _as_running(raw: dict[str, Any]) -> dict[str, Any]:
    """The stack config as of a cluster that runs its configured minor (`deployedVersion` defaults to
    `version`): a minor past standard support, which the program refuses for a new cluster, must still
    be upgradable from. The deployed minor the plan starts from is observed, not taken from here."""
    cluster = raw.get(deployed_version.CLUSTER_KEY)
    eks = cluster.get("eks") if isinstance(cluster, dict) else None
    if not isinstance(eks, dict) or not isinstance(eks.get("version"), str) or "deployedVersion" in eks:
        return raw
    return deployed_version.with_deployed_version(raw, eks["version"])


def run_upgrade(
    stack: str,
    target: str,
    *,
    dry_run: bool = False,
    root: Path = REPO_ROOT,
    config_file: Path | None = None,
    policy_config: Path | None = None,
    outputs: dict[str, Any] | None = None,
    opener: Callable[[StackRequest], Any] | None = None,
    probe: Probe | Callable[[StackConfig, dict[str, Any]], Probe | None] | None = None,
    on_event: Callable[[UpgradeStep], EventCallback | None] | None = None,
    on_line: Callable[[str], None] | None = None,
    on_step_done: Callable[[UpgradeStep, Any], None] | None = None,
) -> UpgradeResult:
    """Plan and (unless `dry_run`) run the upgrade. `outputs` replaces the stack's outputs (a recorded
    `pulumi stack output --json`); `probe` is a Probe, or a function of (config, outputs) making one
    (None: look at nothing but the outputs); `on_event(step)` returns the engine-event callback of that
    step's update; `on_line` receives the progress lines. Never raises for bad input or a failed step."""
    say = on_line or (lambda _line: None)
    opener = opener or engine.open_stack
    if config_file is not None and not dry_run:
        # Each step's config is written with `pulumi config set --path`, which writes Pulumi.<stack>.yaml only.
        return UpgradeResult(
            stack,
            exit_codes.CONFIG_ERROR,
            "--config-file is for --dry-run: the upgrade writes each step's config to the stack's own "
            f"Pulumi.{stack}.yaml (`pulumi config set --path`), which every later `pulumi up` reads",
        )
    try:
        req = engine.stack_request("up", stack, root, config_file=config_file, policy_config=policy_config)
        cfg = parse_stack_config(_as_running(read_stack_file(req.stack_file)))
    except INPUT_ERRORS as exc:
        return UpgradeResult(stack, exit_codes.CONFIG_ERROR, "; ".join(problems_of(exc)))
    if cfg.cluster.kind != "eks":
        return UpgradeResult(
            stack,
            exit_codes.CONFIG_ERROR,
            f"stack '{stack}' runs K3s: `platformctl upgrade` upgrades EKS; K3s follows `cluster.k3s.version`",
        )
    workspace = None
    unreachable = ""
    try:
        if outputs is None:
            workspace = opener(req)
            outputs = plain_outputs(workspace.outputs())
        chosen = probe(cfg, outputs) if callable(probe) and not isinstance(probe, Probe) else probe
        try:
            observed = observe(cfg, outputs, chosen)
        except UpgradeRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - the AWS/Kubernetes APIs: a dry run goes on from the outputs
            if not dry_run:
                raise
            unreachable = f"AWS/Kubernetes APIs not reachable ({_one_line(exc)}): planned from the outputs alone"
            chosen, observed = None, observe(cfg, outputs, None)
        plan = plan_upgrade(stack, cfg, observed, target, eks_compatibility(chosen.eks if chosen else None))
    except UpgradeRefused as exc:
        return UpgradeResult(stack, exit_codes.CONFIG_ERROR, str(exc))
    except Exception as exc:  # noqa: BLE001 - the backend or the cloud APIs: one line and its code, no traceback
        return UpgradeResult(stack, _api_failure_code(exc), f"stack '{stack}': {_one_line(exc)}")
    if unreachable:
        say(f"note: {unreachable}")
    if chosen is not None and chosen.kube_error:
        say(f"note: Kubernetes API not asked ({chosen.kube_error}): node versions from EKS only")
    for line in render_plan(plan):
        say(line)
    if dry_run:
        return UpgradeResult(stack, exit_codes.OK, "", plan)
    missing = engine.missing_policy_files(req)
    if missing:
        return UpgradeResult(stack, exit_codes.CONFIG_ERROR, missing, plan)
    if not plan.pending:
        say(f"stack '{stack}' is already at {target}: nothing to do")
        return UpgradeResult(stack, exit_codes.OK, "", plan)
    try:
        problems = health_problems(plan, None, chosen, {})
    except Exception as exc:  # noqa: BLE001 - an API that cannot be asked is not a healthy stack
        problems = [f"health not checked: {_one_line(exc)}"]
    if problems:
        return UpgradeResult(
            stack,
            exit_codes.CHECK_FAILED,
            f"not healthy before the upgrade, nothing changed: {'; '.join(problems)}",
            plan,
        )
    if workspace is None:
        workspace = opener(req)
    result = UpgradeResult(stack, exit_codes.OK, "", plan)
    for n, step in enumerate(plan.steps, 1):
        if step.done:
            say(f"step {n}/{len(plan.steps)} {step.id}: already done")
            continue
        say(f"step {n}/{len(plan.steps)} {step.id}: {step.title}")
        apply_step_config(workspace, step)
        outcome = engine.run_request(req, lambda _req: workspace, on_event=on_event(step) if on_event else None)
        result.runs.append(StepRun(step.id, outcome.code, outcome.message, dict(outcome.summary.changes)))
        if on_step_done is not None:
            on_step_done(step, outcome)
        if outcome.code != exit_codes.OK:
            result.code = outcome.code
            result.message = (
                f"step {step.id} failed: {outcome.message}; fix it and run the same `platformctl upgrade` "
                "again (it resumes at the first step not done)"
            )
            return result
        try:
            problems = health_problems(plan, step, chosen, plain_outputs(workspace.outputs()))
        except Exception as exc:  # noqa: BLE001 - stop: the next step must not run unchecked
            problems = [f"health not checked: {_one_line(exc)}"]
        if problems:
            result.code = exit_codes.CHECK_FAILED
            result.message = (
                f"stopped after step {step.id}: {'; '.join(problems)}; fix it and run the same "
                "`platformctl upgrade` again (it resumes at the first step not done)"
            )
            return result
        say(f"step {n}/{len(plan.steps)} {step.id}: healthy")
        if step.id == "data-plane":
            lagging = lagging_nodes(plan, chosen)
            if lagging:
                say(
                    f"  {len(lagging)} nodes still below {plan.target} (Karpenter replaces drifted nodes under "
                    f"the NodePools' disruption budgets): {', '.join(lagging[:10])}"
                )
    say(f"stack '{stack}' upgraded to EKS {target}")
    return result
