"""`EfsStorage`: EFS for ReadWriteMany volumes on either cluster kind (`addons.efsCsi`, off by default).

- The file system is encrypted at rest with its own rotating KMS key (protected, like the file
  system, where the environment protects stateful resources), with automatic backups on by default.
- One mount target per zone, in the node (private) subnets, behind a security group that admits
  NFS (TCP 2049) from the node security group only: every node of both kinds carries it (EKS system
  and Karpenter nodes, K3s servers, agents and Karpenter nodes). Pods do not mount: the driver's node
  plugin does, on the host network, so no pod or CIDR rule is needed.
- The driver: on EKS the managed add-on `aws-efs-csi-driver` (version pinned per minor in
  `components/core/pins.py`) with its controller's role bound by Pod Identity; on K3s the pinned
  chart with IRSA through the self-hosted issuer (the pod-identity webhook injects the token). Both
  roles carry only the AWS managed `AmazonEFSCSIDriverPolicy` (which limits access point deletion to
  the ones the driver tagged).
- A StorageClass (not the default: gp3 stays the default) that provisions one access point per
  PersistentVolume (`provisioningMode: efs-ap`): each volume is its own directory with its own POSIX
  identity from the configured gid range; deleting a volume removes its access point, never the data.

Values and the StorageClass are rendered purely (`efs_csi_values`, `efs_storage_class_manifest`);
the chart's keys are checked against its values.yaml in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.addons.cluster_addons import addon_identity, pinned_release
from components.addons.values import replicas, scheduling_values
from components.config import StackConfig, uses_auto_mode
from components.config.efs import EfsCsiConfig
from components.core import iam_documents as iam
from components.core.cluster_handle import ClusterHandle, SystemScheduling
from components.core.kms_keys import rotating_key
from components.core.pins import EFS_CSI, addon_versions

NFS_PORT = 2049
EFS_CSI_RELEASE = "aws-efs-csi-driver"
EFS_CSI_CHART = "aws-efs-csi-driver"
EFS_CSI_CONTROLLER_SERVICE_ACCOUNT = "efs-csi-controller-sa"
EFS_PROVISIONER = "efs.csi.aws.com"
# Where access point directories are created on the file system.
ACCESS_POINT_BASE_PATH = "/dynamic_provisioning"


def efs_csi_values(
    *,
    region: str,
    service_account_annotations: Any,
    scheduling: SystemScheduling,
    highly_available: bool,
    access_point_tags: dict[str, str],
) -> dict[str, Any]:
    """Values of the aws-efs-csi-driver chart (K3s), names as in its values.yaml at the pinned version."""
    return {
        "controller": {
            "replicaCount": replicas(highly_available),
            **scheduling_values(scheduling),
            "serviceAccount": {
                "create": True,
                "name": EFS_CSI_CONTROLLER_SERVICE_ACCOUNT,
                "annotations": service_account_annotations,
            },
            # IRSA: regional STS (no dependency on the global endpoint), and the region stated: with
            # IMDS hop limit 1 the controller pod cannot ask the node for it.
            "regionalStsEndpoints": True,
            "env": [{"name": "AWS_REGION", "value": region}],
            # Access points carry the platform's tags like every other resource.
            "tags": dict(access_point_tags),
            # One replica must stay up through a node drain where the environment is highly available.
            "podDisruptionBudget": {"enabled": highly_available},
        },
        # The StorageClass is owned by the EfsStorage component.
        "storageClasses": [],
    }


def efs_storage_class_manifest(config: EfsCsiConfig, file_system_id: Any) -> dict[str, Any]:
    """The access-point StorageClass: one access point (own directory, own POSIX id) per volume."""
    return {
        "metadata": {"name": config.storage_class_name},
        "provisioner": EFS_PROVISIONER,
        "parameters": {
            "provisioningMode": "efs-ap",
            "fileSystemId": file_system_id,
            "directoryPerms": config.directory_perms,
            "gidRangeStart": str(config.gid_range_start),
            "gidRangeEnd": str(config.gid_range_end),
            "basePath": ACCESS_POINT_BASE_PATH,
        },
        "reclaimPolicy": config.reclaim_policy,
        # EFS is regional: a volume is reachable from every zone, no need to wait for the pod.
        "volumeBindingMode": "Immediate",
    }


@dataclass(frozen=True)
class EfsStorageArgs:
    config: StackConfig
    """The stack: `addons.efsCsi`, the EKS version and add-on overrides, names, tags, safeguards."""
    cluster: ClusterHandle
    """The complete cluster: node security group, provider, system scheduling, `ready`."""
    vpc_id: pulumi.Input[str]
    """The VPC of the mount targets' security group."""
    node_subnet_ids: dict[str, pulumi.Input[str]]
    """`{az: subnet_id}` of the node (private) subnets: one mount target each."""

    @classmethod
    def from_stack(
        cls,
        cfg: StackConfig,
        cluster: ClusterHandle,
        vpc_id: pulumi.Input[str],
        node_subnet_ids: dict[str, pulumi.Input[str]],
    ) -> "EfsStorageArgs":
        return cls(config=cfg, cluster=cluster, vpc_id=vpc_id, node_subnet_ids=dict(node_subnet_ids))


