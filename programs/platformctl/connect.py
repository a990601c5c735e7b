"""`platformctl connect`: reach a stack's private API endpoint through SSM Session Manager.

No bastion, no SSH, no public IP: a port-forwarding session (the stack's pinned form of
AWS-StartPortForwardingSessionToRemoteHost, output `apiAccess.ssmDocumentName`) through an
instance inside the VPC: a K3s server (found in its Auto Scaling group) or the EKS access
instance (`cluster.eks.accessInstance.enabled`). A kubeconfig for https://127.0.0.1:<port> with
the endpoint's real name as TLS server name is written next to it, so the certificate still verifies.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.core.api_access import DEFAULT_LOCAL_PORT
from policy.offline_runner import SECRET_MASK
from programs.platformctl import exit_codes
from programs.platformctl.day2_args import add_stack_arguments, stack_view


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "connect",
        help="forward the private Kubernetes API to 127.0.0.1 through SSM (no bastion)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_arguments(p, kubeconfig=False)
    p.add_argument("--port", type=int, default=DEFAULT_LOCAL_PORT, help="local port (default %(default)s)")
    p.add_argument(
        "--write-kubeconfig",
        type=Path,
        metavar="PATH",
        help="where to write the kubeconfig (default ~/.kube/k8s-platform-<stack>.yaml)",
    )
    p.add_argument("--offline", action="store_true", help="take the outputs from the offline plan (implies --dry-run)")
    p.add_argument("--dry-run", action="store_true", help="print the target and the session command; start nothing")
    p.set_defaults(func=run)


class NoTarget(Exception):
    pass


@dataclass(frozen=True)
class Connection:
    target: str  # the instance id (or, offline, a description of where it will be found)
    target_source: str  # how it was found
    remote_host: str
    remote_port: int
    tls_server_name: str
    document: str
    region: str

    def command(self, local_port: int) -> list[str]:
        return [
            "aws",
            "ssm",
            "start-session",
            "--region",
            self.region,
            "--target",
            self.target,
            "--document-name",
            self.document,
            "--parameters",
            json.dumps({"localPortNumber": [str(local_port)]}),
        ]


def resolve(outputs: dict[str, Any], *, autoscaling=None) -> Connection:
    """The SSM target for the stack's `apiAccess` output; `autoscaling` (a boto3 client) finds a
    running K3s server; without one the Auto Scaling group is named instead."""
    access = outputs.get("apiAccess")
    if not access:
        kind = outputs.get("clusterKind")
        hint = " (set k8s-platform:cluster.eks.accessInstance.enabled: true and pulumi up)" if kind == "eks" else ""
        raise NoTarget(f"the stack exports no apiAccess target{hint}")
    common = dict(
        remote_host=access["remoteHost"],
        remote_port=int(access["remotePort"]),
        tls_server_name=access["tlsServerName"],
        document=access["ssmDocumentName"],
        region=access["region"],
    )
    if access["targetKind"] == "instance":
        return Connection(target=access["instanceId"], target_source="the EKS access instance", **common)
    groups = list(access["autoScalingGroupNames"])
    if autoscaling is None:
        return Connection(
            target=f"<an InService instance of {' or '.join(groups)}>",
            target_source="K3s server Auto Scaling group",
            **common,
        )
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=groups)["AutoScalingGroups"]
    for group in sorted(found, key=lambda g: groups.index(g["AutoScalingGroupName"])):
        for inst in group.get("Instances", []):
            if inst.get("LifecycleState") == "InService" and inst.get("HealthStatus") == "Healthy":
                return Connection(
                    target=inst["InstanceId"], target_source=f"K3s server in {group['AutoScalingGroupName']}", **common
                )
    raise NoTarget(f"no InService, healthy K3s server in {', '.join(groups)}")


def local_kubeconfig(kubeconfig: str, conn: Connection, local_port: int) -> dict[str, Any]:
    """The stack's kubeconfig, pointed at the tunnel: same CA and credentials, the real server name for TLS."""
    doc = yaml.safe_load(kubeconfig)
    for entry in doc.get("clusters", []):
        entry["cluster"]["server"] = f"https://127.0.0.1:{local_port}"
        entry["cluster"]["tls-server-name"] = conn.tls_server_name
    return doc


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def run(args: argparse.Namespace) -> int:
    dry_run = args.dry_run or args.offline
    view = stack_view(args, offline=args.offline)
    if isinstance(view, int):
        return view
    autoscaling = None
    if not args.offline:
        import boto3

        autoscaling = boto3.client("autoscaling", region_name=view.config.region)
    try:
        conn = resolve(view.outputs, autoscaling=autoscaling)
    except NoTarget as exc:
        print(f"error: {args.stack}: {exc}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    path = args.write_kubeconfig or Path.home() / ".kube" / f"k8s-platform-{args.stack}.yaml"
    print(f"target:     {conn.target} ({conn.target_source})")
    print(f"forwards:   127.0.0.1:{args.port} -> {conn.remote_host}:{conn.remote_port} (SSM document {conn.document})")
    print(f"tls name:   {conn.tls_server_name}")
    kubeconfig = view.outputs.get("kubeconfig")
    if args.offline:
        # An offline plan's endpoint and CA are the mocks' inventions: never overwrite a kubeconfig with them.
        print(f"kubeconfig: {path} would be written from the deployed stack's outputs (not with --offline)")
    elif isinstance(kubeconfig, str) and kubeconfig.strip() and kubeconfig != SECRET_MASK:
        write_private(path, yaml.safe_dump(local_kubeconfig(kubeconfig, conn, args.port), sort_keys=False))
        print(f"kubeconfig: {path}  (export KUBECONFIG={path})")
    command = conn.command(args.port)
    print("session:    " + " ".join(_quote(c) for c in command))
    if dry_run:
        return exit_codes.OK
    missing = [tool for tool in ("aws", "session-manager-plugin") if shutil.which(tool) is None]
    if missing:
        print(f"error: {', '.join(missing)} not installed (AWS CLI v2 and the Session Manager plugin)", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    os.execvp(command[0], command)  # the session runs in the foreground until Ctrl-C
    return exit_codes.OK  # not reached


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
