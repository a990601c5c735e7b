"""One way to make a customer-managed KMS key: rotation on, 30-day deletion window, an alias.

Every key of the platform (EKS secrets, flow logs, K3s PKI and tokens, node volumes, drainer
credentials) comes from here, so the guardrails `kms-key-rotation` checks hold by construction.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

DELETION_WINDOW_DAYS = 30  # the maximum: time to notice a mistaken deletion before data is lost


def rotating_key(
    name: str,
    *,
    alias: str,
    description: str,
    policy: pulumi.Input[str],
    tags: dict[str, str],
    parent: pulumi.Resource,
    protect: bool = False,
) -> aws.kms.Key:
    """A symmetric key with yearly rotation and `alias/<alias>`; `protect` for keys whose loss loses data."""
    key = aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=DELETION_WINDOW_DAYS,
        policy=policy,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )
    aws.kms.Alias(name, name=f"alias/{alias}", target_key_id=key.key_id, opts=pulumi.ResourceOptions(parent=parent))
    return key
