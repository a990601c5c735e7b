"""`platformctl probe identities`: cold-start time to the first AWS call, per identity method.

For each declared workload (k8s-platform:workloads), N short-lived Jobs run one after another in
its namespace with its ServiceAccount; each container records its start, calls
`aws sts get-caller-identity` until it succeeds (or the deadline), and prints timestamps. Reported
per method, as in the K3s auth benchmark: median and p95 seconds from container start to the first
successful call, the identity against the stack's `expectedCallerIdentity`, and every failure
classified into the benchmark's six scenarios (programs/platformctl/probe_failures.py). Jobs are
deleted afterwards, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from components.identity.roles_anywhere import CERT_MOUNT, CONFIG_FILE, CONFIG_MOUNT
from programs.platformctl import exit_codes
from programs.platformctl.day2_args import add_stack_arguments, kubeconfig_of, stack_view
from programs.platformctl.probe_failures import (
    SCENARIOS,
    Facts,
    ProbeError,
    classify,
    identity_matches,
    median,
    p95,
    parse_error,
)

# AWS CLI v2, pinned (its credential chain: web identity, container credentials, credential_process, IMDS).
PROBE_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.22.35"
PROBE_LABEL = "k8s-platform/probe"
PROBE_SCRIPT = r"""t0=$(date +%s.%N)
echo "PROBE start $t0"
deadline=$(( ${t0%.*} + ${PROBE_DEADLINE_SECONDS:-20} ))
while :; do
  if out=$(aws sts get-caller-identity --query Arn --output text 2>&1); then
    echo "PROBE ok $(date +%s.%N) $out"; exit 0
  fi
  echo "PROBE error $(date +%s.%N) $(printf '%s' "$out" | tr '\n' ' ')"
  [ "$(date +%s)" -ge "$deadline" ] && exit 1
  sleep 1
