"""`K3sInterruptionHandling`: EventBridge (Spot interruption, rebalance, instance state, ASG
termination hook) -> SQS (SSE, DLQ) -> the node-drainer Lambda in the VPC.

The Lambda authenticates to Kubernetes as `k8s-platform:node-drainer`, a client certificate
minted by Pulumi and signed by the cluster's client CA, bound by RBAC to nodes and evictions only,
stored in Secrets Manager under a key only the Lambda's role may decrypt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.core import iam_documents as iam
from components.core.kms_keys import rotating_key
from components.k3s import policies as policies
from components.k3s.node_drainer.handler import (
    LIFECYCLE_TERMINATE,
    REBALANCE,
    SPOT_INTERRUPTION,
    STATE_CHANGE,
    STOPPING_STATES,
)
from components.k3s.pki import K3sPki

HANDLER_FILE = Path(__file__).resolve().parent / "node_drainer" / "handler.py"
DRAINER_USER = "k8s-platform:node-drainer"
MAX_RECEIVE_COUNT = 5
LAMBDA_RUNTIME = "python3.13"


def event_patterns(asg_names: list[str]) -> dict[str, dict]:
    """EventBridge patterns, one rule each. EC2 events cannot be filtered by tag: the Lambda ignores
    instances that are not nodes of this cluster (no node with their providerID)."""
    return {
        "spot-interruption": {"source": ["aws.ec2"], "detail-type": [SPOT_INTERRUPTION]},
        "rebalance": {"source": ["aws.ec2"], "detail-type": [REBALANCE]},
        "state-change": {
            "source": ["aws.ec2"],
            "detail-type": [STATE_CHANGE],
            "detail": {"state": sorted(STOPPING_STATES)},
        },
        "asg-termination": {
            "source": ["aws.autoscaling"],
            "detail-type": [LIFECYCLE_TERMINATE],
            "detail": {"AutoScalingGroupName": sorted(asg_names)},
        },
    }


def drainer_cluster_role_rules() -> list[dict]:
    """Cordon, drain (evictions), delete: nothing else, no secrets."""
    return [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    ]


@dataclass(frozen=True)
class K3sInterruptionArgs:
    """Built by `K3sCluster` from its own servers and groups, not from the stack: no `from_stack`."""

    cluster_name: str
    """Names the drainer function, its role, queues, rules and key."""
    region: str
    """The region the drainer runs in and reads its credentials from."""
    account_id: str
    """The account the key and queue policies name."""
    tags: dict[str, str]
    """Tags for every taggable resource."""
    vpc_id: pulumi.Input[str]
    """The VPC of the drainer's security group."""
    vpc_cidr: str
    """Where the drainer may connect to (the K3s API through the NLB)."""
    subnet_ids: list[pulumi.Input[str]]
    """The private subnets the drainer function runs in."""
    asg_names: list[str]
    """The Auto Scaling groups whose interruption and termination events the rules forward."""
    asg_name_prefix: str
    """The drainer's role may complete lifecycle actions only on groups with this name prefix."""
    pki: K3sPki
    """Issues the drainer's client certificate and gives the server CA it verifies the API with."""
    server_url: pulumi.Input[str]
    """The K3s API the drainer calls (through the NLB)."""
    k8s_provider: k8s.Provider
    """The cluster's provider for the drainer's ClusterRole and binding."""
    drain_timeout_seconds: int
    """`cluster.k3s.drainTimeoutSeconds`: how long a drain may take (the function's timeout adds 60 s)."""
    log_retention_days: int = 90
    """Days the drainer's log group keeps records. Default: 90, what the prod policy config requires of
    every log group (an ephemeral cluster keeps 1)."""
    secret_recovery_days: int = 7
    """Recovery window of the drainer's credentials secret. Default: 7; an ephemeral cluster's is 0 (deleted
    at once, so the next run of the same name can create it again)."""
    protect_key: bool = False
    """`protect` on the key of the drainer's credentials (`safeguards.protectStatefulResources`, like every
    KMS key of the stack). Default: not protected."""


