"""Where a self-hosted OIDC issuer lives: names and URLs derived from config only (pure).

The issuer URL is baked into every service-account token (`iss`) and into every IRSA trust
policy, so it must not depend on anything a rebuild changes (servers, distribution ids): it is
derived from the cluster name, account, region and configured names. `components/config/`
uses these functions to compare the derived URL with the pinned one (`identity.issuerUrl`).
"""

from __future__ import annotations

import re

PRIMARY_ISSUER = "primary"

# S3 bucket names that work with virtual-hosted HTTPS (no dots: a dot breaks the *.s3 certificate).
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
HOSTNAME = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def default_bucket_name(cluster_name: str, account_id: str, issuer_name: str = PRIMARY_ISSUER) -> str:
    """`<cluster>-oidc-<account>` (plus the issuer's name for standby issuers): globally unique enough."""
    middle = "oidc" if issuer_name == PRIMARY_ISSUER else f"oidc-{issuer_name}"
    return f"{cluster_name}-{middle}-{account_id}"


def s3_issuer_url(bucket_name: str, region: str) -> str:
    """Virtual-hosted, regional S3 endpoint: valid TLS for the bucket and no redirect for STS."""
    return f"https://{bucket_name}.s3.{region}.amazonaws.com"


def cloudfront_issuer_url(domain_name: str) -> str:
    """A custom domain, not `dXXXX.cloudfront.net`: a replaced distribution keeps the issuer."""
    return f"https://{domain_name}"
