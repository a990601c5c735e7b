"""The pack as the pulumi CLI runs it: `policy/__main__.py` in a subprocess starts the analyzer
gRPC server (PolicyPack prints its port); we then speak the engine's side of the protocol:
GetAnalyzerInfo, Configure with a reconciled env config, Analyze and AnalyzeStack."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policy.offline_runner import CONFIG_DIR, load_pack_config, reconcile
from policy.registry import PACK_NAME, RULES
from programs.offline import REPO_ROOT

LEVEL = {"advisory": analyzer_pb2.ADVISORY, "mandatory": analyzer_pb2.MANDATORY,
         "disabled": analyzer_pb2.DISABLED, "remediate": analyzer_pb2.REMEDIATE}


@pytest.fixture(scope="module")
def analyzer():
    pack_dir = REPO_ROOT / "policy"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen([sys.executable, "-u", str(pack_dir / "__main__.py")], cwd=pack_dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    props = {"type": "ingress", "protocol": "tcp", "fromPort": 6443, "toPort": 6443,
             "cidrBlocks": ["0.0.0.0/0"], "securityGroupId": "sg-1"}
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(
        type="aws:ec2/securityGroupRule:SecurityGroupRule", properties=_struct(props),
        urn="urn:pulumi:prod::k8s-platform::aws:ec2/securityGroupRule:SecurityGroupRule::api-world", name="api-world"))
    diags = [d for d in response.diagnostics if d.policyName == "no-world-open-admin-ports"]
    assert diags and diags[0].enforcementLevel == analyzer_pb2.MANDATORY
    assert "tcp 6443-6443 from 0.0.0.0/0" in diags[0].message


def test_engine_analyze_uses_dev_knobs(analyzer):
    _configure(analyzer, "dev")
    props = {"spec": {"amiSelectorTerms": [{"alias": "al2023@latest"}], "role": "node"}}
    request = analyzer_pb2.AnalyzeRequest(type="kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", properties=_struct(props),
                                          urn="urn:pulumi:dev::k8s-platform::kubernetes:karpenter.k8s.aws/v1:EC2NodeClass::x",
                                          name="x")
    assert not [d for d in analyzer.Analyze(request).diagnostics if d.policyName == "karpenter-ami-pinned"]
    _configure(analyzer, "prod")
    assert [d for d in analyzer.Analyze(request).diagnostics if d.policyName == "karpenter-ami-pinned"]


def test_engine_analyze_stack_resolves_dependencies(analyzer):
    _configure(analyzer, "prod")
    vpc = analyzer_pb2.AnalyzerResource(type="aws:ec2/vpc:Vpc", urn="urn:vpc", name="vpc",
                                        properties=_struct({"tags": {"owner": "o", "cost-center": "c"}}))
    response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[vpc]))
    assert [d.urn for d in response.diagnostics if d.policyName == "vpc-flow-logs-enabled"] == ["urn:vpc"]
    flow = analyzer_pb2.AnalyzerResource(type="aws:ec2/flowLog:FlowLog", urn="urn:fl", name="fl", dependencies=["urn:vpc"],
                                         properties=_struct({"vpcId": "vpc-1"}))
    response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[vpc, flow]))
    assert not [d for d in response.diagnostics if d.policyName == "vpc-flow-logs-enabled"]
