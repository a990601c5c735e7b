"""What `aws sts get-caller-identity` returns inside a workload's pod, per binding method (pure).

The role part is exact; the session part is exact where this platform chooses it (Roles
Anywhere: `--role-session-name <workload>`) and otherwise the documented form with `<...>`
placeholders for what is chosen at run time:

- pod-identity: EKS names the session `eks-<cluster>-<pod>-<uuid>`.
- irsa: the SDK names it (boto3/CLI `botocore-session-<unix time>`; Go/Java a timestamp);
  set AWS_ROLE_SESSION_NAME in the pod to choose it.
- instance-profile: EC2 names the node role's session after the instance id.
- cross-account: after the hop, the target account's role with the session name the workload passes.
"""

from __future__ import annotations

from components.config import WorkloadMethod


def assumed_role_arn(account_id: str, role_name: str, session_name: str) -> str:
    return f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}"


def session_name(method: WorkloadMethod, *, cluster_name: str, workload_name: str) -> str:
    if method == "pod-identity":
        return f"eks-{cluster_name}-<pod-name>-<uuid>"
    if method == "irsa":
        return "<sdk-session-name>"
    if method == "roles-anywhere":
        return workload_name
    if method == "instance-profile":
        return "<instance-id>"
    raise ValueError(f"unknown method {method}")


def expected_caller_identity(
    method: WorkloadMethod, *, account_id: str, role_name: str, cluster_name: str, workload_name: str
) -> str:
    """The ARN for the workload's own role (for instance-profile: the node role's name)."""
    return assumed_role_arn(
        account_id, role_name, session_name(method, cluster_name=cluster_name, workload_name=workload_name)
    )


def cross_account_caller_identity(target_role_arn: str) -> str:
    """`arn:aws:iam::<acct>:role/<path/>name` -> the assumed-role ARN after `sts:AssumeRole` into it."""
    account_id = target_role_arn.split(":")[4]
    role_name = target_role_arn.split(":role/", 1)[1].rsplit("/", 1)[-1]  # paths are not part of the session ARN
    return assumed_role_arn(account_id, role_name, "<session-name-passed-to-AssumeRole>")


# EKS names the target-role session itself; its form is not documented.
EKS_TARGET_SESSION = "<session-name-set-by-eks>"


def native_target_caller_identity(target_role_arn: str) -> str:
    """A `native` cross-account workload: the pod's credentials are the target role's session."""
    account_id = target_role_arn.split(":")[4]
    role_name = target_role_arn.split(":role/", 1)[1].rsplit("/", 1)[-1]
    return assumed_role_arn(account_id, role_name, EKS_TARGET_SESSION)
