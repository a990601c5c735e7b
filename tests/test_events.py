"""Engine events -> progress lines, run summary and exit code, from recorded event sequences."""

from __future__ import annotations

from pulumi.automation import events as ev

from programs.platformctl import exit_codes
from programs.platformctl.events import (
    EventFold,
    credentials_problem,
    fold_events,
    outcome_code,
    render_summary,
)

PREFIX = "urn:pulumi:dev::k8s-platform::"
STACK_URN = PREFIX + "pulumi:pulumi:Stack::k8s-platform-dev"
VPC_URN = PREFIX + "k8s-platform:network:Network$aws:ec2/vpc:Vpc::network-vpc"
SUBNET_URN = PREFIX + "k8s-platform:network:Network$aws:ec2/subnet:Subnet::network-private-us-east-1a"
NAT_URN = PREFIX + "k8s-platform:network:Network$aws:ec2/natGateway:NatGateway::network-nat-us-east-1a"
PROVIDER_URN = PREFIX + "pulumi:providers:aws::aws"


def step(op: str, urn: str) -> ev.StepEventMetadata:
    typ = urn.split("::")[-2].rsplit("$", 1)[-1]
    return ev.StepEventMetadata(op=ev.OpType(op), urn=urn, type=typ, provider=PROVIDER_URN)


def pre(seq: int, op: str, urn: str, planning: bool | None = None) -> ev.EngineEvent:
    return ev.EngineEvent(seq, 0, resource_pre_event=ev.ResourcePreEvent(step(op, urn), planning=planning))


def outputs(seq: int, op: str, urn: str, planning: bool | None = None) -> ev.EngineEvent:
    return ev.EngineEvent(seq, 0, res_outputs_event=ev.ResOutputsEvent(step(op, urn), planning=planning))


def diag(
    seq: int, severity: str, message: str, urn: str | None = None, ephemeral: bool | None = None
) -> ev.EngineEvent:
    return ev.EngineEvent(
        seq, 0, diagnostic_event=ev.DiagnosticEvent(message, "never", severity, urn=urn, ephemeral=ephemeral)
    )


def policy(seq: int, level: str, name: str, urn: str, message: str) -> ev.EngineEvent:
    return ev.EngineEvent(
        seq,
        0,
        policy_event=ev.PolicyEvent(message, "never", name, "k8s-platform-guardrails", "0.1.0", "0.1.0", level, urn),
    )


def summary(seq: int, changes: dict, seconds: int = 42) -> ev.EngineEvent:
    return ev.EngineEvent(
        seq, 0, summary_event=ev.SummaryEvent(False, seconds, changes, {"k8s-platform-guardrails": "0.1.0"})
    )


def recorded_up() -> list[ev.EngineEvent]:
    """An `up` that creates a VPC and a subnet, updates a NAT gateway, with one advisory policy finding."""
    return [
        ev.EngineEvent(0, 0, prelude_event=ev.PreludeEvent({"aws:region": "us-east-1"})),
        pre(1, "same", STACK_URN),
        pre(2, "create", VPC_URN),
        outputs(3, "create", VPC_URN),
        pre(4, "create", SUBNET_URN),
        diag(5, "info", "a print() from the program"),
        diag(6, "info", "creating (12s)", urn=SUBNET_URN, ephemeral=True),
        outputs(7, "create", SUBNET_URN),
        pre(8, "update", NAT_URN),
        outputs(9, "update", NAT_URN),
        policy(10, "advisory", "nat-per-az", NAT_URN, "one NAT gateway per zone is recommended\nmore text"),
        diag(11, "warning", "deprecated argument\nsecond line", urn=VPC_URN),
        outputs(12, "same", STACK_URN),
        summary(13, {ev.OpType.CREATE: 2, ev.OpType.UPDATE: 1, ev.OpType.SAME: 1}),
    ]


