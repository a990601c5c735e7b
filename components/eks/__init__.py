"""The EKS control plane: cluster, access entries, the system node group and managed add-ons.

Design notes:
- Access is by access entries only (`access`): the creator gets no implicit admin, and the
  `CONFIG_MAP` mode is refused by config.
- The system node group (`system_nodes`) runs the controllers Karpenter cannot schedule itself;
  its user-data is nodeadm's NodeConfig (`nodeadm`, pure) with maxPods from `components.core.max_pods`.
- `addons` installs the EKS managed add-ons in the order EKS needs: networking (vpc-cni with
  custom networking, kube-proxy, CoreDNS) before nodes, workload add-ons (Pod Identity agent,
  EBS CSI) after.
- `cluster.EksCluster` returns a complete `ClusterHandle`.
- Optional data-plane pieces, each wired by the program only when configured: `pod_security_groups`
  (SecurityGroupPolicies and the groups the stack creates for them; `ENABLE_POD_ENI` on the CNI and
  the VPC resource controller policy on the cluster role follow the same config) and `fargate`
  (Fargate profiles in the private subnets with their pod execution role).
- `auto_mode`: EKS Auto Mode (`cluster.eks.computeMode: auto-mode`): the three capability configs, the
  cluster role's extra policies, the node role and (without built-in pools) its EC2 access entry; no
  add-ons and no system node group are created then.
- Public surface for siblings: `NODE_ENTRY_TYPE` (the access entry type of EC2 Linux nodes).
"""

from components.eks.access import NODE_ENTRY_TYPE

__all__ = ["NODE_ENTRY_TYPE"]
