"""EKS versions: the support calendar, 1.36 end to end, and minors past standard support refused."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from components.config import ConfigError, parse_stack_config
from components.config.eks import EksConfig
from components.core.eks_support_calendar import CALENDAR, standard_support_minors, support_phase, support_problem
from components.core.pins import (
    ADDON_NAMES,
    ADDON_VERSIONS,
    DEFAULT_KUBERNETES_VERSION,
    UNCONFIRMED_PINS,
    addon_versions,
)
from programs.offline import REPO_ROOT
from programs.platformctl.cli import main
from tests.conftest import shipped_config

KEY = "k8s-platform:cluster.eks.version"


def prod_with(version: str, support_type: str | None = None) -> dict:
    raw = shipped_config("prod")
    raw["k8s-platform:cluster"]["eks"]["version"] = version
    if support_type:
        raw["k8s-platform:cluster"]["eks"]["upgradePolicy"] = {"supportType": support_type}
    return raw


def test_every_pinned_minor_has_support_dates_and_the_dates_are_ordered():
    assert set(ADDON_VERSIONS) <= set(CALENDAR)
    for row in CALENDAR.values():
        assert row.eks_release < row.end_of_standard < row.end_of_extended
        assert row.source in ("calendar", "derived")
    # The dates issue 12 quotes from the EKS calendar.
    assert CALENDAR["1.34"].end_of_standard == dt.date(2026, 12, 2)
    assert CALENDAR["1.33"].end_of_standard == dt.date(2026, 7, 29)


def test_eks_136_is_supported_with_pins_for_134_to_136():
    assert {"1.34", "1.35", "1.36"} <= set(ADDON_VERSIONS)
    for minor in ("1.34", "1.35", "1.36"):
        assert sorted(addon_versions(minor)) == sorted(ADDON_NAMES)
        assert ADDON_VERSIONS[minor]["kube-proxy"].startswith(f"v{minor}.")


def test_default_is_the_newest_minor_with_backed_pins():
    backed = [m for m in ADDON_VERSIONS if {"kube-proxy", "coredns", "vpc-cni"}.isdisjoint(UNCONFIRMED_PINS.get(m, ()))]
    assert DEFAULT_KUBERNETES_VERSION == max(backed, key=lambda v: tuple(map(int, v.split("."))))
    assert EksConfig().version == DEFAULT_KUBERNETES_VERSION == "1.35"
    assert ADDON_VERSIONS["1.35"]["kube-proxy"] == "v1.35.3-eksbuild.29"  # the Oct 2026 EKS 1.35 default build


@pytest.mark.parametrize(
    "today, minor, phase",
    [
        (dt.date(2026, 12, 1), "1.34", "standard"),
        (dt.date(2026, 12, 3), "1.34", "extended"),
        (dt.date(2026, 12, 1), "1.33", "extended"),
        (dt.date(2027, 7, 30), "1.33", "ended"),
    ],
)
def test_support_phase(today, minor, phase):
    assert support_phase(minor, today) == phase


def test_a_minor_past_standard_support_is_refused_under_standard_with_dates_and_choices():
    message = support_problem("1.33", "STANDARD", dt.date(2026, 12, 1))
    assert "left standard support on 2026-07-29" in message and "extended support until 2027-07-29" in message
    assert "1.35" in message and "1.36" in message and "supportType: EXTENDED" in message
    assert support_problem("1.33", "EXTENDED", dt.date(2026, 12, 1)) is None
    assert "left extended support" in support_problem("1.33", "EXTENDED", dt.date(2027, 8, 1))
    assert standard_support_minors(dt.date(2026, 12, 3)) == ["1.35", "1.36"]


def test_stack_on_133_with_standard_support_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        parse_stack_config(prod_with("1.33", "STANDARD"))
    text = str(err.value)
    assert f"{KEY}: EKS 1.33 left standard support on 2026-07-29" in text
    assert "upgradePolicy.supportType: EXTENDED" in text


def test_stack_on_133_with_extended_support_is_accepted():
    assert parse_stack_config(prod_with("1.33", "EXTENDED")).cluster.eks.version == "1.33"


def test_preview_of_133_standard_exits_2_naming_the_key(tmp_path, capsys):
    doc = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())
    doc["config"]["k8s-platform:cluster"]["eks"]["version"] = "1.33"
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["preview", "--stack", "prod", "--offline", "--config-file", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert KEY in err and "2026-07-29" in err and "Traceback" not in err


def test_stack_on_136_previews_with_no_mandatory_violation(tmp_path):
    doc = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())
    doc["config"]["k8s-platform:cluster"]["eks"]["version"] = "1.36"
    path, out = tmp_path / "Pulumi.prod.yaml", tmp_path / "plan.json"
    path.write_text(yaml.safe_dump(doc))
    assert (
        main(["preview", "--stack", "prod", "--offline", "--config-file", str(path), "--json", str(out), "--quiet"])
        == 0
    )
    plan = json.loads(out.read_text())
    assert [v for v in plan["policy"]["violations"] if v.get("enforcementLevel", v.get("level")) == "mandatory"] == []
    (cluster,) = [r for r in plan["resources"] if r["type"] == "aws:eks/cluster:Cluster"]
    assert cluster["inputs"]["version"] == "1.36"
    kube_proxy = [
        r for r in plan["resources"] if r["type"] == "aws:eks/addon:Addon" and r["inputs"]["addonName"] == "kube-proxy"
    ]
    assert kube_proxy[0]["inputs"]["addonVersion"] == ADDON_VERSIONS["1.36"]["kube-proxy"]


def test_the_refusal_advises_one_minor_at_a_time_to_a_minor_that_lasts():
    import datetime as dt

    from components.core.eks_support_calendar import support_problem

    message = support_problem("1.33", "STANDARD", dt.date(2026, 12, 1))
    # 1.34 leaves standard support on 2026-12-02: a step on the way, not a target.
    assert "one minor at a time (1.33 -> 1.34 -> 1.35) to one of 1.35, 1.36" in message
