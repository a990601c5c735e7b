"""`platformctl connect` and what it needs in the plan: the target (a K3s server on dev, the
SSM-only access instance on prod), the port-forward document, the operator policy, the kubeconfig."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from components.config import ConfigError, parse_stack_config
from components.core.api_access import API_ACCESS_TAG, operator_policy
from programs.offline import reveal
from programs.plan import build_plan
from programs.platformctl import cli, connect, exit_codes
from programs.platformctl.policy_gate import apply_policies
from tests.conftest import shipped_config

ACCESS = "k8s-platform:eks:AccessInstance"


def _children(run, parent_type: str):
    parents = {r.urn for r in run.resources if r.type == parent_type}
    return [r for r in run.resources if r.parent in parents]


def test_dev_connects_through_a_k3s_server(dev_run, capsys, tmp_path):
    access = dev_run.outputs["apiAccess"]
    assert access["targetKind"] == "autoScalingGroup"
    assert access["autoScalingGroupNames"] == ["dev-k3s-k3s-server-bootstrap"]
    assert access["remotePort"] == 6443 and access["remoteHost"].endswith(".elb.us-east-1.amazonaws.com")
    # The servers carry the tag the operator policy allows StartSession on.
    templates = [
        r for r in dev_run.resources if r.type == "aws:ec2/launchTemplate:LaunchTemplate" and "server" in r.name
    ]
    assert templates and all(
        spec["tags"][API_ACCESS_TAG] == "dev-k3s"
        for t in templates
        for spec in t.inputs["tagSpecifications"]
        if spec["resourceType"] == "instance"
    )
    assert not [r for r in dev_run.resources if r.type == ACCESS]
    (tmp_path / "kc.yaml").write_text("REAL")
    code = cli.main(["connect", "--stack", "dev", "--offline", "--write-kubeconfig", str(tmp_path / "kc.yaml")])
    out = capsys.readouterr().out
    assert code == exit_codes.OK
    assert "K3s server Auto Scaling group" in out and "--document-name dev-k3s-api-port-forward" in out
    # Offline the endpoint and CA are the mocks': the user's kubeconfig is left alone.
    assert (tmp_path / "kc.yaml").read_text() == "REAL" and "not with --offline" in out
    # What connect writes from a deployed stack: the stack's kubeconfig pointed at the tunnel.
    kubeconfig = connect.local_kubeconfig(reveal(dev_run.outputs["kubeconfig"]), connect.resolve(dev_run.outputs), 8443)
    cluster = kubeconfig["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:8443" and cluster["tls-server-name"] == access["remoteHost"]
    connect.write_private(tmp_path / "written.yaml", yaml.safe_dump(kubeconfig))
    assert oct((tmp_path / "written.yaml").stat().st_mode & 0o777) == "0o600"


def test_prod_access_instance_has_no_inbound_rule_and_no_public_ip(prod_run):
    [component] = [r for r in prod_run.resources if r.type == ACCESS]
    children = _children(prod_run, ACCESS)
    [instance] = [r for r in children if r.type == "aws:ec2/instance:Instance"]
    [group] = [r for r in children if r.type == "aws:ec2/securityGroup:SecurityGroup"]
    assert instance.inputs["associatePublicIpAddress"] is False
    assert instance.inputs["metadataOptions"]["httpTokens"] == "required"
    assert instance.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert instance.inputs["rootBlockDevice"]["encrypted"] is True
    assert "keyName" not in instance.inputs and "userData" not in instance.inputs
    assert not group.inputs.get("ingress")
    group_id = instance.inputs["vpcSecurityGroupIds"][0]
    inbound = [
        r
        for r in prod_run.resources
        if r.type
        in ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "aws:ec2/securityGroupRule:SecurityGroupRule")
        and r.inputs.get("securityGroupId") == group_id
        and r.inputs.get("type", "ingress") == "ingress"
    ]
    assert inbound == []
    # The instance's role holds the SSM core policy and nothing else.
    attachments = [
        r.inputs["policyArn"] for r in children if r.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    ]
    assert attachments == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    assert not [r for r in children if r.type == "aws:iam/rolePolicy:RolePolicy"]
    assert prod_run.outputs["apiAccess"]["instanceId"].startswith("i-")
    assert prod_run.outputs["apiAccess"]["remotePort"] == 443


def test_prod_plan_has_the_document_and_operator_policy_and_passes_the_pack(prod_run):
    [doc] = [r for r in prod_run.resources if r.type == "aws:ssm/document:Document"]
    content = json.loads(doc.inputs["content"])
    assert doc.inputs["documentType"] == "Session" and content["sessionType"] == "Port"
    assert content["properties"]["host"] == prod_run.outputs["apiAccess"]["remoteHost"]
    assert content["properties"]["portNumber"] == "443" and list(content["parameters"]) == ["localPortNumber"]
    [policy] = [
        r for r in prod_run.resources if r.type == "aws:iam/policy:Policy" and r.name == "api-port-forward-operator"
    ]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    start = [s for s in statements if s["Action"] == "ssm:StartSession"]
    assert {s["Resource"] for s in start} == {
        "arn:aws:ec2:us-east-1:222222222222:instance/*",
        "arn:aws:ssm:us-east-1:222222222222:document/prod-eks-api-port-forward",
    }
    assert start[0]["Condition"]["StringEquals"] == {f"ssm:resourceTag/{API_ACCESS_TAG}": "prod-eks"}
    plan = apply_policies(build_plan(prod_run), prod_run, "prod")
    assert [v for v in plan["policy"]["violations"] if v["level"] == "mandatory"] == []


def test_operator_policy_limits_sessions_to_the_caller():
    doc = operator_policy(cluster_name="c", region="eu-west-1", account_id="123456789012")
    [own] = [s for s in doc["Statement"] if s["Sid"] == "OwnSessionsOnly"]
    assert own["Resource"] == "arn:aws:ssm:eu-west-1:123456789012:session/${aws:userid}-*"


def test_access_instance_is_off_by_default_and_validated():
    cfg = shipped_config("prod")
    cfg["k8s-platform:cluster"] = {
        **cfg["k8s-platform:cluster"],
        "eks": {k: v for k, v in cfg["k8s-platform:cluster"]["eks"].items() if k != "accessInstance"},
    }
    assert parse_stack_config(cfg).cluster.eks.access_instance.enabled is False
    cfg["k8s-platform:cluster"]["eks"]["accessInstance"] = {"enabled": True, "instanceType": "huge", "publicIp": True}
    with pytest.raises(ConfigError) as err:
        parse_stack_config(cfg)
    assert (
        "k8s-platform:cluster.eks.accessInstance.instanceType: 'huge' is not an EC2 instance type like m7i.large"
        in err.value.problems
    )
    assert any(p.startswith("k8s-platform:cluster.eks.accessInstance.publicIp:") for p in err.value.problems)
    dev = shipped_config("dev")
    dev["k8s-platform:cluster"] = {**dev["k8s-platform:cluster"], "eks": {"accessInstance": {"enabled": True}}}
    with pytest.raises(ConfigError) as err:
        parse_stack_config(dev)
    assert any(p.startswith("k8s-platform:cluster.eks.accessInstance.enabled: only EKS") for p in err.value.problems)


def test_eks_without_access_instance_says_how_to_enable_it():
    with pytest.raises(connect.NoTarget, match="cluster.eks.accessInstance.enabled"):
        connect.resolve({"clusterKind": "eks"})


def test_k3s_target_is_a_running_server_found_in_its_group(tmp_path):
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    saved = dict(os.environ)
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    try:
        with moto.mock_aws():
            ec2 = boto3.client("ec2", region_name="us-east-1")
            asg = boto3.client("autoscaling", region_name="us-east-1")
            vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1a")["Subnet"][
                "SubnetId"
            ]
            # moto's default AMIs are off for the suite (tests/conftest.py): the image is registered.
            ami = ec2.register_image(Name="al2023-ami-2023-test", RootDeviceName="/dev/xvda")["ImageId"]
            asg.create_launch_configuration(LaunchConfigurationName="lc", ImageId=ami, InstanceType="t3.medium")
            asg.create_auto_scaling_group(
                AutoScalingGroupName="dev-k3s-k3s-server-bootstrap",
                LaunchConfigurationName="lc",
                MinSize=1,
                MaxSize=1,
                DesiredCapacity=1,
                VPCZoneIdentifier=subnet,
            )
            outputs = {
                "apiAccess": {
                    "targetKind": "autoScalingGroup",
                    "autoScalingGroupNames": ["dev-k3s-k3s-server-bootstrap"],
                    "remoteHost": "api.internal",
                    "remotePort": 6443,
                    "tlsServerName": "api.internal",
                    "ssmDocumentName": "dev-k3s-api-port-forward",
                    "region": "us-east-1",
                }
            }
            conn = connect.resolve(outputs, autoscaling=asg)
            [running] = ec2.describe_instances()["Reservations"][0]["Instances"]
            assert conn.target == running["InstanceId"]
            assert conn.command(9443)[-1] == '{"localPortNumber": ["9443"]}'
            assert "AWS-StartPortForwardingSessionToRemoteHost" not in conn.command(9443)  # the pinned document instead
    finally:
        os.environ.clear()
        os.environ.update(saved)
