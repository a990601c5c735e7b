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
- Servers (embedded etcd) are placed round-robin over the zones, bootstrap first, one Auto Scaling
  group per zone pinned to its subnet (`components/core/etcd_quorum.py`): a zone outage leaves a
  quorum and a replacement stays in its zone; config refuses fewer zones than that needs.
- The embedded registry mirror (Spegel) is off by default; when on, `registries.yaml` comes from
  cloud-init on every node kind and its ports are open between the cluster's nodes only.
- `control_plane.k3s_control_plane` builds it all in start-up order and returns a complete handle.
- Public surface for siblings (Karpenter launches K3s agents): `agent_policy`,
  `render_k3s_agent_cloud_init`.
"""

from components.k3s.policies import agent_policy
from components.k3s.user_data import render_k3s_agent_cloud_init

__all__ = ["agent_policy", "render_k3s_agent_cloud_init"]
# `control_plane` (the start-up order, importing add-ons and identity) is imported by path by the
# program: Karpenter imports this package, and add-ons must not be loaded for it.
