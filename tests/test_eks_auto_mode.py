"""EKS Auto Mode (`cluster.eks.computeMode: auto-mode`): the prod stack turned Auto Mode, run offline
through the real program and the real policy pack, and the config rules that keep self-managed
Karpenter keys out of it."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from components.config import ConfigError, parse_stack_config
from components.core import iam_documents as iam
from components.eks.access import AUTO_NODE_POLICY
from policy.offline_runner import check, config_path
from programs.offline import OfflineRun, reveal, run_offline
from programs.plan import resources_from_run
from tests import fast_yaml
from tests.conftest import shipped_config
from tests.karpenter_crd_validation import assert_valid
from tests.upstream_reference import upstream_file

CLUSTER = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"
RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:eks.amazonaws.com/v1:NodeClass"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"


def auto_mode_config(built_in_node_pools: list[str] | None = None) -> dict[str, Any]:
    """Pulumi.prod.yaml switched to Auto Mode, with the keys Auto Mode refuses taken out (what a user
    migrating the shipped stack writes)."""
    raw = copy.deepcopy(shipped_config("prod"))
    eks = raw["k8s-platform:cluster"]["eks"]
    eks["computeMode"] = "auto-mode"
    if built_in_node_pools is not None:
        eks["autoMode"] = {"builtInNodePools": built_in_node_pools}
    del eks["systemNodeGroup"]
    karpenter = raw["k8s-platform:karpenter"]
    del karpenter["replicas"]
    for node_class in karpenter["nodeClasses"]:
        del node_class["amiAlias"]
        node_class["name"] = "platform"
    for pool in karpenter["nodePools"]:
        pool["nodeClass"] = "platform"
        pool["expireAfter"] = "336h"
    return raw


_RUNS: dict[str, OfflineRun] = {}


def _run(key: str, raw: dict[str, Any]) -> OfflineRun:
    if key not in _RUNS:
        _RUNS[key] = run_offline("prod", raw)
    return _RUNS[key]


@pytest.fixture(scope="module")
def auto_run() -> OfflineRun:
    return _run("built-in", auto_mode_config())


@pytest.fixture(scope="module")
def custom_only_run() -> OfflineRun:
    return _run("custom-only", auto_mode_config(built_in_node_pools=[]))


def inputs(resource) -> dict[str, Any]:
    return reveal(resource.inputs)


# ---------------------------------------------------------------------------------- acceptance
def test_prod_on_auto_mode_previews_clean_without_the_self_managed_data_plane(auto_run):
    violations = check(resources_from_run(auto_run), config_path("prod"))
    assert [v for v in violations if v.level == "mandatory"] == []

    releases = {inputs(r)["name"] for r in auto_run.of_type(RELEASE)}
    assert "karpenter" not in releases and "karpenter-crd" not in releases
    assert "aws-load-balancer-controller" not in releases
    assert releases == {"metrics-server"}  # Auto Mode has no metrics-server: still the stack's
    addons = {inputs(r)["addonName"] for r in auto_run.of_type(ADDON)}
    assert addons.isdisjoint({"vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver", "eks-pod-identity-agent"})
    assert auto_run.of_type("aws:eks/nodeGroup:NodeGroup") == []
    assert auto_run.of_type("aws:sqs/queue:Queue") == []  # no Karpenter interruption queue
    assert auto_run.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass") == []

    cluster = inputs(auto_run.one(CLUSTER))
    assert cluster["computeConfig"]["enabled"] is True
    assert cluster["storageConfig"]["blockStorage"]["enabled"] is True
    assert cluster["kubernetesNetworkConfig"]["elasticLoadBalancing"]["enabled"] is True
    assert cluster["bootstrapSelfManagedAddons"] is False
    assert auto_run.outputs["computeMode"] == "auto-mode"


def test_the_shipped_prod_plan_stays_self_managed(prod_run):
    cluster = inputs(prod_run.one(CLUSTER))
    assert "computeConfig" not in cluster and "storageConfig" not in cluster
    assert "elasticLoadBalancing" not in cluster["kubernetesNetworkConfig"]
    assert {inputs(r)["name"] for r in prod_run.of_type(RELEASE)} >= {"karpenter", "aws-load-balancer-controller"}
    assert prod_run.of_type(NODE_CLASS) == []


# ----------------------------------------------------------------------------------------- IAM
def _attached(run: OfflineRun, role_name: str) -> set[str]:
    assert [r for r in run.of_type(ROLE) if inputs(r).get("name") == role_name]
    # Attachments name their role by the role's `name` (a mock output equal to the input).
    return {inputs(a)["policyArn"] for a in run.of_type(ATTACHMENT) if inputs(a)["role"] == role_name}


def test_the_cluster_role_carries_the_auto_mode_policies_and_may_tag_sessions(auto_run):
    (role,) = [r for r in auto_run.of_type(ROLE) if inputs(r).get("name") == "prod-eks-eks-cluster"]
    trust = json.loads(inputs(role)["assumeRolePolicy"])["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    ]
    assert _attached(auto_run, "prod-eks-eks-cluster") == {
        "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
        "arn:aws:iam::aws:policy/AmazonEKSComputePolicy",
        "arn:aws:iam::aws:policy/AmazonEKSBlockStoragePolicy",
        "arn:aws:iam::aws:policy/AmazonEKSLoadBalancingPolicy",
        "arn:aws:iam::aws:policy/AmazonEKSNetworkingPolicy",
    }
    # The cluster waits for them: EKS checks the role's permissions when it enables Auto Mode.
    cluster = auto_run.one(CLUSTER)
    attachments = [a.urn for a in auto_run.of_type(ATTACHMENT) if inputs(a)["role"] == "prod-eks-eks-cluster"]
    assert set(attachments) <= set(cluster.dependencies)


def test_the_node_role_is_its_own_with_the_minimal_node_policies(auto_run):
    (role,) = [r for r in auto_run.of_type(ROLE) if inputs(r).get("name") == "prod-eks-eks-auto-node"]
    trust = json.loads(inputs(role)["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "ec2.amazonaws.com"}]
    assert _attached(auto_run, "prod-eks-eks-auto-node") == {
        iam.EKS_WORKER_NODE_MINIMAL_POLICY_ARN,
        iam.ECR_PULL_ONLY_POLICY_ARN,
    }
    compute = inputs(auto_run.one(CLUSTER))["computeConfig"]
    assert sorted(compute["nodePools"]) == ["general-purpose", "system"]
    assert compute["nodeRoleArn"].endswith(":role/prod-eks-eks-auto-node")
    # Built-in pools: EKS creates the node role's access entry itself; a second one would be refused.
    entries = [inputs(e) for e in auto_run.of_type(ACCESS_ENTRY)]
    assert [e for e in entries if e["type"] != "STANDARD"] == []
    assert auto_run.outputs["autoModeNodeRoleArn"] == compute["nodeRoleArn"]


def test_without_built_in_pools_the_stack_grants_the_node_role_an_ec2_entry(custom_only_run):
    compute = inputs(custom_only_run.one(CLUSTER))["computeConfig"]
    assert compute["enabled"] is True and compute.get("nodePools") in (None, [])
    assert "nodeRoleArn" not in compute  # EKS refuses a node role without built-in pools
    (entry,) = [e for e in custom_only_run.of_type(ACCESS_ENTRY) if inputs(e)["type"] == "EC2"]
    assert inputs(entry)["principalArn"].endswith(":role/prod-eks-eks-auto-node")
    (association,) = [a for a in custom_only_run.of_type(ASSOCIATION) if inputs(a)["policyArn"] == AUTO_NODE_POLICY]
    assert association.inputs["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAutoNodePolicy"
    assert inputs(association)["accessScope"] == {"type": "cluster"}
    assert inputs(association)["principalArn"] == inputs(entry)["principalArn"]
    # The NodeClasses wait for the grant: nodes launched earlier could not join.
    for node_class in custom_only_run.of_type(NODE_CLASS):
        assert {entry.urn, association.urn} <= set(node_class.dependencies)
    violations = check(resources_from_run(custom_only_run), config_path("prod"))
    assert [v for v in violations if v.level == "mandatory"] == []


# ------------------------------------------------------------------------ NodeClass, NodePools
def _reference() -> dict[str, Any]:
    return fast_yaml.load(upstream_file("nodeclass-eks-auto-mode-fields.yaml").read_text())


_RANGE = re.compile(r"(\d+)-(\d+)")


def _value_problems(where: str, field: dict[str, Any], value: Any) -> list[str]:
    kind = str(field["type"])
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: {value!r} is not a string"]
        if "enum" in field and value not in field["enum"]:
            return [f"{where}: {value!r} not in {field['enum']}"]
        if "maxLength" in field and len(value) > field["maxLength"]:
            return [f"{where}: longer than {field['maxLength']}"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: {value!r} is not a boolean"]
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{where}: {value!r} is not an integer"]
        low, high = map(int, _RANGE.fullmatch(field["range"]).groups()) if "range" in field else (value, value)
        return [] if low <= value <= high else [f"{where}: {value} outside {field['range']}"]
    if kind == "quantity string":
        m = re.fullmatch(r"(\d+)(Gi|G|Ti|T)", str(value))
        if not m:
            return [f"{where}: {value!r} is not a size like 80Gi"]
        bounds = {unit: int(high) for low, high, unit in re.findall(r"(\d+)-(\d+)(Gi|G|Ti|T)", field["range"])}
        return [] if 1 <= int(m.group(1)) <= bounds[m.group(2)] else [f"{where}: {value} outside {field['range']}"]
    if kind == "map[string]string":
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return [f"{where}: not a map of strings"]
        return []
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        found = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                found.append(f"{where}[{i}]: not a mapping")
                continue
            for key, sub in item.items():
                if key not in field["items"]:
                    found.append(f"{where}[{i}].{key}: not a documented field ({', '.join(field['items'])})")
                else:
                    found += _value_problems(f"{where}[{i}].{key}", {"type": field["items"][key]}, sub)
        return found
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: not a mapping"]
        found = []
        for key, sub in value.items():
            if key not in field["fields"]:
                found.append(f"{where}.{key}: not a documented field ({', '.join(field['fields'])})")
            else:
                found += _value_problems(f"{where}.{key}", field["fields"][key], sub)
        return found
    return [f"{where}: the reference type {kind!r} is not handled by this test"]


def nodeclass_problems(reference: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """What AWS's documented NodeClass fields say about a manifest: unknown fields, types, enums, ranges,
    required fields and the documented pairings."""
    problems = []
    if (manifest["apiVersion"], manifest["kind"]) != (reference["apiVersion"], reference["kind"]):
        problems.append(f"{manifest['apiVersion']}/{manifest['kind']} is not {reference['apiVersion']}")
    if manifest["metadata"]["name"] == reference["builtInName"]:
        problems.append(f"metadata.name {reference['builtInName']!r} is the built-in NodeClass")
    spec, fields = manifest["spec"], reference["spec"]
    for key, value in spec.items():
        if key not in fields:
            problems.append(f"spec.{key}: not a documented NodeClass field")
        else:
            problems += _value_problems(f"spec.{key}", fields[key], value)
    for key, field in fields.items():
        if field.get("required") is True and key not in spec:
            problems.append(f"spec.{key}: required")
    if ("role" in spec) == ("instanceProfile" in spec):
        problems.append("spec: exactly one of role and instanceProfile")
    if ("podSubnetSelectorTerms" in spec) != ("podSecurityGroupSelectorTerms" in spec):
        problems.append("spec: podSubnetSelectorTerms and podSecurityGroupSelectorTerms go together")
    return problems


def _manifest(resource) -> dict[str, Any]:
    values = inputs(resource)
    return {k: values[k] for k in ("apiVersion", "kind", "metadata", "spec")}


def test_the_checker_catches_what_aws_would_refuse():
    reference = _reference()
    bad = {
        "apiVersion": "eks.amazonaws.com/v1",
        "kind": "NodeClass",
        "metadata": {"name": "default"},
        "spec": {
            "role": "r",
            "instanceProfile": "p",
            "subnetSelectorTerms": [{"name": "x"}],
            "ephemeralStorage": {"size": "60000Gi", "iops": 100},
            "snatPolicy": "Sometimes",
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "podSubnetSelectorTerms": [{"id": "subnet-1"}],
        },
    }
    problems = nodeclass_problems(reference, bad)
    for expected in (
        "built-in NodeClass",
        "spec.subnetSelectorTerms[0].name",
        "spec.ephemeralStorage.size",
        "spec.ephemeralStorage.iops",
        "spec.snatPolicy",
        "spec.amiSelectorTerms: not a documented",
        "spec.securityGroupSelectorTerms: required",
        "exactly one of role",
        "go together",
    ):
        assert any(expected in p for p in problems), (expected, problems)


def test_every_node_class_uses_only_the_documented_fields(auto_run):
    reference = _reference()
    node_classes = auto_run.of_type(NODE_CLASS)
    assert [inputs(nc)["metadata"]["name"] for nc in node_classes] == ["platform"]
    for node_class in node_classes:
        manifest = _manifest(node_class)
        assert nodeclass_problems(reference, manifest) == []
        spec = manifest["spec"]
        assert spec["role"] == "prod-eks-eks-auto-node"  # the node role's name, as the field takes
        assert spec["ephemeralStorage"]["size"] == "100Gi"  # volumeSizeGiB of the class
        assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "prod-eks"}}]
        assert spec["podSubnetSelectorTerms"] == [{"tags": {"tier": "pod", "kubernetes.io/cluster/prod-eks": "shared"}}]
        assert spec["advancedNetworking"] == {"associatePublicIPAddress": False}


def test_the_selectors_match_the_subnets_and_group_the_stack_creates(auto_run):
    (node_class,) = auto_run.of_type(NODE_CLASS)
    spec = inputs(node_class)["spec"]

    def matching(typ: str, term: dict[str, Any]) -> list[str]:
        return [
            r.name
            for r in auto_run.of_type(typ)
            if all((inputs(r).get("tags") or {}).get(k) == v for k, v in term["tags"].items())
        ]

    subnets = matching("aws:ec2/subnet:Subnet", spec["subnetSelectorTerms"][0])
    pod_subnets = matching("aws:ec2/subnet:Subnet", spec["podSubnetSelectorTerms"][0])
    groups = matching("aws:ec2/securityGroup:SecurityGroup", spec["securityGroupSelectorTerms"][0])
    assert sorted(subnets) == sorted(r.name for r in auto_run.of_type("aws:ec2/subnet:Subnet") if "private" in r.name)
    assert len(subnets) == 3 and len(pod_subnets) == 3 and all("pod" in s for s in pod_subnets)
    assert groups == ["eks-node-sg"]


def test_customer_volume_key_encrypts_node_storage_and_the_cluster_role_may_use_it():
    raw = auto_mode_config()
    key = "arn:aws:kms:us-east-1:222222222222:key/0b3c8f0e-1234-4abc-8def-0123456789ab"
    raw["k8s-platform:addons"] = {"ebsCsi": {"kmsKeyArn": key}}
    run = _run("volume-key", raw)
    (node_class,) = run.of_type(NODE_CLASS)
    assert inputs(node_class)["spec"]["ephemeralStorage"]["kmsKeyID"] == key
    (storage_class,) = run.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    assert inputs(storage_class)["parameters"]["kmsKeyId"] == key
    (policy,) = [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "eks-cluster-volume-kms"]
    statements = json.loads(inputs(policy)["policy"])["Statement"]
    assert {s["Resource"] for s in statements} == {key}
    assert nodeclass_problems(_reference(), _manifest(node_class)) == []


def test_node_pools_reference_the_auto_mode_node_class_and_validate_against_the_crd(auto_run):
    reference = _reference()
    pools = auto_run.of_type(NODE_POOL)
    assert sorted(inputs(p)["metadata"]["name"] for p in pools) == ["general", "stateful"]
    node_classes = {inputs(nc)["metadata"]["name"]: nc for nc in auto_run.of_type(NODE_CLASS)}
    for pool in pools:
        manifest = _manifest(pool)
        assert_valid(manifest)
        ref = manifest["spec"]["template"]["spec"]["nodeClassRef"]
        assert {"group": ref["group"], "kind": ref["kind"]} == reference["nodePoolRef"]
        assert ref["name"] in node_classes
        keys = [r["key"] for r in manifest["spec"]["template"]["spec"]["requirements"]]
        assert not [k for k in keys if k.startswith("karpenter.k8s.aws/") or k == "kubernetes.io/os"], keys
        assert "eks.amazonaws.com/instance-category" in keys


def test_node_pools_and_classes_are_deleted_before_the_cluster(auto_run):
    """Pulumi deletes dependents first: a NodePool (its nodes drained by Auto Mode) and its NodeClass go
    before the cluster, so no Auto Mode instance outlives it."""
    cluster = auto_run.one(CLUSTER)
    node_classes = {inputs(nc)["metadata"]["name"]: nc for nc in auto_run.of_type(NODE_CLASS)}
    for node_class in node_classes.values():
        assert cluster.urn in node_class.dependencies
    for pool in auto_run.of_type(NODE_POOL):
        node_class = node_classes[inputs(pool)["spec"]["template"]["spec"]["nodeClassRef"]["name"]]
        assert {cluster.urn, node_class.urn} <= set(pool.dependencies)


# ------------------------------------------------------------------------- load balancing, storage
def test_auto_modes_ingress_class_and_storage_class_replace_the_self_managed_ones(auto_run):
    (ingress_class,) = auto_run.of_type("kubernetes:networking.k8s.io/v1:IngressClass")
    spec = inputs(ingress_class)["spec"]
    assert spec["controller"] == "eks.amazonaws.com/alb"
    assert spec["parameters"] == {"apiGroup": "eks.amazonaws.com", "kind": "IngressClassParams", "name": "alb-shared"}
    (params,) = auto_run.of_type("kubernetes:eks.amazonaws.com/v1:IngressClassParams")
    assert inputs(params)["metadata"]["name"] == "alb-shared"
    assert inputs(params)["spec"] == {"group": {"name": "shared"}, "scheme": "internal", "ipAddressType": "ipv4"}
    assert auto_run.of_type("kubernetes:elbv2.k8s.aws/v1beta1:IngressClassParams") == []
    (storage_class,) = auto_run.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    values = inputs(storage_class)
    assert values["provisioner"] == "ebs.csi.eks.amazonaws.com"
    assert values["parameters"]["encrypted"] == "true" and values["volumeBindingMode"] == "WaitForFirstConsumer"


def test_the_platforms_controllers_run_on_the_built_in_system_pool(auto_run):
    (release,) = [r for r in auto_run.of_type(RELEASE) if inputs(r)["name"] == "metrics-server"]
    values = inputs(release)["values"]
    assert values["nodeSelector"] == {"karpenter.sh/nodepool": "system"}
    assert values["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]


# ------------------------------------------------------------------------------------- config
def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    return err.value.problems


def test_self_managed_keys_are_refused_under_auto_mode_all_at_once():
    raw = copy.deepcopy(shipped_config("prod"))
    raw["k8s-platform:cluster"]["eks"]["computeMode"] = "auto-mode"
    raw["k8s-platform:cluster"]["eks"]["addonVersions"] = {"coredns": "v1.13.2-eksbuild.1"}
    raw["k8s-platform:karpenter"]["nodeClasses"][0]["maxPods"] = 58
    raw["k8s-platform:addons"] = {"awsLoadBalancerController": {"targetType": "ip", "wafIntegration": True}}
    problems = _problems(raw)
    expected = {
        "k8s-platform:cluster.eks.systemNodeGroup": "runs no managed node group",
        "k8s-platform:cluster.eks.addonVersions": "coredns",
        "k8s-platform:karpenter.replicas": "no Karpenter controller",
        "k8s-platform:karpenter.nodeClasses[0].name": "built-in NodeClass",
        "k8s-platform:karpenter.nodeClasses[0].amiAlias": "picks and patches the node AMI",
        "k8s-platform:karpenter.nodeClasses[0].maxPods": "sets the kubelet's maxPods",
        "k8s-platform:karpenter.nodePools[0].expireAfter": "21 days",
        "k8s-platform:karpenter.nodePools[1].expireAfter": "21 days",
        "k8s-platform:addons.awsLoadBalancerController.targetType": "self-managed controller",
        "k8s-platform:addons.awsLoadBalancerController.wafIntegration": "no such controller",
    }
    for key, words in expected.items():
        assert any(p.startswith(f"{key}: ") and words in p for p in problems), (key, problems)
    assert len(problems) == len(expected), problems


def test_the_migrated_config_is_valid_and_needs_no_pinned_ami():
    cfg = parse_stack_config(auto_mode_config())
    assert cfg.cluster.eks.compute_mode == "auto-mode"
    assert cfg.cluster.eks.auto_mode.built_in_node_pools == ["general-purpose", "system"]


def test_auto_mode_is_eks_only():
    raw = copy.deepcopy(shipped_config("dev"))
    raw["k8s-platform:cluster"]["eks"] = {"computeMode": "auto-mode"}
    problems = _problems(raw)
    assert any(p.startswith("k8s-platform:cluster.eks: applies to kind eks") for p in problems), problems


def test_auto_mode_block_needs_auto_mode():
    raw = copy.deepcopy(shipped_config("prod"))
    raw["k8s-platform:cluster"]["eks"]["autoMode"] = {"builtInNodePools": ["system"]}
    assert _problems(raw) == [
        "k8s-platform:cluster.eks.autoMode: applies to computeMode: auto-mode; this cluster runs self-managed "
        "Karpenter (set computeMode: auto-mode, or remove the block)"
    ]


@pytest.mark.parametrize(
    "edit,key,words",
    [
        (lambda eks, k: eks.update(computeMode="fargate"), "cluster.eks.computeMode", "'karpenter' or 'auto-mode'"),
        (
            lambda eks, k: eks.update(autoMode={"builtInNodePools": ["gpu"]}),
            "cluster.eks.autoMode.builtInNodePools",
            "'general-purpose'",
        ),
        (
            lambda eks, k: eks.update(autoMode={"builtInNodePools": ["system", "system"]}),
            "cluster.eks.autoMode.builtInNodePools",
            "distinct",
        ),
        (
            lambda eks, k: (eks.update(autoMode={"builtInNodePools": []}), k.update(enabled=False)),
            "cluster.eks.autoMode.builtInNodePools",
            "would launch no node",
        ),
    ],
    ids=["unknown-mode", "unknown-pool", "duplicate-pool", "nothing-to-run-on"],
)
def test_auto_mode_values_are_validated(edit, key, words):
    raw = auto_mode_config()
    edit(raw["k8s-platform:cluster"]["eks"], raw["k8s-platform:karpenter"])
    problems = _problems(raw)
    assert any(p.startswith(f"k8s-platform:{key}") and words in p for p in problems), problems


# -------------------------------------------------------------------------------------- day two
def test_doctor_does_not_expect_managed_add_ons_on_auto_mode():
    from programs.platformctl.doctor.addons import addon_health
    from programs.platformctl.doctor.karpenter import _narrow

    class AutoModeStack:
        config = parse_stack_config(auto_mode_config())

        def aws(self, service: str):
            raise AssertionError(f"no {service} call: Auto Mode has no managed add-on to inspect")

    result = addon_health(AutoModeStack())
    assert result.verdict == "skipped" and "Auto Mode" in result.detail
    # The NodePool shape check reads Auto Mode's instance labels too.
    narrow = [{"key": "eks.amazonaws.com/instance-family", "operator": "In", "values": ["m7i"]}]
    assert _narrow(narrow) == "eks.amazonaws.com/instance-family In [m7i]"


# ------------------------------------------------------------------------------ minimal Auto Mode
def minimal_auto_mode_config() -> dict[str, Any]:
    """Auto Mode with no `karpenter` section: the default pool, on Auto Mode's built-in NodeClass."""
    raw = auto_mode_config()
    del raw["k8s-platform:karpenter"]
    return raw


