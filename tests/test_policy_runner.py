"""The offline runner behaves like the engine's analyzer host: policy config parsing and
reconciliation, enforcement levels, the unknown-checking proxy, stack views with resolved parents
and dependencies, secrets (unwrapped from a run, unknown when masked in a plan)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from pulumi_policy import EnforcementLevel, PolicyResource, Severity
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy.offline_runner import (
    CONFIG_DIR,
    PolicyConfigError,
    Resource,
    config_path,
    evaluate,
    load_pack_config,
    parse_pack_config,
    reconcile,
    resources_from_plan,
)
from policy.registry import BY_ID, RULES, describe
from policy.rules.common import checkov, resource_rule, stack_rule
from programs.offline import CapturedResource, Secret
from programs.plan import resources_from_run
from tests.policy_fixtures import compliant_resources, named


def _levels(settings):
    return {k: v.level for k, v in settings.items()}


# ------------------------------------------------------------------------------ config files
def test_dev_and_prod_configs_list_the_same_ids_as_the_registry():
    dev = json.loads((CONFIG_DIR / "dev.json").read_text())
    prod = json.loads((CONFIG_DIR / "prod.json").read_text())
    ids = set(BY_ID)
    assert set(dev) - {"all"} == ids
    assert set(prod) - {"all"} == ids


def test_prod_is_mandatory_and_dev_mostly_advisory():
    prod = reconcile(load_pack_config(CONFIG_DIR / "prod.json"))
    dev = reconcile(load_pack_config(CONFIG_DIR / "dev.json"))
    assert set(_levels(prod).values()) == {EnforcementLevel.MANDATORY}
    dev_mandatory = [k for k, v in _levels(dev).items() if v == EnforcementLevel.MANDATORY]
    assert 0 < len(dev_mandatory) < len(RULES) / 2
    # the world-open API port is mandatory everywhere
    assert "no-world-open-admin-ports" in dev_mandatory


def test_config_files_validate_against_every_policy_schema_with_jsonschema():
    jsonschema = pytest.importorskip("jsonschema")
    for env in ("dev", "prod"):
        settings = reconcile(load_pack_config(CONFIG_DIR / f"{env}.json"))
        for rule in RULES:
            schema = {"type": "object", "properties": rule.config_schema}
            jsonschema.validate(settings[rule.id].config, schema)


def test_knobs_reach_policies_from_the_env_file():
    dev = reconcile(load_pack_config(CONFIG_DIR / "dev.json"))
    prod = reconcile(load_pack_config(CONFIG_DIR / "prod.json"))
    assert dev["karpenter-ami-pinned"].config["allowLatest"] is True
    assert prod["karpenter-ami-pinned"].config["allowLatest"] is False
    assert prod["required-tags"].config["requiredTags"] == ["owner", "cost-center"]
    # a knob not set falls back to the schema default, as the engine fills it
    assert prod["imds-hop-limit"].config == {"maxHopLimit": 1}


# ------------------------------------------------------------------------ config reconciliation
def test_config_forms_match_the_engine():
    parsed = parse_pack_config(
        {
            "all": "mandatory",
            "kms-key-rotation": "advisory",
            "eks-version-allowed": {"enforcementLevel": "disabled", "allowedVersions": ["1.34"]},
            "imds-hop-limit": {"maxHopLimit": 2},
        }
    )
    settings = reconcile(parsed)
    assert settings["lambda-in-vpc"].level == EnforcementLevel.MANDATORY  # from "all"
    assert settings["kms-key-rotation"].level == EnforcementLevel.ADVISORY  # per-policy string wins
    assert settings["eks-version-allowed"].level == EnforcementLevel.DISABLED
    assert settings["eks-version-allowed"].config == {"allowedVersions": ["1.34"]}
    assert settings["imds-hop-limit"].level == EnforcementLevel.MANDATORY  # object without a level keeps "all"
    assert settings["imds-hop-limit"].config == {"maxHopLimit": 2}
    # no config at all: fail safe, critical and high severity mandatory, the rest advisory
    default = _levels(reconcile({}))
    assert default["user-data-no-secrets"] == default["no-world-open-admin-ports"] == EnforcementLevel.MANDATORY
    assert default["lambda-in-vpc"] == EnforcementLevel.ADVISORY  # medium


@pytest.mark.parametrize(
    "raw,needle",
    [
        ({"all": "strict"}, "'strict' is not an enforcement level"),
        ({"kms-key-rotation": {"enforcementLevel": "hard"}}, "kms-key-rotation.enforcementLevel"),
        ({"kms-key-rotaton": "mandatory"}, "'kms-key-rotaton' is not a policy"),
        ({"imds-hop-limit": {"maxHopLimit": "one"}}, "imds-hop-limit.maxHopLimit: expected integer"),
        ({"imds-hop-limit": {"maxHopLimit": 0}}, "below the minimum 1"),
        ({"imds-hop-limit": {"hopLimit": 1}}, "imds-hop-limit.hopLimit: not a knob"),
        ({"required-tags": {"requiredTags": "owner"}}, "required-tags.requiredTags: expected array"),
        ({"lambda-in-vpc": 3}, "must be an enforcement level string or an object"),
    ],
)
def test_bad_config_is_refused_with_the_key(raw, needle):
    with pytest.raises(PolicyConfigError) as exc:
        reconcile(parse_pack_config(raw))
    assert any(needle in p for p in exc.value.problems), exc.value.problems


def test_bad_json_file_is_a_config_error(tmp_path: Path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(PolicyConfigError, match="not valid JSON"):
        load_pack_config(bad)


def test_config_path_falls_back_to_the_environment_file(tmp_path: Path):
    assert config_path("prod") == CONFIG_DIR / "prod.json"
    assert config_path("fleet-07", "prod") == CONFIG_DIR / "prod.json"
    with pytest.raises(FileNotFoundError, match="--policy-config"):
        config_path("nowhere", None, tmp_path)


# ------------------------------------------------------------------------------ enforcement
def _world_open_api(resources):
    named(resources, "api-sg").inputs["ingress"][0]["cidrBlocks"] = ["0.0.0.0/0"]


def test_levels_follow_the_config():
    resources = compliant_resources()
    _world_open_api(resources)
    for level in ("advisory", "mandatory", "remediate"):
        vs = evaluate(resources, reconcile(parse_pack_config({"no-world-open-admin-ports": level})))
        hits = [v for v in vs if v.policy == "no-world-open-admin-ports"]
        assert hits and {v.level for v in hits} == {"mandatory" if level == "remediate" else level}
    vs = evaluate(resources, reconcile(parse_pack_config({"no-world-open-admin-ports": "disabled"})))
    assert not [v for v in vs if v.policy == "no-world-open-admin-ports"]


def test_violation_record_shape():
    resources = compliant_resources()
    _world_open_api(resources)
    v = next(v for v in evaluate(resources) if v.policy == "no-world-open-admin-ports")
    record = v.as_dict()
    assert {"policy", "level", "urn", "message"} <= set(record)
    assert record["urn"] == named(resources, "api-sg").urn
    assert "6443" in record["message"]


# ----------------------------------------------------------------------- what policies receive
def test_resource_policies_get_the_unknown_checking_proxy_and_camel_case_names():
    seen = {}

    def spy(props, cfg, report, args):
        seen["isinstance_dict"] = isinstance(props, dict)
        seen["nested_is_dict"] = isinstance(props["metadataOptions"], dict)
        seen["keys"] = set(props)
        seen["opts_protect"] = args.opts.protect

    rule = resource_rule("spy", "spy", Severity.LOW, [checkov("X")], ["aws:ec2/launchTemplate:LaunchTemplate"], spy)
    evaluate(compliant_resources(), {"spy": reconcile({}, [rule])["spy"]}, rules=[rule])
    assert seen["isinstance_dict"] is False and seen["nested_is_dict"] is False  # proxies, as in the engine
    assert {"metadataOptions", "blockDeviceMappings", "userData"} <= seen["keys"]
    assert seen["opts_protect"] is False


def test_reading_an_unknown_value_is_an_advisory_cant_run_even_when_mandatory():
    resources = compliant_resources()
    named(resources, "nodes").inputs["metadataOptions"]["httpTokens"] = UNKNOWN_STRING_VALUE
    prod = reconcile(load_pack_config(CONFIG_DIR / "prod.json"))
    hits = [v for v in evaluate(resources, prod) if v.policy == "imdsv2-required"]
    assert len(hits) == 1
    assert hits[0].level == "advisory"
    assert "can't run policy 'imdsv2-required'" in hits[0].message and ".metadataOptions.httpTokens" in hits[0].message


def test_stack_policies_see_parents_and_dependencies_as_policy_resources():
    seen = {}

    def spy(resources, cfg, report, args):
        by_name = {r.name: r for r in resources}
        seen["parent"] = by_name["child"].parent
        seen["deps"] = by_name["child"].dependencies
        seen["prop_deps"] = by_name["child"].property_dependencies

    rule = stack_rule("spy-stack", "spy", Severity.LOW, [checkov("X")], [], spy)
    parent = Resource("urn:p", "k8s-platform:x:Comp", "comp", {})
    dep = Resource("urn:d", "aws:iam/role:Role", "role", {})
    child = Resource(
        "urn:c",
        "aws:iam/rolePolicy:RolePolicy",
        "child",
        {"role": "r"},
        parent="urn:p",
        dependencies=["urn:d"],
        property_dependencies={"role": ["urn:d"]},
    )
    evaluate([parent, dep, child], {"spy-stack": reconcile({}, [rule])["spy-stack"]}, rules=[rule])
    assert isinstance(seen["parent"], PolicyResource) and seen["parent"].name == "comp"
    assert [d.name for d in seen["deps"]] == ["role"]
    assert [d.name for d in seen["prop_deps"]["role"]] == ["role"]


def test_a_crashing_policy_is_reported_not_swallowed():
    def boom(props, cfg, report, args):
        raise KeyError("surprise")

    rule = resource_rule("boom", "boom", Severity.LOW, [checkov("X")], ["aws:ec2/vpc:Vpc"], boom)
    vs = evaluate(compliant_resources(), reconcile(parse_pack_config({"boom": "mandatory"}), [rule]), rules=[rule])
    assert vs and vs[0].level == "mandatory" and "policy raised KeyError" in vs[0].message


# ---------------------------------------------------------------------------------- secrets
def _launch_template(user_data):
    return CapturedResource(
        urn="urn:pulumi:t::p::aws:ec2/launchTemplate:LaunchTemplate::lt",
        type="aws:ec2/launchTemplate:LaunchTemplate",
        name="lt",
        parent=None,
        custom=True,
        inputs={
            "userData": user_data,
            "tags": {"owner": "o", "cost-center": "c"},
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
        },
        dependencies=[],
        protect=False,
    )


class _Run:
    def __init__(self, resources):
        self.resources = resources


def test_secret_inputs_of_a_run_are_unwrapped_for_evaluation():
    leaked = base64.b64encode(b"#!/bin/sh\nK3S_TOKEN=K10secretsecretsecret k3s agent\n").decode()
    resources = resources_from_run(_Run([_launch_template(Secret(leaked))]))
    assert resources[0].inputs["userData"] == leaked
    hits = [v for v in evaluate(resources) if v.policy == "user-data-no-secrets"]
    assert hits and "K3S_TOKEN" in hits[0].message


def test_secret_masks_in_a_plan_are_unknown_values():
    plan = {
        "resources": [
            {
                "urn": "urn:lt",
                "type": "aws:ec2/launchTemplate:LaunchTemplate",
                "name": "lt",
                "parent": None,
                "custom": True,
                "dependencies": [],
                "protect": False,
                "inputs": {
                    "userData": "[secret]",
                    "tags": {"owner": "o", "cost-center": "c"},
                    "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
                },
            }
        ]
    }
    hits = [v for v in evaluate(resources_from_plan(plan)) if v.policy == "user-data-no-secrets"]
    assert len(hits) == 1 and hits[0].level == "advisory" and "during preview" in hits[0].message


def test_registry_rows_carry_benchmarks_and_schemas():
    rows = describe()
    assert len(rows) == len(RULES) >= 35
    row = next(r for r in rows if r["id"] == "no-world-open-admin-ports")
    assert "checkov CKV_AWS_24" in row["benchmarks"]
    assert "adminPorts" in row["config"]
    assert next(r for r in rows if r["id"] == "required-tags")["resourceTypes"] == "any"


def test_policy_readme_lists_every_policy():
    readme = (CONFIG_DIR.parent / "README.md").read_text()
    missing = [r.id for r in RULES if f"| `{r.id}` |" not in readme]
    assert not missing, f"policy/README.md lacks {missing}; regenerate its table from `platformctl policy list`"
