"""The K3s control plane as captured from the dev stack's offline plan (`dev_run`)."""

from __future__ import annotations

import base64
import json
import re

import pytest
import yaml

from programs.offline import Secret, reveal, run_offline, secret_strings
from programs.plan import build_plan
from programs.platformctl.policy_gate import apply_policies
from tests.conftest import variants_run

ASG = "aws:autoscaling/group:Group"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
BOOT = "/usr/local/sbin/k3s-node-boot.sh"


def user_data(run) -> dict[str, str]:
    return {
        lt.name: base64.b64decode(lt.inputs["userData"]).decode()
        for lt in run.of_type(LT)
        if lt.name.startswith("k3s-")
    }


def minted_secrets(run) -> set[str]:
    """The actual secrets of the run: tokens, every PEM private key, bundle and credential values."""
    values: set[str] = set()
    for r in run.resources:
        for s in secret_strings(r.inputs):
            values.add(s)
            try:
                doc = json.loads(s)
            except ValueError:
                continue
            if isinstance(doc, dict):
                values |= {v for v in doc.values() if isinstance(v, str) and "PRIVATE KEY" in v}
    for s in secret_strings(run.outputs):
        values.add(s)
        for user in (yaml.safe_load(s) or {}).get("users", []):
            values.add(base64.b64decode(user["user"]["client-key-data"]).decode())
    return {v for v in values if len(v) >= 16}


def test_dev_plan_has_the_k3s_control_plane(dev_run):
    types = {r.type for r in dev_run.resources}
    for t in (
        ASG,
        LT,
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:lb/targetGroup:TargetGroup",
        "aws:lb/listener:Listener",
        "aws:ssm/parameter:Parameter",
        "aws:s3/bucket:Bucket",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:sqs/queue:Queue",
        "aws:lambda/function:Function",
        "aws:lambda/eventSourceMapping:EventSourceMapping",
    ):
        assert t in types, t
    groups = {g.name: g for g in dev_run.of_type(ASG) if g.name.startswith("k3s-")}
    assert set(groups) == {"k3s-server-bootstrap", "k3s-agents"}  # dev: one server, no joiners


def test_api_load_balancer_is_internal_on_6443_with_health_checks(dev_run):
    nlb = dev_run.one("aws:lb/loadBalancer:LoadBalancer", "k3s-api")
    assert nlb.inputs["loadBalancerType"] == "network" and nlb.inputs["internal"] is True
    tg = dev_run.one("aws:lb/targetGroup:TargetGroup", "k3s-api")
    assert tg.inputs["port"] == 6443 and tg.inputs["protocol"] == "TCP"
    assert tg.inputs["healthCheck"]["protocol"] == "HTTPS" and tg.inputs["healthCheck"]["path"] == "/ping"
    listener = dev_run.one("aws:lb/listener:Listener", "k3s-api")
    assert listener.inputs["port"] == 6443
    server = dev_run.one(ASG, "k3s-server-bootstrap")
    assert server.inputs["targetGroupArns"] == [tg_arn(dev_run)]
    assert server.inputs["waitForElbCapacity"] == 1 and server.inputs["healthCheckType"] == "ELB"
    assert "mixedInstancesPolicy" not in server.inputs  # servers on-demand: etcd never on Spot


def tg_arn(run) -> str:
    return next(iter({a for g in run.of_type(ASG) for a in g.inputs.get("targetGroupArns", [])}))


def test_agents_mix_spot_above_an_on_demand_base(dev_run):
    agents = dev_run.one(ASG, "k3s-agents")
    policy = agents.inputs["mixedInstancesPolicy"]
    dist = policy["instancesDistribution"]
    assert dist["spotAllocationStrategy"] == "capacity-optimized"
    assert dist["onDemandBaseCapacity"] == dev_run.config.cluster.k3s.agents.on_demand_base
    assert dist["onDemandPercentageAboveBaseCapacity"] == 0
    assert [
        o["instanceType"] for o in policy["launchTemplate"]["overrides"]
    ] == dev_run.config.cluster.k3s.agents.instance_types
    assert agents.inputs["capacityRebalance"] is True
    assert "targetGroupArns" not in agents.inputs


