"""`WorkloadIdentity`: one declaration per workload (`k8s-platform:workloads`) -> role, ServiceAccount, binding.

Every workload gets its own least-privilege role (`<cluster>-wl-<name>`: its inline statements,
managed policies and, for cross-account chains, `sts:AssumeRole` on exactly the target ARNs), its
ServiceAccount (`pulumi_kubernetes`) and the binding its `method` names:

- `pod-identity` (EKS): `ServiceAccountIdentity` -> trust on pods.eks.amazonaws.com pinned to the
  cluster/namespace/ServiceAccount session tags + one PodIdentityAssociation; no annotation.
- `irsa` (EKS or K3s): `ServiceAccountIdentity` -> trust on the OIDC provider(s) with exact
  `:sub`/`:aud`; on K3s the workload's `issuers` (default all, active first); annotated SA.
- `roles-anywhere`: role trusting rolesanywhere.amazonaws.com for the workload's certificate CN
  and the trust anchor; profile, leaf certificate, Secret and ConfigMap (`roles_anywhere`).
- `instance-profile`: no role of its own: the permissions go on the roles of the nodes workloads run on, with a warning
  (every pod on those nodes gets them).

Outputs per workload (`identities[name]`): role ARN, method, ServiceAccount, the caller identity
`aws sts get-caller-identity` should show in the pod, and for cross-account targets the trust
policy the target account must hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.config import StackConfig, WorkloadConfig, session_policy_json
from components.core import iam_documents as iam
from components.core.cluster_handle import ClusterHandle
from components.core.trust_policies import assume_target_roles_policy, roles_anywhere_trust
from components.identity.caller_identity import expected_caller_identity
from components.identity.cross_account import CrossAccountTarget, CrossAccountTargetArgs
from components.identity.roles_anywhere import (
    RolesAnywhereAuthority,
    RolesAnywhereAuthorityArgs,
    RolesAnywhereWorkload,
    RolesAnywhereWorkloadArgs,
    certificate_cn,
)
from components.identity.service_account import (
    ServiceAccountIdentity,
    ServiceAccountIdentityArgs,
    role_with_policies,
)

# Namespaces Kubernetes creates itself; every other workload namespace is created here.
BUILTIN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
SHARED_NODE_ROLE_WARNING = (
    "workload '{name}' uses method instance-profile: its permissions are attached to the node role "
    "'{role}', so EVERY pod on those nodes shares them; prefer irsa, pod-identity or roles-anywhere"
)


def workload_role_name(cluster_name: str, workload_name: str) -> str:
    return f"{cluster_name}-wl-{workload_name}"


def workload_policy(workload: WorkloadConfig) -> dict[str, Any] | None:
    """The workload's inline identity policy: its statements plus the cross-account hop, or None."""
    stmts = [
        iam.statement(s.actions, s.resources, effect=s.effect, conditions=s.conditions, sid=s.sid)
        for s in workload.policies.statements
    ]
    if workload.cross_account_targets:
        stmts += assume_target_roles_policy(workload.cross_account_targets)["Statement"]
    return iam.document(*stmts) if stmts else None


@dataclass(frozen=True)
class _Target:
    caller_identity: str
    credentials: pulumi.Output[dict[str, Any]]
    describe: pulumi.Output[dict[str, Any]]


@dataclass
class NamedIssuer:
    """A published OIDC issuer of the cluster (K3s), by its config name."""

    name: str
    provider_arn: pulumi.Input[str]
    issuer_url: pulumi.Input[str]


