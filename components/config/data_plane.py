"""`k8s-platform:cluster.eks.securityGroupPolicies` and `cluster.eks.fargateProfiles`: optional EKS data-plane
pieces (components/eks/pod_security_groups.py, components/eks/fargate.py).

Cross-field rules (cluster kind, Pod Identity workloads on Fargate, trunk-ENI NodePools) live in
components/config/data_plane_rules.py.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import Model, dns_label, ipv4_network
from components.config.checks import shown
from components.config.karpenter import LABEL_KEY, LABEL_VALUE

SECURITY_GROUP_ID = re.compile(r"sg-([0-9a-f]{8}|[0-9a-f]{17})", re.ASCII)  # fullmatch
# EC2's default quota of security groups per network interface (a pod's branch ENI is one).
SECURITY_GROUPS_PER_ENI = 5
# EKS: at most 5 selectors per Fargate profile, 5 labels per selector; 10 profiles per cluster.
FARGATE_SELECTORS_MAX = 5
FARGATE_SELECTOR_LABELS_MAX = 5
FARGATE_PROFILES_MAX = 10
# A description EC2 accepts on a security group rule: 255 characters of this set.
RULE_DESCRIPTION = re.compile(r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}", re.ASCII)


def labels_problem(labels: dict[str, str]) -> str | None:
    for key, value in labels.items():
        if not LABEL_KEY.fullmatch(key) or len(key) > 316 or not LABEL_VALUE.fullmatch(value):
            return f"'{shown(key)}: {shown(value)}' is not a valid Kubernetes label"
    return None


def _selector(v: dict[str, str] | None) -> dict[str, str] | None:
    if v is None:
        return v
    if not v:
        # An empty selector matches every pod (or ServiceAccount) of the namespace: say so explicitly.
        raise ValueError(
            "an empty selector matches every pod of the namespace; name at least one label (or remove the key)"
        )
    problem = labels_problem(v)
    if problem:
        raise ValueError(problem)
    return v


class PodSecurityGroupRule(Model):
    """One rule of a security group the stack creates for the pods of a SecurityGroupPolicy."""

    protocol: Literal["tcp", "udp", "icmp", "all"] = Field(
        description="IP protocol: `tcp`, `udp`, `icmp` (every ICMP type) or `all` (every protocol and port)."
    )
    from_port: int | None = Field(
        None, ge=0, le=65535, description="First port (`tcp`/`udp`: required; refused for `icmp` and `all`)."
    )
    to_port: int | None = Field(
        None, ge=0, le=65535, description="Last port (`tcp`/`udp`); unset means `fromPort` (one port)."
    )
    cidr: str | None = Field(
        None,
        description=(
            "IPv4 CIDR the traffic comes from (ingress) or goes to (egress); exactly one of `cidr` and "
            "`securityGroupId`. `0.0.0.0/0` is refused for ingress."
        ),
    )
    security_group_id: str | None = Field(
        None,
        description=(
            "Security group the traffic comes from (ingress) or goes to (egress), like `sg-0123456789abcdef0`; "
            "exactly one of `cidr` and `securityGroupId`."
        ),
    )
    description: str | None = Field(None, description="Rule description (EC2's character set, at most 255).")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str | None) -> str | None:
        if v is not None:
            ipv4_network(v)
        return v

    @field_validator("security_group_id")
    @classmethod
    def _group(cls, v: str | None) -> str | None:
        if v is not None and not SECURITY_GROUP_ID.fullmatch(v):
            raise ValueError(f"'{shown(v)}' is not a security group id like sg-0123456789abcdef0")
        return v

    @field_validator("description")
    @classmethod
    def _description(cls, v: str | None) -> str | None:
        if v is not None and not RULE_DESCRIPTION.fullmatch(v):
            raise ValueError(
                f"'{shown(v)}': at most 255 letters, digits, spaces and ._-:/()#,@[]+=&;{{}}!$* (EC2's character set)"
            )
        return v

    @model_validator(mode="after")
    def _shape(self) -> "PodSecurityGroupRule":
        if (self.cidr is None) == (self.security_group_id is None):
            raise ValueError("give exactly one of cidr and securityGroupId (where the traffic comes from or goes to)")
        if self.protocol in ("tcp", "udp"):
            if self.from_port is None:
                raise ValueError(f"{self.protocol}: fromPort is required (toPort defaults to it)")
            if self.to_port is not None and self.to_port < self.from_port:
                raise ValueError(f"toPort {self.to_port} is below fromPort {self.from_port}")
        elif self.from_port is not None or self.to_port is not None:
            raise ValueError(f"{self.protocol}: ports do not apply (the rule covers every {self.protocol} port/type)")
        return self

    @property
    def port_range(self) -> tuple[int, int]:
        """(from, to) as EC2 takes them: -1/-1 for every ICMP type or every protocol."""
        if self.from_port is None:
            return (-1, -1)
        return (self.from_port, self.to_port if self.to_port is not None else self.from_port)

    @property
    def ip_protocol(self) -> str:
        return "-1" if self.protocol == "all" else self.protocol


class PodSecurityGroupConfig(Model):
    """A security group the stack creates for a SecurityGroupPolicy's pods, with these rules.

    Added by the stack to every created group (strict enforcing mode applies only the policy's groups
    to the pod): ingress from the node security group (kubelet probes) and DNS (TCP/UDP 53) to the node
    security group, where CoreDNS runs, which in turn admits DNS from this group."""

    ingress: list[PodSecurityGroupRule] = Field(
        default_factory=list, description="Inbound rules, besides the kubelet's probes from the nodes."
    )
    egress: list[PodSecurityGroupRule] = Field(
        default_factory=list, description="Outbound rules, besides DNS to CoreDNS on the nodes."
    )

    @field_validator("ingress")
    @classmethod
    def _no_world_ingress(cls, v: list[PodSecurityGroupRule]) -> list[PodSecurityGroupRule]:
        for rule in v:
            if rule.cidr is not None and ipaddress.ip_network(rule.cidr).prefixlen == 0:
                raise ValueError(
                    "0.0.0.0/0 opens the pods to the internet; name the load balancer's security group "
                    "or a narrower CIDR"
                )
        return v


class SecurityGroupPolicyConfig(Model):
    """One `SecurityGroupPolicy` (vpcresources.k8s.aws/v1beta1): the pods it selects get a branch ENI
    with these security groups instead of the node's."""

    name: str = Field(description="Policy name, a DNS label; distinct within its namespace.")
    namespace: str = Field(description="Namespace of the policy and of the pods it selects (a DNS label).")
    pod_selector: dict[str, str] | None = Field(
        None,
        description=(
            "Labels a pod must carry (`matchLabels`); at least one of `podSelector` and `serviceAccountSelector`, "
            "and a pod must match every selector given."
        ),
    )
    service_account_selector: dict[str, str] | None = Field(
        None, description="Labels the pod's ServiceAccount must carry (`matchLabels`)."
    )
    security_group_ids: list[str] = Field(
        default_factory=list,
        description=(
            "Existing security groups (`sg-...`) for the pods, distinct; with `securityGroup`, at most 5 in all "
            "(EC2's default per network interface)."
        ),
    )
    security_group: PodSecurityGroupConfig | None = Field(
        None,
        description=(
            "A security group the stack creates for the pods, with these rules (plus kubelet probes from, and "
            "DNS to, the nodes); at least one of `securityGroupIds` and `securityGroup`."
        ),
    )

    _names = field_validator("name", "namespace")(classmethod(lambda cls, v: dns_label(v)))
    _selectors = field_validator("pod_selector", "service_account_selector")(classmethod(lambda cls, v: _selector(v)))

    @field_validator("security_group_ids")
    @classmethod
    def _groups(cls, v: list[str]) -> list[str]:
        for group in v:
            if not SECURITY_GROUP_ID.fullmatch(group):
                raise ValueError(f"'{shown(group)}' is not a security group id like sg-0123456789abcdef0")
        if len(set(v)) != len(v):
            raise ValueError("security group ids must be distinct")
        return v

    @model_validator(mode="after")
    def _complete(self) -> "SecurityGroupPolicyConfig":
        if self.pod_selector is None and self.service_account_selector is None:
            raise ValueError(
                "give podSelector and/or serviceAccountSelector (a policy without a selector matches no pod)"
            )
        if not self.security_group_ids and self.security_group is None:
            raise ValueError("give securityGroupIds and/or securityGroup (the groups the pods get)")
        count = len(self.security_group_ids) + (1 if self.security_group is not None else 0)
        if count > SECURITY_GROUPS_PER_ENI:
            raise ValueError(
                f"{count} security groups; a pod's network interface takes at most {SECURITY_GROUPS_PER_ENI} "
                "(EC2's default quota)"
            )
        return self


