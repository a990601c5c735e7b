"""`ClusterAddons`: the controllers that make a cluster a platform, on EKS and on K3s alike.

- (K3s's AWS cloud controller manager is not here: nodes stay `uninitialized` until it runs, so
  it belongs to the control plane's readiness, see `cloud_controller_manager.py`.)
- metrics-server and, on K3s, the EBS CSI chart (on EKS the managed add-on comes from
  `eks_addons.py`); then the default gp3 StorageClass.
- AWS Load Balancer Controller last (its Service-mutating webhook must not catch the other
  charts' Services while its pods are still starting), then the default IngressClass and its
  IngressClassParams (one shared IngressGroup; `ip` targets on EKS, `instance` on K3s).

Every controller's IAM goes through `ServiceAccountIdentity` (Pod Identity on EKS, IRSA on K3s);
switching an add-on off in config removes its release, identity and IAM. Webhook and APIService
serving certificates are minted by Pulumi (`WebhookCertificates`). Values and policies are
rendered by the pure `addon_values` / `addon_policies` modules; chart pins by `components.core.pins`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.addons import values as values
from components.addons.policies import (
    EBS_CSI_MANAGED_POLICY_ARN,
    ebs_csi_kms_policy,
    load_balancer_controller_policy,
)
from components.addons.webhook_certs import WebhookCertificates, WebhookCertificatesArgs
from components.config import StackConfig, uses_auto_mode
from components.core import iam_documents as iam
from components.core.cluster_handle import ClusterHandle
from components.core.pins import CHARTS
from components.identity import (
    ServiceAccountIdentity,
    ServiceAccountIdentityArgs,
    default_method,
)


def pinned_release(
    resource_name: str,
    release_name: str,
    chart_key: str,
    release_values: pulumi.Input[dict],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """A Helm release of a chart pinned in `pins.CHARTS`, into kube-system."""
    chart = CHARTS[chart_key]
    return k8s.helm.v3.Release(
        resource_name,
        name=release_name,  # fixed release names: chart resource names (webhook Service) derive from them
        chart=chart.chart,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo) if chart.repo else None,
        namespace=values.KUBE_SYSTEM,
        values=release_values,
        atomic=True,  # a failed upgrade rolls back instead of leaving a half-applied release
        cleanup_on_fail=True,
        timeout=600,
        opts=opts,
    )


def addon_identity(
    name: str,
    cfg: StackConfig,
    cluster: ClusterHandle,
    key: str,
    service_account: str,
    policy_json: pulumi.Input[str] | None,
    managed_policy_arns: list[str] | None,
    parent: pulumi.Resource,
) -> ServiceAccountIdentity:
    """A controller's role bound to its kube-system ServiceAccount (Pod Identity on EKS, IRSA on K3s)."""
    return ServiceAccountIdentity(
        name,
        ServiceAccountIdentityArgs(
            cluster=cluster,
            namespace=values.KUBE_SYSTEM,
            service_account=service_account,
            method=default_method(cluster),
            account_id=cfg.account_id,
            tags=cfg.resource_tags(**{"k8s-platform/addon": key}),
            inline_policy_json=policy_json,
            managed_policy_arns=managed_policy_arns or [],
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True)
class ClusterAddonsArgs:
    config: StackConfig
    """The stack: the `addons` section, plus the identity, names and tags every add-on role uses."""
    cluster: ClusterHandle
    """The complete cluster: provider, system scheduling, `ready` (system capacity first)."""
    vpc_id: pulumi.Input[str]
    """The cluster's VPC (the load balancer controller's `vpcId`, and the scope of its policy)."""

    @classmethod
    def from_stack(cls, cfg: StackConfig, cluster: ClusterHandle, vpc_id: pulumi.Input[str]) -> "ClusterAddonsArgs":
        return cls(config=cfg, cluster=cluster, vpc_id=vpc_id)


class ClusterAddons(pulumi.ComponentResource):
    releases: dict[str, k8s.helm.v3.Release]  # by add-on key
    identities: dict[str, ServiceAccountIdentity]  # by add-on key
    storage_class: k8s.storage.v1.StorageClass | None  # the EBS CSI default class, when enabled
    ingress_class: k8s.networking.v1.IngressClass | None  # the load balancer controller's, when enabled

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:addons:ClusterAddons", name, None, opts)
        self._name, self._cfg, self._cluster, self._vpc_id = name, args.config, args.cluster, args.vpc_id
        self.releases, self.identities = {}, {}
        addons = self._cfg.addons
        self.storage_class = None
        self.ingress_class = None

        # Everything waits for `cluster.ready` (system capacity; on K3s also the cloud controller
        # and the pod-identity webhook). K3s's cloud controller is not here: see module docstring.
        before_lb: list[pulumi.Resource] = []
        if addons.metrics_server.enabled:
            before_lb.append(self._metrics_server())
        if addons.ebs_csi.enabled:
            before_lb += self._ebs_csi()
        if addons.aws_load_balancer_controller.enabled:
            if uses_auto_mode(self._cfg):
                self._auto_mode_ingress_class()
            else:
                self._load_balancer_controller(after=before_lb)

        self.register_outputs(
            {
                "releases": {k: r.name for k, r in self.releases.items()},
                "roleArns": {k: i.role_arn for k, i in self.identities.items()},
            }
        )

    # ------------------------------------------------------------------------------ helpers
    def _k8s_opts(self, after: list[pulumi.Resource] | None = None, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self,
            provider=self._cluster.k8s_provider,
            depends_on=[*self._cluster.ready, *(after or [])],
            **kwargs,
        )

    def _identity(
        self,
        key: str,
        service_account: str,
        policy_json: pulumi.Input[str] | None = None,
        managed_policy_arns: list[str] | None = None,
    ) -> ServiceAccountIdentity:
        identity = addon_identity(
            f"{self._name}-{key}",
            self._cfg,
            self._cluster,
            key,
            service_account,
            policy_json,
            managed_policy_arns,
            self,
        )
        self.identities[key] = identity
        return identity

    def _release(
        self,
        key: str,
        chart_key: str,
        release_values: pulumi.Input[dict],
        after: list[pulumi.Resource],
        identity: ServiceAccountIdentity | None = None,
    ) -> k8s.helm.v3.Release:
        # The identity (role, policy, Pod Identity association) exists before any pod of the chart.
        depends = [*after, *([identity] if identity else [])]
        release = pinned_release(f"{self._name}-{key}", key, chart_key, release_values, self._k8s_opts(depends))
        self.releases[key] = release
        return release

    # ------------------------------------------------------------------------- the add-ons
    def _metrics_server(self) -> k8s.helm.v3.Release:
        certs = WebhookCertificates(
            f"{self._name}-metrics-server-certs",
            WebhookCertificatesArgs(
                service_name=values.METRICS_SERVER_RELEASE,
                namespace=values.KUBE_SYSTEM,
                k8s_provider=self._cluster.k8s_provider,
                secret_name=values.METRICS_SERVER_TLS_SECRET,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self._cluster.ready)),
        )
        release_values = values.metrics_server_values(
            scheduling=self._cluster.system_scheduling,
            highly_available=self._cfg.safeguards_in_force.highly_available,
            ca_bundle=certs.ca_cert_pem,
        )
        return self._release(
            values.METRICS_SERVER_RELEASE, "metrics-server", release_values, [certs.secret] if certs.secret else []
        )

    def _ebs_csi(self) -> list[pulumi.Resource]:
        cfg, ebs = self._cfg, self._cfg.addons.ebs_csi
        installed: list[pulumi.Resource] = []
        # EKS Auto Mode: AWS runs the driver; only the StorageClass, for its provisioner.
        auto_mode = uses_auto_mode(cfg)
        if self._cluster.kind == "k3s":
            # EKS: the managed add-on and its Pod Identity come from eks_addons.py.
            identity = self._identity(
                "ebs-csi",
                values.EBS_CSI_CONTROLLER_SERVICE_ACCOUNT,
                iam.to_json(ebs_csi_kms_policy(ebs.kms_key_arn)) if ebs.kms_key_arn else None,
                managed_policy_arns=[EBS_CSI_MANAGED_POLICY_ARN],
            )
            release_values = values.ebs_csi_values(
                cluster_name=cfg.cluster_name,
                region=cfg.region,
                service_account_annotations=identity.service_account_annotations,
                scheduling=self._cluster.system_scheduling,
                highly_available=cfg.safeguards_in_force.highly_available,
                volume_tags=cfg.resource_tags(),
            )
            installed.append(self._release(values.EBS_CSI_RELEASE, "aws-ebs-csi-driver", release_values, [], identity))
        spec = values.storage_class_manifest(
            ebs.kms_key_arn, values.AUTO_MODE_EBS_PROVISIONER if auto_mode else values.EBS_CSI_PROVISIONER
        )
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{self._name}-gp3",
            metadata=spec["metadata"],
            provisioner=spec["provisioner"],
            parameters=spec["parameters"],
            reclaim_policy=spec["reclaimPolicy"],
            volume_binding_mode=spec["volumeBindingMode"],
            allow_volume_expansion=spec["allowVolumeExpansion"],
            opts=self._k8s_opts(installed),
        )
        return [*installed, self.storage_class]

    def _load_balancer_controller(self, after: list[pulumi.Resource]) -> None:
        cfg, lb = self._cfg, self._cfg.addons.aws_load_balancer_controller
        target_type = lb.effective_target_type(self._cluster.kind)
        policy = pulumi.Output.from_input(self._vpc_id).apply(
            lambda vpc: iam.to_json(
                load_balancer_controller_policy(
                    cfg.cluster_name, vpc, cfg.region, cfg.account_id, waf_integration=lb.waf_integration
                )
            )
        )
        identity = self._identity("aws-load-balancer-controller", values.LB_CONTROLLER_SERVICE_ACCOUNT, policy)
        certs = WebhookCertificates(
            f"{self._name}-lb-webhook-certs",
            WebhookCertificatesArgs(service_name=values.LB_WEBHOOK_SERVICE, namespace=values.KUBE_SYSTEM),
            opts=pulumi.ResourceOptions(parent=self),
        )
        release_values = values.load_balancer_controller_values(
            cluster_name=cfg.cluster_name,
            region=cfg.region,
            vpc_id=self._vpc_id,
            service_account_annotations=identity.service_account_annotations,
            scheduling=self._cluster.system_scheduling,
            highly_available=cfg.safeguards_in_force.highly_available,
            webhook_ca=certs.ca_cert_pem,
            webhook_cert=certs.cert_pem,
            webhook_key=certs.private_key_pem,
            default_tags=cfg.resource_tags(),
            target_type=target_type,
            waf_integration=lb.waf_integration,
        )
        release = self._release(
            values.LB_CONTROLLER_RELEASE, "aws-load-balancer-controller", release_values, after, identity
        )
        params_name = values.ingress_class_params_name(lb.ingress_group)
        # The CRD ships with the chart: the parameters follow the release.
        params = k8s.apiextensions.CustomResource(
            f"{self._name}-ingress-class-params",
            api_version="elbv2.k8s.aws/v1beta1",
            kind="IngressClassParams",
            metadata={"name": params_name},
            spec=values.ingress_class_params_spec(lb.ingress_group, lb.scheme, cfg.resource_tags(), target_type),
            opts=self._k8s_opts([release]),
        )
        manifest = values.ingress_class_manifest(params_name)
        self.ingress_class = k8s.networking.v1.IngressClass(
            f"{self._name}-ingress-class",
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=self._k8s_opts([release, params]),
        )

    def _auto_mode_ingress_class(self) -> None:
        """EKS Auto Mode's ALB capability: its IngressClassParams and the default IngressClass (no chart)."""
        lb = self._cfg.addons.aws_load_balancer_controller
        params_name = values.ingress_class_params_name(lb.ingress_group)
        # The CRD comes with Auto Mode itself: it exists as soon as the cluster does.
        params = k8s.apiextensions.CustomResource(
            f"{self._name}-ingress-class-params",
            api_version=values.AUTO_MODE_INGRESS_PARAMS_API_VERSION,
            kind="IngressClassParams",
            metadata={"name": params_name},
            spec=values.auto_mode_ingress_class_params_spec(lb.ingress_group, lb.scheme),
            opts=self._k8s_opts(),
        )
        manifest = values.auto_mode_ingress_class_manifest(params_name)
        self.ingress_class = k8s.networking.v1.IngressClass(
            f"{self._name}-ingress-class",
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=self._k8s_opts([params]),
        )