@pytest.mark.parametrize("name", ["k3s-server-bootstrap", "k3s-agent"])
def test_launch_templates_are_locked_down(dev_run, name):
    lt = dev_run.one(LT, name)
    meta = lt.inputs["metadataOptions"]
    assert meta["httpTokens"] == "required" and meta["httpPutResponseHopLimit"] == 1
    (root,) = lt.inputs["blockDeviceMappings"]
    assert root["ebs"]["volumeType"] == "gp3" and root["ebs"]["encrypted"] == "true"
    (nic,) = lt.inputs["networkInterfaces"]
    assert nic["associatePublicIpAddress"] == "false"
    assert lt.inputs["imageId"].startswith("resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-")
    assert "keyName" not in lt.inputs  # no SSH key unless configured with a source security group
    assert "k8s-platform/cluster" in lt.inputs["tags"] and lt.inputs["tags"]["owner"]
    cloud_config = yaml.safe_load(base64.b64decode(lt.inputs["userData"]).decode())
    script = next(f["content"] for f in cloud_config["write_files"] if f["path"].endswith("k3s-node-boot.sh"))
    assert "readonly TIME_SYNC_SERVER=169.254.169.123" in script and "\n  ensure_time_sync\n" in script


def test_node_roles_get_session_manager(dev_run):
    attached = {
        (a.name, a.inputs["policyArn"]) for a in dev_run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    for kind in ("server", "agent"):
        assert (f"k3s-{kind}-ssm", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore") in attached


def test_join_tokens_are_securestrings_under_their_keys(dev_run):
    params = {p.inputs["name"]: p for p in dev_run.of_type("aws:ssm/parameter:Parameter")}
    server = params["/k8s-platform/dev-k3s/k3s/server-token"]
    agent = params["/k8s-platform/dev-k3s/k3s/agent-token"]
    for p in (server, agent):
        assert p.inputs["type"] == "SecureString" and isinstance(p.inputs["value"], Secret)
    keys = {k.name: k for k in dev_run.of_type("aws:kms/key:Key")}
    assert server.inputs["keyId"].endswith(_key_id(dev_run, "k3s-server-secrets"))
    assert agent.inputs["keyId"].endswith(_key_id(dev_run, "k3s-node-join"))
    assert keys["k3s-server-secrets"].inputs["enableKeyRotation"] is True


def _key_id(run, name) -> str:
    import uuid

    from programs.mock_resources import short_hash

    return str(uuid.UUID(short_hash("aws:kms/key:Key", name, length=32)))


def test_server_secrets_key_is_decryptable_only_by_the_server_role(dev_run):
    policy = json.loads(dev_run.one("aws:kms/key:Key", "k3s-server-secrets").inputs["policy"])
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow" and "kms:Decrypt" in _list(s["Action"])]
    assert [s["Principal"]["AWS"] for s in allows] == ["arn:aws:iam::111111111111:role/dev-k3s-k3s-server"]
    denies = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert denies and "arn:aws:iam::111111111111:role/dev-k3s-k3s-agent" in _list(denies[0]["Principal"]["AWS"])
    agent_policy = dev_run.one("aws:iam/rolePolicy:RolePolicy", "k3s-agent").inputs["policy"]
    assert (
        "server-token" not in agent_policy
        and "pki" not in agent_policy
        and _key_id(dev_run, "k3s-server-secrets") not in agent_policy
    )


def _list(v):
    return v if isinstance(v, list) else [v]


def test_etcd_snapshot_bucket_is_encrypted_versioned_and_private(dev_run):
    bucket = dev_run.one("aws:s3/bucket:Bucket", "k3s-etcd-snapshots")
    assert bucket.protect is False  # dev; prod protects it (see test_prod_protects_stateful_k3s_resources)
    sse = dev_run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "k3s-etcd-snapshots"
    )
    rule = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert rule["sseAlgorithm"] == "aws:kms" and _key_id(dev_run, "k3s-server-secrets") in rule["kmsMasterKeyId"]
    versioning = dev_run.one("aws:s3/bucketVersioning:BucketVersioning", "k3s-etcd-snapshots")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    block = dev_run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "k3s-etcd-snapshots")
    assert all(
        block.inputs[k] is True
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )


