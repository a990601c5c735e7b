"""`k8s-platform:addons`: every cluster add-on, each switchable (components/addons/cluster_addons.py)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, StrictBool, field_validator

from components.config.base import Model, dns_label
from components.config.efs import EfsCsiConfig

KMS_KEY_ARN = re.compile(
    r"arn:aws:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII
)  # used with fullmatch; partition aws


class LoadBalancerControllerConfig(Model):
    """AWS Load Balancer Controller (components/addons/cluster_addons.py): Ingress -> ALB, Service -> NLB."""

    enabled: bool = Field(
        True,
        description=(
            "Install the AWS Load Balancer Controller, its IAM and the default IngressClass; under "
            "`cluster.eks.computeMode: auto-mode` only the default IngressClass of Auto Mode's `eks.amazonaws.com/alb` "
            "controller and its IngressClassParams (`ingressGroup`, `scheme`)."
        ),
    )
    # One IngressGroup shared by every Ingress of the default class: one ALB, not one per Ingress
    # (ALB sprawl exhausts ENI and LB quotas).
    ingress_group: str = Field(
        "shared",
        description=(
            "IngressGroup (a DNS label) shared by every Ingress of the default class: one ALB, not one per Ingress."
        ),
    )
    scheme: Literal["internal", "internet-facing"] = Field("internal", description="Scheme of the shared ALB.")
    # None = by cluster: `ip` on EKS (pods hold VPC addresses: no NodePort hop, no 502s from draining
    # instance targets), `instance` on K3s (flannel's overlay pod IPs are unreachable from an ALB).
    target_type: Literal["ip", "instance"] | None = Field(
        None,
        description=(
            "Default target type (IngressClassParams and Services); unset means `ip` on EKS, `instance` on K3s; "
            "`ip` is refused on K3s (a load balancer cannot reach flannel's overlay pod addresses)."
        ),
    )
    # WAF / WAFv2 / Shield Advanced on the ALBs (Ingress annotations wafv2-acl-arn, shield-advanced-
    # protection): off, so the controller holds no WAF or Shield permission unless asked.
    waf_integration: StrictBool = Field(
        False,
        description=(
            "Let the controller attach WAF Regional / WAFv2 web ACLs and Shield Advanced protections to the ALBs "
            "(sets the chart's `enableWaf`, `enableWafv2`, `enableShield` and grants those actions, scoped to this "
            "account and region's load balancers); off: the controller holds no WAF or Shield permission."
        ),
    )

    def effective_target_type(self, kind: str) -> str:
        return self.target_type or ("ip" if kind == "eks" else "instance")

    _group = field_validator("ingress_group")(classmethod(lambda cls, v: dns_label(v)))


class EbsCsiConfig(Model):
    """EBS CSI: the managed add-on on EKS, the chart on K3s; plus the default gp3 StorageClass."""

    enabled: bool = Field(
        True,
        description=(
            "Install the EBS CSI driver (EKS managed add-on / K3s chart), its IAM and the default gp3 StorageClass; "
            "under `cluster.eks.computeMode: auto-mode` only the StorageClass, for Auto Mode's "
            "`ebs.csi.eks.amazonaws.com`."
        ),
    )
    # Customer-managed key for volume encryption; None = the account's aws/ebs key (still encrypted).
    kms_key_arn: str | None = Field(
        None,
        description=(
            "Customer-managed KMS key ARN for volume encryption (adds a grant policy to the driver's role); unset "
            "means volumes are encrypted with the account's `aws/ebs` key. Under `auto-mode` it also encrypts the "
            "nodes' ephemeral storage (NodeClass `kmsKeyID`) and the grant policy goes to the cluster role."
        ),
    )

    @field_validator("kms_key_arn")
    @classmethod
    def _kms(cls, v: str | None) -> str | None:
        if v is not None and not KMS_KEY_ARN.fullmatch(v):
            raise ValueError(f"'{v}' is not a KMS key ARN like arn:aws:kms:us-east-1:123456789012:key/<uuid>")
        return v


def kubernetes_minor(version: str) -> str:
    """`v1.35.1+k3s1` or `1.35` -> `1.35`."""
    return ".".join(version.lstrip("v").split("+", 1)[0].split(".")[:2])


class AddonToggle(Model):
    enabled: bool = Field(True, description="Install the add-on.")


class CloudControllerManagerConfig(Model):
    # None = on for k3s (its nodes wait for an external cloud controller); refused on EKS.
    enabled: bool | None = Field(
        None,
        description=(
            "Run the AWS cloud controller manager (K3s); unset means on for K3s; `true` is refused on EKS "
            "(it runs inside EKS's managed control plane)."
        ),
    )


class AddonsConfig(Model):
    """Cluster add-ons; each can be switched off (its IAM goes with it)."""

    aws_load_balancer_controller: LoadBalancerControllerConfig = Field(
        LoadBalancerControllerConfig(),
        description=("AWS Load Balancer Controller: Ingresses become ALBs, LoadBalancer Services NLBs."),
    )
    ebs_csi: EbsCsiConfig = Field(EbsCsiConfig(), description="EBS CSI driver and the default gp3 StorageClass.")
    metrics_server: AddonToggle = Field(
        AddonToggle(), description=("metrics-server, with a Pulumi-minted serving certificate.")
    )
    cloud_controller_manager: CloudControllerManagerConfig = Field(
        CloudControllerManagerConfig(),
        description=("AWS cloud controller manager (K3s nodes wait for an external cloud controller)."),
    )
    efs_csi: EfsCsiConfig = Field(
        EfsCsiConfig(),
        description=(
            "EFS (ReadWriteMany volumes): encrypted file system, mount targets, the EFS CSI driver and an "
            "access-point StorageClass; off by default."
        ),
    )

    def cloud_controller_manager_enabled(self, kind: str) -> bool:
        return kind == "k3s" and self.cloud_controller_manager.enabled is not False

    def k3s_disabled_components(self) -> list[str]:
        """K3s packaged components replaced by an enabled add-on (two of each would fight)."""
        disabled: list[str] = []
        if self.aws_load_balancer_controller.enabled:
            disabled += ["servicelb", "traefik"]  # Services/Ingresses go to NLBs/ALBs instead
        if self.ebs_csi.enabled:
            disabled.append("local-storage")  # its local-path class would be a second default
        if self.metrics_server.enabled:
            disabled.append("metrics-server")  # the same APIService v1beta1.metrics.k8s.io
        return disabled
