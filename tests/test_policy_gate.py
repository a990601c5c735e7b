"""The pack wired into platformctl: the shipped stacks pass, `preview --offline` records violations,
and `platformctl policy check` blocks a saved plan with a world-open 6443."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from programs.offline import REPO_ROOT, OfflineRun
from programs.plan import build_plan
from programs.platformctl import cli
from programs.platformctl.policy_gate import apply_policies, check_plan
from tests.policy_fixtures import compliant_resources

PLATFORMCTL = Path(sys.executable).parent / "platformctl"
WORLD_OPEN_API_RULE = {
    "urn": "urn:pulumi:prod::k8s-platform::aws:ec2/securityGroupRule:SecurityGroupRule::injected-api-world",
    "type": "aws:ec2/securityGroupRule:SecurityGroupRule",
    "name": "injected-api-world",
    "parent": None,
    "custom": True,
    "inputs": {
        "type": "ingress",
        "protocol": "tcp",
        "fromPort": 6443,
        "toPort": 6443,
        "cidrBlocks": ["0.0.0.0/0"],
        "securityGroupId": "sg-0123456789abcdef0",
    },
    "dependencies": [],
    "protect": False,
}


def _mandatory(plan):
    return [v for v in plan["policy"]["violations"] if v["level"] == "mandatory"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stacks_have_no_mandatory_violation(stack, request):
    run: OfflineRun = request.getfixturevalue(f"{stack}_run")
    plan = apply_policies(build_plan(run), run, stack)
    assert plan["policy"]["config"].endswith(f"policy/config/{stack}.json")
    assert _mandatory(plan) == [], "\n".join(f"{v['policy']}: {v['message']} ({v['urn']})" for v in _mandatory(plan))


def test_saved_prod_plan_with_world_open_6443_fails_policy_check(prod_run, tmp_path: Path):
    plan = build_plan(prod_run)
    plan["resources"].append(WORLD_OPEN_API_RULE)
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(plan))
    proc = subprocess.run(
        [str(PLATFORMCTL), "policy", "check", "--plan", str(saved), "--stack", "prod"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    output = proc.stdout + proc.stderr
    assert "no-world-open-admin-ports" in output
    assert "injected-api-world" in output
    assert "mandatory policies violated:" in proc.stderr and "no-world-open-admin-ports" in proc.stderr


def _fixture_plan() -> dict:
    resources = compliant_resources()
    return {
        "project": "k8s-platform",
        "stack": "prod",
        "outputs": {"environment": "prod"},
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "custom": True,
                "inputs": r.inputs,
                "dependencies": r.dependencies,
                "protect": r.protect,
            }
            for r in resources
        ],
    }


def test_policy_check_passes_a_compliant_plan_and_writes_violations(tmp_path: Path, capsys):
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(_fixture_plan()))
    out = tmp_path / "checked.json"
    assert cli.main(["policy", "check", "--plan", str(saved), "--stack", "prod", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["policy"]["violations"] == []
    plan = _fixture_plan()
    plan["resources"].append(WORLD_OPEN_API_RULE)
    saved.write_text(json.dumps(plan))
    assert cli.main(["policy", "check", "--plan", str(saved), "--stack", "prod", "--json", str(out)]) == 1
    recorded = json.loads(out.read_text())["policy"]["violations"]
    assert {(v["policy"], v["level"], v["urn"]) for v in recorded} == {
        ("no-world-open-admin-ports", "mandatory", WORLD_OPEN_API_RULE["urn"])
    }


def test_dev_enforcement_is_advisory_for_advisory_policies(tmp_path: Path):
    plan = _fixture_plan()
    plan["outputs"]["environment"] = "dev"
    next(r for r in plan["resources"] if r["name"] == "key")["inputs"]["enableKeyRotation"] = False
    checked = check_plan(plan, "dev")
    assert [(v["policy"], v["level"]) for v in checked["policy"]["violations"]] == [("kms-key-rotation", "advisory")]
    checked = check_plan(plan, "prod")
    assert [(v["policy"], v["level"]) for v in checked["policy"]["violations"]] == [("kms-key-rotation", "mandatory")]


def test_policy_config_override_and_errors(tmp_path: Path, capsys):
    saved = tmp_path / "plan.json"
    plan = _fixture_plan()
    plan["resources"].append(WORLD_OPEN_API_RULE)
    saved.write_text(json.dumps(plan))
    relaxed = tmp_path / "relaxed.json"
    relaxed.write_text(json.dumps({"all": "advisory"}))
    assert cli.main(["policy", "check", "--plan", str(saved), "--stack", "prod", "--policy-config", str(relaxed)]) == 0
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"no-world-open-admin-ports": "sometimes"}))
    assert cli.main(["policy", "check", "--plan", str(saved), "--stack", "prod", "--policy-config", str(broken)]) == 2
    assert "'sometimes' is not an enforcement level" in capsys.readouterr().err
    assert cli.main(["policy", "check", "--plan", str(tmp_path / "missing.json"), "--stack", "prod"]) == 2
    not_a_plan = tmp_path / "list.json"
    not_a_plan.write_text("[]")
    assert cli.main(["policy", "check", "--plan", str(not_a_plan), "--stack", "prod"]) == 2


def test_policy_list_prints_every_policy(capsys):
    from policy.registry import RULES

    assert cli.main(["policy", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [r.id for r in RULES]
    admin_ports = next(r for r in rows if r["id"] == "no-world-open-admin-ports")
    assert admin_ports["enforcement"] == {
        "none": "mandatory",
        "ci": "mandatory",
        "dev": "mandatory",
        "prod": "mandatory",
        "staging": "mandatory",
    }
    assert next(r for r in rows if r["id"] == "kms-key-rotation")["enforcement"] == {
        "none": "advisory",
        "ci": "advisory",
        "dev": "advisory",
        "prod": "mandatory",
        "staging": "mandatory",
    }


@pytest.mark.patches_outside_the_program
def test_offline_preview_records_violations_and_exits_1_on_mandatory(tmp_path: Path, monkeypatch, capsys):
    from programs.platformctl import policy_gate

    strict = tmp_path / "strict.json"
    strict.write_text(
        json.dumps(
            {
                "all": "advisory",
                "stateful-resources-protected": {
                    "enforcementLevel": "mandatory",
                    "protectedTypes": ["aws:ec2/vpc:Vpc"],
                },
            }
        )
    )
    monkeypatch.setattr(policy_gate, "config_path", lambda stack, environment=None: strict)
    out = tmp_path / "dev.json"
    assert cli.main(["preview", "--stack", "dev", "--offline", "--json", str(out), "--quiet"]) == 1
    plan = json.loads(out.read_text())
    vpc_urns = [r["urn"] for r in plan["resources"] if r["type"] == "aws:ec2/vpc:Vpc"]
    recorded = [v for v in plan["policy"]["violations"] if v["policy"] == "stateful-resources-protected"]
    assert [(v["level"], v["urn"]) for v in recorded] == [("mandatory", urn) for urn in vpc_urns]
    assert "stateful-resources-protected" in capsys.readouterr().err


def _of(plan, typ):
    found = [r for r in plan["resources"] if r["type"] == typ]
    assert found, f"the shipped plan has no {typ}"
    return found


def _annotate_pod_identity_sa(plan):
    assoc = _of(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")[0]["inputs"]
    plan["resources"].append(
        {
            "urn": "urn:pulumi:prod::k8s-platform::kubernetes:core/v1:ServiceAccount::leftover",
            "type": "kubernetes:core/v1:ServiceAccount",
            "name": "leftover",
            "parent": None,
            "custom": True,
            "dependencies": [],
            "protect": False,
            "inputs": {
                "metadata": {
                    "namespace": assoc["namespace"],
                    "name": assoc["serviceAccount"],
                    "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/old"},
                }
            },
        }
    )


def _widen_issuer_policy(plan):
    for bp in _of(plan, "aws:s3/bucketPolicy:BucketPolicy"):
        doc = json.loads(bp["inputs"]["policy"])
        for stmt in doc["Statement"]:
            if stmt["Effect"] == "Allow" and stmt.get("Principal") in ("*", {"AWS": "*"}):
                stmt["Resource"] = [stmt["Resource"][0].rsplit("/.well-known", 1)[0] + "/*"]
        bp["inputs"]["policy"] = json.dumps(doc)


SHIPPED_MUTATIONS = {
    "prod": [
        (
            "eks-endpoint-private",
            lambda p: _of(p, "aws:eks/cluster:Cluster")[0]["inputs"]["vpcConfig"].update(
                endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"]
            ),
        ),
        (
            "eks-no-creator-admin-bootstrap",
            lambda p: _of(p, "aws:eks/cluster:Cluster")[0]["inputs"]["accessConfig"].update(
                bootstrapClusterCreatorAdminPermissions=True
            ),
        ),
        (
            "karpenter-nodepool-limits",
            lambda p: _of(p, "kubernetes:karpenter.sh/v1:NodePool")[0]["inputs"]["spec"].pop("limits"),
        ),
        (
            "karpenter-ami-pinned",
            lambda p: _of(p, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")[0]["inputs"]["spec"].update(
                amiSelectorTerms=[{"alias": "al2023@latest"}]
            ),
        ),
        (
            "imds-hop-limit",
            lambda p: _of(p, "aws:ec2/launchTemplate:LaunchTemplate")[0]["inputs"]["metadataOptions"].update(
                httpPutResponseHopLimit=2
            ),
        ),
        ("pod-identity-no-irsa-annotation", _annotate_pod_identity_sa),
        (
            "helm-chart-version-pinned",
            lambda p: _of(p, "kubernetes:helm.sh/v3:Release")[0]["inputs"].update(version=""),
        ),
    ],
    "dev": [
        (
            "imdsv2-required",
            lambda p: _of(p, "aws:ec2/launchTemplate:LaunchTemplate")[0]["inputs"]["metadataOptions"].update(
                httpTokens="optional"
            ),
        ),
        ("s3-oidc-issuer-serves-only-discovery", _widen_issuer_policy),
        (
            "irsa-subject-matches-service-account",
            lambda p: next(
                r
                for r in _of(p, "kubernetes:core/v1:ServiceAccount")
                if "eks.amazonaws.com/role-arn" in (r["inputs"]["metadata"].get("annotations") or {})
            )["inputs"]["metadata"].update(name="renamed"),
        ),
    ],
}


@pytest.mark.parametrize(
    "stack,policy_id,mutate",
    [
        pytest.param(stack, pid, m, id=f"{stack}:{pid}")
        for stack, cases in SHIPPED_MUTATIONS.items()
        for pid, m in cases
    ],
)
def test_rules_read_the_shipped_stacks_resources(stack, policy_id, mutate, request):
    """The rules read the property paths the real components produce: break one, the policy fires."""
    run: OfflineRun = request.getfixturevalue(f"{stack}_run")
    strict = REPO_ROOT / "policy" / "config" / "prod.json"

    def fired(plan):
        return {
            v["policy"] for v in check_plan(plan, stack, strict)["policy"]["violations"] if v["level"] == "mandatory"
        }

    plan = json.loads(json.dumps(build_plan(run)))
    assert policy_id not in fired(json.loads(json.dumps(plan)))
    mutate(plan)
    assert policy_id in fired(plan)