def test_interruption_pipeline_eventbridge_to_sqs_with_dlq_to_lambda_in_vpc(dev_run):
    rules = {
        r.name: json.loads(r.inputs["eventPattern"])
        for r in dev_run.of_type("aws:cloudwatch/eventRule:EventRule")
        if r.name.startswith("k3s-interruption-")
    }
    detail_types = {t for p in rules.values() for t in p["detail-type"]}
    assert detail_types == {
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "EC2 Instance-terminate Lifecycle Action",
    }
    queue = dev_run.one("aws:sqs/queue:Queue", "k3s-interruption-events")
    dlq = dev_run.one("aws:sqs/queue:Queue", "k3s-interruption-dlq")
    assert queue.inputs["sqsManagedSseEnabled"] is True and dlq.inputs["sqsManagedSseEnabled"] is True
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":dev-k3s-node-drainer-dlq") and redrive["maxReceiveCount"] >= 1
    targets = [
        t for t in dev_run.of_type("aws:cloudwatch/eventTarget:EventTarget") if t.name.startswith("k3s-interruption-")
    ]
    assert len(targets) == 4 and all(t.inputs["arn"].endswith(":dev-k3s-node-drainer") for t in targets)
    fn = dev_run.one("aws:lambda/function:Function", "k3s-interruption-drainer")
    assert fn.inputs["vpcConfig"]["subnetIds"] and fn.inputs["vpcConfig"]["securityGroupIds"]
    assert fn.inputs["code"]["archive"] == ["handler.py"]
    assert fn.inputs["timeout"] < queue.inputs["visibilityTimeoutSeconds"]
    mapping = dev_run.one("aws:lambda/eventSourceMapping:EventSourceMapping", "k3s-interruption-drainer")
    assert mapping.inputs["eventSourceArn"].endswith(":dev-k3s-node-drainer") and mapping.inputs["batchSize"] == 1
    # Lifecycle events only from this cluster's groups.
    asg_names = {g.inputs["name"] for g in dev_run.of_type(ASG) if g.name.startswith("k3s-")}
    assert asg_names <= set(rules["k3s-interruption-asg-termination"]["detail"]["AutoScalingGroupName"])


def test_drainer_rbac_is_limited_to_nodes_and_evictions(dev_run):
    role = dev_run.one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "k3s-interruption-node-drainer")
    granted = {(res, verb) for rule in role.inputs["rules"] for res in rule["resources"] for verb in rule["verbs"]}
    assert granted == {
        ("nodes", "get"),
        ("nodes", "list"),
        ("nodes", "patch"),
        ("nodes", "delete"),
        ("pods", "list"),
        ("pods/eviction", "create"),
    }
    binding = dev_run.one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "k3s-interruption-node-drainer")
    assert binding.inputs["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "k8s-platform:node-drainer"}
    ]
    secret = dev_run.one("aws:secretsmanager/secret:Secret", "k3s-interruption-drainer")
    assert secret.inputs["kmsKeyId"].startswith("arn:aws:kms:")


def test_no_secret_value_or_private_key_in_any_user_data(dev_run):
    secrets = minted_secrets(dev_run)
    assert len(secrets) >= 10  # tokens, CA keys, SA key, client keys: the check has teeth
    for name, text in user_data(dev_run).items():
        assert "PRIVATE KEY" not in text, name
        for value in secrets:
            assert value not in text, f"{name} holds a secret"


