"""Pure IAM and KMS documents of the K3s cluster: node roles, the drainer Lambda, key policies.

Every grant names its resources and, for KMS, the service it must come through
(`kms:ViaService`), so a decrypt permission cannot be used outside SSM / Secrets Manager / S3.
"""

from __future__ import annotations

from typing import Any

from components.core.iam_documents import (
    deny_insecure_transport,
    document,
    kms_key_policy,
    logs_kms_statement,
    ssm_parameter_arn,
    statement,
)

KMS_DECRYPT = ["kms:Decrypt"]
KMS_ENCRYPT = ["kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"]


def via(region: str, *services: str) -> dict[str, dict[str, Any]]:
    return {"StringEquals": {"kms:ViaService": [f"{s}.{region}.amazonaws.com" for s in services]}}


def parameter_arn(region: str, account_id: str, name: str) -> str:
    return ssm_parameter_arn(name, region, account_id)


def server_policy(
    *,
    region: str,
    account_id: str,
    token_parameters: list[str],
    pki_secret_arn: str,
    secrets_key_arn: str,
    join_key_arn: str,
    snapshot_bucket_arn: str | None,
) -> dict[str, Any]:
    """Servers: read both join tokens and the PKI bundle, write/read etcd snapshots. Nothing else.
    `snapshot_bucket_arn` None: an external datastore, no etcd (no snapshots, no cluster-init check)."""
    etcd = (
        [
            statement("s3:ListBucket", snapshot_bucket_arn, sid="ListSnapshots"),
            statement(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], f"{snapshot_bucket_arn}/*", sid="Snapshots"),
            statement(KMS_ENCRYPT, secrets_key_arn, conditions=via(region, "s3"), sid="SnapshotEncryption"),
            # The bootstrap server's check for live peers before cluster-init; ELBv2 Describe* actions
            # support no resource-level permissions.
            statement("elasticloadbalancing:DescribeTargetHealth", "*", sid="ApiTargetHealth"),
        ]
        if snapshot_bucket_arn is not None
        else []
    )
    return document(
        statement(
            "ssm:GetParameter", [parameter_arn(region, account_id, n) for n in token_parameters], sid="JoinTokens"
        ),
        statement("secretsmanager:GetSecretValue", pki_secret_arn, sid="PkiBundle"),
        statement(
            KMS_DECRYPT,
            [secrets_key_arn, join_key_arn],
            conditions=via(region, "ssm", "secretsmanager"),
            sid="DecryptServerSecrets",
        ),
        *etcd,
    )


def agent_policy(*, region: str, account_id: str, agent_token_parameter: str, join_key_arn: str) -> dict[str, Any]:
    """Agents (and Karpenter nodes using the same role): the agent token, nothing of the servers'."""
    return document(
        statement("ssm:GetParameter", parameter_arn(region, account_id, agent_token_parameter), sid="AgentToken"),
        statement(KMS_DECRYPT, join_key_arn, conditions=via(region, "ssm"), sid="DecryptAgentToken"),
    )


def server_secrets_key_policy(
    *, account_id: str, region: str, server_role_arn: str, denied_role_arns: list[str]
) -> dict[str, Any]:
    """The PKI/server-token/snapshot key: only the server role may decrypt among cluster roles.

    The account keeps administering the key through IAM (no lock-out); the explicit deny makes sure
    no later IAM grant lets agents or the drainer read the cluster's private keys.
    """
    stmts = [
        statement(
            KMS_ENCRYPT,
            "*",
            principal={"AWS": server_role_arn},
            conditions=via(region, "ssm", "secretsmanager", "s3"),
            sid="ServerRoleReadsServerSecrets",
        )
    ]
    if denied_role_arns:
        stmts.append(
            statement(
                KMS_DECRYPT, "*", effect="Deny", principal={"AWS": denied_role_arns}, sid="NoOtherClusterRoleDecrypts"
            )
        )
    return kms_key_policy(account_id, *stmts)


def join_key_policy(*, account_id: str, region: str, server_role_arn: str, agent_role_arn: str) -> dict[str, Any]:
    return kms_key_policy(
        account_id,
        statement(
            KMS_DECRYPT,
            "*",
            principal={"AWS": [server_role_arn, agent_role_arn]},
            conditions=via(region, "ssm"),
            sid="NodesReadAgentToken",
        ),
    )


def snapshot_bucket_policy(bucket_arn: str) -> dict[str, Any]:
    """TLS only."""
    return document(deny_insecure_transport("s3:*", [bucket_arn, f"{bucket_arn}/*"]))


def drainer_policy(
    *,
    region: str,
    account_id: str,
    queue_arn: str,
    credentials_secret_arn: str,
    drainer_key_arn: str,
    asg_name_prefix: str,
) -> dict[str, Any]:
    """The drainer Lambda: its queue, its credentials, instance lookups and its ASGs' lifecycle hooks."""
    return document(
        statement(
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
            queue_arn,
            sid="InterruptionQueue",
        ),
        statement("secretsmanager:GetSecretValue", credentials_secret_arn, sid="DrainerCredentials"),
        statement(KMS_DECRYPT, drainer_key_arn, conditions=via(region, "secretsmanager"), sid="DecryptCredentials"),
        # DescribeInstances supports no resource-level permissions.
        statement("ec2:DescribeInstances", "*", sid="FindNodeOfInstance"),
        statement(
            "autoscaling:CompleteLifecycleAction",
            f"arn:aws:autoscaling:{region}:{account_id}:autoScalingGroup:*:autoScalingGroupName/{asg_name_prefix}*",
            sid="ReleaseTerminatingInstances",
        ),
    )


def drainer_key_policy(*, account_id: str, region: str, drainer_role_arn: str) -> dict[str, Any]:
    """The drainer's credentials (decrypted by its role only) and its log group (CloudWatch Logs)."""
    return kms_key_policy(
        account_id,
        statement(
            KMS_DECRYPT,
            "*",
            principal={"AWS": drainer_role_arn},
            conditions=via(region, "secretsmanager"),
            sid="DrainerReadsItsCredentials",
        ),
        logs_kms_statement(account_id, region),
    )


def events_to_queue_policy(queue_arn: str, rule_arns: list[str]) -> dict[str, Any]:
    """Only this cluster's EventBridge rules may send to the interruption queue."""
    return document(
        statement(
            "sqs:SendMessage",
            queue_arn,
            principal={"Service": "events.amazonaws.com"},
            conditions={"ArnEquals": {"aws:SourceArn": rule_arns}},
            sid="ClusterEventRules",
        )
    )
