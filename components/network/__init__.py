"""The VPC: public, private and pod subnets per zone, NAT, endpoints and flow logs.

Design notes:
- `layout` is pure: `network_layout` turns the VPC CIDR, the secondary pod CIDR and the zones into
  subnet CIDRs, so the addressing plan is testable without Pulumi; `vpc.Network` only wires it.
- Pod subnets live in a secondary CIDR (100.64.0.0/10 or 198.19.0.0/16) so that pods never exhaust
  node addresses (EKS custom networking; K3s uses them for nothing but Karpenter discovery).
- Public surface for siblings: `Network`, `NetworkArgs`.
"""

from components.network.vpc import Network, NetworkArgs

__all__ = ["Network", "NetworkArgs"]