def test_up_sequence_streams_one_line_per_step_and_summarises():
    lines, result = fold_events(recorded_up(), "up")
    assert lines[0] == " + aws:ec2/vpc:Vpc  network-vpc  creating"
    assert lines[1] == " + aws:ec2/vpc:Vpc  network-vpc  created (1 done)"
    assert " ~ aws:ec2/natGateway:NatGateway  network-nat-us-east-1a  updated (3 done)" in lines
    # The unchanged stack, ephemeral status and the program's own prints are not progress lines.
    assert not any("pulumi:pulumi:Stack" in ln or "print()" in ln or "(12s)" in ln for ln in lines)
    assert (
        "policy advisory: k8s-platform-guardrails/nat-per-az: one NAT gateway per zone is recommended "
        "(network-nat-us-east-1a)" in lines
    )
    assert "warning: network-vpc: deprecated argument" in lines
    assert result.changes == {"create": 2, "update": 1, "same": 1}
    assert result.completed == 3 and result.duration_seconds == 42
    assert result.policy_packs == {"k8s-platform-guardrails": "0.1.0"}
    assert outcome_code(result) == exit_codes.OK  # advisory findings do not fail a run
    assert (
        render_summary("dev", "up", result)
        == "up dev: 2 created, 1 updated, 1 unchanged; 0 mandatory and 1 advisory policy violations; 42s"
    )


def test_preview_sequence_plans_without_completion_lines():
    events = [
        pre(1, "create", VPC_URN, planning=True),
        outputs(2, "create", VPC_URN, planning=True),
        pre(3, "replace", SUBNET_URN, planning=True),
        outputs(4, "replace", SUBNET_URN, planning=True),
        summary(5, {"create": 1, "replace": 1}, seconds=3),
    ]
    lines, result = fold_events(events, "preview")
    assert lines == [
        " + aws:ec2/vpc:Vpc  network-vpc  create",
        "+- aws:ec2/subnet:Subnet  network-private-us-east-1a  replace",
    ]
    assert (
        render_summary("dev", "preview", result)
        == "preview dev: 1 to create, 1 to replace; 0 mandatory and 0 advisory policy violations; 3s"
    )


def test_failed_resource_is_a_failed_run_with_the_root_cause():
    events = [
        pre(1, "create", VPC_URN),
        diag(
            2,
            "error",
            "creating EC2 VPC: operation error EC2: CreateVpc, api error VpcLimitExceeded\n  details...",
            urn=VPC_URN,
        ),
        ev.EngineEvent(3, 0, res_op_failed_event=ev.ResOpFailedEvent(step("create", VPC_URN), 1, 1)),
        summary(4, {"create": 0}),
    ]
    lines, result = fold_events(events, "up")
    assert "error: network-vpc: creating EC2 VPC: operation error EC2: CreateVpc, api error VpcLimitExceeded" in lines
    assert " ✗ aws:ec2/vpc:Vpc  network-vpc  create failed" in lines
    assert result.failed == [VPC_URN]
    assert outcome_code(result, "code: 255 ...") == exit_codes.DEPLOY_FAILED
    assert "1 failed; 1 errors" in render_summary("dev", "up", result)


def test_mandatory_policy_violation_decides_the_exit_code():
    events = [
        pre(1, "create", VPC_URN, planning=True),
        policy(2, "mandatory", "imdsv2-required", VPC_URN, "instances must require IMDSv2"),
        policy(3, "advisory", "nat-per-az", NAT_URN, "one NAT per zone"),
        diag(4, "error", "preview failed: 1 mandatory policy violation"),
    ]
    _, result = fold_events(events, "preview")
    assert [v.policy for v in result.mandatory] == ["imdsv2-required"]
    assert [v.policy for v in result.advisory] == ["nat-per-az"]
    assert outcome_code(result, "error: preview failed") == exit_codes.POLICY_VIOLATION
    assert "1 mandatory and 1 advisory policy violations" in render_summary("dev", "preview", result)


def test_without_a_summary_event_changes_are_counted_from_the_steps():
    events = [
        pre(1, "same", STACK_URN),
        pre(2, "create", VPC_URN),
        pre(3, "create", SUBNET_URN),
        pre(4, "delete", NAT_URN),
        ev.EngineEvent(5, 0, cancel_event=ev.CancelEvent()),
    ]
    lines, result = fold_events(events, "up")
    assert result.changes == {"same": 1, "create": 2, "delete": 1}  # as the engine counts: the stack too
    assert result.cancelled and lines[-1] == "cancelled"
    assert outcome_code(result) == exit_codes.DEPLOY_FAILED