@dataclass(frozen=True)
class WorkloadIdentityArgs:
    cluster: ClusterHandle
    """The complete cluster: its provider, issuers, node roles and `ready` set."""
    workloads: list[WorkloadConfig]
    """The `workloads` entries: one identity (role, ServiceAccount, binding) each."""
    account_id: str
    """The account of the workload roles (cross-account targets are checked against it)."""
    region: str
    """Roles Anywhere: the region written into each workload's AWS config file."""
    tags: dict[str, str]
    """Tags for every taggable resource (plus `k8s-platform/workload`)."""
    issuers: list[NamedIssuer] = field(default_factory=list)
    """K3s: every published issuer, active first; irsa workloads trust the ones their `issuers` name.
    Default (empty): the cluster handle's own issuers."""
    protect: bool = False
    """Protect the Roles Anywhere CA (the environment protects stateful resources). Default: unprotected."""
    extra_node_role_names: tuple[pulumi.Input[str], ...] = ()
    """Roles of nodes that workloads run on besides the control plane's own (Karpenter's nodes);
    `instance-profile` permissions are attached to the handle's roles, then these. Default: none."""

    @classmethod
    def from_stack(
        cls,
        cfg: StackConfig,
        cluster: ClusterHandle,
        issuers: tuple[NamedIssuer, ...] | list[NamedIssuer] = (),
        extra_node_role_names: tuple[pulumi.Input[str], ...] = (),
    ) -> "WorkloadIdentityArgs":
        return cls(
            cluster=cluster,
            workloads=list(cfg.workloads),
            account_id=cfg.account_id,
            region=cfg.region,
            tags=cfg.resource_tags(),
            issuers=list(issuers),
            protect=cfg.safeguards_in_force.protect_stateful_resources,
            extra_node_role_names=tuple(extra_node_role_names),
        )


