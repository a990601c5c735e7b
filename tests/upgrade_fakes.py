"""A deployed EKS stack for `platformctl upgrade` tests: the AWS side (`World`), a boto3-shaped EKS
client whose every response is validated against botocore's EKS model, and an Automation API stack
that keeps its config like `pulumi config set --path`, replays recorded engine events on `up` and then
deploys its config into the world (what the real engine and AWS would do)."""

from __future__ import annotations

import copy
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
from botocore.validate import ParamValidator
from pulumi import automation as auto
from pulumi.automation import events as ev

from components.core.pins import ADDON_NAMES, ADDON_VERSIONS
from programs.api.upgrade import path_parts
from tests import fast_yaml

DATA = Path(__file__).parent / "data"
EVENTS = json.loads((DATA / "upgrade" / "engine-events.json").read_text())
RECORDED_OUTPUTS = DATA / "upgrade" / "prod-outputs-1.35.json"
NODE_GROUP = "prod-eks-system-20261104091512345600000001"

_EKS_MODEL = botocore.session.get_session().get_service_model("eks")


def _validated(operation: str, response: dict[str, Any]) -> dict[str, Any]:
    shape = _EKS_MODEL.operation_model(operation).output_shape
    report = ParamValidator().validate(response, shape)
    assert not report.has_errors(), report.generate_report()
    return response


def recorded_events(name: str) -> list[ev.EngineEvent]:
    return [ev.EngineEvent.from_json(e) for e in EVENTS[name]]


@dataclass
class World:
    """What AWS and the cluster hold."""

    cluster_version: str = "1.35"
    cluster_status: str = "ACTIVE"
    addons: dict[str, dict[str, Any]] = field(default_factory=dict)
    node_group_version: str = "1.35"
    node_group_status: str = "ACTIVE"
    kubelets: list[str] = field(default_factory=lambda: ["v1.35.2-eks-0a1b2c3", "v1.35.2-eks-0a1b2c3"])

    def __post_init__(self) -> None:
        if not self.addons:
            self.addons = {a: {"version": v, "status": "ACTIVE"} for a, v in ADDON_VERSIONS["1.35"].items()}


class FakeEks:
    """`also_compatible`: (add-on, minor) -> builds listed for that minor beyond the recorded responses."""

    def __init__(self, world: World, also_compatible: dict[tuple[str, str], list[str]] | None = None):
        self.world = world
        self.also_compatible = also_compatible or {}
        self.calls: list[str] = []

    def describe_cluster(self, name: str):
        self.calls.append(f"DescribeCluster {name}")
        w = self.world
        return _validated(
            "DescribeCluster",
            {
                "cluster": {
                    "name": name,
                    "version": w.cluster_version,
                    "status": w.cluster_status,
                    "platformVersion": "eks.7",
                }
            },
        )

    def list_addons(self, clusterName: str):
        return _validated("ListAddons", {"addons": sorted(self.world.addons)})

    def describe_addon(self, clusterName: str, addonName: str):
        self.calls.append(f"DescribeAddon {addonName}")
        a = self.world.addons[addonName]
        health = {"issues": [{"code": c, "message": m, "resourceIds": []} for c, m in a.get("issues", [])]}
        return _validated(
            "DescribeAddon",
            {
                "addon": {
                    "addonName": addonName,
                    "clusterName": clusterName,
                    "status": a["status"],
                    "addonVersion": a["version"],
                    "health": health,
                }
            },
        )

    def list_nodegroups(self, clusterName: str):
        return _validated("ListNodegroups", {"nodegroups": [NODE_GROUP]})

    def describe_nodegroup(self, clusterName: str, nodegroupName: str):
        self.calls.append(f"DescribeNodegroup {nodegroupName}")
        w = self.world
        return _validated(
            "DescribeNodegroup",
            {
                "nodegroup": {
                    "nodegroupName": nodegroupName,
                    "clusterName": clusterName,
                    "version": w.node_group_version,
                    "status": w.node_group_status,
                    "updateConfig": {"maxUnavailable": 1},
                    "health": {"issues": []},
                }
            },
        )

    def describe_addon_versions(self, addonName: str, kubernetesVersion: str, nextToken: str | None = None):
        doc = json.loads((DATA / "pins" / "eks" / f"describe-addon-versions-{addonName}.json").read_text())
        for addon in doc["addons"]:
            for v in addon["addonVersions"]:
                if v["addonVersion"] in self.also_compatible.get((addonName, kubernetesVersion), []):
                    v["compatibilities"].append({"clusterVersion": kubernetesVersion, "platformVersions": ["*"]})
            addon["addonVersions"] = [
                v
                for v in addon["addonVersions"]
                if any(c["clusterVersion"] == kubernetesVersion for c in v["compatibilities"])
            ]
        return _validated("DescribeAddonVersions", doc)