class FargateSelectorConfig(Model):
    """Which pods run on Fargate: those created in `namespace` carrying every label in `labels`."""

    namespace: str = Field(description="Namespace of the pods (a DNS label; wildcards are not accepted).")
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels a pod must carry as well (at most 5); empty means every pod of the namespace.",
    )

    _namespace = field_validator("namespace")(classmethod(lambda cls, v: dns_label(v)))

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > FARGATE_SELECTOR_LABELS_MAX:
            raise ValueError(f"{len(v)} labels; EKS takes at most {FARGATE_SELECTOR_LABELS_MAX} per selector")
        problem = labels_problem(v)
        if problem:
            raise ValueError(problem)
        return v


class FargateProfileConfig(Model):
    """One Fargate profile: pods matching a selector when they are scheduled run on Fargate, in the private
    subnets, with the stack's pod execution role (no DaemonSets there, VPC CNI only, no Pod Identity)."""

    name: str = Field(description="Profile name, a DNS label of at most 63 characters; distinct.")
    selectors: list[FargateSelectorConfig] = Field(
        description="Pod selectors, 1-5; a pod matching any of them runs on Fargate."
    )

    _name = field_validator("name")(classmethod(lambda cls, v: dns_label(v)))

    @field_validator("selectors")
    @classmethod
    def _selectors(cls, v: list[FargateSelectorConfig]) -> list[FargateSelectorConfig]:
        if not 1 <= len(v) <= FARGATE_SELECTORS_MAX:
            raise ValueError(f"{len(v)} selectors; a Fargate profile takes 1 to {FARGATE_SELECTORS_MAX}")
        seen = [(s.namespace, tuple(sorted(s.labels.items()))) for s in v]
        if len(set(seen)) != len(seen):
            raise ValueError("selectors must be distinct")
        return v