class K3sInterruptionHandling(pulumi.ComponentResource):
    role: aws.iam.Role  # the drainer function's role
    credentials: aws.secretsmanager.Secret  # the drainer's kubeconfig
    dead_letter_queue: aws.sqs.Queue
    queue: aws.sqs.Queue  # interruption and lifecycle events
    function: aws.lambda_.Function  # the node drainer

    def __init__(self, name: str, args: K3sInterruptionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:k3s:K3sInterruptionHandling", name, None, opts)
        a, child, tags = args, pulumi.ResourceOptions(parent=self), args.tags
        function_name = f"{a.cluster_name}-node-drainer"
        lambda_timeout = min(900, a.drain_timeout_seconds + 60)

        # ---- Kubernetes identity: a client certificate + least-privilege RBAC
        cert = a.pki.client_certificate("node-drainer", DRAINER_USER)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=a.k8s_provider)
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-node-drainer",
            metadata={"name": "k8s-platform:node-drainer"},
            rules=drainer_cluster_role_rules(),
            opts=k8s_opts,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-node-drainer",
            metadata={"name": "k8s-platform:node-drainer"},
            role_ref={
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "k8s-platform:node-drainer",
            },
            subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DRAINER_USER}],
            opts=pulumi.ResourceOptions(parent=self, provider=a.k8s_provider, depends_on=[role]),
        )

        # ---- the Lambda's role first: the credentials key admits exactly it
        self.role = aws.iam.Role(
            f"{name}-drainer",
            name=f"{a.cluster_name}-node-drainer",
            assume_role_policy=iam.to_json(
                iam.service_trust(
                    "lambda.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": a.account_id}}
                )
            ),
            tags=tags,
            opts=child,
        )
        vpc_access = aws.iam.RolePolicyAttachment(
            f"{name}-drainer-vpc", role=self.role.name, policy_arn=iam.LAMBDA_VPC_POLICY_ARN, opts=child
        )
        key = rotating_key(
            f"{name}-drainer",
            alias=f"{a.cluster_name}-k3s-node-drainer",
            description=f"{a.cluster_name} node-drainer credentials",
            tags=tags,
            parent=self,
            protect=a.protect_key,
            policy=self.role.arn.apply(
                lambda arn: iam.to_json(
                    policies.drainer_key_policy(account_id=a.account_id, region=a.region, drainer_role_arn=arn)
                )
            ),
        )
        self.credentials = aws.secretsmanager.Secret(
            f"{name}-drainer",
            name=f"k8s-platform/{a.cluster_name}/k3s/node-drainer",
            kms_key_id=key.arn,
            description="Kubernetes client certificate of the node-drainer Lambda",
            recovery_window_in_days=a.secret_recovery_days,
            tags=tags,
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-drainer",
            secret_id=self.credentials.id,
            secret_string=pulumi.Output.secret(
                pulumi.Output.all(a.server_url, a.pki.server_ca_cert_pem, cert.cert_pem, cert.private_key_pem).apply(
                    lambda v: json.dumps({"server": v[0], "ca": v[1], "cert": v[2], "key": v[3]})
                )
            ),
            opts=child,
        )

        # ---- queue with a dead-letter queue
        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dlq",
            name=f"{a.cluster_name}-node-drainer-dlq",
            sqs_managed_sse_enabled=True,
            message_retention_seconds=14 * 86400,
            tags=tags,
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-events",
            name=f"{a.cluster_name}-node-drainer",
            sqs_managed_sse_enabled=True,
            message_retention_seconds=86400,
            visibility_timeout_seconds=6 * lambda_timeout,
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
            ),
            tags=tags,
            opts=child,
        )
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq",
            queue_url=self.dead_letter_queue.id,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
            ),
            opts=child,
        )

        # ---- EventBridge rules -> queue
        rules = []
        for rule_name, pattern in event_patterns(a.asg_names).items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{rule_name}",
                name=f"{a.cluster_name}-{rule_name}",
                description=f"K3s node drainer: {rule_name}",
                event_pattern=json.dumps(pattern),
                tags=tags,
                opts=child,
            )
            aws.cloudwatch.EventTarget(f"{name}-{rule_name}", rule=rule.name, arn=self.queue.arn, opts=child)
            rules.append(rule)
        aws.sqs.QueuePolicy(
            f"{name}-events",
            queue_url=self.queue.id,
            policy=pulumi.Output.all(self.queue.arn, *[r.arn for r in rules]).apply(
                lambda v: iam.to_json(policies.events_to_queue_policy(v[0], list(v[1:])))
            ),
            opts=child,
        )

        # ---- the Lambda, in the VPC (it reaches the internal NLB)
        drainer_policy = aws.iam.RolePolicy(
            f"{name}-drainer",
            role=self.role.id,
            policy=pulumi.Output.all(self.queue.arn, self.credentials.arn, key.arn).apply(
                lambda v: iam.to_json(
                    policies.drainer_policy(
                        region=a.region,
                        account_id=a.account_id,
                        queue_arn=v[0],
                        credentials_secret_arn=v[1],
                        drainer_key_arn=v[2],
                        asg_name_prefix=a.asg_name_prefix,
                    )
                )
            ),
            opts=child,
        )
        sg = aws.ec2.SecurityGroup(
            f"{name}-drainer",
            vpc_id=a.vpc_id,
            description="K3s node-drainer Lambda",
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp", from_port=6443, to_port=6443, cidr_blocks=[a.vpc_cidr], description="K3s API (NLB)"
                ),
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"], description="AWS APIs"
                ),
            ],
            tags={**tags, "Name": f"{a.cluster_name}-node-drainer"},
            opts=child,
        )
        logs = aws.cloudwatch.LogGroup(
            f"{name}-drainer",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=a.log_retention_days,
            kms_key_id=key.arn,
            tags=tags,
            opts=child,
        )
        self.function = aws.lambda_.Function(
            f"{name}-drainer",
            name=function_name,
            runtime=LAMBDA_RUNTIME,
            handler="handler.handler",
            role=self.role.arn,
            timeout=lambda_timeout,
            memory_size=256,
            code=pulumi.AssetArchive({"handler.py": pulumi.FileAsset(str(HANDLER_FILE))}),
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "CREDENTIALS_SECRET_ID": self.credentials.arn.apply(str),
                    "DRAIN_TIMEOUT_SECONDS": str(a.drain_timeout_seconds),
                }
            ),
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(subnet_ids=a.subnet_ids, security_group_ids=[sg.id]),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=logs.name),
            tags=tags,
            # Creating a VPC function needs the ENI permissions already attached.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[vpc_access, drainer_policy]),
        )
        aws.lambda_.EventSourceMapping(
            f"{name}-drainer",
            event_source_arn=self.queue.arn,
            function_name=self.function.arn,
            # One event per invocation: a failure redelivers only that event.
            batch_size=1,
            enabled=True,
            tags=tags,
            opts=child,
        )
        self.register_outputs(
            {
                "queueUrl": self.queue.id,
                "deadLetterQueueUrl": self.dead_letter_queue.id,
                "functionName": self.function.name,
            }
        )
