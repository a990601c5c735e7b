"""Cross-field rules of the optional EKS data-plane pieces (pure; run by `StackConfig` validation).

- security groups for pods: policies distinct per namespace; in strict enforcing mode no policy may
  select a Pod Identity workload's pods (a branch-ENI pod cannot reach the node's Pod Identity agent:
  aws/amazon-vpc-cni-k8s#2797); a NodePool marked `securityGroupsForPods`
  needs an EKS cluster with at least one policy, and must admit at least one trunk-ENI instance type;
- Fargate profiles: distinct names, at most 10; a profile must not select the namespace of a workload
  whose credentials Fargate cannot deliver (Pod Identity, the node's instance profile) nor kube-system
  (the platform's controllers there use Pod Identity, and its DaemonSets cannot run on Fargate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

from components.config.data_plane import FARGATE_PROFILES_MAX
from components.config.karpenter_rules import pool_shape
from components.core.max_pods import INSTANCE_LIMITS, max_pods
from components.core.pool_capacity import admitted_instance_types
from components.core.trunk_eni import supports_trunk_eni

if TYPE_CHECKING:
    from components.config.data_plane import SecurityGroupPolicyConfig
    from components.config.identity import WorkloadConfig
    from components.config.karpenter import KarpenterNodePoolConfig
    from components.config.stack import StackConfig

KUBE_SYSTEM = "kube-system"


def trunk_eni_instance_types(pool: "KarpenterNodePoolConfig") -> list[str]:
    """The instance types a pool admits (ENI table) that support trunk ENIs, sorted: what a
    `securityGroupsForPods` pool may launch."""
    return [r.instance_type for r in admitted_instance_types(pool_shape(pool)) if supports_trunk_eni(r.instance_type)]


def trunk_pod_capacity(instance_type: str) -> int:
    """maxPods of a trunk node under prefix delegation and custom networking: the trunk ENI takes one of
    the ENI slots the secondary (pod) ENIs would otherwise use."""
    limits = INSTANCE_LIMITS[instance_type]
    with_trunk = dataclasses.replace(limits, max_enis=max(limits.max_enis - 1, 1))
    return max_pods(with_trunk, prefix_delegation=True, custom_networking=True)


def workload_service_account_labels(workload: "WorkloadConfig") -> dict[str, str]:
    """The labels the stack puts on a workload's ServiceAccount (components/identity/workloads.py; a test
    holds the two together)."""
    return {
        "app.kubernetes.io/managed-by": "pulumi",
        "k8s-platform/workload": workload.name,
        "k8s-platform/identity": workload.method,
    }


def may_select(policy: "SecurityGroupPolicyConfig", workload: "WorkloadConfig") -> bool:
    """Whether a policy can select the workload's pods: same namespace, and a ServiceAccount selector (if
    any) that the workload's ServiceAccount labels satisfy. Pod labels are the application's: unknown."""
    if policy.namespace != workload.namespace:
        return False
    selector = policy.service_account_selector
    labels = workload_service_account_labels(workload)
    return selector is None or all(labels.get(k) == v for k, v in selector.items())


def security_group_policy_problems(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    policies = cfg.cluster.eks.security_group_policies if cfg.cluster.kind == "eks" else []
    seen: set[tuple[str, str]] = set()
    strict = cfg.cluster.eks.pod_security_group_enforcing_mode == "strict"
    for i, policy in enumerate(policies):
        if (policy.namespace, policy.name) in seen:
            yield (
                f"cluster.eks.securityGroupPolicies.{i}.name",
                f"'{policy.namespace}/{policy.name}' is defined twice; policy names are distinct per namespace",
            )
        seen.add((policy.namespace, policy.name))
        for w in cfg.workloads if strict else []:
            if w.method == "pod-identity" and may_select(policy, w):
                yield (
                    f"cluster.eks.securityGroupPolicies.{i}",
                    f"policy '{policy.namespace}/{policy.name}' may select pods of workload '{w.name}', which uses "
                    "Pod Identity: in strict enforcing mode a pod with its own security groups cannot reach the "
                    "Pod Identity agent on its node, so it would get no AWS credentials. Set "
                    "cluster.eks.podSecurityGroupEnforcingMode: standard, use `method: irsa` for the workload, or "
                    "select pods by a ServiceAccount label its ServiceAccount does not carry (it carries "
                    f"k8s-platform/workload: {w.name})",
                )
    if not cfg.karpenter.enabled:
        return
    for i, pool in enumerate(cfg.karpenter.node_pools):
        if not pool.security_groups_for_pods:
            continue
        key = f"karpenter.nodePools.{i}.securityGroupsForPods"
        if cfg.cluster.kind != "eks":
            yield (
                key,
                "security groups for pods are an EKS feature (trunk ENIs of the VPC CNI); K3s pods live on "
                "flannel's overlay: remove the key",
            )
        elif not policies:
            yield (
                key,
                f"pool '{pool.name}' is reserved for security-group pods but cluster.eks.securityGroupPolicies is "
                "empty; add a policy or remove the key",
            )
        elif not trunk_eni_instance_types(pool):
            yield (
                key,
                f"pool '{pool.name}' admits no instance type that supports trunk ENIs "
                "(components/data/trunk_eni_instance_types.json); widen its categories, families or sizes",
            )
        else:
            node_class = next((nc for nc in cfg.karpenter.node_classes if nc.name == pool.node_class), None)
            if node_class is None:
                continue  # reported by the Karpenter rules
            short = min(trunk_eni_instance_types(pool), key=lambda t: (trunk_pod_capacity(t), t))
            if trunk_pod_capacity(short) < node_class.max_pods:
                yield (
                    f"karpenter.nodePools.{i}.instanceSizes",
                    f"pool '{pool.name}' allows {short}, which with its trunk ENI holds at most "
                    f"{trunk_pod_capacity(short)} pods under prefix delegation with custom networking, below "
                    f"maxPods {node_class.max_pods} of node class '{node_class.name}'; allow only larger sizes or "
                    "lower the node class's maxPods",
                )


def fargate_problems(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    if cfg.cluster.kind != "eks":
        return
    profiles = cfg.cluster.eks.fargate_profiles
    if len(profiles) > FARGATE_PROFILES_MAX:
        yield (
            "cluster.eks.fargateProfiles",
            f"{len(profiles)} profiles; EKS allows at most {FARGATE_PROFILES_MAX} per cluster",
        )
    names: set[str] = set()
    workloads = {}
    for w in cfg.workloads:
        workloads.setdefault(w.namespace, []).append(w)
    for i, profile in enumerate(profiles):
        key = f"cluster.eks.fargateProfiles.{i}"
        if profile.name in names:
            yield f"{key}.name", f"'{profile.name}' is defined twice; Fargate profile names must be distinct"
        names.add(profile.name)
        for j, selector in enumerate(profile.selectors):
            where = f"{key}.selectors.{j}.namespace"
            if selector.namespace == KUBE_SYSTEM:
                yield (
                    where,
                    "kube-system runs the platform's controllers, which get AWS credentials through EKS Pod "
                    "Identity (not available on Fargate), and DaemonSets (which Fargate cannot run); select "
                    "your own namespaces",
                )
                continue
            # A workload's pods carry labels the workload declaration does not know: any selector on
            # its namespace may match them, so the namespace decides.
            for w in workloads.get(selector.namespace, []):
                if w.method == "pod-identity":
                    yield (
                        where,
                        f"profile '{profile.name}' would run pods of workload '{w.name}' "
                        f"({w.namespace}/{w.service_account}), which uses Pod Identity: Fargate has no Pod "
                        "Identity agent, so its pods would get no AWS credentials. Use `method: irsa` for that "
                        "workload (IRSA works on Fargate: the role trusts the cluster's OIDC issuer), or select "
                        "another namespace",
                    )
                elif w.method == "instance-profile":
                    yield (
                        where,
                        f"profile '{profile.name}' would run pods of workload '{w.name}' "
                        f"({w.namespace}/{w.service_account}), which takes the node's instance profile: Fargate "
                        "pods have no node role. Use `method: irsa` for that workload, or select another namespace",
                    )


def data_plane_problems(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    yield from security_group_policy_problems(cfg)
    yield from fargate_problems(cfg)