def test_without_node_classes_the_default_pool_uses_the_built_in_node_class():
    run = _run("minimal", minimal_auto_mode_config())
    assert run.of_type(NODE_CLASS) == []
    (pool,) = run.of_type(NODE_POOL)
    spec = inputs(pool)["spec"]["template"]["spec"]
    assert spec["nodeClassRef"] == {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default"}
    assert spec["expireAfter"] == "336h"  # AWS's Auto Mode default, not Karpenter's 720h
    assert run.one(CLUSTER).urn in pool.dependencies
    violations = check(resources_from_run(run), config_path("prod"))
    assert [v for v in violations if v.level == "mandatory"] == []


def test_the_built_in_node_class_needs_built_in_pools():
    raw = minimal_auto_mode_config()
    raw["k8s-platform:cluster"]["eks"]["autoMode"] = {"builtInNodePools": []}
    problems = _problems(raw)
    assert problems == [
        "k8s-platform:karpenter.nodePools[0].nodeClass: 'default' is Auto Mode's built-in NodeClass, which EKS "
        "provisions only with built-in pools (autoMode.builtInNodePools is []); define karpenter.nodeClasses and "
        "point the pool at one"
    ]


def test_nodes_of_the_stacks_classes_reach_built_in_pool_nodes(auto_run):
    """Built-in pools' nodes carry the cluster security group, the stack's NodeClasses the node group:
    traffic must pass both ways, not just the API port."""
    rules = {r.name: inputs(r) for r in auto_run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")}
    to_cluster, to_nodes = rules["eks-cluster-from-node"], rules["eks-node-from-control-plane"]
    assert to_cluster["ipProtocol"] == to_nodes["ipProtocol"] == "-1"
    assert to_cluster["securityGroupId"] == to_nodes["referencedSecurityGroupId"]  # the cluster group
    assert to_cluster["referencedSecurityGroupId"] == to_nodes["securityGroupId"]  # the node group


def test_security_groups_for_pods_are_refused_under_auto_mode():
    """Auto Mode nodes carry no trunk ENI, so a SecurityGroupPolicy would never apply (merged with issue 16's
    security groups for pods: each works alone, not together)."""
    raw = auto_mode_config()
    raw["k8s-platform:cluster"]["eks"]["securityGroupPolicies"] = [
        {"name": "db", "namespace": "shop", "podSelector": {"app": "db"}, "securityGroupIds": ["sg-0123456789abcdef0"]}
    ]
    problems = _problems(raw)
    assert any(
        p.startswith("k8s-platform:cluster.eks.securityGroupPolicies: EKS Auto Mode does not support") for p in problems
    ), problems
