"""Independent scanners over the shipped stacks' offline plans: the Terraform-plan and Kubernetes
views (`platformctl export`), checkov with the triage file (`platformctl scan`, once per stack per
session: checkov takes ~40 s), kubernetes-validate on the built-in kinds and the upstream CRDs'
schemas on the custom resources."""

from __future__ import annotations

import copy
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from programs.k8s_yaml import HELM_RELEASE, manifests, to_yaml
from programs.plan import build_plan
from programs.scan import CHECKOV, Finding, TriageEntry, evaluate, load_triage, render, scan_plans
from programs.tfplan import TERRAFORM_TYPES, to_terraform_plan
from tests import fast_yaml
from tests.conftest import offline_run
from tests.karpenter_crd_validation import unknown_fields

SHARED = Path(os.environ.get("K8S_PLATFORM_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))
REFERENCE = SHARED / "reference"
STACKS = ("dev", "prod")


@cache
def plan_of(stack: str) -> dict[str, Any]:
    return build_plan(offline_run(stack))


@cache
def tfplan_of(stack: str) -> dict[str, Any]:
    return to_terraform_plan(plan_of(stack))


def _resources(tfplan: dict[str, Any], tf_type: str) -> list[dict[str, Any]]:
    return [r for r in tfplan["planned_values"]["root_module"]["resources"] if r["type"] == tf_type]


# ------------------------------------------------------------------------- Terraform-plan view
def test_prod_terraform_view_has_all_control_plane_logs_and_launch_template_blocks():
    tfplan = tfplan_of("prod")
    (cluster,) = _resources(tfplan, "aws_eks_cluster")
    assert sorted(cluster["values"]["enabled_cluster_log_types"]) == sorted(
        ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    )
    templates = _resources(tfplan, "aws_launch_template")  # the system node group's and the access instance's
    assert templates
    for lt in templates:
        meta = lt["values"]["metadata_options"]
        assert isinstance(meta, list) and len(meta) == 1
        assert meta[0]["http_tokens"] == "required" and meta[0]["http_put_response_hop_limit"] == 1


@pytest.mark.parametrize("stack", STACKS)
def test_terraform_view_maps_every_cloud_resource_and_converts_every_name(stack):
    tfplan = tfplan_of(stack)
    meta = tfplan["k8s_platform"]
    assert meta["unmapped"] == [] and meta["without_schema"] == []
    custom = [r for r in plan_of(stack)["resources"] if r["custom"] and r["type"] in TERRAFORM_TYPES]
    assert len(tfplan["planned_values"]["root_module"]["resources"]) == len(custom)

    def camel_keys(value: Any, path: str) -> list[str]:
        if isinstance(value, list):
            return [k for v in value for k in camel_keys(v, path)]
        if not isinstance(value, dict):
            return []
        found = []
        for key, v in value.items():
            if key.endswith("tags") or key in ("tag", "variables"):
                continue  # maps of user data
            if re.match(r"^[a-z]+[A-Z]", key):  # an engine (camelCase) name left unconverted
                found.append(f"{path}.{key}")
            found += camel_keys(v, f"{path}.{key}")
        return found

    bad = [
        k for r in tfplan["planned_values"]["root_module"]["resources"] for k in camel_keys(r["values"], r["address"])
    ]
    assert not bad, bad


def test_terraform_view_connects_bucket_settings_to_their_bucket():
    conf = {r["address"]: r for r in tfplan_of("dev")["configuration"]["root_module"]["resources"]}
    logging = conf["aws_s3_bucket_logging.k3s_etcd_snapshots_access_logging"]["expressions"]
    assert logging["bucket"]["references"][0] == "aws_s3_bucket.k3s_etcd_snapshots.id"
    assert logging["target_bucket"]["references"][0] == "aws_s3_bucket.access_logs_bucket.id"


def test_unmapped_types_are_listed_not_guessed():
    plan = copy.deepcopy(plan_of("prod"))
    plan["resources"].append(
        {
            "urn": "urn:x",
            "type": "aws:newservice/thing:Thing",
            "name": "thing",
            "parent": None,
            "custom": True,
            "inputs": {},
            "dependencies": [],
            "protect": False,
        }
    )
    tfplan = to_terraform_plan(plan)
    assert tfplan["k8s_platform"]["unmapped"] == ["aws:newservice/thing:Thing"]
    assert not [r for r in tfplan["planned_values"]["root_module"]["resources"] if "thing" in r["address"]]


def test_k8s_yaml_lists_helm_releases_and_holds_every_object():
    plan = plan_of("dev")
    text = to_yaml(plan)
    docs = [d for d in yaml.safe_load_all(text) if d]
    objects = [
        r
        for r in plan["resources"]
        if r["type"].startswith("kubernetes:")
        and r["type"] != HELM_RELEASE
        and not r["type"].startswith("kubernetes:helm")
        and r["custom"]
    ]
    assert len(docs) == len(objects)
    for release in [r for r in plan["resources"] if r["type"] == HELM_RELEASE]:
        assert f"/{release['inputs']['name']}: chart" in text
    secrets = [d for d in docs if d["kind"] == "Secret"]
    assert secrets and all(
        v == "[secret]" for d in secrets for field in ("data", "stringData") for v in (d.get(field) or {}).values()
    )


# ------------------------------------------------------------------------------------ checkov
needs_checkov = pytest.mark.skipif(not CHECKOV.exists(), reason=f"checkov not installed at {CHECKOV} (make setup)")


def _with_star_grant(plan: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A copy of the plan whose first inline role policy also allows s3:* on *; and that policy's address."""
    plan = copy.deepcopy(plan)
    rp = next(r for r in plan["resources"] if r["type"] == "aws:iam/rolePolicy:RolePolicy")
    doc = json.loads(rp["inputs"]["policy"])
    doc["Statement"].append({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    rp["inputs"]["policy"] = json.dumps(doc)
    return plan, f"aws_iam_role_policy.{rp['name'].replace('-', '_')}"


@cache
def _scanned_all() -> dict[str, Any]:
    """Every scan the tests read, in one checkov run (its start-up is most of a scan's time)."""
    star, _ = _with_star_grant(plan_of("prod"))
    # Its IAM resources only: the grant is judged on its own resource, and checkov's time grows with
    # the plan (the whole prod plan again cost ~1.5 s of the suite's one scan).
    star = {**star, "resources": [r for r in star["resources"] if r["type"].startswith("aws:iam/")]}
    results = scan_plans([plan_of(s) for s in STACKS] + [star])
    return {**dict(zip(STACKS, results[: len(STACKS)], strict=True)), "prod+star": results[-1]}


def scanned(stack: str):
    return _scanned_all()[stack]


@needs_checkov
@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_scan_clean_with_every_triage_entry_used(stack):
    result = scanned(stack)
    assert result.passed > 100
    assert not result.untriaged, [f"{f.check} {f.resource}" for f in result.untriaged]
    assert not result.stale, result.stale


@needs_checkov
def test_the_four_weaknesses_stay_fixed():
    findings = {(f.check, f.resource) for s in STACKS for f in scanned(s).failed}
    for check in ("CKV_AWS_37", "CKV_AWS_290", "CKV_AWS_355", "CKV_K8S_43", "CKV2_K8S_6"):
        assert not [f for f in findings if f[0] == check], check
    assert (
        not {
            ("CKV_AWS_18", "aws_s3_bucket.k3s_etcd_snapshots"),
            ("CKV_AWS_18", "aws_s3_bucket.oidc_primary_bucket"),
            ("CKV_AWS_18", "aws_s3_bucket.oidc_edge_bucket"),
        }
        & findings
    )


@needs_checkov
def test_scan_fails_on_an_s3_star_grant():
    _, address = _with_star_grant(plan_of("prod"))
    result = scanned("prod+star")
    assert not result.ok
    assert re.search(rf"^untriaged: CKV_AWS_\d+ {re.escape(address)} ", render(result), re.M), render(result)
    assert scanned("prod").ok  # the same plan without the grant


def test_scan_command_exits_1_on_an_untriaged_finding_and_0_without(tmp_path, monkeypatch, capsys):
    """The shell over the scanner, with a stand-in checkov that reports one failed check."""
    from programs import scan
    from programs.platformctl.cli import main

    plan, address = _with_star_grant(plan_of("prod"))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    fake = tmp_path / "checkov"
    report = {"check_type": "terraform_plan", "results": {"passed_checks": [], "failed_checks": []}}
    failed = {"check_id": "CKV_AWS_289", "check_name": "no s3:*", "resource": address, "file_path": "/0.tfplan.json"}
    fake.write_text(
        "#!/bin/sh\n"
        f"if [ -e {tmp_path}/clean ]; then echo '{json.dumps(report)}'; "
        f"else echo '{json.dumps({**report, 'results': {'passed_checks': [], 'failed_checks': [failed]}})}'; fi\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(scan, "CHECKOV", fake)
    empty = tmp_path / "triage.yaml"
    empty.write_text("triage: []\n")
    assert main(["scan", "--plan", str(path), "--triage", str(empty)]) == 1
    assert f"untriaged: CKV_AWS_289 {address}" in capsys.readouterr().out
    (tmp_path / "clean").touch()
    assert main(["scan", "--plan", str(path), "--triage", str(empty)]) == 0


def test_triage_entry_that_matches_nothing_is_stale():
    entry = TriageEntry("CKV_AWS_18", "aws_s3_bucket.gone", ("dev",), "bucket removed")
    finding = Finding("terraform_plan", "CKV_AWS_18", "", "aws_s3_bucket.other")
    report = {
        "check_type": "terraform_plan",
        "results": {
            "passed_checks": [],
            "failed_checks": [{"check_id": finding.check, "check_name": "", "resource": finding.resource}],
        },
    }
    result = evaluate("dev", [report], [entry])
    assert result.stale == [entry] and result.untriaged == [finding] and not result.ok
    assert evaluate("prod", [report], [entry]).stale == []  # not a prod entry


def test_shipped_triage_file_is_valid():
    entries = load_triage()
    assert entries and all(e.reason and e.stacks for e in entries)


# ----------------------------------------------------------------- Kubernetes schema validation
def _objects(stack: str) -> list[dict[str, Any]]:
    return manifests(plan_of(stack))


CRD_FILES = {
    ("crd.k8s.amazonaws.com/v1alpha1", "ENIConfig"): "upstream/crd-eniconfig-v1.23.0.yaml",
    ("elbv2.k8s.aws/v1beta1", "IngressClassParams"): "upstream/crds-aws-load-balancer-controller-v3.5.0.yaml",
    ("vpcresources.k8s.aws/v1beta1", "SecurityGroupPolicy"): "upstream/crd-securitygrouppolicy-v1.7.19.yaml",
    ("karpenter.sh/v1", "NodePool"): "karpenter-crds/karpenter.sh_nodepools.yaml",
    ("karpenter.k8s.aws/v1", "EC2NodeClass"): "karpenter-crds/karpenter.k8s.aws_ec2nodeclasses.yaml",
}


@cache
def _crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    group, version = api_version.split("/")
    for doc in fast_yaml.load_all((REFERENCE / CRD_FILES[(api_version, kind)]).read_text()):
        if (
            doc
            and doc.get("kind") == "CustomResourceDefinition"
            and doc["spec"]["group"] == group
            and doc["spec"]["names"]["kind"] == kind
        ):
            (entry,) = [v for v in doc["spec"]["versions"] if v["name"] == version]
            return entry["schema"]["openAPIV3Schema"]
    raise LookupError(f"{kind} {api_version} not in {CRD_FILES[(api_version, kind)]}")


def _is_builtin(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return group == "" or group.endswith(".k8s.io") or group in ("apps", "policy", "batch", "autoscaling")


@pytest.mark.parametrize("stack", STACKS)
def test_builtin_objects_validate_strictly_against_the_newest_kubernetes(stack):
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate not installed")
    from kubernetes_validate.utils import latest_version

    version = latest_version()
    builtin = [o for o in _objects(stack) if _is_builtin(o)]
    assert builtin
    errors = []
    for obj in builtin:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']} {obj['metadata'].get('name')}: {exc}")
    assert not errors, errors


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"{REFERENCE} absent: the upstream CRDs are not available")
@pytest.mark.parametrize("stack", STACKS)
def test_custom_resources_validate_against_the_upstream_crds(stack):
    custom = [o for o in _objects(stack) if not _is_builtin(o)]
    assert custom
    errors = []
    for obj in custom:
        key = (obj["apiVersion"], obj["kind"])
        assert key in CRD_FILES, f"no upstream CRD known for {key}"
        schema = _crd_schema(*key)
        errors += [
            f"{obj['kind']} {obj['metadata']['name']}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(obj)
        ]
        errors += [f"{obj['kind']} {obj['metadata']['name']}: {p}: unknown field" for p in unknown_fields(schema, obj)]
    assert not errors, errors


def test_every_attribute_rename_names_a_real_sdk_input():
    """A rename of an input the SDK does not have would silently never apply."""
    from programs.tfplan import ATTRIBUTE_RENAMES, args_class, field_shapes

    by_tf = {tf: token for token, tf in TERRAFORM_TYPES.items()}
    for (tf_type, path), _ in ATTRIBUTE_RENAMES.items():
        cls = args_class(by_tf[tf_type])
        for part in path.split("."):
            shapes = {py: (shape, nested) for py, shape, nested in field_shapes(cls).values()}
            assert part in shapes, f"{tf_type}: {path} ({part} not an input of {cls.__name__})"
            cls = shapes[part][1]


def test_export_cli_writes_both_formats(tmp_path):
    from programs.platformctl.cli import main

    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan_of("prod")))
    assert (
        main(["export", "--plan", str(plan_path), "--format", "terraform-plan", "-o", str(tmp_path / "tf.json")]) == 0
    )
    assert json.loads((tmp_path / "tf.json").read_text())["format_version"] == "1.2"
    assert main(["export", "--plan", str(plan_path), "--format", "k8s-yaml", "-o", str(tmp_path / "k.yaml")]) == 0
    assert any(d["kind"] == "ENIConfig" for d in yaml.safe_load_all((tmp_path / "k.yaml").read_text()) if d)
    (tmp_path / "bad.json").write_text("[]")
    assert main(["export", "--plan", str(tmp_path / "bad.json"), "--format", "k8s-yaml", "-o", "-"]) == 2


def test_bad_triage_entries_are_reported_all_at_once(tmp_path):
    from programs.scan import ScanError

    path = tmp_path / "triage.yaml"
    path.write_text(
        "triage:\n  - check: CKV_AWS_18\n    resource: x\n  - check: NOPE\n    resource: y\n"
        "    stacks: [dev]\n    reason: r\n    extra: 1\n"
    )
    with pytest.raises(ScanError) as exc:
        load_triage(path)
    assert "triage[0]: missing stacks, reason" in str(exc.value) and "triage[1]: unknown extra" in str(exc.value)
