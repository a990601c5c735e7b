"""`PodSecurityGroups`: EKS security groups for pods, one `SecurityGroupPolicy` per
`cluster.eks.securityGroupPolicies` entry, plus the security groups the stack creates for them.

How it works on EKS: with `ENABLE_POD_ENI` on the VPC CNI (`components/eks/addons.py`, set only when a
policy is configured) aws-node labels trunk-capable nodes, and the VPC resource controller, running
in the control plane under the cluster role (which then carries `AmazonEKSVPCResourceController`),
attaches a trunk ENI to each of them. A pod that a policy selects gets a branch ENI with the policy's
groups (its webhook adds a `vpc.amazonaws.com/pod-eni` request, so the pod lands only on nodes with a
trunk: NodePools for such pods are limited to trunk-ENI types, `components/karpenter/specs.py`).

Strict enforcing mode applies only the policy's groups to the pod, so a created group always gets:
ingress from the node security group (kubelet probes; `DISABLE_TCP_EARLY_DEMUX` makes them work),
egress TCP/UDP 53 to the node security group, and the node security group admits DNS from the
group (CoreDNS's pods use the node group through the ENIConfigs). The user's rules come on top.

The SecurityGroupPolicy CRD is part of every EKS cluster (the VPC resource controller's); the
objects are rendered by `security_group_policy_manifest` (pure) and checked against the upstream CRD
in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.config import StackConfig
from components.config.data_plane import PodSecurityGroupRule, SecurityGroupPolicyConfig
from components.core.cluster_handle import ClusterHandle

SECURITY_GROUP_POLICY_API_VERSION = "vpcresources.k8s.aws/v1beta1"
SECURITY_GROUP_POLICY_KIND = "SecurityGroupPolicy"
DNS_PORT = 53
# Namespaces Kubernetes creates itself (no Namespace resource for them).
BUILTIN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


def security_group_policy_manifest(policy: SecurityGroupPolicyConfig, group_ids: list[Any]) -> dict[str, Any]:
    """The SecurityGroupPolicy object (apiVersion .. spec) as the API server receives it. `group_ids`:
    the existing groups and the created one (may hold Outputs: placed as given)."""
    spec: dict[str, Any] = {"securityGroups": {"groupIds": list(group_ids)}}
    if policy.pod_selector is not None:
        spec["podSelector"] = {"matchLabels": dict(policy.pod_selector)}
    if policy.service_account_selector is not None:
        spec["serviceAccountSelector"] = {"matchLabels": dict(policy.service_account_selector)}
    return {
        "apiVersion": SECURITY_GROUP_POLICY_API_VERSION,
        "kind": SECURITY_GROUP_POLICY_KIND,
        "metadata": {
            "name": policy.name,
            "namespace": policy.namespace,
            "labels": {"app.kubernetes.io/managed-by": "pulumi"},
        },
        "spec": spec,
    }


def rule_arguments(rule: PodSecurityGroupRule) -> dict[str, Any]:
    """The `aws.vpc.SecurityGroup{Ingress,Egress}Rule` arguments of one configured rule (pure)."""
    from_port, to_port = rule.port_range
    args: dict[str, Any] = {"ip_protocol": rule.ip_protocol}
    if rule.ip_protocol != "-1":
        args.update(from_port=from_port, to_port=to_port)
    if rule.cidr is not None:
        args["cidr_ipv4"] = rule.cidr
    else:
        args["referenced_security_group_id"] = rule.security_group_id
    if rule.description:
        args["description"] = rule.description
    return args


@dataclass(frozen=True)
class PodSecurityGroupsArgs:
    policies: tuple[SecurityGroupPolicyConfig, ...]
    """The `cluster.eks.securityGroupPolicies` entries, at least one."""
    cluster: ClusterHandle
    """The EKS cluster: its Kubernetes provider, its node security group and `ready` (system nodes)."""
    vpc_id: pulumi.Input[str]
    """The VPC of the created security groups."""
    cluster_name: str
    """Names the created groups."""
    tags: dict[str, str]
    """Tags for every created group and rule."""
    after: tuple[pulumi.Resource, ...] = ()
    """What must exist before the policies (the workload identities, which create their namespaces).
    Default: nothing beyond the cluster's `ready`."""
    namespaces_created_elsewhere: frozenset[str] = frozenset()
    """Namespaces another component creates (workload namespaces); the others are created here.
    Default: none."""

    @classmethod
    def from_stack(
        cls,
        cfg: StackConfig,
        cluster: ClusterHandle,
        vpc_id: pulumi.Input[str],
        after: tuple[pulumi.Resource, ...] = (),
    ) -> "PodSecurityGroupsArgs":
        return cls(
            policies=tuple(cfg.cluster.eks.security_group_policies),
            cluster=cluster,
            vpc_id=vpc_id,
            cluster_name=cfg.cluster_name,
            tags=cfg.resource_tags(),
            after=tuple(after),
            namespaces_created_elsewhere=frozenset(w.namespace for w in cfg.workloads),
        )


