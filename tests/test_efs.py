"""EFS on both cluster kinds (`addons.efsCsi`): a prod (EKS) and a dev (K3s) variant that preview clean,
with what users rely on: the file system encrypted with the stack's own key, a mount target per zone
in the node subnets, NFS open to the nodes' security group only, the driver with its own role (Pod
Identity on EKS, IRSA through the self-hosted issuer on K3s), and an access-point StorageClass. The
chart's values are checked against its values.yaml at the pinned version.
"""

from __future__ import annotations

import json

import pytest

from components.addons.efs import EFS_CSI_CONTROLLER_SERVICE_ACCOUNT, efs_storage_class_manifest
from components.config import ConfigError, parse_stack_config
from components.config.efs import EfsCsiConfig
from components.core.iam_documents import EFS_CSI_DRIVER_POLICY_ARN
from components.core.pins import ADDON_VERSIONS, CHARTS, EFS_CSI
from components.k3s.cluster import SYSTEM_SCHEDULING as K3S_SYSTEM_SCHEDULING
from programs.offline import reveal
from programs.plan import build_plan
from programs.platformctl.policy_gate import apply_policies
from tests.conftest import mutated_config, variant_run
from tests.test_upstream_contracts_charts import chart_values, unknown_value_paths

FS = "aws:efs/fileSystem:FileSystem"
MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
KEY = "aws:kms/key:Key"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ADDON = "aws:eks/addon:Addon"
RELEASE = "kubernetes:helm.sh/v3:Release"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
ON = {"efsCsi": {"enabled": True}}
NODE_SG = {"prod": "eks-node-sg", "dev": "k3s-nodes"}


@pytest.fixture(scope="module", params=["prod", "dev"])
def efs_run(request):
    return variant_run(request.param, "addons", ON)


def role_arn(run, role) -> str:
    """The ARN the mocks gave a role (its `arn` output, as the plan's dependents saw it)."""
    [attachment] = [a for a in run.of_type(ATTACHMENT) if a.name == f"{role.name.removesuffix('-role')}-managed-0"]
    return f"arn:aws:iam::{run.config.account_id}:role/{attachment.inputs['role']}"


def test_variant_previews_with_no_mandatory_violation(efs_run):
    plan = apply_policies(build_plan(efs_run), efs_run, efs_run.stack)
    mandatory = [v for v in plan["policy"]["violations"] if v["level"] == "mandatory"]
    assert mandatory == [], mandatory


def test_file_system_is_encrypted_with_the_stacks_own_rotating_key(efs_run):
    fs = efs_run.one(FS)
    key = efs_run.one(KEY, "efs-key")
    assert fs.inputs["encrypted"] is True
    assert fs.property_dependencies["kmsKeyId"] == [key.urn]
    assert key.inputs["enableKeyRotation"] is True
    # Protected where the environment protects stateful resources (prod), like the key.
    assert fs.protect is key.protect is (efs_run.stack == "prod")
    assert fs.inputs["throughputMode"] == "elastic" and fs.inputs["performanceMode"] == "generalPurpose"
    [backup] = efs_run.of_type("aws:efs/backupPolicy:BackupPolicy")
    assert backup.inputs["backupPolicy"] == {"status": "ENABLED"}


def test_one_mount_target_per_zone_in_the_node_subnets(efs_run):
    targets = efs_run.of_type(MOUNT_TARGET)
    private = efs_run.outputs["privateSubnetIds"]
    assert sorted(t.inputs["subnetId"] for t in targets) == sorted(private.values())
    assert len(targets) == len(efs_run.config.network.availability_zones)
    group = efs_run.one(SG, "efs-mount-targets")
    for t in targets:
        assert t.property_dependencies["securityGroups"] == [group.urn]


def test_nfs_is_open_to_the_node_security_group_only(efs_run):
    group = efs_run.one(SG, "efs-mount-targets")
    assert not group.inputs.get("ingress")  # no inline rules
    rules = [r for r in efs_run.of_type(INGRESS) if group.urn in r.property_dependencies.get("securityGroupId", [])]
    assert len(rules) == 1
    (rule,) = rules
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 2049, 2049)
    nodes = efs_run.one(SG, NODE_SG[efs_run.stack])
    assert rule.property_dependencies["referencedSecurityGroupId"] == [nodes.urn]
    assert "cidrIpv4" not in rule.inputs
    # Every mount target waits for the rule: a pod's first mount does not time out on a closed port.
    assert all(rule.urn in t.dependencies for t in efs_run.of_type(MOUNT_TARGET))