def test_events_parsed_from_the_engine_json_log_fold_the_same_way():
    """The Automation API reads the CLI's event log with `EngineEvent.from_json`; use that path."""
    raw = [
        {
            "sequence": 1,
            "timestamp": 1,
            "resourcePreEvent": {
                "metadata": {"op": "create", "urn": VPC_URN, "type": "aws:ec2/vpc:Vpc", "provider": PROVIDER_URN},
                "planning": True,
            },
        },
        {
            "sequence": 2,
            "timestamp": 1,
            "policyEvent": {
                "message": "flow logs must be on",
                "color": "never",
                "policyName": "vpc-flow-logs",
                "policyPackName": "k8s-platform-guardrails",
                "policyPackVersion": "0.1.0",
                "policyPackVersionTag": "0.1.0",
                "enforcementLevel": "mandatory",
                "resourceUrn": VPC_URN,
            },
        },
        {
            "sequence": 3,
            "timestamp": 2,
            "summaryEvent": {
                "maybeCorrupt": False,
                "durationSeconds": 5,
                "resourceChanges": {"create": 1},
                "PolicyPacks": {},
            },
        },
    ]
    lines, result = fold_events([ev.EngineEvent.from_json(r) for r in raw], "preview")
    assert lines[0] == " + aws:ec2/vpc:Vpc  network-vpc  create"
    assert result.changes == {"create": 1}
    assert outcome_code(result) == exit_codes.POLICY_VIOLATION


def test_feed_is_incremental():
    fold = EventFold("up")
    assert fold.feed(pre(1, "create", VPC_URN)) == [" + aws:ec2/vpc:Vpc  network-vpc  creating"]
    assert fold.feed(diag(2, "debug", "noise")) == []
    assert fold.result().changes == {"create": 1}


# Error texts as the CLI, the Pulumi backend and the AWS provider print them.
AWS_NO_CREDENTIALS = (
    "Diagnostics:\n  pulumi:providers:aws (aws):\n    error: pulumi:providers:aws resource 'aws' has a problem: "
    "No valid credential sources found.\n    Please see https://www.pulumi.com/registry/packages/aws/"
    "installation-configuration/ for more information about providing credentials."
)
BACKEND_LOGIN = "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions"
EXPIRED = (
    "error: operation error STS: GetCallerIdentity, api error ExpiredToken: The security token included "
    "in the request is expired"
)


def test_credentials_problems_are_recognised_and_named():
    assert credentials_problem(AWS_NO_CREDENTIALS).startswith("no AWS credentials found")
    assert "pulumi login" in credentials_problem(BACKEND_LOGIN)
    assert credentials_problem(EXPIRED).startswith("AWS credentials are expired or invalid")
    assert credentials_problem("error: creating EC2 VPC: VpcLimitExceeded") is None
    assert credentials_problem("") is None


def test_credentials_error_in_diagnostics_wins_over_a_generic_failure():
    events = [
        pre(1, "create", VPC_URN, planning=True),
        diag(2, "error", AWS_NO_CREDENTIALS.split("error: ", 1)[1], urn=PROVIDER_URN),
    ]
    _, result = fold_events(events, "preview")
    assert outcome_code(result, "code: 255") == exit_codes.CREDENTIALS_MISSING
    assert outcome_code(fold_events([], "up")[1], BACKEND_LOGIN) == exit_codes.CREDENTIALS_MISSING


def test_status_line_tracks_what_is_running():
    fold = EventFold("up")
    fold.feed(pre(1, "create", VPC_URN))
    fold.feed(pre(2, "create", SUBNET_URN))
    assert fold.status() == "0 done, 2 in progress"
    fold.feed(outputs(3, "create", VPC_URN))
    fold.feed(ev.EngineEvent(4, 0, res_op_failed_event=ev.ResOpFailedEvent(step("create", SUBNET_URN), 1, 1)))
    assert fold.status() == "1 done, 0 in progress, 1 failed"
    planned = EventFold("preview")
    for event in (pre(1, "same", STACK_URN), pre(2, "create", VPC_URN, True), pre(3, "update", NAT_URN, True)):
        planned.feed(event)
    assert planned.status() == "2 changes planned, 1 unchanged"