def test_exactly_one_server_may_run_cluster_init(dev_run):
    ha = ha_run()
    servers = {name: yaml.safe_load(text) for name, text in user_data(ha).items() if name.startswith("k3s-server")}
    roles = {}
    for name, doc in servers.items():
        files = {f["path"]: f["content"] for f in doc["write_files"]}
        assert "cluster-init" not in yaml.safe_load(files["/etc/rancher/k3s/config.yaml"])
        roles[name] = re.search(r"^readonly SERVER_ROLE=(\w+)$", files[BOOT], re.M).group(1)
    assert sorted(roles.values()) == ["bootstrap", "join"]
    # The bootstrap server checks the API target group's health before it may cluster-init.
    target_groups = {
        n: re.search(
            r"^readonly API_TARGET_GROUP_ARN=(\S*)$", yaml.safe_load(t)["write_files"][1]["content"], re.M
        ).group(1)
        for n, t in user_data(ha).items()
        if n.startswith("k3s-server")
    }
    assert target_groups == {"k3s-server-bootstrap": tg_arn(ha), "k3s-server-join": "''"}
    server_policy = json.loads(ha.one("aws:iam/rolePolicy:RolePolicy", "k3s-server").inputs["policy"])
    assert any(st["Action"] == "elasticloadbalancing:DescribeTargetHealth" for st in server_policy["Statement"])
    for lt in ha.of_type(LT):
        if lt.name.startswith("k3s-server"):
            assert "instanceMarketOptions" not in lt.inputs  # etcd never on Spot
    groups = {g.name: g for g in ha.of_type(ASG) if g.name.startswith("k3s-server")}
    assert groups["k3s-server-bootstrap"].inputs["maxSize"] == 1
    first, second = groups["k3s-server-join-us-east-1b"], groups["k3s-server-join-us-east-1c"]
    for joiners in (first, second):
        assert joiners.inputs["desiredCapacity"] == 1 and joiners.inputs["waitForElbCapacity"] == 1
    assert groups["k3s-server-bootstrap"].urn in first.dependencies  # they join once the API answers
    assert first.urn in second.dependencies  # etcd members are added one at a time


HA_ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


def ha_run():
    """The dev stack with 3 servers (embedded etcd) over 3 zones: the smallest HA layout."""
    return variants_run(
        "dev",
        {"network.availabilityZones": HA_ZONES, "cluster.k3s.servers": {"count": 3, "instanceType": "t3.medium"}},
    )


def test_kubeconfig_and_endpoint_outputs(dev_run):
    assert isinstance(dev_run.outputs["kubeconfig"], Secret)
    endpoint = dev_run.outputs["clusterEndpoint"]
    assert re.match(r"^https://internal-.*\.elb\.us-east-1\.amazonaws\.com:6443$", endpoint)
    kubeconfig = yaml.safe_load(reveal(dev_run.outputs["kubeconfig"]))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == endpoint


def subnet_ids(run, tier: str) -> set[str]:
    from programs.mock_resources import MockContext, resource_id

    ctx = MockContext(run.config.region, run.config.account_id, run.stack)
    return {
        resource_id(ctx, s.type, s.name, s.inputs)
        for s in run.of_type("aws:ec2/subnet:Subnet")
        if f"-{tier}-" in s.name
    }


