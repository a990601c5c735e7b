"""`platformctl pins check`: every pin against the published indexes, from recorded responses
(tests/data/pins, layout in programs/api/pins_check.py) and, as a contract, from the published
indexes in ../shared/reference/upstream."""

from __future__ import annotations

import json
import re
from pathlib import Path

import botocore.session
import yaml
from botocore.validate import ParamValidator

from components.core import pins
from programs.api import pins_check
from programs.api.pins_check import RecordedSources, check_addons, check_charts, check_k3s, check_pins
from programs.platformctl.cli import main
from tests.test_upstream_contracts_charts import published_index
from tests.upstream_reference import upstream_file

RECORDED = Path(__file__).parent / "data" / "pins"


def test_acceptance_shipped_pins_pass_and_an_unpublished_chart_version_fails(capsys, monkeypatch, tmp_path):
    out = tmp_path / "findings.json"
    assert main(["pins", "check", "--from", str(RECORDED), "--json", str(out)]) == 0
    findings = json.loads(out.read_text())
    assert {f["status"] for f in findings if f["kind"] != "ami-alias"} <= {"ok", "outdated"}
    # No SSM responses are recorded: the AMI aliases of prod and staging are unchecked, which does not fail.
    assert {f["status"] for f in findings if f["kind"] == "ami-alias"} == {"unchecked"}
    kinds = {f["kind"] for f in findings}
    assert kinds == {"chart", "image", "eks-addon", "k3s", "ami-alias"}
    # Every pin of pins.py is checked: each chart, each add-on of each minor.
    assert {f["name"] for f in findings if f["kind"] == "chart"} == set(pins.CHARTS)
    assert sum(f["kind"] == "eks-addon" for f in findings) == len(pins.ADDON_VERSIONS) * len(pins.ADDON_NAMES)
    capsys.readouterr()
    monkeypatch.setitem(
        pins.CHARTS, "metrics-server", pins.ChartRef("metrics-server", "3.14.0", pins.CHARTS["metrics-server"].repo)
    )
    assert main(["pins", "check", "--from", str(RECORDED), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "missing      chart     metrics-server 3.14.0 (newest: 3.13.1)" in captured.out
    assert "metrics-server 3.14.0 missing" in captured.err


def test_outdated_pins_name_the_newest_and_do_not_fail():
    report = check_pins(RecordedSources(RECORDED))
    (lbc,) = [f for f in report.findings if f.name == "aws-load-balancer-controller"]
    assert (lbc.status, lbc.newest) == ("outdated", "3.5.0")
    assert report.exit_code == 0


def test_an_add_on_build_pinned_for_a_minor_it_is_not_listed_for_is_incompatible():
    table = {m: dict(row) for m, row in pins.ADDON_VERSIONS.items()}
    table["1.36"]["kube-proxy"] = table["1.35"]["kube-proxy"]  # a 1.35 kube-proxy left on 1.36
    table["1.35"]["coredns"] = "v1.13.9-eksbuild.1"  # no such build
    found = {f.name: f for f in check_addons(RecordedSources(RECORDED), table)}
    assert found["kube-proxy@1.36"].status == "incompatible"
    assert found["kube-proxy@1.36"].newest == pins.ADDON_VERSIONS["1.36"]["kube-proxy"]
    assert "listed for 1.35, not 1.36" in found["kube-proxy@1.36"].detail
    assert found["coredns@1.35"].status == "missing"


def test_k3s_pin_missing_outdated_and_unchecked(tmp_path):
    src = RecordedSources(RECORDED)
    assert check_k3s(src, "v1.35.7+k3s1")[0].status == "missing"  # the tag that was never found
    assert check_k3s(src, "v1.35.6+k3s1")[0].status == "outdated"
    assert check_k3s(src, "v1.35.6+k3s1")[0].newest == "v1.35.8+k3s1"
    assert check_k3s(RecordedSources(tmp_path), "v1.35.8+k3s1")[0].status == "unchecked"


def test_a_failing_source_leaves_its_pins_unchecked_and_says_why():
    class Down(RecordedSources):
        def oci_tags(self, reference):
            raise OSError("connection refused")

    guarded = pins_check.Guarded(Down(RECORDED))
    report = check_pins(guarded)
    assert {f.status for f in report.findings if f.name.startswith("karpenter")} == {"unchecked"}
    assert any("public.ecr.aws/karpenter/karpenter tags: OSError" in e for e in guarded.errors)


def test_the_recorded_eks_responses_have_the_apis_shape():
    model = botocore.session.get_session().get_service_model("eks")
    shape = model.operation_model("DescribeAddonVersions").output_shape
    for path in (RECORDED / "eks").glob("describe-addon-versions-*.json"):
        report = ParamValidator().validate(json.loads(path.read_text()), shape)
        assert not report.has_errors(), f"{path.name}: {report.generate_report()}"


def test_contract_pins_exist_in_the_published_chart_indexes_and_k3s_releases(tmp_path):
    """The check itself against the published indexes (../shared/reference/upstream), written in the
    layout `--from` reads: every chart and the K3s release pinned is published."""
    published = published_index()
    for chart, entry in published.items():
        if "repo" in entry:
            d = tmp_path / "charts" / pins_check._slug(entry["repo"])
            d.mkdir(parents=True, exist_ok=True)
            index = {
                "entries": {
                    chart: [{"name": chart, "version": v, "appVersion": a} for v, a in entry["versions"].items()]
                }
            }
            (d / "index.yaml").write_text(yaml.safe_dump(index))
        else:
            d = tmp_path / "oci" / Path(*entry["oci"].removeprefix("oci://").split("/")) / chart
            d.mkdir(parents=True, exist_ok=True)
            (d / "tags.json").write_text(json.dumps({"tags": [entry["oci_tag"]]}))
    tags = re.findall(
        r"^(v\d+\.\d+\.\d+\+k3s\d+) \| (?!.*NOT FOUND)", upstream_file("k3s-releases.txt").read_text(), re.M
    )
    (tmp_path / "k3s").mkdir()
    (tmp_path / "k3s" / "releases.json").write_text(json.dumps([{"tag_name": t} for t in tags]))
    src = RecordedSources(tmp_path)
    charts = {name: ref for name, ref in pins.CHARTS.items() if name in published}
    assert set(charts) == set(pins.CHARTS), "a pinned chart is not in the published list"
    findings = check_charts(src, charts) + check_k3s(src)
    assert [f.line() for f in findings if f.status not in ("ok", "outdated")] == []


def test_prods_karpenter_ami_alias_is_checked_per_minor_and_architecture(tmp_path):
    from components.config import parse_stack_config
    from tests.conftest import shipped_config

    cfg = parse_stack_config(shipped_config("prod"))
    alias_version = cfg.karpenter.node_classes[0].ami_alias.partition("@")[2]
    x86 = pins_check.al2023_alias_parameter("1.35", "amd64", alias_version)
    assert x86 == (
        f"/aws/service/eks/optimized-ami/1.35/amazon-linux-2023/x86_64/standard/"
        f"amazon-eks-node-al2023-x86_64-standard-1.35-{alias_version}/image_id"
    )
    arm = pins_check.al2023_alias_parameter("1.35", "arm64", alias_version)
    found = {
        x86: {"Parameter": {"Name": x86, "Type": "String", "Value": "ami-0123456789abcdef0", "Version": 1}},
        arm: {"Error": {"Code": "ParameterNotFound", "Message": f"Parameter {arm} not found."}},
    }
    ssm = botocore.session.get_session().get_service_model("ssm").operation_model("GetParameter").output_shape
    for name, response in found.items():
        path = tmp_path / "ssm" / cfg.region / f"{name.strip('/')}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(response))
        if "Parameter" in response:
            assert not ParamValidator().validate(response, ssm).has_errors()
    findings = {f.name: f for f in pins_check.check_ami_aliases(RecordedSources(tmp_path), {"prod": cfg})}
    assert findings["prod/default@1.35/amd64"].status == "ok"
    assert findings["prod/default@1.35/arm64"].status == "missing"
    assert pins_check.PinsReport(tuple(findings.values())).exit_code == 1
