"""What a probe run's output means (pure): the first-call timing, the identity, and which of the
K3s auth benchmark's six failure scenarios an AWS error code points at.

The error code alone separates most scenarios; two codes are shared (InvalidIdentityToken by
issuer change and provider deletion, AccessDenied by role deletion and a `:sub` mismatch), and
the facts the probe looks up (is the role there, is there a provider for the token's issuer, is
the Roles Anywhere Secret there) tell those apart.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass

SCENARIOS = {
    "issuer-changed": "the token's issuer is not the one IAM trusts (service-account-issuer changed)",
    "clock-skew": "the node's clock is more than 5 minutes off (signature or token time rejected)",
    "role-deleted": "the workload's IAM role no longer exists",
    "oidc-provider-deleted": "the IAM OIDC provider for the cluster's issuer was deleted",
    "trust-sub-mismatch": "the role's trust policy does not name this ServiceAccount (:sub mismatch)",
    "roles-anywhere-secret-deleted": "the Roles Anywhere certificate Secret is gone",
    "unclassified": "an error outside the six recorded scenarios",
}

_AWS_ERROR = re.compile(
    r"An error occurred \((?P<code>[A-Za-z.]+)\) when calling the (?P<op>\w+) operation: (?P<msg>.*)"
)
_NO_PROVIDER = re.compile(r"No OpenIDConnect provider found in your account for (?P<issuer>\S+)")
_SKEW_CODES = {"RequestExpired", "RequestTimeTooSkewed", "SignatureDoesNotMatch", "InvalidSignatureException"}
_SKEW_TEXT = re.compile(r"(?i)signature expired|token used before issued|not yet valid|clock skew|request time")


@dataclass(frozen=True)
class ProbeError:
    code: str  # the AWS error code, or CredentialRetrievalError / a Kubernetes reason (FailedMount)
    operation: str
    message: str


@dataclass(frozen=True)
class Facts:
    """What the probe looked up when a run failed."""

    role_exists: bool | None = None
    provider_issuers: frozenset[str] = frozenset()  # issuer URLs IAM has providers for (https://...)
    stack_issuers: frozenset[str] = frozenset()
    secret_exists: bool | None = None


def parse_error(text: str) -> ProbeError:
    """An AWS CLI error line (or a pod-start failure `REASON: message`) as code, operation, message."""
    m = _AWS_ERROR.search(text)
    if m:
        return ProbeError(m.group("code"), m.group("op"), m.group("msg").strip())
    if "custom-process" in text or "credential_process" in text or "aws_signing_helper" in text:
        return ProbeError("CredentialRetrievalError", "credential_process", text.strip())
    head, _, rest = text.partition(": ")
    if head and head.replace("_", "").isalnum() and rest:
        return ProbeError(head, "", rest.strip())
    return ProbeError("Unknown", "", text.strip())


def _normalize(url: str) -> str:
    url = url.strip().rstrip(".,;").rstrip("/")
    return url if url.startswith("https://") else f"https://{url}"


def classify(error: ProbeError, facts: Facts) -> str:
    code, msg = error.code, error.message
    if code in _SKEW_CODES and (code != "SignatureDoesNotMatch" or _SKEW_TEXT.search(msg)):
        return "clock-skew"
    if code == "InvalidIdentityToken":
        if _SKEW_TEXT.search(msg):
            return "clock-skew"
        provider = _NO_PROVIDER.search(msg)
        if provider:
            issuer = _normalize(provider.group("issuer"))
            stack = {_normalize(i) for i in facts.stack_issuers}
            if stack and issuer not in stack:
                return "issuer-changed"
            return "oidc-provider-deleted"
        return "unclassified"
    if code in ("AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "NoSuchEntity"):
        if facts.role_exists is False:
            return "role-deleted"
        if code == "AccessDenied" and error.operation == "AssumeRoleWithWebIdentity":
            return "trust-sub-mismatch"
        return "unclassified"
    if (
        code in ("CredentialRetrievalError", "FailedMount", "CreateContainerConfigError")
        and facts.secret_exists is False
    ):
        return "roles-anywhere-secret-deleted"
    return "unclassified"


def identity_matches(expected: str, arn: str) -> bool:
    """`<...>` in the expected caller identity stands for a part chosen at run time (a session name)."""
    parts = re.split(r"<[^>]*>", expected)
    pattern = "[^/]+".join(re.escape(p) for p in parts)
    return re.fullmatch(pattern, arn.strip()) is not None


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def p95(values: list[float]) -> float | None:
    """Nearest-rank 95th percentile (of 10 runs: the 10th; the benchmark's bimodal tail shows)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]
