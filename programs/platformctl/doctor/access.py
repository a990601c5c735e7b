"""EKS access: the admin and break-glass access entries exist with the cluster-admin policy, and the
authentication mode is the configured one (an RBAC lockout after a mode flip starts here)."""

from __future__ import annotations

from components.eks.access import CLUSTER_ADMIN_POLICY
from programs.platformctl.doctor.framework import Check, Context, Result, fail, ok, warn


def access_entries(ctx: Context) -> Result:
    eks, name = ctx.aws("eks"), ctx.cluster_name
    access = ctx.config.cluster.eks.access
    queried = [f"eks:DescribeCluster {name}", f"eks:ListAccessEntries {name}"]
    mode = (eks.describe_cluster(name=name)["cluster"].get("accessConfig") or {}).get("authenticationMode")
    entries = set()
    for page in eks.get_paginator("list_access_entries").paginate(clusterName=name):
        entries.update(page["accessEntries"])
    wanted = [*access.admin_role_arns, *([access.break_glass_role_arn] if access.break_glass_role_arn else [])]
    findings = []
    for arn in wanted:
        if arn not in entries:
            findings.append(f"{arn}: no access entry")
            continue
        queried.append(f"eks:ListAssociatedAccessPolicies {arn}")
        policies = eks.list_associated_access_policies(clusterName=name, principalArn=arn)["associatedAccessPolicies"]
        if not any(p["policyArn"] == CLUSTER_ADMIN_POLICY and p["accessScope"]["type"] == "cluster" for p in policies):
            findings.append(f"{arn}: access entry without AmazonEKSClusterAdminPolicy on the cluster scope")
    if findings:
        return fail(
            f"{len(findings)} of {len(wanted)} admin/break-glass principals cannot administer the "
            f"cluster (authentication mode {mode})",
            queried,
            findings,
        )
    configured = ctx.config.cluster.eks.authentication_mode
    if mode != configured:
        return warn(f"authentication mode is {mode}, the stack configures {configured}", queried)
    if mode == "API_AND_CONFIG_MAP":
        return warn(
            "authentication mode API_AND_CONFIG_MAP: aws-auth still grants access; move its "
            "principals to access entries, then set API",
            queried,
        )
    return ok(f"authentication mode {mode}; {len(wanted)} admin/break-glass entries with cluster admin", queried)


CHECKS = [
    Check(
        "eks-access-entries",
        "every admin gets Unauthorized after an auth-mode change (RBAC lockout)",
        "aws eks describe-cluster --name <cluster> --query cluster.accessConfig; "
        "aws eks list-access-entries --cluster-name <cluster>",
        "recreate the access entry with AmazonEKSClusterAdminPolicy (pulumi up restores declared entries); "
        "sign in as the break-glass role; keep API_AND_CONFIG_MAP until aws-auth readers are migrated",
        ("eks",),
        access_entries,
    ),
]
