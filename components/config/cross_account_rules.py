"""Cross-field rules of a workload's cross-account access (pure; called by identity_rules).

Two ways to a role in another account, both valid:
- `native` (`crossAccount.mode: native`): the Pod Identity association names the target role
  (`targetRoleArn`); the agent assumes the workload role, then the target role, and the pod gets
  the target role's session. Needs `pod-identity`; one target per association; the workload
  role's own permissions never reach the pod (so none are accepted).
- `manual` (`crossAccount.mode: manual`, or its shorthand `crossAccountRoleArns`): the pod gets
  the workload role, which may `sts:AssumeRole` into the targets; the app (or its SDK profile)
  makes the hop. Works with every method and keeps the workload role's permissions.

The session policy (`native` only) is the association's `policy`: EKS accepts it only with session
tags disabled, and STS, which receives it on the hop, caps a session policy at 2048 characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from components.core import iam_documents as iam

if TYPE_CHECKING:
    from components.config.identity import WorkloadStatement
    from components.config.stack import StackConfig

Problem = tuple[str, str]

# STS AssumeRole: "The plaintext that you use for both inline and managed session policies can't
# exceed 2,048 characters."
SESSION_POLICY_MAX_CHARS = 2048


def session_policy_json(statements: list["WorkloadStatement"]) -> str | None:
    """The association's session policy document (compact JSON), or None without statements."""
    if not statements:
        return None
    return iam.to_json(
        iam.document(
            *(
                iam.statement(s.actions, s.resources, effect=s.effect, conditions=s.conditions, sid=s.sid)
                for s in statements
            )
        )
    )


def cross_account_problems(cfg: "StackConfig", key: str, w: Any) -> Iterator[Problem]:
    """Problems of workload `w` (at `key`, e.g. `workloads.0`)."""
    cross = w.cross_account
    if cross is not None and w.cross_account_role_arns:
        yield (
            f"{key}.crossAccountRoleArns",
            "give the targets once: crossAccount.roleArns (with its mode) or crossAccountRoleArns (the manual "
            "chain's shorthand), not both",
        )
    targets_key = f"{key}.crossAccount.roleArns" if cross is not None else f"{key}.crossAccountRoleArns"
    same = [a for a in w.cross_account_targets if a.split(":")[4] == cfg.account_id]
    if same:
        yield (
            targets_key,
            f"{', '.join(same)} is in this account ({cfg.account_id}); grant same-account access through policies",
        )
    if cross is None:
        return
    ck = f"{key}.crossAccount"
    if cross.mode == "native":
        if w.method != "pod-identity":
            yield (
                f"{ck}.mode",
                f"native needs method pod-identity (EKS chains the target role through the Pod Identity agent); "
                f"with {w.method} use mode manual (the app calls sts:AssumeRole)",
            )
        if len(cross.role_arns) != 1:
            yield (
                f"{ck}.roleArns",
                f"native chains exactly one target role per association, {len(cross.role_arns)} given; use mode "
                "manual for several, or one workload (ServiceAccount) per target",
            )
        if w.policies.managed_arns or w.policies.statements:
            yield (
                f"{key}.policies",
                "with crossAccount.mode native the pod receives only the target role's session, so the workload "
                "role's own permissions would never reach it; grant them on the target role, or use mode manual "
                "(the pod keeps the workload role and assumes the target itself)",
            )
        if cross.session_policy and not cross.disable_session_tags:
            yield (
                f"{ck}.sessionPolicy",
                "EKS accepts a session policy only with disableSessionTags: true (set it, or remove sessionPolicy)",
            )
        rendered = session_policy_json(list(cross.session_policy))
        if rendered is not None and len(rendered) > SESSION_POLICY_MAX_CHARS:
            yield (
                f"{ck}.sessionPolicy",
                f"renders to {len(rendered)} characters; STS accepts session policies of at most "
                f"{SESSION_POLICY_MAX_CHARS} (use fewer statements or resources)",
            )
    else:
        if cross.disable_session_tags:
            yield (
                f"{ck}.disableSessionTags",
                "applies to mode native only (a setting of the association's target-role hop); remove it",
            )
        if cross.session_policy:
            yield (
                f"{ck}.sessionPolicy",
                "applies to mode native only (EKS applies it on the target-role hop); in mode manual pass a "
                "session policy to sts:AssumeRole in the app, or narrow the target role",
            )
