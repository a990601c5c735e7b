"""`platformctl probe identities` against the fake Kubernetes API (Jobs, pods, logs, events) and
moto (IAM facts): per-method median/p95, identity check, the six recorded failure scenarios, cleanup."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")
boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")

from programs.platformctl import cli, exit_codes, probe  # noqa: E402
from programs.platformctl.probe_failures import (  # noqa: E402
    Facts,
    ProbeError,
    classify,
    identity_matches,
    p95,
    parse_error,
)
from tests.day2_fakes import FakeKube, MotoServer  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "111111111111"
ISSUER = f"https://dev-k3s-oidc-{ACCOUNT}.s3.us-east-1.amazonaws.com"
T0 = 1_796_000_000.0

# Cold-start seconds, container start -> first successful call (10 runs each, the benchmark's shapes).
RECORDED = {
    "reports-writer": [2.41, 2.52, 2.55, 2.58, 2.59, 2.59, 2.63, 2.70, 2.81, 3.02],  # IRSA via public S3
    "events-consumer": [3.61, 3.70, 3.85, 3.90, 3.95, 3.99, 4.10, 4.22, 13.41, 13.68],  # IRSA incl. CloudFront issuer
    "edge-agent": [1.92, 1.95, 2.01, 2.04, 2.10, 2.12, 2.15, 2.22, 2.30, 2.41],  # Roles Anywhere credential_process
}


def outputs() -> dict[str, Any]:
    def identity(method: str, ns: str, sa: str, role: str, session: str, **extra: str) -> dict[str, Any]:
        return {
            "method": method,
            "serviceAccount": f"{ns}/{sa}",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
            "expectedCallerIdentity": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
            "crossAccount": [],
            **extra,
        }

    return {
        "clusterKind": "k3s",
        "oidcIssuerUrl": ISSUER,
        "oidcIssuers": {"primary": {"issuerUrl": ISSUER, "oidcProviderArn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/x"}},
        "workloadIdentities": {
            "reports-writer": identity(
                "irsa", "reports", "reports-writer", "dev-k3s-wl-reports-writer", "<sdk-session-name>"
            ),
            "events-consumer": identity(
                "irsa", "events", "consumer", "dev-k3s-wl-events-consumer", "<sdk-session-name>"
            ),
            "edge-agent": identity(
                "roles-anywhere",
                "edge",
                "agent",
                "dev-k3s-wl-edge-agent",
                "edge-agent",
                secret="edge/agent-rolesanywhere-cert",
                configMap="edge/agent-rolesanywhere-config",
            ),
        },
    }


def ok_log(seconds: float, arn: str) -> str:
    return f"PROBE start {T0:.6f}\nPROBE ok {T0 + seconds:.6f} {arn}\n"


def error_log(*errors: str) -> str:
    return f"PROBE start {T0:.6f}\n" + "".join(f"PROBE error {T0 + 1 + i:.6f} {e}\n" for i, e in enumerate(errors))


class Env:
    def __init__(self, tmp: Path):
        self.tmp, self.kube, self.moto = tmp, FakeKube(), MotoServer()

    def reset(self) -> None:
        self.kube.reset()
        self.moto.reset()

    def iam(self):
        return boto3.client("iam", region_name=REGION)

    def probe(self, capsys, *extra: str) -> tuple[int, str]:
        (self.tmp / "outputs.json").write_text(json.dumps(outputs()))
        (self.tmp / "kubeconfig.json").write_text(json.dumps(self.kube.kubeconfig()))
        capsys.readouterr()
        code = cli.main(
            [
                "probe",
                "identities",
                "--stack",
                "dev",
                "--outputs",
                str(self.tmp / "outputs.json"),
                "--kubeconfig",
                str(self.tmp / "kubeconfig.json"),
                "--timeout",
                "1",
                *extra,
            ]
        )
        return code, capsys.readouterr().out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probe")
    e = Env(tmp)
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": e.moto.url,
            "AWS_CONFIG_FILE": str(tmp / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none"),
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    yield e
    os.environ.clear()
    os.environ.update(saved)
    e.kube.stop()
    e.moto.stop()


@pytest.fixture
def fresh(env, monkeypatch):
    env.reset()
    # Poll the fake quickly: its pods finish at creation.
    original = probe.Prober.__init__

    def fast(self, *a, **kw):
        kw["poll_interval"] = 0.01
        original(self, *a, **kw)

    monkeypatch.setattr(probe.Prober, "__init__", fast)
    return env


def _role(env: Env, name: str) -> None:
    env.iam().create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )


def test_per_method_table_with_median_and_p95(fresh, capsys):
    counters: dict[str, int] = {}

    def runner(job):
        workload = job["metadata"]["labels"][probe.PROBE_LABEL]
        n = counters.get(workload, 0)
        counters[workload] = n + 1
        role = f"dev-k3s-wl-{workload}"
        session = "edge-agent" if workload == "edge-agent" else f"botocore-session-{1796000000 + n}"
        return "Succeeded", ok_log(RECORDED[workload][n], f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"), []

    fresh.kube.job_runner = runner
    code, out = fresh.probe(capsys, "--runs", "10")
    assert code == exit_codes.OK, out
    rows = {line.split()[1]: line.split() for line in out.splitlines()[1:4]}
    for workload, timings in RECORDED.items():
        row = rows[workload]
        assert row[2:5] == ["10", "10", f"{statistics.median(timings):.2f}s"]
        assert row[5] == f"{sorted(timings)[9]:.2f}s" and row[6] == "matches"
    assert rows["events-consumer"][5] == "13.68s"  # the CloudFront cold-miss tail shows in p95
    per_method = {
        line.split()[0]: line.split()[1:]
        for line in out.split("per method (all runs)")[1].splitlines()[1:]
        if line.strip()
    }
    irsa = RECORDED["reports-writer"] + RECORDED["events-consumer"]
    assert per_method["irsa"] == [f"{statistics.median(irsa):.2f}s", f"{p95(irsa):.2f}s"]
    assert per_method["roles-anywhere"][0] == f"{statistics.median(RECORDED['edge-agent']):.2f}s"
    # Every Job ran as its workload, in its namespace; all were deleted.
    assert len(fresh.kube.deleted_jobs) == 30 and not fresh.kube.jobs
    ra_jobs = [r for r in fresh.kube.requests if r[0] == "POST" and "/namespaces/edge/" in r[1]]
    assert len(ra_jobs) == 10


def test_job_runs_as_the_workload_with_its_roles_anywhere_files(fresh, capsys):
    seen = []

    def runner(job):
        seen.append(job)
        return "Succeeded", ok_log(2.0, f"arn:aws:sts::{ACCOUNT}:assumed-role/dev-k3s-wl-edge-agent/edge-agent"), []

    fresh.kube.job_runner = runner
    code, _ = fresh.probe(capsys, "--runs", "1", "--workload", "edge-agent")
    assert code == exit_codes.OK
    [job] = seen
    spec = job["spec"]["template"]["spec"]
    assert job["metadata"]["namespace"] == "edge" and spec["serviceAccountName"] == "agent"
    assert {v["name"]: v for v in spec["volumes"]}["ra-cert"]["secret"]["secretName"] == "agent-rolesanywhere-cert"
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    assert env["AWS_CONFIG_FILE"] == "/etc/aws-rolesanywhere/config"
    assert "aws sts get-caller-identity" in spec["containers"][0]["command"][2]
    assert job["spec"]["backoffLimit"] == 0 and spec["restartPolicy"] == "Never"


def test_identity_mismatch_fails(fresh, capsys):
    fresh.kube.job_runner = lambda job: (
        "Succeeded",
        ok_log(3.2, f"arn:aws:sts::{ACCOUNT}:assumed-role/dev-k3s-k3s-agent/i-0abc"),
        [],
    )
    code, out = fresh.probe(capsys, "--runs", "2", "--workload", "reports-writer")
    assert code == exit_codes.CHECK_FAILED
    assert "MISMATCH" in out and "assumed-role/dev-k3s-k3s-agent/i-0abc" in out


NO_PROVIDER = (
    "An error occurred (InvalidIdentityToken) when calling the AssumeRoleWithWebIdentity operation: "
    "No OpenIDConnect provider found in your account for {issuer}"
)
NOT_AUTHORIZED = (
    "An error occurred (AccessDenied) when calling the AssumeRoleWithWebIdentity operation: "
    "Not authorized to perform sts:AssumeRoleWithWebIdentity"
)

# (scenario, workload, arrange(env), pod phase, log, events)
FAILURES = [
    (
        "issuer-changed",
        "reports-writer",
        lambda e: _role(e, "dev-k3s-wl-reports-writer"),
        "Failed",
        error_log(NO_PROVIDER.format(issuer="https://dev-k3s-oidc-v2.s3.us-east-1.amazonaws.com")),
        [],
    ),
    (
        "clock-skew",
        "reports-writer",
        lambda e: _role(e, "dev-k3s-wl-reports-writer"),
        "Failed",
        error_log(
            "An error occurred (SignatureDoesNotMatch) when calling the GetCallerIdentity operation: Signature "
            "expired: 20261201T201500Z is now earlier than 20261201T202000Z (20261201T202500Z - 5 min.)"
        ),
        [],
    ),
    ("role-deleted", "reports-writer", lambda e: None, "Failed", error_log(NOT_AUTHORIZED), []),
    (
        "oidc-provider-deleted",
        "reports-writer",
        lambda e: _role(e, "dev-k3s-wl-reports-writer"),
        "Failed",
        error_log(NO_PROVIDER.format(issuer=ISSUER)),
        [],
    ),
    (
        "trust-sub-mismatch",
        "reports-writer",
        lambda e: _role(e, "dev-k3s-wl-reports-writer"),
        "Failed",
        error_log("Unable to locate credentials yet", NOT_AUTHORIZED),
        [],
    ),
    (
        "roles-anywhere-secret-deleted",
        "edge-agent",
        lambda e: _role(e, "dev-k3s-wl-edge-agent"),
        "Pending",
        "",
        [
            (
                "FailedMount",
                'MountVolume.SetUp failed for volume "ra-cert" : secret "agent-rolesanywhere-cert" not found',
            )
        ],
    ),
]


@pytest.mark.parametrize("scenario, workload, arrange, phase, log, events", FAILURES, ids=[f[0] for f in FAILURES])
def test_recorded_failure_is_classified(fresh, capsys, scenario, workload, arrange, phase, log, events):
    arrange(fresh)
    fresh.kube.job_runner = lambda job: (phase, log, events)
    code, out = fresh.probe(capsys, "--runs", "1", "--workload", workload, "--json")
    assert code == exit_codes.CHECK_FAILED
    [result] = json.loads(out)["workloads"]
    [run] = result["runs"]
    assert run["scenario"] == scenario, run
    assert result["medianSeconds"] is None
    assert fresh.kube.deleted_jobs and not fresh.kube.jobs  # cleaned up on failure too


def test_failure_table_names_the_scenario(fresh, capsys):
    fresh.kube.job_runner = lambda job: (
        "Failed",
        error_log(NO_PROVIDER.format(issuer="https://elsewhere.example.com")),
        [],
    )
    code, out = fresh.probe(capsys, "--runs", "1", "--workload", "reports-writer")
    assert code == exit_codes.CHECK_FAILED
    assert "reports-writer (irsa): issuer-changed <- InvalidIdentityToken" in out


def test_roles_anywhere_secret_present_is_not_called_deleted():
    err = ProbeError("FailedMount", "", 'secret "x" not found')
    assert classify(err, Facts(secret_exists=True)) == "unclassified"
    assert (
        classify(
            parse_error("Error when retrieving credentials from custom-process: open tls.key"),
            Facts(secret_exists=False),
        )
        == "roles-anywhere-secret-deleted"
    )


def test_identity_placeholders_match_one_path_segment():
    expected = f"arn:aws:sts::{ACCOUNT}:assumed-role/r/<sdk-session-name>"
    assert identity_matches(expected, f"arn:aws:sts::{ACCOUNT}:assumed-role/r/botocore-session-1")
    assert not identity_matches(expected, f"arn:aws:sts::{ACCOUNT}:assumed-role/other/botocore-session-1")
    assert not identity_matches(expected, f"arn:aws:sts::{ACCOUNT}:assumed-role/r/a/b")
