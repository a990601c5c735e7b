"""System node group, its launch template and the nodeadm user-data, on the prod plan and as pure renderers."""

from __future__ import annotations

import base64
import email
import json

import pytest
import yaml

from components.core.max_pods import max_pods_for
from components.eks.nodeadm import MIME_BOUNDARY, NodeadmCluster, render_node_config, render_user_data
from components.eks.system_nodes import SYSTEM_SCHEDULING, ami_type_for, ebs_key_policy, system_max_pods

LT = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def node_configs(user_data_b64: str) -> list[dict]:
    """Parse user-data the way cloud-init/nodeadm do: MIME parts of type application/node.eks.aws."""
    message = email.message_from_string(base64.b64decode(user_data_b64).decode())
    assert message.is_multipart()
    return [
        yaml.safe_load(part.get_payload())
        for part in message.walk()
        if part.get_content_type() == "application/node.eks.aws"
    ]


def test_launch_template_hardening(prod_run):
    lt = prod_run.one(LT, "eks-system-lt").inputs
    assert lt["metadataOptions"]["httpTokens"] == "required"
    assert lt["metadataOptions"]["httpPutResponseHopLimit"] == 1
    [nic] = lt["networkInterfaces"]
    assert nic["associatePublicIpAddress"] == "false"
    [disk] = lt["blockDeviceMappings"]
    assert disk["deviceName"] == "/dev/xvda"
    ebs = disk["ebs"]
    assert ebs["volumeType"] == "gp3" and ebs["encrypted"] == "true"
    assert ebs["volumeSize"] == prod_run.config.cluster.eks.system_node_group.disk_size_gib
    assert ebs["kmsKeyId"].startswith("arn:aws:kms:us-east-1:222222222222:key/")
    assert prod_run.one("aws:kms/key:Key", "eks-system-ebs").urn in prod_run.one(LT, "eks-system-lt").dependencies


def test_nodes_carry_node_and_cluster_security_groups(prod_run):
    sgs = prod_run.one(LT, "eks-system-lt").inputs["networkInterfaces"][0]["securityGroups"]
    assert len(sgs) == 2 and all(s.startswith("sg-") for s in sgs)
    assert (
        prod_run.one("aws:ec2/securityGroup:SecurityGroup", "eks-node-sg").urn
        in prod_run.one(LT, "eks-system-lt").dependencies
    )


def test_user_data_is_a_nodeadm_config_with_computed_max_pods(prod_run):
    types = prod_run.config.cluster.eks.system_node_group.instance_types
    [config] = node_configs(prod_run.one(LT, "eks-system-lt").inputs["userData"])
    assert config["apiVersion"] == "node.eks.aws/v1alpha1" and config["kind"] == "NodeConfig"
    expected = min(max_pods_for(t, prefix_delegation=True, custom_networking=True) for t in types)
    assert config["spec"]["kubelet"]["config"]["maxPods"] == expected == 110


def test_user_data_holds_no_secret(prod_run):
    text = base64.b64decode(prod_run.one(LT, "eks-system-lt").inputs["userData"]).decode()
    for marker in ("PRIVATE KEY", "token", "password", "aws_secret_access_key", "client-key"):
        assert marker.lower() not in text.lower()


def test_node_group_shape(prod_run):
    ng = prod_run.one(NODE_GROUP).inputs
    cfg = prod_run.config.cluster.eks.system_node_group
    assert ng["nodeGroupNamePrefix"] == "prod-eks-system-" and "nodeGroupName" not in ng
    assert ng["capacityType"] == "ON_DEMAND"
    assert ng["amiType"] == "AL2023_x86_64_STANDARD"
    assert ng["instanceTypes"] == cfg.instance_types
    assert ng["scalingConfig"] == {"minSize": cfg.min_size, "desiredSize": cfg.desired_size, "maxSize": cfg.max_size}
    assert ng["version"] == "1.35"
    assert ng["launchTemplate"]["id"].startswith("lt-") and ng["launchTemplate"]["version"] == "1"
    assert sorted(ng["subnetIds"]) == sorted(prod_run.outputs["privateSubnetIds"].values())
    assert ng["taints"] == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    assert ng["labels"] == SYSTEM_SCHEDULING.node_selector


