"""Facts and pure recipes every feature shares; the lowest layer.

Design notes:
- Nothing here registers a ComponentResource and nothing here imports `components.config` or a
  feature package (tests/test_layering.py): a feature may always import core, never the reverse.
- Each fact is defined once: IAM document builders and AWS managed-policy ARNs (`iam_documents`),
  KMS key recipes (`kms_keys`), TLS recipes (`tls_certs`), kubeconfig rendering (`kubeconfig`),
  the `ClusterHandle` a control plane hands to everything above it (`cluster_handle`), instance
  facts (`max_pods`: the ENI data and the maxPods formula; `pool_capacity`: what a Karpenter pool's
  smallest type can hold), issuer naming (`oidc_hosting`), trust-policy renderers
  (`trust_policies`) and every version pin (`pins`).
- Modules are imported by path (`from components.core.max_pods import max_pods_for`); this file
  re-exports nothing so that importing one fact never loads the rest.
"""
