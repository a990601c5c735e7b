"""Karpenter v1: the controller, its IAM and interruption queue, and the stack's node classes and pools.

Design notes:
- `specs` renders EC2NodeClass and NodePool specs purely from config; the tests validate them
  against the upstream CRDs' OpenAPI schemas and CEL rules.
- `iam` renders the controller policy from upstream's reference policy, scoped by cluster tags.
- On EKS nodes join through an access entry; on K3s they boot the same cloud-init as the agent ASG
  (`components.k3s.render_k3s_agent_cloud_init`) with the registration taint Karpenter expects.
- The pool capacity rule (every allowed instance type can hold the class's maxPods) is enforced
  by config before any resource is registered.
- A pool marked `securityGroupsForPods` (EKS security groups for pods) gets one more requirement:
  `node.kubernetes.io/instance-type In` the trunk-ENI types it admits (`components.core.trunk_eni`).
- EKS Auto Mode (`auto_mode`, `auto_mode_specs`): the same node classes and pools rendered as
  `eks.amazonaws.com/v1` NodeClasses and NodePools on them, without controller, IAM or queue (AWS runs
  Karpenter); they depend on the cluster, so they are deleted (and their nodes drained) before it.
"""
