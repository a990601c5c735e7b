"""K3s on EC2: servers behind an internal NLB, agents in an ASG, the PKI, etcd snapshots to S3, and
interruption handling.

Design notes:
- User-data is rendered purely (`user_data`): a cloud-init document whose boot script reads the
  join token from SSM at boot, so no secret is ever in user-data; the fixed script body lives in
  `components/k3s/node_boot.sh` (shellcheck-clean).
- The cluster CA and service-account signing key come from `pki` (pulumi_tls), so the
  self-hosted IRSA issuer can publish the JWKS before any server boots.
- `datastore` (optional, `cluster.k3s.datastore`): RDS PostgreSQL or Aurora Serverless v2 instead
  of embedded etcd: no cluster-init and no snapshots; servers assemble `datastore-endpoint` at boot
  from the RDS-managed secret (spliced into the boot script from `datastore_boot.sh`).
- `interruption` wires EventBridge -> SQS -> the `node_drainer` Lambda, which drains a node on spot
  interruption, rebalance, ASG termination and stop.
- `control_plane.k3s_control_plane` builds it all in start-up order and returns a complete handle.
- Public surface for siblings (Karpenter launches K3s agents): `agent_policy`,
  `render_k3s_agent_cloud_init`.
"""

from components.k3s.policies import agent_policy
from components.k3s.user_data import render_k3s_agent_cloud_init

__all__ = ["agent_policy", "render_k3s_agent_cloud_init"]
# `control_plane` (the start-up order, importing add-ons and identity) is imported by path by the
# program: Karpenter imports this package, and add-ons must not be loaded for it.
