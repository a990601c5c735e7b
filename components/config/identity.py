"""`k8s-platform:identity` and `k8s-platform:workloads`: the IRSA issuer(s) and one identity per workload.

Cross-field rules live in components/config/identity_rules.py."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import Model, dns_label, iam_role_arn, short_dns_label
from components.config.checks import IAM_POLICY_ARN, RESOURCE_ARN, SID, bucket_name_problem, shown
from components.core.oidc_hosting import (
    HOSTNAME,
    cloudfront_issuer_url,
    default_bucket_name,
    s3_issuer_url,
)

WorkloadMethod = Literal["pod-identity", "irsa", "roles-anywhere", "instance-profile"]
IAM_ACTION = re.compile(r"[a-z0-9-]{1,64}:[A-Za-z0-9*]{1,128}", re.ASCII)  # fullmatch
CONDITION_OPERATOR = re.compile(r"((ForAllValues|ForAnyValue):)?[A-Za-z]{2,64}", re.ASCII)  # fullmatch
CONDITION_KEY = re.compile(r"[A-Za-z0-9-]{1,64}:[A-Za-z0-9/_.:*-]{1,128}", re.ASCII)  # fullmatch
ACM_CLOUDFRONT_CERT = re.compile(
    r"arn:aws:acm:us-east-1:[0-9]{12}:certificate/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
    r"[0-9a-f]{4}-[0-9a-f]{12}",
    re.ASCII,
)  # fullmatch; CloudFront: us-east-1 only


class IssuerConfig(Model):
    """One published OIDC issuer of a K3s cluster: `s3-public` bucket or `cloudfront` + custom domain."""

    name: str = Field(
        "primary", description=("Issuer name, a DNS label of at most 12 characters (part of the bucket name).")
    )
    hosting: Literal["s3-public", "cloudfront"] = Field(
        "s3-public",
        description=(
            "Where the discovery document and JWKS are published: a public-read S3 bucket, or CloudFront with a "
            "custom domain (needs `domainName` and `certificateArn`)."
        ),
    )
    bucket_name: str | None = Field(
        None,
        description=(
            "The issuer bucket, 3-63 lowercase letters, digits and `-` (no dots); unset means "
            "`<cluster>-oidc-<accountId>` for `primary`, `<cluster>-oidc-<name>-<accountId>` for others."
        ),
    )
    domain_name: str | None = Field(
        None, description=("`cloudfront` only: the issuer host name, which stays when the distribution is replaced.")
    )
    certificate_arn: str | None = Field(
        None,
        description=(
            "`cloudfront` only: ACM certificate ARN for `domainName`, in us-east-1 (the only region CloudFront uses)."
        ),
    )
    hosted_zone_id: str | None = Field(
        None,
        description=(
            "`cloudfront` only: Route 53 hosted zone that gets the alias record; unset means you create the record."
        ),
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return short_dns_label(v, 12, "it is part of the bucket name")

    @field_validator("bucket_name")
    @classmethod
    def _bucket(cls, v: str | None) -> str | None:
        problem = bucket_name_problem(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("domain_name")
    @classmethod
    def _domain(cls, v: str | None) -> str | None:
        if v is not None and not HOSTNAME.fullmatch(v):
            raise ValueError(f"'{shown(v)}' is not a lowercase DNS name like oidc.dev.example.com")
        return v

    @field_validator("certificate_arn")
    @classmethod
    def _certificate(cls, v: str | None) -> str | None:
        if v is not None and not ACM_CLOUDFRONT_CERT.fullmatch(v):
            raise ValueError(
                f"'{shown(v)}' is not an ACM certificate ARN in us-east-1 (CloudFront only uses certificates "
                "from us-east-1)"
            )
        return v

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"Z[A-Z0-9]{1,32}", v):
            raise ValueError(f"'{shown(v)}' is not a Route 53 hosted zone id like Z0123456789ABCDEFGHIJ")
        return v

    @model_validator(mode="after")
    def _hosting_fields(self) -> "IssuerConfig":
        if self.hosting == "cloudfront" and not (self.domain_name and self.certificate_arn):
            raise ValueError(
                "cloudfront hosting needs domainName and certificateArn: the issuer URL must be a "
                "custom domain, a dXXXX.cloudfront.net name changes when the distribution is replaced"
            )
        if self.hosting == "s3-public" and (self.domain_name or self.certificate_arn or self.hosted_zone_id):
            raise ValueError("domainName/certificateArn/hostedZoneId apply to cloudfront hosting only")
        return self

    def bucket(self, cluster_name: str, account_id: str) -> str:
        return self.bucket_name or default_bucket_name(cluster_name, account_id, self.name)

    def url(self, cluster_name: str, account_id: str, region: str) -> str:
        """The issuer URL this config derives (never from servers or distribution ids)."""

        if self.hosting == "cloudfront":
            return cloudfront_issuer_url(str(self.domain_name))
        return s3_issuer_url(self.bucket(cluster_name, account_id), region)


class IdentityConfig(Model):
    """K3s service-account issuers. The first issuer is active (signs tokens); the others are standby."""

    issuers: list[IssuerConfig] = Field(
        default_factory=list,
        description=(
            "K3s service-account issuers, distinct names; the first is active (signs tokens), the others standby. "
            "Empty on k3s means one `s3-public` issuer `primary`; refused on EKS (it serves its own issuer)."
        ),
    )
    issuer_url: str | None = Field(
        None,
        description=(
            "The active issuer's URL, pinned: required on k3s (the error names the value to pin), compared with "
            "the URL the config derives; a mismatch is refused. Refused on EKS."
        ),
    )
    allow_issuer_change: bool = Field(
        False,
        description=(
            "Accept a derived issuer URL different from `issuerUrl` (a deliberate issuer move; it invalidates "
            "every IRSA token and trust policy of the old issuer)."
        ),
    )


class WorkloadStatement(Model):
    sid: str | None = Field(None, description="Statement id.")
    effect: Literal["Allow", "Deny"] = Field("Allow", description="Statement effect.")
    actions: list[str] = Field(
        description=(
            "Service actions like `s3:GetObject`, at least one; `*` is refused, and so is `svc:*` on resource `*`."
        )
    )
    resources: list[str] = Field(description="Resource ARNs the statement applies to, at least one.")
    conditions: dict[str, dict[str, str | list[str]]] | None = Field(
        None,
        description=(
            "IAM condition block, operator -> condition key -> value(s), like "
            "`{StringEquals: {'aws:RequestedRegion': us-east-1}}`."
        ),
    )

    @field_validator("actions")
    @classmethod
    def _actions(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one action like s3:GetObject")
        for action in v:
            if action == "*" or not IAM_ACTION.fullmatch(action):
                raise ValueError(f"'{shown(action)}' is not a service action like s3:GetObject ('*' is refused)")
        if len(set(v)) != len(v):
            raise ValueError("actions must be distinct")
        return v

    @field_validator("conditions")
    @classmethod
    def _conditions(
        cls, v: dict[str, dict[str, str | list[str]]] | None
    ) -> dict[str, dict[str, str | list[str]]] | None:
        for operator, tests in (v or {}).items():
            if not CONDITION_OPERATOR.fullmatch(operator):
                raise ValueError(
                    f"'{shown(operator)}' is not a condition operator like StringEquals or ForAnyValue:StringLike"
                )
            for key, values in tests.items():
                if not CONDITION_KEY.fullmatch(key):
                    raise ValueError(f"{operator}: '{shown(key)}' is not a condition key like aws:SourceAccount")
                for value in values if isinstance(values, list) else [values]:
                    if len(value) > 1024 or shown(value, 2048) != value:
                        raise ValueError(
                            f"{operator}.{key}: '{shown(value)}' holds control characters or is longer "
                            "than 1024 characters"
                        )
        return v

    @field_validator("sid")
    @classmethod
    def _sid(cls, v: str | None) -> str | None:
        if v is not None and not SID.fullmatch(v):
            raise ValueError(f"'{shown(v)}' is not a statement id: 1-128 ASCII letters and digits (IAM's Sid charset)")
        return v

    @field_validator("resources")
    @classmethod
    def _resources(cls, v: list[str]) -> list[str]:
        for resource in v:
            if not RESOURCE_ARN.fullmatch(resource) or len(resource) > 2048:
                raise ValueError(f"'{shown(resource)}' is not a resource ARN like arn:aws:s3:::bucket/* (or '*')")
        if len(set(v)) != len(v):
            raise ValueError("resources must be distinct")
        return v

    @model_validator(mode="after")
    def _scoped(self) -> "WorkloadStatement":
        if not self.resources:
            raise ValueError("resources: at least one ARN")
        if self.effect == "Allow" and "*" in self.resources and any(a.endswith(":*") for a in self.actions):
            raise ValueError(
                "a whole service ('svc:*') on every resource ('*') is not least privilege; name actions or resources"
            )
        return self


class WorkloadPolicies(Model):
    managed_arns: list[str] = Field(
        default_factory=list,
        description=(
            "Managed IAM policy ARNs attached to the role; `AdministratorAccess`, `PowerUserAccess` and "
            "`IAMFullAccess` are refused."
        ),
    )
    statements: list[WorkloadStatement] = Field(
        default_factory=list, description=("Inline policy statements of the role.")
    )

    @field_validator("managed_arns")
    @classmethod
    def _managed(cls, v: list[str]) -> list[str]:
        for arn in v:
            if not IAM_POLICY_ARN.fullmatch(arn) or len(arn) > 2048:
                raise ValueError(
                    f"'{shown(arn)}' is not an IAM policy ARN like arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
                )
            if arn.rsplit("/", 1)[1] in ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess"):
                raise ValueError(f"'{arn}' is refused for a workload role (least privilege)")
        if len(set(v)) != len(v):
            raise ValueError("managed policy ARNs must be distinct (each would be a second attachment of one policy)")
        return v

    @field_validator("statements")
    @classmethod
    def _statements(cls, v: list[WorkloadStatement]) -> list[WorkloadStatement]:
        return unique_sids(v)


def unique_sids(v: list[WorkloadStatement]) -> list[WorkloadStatement]:
    sids = [s.sid for s in v if s.sid]
    dupes = sorted({s for s in sids if sids.count(s) > 1})
    if dupes:
        raise ValueError(f"Sid {', '.join(dupes)} used twice; Sids must be unique within a policy (IAM refuses it)")
    return v


CrossAccountMode = Literal["native", "manual"]


class CrossAccountConfig(Model):
    """How a workload reaches roles in other accounts (cross-field rules: components/config/cross_account_rules.py)."""

    mode: CrossAccountMode = Field(
        description=(
            "`native`: the Pod Identity association's target role (EKS chains the role for the pod; `pod-identity` "
            "only; the pod gets the target role's session and no SDK config); `manual`: the app calls "
            "`sts:AssumeRole` itself from the workload's own role (any method; keeps that role's permissions)."
        )
    )
    role_arns: list[str] = Field(
        description=(
            "Distinct role ARNs in other accounts: exactly one for `native` (an association chains to one target "
            "role), one or more for `manual`."
        )
    )
    disable_session_tags: bool = Field(
        False,
        description=(
            "`native` only: EKS adds no session tags (`kubernetes-namespace`, ...); the workload role's trust then "
            "checks the source account only, and the target trust needs no `sts:TagSession`."
        ),
    )
    session_policy: list[WorkloadStatement] = Field(
        default_factory=list,
        description=(
            "`native` only: statements of the association's session policy, which narrows the target role's "
            "permissions for this ServiceAccount; needs `disableSessionTags: true` (EKS refuses it otherwise) "
            "and renders to at most 2048 characters (the STS session-policy limit)."
        ),
    )

    @field_validator("role_arns")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one role ARN")
        for arn in v:
            iam_role_arn(arn)
        if len(set(v)) != len(v):
            raise ValueError("role ARNs must be distinct")
        return v

    @field_validator("session_policy")
    @classmethod
    def _statements(cls, v: list[WorkloadStatement]) -> list[WorkloadStatement]:
        return unique_sids(v)


class WorkloadConfig(Model):
    """One workload's AWS identity: its own role, its ServiceAccount and the binding `method`."""

    name: str = Field(
        description=("Workload name, a DNS label of at most 24 characters (part of the IAM role name); distinct.")
    )
    namespace: str = Field(description="Namespace of the workload's ServiceAccount.")
    service_account: str = Field(
        description=(
            "The ServiceAccount bound to the role: one binding per (namespace, ServiceAccount); the platform "
            "controllers' kube-system ServiceAccounts are refused."
        )
    )
    method: WorkloadMethod = Field(
        description=(
            "How pods get the role: `pod-identity` (EKS only), `irsa`, `roles-anywhere` (X.509 certificate) or "
            "`instance-profile` (the nodes' role; on EKS Karpenter's node role, so it needs `karpenter.enabled`)."
        )
    )
    policies: WorkloadPolicies = Field(
        WorkloadPolicies(),
        description=(
            "The role's permissions: at least one managed ARN or statement, unless `crossAccountRoleArns` is set."
        ),
    )
    cross_account_role_arns: list[str] = Field(
        default_factory=list,
        description=(
            "Distinct role ARNs in other accounts the workload may `sts:AssumeRole` (the `manual` chain; see "
            "`crossAccount` for the `native` Pod Identity target role)."
        ),
    )
    issuers: list[str] | None = Field(
        None,
        description=(
            "`irsa` on k3s: names of the `identity.issuers` the role trusts; unset means all; must include the "
            "active one."
        ),
    )
    cross_account: CrossAccountConfig | None = Field(
        None,
        description=(
            "Roles in other accounts and how the pod reaches them (`native` Pod Identity target role or `manual` "
            "chain); exclusive with `crossAccountRoleArns`, which is the `manual` chain's shorthand."
        ),
    )

    @property
    def cross_account_targets(self) -> list[str]:
        """Every role in another account the workload reaches, whichever key declares it."""
        if self.cross_account is not None:
            return list(self.cross_account.role_arns)
        return list(self.cross_account_role_arns)

    @property
    def cross_account_mode(self) -> CrossAccountMode | None:
        """`native`, `manual` (also for `crossAccountRoleArns`), or None without targets."""
        if self.cross_account is not None:
            return self.cross_account.mode
        return "manual" if self.cross_account_role_arns else None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return short_dns_label(v, 24, "it is part of the IAM role name")

    _k8s_names = field_validator("namespace", "service_account")(classmethod(lambda cls, v: dns_label(v)))

    @field_validator("cross_account_role_arns")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        for arn in v:
            iam_role_arn(arn)
        if len(set(v)) != len(v):
            raise ValueError("role ARNs must be distinct")
        return v
