"""`platformctl doctor` against loopback fakes: every check driven to each of its verdicts.

Real clients only: the official `kubernetes` client against tests/day2_fakes.FakeKube, boto3
against moto (server mode) and FakeEks (the EKS calls moto lacks), urllib against an HTTPS issuer.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")
boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")

from components.core.pins import addon_versions  # noqa: E402
from components.eks.access import CLUSTER_ADMIN_POLICY  # noqa: E402
from programs.platformctl import cli, doctor_cmd, exit_codes  # noqa: E402
from programs.platformctl.doctor import BY_ID, CHECKS  # noqa: E402
from programs.platformctl.doctor.framework import Context  # noqa: E402
from tests.day2_fakes import FakeEks, FakeIssuer, FakeKube, MotoServer, self_signed_localhost  # noqa: E402

REGION = "us-east-1"
PROD_ADMIN = "arn:aws:iam::222222222222:role/platform-admin"
PROD_BREAK_GLASS = "arn:aws:iam::222222222222:role/eks-break-glass"


class Env:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.kube, self.eks, self.moto = FakeKube(), FakeEks(), MotoServer()
        self.cert, key = self_signed_localhost(tmp)
        self.issuer = FakeIssuer((self.cert, key))
        self.outputs: dict[str, Any] = {}
        self.now_offset = 0.0

    def reset(self) -> None:
        self.kube.reset()
        self.eks.reset()
        self.moto.reset()
        self.issuer.documents.clear()
        self.outputs = {}
        self.now_offset = 0.0

    def aws(self, service: str):
        return boto3.client(service, region_name=REGION)

    def stop(self) -> None:
        for server in (self.kube, self.eks, self.moto, self.issuer):
            server.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("doctor")
    e = Env(tmp)
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": e.moto.url,
            "AWS_ENDPOINT_URL_EKS": f"http://127.0.0.1:{e.eks.port}",
            "SSL_CERT_FILE": str(e.cert),
            "AWS_CONFIG_FILE": str(tmp / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none"),
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    yield e
    os.environ.clear()
    os.environ.update(saved)
    e.stop()


@pytest.fixture
def fresh(env):
    env.reset()
    return env


def run_doctor(env: Env, stack: str, *only: str, monkeypatch, capsys) -> tuple[int, list[dict[str, Any]]]:
    outputs = env.tmp / f"outputs-{stack}.json"
    outputs.write_text(json.dumps(env.outputs))
    kubeconfig = env.tmp / "kubeconfig.json"
    kubeconfig.write_text(json.dumps(env.kube.kubeconfig()))

    class ShiftedClock(Context):
        def __init__(self, *a, **kw):
            super().__init__(*a, now=lambda: time.time() + env.now_offset, **kw)

    monkeypatch.setattr(doctor_cmd, "Context", ShiftedClock)
    args = ["doctor", "--stack", stack, "--outputs", str(outputs), "--kubeconfig", str(kubeconfig), "--json"]
    for check in only:
        args += ["--only", check]
    capsys.readouterr()
    code = cli.main(args)
    return code, json.loads(capsys.readouterr().out)["checks"]


def iso(seconds_ago: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------------------------ fixtures (EKS)
def eks_cluster(env: Env, mode: str = "API", version: str = "1.35") -> None:
    env.eks.clusters["prod-eks"] = {
        "name": "prod-eks",
        "version": version,
        "status": "ACTIVE",
        "accessConfig": {"authenticationMode": mode},
    }


def admin_entries(env: Env, *, break_glass: bool = True) -> None:
    admin = [{"policyArn": CLUSTER_ADMIN_POLICY, "accessScope": {"type": "cluster", "namespaces": []}}]
    env.eks.access_entries["prod-eks"] = {PROD_ADMIN: admin, **({PROD_BREAK_GLASS: admin} if break_glass else {})}


def node(name: str, *, zone: str = "us-east-1a", itype: str = "m7i.large", pods: int = 110, ready: bool = True):
    return {
        "metadata": {
            "name": name,
            "labels": {"topology.kubernetes.io/zone": zone, "node.kubernetes.io/instance-type": itype},
        },
        "status": {
            "capacity": {"pods": str(pods)},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pods_on(node_name: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "metadata": {"name": f"{node_name}-p{i}", "namespace": "default"},
            "spec": {"nodeName": node_name},
            "status": {"phase": "Running"},
        }
        for i in range(count)
    ]


def pod_subnet(env: Env) -> None:
    ec2 = env.aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock="100.64.0.0/16")
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="100.64.0.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    env.outputs["podSubnetIds"] = {"us-east-1a": sub}


def nodes_with_free_slots(env: Env, count: int) -> None:
    env.kube.set_list("/api/v1/nodes", [node(f"n{i}") for i in range(count)])
    env.kube.set_list("/api/v1/pods", [])


def agent_daemonset(env: Env, desired: int, ready: int) -> None:
    env.kube.objects["/apis/apps/v1/namespaces/kube-system/daemonsets/eks-pod-identity-agent"] = {
        "metadata": {"name": "eks-pod-identity-agent", "namespace": "kube-system"},
        "status": {
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "updatedNumberScheduled": desired,
            "numberAvailable": ready,
        },
    }
    env.kube.set_list("/api/v1/nodes", [node(f"n{i}") for i in range(desired)])


def association(env: Env) -> None:
    env.eks.associations["prod-eks"] = [
        {
            "clusterName": "prod-eks",
            "namespace": "orders",
            "serviceAccount": "orders-api",
            "associationArn": "arn:aws:eks:us-east-1:222222222222:podidentityassociation/prod-eks/a-1",
            "associationId": "a-1",
        }
    ]


def orders_sa(env: Env, annotations: dict[str, str]) -> None:
    env.kube.set_list(
        "/api/v1/namespaces/orders/serviceaccounts",
        [{"metadata": {"name": "orders-api", "namespace": "orders", "annotations": annotations}}],
    )


def orders_pods(env: Env, injected: bool) -> None:
    container_env = [
        {"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://169.254.170.23/v1/credentials"},
        {
            "name": "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "value": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token",
        },
    ]
    env.kube.set_list(
        "/api/v1/namespaces/orders/pods",
        [
            {
                "metadata": {"name": "orders-api-0", "namespace": "orders"},
                "spec": {
                    "serviceAccountName": "orders-api",
                    "containers": [{"name": "app", "env": container_env if injected else []}],
                },
                "status": {"phase": "Running"},
            },
            {
                "metadata": {"name": "batch-0", "namespace": "orders"},  # another ServiceAccount: not checked
                "spec": {"serviceAccountName": "default", "containers": [{"name": "app"}]},
                "status": {"phase": "Running"},
            },
        ],
    )


def nodepool(
    name: str,
    *,
    cpu: str | None = "100",
    policy: str = "WhenEmptyOrUnderutilized",
    requirements: list[dict] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "limits": {"cpu": cpu} if cpu else {},
            "disruption": {"consolidationPolicy": policy, "consolidateAfter": "1m"},
            "template": {
                "spec": {
                    "requirements": requirements
                    or [{"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]}]
                }
            },
        },
    }


def nodeclaim(name: str, age: float, launched: bool, registered: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": iso(age)},
        "status": {
            "conditions": [
                {"type": "Launched", "status": "True" if launched else "Unknown"},
                {"type": "Registered", "status": "True" if registered else "Unknown"},
            ]
        },
    }


def ingress(name: str, group: str | None) -> dict[str, Any]:
    annotations = {"alb.ingress.kubernetes.io/group.name": group} if group else {}
    return {
        "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
        "spec": {"ingressClassName": "alb"},
    }


def albs(env: Env, stacks: list[str], cluster: str = "prod-eks") -> None:
    ec2, elb = env.aws("ec2"), env.aws("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    for i, stack in enumerate(stacks):
        elb.create_load_balancer(
            Name=f"k8s-alb-{i}",
            Subnets=subnets,
            Scheme="internal",
            Type="application",
            Tags=[{"Key": "elbv2.k8s.aws/cluster", "Value": cluster}, {"Key": "ingress.k8s.aws/stack", "Value": stack}],
        )


def addons(env: Env, *, drift: str | None = None, broken: str | None = None, skip: str | None = None) -> None:
    found = {}
    for name, version in addon_versions("1.35").items():
        if name == skip:
            continue
        status = "DEGRADED" if name == broken else "ACTIVE"
        found[name] = {
            "addonName": name,
            "addonVersion": "v0.0.1-eksbuild.1" if name == drift else version,
            "status": status,
            "health": {
                "issues": [{"code": "InsufficientNumberOfReplicas", "message": "2 replicas not ready"}]
                if name == broken
                else []
            },
        }
    env.eks.addons["prod-eks"] = found


# ------------------------------------------------------------------------------ fixtures (K3s)
JWKS_KEY = {"kty": "RSA", "kid": "kid-current", "use": "sig", "alg": "RS256", "n": "sXch", "e": "AQAB"}


def issuer(env: Env, *, kids: list[str] = ("kid-current",), discovery_issuer: str | None = None) -> str:
    url = f"{env.issuer.base}/primary"
    env.issuer.documents["/primary/.well-known/openid-configuration"] = {
        "issuer": discovery_issuer or url,
        "jwks_uri": f"{url}/keys.json",
        "response_types_supported": ["id_token"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    env.issuer.documents["/primary/keys.json"] = {"keys": [{**JWKS_KEY, "kid": k} for k in kids]}
    env.outputs["oidcIssuers"] = {
        "primary": {"issuerUrl": url, "oidcProviderArn": "arn:aws:iam::111111111111:oidc-provider/x"}
    }
    env.outputs["oidcIssuerUrl"] = url
    return url


def server_jwks(env: Env, kid: str = "kid-current") -> None:
    env.kube.objects["/openid/v1/jwks"] = {"keys": [{**JWKS_KEY, "kid": kid}]}


def oidc_provider(env: Env, url: str) -> None:
    env.aws("iam").create_open_id_connect_provider(
        Url=url, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
    )


def snapshots(env: Env, count: int, age_hours: float) -> None:
    s3 = env.aws("s3")
    s3.create_bucket(Bucket="dev-k3s-snapshots")
    for i in range(count):
        s3.put_object(Bucket="dev-k3s-snapshots", Key=f"etcd/snap-{i}", Body=b"x")
    env.outputs["etcdSnapshotBucket"] = "dev-k3s-snapshots"
    env.now_offset = age_hours * 3600


def dlq(env: Env, messages: int) -> None:
    sqs = env.aws("sqs")
    url = sqs.create_queue(QueueName="dev-k3s-node-drainer-dlq")["QueueUrl"]
    for i in range(messages):
        sqs.send_message(
            QueueUrl=url, MessageBody=json.dumps({"detail-type": "EC2 Spot Instance Interruption Warning", "n": i})
        )
    env.outputs["nodeDrainerDeadLetterQueueUrl"] = url


def leases(env: Env, offsets: dict[str, float]) -> None:
    """Node Leases renewed `offset` seconds from now by each node's clock (negative: in the past)."""
    env.kube.set_list("/api/v1/nodes", [node(n) for n in offsets])
    env.kube.set_list(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        [
            {
                "metadata": {"name": n, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": n, "leaseDurationSeconds": 40, "renewTime": iso(-off)},
            }
            for n, off in offsets.items()
        ],
    )


# ------------------------------------------------------------------------------ the cases
def _nothing(env: Env) -> None:
    pass


CASES: list[tuple[str, str, str, Callable[[Env], None], str]] = [
    # (check, stack, expected verdict, arrange, a substring of detail/findings)
    ("eks-access-entries", "prod", "ok", lambda e: (eks_cluster(e), admin_entries(e)), "authentication mode API"),
    (
        "eks-access-entries",
        "prod",
        "fail",
        lambda e: (eks_cluster(e), admin_entries(e, break_glass=False)),
        "eks-break-glass: no access entry",
    ),
    (
        "eks-access-entries",
        "prod",
        "warn",
        lambda e: (eks_cluster(e, "API_AND_CONFIG_MAP"), admin_entries(e)),
        "API_AND_CONFIG_MAP",
    ),
    ("eks-access-entries", "dev", "skipped", _nothing, "applies to eks"),
    ("pod-ip-headroom", "prod", "ok", lambda e: (pod_subnet(e), nodes_with_free_slots(e, 1)), "room"),
    (
        "pod-ip-headroom",
        "prod",
        "warn",
        lambda e: (pod_subnet(e), nodes_with_free_slots(e, 2)),
        "no room for one more node",
    ),
    ("pod-ip-headroom", "prod", "fail", lambda e: (pod_subnet(e), nodes_with_free_slots(e, 3)), "336 needed"),
    ("pod-ip-headroom", "prod", "skipped", _nothing, "podSubnetIds"),
    ("max-pods-vs-cni", "prod", "ok", lambda e: e.kube.set_list("/api/v1/nodes", [node("a", pods=110)]), "1 nodes"),
    (
        "max-pods-vs-cni",
        "prod",
        "fail",
        lambda e: e.kube.set_list("/api/v1/nodes", [node("a", pods=250)]),
        "advertises maxPods 250, the CNI can address 110",
    ),
    (
        "max-pods-vs-cni",
        "prod",
        "warn",
        lambda e: e.kube.set_list("/api/v1/nodes", [node("a", itype="x9z.huge")]),
        "no ENI data",
    ),
    ("max-pods-vs-cni", "prod", "skipped", lambda e: e.kube.set_list("/api/v1/nodes", []), "no nodes"),
    ("pod-identity-agent", "prod", "ok", lambda e: agent_daemonset(e, 3, 3), "DESIRED 3 READY 3"),
    ("pod-identity-agent", "prod", "fail", lambda e: agent_daemonset(e, 3, 2), "READY 2"),
    ("pod-identity-agent", "prod", "fail", lambda e: e.kube.set_list("/api/v1/nodes", [node("a")]), "does not exist"),
    ("pod-identity-agent", "dev", "skipped", _nothing, "applies to eks"),
    ("pod-identity-associations", "prod", "ok", lambda e: (eks_cluster(e), association(e)), "all 1"),
    (
        "pod-identity-associations",
        "prod",
        "fail",
        eks_cluster,
        "orders-api (orders/orders-api): no Pod Identity association",
    ),
    ("pod-identity-associations", "dev", "skipped", _nothing, "applies to eks"),
    ("pod-identity-irsa-annotation", "prod", "ok", lambda e: orders_sa(e, {}), "without an IRSA annotation"),
    (
        "pod-identity-irsa-annotation",
        "prod",
        "fail",
        lambda e: orders_sa(e, {"eks.amazonaws.com/role-arn": "arn:aws:iam::222222222222:role/old"}),
        "role/old beside",
    ),
    ("pod-identity-irsa-annotation", "dev", "skipped", _nothing, "applies to eks"),
    ("pod-identity-injection", "prod", "ok", lambda e: orders_pods(e, injected=True), "1 running Pod Identity pods"),
    (
        "pod-identity-injection",
        "prod",
        "fail",
        lambda e: orders_pods(e, injected=False),
        "orders/orders-api-0 container app: no AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ),
    (
        "pod-identity-injection",
        "prod",
        "skipped",
        lambda e: e.kube.set_list("/api/v1/namespaces/orders/pods", []),
        "no running pod",
    ),
    (
        "karpenter-nodepools",
        "prod",
        "ok",
        lambda e: e.kube.set_list("/apis/karpenter.sh/v1/nodepools", [nodepool("general")]),
        "1 NodePools",
    ),
    (
        "karpenter-nodepools",
        "prod",
        "warn",
        lambda e: e.kube.set_list(
            "/apis/karpenter.sh/v1/nodepools",
            [
                nodepool(
                    "general",
                    policy="WhenEmpty",
                    requirements=[
                        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.24xlarge"]}
                    ],
                )
            ],
        ),
        "one instance shape only",
    ),
    (
        "karpenter-nodepools",
        "prod",
        "fail",
        lambda e: e.kube.set_list("/apis/karpenter.sh/v1/nodepools", [nodepool("general", cpu=None)]),
        "no limits.cpu",
    ),
    ("karpenter-nodepools", "prod", "skipped", _nothing, "CRD is not installed"),
    (
        "karpenter-nodeclaims",
        "dev",
        "ok",
        lambda e: e.kube.set_list(
            "/apis/karpenter.sh/v1/nodeclaims",
            [nodeclaim("general-a", 3600, True, True), nodeclaim("general-b", 30, False, False)],
        ),
        "2 NodeClaims, none stuck",
    ),
    (
        "karpenter-nodeclaims",
        "dev",
        "fail",
        lambda e: e.kube.set_list("/apis/karpenter.sh/v1/nodeclaims", [nodeclaim("general-a", 1200, False, False)]),
        "general-a: not launched",
    ),
    ("karpenter-nodeclaims", "dev", "skipped", _nothing, "CRD is not installed"),
    (
        "alb-ingress-group",
        "prod",
        "ok",
        lambda e: e.kube.set_list(
            "/apis/networking.k8s.io/v1/ingresses", [ingress("web", "shop"), ingress("api", "shop")]
        ),
        "all 2",
    ),
    (
        "alb-ingress-group",
        "prod",
        "warn",
        lambda e: e.kube.set_list(
            "/apis/networking.k8s.io/v1/ingresses", [ingress("web", "shop"), ingress("legacy", None)]
        ),
        "shop/legacy: no alb.ingress.kubernetes.io/group.name",
    ),
    (
        "alb-ingress-group",
        "prod",
        "skipped",
        lambda e: e.kube.set_list("/apis/networking.k8s.io/v1/ingresses", []),
        "no Ingress",
    ),
    ("alb-per-group", "prod", "ok", lambda e: albs(e, ["shop", "payments"]), "2 ALBs, one per IngressGroup"),
    ("alb-per-group", "prod", "warn", lambda e: albs(e, ["shop", "shop/legacy"]), "shop/legacy: its own ALB"),
    ("alb-per-group", "prod", "fail", lambda e: albs(e, ["shop", "shop"]), "group shop: 2 ALBs"),
    (
        "alb-per-group",
        "prod",
        "skipped",
        lambda e: albs(e, ["shop"], cluster="another-cluster"),
        "no ALB of this cluster",
    ),
    ("eks-addons", "prod", "ok", lambda e: (eks_cluster(e), addons(e)), "ACTIVE at the versions pinned for 1.35"),
    ("eks-addons", "dev", "skipped", _nothing, "applies to eks"),
    (
        "eks-addons",
        "prod",
        "warn",
        lambda e: (eks_cluster(e), addons(e, drift="coredns")),
        "coredns: v0.0.1-eksbuild.1 installed",
    ),
    (
        "eks-addons",
        "prod",
        "fail",
        lambda e: (eks_cluster(e), addons(e, broken="coredns")),
        "DEGRADED: 2 replicas not ready",
    ),
    (
        "eks-addons",
        "prod",
        "fail",
        lambda e: (eks_cluster(e), addons(e, skip="eks-pod-identity-agent")),
        "eks-pod-identity-agent: not installed",
    ),
    ("oidc-discovery", "dev", "ok", issuer, "publish discovery and a JWKS over HTTPS"),
    ("oidc-discovery", "dev", "fail", lambda e: issuer(e, discovery_issuer="https://old.example.com"), "tokens say"),
    ("oidc-discovery", "dev", "fail", lambda e: (issuer(e), e.issuer.documents.pop("/primary/keys.json")), "HTTPError"),
    ("oidc-discovery", "dev", "skipped", _nothing, "no service-account issuer"),
    ("jwks-signing-key", "dev", "ok", lambda e: (issuer(e), server_jwks(e)), "kid-current"),
    (
        "jwks-signing-key",
        "dev",
        "fail",
        lambda e: (issuer(e, kids=["kid-old"]), server_jwks(e)),
        "servers sign with kid kid-current",
    ),
    ("jwks-signing-key", "dev", "skipped", _nothing, "no service-account issuer"),
    ("oidc-provider-url", "dev", "ok", lambda e: oidc_provider(e, issuer(e)), "each have their IAM OIDC provider"),
    (
        "oidc-provider-url",
        "dev",
        "fail",
        lambda e: (issuer(e), oidc_provider(e, "https://old.example.com")),
        "no IAM OIDC provider for",
    ),
    ("oidc-provider-url", "dev", "skipped", _nothing, "no service-account issuer"),
    ("etcd-snapshots", "dev", "ok", lambda e: snapshots(e, 2, 1), "schedule every 6 h"),
    ("etcd-snapshots", "dev", "warn", lambda e: snapshots(e, 2, 10), "one missed"),
    ("etcd-snapshots", "dev", "fail", lambda e: snapshots(e, 2, 30), "30.0 h old"),
    ("etcd-snapshots", "dev", "fail", lambda e: snapshots(e, 0, 0), "no etcd snapshot"),
    ("etcd-snapshots", "dev", "skipped", _nothing, "etcdSnapshotBucket"),
    ("drain-dlq", "dev", "ok", lambda e: dlq(e, 0), "empty"),
    ("drain-dlq", "dev", "fail", lambda e: dlq(e, 2), "2 termination events"),
    ("drain-dlq", "dev", "skipped", _nothing, "nodeDrainerDeadLetterQueueUrl"),
    ("node-clock-skew", "dev", "ok", lambda e: leases(e, {"a": -4, "b": 0}), "2 nodes within"),
    ("node-clock-skew", "dev", "warn", lambda e: leases(e, {"a": -4, "b": 90}), "b: clock ahead by about 90 s"),
    ("node-clock-skew", "dev", "fail", lambda e: leases(e, {"a": -4, "b": -400}), "b: clock behind by about 390 s"),
    ("node-clock-skew", "dev", "skipped", lambda e: leases(e, {}), "no Ready node"),
]


@pytest.mark.parametrize(
    "check, stack, verdict, arrange, expect", CASES, ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(CASES)]
)
def test_check_verdict(fresh, monkeypatch, capsys, check, stack, verdict, arrange, expect):
    arrange(fresh)
    code, results = run_doctor(fresh, stack, check, monkeypatch=monkeypatch, capsys=capsys)
    [result] = results
    text = result["detail"] + "\n" + "\n".join(result["findings"])
    assert (result["id"], result["verdict"]) == (check, verdict), text
    assert expect in text
    assert (
        code
        == {
            "ok": exit_codes.OK,
            "skipped": exit_codes.OK,
            "warn": exit_codes.CHECK_WARNINGS,
            "fail": exit_codes.CHECK_FAILED,
        }[verdict]
    )
    assert result["confirm"] and result["fix"] and result["symptom"]
    if verdict != "skipped" or "applies to" not in text:
        assert result["queried"] or verdict == "skipped"


def test_every_check_reaches_each_of_its_verdicts():
    reached: dict[str, set[str]] = {}
    for check, _, verdict, _, _ in CASES:
        reached.setdefault(check, set()).add(verdict)
    assert set(reached) == set(BY_ID)
    for check, verdicts in reached.items():
        # alb-ingress-group has no fail: an Ingress outside an IngressGroup costs an ALB, it breaks nothing.
        assert {"ok", "fail"} <= verdicts or check == "alb-ingress-group", (check, verdicts)
        assert "skipped" in verdicts, (check, verdicts)


def test_help_lists_every_check(capsys):
    with pytest.raises(SystemExit):
        cli.main(["doctor", "--help"])
    out = capsys.readouterr().out
    for check in CHECKS:
        assert check.id in out


def test_exit_code_is_the_worst_verdict_and_text_shows_confirm_and_fix(fresh, monkeypatch, capsys):
    leases(fresh, {"a": 0, "b": 90})  # warn
    dlq(fresh, 1)  # fail
    outputs = fresh.tmp / "o.json"
    outputs.write_text(json.dumps(fresh.outputs))
    kubeconfig = fresh.tmp / "kc.json"
    kubeconfig.write_text(json.dumps(fresh.kube.kubeconfig()))
    capsys.readouterr()
    code = cli.main(
        [
            "doctor",
            "--stack",
            "dev",
            "--outputs",
            str(outputs),
            "--kubeconfig",
            str(kubeconfig),
            "--only",
            "node-clock-skew",
            "--only",
            "drain-dlq",
        ]
    )
    out = capsys.readouterr().out
    assert code == exit_codes.CHECK_FAILED
    assert "WARN     node-clock-skew" in out and "FAIL     drain-dlq" in out
    assert "confirm: aws sqs get-queue-attributes" in out and "fix: read the messages" in out


def test_unreachable_api_is_a_failed_check_not_a_crash(fresh, monkeypatch, capsys):
    fresh.eks.clusters.clear()  # DescribeCluster -> 404 ResourceNotFound
    code, [result] = run_doctor(fresh, "prod", "eks-access-entries", monkeypatch=monkeypatch, capsys=capsys)
    assert result["verdict"] == "fail" and "could not query" in result["detail"]
    assert code == exit_codes.CHECK_FAILED


def test_readme_day_two_table_lists_every_check():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Day two", 1)[1].split("\n## ", 1)[0]
    for check in CHECKS:
        assert f"| `{check.id}` |" in section, check.id


def test_without_outputs_or_pulumi_cli_says_what_to_pass(monkeypatch, capsys):
    monkeypatch.setattr("shutil.which", lambda name: None)
    code = cli.main(["doctor", "--stack", "dev"])
    assert code == exit_codes.CONFIG_ERROR
    assert "pass --outputs FILE" in capsys.readouterr().err