def _set_path(obj: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        obj = obj.setdefault(part, {})
    obj[path[-1]] = value


def _remove_path(obj: dict[str, Any], path: list[str]) -> None:
    for part in path[:-1]:
        obj = obj[part]
    del obj[path[-1]]


class FakeStack:
    """`auto.Stack` for the upgrade: config with --path semantics, recorded events on `up`, then the
    config deployed into the world. `fail` maps a step (by the events name) to the CommandError raised."""

    def __init__(
        self,
        world: World,
        stack_file: Path,
        fail: dict[str, Exception] | None = None,
    ):
        self.world = world
        self.stack_file = stack_file
        self.config = fast_yaml.load(stack_file.read_text())["config"]
        self.fail = dict(fail or {})
        self.ups: list[dict[str, Any]] = []  # the cluster config each `up` deployed
        self.after_up: list[Any] = []  # callables(world, n) run after the n-th up (0-based)

    # config (pulumi config set/rm --path on the stack file)
    def get_config(self, key: str, path: bool = False):
        ns, _, name = key.partition(":")
        return auto.ConfigValue(value=json.dumps(self.config[f"{ns}:{name.split('.')[0]}"]))

    def set_config(self, key: str, value: auto.ConfigValue, path: bool = False):
        inspect.signature(auto.Stack.set_config).bind(None, key, value, path=path)
        ns, _, name = key.partition(":")
        top, *rest = path_parts(name)
        assert path and rest, "the upgrade sets leaves by path"
        _set_path(self.config[f"{ns}:{top}"], rest, value.value)
        self._save()

    def remove_config(self, key: str, path: bool = False):
        inspect.signature(auto.Stack.remove_config).bind(None, key, path=path)
        ns, _, name = key.partition(":")
        top, *rest = path_parts(name)
        _remove_path(self.config[f"{ns}:{top}"], rest)
        self._save()

    def _save(self) -> None:
        """What the CLI does: the stack file holds the config afterwards."""
        self.stack_file.write_text(fast_yaml.dump({"config": self.config}, sort_keys=False))

    def outputs(self):
        w = self.world
        values = {
            "clusterName": "prod-eks",
            "kubernetesVersion": w.cluster_version,
            "addonVersions": {a: s["version"] for a, s in w.addons.items()},
            "systemNodeGroup": {"name": NODE_GROUP, "kubernetesVersion": w.node_group_version},
        }
        return {k: auto.OutputValue(v, False) for k, v in values.items()}

    def _step_name(self, eks: dict[str, Any]) -> str:
        w = self.world
        version = eks["version"]
        if version != w.cluster_version:
            return "control-plane"
        if eks.get("systemNodeGroup", {}).get("version", version) != w.node_group_version:
            return "data-plane"
        if "kube-proxy" not in eks.get("addonVersions", {}):
            return "kube-proxy"
        return "addons"

    def up(self, on_event=None, **kwargs):
        inspect.signature(auto.Stack.up).bind(None, on_event=on_event, **kwargs)
        assert kwargs.get("policy_packs"), "every step runs with the policy pack"
        eks = self.config["k8s-platform:cluster"]["eks"]
        name = self._step_name(eks)
        self.ups.append(copy.deepcopy(eks))
        if name in self.fail:
            for event in recorded_events(f"{name}-failed"):
                on_event(event)
            raise self.fail.pop(name)
        for event in recorded_events(name):
            on_event(event)
        # What the deployment leaves in AWS: the program's versions for this config.
        w, version = self.world, eks["version"]
        w.cluster_version = version
        pins = {**ADDON_VERSIONS[version], **eks.get("addonVersions", {})}
        for addon in ADDON_NAMES:
            if addon in w.addons:
                w.addons[addon]["version"] = pins[addon]
        w.node_group_version = eks.get("systemNodeGroup", {}).get("version", version)
        if w.node_group_version == version:
            w.kubelets = [f"v{version}.1-eks-1f2e3d4" for _ in w.kubelets]
        for hook in self.after_up:
            hook(w, len(self.ups) - 1)
        return object()
