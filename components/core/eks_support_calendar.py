"""The EKS Kubernetes version support calendar: ONE table of dates (pure, no Pulumi).

Amazon EKS supports a minor for 14 months after its EKS release ("standard support"), then for
12 more months at a higher per-cluster-hour price ("extended support"). A cluster whose upgrade
policy is `supportType: STANDARD` is upgraded automatically by EKS when standard support ends:
the control plane moves to the next minor underneath an unchanged program, while the program's
kube-proxy/coredns pins (components/core/pins.py) stay on the old minor. So a stack on a
minor past its standard support must either upgrade (`cluster.eks.version`) or choose
`cluster.eks.upgradePolicy.supportType: EXTENDED` explicitly.

Source of each row (`source`): the Amazon EKS Kubernetes version calendar ("Amazon EKS Kubernetes
release calendar" in the EKS User Guide) as quoted in this project's issue 12 (December 2026):
EKS 1.36 available since June 2026; 1.34's standard support ends 2026-12-02; 1.33 is in extended
support since 2026-07-29. Rows marked `derived` apply EKS's published rule (standard = EKS release
+ 14 months, extended = standard end + 12 months) to a date that could not be confirmed offline;
re-check them against the calendar when bumping. The upgrade work reuses this module.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

SupportType = Literal["STANDARD", "EXTENDED"]


@dataclass(frozen=True)
class MinorSupport:
    minor: str
    eks_release: dt.date
    end_of_standard: dt.date
    end_of_extended: dt.date
    source: str  # "calendar" (confirmed) or "derived" (release + 14 / + 26 months, unconfirmed)


def _row(minor: str, release: str, standard: str, extended: str, source: str) -> MinorSupport:
    return MinorSupport(
        minor, dt.date.fromisoformat(release), dt.date.fromisoformat(standard), dt.date.fromisoformat(extended), source
    )


# The one documented table. Keep every minor that has add-on pins (pins.ADDON_VERSIONS).
CALENDAR: dict[str, MinorSupport] = {
    r.minor: r
    for r in (
        _row("1.33", "2025-05-29", "2026-07-29", "2027-07-29", "calendar"),
        _row("1.34", "2025-10-02", "2026-12-02", "2027-12-02", "calendar"),
        _row("1.35", "2026-01-27", "2027-03-27", "2028-03-27", "derived"),
        _row("1.36", "2026-06-10", "2027-08-10", "2028-08-10", "derived"),
    )
}


def support_for(minor: str) -> MinorSupport:
    try:
        return CALENDAR[minor]
    except KeyError:
        raise ValueError(f"no support dates for EKS {minor}; known: {', '.join(CALENDAR)}") from None


def support_phase(minor: str, today: dt.date) -> Literal["standard", "extended", "ended"]:
    row = support_for(minor)
    if today <= row.end_of_standard:
        return "standard"
    return "extended" if today <= row.end_of_extended else "ended"


def standard_support_minors(today: dt.date) -> list[str]:
    return [m for m in CALENDAR if support_phase(m, today) == "standard"]


# An upgrade target should not itself leave standard support within a quarter (the upgrade cadence).
UPGRADE_HORIZON = dt.timedelta(days=90)


def upgrade_path(minor: str, target: str) -> list[str]:
    """The minors an upgrade from `minor` to `target` passes through, one at a time (EKS refuses skips)."""
    order = sorted(CALENDAR, key=lambda m: tuple(int(p) for p in m.split(".")))
    return order[order.index(minor) + 1 : order.index(target) + 1] if target in order and minor in order else [target]


def _upgrade_advice(minor: str, today: dt.date) -> str:
    targets = upgrade_targets(today)
    if not targets:
        return "upgrade to a newer minor"
    path = upgrade_path(minor, targets[0])
    steps = " -> ".join([minor, *path])
    return f"upgrade one minor at a time ({steps}) to one of {', '.join(targets)}"


def upgrade_targets(today: dt.date) -> list[str]:
    """Minors worth upgrading to: in standard support for at least UPGRADE_HORIZON more."""
    lasting = [m for m in standard_support_minors(today) if CALENDAR[m].end_of_standard > today + UPGRADE_HORIZON]
    return lasting or standard_support_minors(today)


def support_problem(minor: str, support_type: SupportType, today: dt.date | None = None) -> str | None:
    """Why `minor` cannot run under `support_type` on `today` (a message with dates and choices), or None."""
    today = today or dt.date.today()
    row = support_for(minor)
    phase = support_phase(minor, today)
    if phase == "ended":
        return (
            f"EKS {minor} left extended support on {row.end_of_extended.isoformat()}; {_upgrade_advice(minor, today)}"
        )
    if phase == "extended" and support_type == "STANDARD":
        return (
            f"EKS {minor} left standard support on {row.end_of_standard.isoformat()} (extended support until "
            f"{row.end_of_extended.isoformat()}); under upgradePolicy.supportType STANDARD EKS would upgrade the "
            "control plane itself and the add-on pins would no longer match. "
            f"{_upgrade_advice(minor, today).capitalize()}, or set cluster.eks.upgradePolicy.supportType: "
            "EXTENDED (billed at the extended-support rate)"
        )
    return None


# Preview warns this long before a stack's minor leaves standard support: a quarter, one upgrade cycle.
SUPPORT_WARNING_WINDOW = UPGRADE_HORIZON


def support_warning(minor: str, support_type: SupportType, today: dt.date | None = None) -> str | None:
    """A warning for a minor that leaves its support phase within SUPPORT_WARNING_WINDOW (or runs at the
    extended-support price), or None. What support_problem refuses is not repeated here."""
    today = today or dt.date.today()
    if minor not in CALENDAR or support_problem(minor, support_type, today) is not None:
        return None
    row = CALENDAR[minor]
    phase = support_phase(minor, today)
    nxt = upgrade_path(minor, max(CALENDAR, key=lambda m: tuple(int(p) for p in m.split("."))))[:1]
    upgrade = f"`platformctl upgrade --to {nxt[0]}`" if nxt and nxt[0] != minor else "an upgrade"
    if phase == "standard" and row.end_of_standard - today <= SUPPORT_WARNING_WINDOW:
        days = (row.end_of_standard - today).days
        when = "1 day" if days == 1 else f"{days} days"
        then = (
            "EKS then upgrades the control plane itself (upgradePolicy.supportType STANDARD) and this "
            "configuration is refused"
            if support_type == "STANDARD"
            else "the cluster is then billed at the extended-support rate"
        )
        ends = row.end_of_standard.isoformat()
        return f"EKS {minor} leaves standard support on {ends} (in {when}): {then}; plan {upgrade}"
    if phase == "extended":
        days = (row.end_of_extended - today).days
        return (
            f"EKS {minor} is in extended support (billed at the extended-support rate) until "
            f"{row.end_of_extended.isoformat()} ({days} days); plan {upgrade}"
        )
    return None