done
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        help="measure and verify workload identities in the live cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_subparsers(dest="probe_target", required=True)
    q = what.add_parser(
        "identities",
        help="cold-start first AWS call per declared workload",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_arguments(q)
    q.add_argument("--runs", type=int, default=10, help="cold starts per workload (default %(default)s)")
    q.add_argument("--workload", action="append", help="probe only this workload (repeatable)")
    q.add_argument(
        "--image",
        default=PROBE_IMAGE,
        help="probe image with the AWS CLI (roles-anywhere also needs aws_signing_helper); default %(default)s",
    )
    q.add_argument("--timeout", type=float, default=120.0, help="seconds a run may take (default %(default)s)")
    q.add_argument("--json", action="store_true", help="print the results as JSON")
    q.set_defaults(func=run, poll_interval=1.0)


# ----------------------------------------------------------------------------------- Job spec
def job_manifest(name: str, workload: dict[str, Any], image: str, deadline_seconds: int) -> dict[str, Any]:
    namespace, service_account = workload["serviceAccount"].split("/", 1)
    volumes, mounts = [{"name": "tmp", "emptyDir": {}}], [{"name": "tmp", "mountPath": "/tmp"}]
    env = [
        {"name": "HOME", "value": "/tmp"},
        {"name": "PROBE_DEADLINE_SECONDS", "value": str(deadline_seconds)},
        {"name": "AWS_PAGER", "value": ""},
    ]
    if workload["method"] == "roles-anywhere":
        # Mounted as the workload mounts them: the certificate Secret and the credential_process config.
        volumes += [
            {"name": "ra-cert", "secret": {"secretName": workload["secret"].split("/", 1)[1]}},
            {"name": "ra-config", "configMap": {"name": workload["configMap"].split("/", 1)[1]}},
        ]
        mounts += [
            {"name": "ra-cert", "mountPath": CERT_MOUNT, "readOnly": True},
            {"name": "ra-config", "mountPath": CONFIG_MOUNT, "readOnly": True},
        ]
        env.append({"name": "AWS_CONFIG_FILE", "value": CONFIG_FILE})
    labels = {PROBE_LABEL: workload["name"], "app.kubernetes.io/managed-by": "platformctl"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 600,
            "activeDeadlineSeconds": deadline_seconds + 60,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": service_account,
                    "restartPolicy": "Never",
                    # fsGroup: the projected web-identity token stays readable by the non-root user.
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "fsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "probe",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["/bin/sh", "-c", PROBE_SCRIPT],
                            "env": env,
                            "volumeMounts": mounts,
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


# ----------------------------------------------------------------------------------- results
@dataclass
class Run:
    seconds: float | None = None  # container start -> first successful call
    arn: str | None = None
    error: ProbeError | None = None
    scenario: str | None = None


@dataclass
class WorkloadResult:
    name: str
    method: str
    expected: str
    runs: list[Run] = field(default_factory=list)

    @property
    def timings(self) -> list[float]:
        return [r.seconds for r in self.runs if r.seconds is not None]

    @property
    def identity_ok(self) -> bool:
        return all(identity_matches(self.expected, r.arn) for r in self.runs if r.arn)


def parse_log(log: str) -> Run:
    start, last_error = None, None
    for line in log.splitlines():
        parts = line.strip().split(" ", 3)
        if len(parts) < 3 or parts[0] != "PROBE":
            continue
        if parts[1] == "start":
            start = float(parts[2])
        elif parts[1] == "ok" and start is not None:
            return Run(seconds=float(parts[2]) - start, arn=parts[3].strip() if len(parts) > 3 else "")
        elif parts[1] == "error":
            last_error = parse_error(parts[3] if len(parts) > 3 else "")
    return Run(error=last_error or ProbeError("NoOutput", "", "the probe printed no result"))


class Prober:
    """Runs the Jobs through the official client and looks up the facts a failure needs."""

    def __init__(self, view, kubeconfig: dict[str, Any], *, image: str, timeout: float, poll_interval: float):
        from kubernetes import client
        from kubernetes import config as kconfig

        self.view, self.image, self.timeout, self.poll = view, image, timeout, poll_interval
        api = kconfig.new_client_from_config_dict(kubeconfig)
        self.core, self.batch = client.CoreV1Api(api), client.BatchV1Api(api)
        self.created: list[tuple[str, str]] = []

    def run_once(self, workload: dict[str, Any]) -> Run:
        namespace = workload["serviceAccount"].split("/", 1)[0]
        name = f"probe-{workload['name']}-{uuid.uuid4().hex[:6]}"[:63]
        self.batch.create_namespaced_job(namespace, job_manifest(name, workload, self.image, int(self.timeout / 2)))
        self.created.append((namespace, name))
        pod = self._wait(namespace, name)
        if pod is None:
            run = Run(error=ProbeError("NoPod", "", f"the Job created no pod within {self.timeout:g} s"))
        elif pod.status.phase in ("Succeeded", "Failed"):
            run = parse_log(self.core.read_namespaced_pod_log(pod.metadata.name, namespace, container="probe"))
        else:
            run = Run(error=self._not_started(namespace, pod))
        if run.error is not None:
            run.scenario = classify(run.error, self._facts(workload))
        return run

    def _wait(self, namespace: str, job: str):
        deadline, pod = time.monotonic() + self.timeout, None
        while time.monotonic() < deadline:
            pods = self.core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
            pod = pods[0] if pods else None
            if pod is not None and pod.status.phase in ("Succeeded", "Failed"):
                return pod
            time.sleep(self.poll)
        return pod

    def _not_started(self, namespace: str, pod) -> ProbeError:
        """Why a pod never ran: its events (FailedMount for a deleted Secret) or its container's waiting reason."""
        events = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={pod.metadata.name}"
        ).items
        for ev in events:
            if ev.type == "Warning":
                return ProbeError(ev.reason, "", ev.message or "")
        for cs in pod.status.container_statuses or []:
            if cs.state and cs.state.waiting:
                return ProbeError(cs.state.waiting.reason or "Pending", "", cs.state.waiting.message or "")
        return ProbeError("Pending", "", f"pod {pod.metadata.name} did not finish within {self.timeout:g} s")

    def _facts(self, workload: dict[str, Any]) -> Facts:
        import boto3
        from kubernetes.client.exceptions import ApiException

        iam = boto3.client("iam", region_name=self.view.config.region)
        role_exists = None
        role_name = workload["roleArn"].rsplit("/", 1)[-1]
        try:
            iam.get_role(RoleName=role_name)
            role_exists = True
        except iam.exceptions.NoSuchEntityException:
            role_exists = False
        providers = frozenset(
            "https://" + iam.get_open_id_connect_provider(OpenIDConnectProviderArn=p["Arn"])["Url"]
            for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
        )
        outputs = self.view.outputs
        issuers = {v["issuerUrl"] for v in (outputs.get("oidcIssuers") or {}).values()}
        if outputs.get("oidcIssuerUrl"):
            issuers.add(outputs["oidcIssuerUrl"])
        secret_exists = None
        if workload.get("secret"):
            ns, name = workload["secret"].split("/", 1)
            try:
                self.core.read_namespaced_secret(name, ns)
                secret_exists = True
            except ApiException as exc:
                if exc.status != 404:
                    raise
                secret_exists = False
        return Facts(
            role_exists=role_exists,
            provider_issuers=providers,
            stack_issuers=frozenset(issuers),
            secret_exists=secret_exists,
        )

    def cleanup(self) -> None:
        for namespace, name in self.created:
            try:
                self.batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
            except Exception as exc:  # noqa: BLE001 - report and go on deleting the rest
                print(f"warning: could not delete Job {namespace}/{name}: {exc}", file=sys.stderr)
        self.created.clear()


def declared_workloads(view, only: list[str] | None) -> list[dict[str, Any]]:
    identities = view.outputs.get("workloadIdentities") or {}
    chosen = []
    for w in view.config.workloads:
        if only and w.name not in only:
            continue
        out = identities.get(w.name)
        if out is None:
            continue
        chosen.append({"name": w.name, **out})
    return chosen


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}s"


