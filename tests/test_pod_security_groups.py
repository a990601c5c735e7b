"""Security groups for pods (EKS): the trunk-ENI data against the VPC resource controller's table, the
SecurityGroupPolicy objects against the upstream CRD, and a prod variant with a policy and a trunk-only
NodePool that previews clean: what users rely on (the CNI setting, the cluster role's policy, the
groups the pods get, the pool's instance types).
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from components.config import ConfigError, parse_stack_config
from components.config.data_plane_rules import trunk_eni_instance_types
from components.config.karpenter_rules import pool_shape
from components.core.iam_documents import EKS_VPC_RESOURCE_CONTROLLER_POLICY_ARN
from components.core.pool_capacity import admitted_instance_types
from components.core.trunk_eni import _DATA_FILE, TRUNK_ENI_INSTANCE_TYPES
from components.eks.pod_security_groups import security_group_policy_manifest
from components.karpenter.specs import INSTANCE_TYPE, node_pool_from_config
from programs.offline import reveal, run_offline
from programs.plan import build_plan
from programs.platformctl.policy_gate import apply_policies
from tests import fast_yaml
from tests.conftest import mutated_config, shipped_config
from tests.karpenter_crd_validation import assert_valid, unknown_fields
from tests.upstream_reference import upstream_file

ADDON = "aws:eks/addon:Addon"
SGP = "kubernetes:vpcresources.k8s.aws/v1beta1:SecurityGroupPolicy"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
DB_GROUP = "sg-0fedcba9876543210"
SHARED_GROUP = "sg-0123456789abcdef0"

POLICIES = [
    {
        "name": "orders-db",
        "namespace": "orders",
        "serviceAccountSelector": {"app.kubernetes.io/name": "orders-api"},
        "securityGroupIds": [SHARED_GROUP],
        "securityGroup": {
            "ingress": [{"protocol": "tcp", "fromPort": 8080, "cidr": "10.30.0.0/16", "description": "from the VPC"}],
            "egress": [{"protocol": "tcp", "fromPort": 5432, "securityGroupId": DB_GROUP}],
        },
    },
    {"name": "reports", "namespace": "reports", "podSelector": {"app": "reports"}, "securityGroupIds": [DB_GROUP]},
]


def sgp_config() -> dict:
    raw = mutated_config("prod", "cluster.eks.securityGroupPolicies", POLICIES)
    raw["k8s-platform:karpenter"]["nodePools"][1]["securityGroupsForPods"] = True  # the `stateful` pool
    return raw


@pytest.fixture(scope="module")
def sgp_run():
    return run_offline("prod", sgp_config())


def by_name(run, typ, name):
    [found] = [r for r in run.of_type(typ) if r.name == name]
    return found


def vpc_cni_configuration(run) -> dict:
    [cni] = [a for a in run.of_type(ADDON) if a.inputs["addonName"] == "vpc-cni"]
    return json.loads(cni.inputs["configurationValues"])


# ------------------------------------------------------------------------------- the trunk data
def reference_trunk_types() -> set[str]:
    lines = upstream_file("trunk-eni-capable-instance-types.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_trunk_table_is_exactly_the_controllers_trunking_compatible_types():
    reference = reference_trunk_types()
    assert len(reference) == 1060  # the count the reference file's header states
    assert TRUNK_ENI_INSTANCE_TYPES == reference
    # Types the controller's table leaves out are not trunk types (t3 has no trunk support at all).
    assert "m5.large" in TRUNK_ENI_INSTANCE_TYPES and "t3.medium" not in TRUNK_ENI_INSTANCE_TYPES


def test_the_generator_reproduces_the_table(tmp_path):
    from scripts.generate_trunk_eni_instance_types import main

    out = tmp_path / "trunk.json"
    assert main(["--source", str(upstream_file("trunk-eni-capable-instance-types.txt")), "--output", str(out)]) == 0
    assert out.read_text() == _DATA_FILE.read_text()
    source = json.loads(out.read_text())["_source"]
    assert "amazon-vpc-resource-controller-k8s" in source["data"] and "v1.7.19" in source["reference"]


# ------------------------------------------------------------------------- the objects vs the CRD
def sgp_schema() -> dict:
    doc = fast_yaml.load(upstream_file("crd-securitygrouppolicy-v1.7.19.yaml").read_text())
    assert doc["spec"]["group"] == "vpcresources.k8s.aws" and doc["spec"]["names"]["kind"] == "SecurityGroupPolicy"
    (version,) = [v for v in doc["spec"]["versions"] if v["name"] == "v1beta1" and v["served"]]
    return version["schema"]["openAPIV3Schema"]


def sgp_errors(obj: dict) -> list[str]:
    schema = sgp_schema()
    errors = [
        f"{'.'.join(map(str, e.absolute_path)) or '.'}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(obj)
    ]
    return errors + [f"{p}: unknown field (pruned)" for p in unknown_fields(schema, obj)]


def test_every_planned_security_group_policy_is_valid_against_the_crd(sgp_run):
    policies = sgp_run.of_type(SGP)
    assert len(policies) == 2
    for resource in policies:
        obj = reveal(resource.inputs)
        assert sgp_errors(obj) == [], obj
        assert obj["apiVersion"] == "vpcresources.k8s.aws/v1beta1" and obj["kind"] == "SecurityGroupPolicy"


def test_the_crd_check_catches_a_misspelt_field_and_an_empty_group_list():
    cfg = parse_stack_config(sgp_config())
    obj = security_group_policy_manifest(cfg.cluster.eks.security_group_policies[1], [DB_GROUP])
    assert sgp_errors(obj) == []
    obj["spec"]["podSelectors"] = obj["spec"].pop("podSelector")
    obj["spec"]["securityGroups"]["groupIds"] = []
    errors = sgp_errors(obj)
    assert any("groupIds" in e for e in errors) and any("podSelectors" in e for e in errors)


# ---------------------------------------------------------------------------- the prod variant
def test_variant_previews_with_no_mandatory_violation(sgp_run):
    plan = apply_policies(build_plan(sgp_run), sgp_run, "prod")
    mandatory = [v for v in plan["policy"]["violations"] if v["level"] == "mandatory"]
    assert mandatory == [], mandatory


def test_pod_eni_is_on_only_when_a_policy_is_configured(sgp_run, prod_run):
    env = vpc_cni_configuration(sgp_run)["env"]
    assert env["ENABLE_POD_ENI"] == "true" and env["POD_SECURITY_GROUP_ENFORCING_MODE"] == "strict"
    assert vpc_cni_configuration(sgp_run)["init"]["env"]["DISABLE_TCP_EARLY_DEMUX"] == "true"
    # Custom networking and prefix delegation stay on.
    assert env["AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"] == "true" and env["ENABLE_PREFIX_DELEGATION"] == "true"
    shipped = vpc_cni_configuration(prod_run)
    assert "ENABLE_POD_ENI" not in shipped["env"] and "init" not in shipped


def test_cluster_role_gets_the_vpc_resource_controller_policy_only_with_policies(sgp_run, prod_run):
    def attached(run):
        return [a for a in run.of_type(ATTACHMENT) if a.inputs["policyArn"] == EKS_VPC_RESOURCE_CONTROLLER_POLICY_ARN]

    [attachment] = attached(sgp_run)
    assert attachment.inputs["role"] == "prod-eks-eks-cluster"
    cluster = sgp_run.one("aws:eks/cluster:Cluster")
    assert attachment.urn in cluster.dependencies  # attached before the control plane starts its controller
    assert attached(prod_run) == []


def test_pods_get_the_existing_groups_and_the_created_one(sgp_run):
    created = by_name(sgp_run, SG, "pod-security-groups-orders-orders-db")
    orders = reveal(by_name(sgp_run, SGP, "pod-security-groups-orders-orders-db").inputs)
    assert orders["metadata"] == {
        "name": "orders-db",
        "namespace": "orders",
        "labels": {"app.kubernetes.io/managed-by": "pulumi"},
    }
    assert orders["spec"]["serviceAccountSelector"] == {"matchLabels": {"app.kubernetes.io/name": "orders-api"}}
    assert "podSelector" not in orders["spec"]  # absent, not empty: an empty selector would match every pod
    group_ids = orders["spec"]["securityGroups"]["groupIds"]
    assert group_ids[0] == SHARED_GROUP and len(group_ids) == 2
    assert sgp_run.outputs["securityGroupPolicies"]["orders/orders-db"] == group_ids
    assert created.urn in by_name(sgp_run, SGP, "pod-security-groups-orders-orders-db").dependencies
    reports = reveal(by_name(sgp_run, SGP, "pod-security-groups-reports-reports").inputs)
    assert reports["spec"]["securityGroups"]["groupIds"] == [DB_GROUP]
    assert reports["spec"]["podSelector"] == {"matchLabels": {"app": "reports"}}


def test_created_group_admits_probes_and_reaches_dns_on_the_nodes(sgp_run):
    group = by_name(sgp_run, SG, "pod-security-groups-orders-orders-db")
    nodes = sgp_run.one(SG, "eks-node-sg")
    rules = [r for r in sgp_run.of_type(INGRESS) + sgp_run.of_type(EGRESS) if r.name.startswith(group.name + "-")]

    def on(rule, sg):
        return sg.urn in rule.property_dependencies.get("securityGroupId", [])

    def to(rule, sg):
        return sg.urn in rule.property_dependencies.get("referencedSecurityGroupId", [])

    probes = [r for r in rules if r.type == INGRESS and on(r, group) and to(r, nodes)]
    assert [(r.inputs["ipProtocol"], r.inputs["fromPort"], r.inputs["toPort"]) for r in probes] == [("tcp", 0, 65535)]
    dns_out = {
        r.inputs["ipProtocol"] for r in rules if r.type == EGRESS and to(r, nodes) and r.inputs["fromPort"] == 53
    }
    dns_in = {r.inputs["ipProtocol"] for r in rules if r.type == INGRESS and on(r, nodes) and to(r, group)}
    assert dns_out == dns_in == {"tcp", "udp"}
    # The user's rules, as configured; nothing open to the world.
    app = by_name(sgp_run, INGRESS, "pod-security-groups-orders-orders-db-ingress-0").inputs
    assert (app["cidrIpv4"], app["fromPort"], app["toPort"], app["description"]) == (
        "10.30.0.0/16",
        8080,
        8080,
        "from the VPC",
    )
    db = by_name(sgp_run, EGRESS, "pod-security-groups-orders-orders-db-egress-0").inputs
    assert (db["referencedSecurityGroupId"], db["fromPort"], db["toPort"]) == (DB_GROUP, 5432, 5432)
    assert not any(r.inputs.get("cidrIpv4") == "0.0.0.0/0" for r in rules)


def test_policies_wait_for_their_namespace(sgp_run):
    # `orders` is a workload namespace (created by the workload identities), `reports` is not: created here.
    orders = by_name(sgp_run, SGP, "pod-security-groups-orders-orders-db")
    assert sgp_run.one("kubernetes:core/v1:Namespace", "wl-namespace-orders").urn in orders.dependencies
    namespace = sgp_run.one("kubernetes:core/v1:Namespace", "pod-security-groups-namespace-reports")
    assert namespace.urn in by_name(sgp_run, SGP, "pod-security-groups-reports-reports").dependencies
    # One Namespace object per namespace: the workload identities own `orders`.
    owners = [
        n.name for n in sgp_run.of_type("kubernetes:core/v1:Namespace") if n.inputs["metadata"]["name"] == "orders"
    ]
    assert owners == ["wl-namespace-orders"]


def test_trunk_pool_launches_only_trunk_types_and_is_valid_against_the_nodepool_crd(sgp_run):
    stateful = reveal(by_name(sgp_run, NODEPOOL, "karpenter-nodepool-stateful").inputs)
    assert_valid(stateful)
    [requirement] = [r for r in stateful["spec"]["template"]["spec"]["requirements"] if r["key"] == INSTANCE_TYPE]
    assert requirement["operator"] == "In"
    cfg = parse_stack_config(sgp_config())
    pool = cfg.karpenter.node_pools[1]
    admitted = {r.instance_type for r in admitted_instance_types(pool_shape(pool))}
    assert set(requirement["values"]) == admitted & TRUNK_ENI_INSTANCE_TYPES
    assert admitted - TRUNK_ENI_INSTANCE_TYPES  # the restriction removes types the pool would otherwise launch
    # The general pool is not restricted.
    general = reveal(by_name(sgp_run, NODEPOOL, "karpenter-nodepool-general").inputs)
    assert INSTANCE_TYPE not in [r["key"] for r in general["spec"]["template"]["spec"]["requirements"]]


def test_node_pool_spec_restriction_is_the_pure_rule():
    cfg = parse_stack_config(sgp_config())
    pool = cfg.karpenter.node_pools[1]
    requirements = node_pool_from_config(pool).manifest()["spec"]["template"]["spec"]["requirements"]
    assert requirements[-1] == {"key": INSTANCE_TYPE, "operator": "In", "values": trunk_eni_instance_types(pool)}


# ------------------------------------------------------------------------------------- config
def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    return err.value.problems


def with_policies(policies: list[dict]) -> dict:
    return mutated_config("prod", "cluster.eks.securityGroupPolicies", policies)


KEY = "k8s-platform:cluster.eks.securityGroupPolicies"


def pol(**fields) -> dict:
    """A policy with a pod selector and one existing group, `fields` replacing (None: removing) keys."""
    policy = {"name": "a", "namespace": "x", "podSelector": {"app": "a"}, "securityGroupIds": [SHARED_GROUP]}
    policy.update(fields)
    return {k: v for k, v in policy.items() if v is not None}


def own(kind: str, **rule) -> dict:
    """A policy whose only group is one the stack creates with this one rule."""
    return pol(securityGroupIds=None, securityGroup={kind: [rule]})


@pytest.mark.parametrize(
    "policy,where,expected",
    [
        (pol(podSelector=None), "[0]", "matches no pod"),
        (pol(podSelector={}), "[0].podSelector", "empty selector"),
        (pol(securityGroupIds=None), "[0]", "securityGroupIds and/or securityGroup"),
        (pol(securityGroupIds=[f"sg-0000000{i}" for i in range(5)], securityGroup={}), "[0]", "at most 5"),
        (pol(securityGroupIds=["sg-nope"]), "[0].securityGroupIds", "is not a security group id"),
        (own("ingress", protocol="tcp", fromPort=443, cidr="0.0.0.0/0"), "[0].securityGroup.ingress", "internet"),
        (
            own("egress", protocol="tcp", fromPort=443, cidr="10.0.0.0/8", securityGroupId=DB_GROUP),
            "[0].securityGroup.egress[0]",
            "exactly one of cidr and securityGroupId",
        ),
        (own("egress", protocol="udp", cidr="10.0.0.0/8"), "[0].securityGroup.egress[0]", "fromPort is required"),
        (own("egress", protocol="icmp", fromPort=8, cidr="10.0.0.0/8"), "[0].securityGroup.egress[0]", "do not apply"),
        (
            own("egress", protocol="tcp", fromPort=9000, toPort=80, cidr="10.0.0.0/8"),
            "[0].securityGroup.egress[0]",
            "below fromPort",
        ),
    ],
)
def test_a_bad_policy_is_refused_naming_its_key(policy, where, expected):
    found = problems(with_policies([policy]))
    assert any(p.startswith(f"{KEY}{where}:") and expected in p for p in found), found


def test_the_same_policy_twice_in_a_namespace_is_refused():
    found = problems(with_policies([pol(), pol()]))
    assert any(p.startswith(f"{KEY}[1].name:") and "defined twice" in p for p in found), found


def test_a_trunk_pool_needs_a_policy_an_eks_cluster_and_trunk_types():
    raw = shipped_config("prod")
    raw["k8s-platform:karpenter"]["nodePools"][1]["securityGroupsForPods"] = True
    found = problems(raw)
    assert any(
        p.startswith("k8s-platform:karpenter.nodePools[1].securityGroupsForPods:")
        and "securityGroupPolicies is empty" in p
        for p in found
    ), found

    raw = sgp_config()
    pool = raw["k8s-platform:karpenter"]["nodePools"][1]
    pool.update(instanceCategories=["c"], instanceFamilies=["c9g"], architectures=["arm64"])
    found = problems(raw)
    assert any("admits no instance type that supports trunk ENIs" in p for p in found), found

    raw = shipped_config("dev")
    raw["k8s-platform:karpenter"]["nodePools"][0]["securityGroupsForPods"] = True
    found = problems(raw)
    assert any(
        p.startswith("k8s-platform:karpenter.nodePools[0].securityGroupsForPods:") and "EKS feature" in p for p in found
    ), found


# ------------------------------------------------------------------ Pod Identity in strict mode
def test_a_policy_that_may_select_a_pod_identity_workload_needs_standard_mode():
    # orders-api (prod) uses Pod Identity; its ServiceAccount carries k8s-platform/workload: orders-api.
    for selector in (
        {"podSelector": {"app": "orders"}},
        {"serviceAccountSelector": {"k8s-platform/workload": "orders-api"}},
    ):
        policy = pol(namespace="orders", **{"podSelector": None, **selector})
        found = problems(with_policies([policy]))
        [line] = [p for p in found if p.startswith(f"{KEY}[0]:")]
        assert "orders-api" in line and "Pod Identity agent" in line and "standard" in line and "method: irsa" in line
        raw = with_policies([policy])
        raw["k8s-platform:cluster"]["eks"]["podSecurityGroupEnforcingMode"] = "standard"
        assert parse_stack_config(raw).cluster.eks.pod_security_group_enforcing_mode == "standard"
    # A ServiceAccount label the workload's ServiceAccount does not carry cannot select its pods.
    other = pol(namespace="orders", podSelector=None, serviceAccountSelector={"k8s-platform/workload": "other"})
    parse_stack_config(with_policies([other]))


def test_standard_mode_reaches_the_cni():
    from components.eks.addons import render_vpc_cni_configuration

    assert (
        render_vpc_cni_configuration(pod_eni=True, enforcing_mode="standard")["env"][
            "POD_SECURITY_GROUP_ENFORCING_MODE"
        ]
        == "standard"
    )


def test_the_rule_knows_the_labels_the_stack_puts_on_workload_service_accounts(prod_run):
    from components.config.data_plane_rules import workload_service_account_labels

    accounts = {r.name: r.inputs["metadata"]["labels"] for r in prod_run.of_type("kubernetes:core/v1:ServiceAccount")}
    for w in prod_run.config.workloads:
        assert accounts[f"wl-{w.name}-sa"] == workload_service_account_labels(w)
