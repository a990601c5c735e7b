"""Self-hosted IRSA issuer and K3s operations: the published discovery document and JWKS are
reachable over HTTPS, the JWKS holds the key the servers sign with, the IAM OIDC provider points
at the issuer, etcd snapshots keep arriving in S3 and the spot-drain dead-letter queue is empty."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from programs.platformctl.doctor.framework import Check, Context, Result, fail, ok, skipped, warn

FETCH_TIMEOUT_SECONDS = 10


def _issuers(ctx: Context) -> dict[str, str]:
    named = ctx.outputs.get("oidcIssuers") or {}
    if named:
        return {name: v["issuerUrl"] for name, v in named.items()}
    url = ctx.outputs.get("oidcIssuerUrl")
    return {"cluster": url} if url else {}


def _fetch_json(url: str) -> Any:
    if not url.startswith("https://"):
        raise ValueError(f"{url} is not HTTPS: STS only fetches issuers over HTTPS")
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as resp:  # noqa: S310 - https only, checked above
        return json.loads(resp.read())


def _published(url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    discovery = _fetch_json(f"{url.rstrip('/')}/.well-known/openid-configuration")
    return discovery, _fetch_json(discovery["jwks_uri"])


def oidc_discovery(ctx: Context) -> Result:
    issuers = _issuers(ctx)
    if not issuers:
        return skipped("the stack exports no service-account issuer")
    queried, problems = [], []
    for name, url in issuers.items():
        queried.append(f"GET {url}/.well-known/openid-configuration and its jwks_uri")
        try:
            discovery, jwks = _published(url)
        except Exception as exc:  # noqa: BLE001 - unreachable is the finding
            problems.append(f"{name} ({url}): {type(exc).__name__}: {exc}")
            continue
        if discovery.get("issuer") != url:
            problems.append(f"{name}: discovery says issuer {discovery.get('issuer')}, tokens say {url}")
        if not str(discovery.get("jwks_uri", "")).startswith("https://"):
            problems.append(f"{name}: jwks_uri {discovery.get('jwks_uri')} is not HTTPS")
        if not jwks.get("keys"):
            problems.append(f"{name}: the JWKS has no keys")
    if problems:
        return fail(f"{len(problems)} problems with the published issuers", queried, problems)
    return ok(f"{len(issuers)} issuers publish discovery and a JWKS over HTTPS", queried)


def jwks_signing_key(ctx: Context) -> Result:
    issuers = _issuers(ctx)
    if not issuers:
        return skipped("the stack exports no service-account issuer")
    queried = ["GET /openid/v1/jwks (the API server's signing keys)"]
    served = ctx.kube_get("/openid/v1/jwks")
    if served is None:
        return fail("the API server serves no /openid/v1/jwks", queried)
    signing = {k["kid"] for k in served.get("keys", [])}
    problems = []
    for name, url in issuers.items():
        queried.append(f"GET {url} JWKS")
        try:
            published = {k.get("kid") for k in _published(url)[1].get("keys", [])}
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{name}: JWKS unreachable ({type(exc).__name__}); see oidc-discovery")
            continue
        if not signing <= published:
            problems.append(
                f"{name}: servers sign with kid {', '.join(sorted(signing - published))}, "
                f"the published JWKS has {', '.join(sorted(k for k in published if k)) or 'none'}"
            )
    if problems:
        return fail("STS cannot verify the servers' tokens for every issuer", queried, problems)
    return ok(f"every issuer publishes the servers' signing key ({', '.join(sorted(signing))})", queried)


def oidc_provider_url(ctx: Context) -> Result:
    issuers = _issuers(ctx)
    if not issuers:
        return skipped("the stack exports no service-account issuer")
    iam = ctx.aws("iam")
    queried = ["iam:ListOpenIDConnectProviders", "iam:GetOpenIDConnectProvider"]
    urls = {}
    for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
        urls[iam.get_open_id_connect_provider(OpenIDConnectProviderArn=p["Arn"])["Url"]] = p["Arn"]
    missing = [
        f"{name}: no IAM OIDC provider for {url}"
        for name, url in issuers.items()
        if url.removeprefix("https://") not in urls
    ]
    if missing:
        return fail(
            f"{len(missing)} issuers have no IAM OIDC provider: every IRSA call fails with InvalidIdentityToken",
            queried,
            missing,
        )
    return ok(f"{len(issuers)} issuers each have their IAM OIDC provider", queried)


def _interval_hours(cron: str) -> float:
    """The snapshot interval of a 5-field cron: `0 */6 * * *` -> 6; anything else counts as daily."""
    hour = cron.split()[1] if len(cron.split()) == 5 else "*"
    if hour.startswith("*/") and hour[2:].isdigit():
        return float(hour[2:])
    return 1.0 if hour == "*" else 24.0


def etcd_snapshots(ctx: Context) -> Result:
    bucket = ctx.outputs.get("etcdSnapshotBucket")
    if not bucket:
        return skipped("the stack exports no etcdSnapshotBucket")
    interval = _interval_hours(ctx.config.cluster.k3s.snapshots.schedule_cron) * 3600
    queried = [f"s3:ListObjectsV2 {bucket}"]
    newest = None
    for page in ctx.aws("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            stamp = obj["LastModified"].timestamp()
            newest = stamp if newest is None or stamp > newest else newest
    if newest is None:
        return fail(f"no etcd snapshot in s3://{bucket}", queried)
    age = ctx.now() - newest
    if age > 3 * interval:
        return fail(
            f"newest snapshot is {age / 3600:.1f} h old; the schedule takes one every {interval / 3600:g} h", queried
        )
    if age > 1.5 * interval:
        return warn(
            f"newest snapshot is {age / 3600:.1f} h old (one missed; schedule every {interval / 3600:g} h)", queried
        )
    return ok(f"newest snapshot {age / 3600:.1f} h old (schedule every {interval / 3600:g} h)", queried)


def drain_dead_letters(ctx: Context) -> Result:
    url = ctx.outputs.get("nodeDrainerDeadLetterQueueUrl")
    if not url:
        return skipped("the stack exports no nodeDrainerDeadLetterQueueUrl")
    attrs = ctx.aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    count = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    queried = [f"sqs:GetQueueAttributes {url}"]
    if count:
        return fail(f"{count} termination events the drainer gave up on: those nodes went without a drain", queried)
    return ok("the drain dead-letter queue is empty", queried)


CHECKS = [
    Check(
        "oidc-discovery",
        "every IRSA pod fails: STS cannot fetch the issuer's discovery document or JWKS",
        "curl -fsS <issuer>/.well-known/openid-configuration; curl -fsS <jwks_uri>",
        "pulumi up (the stack publishes both); for CloudFront check the distribution and its certificate",
        ("k3s",),
        oidc_discovery,
    ),
    Check(
        "jwks-signing-key",
        "InvalidIdentityToken for every IRSA pod after a key or issuer change",
        "kubectl get --raw /openid/v1/jwks | jq '.keys[].kid'; curl -fsS <jwks_uri> | jq '.keys[].kid'",
        "publish the servers' current key (pulumi up); never replace the service-account key in place",
        ("k3s",),
        jwks_signing_key,
    ),
    Check(
        "oidc-provider-url",
        "InvalidIdentityToken: No OpenIDConnect provider found for the issuer",
        "aws iam list-open-id-connect-providers; aws iam get-open-id-connect-provider "
        "--open-id-connect-provider-arn <arn>",
        "pulumi up recreates the provider; its URL must equal the issuer exactly (no trailing slash)",
        ("k3s", "eks"),
        oidc_provider_url,
    ),
    Check(
        "etcd-snapshots",
        "no restore point: etcd snapshots stopped arriving in S3",
        "aws s3 ls s3://<etcdSnapshotBucket>/ --recursive | sort | tail -3",
        "on a server: journalctl -u k3s | grep -i snapshot; check the server role's s3:PutObject and the KMS key",
        ("k3s",),
        etcd_snapshots,
    ),
    Check(
        "drain-dlq",
        "spot interruptions killed pods without a drain: drainer events dead-lettered",
        "aws sqs get-queue-attributes --queue-url <dlq> --attribute-names ApproximateNumberOfMessages",
        "read the messages and the drainer Lambda's logs; redrive them after fixing the cause",
        ("k3s",),
        drain_dead_letters,
    ),
]