def test_driver_role_carries_only_the_managed_efs_policy(efs_run):
    [role] = [r for r in efs_run.of_type(ROLE) if r.name == "efs-csi-role"]
    attached = [a.inputs["policyArn"] for a in efs_run.of_type(ATTACHMENT) if a.name.startswith("efs-csi-")]
    assert attached == [EFS_CSI_DRIVER_POLICY_ARN]
    assert not [p for p in efs_run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.startswith("efs-csi-")]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    if efs_run.stack == "prod":
        (stmt,) = trust["Statement"]
        assert stmt["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        tags = stmt["Condition"]["StringEquals"]
        assert tags["aws:RequestTag/kubernetes-service-account"] == EFS_CSI_CONTROLLER_SERVICE_ACCOUNT
        assert tags["aws:RequestTag/kubernetes-namespace"] == "kube-system"
    else:
        subjects = {
            v for s in trust["Statement"] for k, v in s["Condition"]["StringEquals"].items() if k.endswith(":sub")
        }
        assert subjects == {f"system:serviceaccount:kube-system:{EFS_CSI_CONTROLLER_SERVICE_ACCOUNT}"}


def test_eks_installs_the_pinned_managed_addon_after_its_pod_identity():
    run = variant_run("prod", "addons", ON)
    [addon] = [a for a in run.of_type(ADDON) if a.inputs["addonName"] == EFS_CSI]
    assert addon.inputs["addonVersion"] == ADDON_VERSIONS["1.35"][EFS_CSI]
    [association] = [a for a in run.of_type(ASSOCIATION) if a.name == "efs-csi-association"]
    assert association.inputs["serviceAccount"] == EFS_CSI_CONTROLLER_SERVICE_ACCOUNT
    assert association.inputs["namespace"] == "kube-system"
    assert association.urn in addon.dependencies
    assert run.one("aws:eks/nodeGroup:NodeGroup").urn in addon.dependencies  # its controller needs a node
    assert not [r for r in run.of_type(RELEASE) if "efs" in r.name]


def test_k3s_installs_the_pinned_chart_with_its_irsa_role_and_known_values():
    run = variant_run("dev", "addons", ON)
    [release] = [r for r in run.of_type(RELEASE) if r.name == "efs-aws-efs-csi-driver"]
    inputs = reveal(release.inputs)
    chart = CHARTS["aws-efs-csi-driver"]
    assert (inputs["chart"], inputs["version"], inputs["namespace"]) == (chart.chart, "4.4.1", "kube-system")
    values = inputs["values"]
    [role] = [r for r in run.of_type(ROLE) if r.name == "efs-csi-role"]
    sa = values["controller"]["serviceAccount"]
    assert sa["name"] == EFS_CSI_CONTROLLER_SERVICE_ACCOUNT
    # The annotation names exactly the role the IRSA trust belongs to.
    assert sa["annotations"] == {"eks.amazonaws.com/role-arn": role_arn(run, role)}
    # The controller runs on the servers, like every other controller on K3s.
    assert values["controller"]["nodeSelector"] == K3S_SYSTEM_SCHEDULING.node_selector
    assert values["controller"]["tolerations"] == K3S_SYSTEM_SCHEDULING.tolerations
    assert values["storageClasses"] == []  # the component owns the class
    assert {"name": "AWS_REGION", "value": "us-east-1"} in values["controller"]["env"]
    unknown = sorted(unknown_value_paths(values, chart_values("aws-efs-csi-driver", "4.4.1")))
    assert unknown == [], f"aws-efs-csi-driver 4.4.1 values.yaml has no such keys: {unknown}"
    # The release waits for its identity and for the pod-identity webhook (which injects the token).
    deps = {d.rsplit("::", 1)[-1] for d in release.dependencies}
    assert "efs-csi-role" in deps and "pod-identity-webhook-webhook" in deps
    assert not [a for a in run.of_type(ADDON)]


def test_storage_class_provisions_access_points_on_this_file_system(efs_run):
    sc = efs_run.one(STORAGE_CLASS, "efs-storage-class")
    fs = efs_run.one(FS)
    params = sc.inputs["parameters"]
    assert params["provisioningMode"] == "efs-ap" and params["directoryPerms"] == "700"
    assert sc.property_dependencies["parameters"] == [fs.urn]
    assert params["fileSystemId"] == efs_run.outputs["efs"]["fileSystemId"]
    assert sc.inputs["provisioner"] == "efs.csi.aws.com"
    # Not a second default class: gp3 stays the default.
    assert "annotations" not in sc.inputs["metadata"]
    defaults = [
        s
        for s in efs_run.of_type(STORAGE_CLASS)
        if (s.inputs["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert [s.inputs["metadata"]["name"] for s in defaults] == ["gp3"]
    # Created once the driver runs and every zone can reach the file system.
    assert all(t.urn in sc.dependencies for t in efs_run.of_type(MOUNT_TARGET))


def test_off_by_default(dev_run, prod_run):
    for run in (dev_run, prod_run):
        assert run.of_type(FS) == [] and run.of_type(MOUNT_TARGET) == []
        assert "efs" not in run.outputs


def test_storage_class_manifest_is_the_configured_one():
    cfg = EfsCsiConfig(enabled=True, directory_perms="0750", gid_range_start=2000, gid_range_end=3999)
    manifest = efs_storage_class_manifest(cfg, "fs-0123")
    assert manifest["parameters"] == {
        "provisioningMode": "efs-ap",
        "fileSystemId": "fs-0123",
        "directoryPerms": "0750",
        "gidRangeStart": "2000",
        "gidRangeEnd": "3999",
        "basePath": "/dynamic_provisioning",
    }
    assert manifest["volumeBindingMode"] == "Immediate" and manifest["reclaimPolicy"] == "Delete"


@pytest.mark.parametrize(
    "values,key,expected",
    [
        ({"gidRangeStart": 1000, "gidRangeEnd": 1500}, "gidRangeEnd", "fewer than 1000 ids"),
        ({"performanceMode": "maxIO"}, "performanceMode", "not available with throughputMode elastic"),
        ({"directoryPerms": "rwx"}, "directoryPerms", "octal"),
        ({"storageClassName": "EFS"}, "storageClassName", "DNS-safe"),
        ({"throughputMode": "provisioned"}, "throughputMode", "elastic"),
    ],
)
def test_bad_efs_config_is_refused_naming_its_key(values, key, expected):
    with pytest.raises(ConfigError) as err:
        parse_stack_config(mutated_config("prod", "addons", {"efsCsi": {"enabled": True, **values}}))
    assert any(p.startswith(f"k8s-platform:addons.efsCsi.{key}:") and expected in p for p in err.value.problems), (
        err.value.problems
    )


def test_under_auto_mode_nfs_is_also_open_to_the_cluster_security_group():
    """Auto Mode's built-in pools (and Fargate pods) carry the EKS cluster security group, not the node group:
    without this rule their pods' mounts time out."""
    from programs.offline import run_offline
    from tests.test_eks_auto_mode import auto_mode_config

    raw = auto_mode_config()
    raw["k8s-platform:addons"] = {**raw.get("k8s-platform:addons", {}), **ON}
    run = run_offline("prod", raw)
    group = run.one(SG, "efs-mount-targets")
    rules = [r for r in run.of_type(INGRESS) if group.urn in r.property_dependencies.get("securityGroupId", [])]
    cluster = run.one("aws:eks/cluster:Cluster", "eks-cluster")
    sources = {tuple(r.property_dependencies["referencedSecurityGroupId"]) for r in rules}
    assert sources == {(run.one(SG, "eks-node-sg").urn,), (cluster.urn,)}
    assert all({r.urn for r in rules} <= set(t.dependencies) for t in run.of_type(MOUNT_TARGET))
    plan = apply_policies(build_plan(run), run, "prod")
    mandatory = [v for v in plan["policy"]["violations"] if v["level"] == "mandatory"]
    assert mandatory == [], mandatory