class WorkloadIdentity(pulumi.ComponentResource):
    identities: dict[str, pulumi.Output[dict[str, Any]]]

    def __init__(self, name: str, args: WorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:identity:WorkloadIdentity", name, None, opts)
        self._args = args
        self._authority: RolesAnywhereAuthority | None = None
        cluster = args.cluster
        self._k8s_opts = pulumi.ResourceOptions(
            parent=self, provider=cluster.k8s_provider, depends_on=list(cluster.ready)
        )
        self._namespaces: dict[str, pulumi.Resource] = {}
        # Config validation refuses these first; kept here for callers that build workloads in code.
        bindings = [(w.namespace, w.service_account) for w in args.workloads]
        duplicates = sorted({f"{ns}/{sa}" for ns, sa in bindings if bindings.count((ns, sa)) > 1})
        if duplicates:
            raise ValueError(
                f"{name}: ServiceAccounts bound twice: {', '.join(duplicates)}; one identity per ServiceAccount"
            )
        self.identities = {w.name: self._workload(w) for w in args.workloads}
        self.register_outputs({"identities": self.identities})

    # ----------------------------------------------------------------------------- per workload
    def _workload(self, w: WorkloadConfig) -> pulumi.Output[dict[str, Any]]:
        args, cluster = self._args, self._args.cluster
        namespace = self._namespace(w.namespace)
        policy = workload_policy(w)
        policy_json = iam.to_json(policy) if policy else None
        tags = {**args.tags, "k8s-platform/workload": w.name}
        role_name = workload_role_name(cluster.name, w.name)
        annotations: pulumi.Input[dict[str, str]] = {}
        extra: dict[str, Any] = {}
        native = w.cross_account if w.cross_account_mode == "native" else None
        external_id: pulumi.Input[str] | None = None
        if w.method in ("pod-identity", "irsa"):
            sai = ServiceAccountIdentity(
                f"wl-{w.name}",
                ServiceAccountIdentityArgs(
                    cluster=cluster,
                    namespace=w.namespace,
                    service_account=w.service_account,
                    method=w.method,
                    account_id=args.account_id,
                    tags=tags,
                    inline_policy_json=policy_json,
                    managed_policy_arns=list(w.policies.managed_arns),
                    role_name=role_name,
                    oidc_issuers=self._irsa_issuers(w),
                    target_role_arn=native.role_arns[0] if native else None,
                    disable_session_tags=native.disable_session_tags if native else False,
                    session_policy_json=session_policy_json(list(native.session_policy)) if native else None,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            role_arn: pulumi.Input[str] = sai.role_arn
            if native is not None and sai.association is not None:
                external_id = sai.association.external_id
            if w.method == "irsa":
                annotations = sai.service_account_annotations
        elif w.method == "roles-anywhere":
            role_arn, extra = self._roles_anywhere(w, role_name, tags, policy_json, namespace)
        else:
            role_name, role_arn = self._on_node_role(w, policy_json)
        k8s.core.v1.ServiceAccount(
            f"wl-{w.name}-sa",
            metadata={
                "name": w.service_account,
                "namespace": w.namespace,
                "annotations": annotations,
                "labels": {
                    "app.kubernetes.io/managed-by": "pulumi",
                    "k8s-platform/workload": w.name,
                    "k8s-platform/identity": w.method,
                },
            },
            opts=pulumi.ResourceOptions.merge(self._k8s_opts, pulumi.ResourceOptions(depends_on=namespace)),
        )
        own_caller = pulumi.Output.from_input(role_name).apply(
            lambda rn: expected_caller_identity(
                w.method, account_id=args.account_id, role_name=rn, cluster_name=cluster.name, workload_name=w.name
            )
        )
        # The workload role's ARN follows from its fixed name: known before the role exists, so the
        # exported manual-chain trust (and the pack's check of it) is complete at a first preview.
        source_arn: pulumi.Input[str] = (
            f"arn:{iam.PARTITION}:iam::{args.account_id}:role/{role_name}" if isinstance(role_name, str) else role_arn
        )
        targets = self._targets(w, source_arn, external_id)
        cross = pulumi.Output.all(*[t.describe for t in targets])
        # native: the pod's credentials ARE the target role's session; otherwise the workload's own role.
        caller = pulumi.Output.from_input(targets[0].caller_identity) if native else own_caller
        credentials = (
            targets[0].credentials
            if native
            else pulumi.Output.from_input(role_arn).apply(
                lambda arn: {
                    "roleArn": arn,
                    "deliveredBy": w.method,
                    "appMustAssumeRole": bool(targets),
                    "summary": "the pod's credentials are the workload role's"
                    + ("; the app assumes the crossAccount roles itself" if targets else ""),
                }
            )
        )
        return pulumi.Output.all(
            role_arn=role_arn, caller=caller, cross=cross, extra=extra, credentials=credentials
        ).apply(
            lambda v: {
                "method": w.method,
                "serviceAccount": f"{w.namespace}/{w.service_account}",
                "roleArn": v["role_arn"],
                "expectedCallerIdentity": v["caller"],
                "podCredentials": v["credentials"],
                "crossAccount": list(v["cross"]),
                **v["extra"],
            }
        )

    def _targets(
        self, w: WorkloadConfig, role_arn: pulumi.Input[str], external_id: pulumi.Input[str] | None
    ) -> list["_Target"]:
        """One `CrossAccountTarget` per role in another account, with what the outputs say about it."""
        mode = w.cross_account_mode
        native = mode == "native"
        found: list[_Target] = []
        for i, target in enumerate(w.cross_account_targets):
            assert mode is not None
            session_tags = w.method == "pod-identity" and not (
                w.cross_account is not None and w.cross_account.disable_session_tags
            )
            component = CrossAccountTarget(
                f"wl-{w.name}-target-{i}",
                CrossAccountTargetArgs(
                    mode=mode,
                    workload=w.name,
                    source_role_arn=role_arn,
                    target_role_arn=target,
                    session_tags=session_tags,
                    external_id=external_id if native else None,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            describe = pulumi.Output.all(
                source=role_arn,
                trust=component.trust_policy,
                credentials=component.credentials,
                external_id=external_id if native else None,
            ).apply(
                lambda v, target=target, caller=component.caller_identity: {
                    "mode": mode,
                    "sourceRoleArn": v["source"],
                    "targetRoleArn": target,
                    "targetTrustPolicy": v["trust"],
                    **({"externalId": v["external_id"]} if native else {}),
                    "expectedCallerIdentity": caller,
                    "podCredentials": v["credentials"],
                }
            )
            found.append(_Target(component.caller_identity, component.credentials, describe))
        return found

    def _irsa_issuers(self, w: WorkloadConfig) -> list[tuple[pulumi.Input[str], pulumi.Input[str]]] | None:
        if w.method != "irsa" or not self._args.issuers:
            return None  # EKS (or no named issuers): the cluster's own issuer(s)
        chosen = [i for i in self._args.issuers if w.issuers is None or i.name in w.issuers]
        return [(i.provider_arn, i.issuer_url) for i in chosen]

    def _roles_anywhere(
        self,
        w: WorkloadConfig,
        role_name: str,
        tags: dict[str, str],
        policy_json: str | None,
        namespace: list[pulumi.Resource],
    ) -> tuple[pulumi.Output[str], dict[str, Any]]:
        args, cluster = self._args, self._args.cluster
        authority = self._roles_anywhere_authority()
        cn = certificate_cn(cluster.name, w.namespace, w.service_account)
        trust = authority.trust_anchor_arn.apply(
            lambda anchor: iam.to_json(roles_anywhere_trust(anchor, cn, authority.ca_common_name))
        )
        role = role_with_policies(
            self, f"wl-{w.name}", trust, tags, policy_json, list(w.policies.managed_arns), role_name
        )
        binding = RolesAnywhereWorkload(
            f"wl-{w.name}-ra",
            RolesAnywhereWorkloadArgs(
                authority=authority,
                role=role,
                profile_name=role_name,
                common_name=cn,
                namespace=w.namespace,
                service_account=w.service_account,
                session_name=w.name,
                region=args.region,
                tags=tags,
                k8s_provider=cluster.k8s_provider,
                depends_on=[*cluster.ready, *namespace],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        extra = pulumi.Output.all(authority.trust_anchor_arn, binding.profile_arn).apply(
            lambda a: {
                "trustAnchorArn": a[0],
                "profileArn": a[1],
                "certificateCommonName": cn,
                "secret": f"{w.namespace}/{binding.secret_name}",
                "configMap": f"{w.namespace}/{binding.config_map_name}",
            }
        )
        return role.arn, extra

    def _roles_anywhere_authority(self) -> RolesAnywhereAuthority:
        if self._authority is None:
            self._authority = RolesAnywhereAuthority(
                "roles-anywhere",
                RolesAnywhereAuthorityArgs(
                    cluster_name=self._args.cluster.name, tags=self._args.tags, protect=self._args.protect
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        return self._authority

    def _on_node_role(self, w: WorkloadConfig, policy_json: str | None) -> tuple[pulumi.Input[str], pulumi.Output[str]]:
        """Attach the permissions to every role of the nodes workloads run on; the first names the identity."""
        node_roles = [*self._args.cluster.workload_node_role_names, *self._args.extra_node_role_names]
        if not node_roles:
            raise ValueError(
                f"workload '{w.name}': instance-profile needs the nodes' roles "
                f"(ClusterHandle.workload_node_role_names); the {self._args.cluster.kind} cluster provided none"
            )
        child = pulumi.ResourceOptions(parent=self)
        for n, node_role in enumerate(node_roles):
            pulumi.Output.from_input(node_role).apply(
                lambda role: pulumi.log.warn(SHARED_NODE_ROLE_WARNING.format(name=w.name, role=role), resource=self)
            )
            if policy_json is not None:
                aws.iam.RolePolicy(f"wl-{w.name}-node-policy-{n}", role=node_role, policy=policy_json, opts=child)
            for i, arn in enumerate(w.policies.managed_arns):
                aws.iam.RolePolicyAttachment(
                    f"wl-{w.name}-node-{n}-managed-{i}", role=node_role, policy_arn=arn, opts=child
                )
        account = self._args.account_id
        return node_roles[0], pulumi.Output.from_input(node_roles[0]).apply(
            lambda role: f"arn:aws:iam::{account}:role/{role}"
        )

    def _namespace(self, namespace: str) -> list[pulumi.Resource]:
        """What the workload's namespaced objects wait for: the Namespace this component creates."""
        if namespace in BUILTIN_NAMESPACES:
            return []
        if namespace not in self._namespaces:
            self._namespaces[namespace] = k8s.core.v1.Namespace(
                f"wl-namespace-{namespace}",
                metadata={
                    "name": namespace,
                    "labels": {"app.kubernetes.io/managed-by": "pulumi", "k8s-platform/workload-identity": "true"},
                },
                opts=self._k8s_opts,
            )
        return [self._namespaces[namespace]]
