"""Cross-field rules of `identity` and `workloads` (pure; called by `StackConfig` validation).

Each problem is `(absolute key path, message)`; config.py turns the first into a keyed error
(`k8s-platform:workloads[1].method: ...`) before any resource is registered.

The issuer-change guard: the active issuer's URL is derived from config names
(`IssuerConfig.url`) and compared with the URL pinned in the stack file (`identity.issuerUrl`).
A rename of the cluster, bucket or domain that would move the issuer — and so invalidate every
IRSA token and trust policy at once — is refused unless `identity.allowIssuerChange: true`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from components.config.cross_account_rules import cross_account_problems
from components.config.identity import IssuerConfig
from components.core.oidc_hosting import PRIMARY_ISSUER

if TYPE_CHECKING:
    from components.config.stack import StackConfig

Problem = tuple[str, str]

# kube-system ServiceAccounts the platform's own controllers are bound through (their roles and
# Pod Identity associations exist whether or not a workload names them): a workload binding one
# would be a second identity for it (EKS refuses a second association; IRSA would silently swap
# the controller's role). Names: addon_values (LB controller, EBS CSI, cloud controller),
# karpenter.SERVICE_ACCOUNT, eks_addons (vpc-cni's aws-node).
CONTROLLER_SERVICE_ACCOUNTS = frozenset(
    {
        ("kube-system", "aws-load-balancer-controller"),
        ("kube-system", "ebs-csi-controller-sa"),
        ("kube-system", "cloud-controller-manager"),
        ("kube-system", "karpenter"),
        ("kube-system", "aws-node"),
    }
)


def effective_issuers(cfg: "StackConfig") -> list["IssuerConfig"]:
    """K3s always has an issuer: an unconfigured list means one `s3-public` issuer named primary."""

    if cfg.cluster.kind != "k3s":
        return []
    return list(cfg.identity.issuers) or [IssuerConfig(name=PRIMARY_ISSUER)]


def active_issuer_url(cfg: "StackConfig") -> str | None:
    issuers = effective_issuers(cfg)
    return issuers[0].url(cfg.cluster_name, cfg.account_id, cfg.region) if issuers else None


def identity_problems(cfg: "StackConfig") -> Iterator[Problem]:
    yield from _issuer_problems(cfg)
    yield from _workload_problems(cfg)


def _issuer_problems(cfg: "StackConfig") -> Iterator[Problem]:
    identity = cfg.identity
    if cfg.cluster.kind == "eks":
        if identity.issuers:
            yield (
                "identity.issuers",
                "EKS serves its own OIDC issuer; self-hosted issuers are for cluster.kind k3s (remove the key)",
            )
        if identity.issuer_url:
            yield (
                "identity.issuerUrl",
                "EKS serves its own OIDC issuer; issuerUrl applies to cluster.kind k3s (remove the key)",
            )
        return
    issuers = effective_issuers(cfg)
    seen: dict[str, int] = {}
    urls: dict[str, int] = {}
    for i, issuer in enumerate(issuers):
        if issuer.name in seen:
            yield (
                f"identity.issuers.{i}.name",
                f"'{issuer.name}' is already the name of identity.issuers[{seen[issuer.name]}]",
            )
        seen.setdefault(issuer.name, i)
        url = issuer.url(cfg.cluster_name, cfg.account_id, cfg.region)
        if url in urls:
            yield f"identity.issuers.{i}", f"publishes the same issuer URL {url} as identity.issuers[{urls[url]}]"
        urls.setdefault(url, i)
    derived = active_issuer_url(cfg)
    if identity.issuer_url is None:
        yield (
            "identity.issuerUrl",
            (
                f"is required on k3s: pin the active issuer URL this config derives, '{derived}', so that a later "
                "rename cannot silently move the issuer (every IRSA token would stop working at once)"
            ),
        )
    elif identity.issuer_url.rstrip("/") != derived and not identity.allow_issuer_change:
        yield (
            "identity.issuerUrl",
            (
                f"the config now derives the issuer '{derived}' but the stack is pinned to '{identity.issuer_url}'; "
                "changing the service-account issuer invalidates every IRSA token and trust policy at once. Keep the "
                "old names, or add the new issuer as a standby first, then set identity.allowIssuerChange: true and "
                "update identity.issuerUrl"
            ),
        )


def _workload_problems(cfg: "StackConfig") -> Iterator[Problem]:
    issuer_names = [i.name for i in effective_issuers(cfg)]
    names: dict[str, int] = {}
    bindings: dict[tuple[str, str], int] = {}
    for i, w in enumerate(cfg.workloads):
        try:
            yield from list(_one_workload_problems(cfg, i, w, issuer_names, names, bindings))
        except AttributeError:
            # A partial config (some fields failed validation and are absent, already reported):
            # this workload's remaining checks cannot run; the other workloads are still checked.
            continue


def _one_workload_problems(
    cfg: "StackConfig",
    i: int,
    w: Any,
    issuer_names: list[str],
    names: dict[str, int],
    bindings: dict[tuple[str, str], int],
) -> Iterator[Problem]:
    key = f"workloads.{i}"
    if w.name in names:
        yield f"{key}.name", f"'{w.name}' is already the name of workloads[{names[w.name]}]"
    names.setdefault(w.name, i)
    binding = (w.namespace, w.service_account)
    if binding in bindings:
        j = bindings[binding]
        yield (
            f"{key}.serviceAccount",
            (
                f"system:serviceaccount:{w.namespace}:{w.service_account} is already bound by workloads[{j}] "
                f"('{cfg.workloads[j].name}'); one ServiceAccount gets exactly one identity"
            ),
        )
    bindings.setdefault(binding, i)
    if binding in CONTROLLER_SERVICE_ACCOUNTS:
        yield (
            f"{key}.serviceAccount",
            (
                f"system:serviceaccount:{w.namespace}:{w.service_account} is a platform controller's "
                "ServiceAccount "
                "(it already has its identity); give the workload its own ServiceAccount"
            ),
        )
    if w.method == "pod-identity" and cfg.cluster.kind != "eks":
        yield (
            f"{key}.method",
            (
                f"pod-identity needs EKS (the Pod Identity agent and associations exist only there); on "
                f"{cfg.cluster.kind} use irsa or roles-anywhere"
            ),
        )
    karpenter = getattr(cfg, "karpenter", None)
    if w.method == "instance-profile" and cfg.cluster.kind == "eks" and not (karpenter and karpenter.enabled):
        yield (
            f"{key}.method",
            (
                "instance-profile on EKS attaches to Karpenter's node role (the system nodes are reserved for "
                "controllers); enable karpenter, or better use pod-identity"
            ),
        )
    if w.issuers is not None:
        if w.method != "irsa" or cfg.cluster.kind != "k3s":
            yield f"{key}.issuers", "applies to method irsa on k3s only (EKS has one issuer; remove the key)"
        else:
            unknown = [n for n in w.issuers if n not in issuer_names]
            if unknown:
                yield (
                    f"{key}.issuers",
                    f"{', '.join(unknown)} not in identity.issuers; allowed: {', '.join(issuer_names)}",
                )
            elif issuer_names[0] not in w.issuers:
                yield (
                    f"{key}.issuers",
                    (
                        f"must include the active issuer '{issuer_names[0]}': pods get tokens from it only, a role "
                        "trusting standby issuers alone could never be assumed"
                    ),
                )
    if not (w.policies.managed_arns or w.policies.statements or w.cross_account_targets):
        yield (
            f"{key}.policies",
            "the workload gets no permission: give policies.managedArns, policies.statements or crossAccountRoleArns",
        )
    yield from cross_account_problems(cfg, key, w)
