"""Workload identity: IRSA trust pinning, Pod Identity trust shape and bindings, Roles Anywhere
trust conditions, and the OIDC providers IRSA depends on.

These catch the failures that break every pod of a workload at once: a wildcard or mismatched
`:sub`, a missing `:aud`, a ServiceAccount that keeps an IRSA annotation beside a Pod Identity
association, two associations for one ServiceAccount, and a trust on an issuer no stack manages.
"""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import Severity

from .common import (
    UNKNOWN,
    checkov,
    cis_eks,
    conditions,
    get,
    is_map,
    peek,
    policy_document,
    principals,
    resource_rule,
    resources_of,
    stack_rule,
    statements,
    str_list,
)

# The audience STS requires in a web-identity token (the program mints IRSA tokens for it too).
STS_AUDIENCE = "sts.amazonaws.com"

ROLE = "aws:iam/role:Role"
OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
POD_IDENTITY_ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"
POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"
ROLES_ANYWHERE_SERVICE = "rolesanywhere.amazonaws.com"
SUBJECT = re.compile(r"^system:serviceaccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
EXACT_OPERATORS = ("StringEquals",)


def _trust(props):
    return statements(policy_document(get(props, "assumeRolePolicy")))


def _web_identity_statements(props):
    return [
        s
        for s in _trust(props)
        if s.get("Effect") == "Allow" and WEB_IDENTITY in str_list(s.get("Action")) and "Federated" in principals(s)
    ]


def _condition_values(stmt, suffix: str) -> dict[str, list[str]]:
    """operator -> values for condition keys ending in `suffix` (e.g. ':sub')."""
    out: dict[str, list[str]] = {}
    for op, body in conditions(stmt).items():
        for key, values in body.items():
            if key.endswith(suffix):
                out.setdefault(op, []).extend(values)
    return out


def _issuer_hosts(stmt) -> set[str]:
    return {
        key.rsplit(":", 1)[0] for body in conditions(stmt).values() for key in body if key.endswith((":sub", ":aud"))
    }


def _irsa_sub(props, cfg, report, args) -> None:
    for stmt in _web_identity_statements(props):
        subs = _condition_values(stmt, ":sub")
        exact = [v for op in EXACT_OPERATORS for v in subs.get(op, [])]
        loose = {op: v for op, v in subs.items() if op not in EXACT_OPERATORS}
        if loose:
            report(
                f"the web-identity trust matches :sub with {sorted(loose)} "
                f"{sorted(v for vs in loose.values() for v in vs)}; "
                "use StringEquals on one system:serviceaccount:<namespace>:<name>"
            )
        if not exact:
            report(
                "the web-identity trust has no StringEquals condition on <issuer>:sub: every ServiceAccount of the "
                "cluster (or any token of the issuer) could assume the role"
            )
        for value in exact:
            if not SUBJECT.match(value):
                report(f":sub value '{value}' is not one exact system:serviceaccount:<namespace>:<name>")


def _irsa_aud(props, cfg, report, args) -> None:
    for stmt in _web_identity_statements(props):
        auds = _condition_values(stmt, ":aud")
        exact = [v for op in EXACT_OPERATORS for v in auds.get(op, [])]
        if not exact:
            report(f"the web-identity trust has no StringEquals condition on <issuer>:aud = {cfg['audience']}")
        elif any(v != cfg["audience"] for v in exact):
            report(f":aud values {exact} must be exactly {cfg['audience']}")


def _pod_identity_trust(props, cfg, report, args) -> None:
    for stmt in _trust(props):
        ps = principals(stmt)
        if POD_IDENTITY_SERVICE not in ps.get("Service", []) or stmt.get("Effect") != "Allow":
            continue
        actions = set(str_list(stmt.get("Action")))
        if actions != {"sts:AssumeRole", "sts:TagSession"}:
            report(
                f"the Pod Identity trust allows {sorted(actions)}; it must allow exactly sts:AssumeRole and "
                "sts:TagSession (the agent tags the session with the pod's identity)"
            )
        others = {k: v for k, v in ps.items() if k != "Service"} or [
            s for s in ps.get("Service", []) if s != POD_IDENTITY_SERVICE
        ]
        if others:
            report(f"the Pod Identity statement also trusts {others}; give other principals their own statement")
        if cfg["requireSourceAccount"]:
            accounts = [
                v
                for body in conditions(stmt).values()
                for k, vs in body.items()
                if k == "aws:SourceAccount"
                for v in vs
            ]
            if not accounts:
                report(
                    "the Pod Identity trust has no aws:SourceAccount condition: associations in any account "
                    "could use the role"
                )


def _roles_anywhere_trust(props, cfg, report, args) -> None:
    for stmt in _trust(props):
        if ROLES_ANYWHERE_SERVICE not in principals(stmt).get("Service", []) or stmt.get("Effect") != "Allow":
            continue
        actions = set(str_list(stmt.get("Action")))
        extra = actions - {"sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"}
        if extra:
            report(f"the Roles Anywhere trust allows {sorted(extra)} beyond AssumeRole/TagSession/SetSourceIdentity")
        conds = conditions(stmt)
        subject = [
            v
            for op, body in conds.items()
            if op == "StringEquals"
            for k, vs in body.items()
            if k.startswith("aws:PrincipalTag/x509Subject/")
            for v in vs
        ]
        if not subject or any("*" in v or "?" in v for v in subject):
            report(
                "the Roles Anywhere trust must pin the certificate subject with StringEquals on "
                "aws:PrincipalTag/x509Subject/CN: any certificate the anchor's CA signed could assume the role"
            )
        anchors = [
            v
            for op, body in conds.items()
            if op in ("ArnEquals", "StringEquals", "ArnLike")
            for k, vs in body.items()
            if k == "aws:SourceArn"
            for v in vs
        ]
        if not anchors or any(v.endswith("*") for v in anchors):
            report("the Roles Anywhere trust must pin aws:SourceArn to its trust anchor ARN")


def _oidc_audience(props, cfg, report, args) -> None:
    clients = str_list(get(props, "clientIdLists"))
    if cfg["audience"] not in clients:
        report(f"clientIdLists {clients} lacks {cfg['audience']}: STS refuses the projected tokens")
    url = peek(props, "url")  # an EKS cluster's issuer is unknown until the cluster exists
    if url is not UNKNOWN and isinstance(url, str) and not url.startswith("https://"):
        report(f"issuer url {url} is not https")


# ------------------------------------------------------------------------------ stack policies
def _association_key(a) -> tuple[str, str, str]:
    return (str(get(a.props, "clusterName")), str(get(a.props, "namespace")), str(get(a.props, "serviceAccount")))


def _unique_associations(resources, cfg, report, args) -> None:
    seen: dict[tuple[str, str, str], str] = {}
    for a in resources_of(resources, POD_IDENTITY_ASSOCIATION):
        key = _association_key(a)
        if key in seen:
            report(
                f"ServiceAccount {key[1]}/{key[2]} on cluster {key[0]} has two Pod Identity associations "
                f"('{seen[key]}' and '{a.name}'); EKS refuses the second",
                a.urn,
            )
        else:
            seen[key] = a.name


class Annotations:
    """A ServiceAccount's annotations, read only when a policy needs them: they usually hold a role
    ARN that is unknown at preview, so reading them eagerly would stop the policy for every
    ServiceAccount. Key presence never reads a value."""

    def __init__(self, holder):
        self._holder = holder

    def _map(self):
        found = get(self._holder, "annotations", default={})  # raises when the whole map is unknown
        return found if is_map(found) else {}

    def __contains__(self, key: str) -> bool:
        return any(k == key for k in self._map())

    def value(self, key: str):
        """The annotation's value, or UNKNOWN while it is computed (e.g. a role ARN at preview)."""
        return peek(self._map(), key)


def service_accounts(resources):
    """(resource, namespace, name, annotations) of ServiceAccounts and of those Helm charts create."""
    for sa in resources_of(resources, SERVICE_ACCOUNT):
        meta = get(sa.props, "metadata", default={})
        name = get(meta, "name")
        if name:
            yield sa, str(get(meta, "namespace", default="default")), str(name), Annotations(meta)
    for rel in resources_of(resources, HELM_RELEASE):
        sa_values = get(rel.props, "values", "serviceAccount")
        if sa_values is None:
            continue
        name = get(sa_values, "name") or get(rel.props, "name") or rel.name
        yield rel, str(get(rel.props, "namespace", default="default")), str(name), Annotations(sa_values)


def _no_irsa_annotation_with_pod_identity(resources, cfg, report, args) -> None:
    bound = {
        (str(get(a.props, "namespace")), str(get(a.props, "serviceAccount")))
        for a in resources_of(resources, POD_IDENTITY_ASSOCIATION)
    }
    for res, namespace, name, sa_annotations in service_accounts(resources):
        # Only ServiceAccounts bound by an association are read: their annotations decide.
        if (namespace, name) in bound and IRSA_ANNOTATION in sa_annotations:
            report(
                f"ServiceAccount {namespace}/{name} has a Pod Identity association and still carries "
                f"{IRSA_ANNOTATION}: the SDK picks IRSA first, so the association is silently ignored",
                res.urn,
            )


def _annotated_roles(res, annotation: Any) -> list:
    """The roles an IRSA annotation can refer to: the resource's dependencies through the property
    holding the annotation (else its direct dependencies), narrowed by role name when the ARN says it."""
    key = "values" if res.resource_type == HELM_RELEASE else "metadata"
    deps = res.property_dependencies.get(key) or res.dependencies
    roles = [d for d in deps if d.resource_type == ROLE]
    if isinstance(annotation, str) and ":role/" in annotation:
        role_name = annotation.rsplit("/", 1)[-1]
        by_name = [r for r in roles if get(r.props, "name") == role_name]
        roles = by_name or roles
    return roles


def _irsa_sub_matches(resources, cfg, report, args) -> None:
    for res, namespace, name, sa_annotations in service_accounts(resources):
        if IRSA_ANNOTATION not in sa_annotations:
            continue
        expected = f"system:serviceaccount:{namespace}:{name}"
        # Only web-identity roles make the annotation work; a release may also depend on others.
        # The role ARN may be unknown at preview; the dependency edges still name the candidates.
        annotation = sa_annotations.value(IRSA_ANNOTATION)
        candidates = [r for r in _annotated_roles(res, annotation) if _web_identity_statements(r.props)]
        if not candidates:
            continue  # role outside this stack; nothing to compare
        admitted = {
            r.name: sorted(
                {
                    v
                    for s in _web_identity_statements(r.props)
                    for vs in _condition_values(s, ":sub").values()
                    for v in vs
                }
            )
            for r in candidates
        }
        if not any(expected in subs for subs in admitted.values()):
            report(
                f"ServiceAccount {namespace}/{name} is annotated with an IRSA role whose trust does not admit "
                f"{expected} (candidate roles and their :sub: {admitted}): STS will refuse its tokens",
                res.urn,
            )


def _oidc_provider_in_stack(resources, cfg, report, args) -> None:
    providers = resources_of(resources, OIDC_PROVIDER)
    managed = {str(get(p.props, "url", default="")).removeprefix("https://").rstrip("/") for p in providers}
    external = {u.removeprefix("https://").rstrip("/") for u in cfg["externalIssuers"]}
    for role in resources_of(resources, ROLE):
        for stmt in _web_identity_statements(role.props):
            for host in _issuer_hosts(stmt):
                if host not in managed and host not in external:
                    report(
                        f"role '{role.name}' trusts issuer {host}, which no IAM OIDC provider of this stack "
                        "serves: if that provider is deleted or changes, every IRSA pod fails "
                        "(policy config externalIssuers)",
                        role.urn,
                    )


IRSA_BENCH = [cis_eks("5.2.1")]

RULES = [
    resource_rule(
        "irsa-trust-pins-subject",
        "IRSA trust policies pin :sub to one ServiceAccount with StringEquals.",
        Severity.CRITICAL,
        IRSA_BENCH,
        [ROLE],
        _irsa_sub,
    ),
    resource_rule(
        "irsa-trust-pins-audience",
        "IRSA trust policies pin :aud to sts.amazonaws.com.",
        Severity.HIGH,
        IRSA_BENCH,
        [ROLE],
        _irsa_aud,
        {"audience": {"type": "string", "default": STS_AUDIENCE}},
    ),
    resource_rule(
        "pod-identity-trust-shape",
        "Pod Identity roles trust pods.eks.amazonaws.com for AssumeRole+TagSession, scoped to the account.",
        Severity.HIGH,
        IRSA_BENCH + [checkov("CKV_AWS_60")],
        [ROLE],
        _pod_identity_trust,
        {"requireSourceAccount": {"type": "boolean", "default": True}},
    ),
    resource_rule(
        "roles-anywhere-trust-conditions",
        "Roles Anywhere roles pin the certificate subject and the trust anchor.",
        Severity.HIGH,
        [checkov("CKV_AWS_60")],
        [ROLE],
        _roles_anywhere_trust,
    ),
    resource_rule(
        "oidc-provider-sts-audience",
        "IAM OIDC providers serve https issuers with the sts.amazonaws.com client id.",
        Severity.MEDIUM,
        IRSA_BENCH,
        [OIDC_PROVIDER],
        _oidc_audience,
        {"audience": {"type": "string", "default": STS_AUDIENCE}},
    ),
    stack_rule(
        "pod-identity-association-unique",
        "One Pod Identity association per (cluster, namespace, ServiceAccount).",
        Severity.HIGH,
        IRSA_BENCH,
        [POD_IDENTITY_ASSOCIATION],
        _unique_associations,
    ),
    stack_rule(
        "pod-identity-no-irsa-annotation",
        "A ServiceAccount bound by Pod Identity carries no IRSA role annotation.",
        Severity.HIGH,
        IRSA_BENCH,
        [POD_IDENTITY_ASSOCIATION, SERVICE_ACCOUNT, HELM_RELEASE],
        _no_irsa_annotation_with_pod_identity,
    ),
    stack_rule(
        "irsa-subject-matches-service-account",
        "An IRSA-annotated ServiceAccount's role trusts exactly that ServiceAccount.",
        Severity.CRITICAL,
        IRSA_BENCH,
        [SERVICE_ACCOUNT, HELM_RELEASE, ROLE],
        _irsa_sub_matches,
    ),
    stack_rule(
        "irsa-issuer-managed-in-stack",
        "Every issuer an IRSA role trusts has its IAM OIDC provider in the stack.",
        Severity.HIGH,
        IRSA_BENCH,
        [ROLE, OIDC_PROVIDER],
        _oidc_provider_in_stack,
        {
            "externalIssuers": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "issuer hosts managed outside this stack that roles may trust",
            }
        },
    ),
]