def render(results: list[WorkloadResult]) -> str:
    rows = [("method", "workload", "runs", "ok", "median", "p95", "identity")]
    methods: dict[str, list[WorkloadResult]] = {}
    for r in results:
        methods.setdefault(r.method, []).append(r)
        rows.append(
            (
                r.method,
                r.name,
                str(len(r.runs)),
                str(len(r.timings)),
                _fmt(median(r.timings)),
                _fmt(p95(r.timings)),
                ("matches" if r.identity_ok else "MISMATCH") if r.timings else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append("")
    lines.append("per method (all runs)    median   p95")
    for method, group in methods.items():
        timings = [t for r in group for t in r.timings]
        lines.append(f"  {method:<22} {_fmt(median(timings)):>7}  {_fmt(p95(timings)):>7}")
    failures = [(r, run) for r in results for run in r.runs if run.error is not None]
    if failures:
        lines.append("")
        lines.append("failures")
        for r, run in failures:
            lines.append(f"  {r.name} ({r.method}): {run.scenario} <- {run.error.code}: {run.error.message[:160]}")
            lines.append(f"    {SCENARIOS[run.scenario]}")
    mismatched = [r for r in results if r.timings and not r.identity_ok]
    for r in mismatched:
        got = sorted({run.arn for run in r.runs if run.arn})
        lines.append(f"identity mismatch: {r.name}: expected {r.expected}, got {', '.join(got)}")
    return "\n".join(lines)


def as_json(results: list[WorkloadResult]) -> dict[str, Any]:
    return {
        "workloads": [
            {
                "name": r.name,
                "method": r.method,
                "expectedCallerIdentity": r.expected,
                "identityMatches": r.identity_ok,
                "medianSeconds": median(r.timings),
                "p95Seconds": p95(r.timings),
                "runs": [
                    {
                        "seconds": run.seconds,
                        "arn": run.arn,
                        "scenario": run.scenario,
                        "error": None
                        if run.error is None
                        else {"code": run.error.code, "operation": run.error.operation, "message": run.error.message},
                    }
                    for run in r.runs
                ],
            }
            for r in results
        ]
    }


def run(args: argparse.Namespace) -> int:
    if args.runs < 1:
        print("error: --runs must be at least 1", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    view = stack_view(args)
    if isinstance(view, int):
        return view
    kubeconfig = kubeconfig_of(args, view)
    workloads = declared_workloads(view, args.workload)
    if kubeconfig is None or not workloads:
        print(
            f"error: {args.stack}: "
            + (
                "no kubeconfig (pass --kubeconfig)"
                if kubeconfig is None
                else "no declared workload with an identity output"
            ),
            file=sys.stderr,
        )
        return exit_codes.CONFIG_ERROR
    prober = Prober(view, kubeconfig, image=args.image, timeout=args.timeout, poll_interval=args.poll_interval)
    results = []
    try:
        for w in workloads:
            result = WorkloadResult(w["name"], w["method"], w["expectedCallerIdentity"])
            for _ in range(args.runs):
                result.runs.append(prober.run_once(w))
            results.append(result)
    finally:
        prober.cleanup()
    if args.json:
        json.dump(as_json(results), sys.stdout, indent=2)
        print()
    else:
        print(render(results))
    failed = any(run.error for r in results for run in r.runs) or any(r.timings and not r.identity_ok for r in results)
    return exit_codes.CHECK_FAILED if failed else exit_codes.OK