def test_internet_facing_api_uses_public_subnets_and_the_allowlist(mutate_config):
    run = run_offline(
        "dev",
        mutate_config("dev", "cluster.k3s.apiAccess", {"internetFacing": True, "allowedCidrs": ["203.0.113.0/24"]}),
    )
    nlb = run.one("aws:lb/loadBalancer:LoadBalancer", "k3s-api")
    assert nlb.inputs["internal"] is False
    assert set(nlb.inputs["subnets"]) == subnet_ids(run, "public")
    rules = {r.name: r.inputs for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")}
    assert rules["k3s-nlb-from-allowed-0"]["cidrIpv4"] == "203.0.113.0/24"


def test_internal_api_uses_private_subnets(dev_run):
    nlb = dev_run.one("aws:lb/loadBalancer:LoadBalancer", "k3s-api")
    assert set(nlb.inputs["subnets"]) == subnet_ids(dev_run, "private")


def test_prod_protects_stateful_k3s_resources(mutate_config):
    cfg = mutate_config("dev", "environment", "prod")
    cfg["k8s-platform:network"] = {
        **cfg["k8s-platform:network"],
        "natGateways": "one-per-az",
        "availabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"],
    }
    cfg["k8s-platform:network"]["flowLogs"] = {**cfg["k8s-platform:network"].get("flowLogs", {}), "retentionDays": 90}
    cfg["k8s-platform:cluster"]["k3s"]["servers"] = {"count": 3, "instanceType": "m7i.large"}
    run = run_offline("prod", cfg)
    assert run.one("aws:s3/bucket:Bucket", "k3s-etcd-snapshots").protect is True
    assert all(k.protect for k in run.of_type("aws:kms/key:Key"))  # the drainer's credentials key too
    # K3s in prod passes the prod pack: every KMS key protected, every log group kept 90 days.
    plan = apply_policies(build_plan(run), run, "prod")
    assert [v for v in plan["policy"]["violations"] if v["level"] == "mandatory"] == []
    assert run.one("aws:lb/loadBalancer:LoadBalancer", "k3s-api").inputs["enableDeletionProtection"] is True
    servers = [g for g in run.of_type(ASG) if g.name.startswith("k3s-server")]
    assert sum(g.inputs["desiredCapacity"] for g in servers) == 3


def test_graviton_agents_boot_the_arm64_ami(mutate_config):
    run = run_offline(
        "dev",
        mutate_config("dev", "cluster.k3s.agents", {"instanceTypes": ["m7g.large", "c7g.large"], "desiredSize": 1}),
    )
    assert run.one(LT, "k3s-agent").inputs["imageId"].endswith("al2023-ami-kernel-default-arm64")
    assert run.one(LT, "k3s-server-bootstrap").inputs["imageId"].endswith("al2023-ami-kernel-default-x86_64")


def test_only_this_clusters_rules_feed_the_queue_and_the_drainer_is_scoped(dev_run):
    policy = json.loads(dev_run.one("aws:sqs/queuePolicy:QueuePolicy", "k3s-interruption-events").inputs["policy"])
    (stmt,) = policy["Statement"]
    assert stmt["Principal"] == {"Service": "events.amazonaws.com"} and stmt["Action"] == "sqs:SendMessage"
    sources = stmt["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert len(sources) == 4 and all(":rule/dev-k3s-" in s for s in sources)
    drainer = json.loads(dev_run.one("aws:iam/rolePolicy:RolePolicy", "k3s-interruption-drainer").inputs["policy"])
    by_sid = {s["Sid"]: s for s in drainer["Statement"]}
    assert by_sid["ReleaseTerminatingInstances"]["Resource"].endswith(":autoScalingGroupName/dev-k3s-k3s-*")
    assert by_sid["DecryptCredentials"]["Condition"]["StringEquals"]["kms:ViaService"] == [
        "secretsmanager.us-east-1.amazonaws.com"
    ]
    assert not any(a.endswith(":*") for s in drainer["Statement"] for a in _list(s["Action"]))


def test_k3s_instances_carry_the_cluster_ownership_tag(dev_run):
    """The cloud controller filters instances by `kubernetes.io/cluster/<id>=owned`; every node launch
    template tags it."""
    cluster = dev_run.config.cluster_name
    templates = dev_run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert templates
    for lt in templates:
        instance_tags = [
            spec["tags"] for spec in lt.inputs.get("tagSpecifications", []) if spec["resourceType"] == "instance"
        ]
        assert instance_tags, lt.name
        assert all(t.get(f"kubernetes.io/cluster/{cluster}") == "owned" for t in instance_tags), lt.name