def test_node_role_policies(prod_run):
    role = prod_run.one("aws:iam/role:Role", "eks-system-node-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    attached = sorted(
        a.inputs["policyArn"].rsplit("/", 1)[1]
        for a in prod_run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith("eks-system-node-")
    )
    assert attached == [
        "AmazonEC2ContainerRegistryPullOnly",
        "AmazonEKSWorkerNodePolicy",
        "AmazonSSMManagedInstanceCore",
    ]


def test_node_access_entry_precedes_the_node_group(prod_run):
    entry = prod_run.one("aws:eks/accessEntry:AccessEntry", "eks-system-node-access")
    assert entry.inputs["type"] == "EC2_LINUX"
    assert entry.urn in prod_run.one(NODE_GROUP).dependencies


def test_ebs_key_lets_only_autoscaling_via_ec2_use_it(prod_run):
    policy = json.loads(prod_run.one("aws:kms/key:Key", "eks-system-ebs").inputs["policy"])
    assert policy == ebs_key_policy("222222222222", "us-east-1")
    asg = "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    for sid in ("AutoScalingUsesKeyForVolumes", "AutoScalingGrantsForVolumes"):
        [stmt] = [s for s in policy["Statement"] if s.get("Sid") == sid]
        cond = stmt["Condition"]
        assert cond["ArnEquals"] == {"aws:PrincipalArn": asg}
        assert cond["StringEquals"] == {
            "kms:CallerAccount": "222222222222",
            "kms:ViaService": "ec2.us-east-1.amazonaws.com",
        }
    [grant] = [s for s in policy["Statement"] if s.get("Sid") == "AutoScalingGrantsForVolumes"]
    assert grant["Action"] == "kms:CreateGrant"
    assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


# ---------------------------------------------------------------------------------- pure parts
def test_system_max_pods_takes_the_smallest_type():
    # t3.medium with custom networking + PD: (3 - 1) * 5 * 16 + 2 = 162 -> 110; t3.micro: 18.
    assert system_max_pods(["t3.medium", "t3.micro"]) == 18
    assert system_max_pods(["m7i.large"]) == 110


@pytest.mark.parametrize(
    ("types", "ami"),
    [
        (["m7g.large", "c7g.large"], "AL2023_ARM_64_STANDARD"),
        (["m6gd.xlarge"], "AL2023_ARM_64_STANDARD"),
        (["m7i.large", "m6i.large"], "AL2023_x86_64_STANDARD"),
        (["t3.large"], "AL2023_x86_64_STANDARD"),
    ],
)
def test_ami_type_follows_architecture(types, ami):
    assert ami_type_for(types) == ami


def test_render_node_config_for_self_managed_nodes_carries_cluster_details():
    cluster = NodeadmCluster("c1", "https://x.eks.amazonaws.com", "Q0E=", "172.20.0.0/16")
    cfg = render_node_config(max_pods=58, cluster=cluster, kubelet_flags=["--node-labels=a=b"])
    assert cfg["spec"]["cluster"] == {
        "name": "c1",
        "apiServerEndpoint": "https://x.eks.amazonaws.com",
        "certificateAuthority": "Q0E=",
        "cidr": "172.20.0.0/16",
    }
    assert cfg["spec"]["kubelet"] == {"config": {"maxPods": 58}, "flags": ["--node-labels=a=b"]}


def test_render_node_config_rejects_nonsense_max_pods():
    with pytest.raises(ValueError, match="maxPods must be positive"):
        render_node_config(max_pods=0)


def test_user_data_mime_is_parseable_and_keeps_extra_parts_in_order():
    text = render_user_data(
        render_node_config(max_pods=29), extra_parts=[("text/x-shellscript", "#!/bin/bash\necho hi\n")]
    )
    message = email.message_from_string(text)
    types = [p.get_content_type() for p in message.walk() if not p.is_multipart()]
    assert types == ["application/node.eks.aws", "text/x-shellscript"]
    assert text == render_user_data(
        render_node_config(max_pods=29), extra_parts=[("text/x-shellscript", "#!/bin/bash\necho hi\n")]
    )


def test_user_data_refuses_a_part_containing_the_boundary():
    with pytest.raises(ValueError, match="boundary"):
        render_user_data(render_node_config(max_pods=29), extra_parts=[("text/plain", f"--{MIME_BOUNDARY}")])