class PodSecurityGroups(pulumi.ComponentResource):
    security_groups: dict[str, aws.ec2.SecurityGroup]  # created groups, by `<namespace>/<policy name>`
    policies: dict[str, k8s.apiextensions.CustomResource]  # by `<namespace>/<policy name>`
    group_ids: dict[str, pulumi.Output[list[str]]]  # every group a policy's pods get, by `<namespace>/<name>`

    def __init__(self, name: str, args: PodSecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:eks:PodSecurityGroups", name, None, opts)
        if args.cluster.kind != "eks":
            raise ValueError(f"{name}: security groups for pods need an EKS cluster (VPC CNI trunk ENIs)")
        self._name, self._args = name, args
        self.security_groups, self.policies, self.group_ids = {}, {}, {}
        k8s_depends = [*args.cluster.ready, *args.after]
        namespaces: dict[str, k8s.core.v1.Namespace] = {}
        for policy in args.policies:
            key = f"{policy.namespace}/{policy.name}"
            ids: list[pulumi.Input[str]] = list(policy.security_group_ids)
            if policy.security_group is not None:
                group = self._group(policy)
                self.security_groups[key] = group
                ids.append(group.id)
            self.group_ids[key] = pulumi.Output.all(*ids).apply(list)
            depends = list(k8s_depends)
            if policy.namespace not in BUILTIN_NAMESPACES | args.namespaces_created_elsewhere:
                if policy.namespace not in namespaces:
                    namespaces[policy.namespace] = k8s.core.v1.Namespace(
                        f"{name}-namespace-{policy.namespace}",
                        metadata={"name": policy.namespace, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
                        # The application's pods live here too: dropping the policy must not delete them.
                        opts=pulumi.ResourceOptions(
                            parent=self,
                            provider=args.cluster.k8s_provider,
                            depends_on=list(k8s_depends),
                            retain_on_delete=True,
                        ),
                    )
                depends.append(namespaces[policy.namespace])
            manifest = security_group_policy_manifest(policy, ["(resolved at deploy time)"])
            spec = {**manifest["spec"], "securityGroups": {"groupIds": self.group_ids[key]}}
            self.policies[key] = k8s.apiextensions.CustomResource(
                f"{name}-{policy.namespace}-{policy.name}",
                api_version=manifest["apiVersion"],
                kind=manifest["kind"],
                metadata=manifest["metadata"],
                spec=spec,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.cluster.k8s_provider,
                    depends_on=[*depends, *([self.security_groups[key]] if key in self.security_groups else [])],
                ),
            )
        self.register_outputs({"securityGroupIds": self.group_ids})

    def _group(self, policy: SecurityGroupPolicyConfig) -> aws.ec2.SecurityGroup:
        a, child = self._args, pulumi.ResourceOptions(parent=self)
        assert policy.security_group is not None
        base = f"{self._name}-{policy.namespace}-{policy.name}"
        nodes = a.cluster.node_security_group_id
        group = aws.ec2.SecurityGroup(
            base,
            vpc_id=a.vpc_id,
            description=f"{a.cluster_name} pods of SecurityGroupPolicy {policy.namespace}/{policy.name}",
            revoke_rules_on_delete=True,
            tags={**a.tags, "Name": f"{a.cluster_name}-pods-{policy.namespace}-{policy.name}"},
            opts=child,
        )

        def rule(kind: str, rule_name: str, **kwargs: Any) -> None:
            cls = aws.vpc.SecurityGroupIngressRule if kind == "ingress" else aws.vpc.SecurityGroupEgressRule
            cls(f"{base}-{rule_name}", tags=a.tags, opts=child, **kwargs)

        rule(
            "ingress",
            "probes-from-nodes",
            security_group_id=group.id,
            referenced_security_group_id=nodes,
            ip_protocol="tcp",
            from_port=0,
            to_port=65535,
            description="kubelet probes from the nodes",
        )
        for protocol in ("udp", "tcp"):
            rule(
                "egress",
                f"dns-{protocol}",
                security_group_id=group.id,
                referenced_security_group_id=nodes,
                ip_protocol=protocol,
                from_port=DNS_PORT,
                to_port=DNS_PORT,
                description="DNS to CoreDNS on the nodes",
            )
            rule(
                "ingress",
                f"nodes-dns-{protocol}",
                security_group_id=nodes,
                referenced_security_group_id=group.id,
                ip_protocol=protocol,
                from_port=DNS_PORT,
                to_port=DNS_PORT,
                description=f"DNS from the pods of {policy.namespace}/{policy.name}",
            )
        for i, configured in enumerate(policy.security_group.ingress):
            rule("ingress", f"ingress-{i}", security_group_id=group.id, **rule_arguments(configured))
        for i, configured in enumerate(policy.security_group.egress):
            rule("egress", f"egress-{i}", security_group_id=group.id, **rule_arguments(configured))
        return group
