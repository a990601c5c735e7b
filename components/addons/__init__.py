"""Cluster add-ons installed by Helm: load balancer controller, EBS CSI, metrics-server, the AWS
cloud controller and the pod-identity webhook on K3s.

Design notes:
- `values` renders each chart's values as pure data, with key names as in the pinned chart
  version's values.yaml (pins in `components.core.pins`); contract tests hold them
  against upstream's files.
- `policies` renders the controllers' IAM policies from the upstream reference policies.
- `cluster_addons.ClusterAddons` wires the releases; on K3s the control-plane package decides when
  the cloud controller and the webhook start (they must exist before any other pod is created).
- `efs.EfsStorage` (`addons.efsCsi`, both kinds): the encrypted file system, its mount targets and
  NFS security group, the driver (EKS managed add-on / K3s chart) and the access-point StorageClass.
- Public surface: the components, the value helpers other charts reuse (`KUBE_SYSTEM`,
  `scheduling_values`, `irsa_token_projection`) and `ebs_csi_kms_policy`.
"""

from components.addons.cloud_controller_manager import CloudControllerManager, CloudControllerManagerArgs
from components.addons.cluster_addons import ClusterAddons, ClusterAddonsArgs
from components.addons.efs import EfsStorage, EfsStorageArgs
from components.addons.pod_identity_webhook import PodIdentityWebhook, PodIdentityWebhookArgs
from components.addons.policies import ebs_csi_kms_policy
from components.addons.values import KUBE_SYSTEM, irsa_token_projection, scheduling_values

__all__ = [
    "KUBE_SYSTEM",
    "CloudControllerManager",
    "CloudControllerManagerArgs",
    "ClusterAddons",
    "ClusterAddonsArgs",
    "EfsStorage",
    "EfsStorageArgs",
    "PodIdentityWebhook",
    "PodIdentityWebhookArgs",
    "ebs_csi_kms_policy",
    "irsa_token_projection",
    "scheduling_values",
]
