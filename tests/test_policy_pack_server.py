"""The pack as the pulumi CLI runs it: the CLI's `pulumi-analyzer-policy-python` shim runs
`python -u -m pulumi.policy <engine address> . -toolchain=pip` in `policy/` with the pack's venv
(it strips `-virtualenv=`), and `pulumi.policy` runs `__main__.py`, whose PolicyPack starts the
analyzer gRPC server and prints its port. The subprocess here gets only the third-party packages
(`-S`: no .pth files, so not the repository's editable install), like `policy/venv` built from
`requirements.txt`. We then speak the engine's side of the protocol: GetAnalyzerInfo, Configure
with a reconciled env config, Analyze and AnalyzeStack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pulumi_policy
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policy.offline_runner import CONFIG_DIR, load_pack_config, reconcile
from policy.registry import PACK_NAME, RULES
from programs.offline import REPO_ROOT

LEVEL = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "disabled": analyzer_pb2.DISABLED,
    "remediate": analyzer_pb2.REMEDIATE,
}


@pytest.fixture(scope="module")
def analyzer():
    pack_dir = REPO_ROOT / "policy"
    site_packages = Path(pulumi_policy.__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site_packages)
    proc = subprocess.Popen(
        [sys.executable, "-S", "-u", "-m", "pulumi.policy", "127.0.0.1:1", ".", "-toolchain=pip"],
        cwd=pack_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = proc.stdout.readline().strip()
        assert port.isdigit(), f"pack did not start: {port!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=60)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _configure(stub, env: str) -> None:
    settings = reconcile(load_pack_config(CONFIG_DIR / f"{env}.json"))
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, s in settings.items():
        cfg = analyzer_pb2.PolicyConfig(enforcementLevel=LEVEL[s.level.value])
        cfg.properties.update(s.config)
        request.policyConfig[name].CopyFrom(cfg)
    stub.Configure(request)


def _struct(value: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


def test_pack_lists_every_policy_with_schema(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == PACK_NAME
    assert [p.name for p in info.policies] == [r.id for r in RULES]
    hop = next(p for p in info.policies if p.name == "imds-hop-limit")
    assert "maxHopLimit" in hop.configSchema.properties


def test_engine_analyze_blocks_world_open_6443_with_prod_config(analyzer):
    _configure(analyzer, "prod")
    props = {
        "type": "ingress",
        "protocol": "tcp",
        "fromPort": 6443,
        "toPort": 6443,
        "cidrBlocks": ["0.0.0.0/0"],
        "securityGroupId": "sg-1",
    }
    response = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(
            type="aws:ec2/securityGroupRule:SecurityGroupRule",
            properties=_struct(props),
            urn="urn:pulumi:prod::k8s-platform::aws:ec2/securityGroupRule:SecurityGroupRule::api-world",
            name="api-world",
        )
    )
    diags = [d for d in response.diagnostics if d.policyName == "no-world-open-admin-ports"]
    assert diags and diags[0].enforcementLevel == analyzer_pb2.MANDATORY
    assert "tcp 6443-6443 from 0.0.0.0/0" in diags[0].message


def test_engine_analyze_uses_dev_knobs(analyzer):
    _configure(analyzer, "dev")
    props = {"spec": {"amiSelectorTerms": [{"alias": "al2023@latest"}], "role": "node"}}
    request = analyzer_pb2.AnalyzeRequest(
        type="kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
        properties=_struct(props),
        urn="urn:pulumi:dev::k8s-platform::kubernetes:karpenter.k8s.aws/v1:EC2NodeClass::x",
        name="x",
    )
    assert not [d for d in analyzer.Analyze(request).diagnostics if d.policyName == "karpenter-ami-pinned"]
    _configure(analyzer, "prod")
    assert [d for d in analyzer.Analyze(request).diagnostics if d.policyName == "karpenter-ami-pinned"]


def test_engine_analyze_stack_resolves_dependencies(analyzer):
    _configure(analyzer, "prod")
    vpc = analyzer_pb2.AnalyzerResource(
        type="aws:ec2/vpc:Vpc",
        urn="urn:vpc",
        name="vpc",
        properties=_struct({"tags": {"owner": "o", "cost-center": "c"}}),
    )
    response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[vpc]))
    assert [d.urn for d in response.diagnostics if d.policyName == "vpc-flow-logs-enabled"] == ["urn:vpc"]
    flow = analyzer_pb2.AnalyzerResource(
        type="aws:ec2/flowLog:FlowLog",
        urn="urn:fl",
        name="fl",
        dependencies=["urn:vpc"],
        properties=_struct({"vpcId": "vpc-1"}),
    )
    response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[vpc, flow]))
    assert not [d for d in response.diagnostics if d.policyName == "vpc-flow-logs-enabled"]


def test_the_pack_process_does_not_rely_on_the_repository_being_installed():
    """The launch above is meaningful only if `policy` is not importable from site-packages alone."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(Path(pulumi_policy.__file__).resolve().parent.parent)
    proc = subprocess.run(
        [sys.executable, "-S", "-c", "import policy"],
        cwd=REPO_ROOT / "policy",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0 and "No module named 'policy'" in proc.stderr


def test_engine_analyze_with_unknowns_as_a_preview_sends_them(analyzer):
    """The engine sends preview unknowns as sentinel strings: a rule that only needs the KMS key to be
    set still decides; one that needs an unknown CIDR becomes an advisory "can't run"."""
    from pulumi_policy.proxy import UNKNOWN_ARRAY_VALUE, UNKNOWN_STRING_VALUE

    _configure(analyzer, "prod")
    cluster = {
        "version": "1.35",
        "enabledClusterLogTypes": ["api", "audit", "authenticator"],
        "vpcConfig": {
            "endpointPrivateAccess": True,
            "endpointPublicAccess": False,
            "subnetIds": [UNKNOWN_STRING_VALUE],
        },
        "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False},
        "encryptionConfig": {"provider": {"keyArn": UNKNOWN_STRING_VALUE}, "resources": ["secrets"]},
        "deletionProtection": True,
        "tags": {"owner": "o", "cost-center": "c"},
    }
    response = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(
            type="aws:eks/cluster:Cluster",
            properties=_struct(cluster),
            name="c",
            urn="urn:pulumi:prod::k8s-platform::aws:eks/cluster:Cluster::c",
            options=analyzer_pb2.AnalyzerResourceOptions(protect=True),
        )
    )
    assert [(d.policyName, d.message) for d in response.diagnostics] == []
    rule = {"type": "ingress", "protocol": "tcp", "fromPort": 6443, "toPort": 6443, "cidrBlocks": UNKNOWN_ARRAY_VALUE}
    response = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(
            type="aws:ec2/securityGroupRule:SecurityGroupRule",
            properties=_struct(rule),
            name="r",
            urn="urn:pulumi:prod::k8s-platform::aws:ec2/securityGroupRule:SecurityGroupRule::r",
        )
    )
    diags = [d for d in response.diagnostics if d.policyName == "no-world-open-admin-ports"]
    assert [d.enforcementLevel for d in diags] == [analyzer_pb2.ADVISORY]
    assert "can't run policy" in diags[0].message


def test_without_a_config_the_pack_declares_critical_and_high_policies_mandatory(analyzer):
    """What the engine reconciles when `--policy-pack-config` is absent: each policy's own level."""
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    levels = {p.name: p.enforcementLevel for p in info.policies}
    for rule in RULES:
        expected = analyzer_pb2.MANDATORY if rule.severity.value in ("critical", "high") else analyzer_pb2.ADVISORY
        assert levels[rule.id] == expected, rule.id
    assert levels["no-world-open-admin-ports"] == levels["user-data-no-secrets"] == analyzer_pb2.MANDATORY