class EfsStorage(pulumi.ComponentResource):
    kms_key: aws.kms.Key
    security_group: aws.ec2.SecurityGroup
    file_system: aws.efs.FileSystem
    mount_targets: dict[str, aws.efs.MountTarget]  # by availability zone
    driver: pulumi.Resource  # the EKS add-on or the Helm release
    storage_class: k8s.storage.v1.StorageClass

    def __init__(self, name: str, args: EfsStorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:addons:EfsStorage", name, None, opts)
        cfg, cluster, efs = args.config, args.cluster, args.config.addons.efs_csi
        tags, cluster_name = cfg.resource_tags(), cfg.cluster_name
        child = pulumi.ResourceOptions(parent=self)
        protect = cfg.safeguards_in_force.protect_stateful_resources

        self.kms_key = rotating_key(
            f"{name}-key",
            alias=f"{cluster_name}-efs",
            description=f"{cluster_name} EFS file system encryption at rest",
            policy=iam.to_json(iam.kms_key_policy(cfg.account_id)),
            tags=tags,
            parent=self,
            protect=protect,
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-mount-targets",
            vpc_id=args.vpc_id,
            description=f"{cluster_name} EFS mount targets: NFS from the cluster's nodes only",
            revoke_rules_on_delete=True,
            tags={**tags, "Name": f"{cluster_name}-efs"},
            opts=child,
        )
        # NFS from the node security group (the CSI node plugin mounts on the host network); Auto Mode's
        # built-in pools and Fargate pods sit on the EKS cluster security group instead.
        nfs_sources = {
            "nodes": (
                cluster.node_security_group_id,
                "NFS from the cluster's nodes (the CSI node plugin mounts on the host network)",
            )
        }
        if cluster.eks_cluster is not None and (uses_auto_mode(cfg) or cfg.cluster.eks.fargate_profiles):
            nfs_sources["cluster-sg"] = (
                cluster.eks_cluster.vpc_config.cluster_security_group_id,
                "NFS from nodes and pods on the EKS cluster security group (Auto Mode, Fargate)",
            )
        nfs_rules = [
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-nfs-from-{source}",
                security_group_id=self.security_group.id,
                referenced_security_group_id=group_id,
                ip_protocol="tcp",
                from_port=NFS_PORT,
                to_port=NFS_PORT,
                description=description,
                tags=tags,
                opts=child,
            )
            for source, (group_id, description) in nfs_sources.items()
        ]
        self.file_system = aws.efs.FileSystem(
            f"{name}-fs",
            encrypted=True,
            kms_key_id=self.kms_key.arn,
            performance_mode=efs.performance_mode,
            throughput_mode=efs.throughput_mode,
            tags={**tags, "Name": f"{cluster_name}-efs"},
            # Every ReadWriteMany volume's data lives here.
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        aws.efs.BackupPolicy(
            f"{name}-backup",
            file_system_id=self.file_system.id,
            backup_policy=aws.efs.BackupPolicyBackupPolicyArgs(status="ENABLED" if efs.backup else "DISABLED"),
            opts=child,
        )
        self.mount_targets = {
            az: aws.efs.MountTarget(
                f"{name}-mount-target-{az}",
                file_system_id=self.file_system.id,
                subnet_id=subnet_id,
                security_groups=[self.security_group.id],
                opts=pulumi.ResourceOptions(parent=self, depends_on=nfs_rules),
            )
            for az, subnet_id in args.node_subnet_ids.items()
        }

        identity = addon_identity(
            f"{name}-csi",
            cfg,
            cluster,
            EFS_CSI,
            EFS_CSI_CONTROLLER_SERVICE_ACCOUNT,
            None,
            [iam.EFS_CSI_DRIVER_POLICY_ARN],
            self,
        )
        # The controller's credentials exist before its pods start (injected at pod creation).
        after = [*cluster.ready, identity]
        if cluster.kind == "eks":
            assert cluster.eks_cluster is not None
            eks = cfg.cluster.eks
            self.driver = aws.eks.Addon(
                f"{name}-{EFS_CSI}",
                cluster_name=cluster.eks_cluster.name,
                addon_name=EFS_CSI,
                addon_version=addon_versions(eks.version, eks.addon_versions)[EFS_CSI],
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update=eks.resolve_conflicts_on_update,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
        else:
            release_values = efs_csi_values(
                region=cfg.region,
                service_account_annotations=identity.service_account_annotations,
                scheduling=cluster.system_scheduling,
                highly_available=cfg.safeguards_in_force.highly_available,
                access_point_tags=tags,
            )
            self.driver = pinned_release(
                f"{name}-{EFS_CSI_RELEASE}",
                EFS_CSI_RELEASE,
                EFS_CSI_CHART,
                release_values,
                pulumi.ResourceOptions(parent=self, provider=cluster.k8s_provider, depends_on=after),
            )
        manifest = efs_storage_class_manifest(efs, self.file_system.id)
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-storage-class",
            metadata=manifest["metadata"],
            provisioner=manifest["provisioner"],
            parameters=manifest["parameters"],
            reclaim_policy=manifest["reclaimPolicy"],
            volume_binding_mode=manifest["volumeBindingMode"],
            # Volumes are provisioned once the driver runs and the file system is reachable in every zone.
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=cluster.k8s_provider,
                depends_on=[*cluster.ready, self.driver, *self.mount_targets.values()],
            ),
        )
        self.register_outputs(
            {
                "fileSystemId": self.file_system.id,
                "storageClass": efs.storage_class_name,
                "securityGroupId": self.security_group.id,
            }
        )
