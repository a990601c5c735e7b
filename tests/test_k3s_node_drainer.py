"""The node-drainer Lambda against moto (SQS, EC2, Secrets Manager) and a small fake Kubernetes API
on 127.0.0.1 (TLS, client-certificate auth): right node, PDB-respecting drain, idempotent
redelivery, poison messages dead-lettered by real SQS redrive."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

from components.k3s.node_drainer import handler as drainer  # noqa: E402

REGION = "us-east-1"
DRAINER_USER = "k8s-platform:node-drainer"


# --------------------------------------------------------------------------------- test PKI
def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _cert(
    subject: str, key, issuer_name: x509.Name | None, issuer_key, *, ca: bool = False, server: bool = False
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    server_ca_key, client_ca_key = _key(), _key()
    server_ca = _cert("server-ca", server_ca_key, None, server_ca_key, ca=True)
    client_ca = _cert("client-ca", client_ca_key, None, client_ca_key, ca=True)
    server_key, client_key = _key(), _key()
    server = _cert("kube-apiserver", server_key, server_ca.subject, server_ca_key, server=True)
    client = _cert(DRAINER_USER, client_key, client_ca.subject, client_ca_key)
    files = {"server.crt": _pem(server), "server.key": _pem_key(server_key), "client-ca.crt": _pem(client_ca)}
    for name, text in files.items():
        (d / name).write_text(text)
    return {"dir": d, "server_ca": _pem(server_ca), "client_cert": _pem(client), "client_key": _pem_key(client_key)}


# ---------------------------------------------------------------------------- fake kube API
class FakeCluster:
    """Nodes and pods in memory; evictions honour a per-pod count of PDB refusals (429)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.nodes: dict[str, dict] = {}
        self.pods: dict[tuple[str, str], dict] = {}
        self.pdb_refusals: dict[tuple[str, str], int] = {}
        self.log: list[str] = []
        self.users: set[str] = set()

    def add_node(self, name: str, provider_id: str) -> None:
        self.nodes[name] = {"metadata": {"name": name}, "spec": {"providerID": provider_id}}

    def add_pod(self, ns: str, name: str, node: str, owner_kind: str = "ReplicaSet", phase: str = "Running") -> None:
        self.pods[(ns, name)] = {
            "metadata": {"namespace": ns, "name": name, "ownerReferences": [{"kind": owner_kind, "name": "o"}]},
            "spec": {"nodeName": node},
            "status": {"phase": phase},
        }

    def pods_on(self, node: str) -> list[str]:
        return sorted(f"{ns}/{n}" for (ns, n), p in self.pods.items() if p["spec"]["nodeName"] == node)


def _handler_class(cluster: FakeCluster):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: dict | None = None):
            data = json.dumps(body or {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str):
            peer = self.connection.getpeercert()
            user = dict(x[0] for x in peer["subject"])["commonName"]
            url = urllib.parse.urlparse(self.path)
            parts = url.path.strip("/").split("/")
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            with cluster.lock:
                cluster.users.add(user)
                cluster.log.append(f"{method} {url.path}")
                if parts[:3] == ["api", "v1", "nodes"]:
                    if len(parts) == 3 and method == "GET":
                        return self._send(200, {"items": list(cluster.nodes.values())})
                    node = cluster.nodes.get(parts[3])
                    if node is None:
                        return self._send(404, {"reason": "NotFound"})
                    if method == "GET":
                        return self._send(200, node)
                    if method == "PATCH":
                        assert self.headers["Content-Type"] == "application/merge-patch+json"
                        node["spec"].update(body["spec"])
                        return self._send(200, node)
                    if method == "DELETE":
                        del cluster.nodes[parts[3]]
                        return self._send(200, {})
                if parts == ["api", "v1", "pods"] and method == "GET":
                    selector = urllib.parse.parse_qs(url.query)["fieldSelector"][0]
                    node = selector.removeprefix("spec.nodeName=")
                    return self._send(
                        200, {"items": [p for p in cluster.pods.values() if p["spec"]["nodeName"] == node]}
                    )
                if len(parts) == 7 and parts[-1] == "eviction" and method == "POST":
                    key = (parts[3], parts[5])
                    assert body["kind"] == "Eviction" and body["apiVersion"] == "policy/v1"
                    if key not in cluster.pods:
                        return self._send(404, {"reason": "NotFound"})
                    if cluster.pdb_refusals.get(key, 0) > 0:
                        cluster.pdb_refusals[key] -= 1
                        return self._send(
                            429,
                            {
                                "reason": "TooManyRequests",
                                "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                            },
                        )
                    del cluster.pods[key]
                    return self._send(201, {})
            return self._send(405, {})

        def do_GET(self):
            self._route("GET")

        def do_PATCH(self):
            self._route("PATCH")

        def do_DELETE(self):
            self._route("DELETE")

        def do_POST(self):
            self._route("POST")

    return Handler


@pytest.fixture
def kube_api(pki):
    cluster = FakeCluster()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(cluster))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["dir"] / "server.crt", pki["dir"] / "server.key")
    context.load_verify_locations(pki["dir"] / "client-ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED  # like kube-apiserver with the client CA: no anonymous access
    server.socket = context.wrap_socket(server.socket, server_side=True)
    # Polled every 20 ms so that shutdown at teardown returns at once (the default waits up to 0.5 s).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    cluster.url = f"https://127.0.0.1:{server.server_address[1]}"
    yield cluster
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------------------------- AWS
@pytest.fixture
def aws(monkeypatch, pki, kube_api):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws():
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secret = secrets.create_secret(
            Name="k8s-platform/dev-k3s/k3s/node-drainer",
            SecretString=json.dumps(
                {"server": kube_api.url, "ca": pki["server_ca"], "cert": pki["client_cert"], "key": pki["client_key"]}
            ),
        )
        monkeypatch.setenv("CREDENTIALS_SECRET_ID", secret["ARN"])
        monkeypatch.setenv("DRAIN_TIMEOUT_SECONDS", "30")
        monkeypatch.setattr(drainer, "_CLIENTS", {})
        monkeypatch.setattr(drainer, "EVICTION_RETRY_SECONDS", 0.01)
        monkeypatch.setattr(drainer, "POLL_SECONDS", 0.01)
        yield {"ec2": boto3.client("ec2", region_name=REGION), "sqs": boto3.client("sqs", region_name=REGION)}


def launch(ec2, count: int = 1) -> list[dict]:
    # Registered: moto's default AMIs are off for the suite (tests/conftest.py).
    image = ec2.register_image(Name="al2023-ami-2023-test", RootDeviceName="/dev/xvda", Architecture="x86_64")[
        "ImageId"
    ]
    return ec2.run_instances(
        ImageId=image,
        MinCount=count,
        MaxCount=count,
        InstanceType="t3.large",
        Placement={"AvailabilityZone": f"{REGION}a"},
    )["Instances"]


def register_nodes(cluster: FakeCluster, instances: list[dict]) -> list[str]:
    names = []
    for inst in instances:
        name = inst["PrivateDnsName"]
        cluster.add_node(name, f"aws:///{inst['Placement']['AvailabilityZone']}/{inst['InstanceId']}")
        names.append(name)
    return names


def spot_warning(instance_id: str) -> str:
    return json.dumps(
        {
            "version": "0",
            "source": "aws.ec2",
            "detail-type": drainer.SPOT_INTERRUPTION,
            "detail": {"instance-id": instance_id, "instance-action": "terminate"},
        }
    )


def sqs_event(*bodies: str) -> dict:
    return {"Records": [{"messageId": str(i), "body": b, "eventSource": "aws:sqs"} for i, b in enumerate(bodies)]}


# ------------------------------------------------------------------------------------ tests
def test_spot_warning_drains_and_deletes_exactly_the_interrupted_node(aws, kube_api):
    victim, bystander = register_nodes(kube_api, launch(aws["ec2"], 2))
    kube_api.add_pod("web", "web-1", victim)
    kube_api.add_pod("web", "web-2", bystander)
    kube_api.add_pod("kube-system", "flannel-x", victim, owner_kind="DaemonSet")
    kube_api.add_pod("jobs", "done", victim, phase="Succeeded")
    victim_id = kube_api.nodes[victim]["spec"]["providerID"].rsplit("/", 1)[1]

    result = drainer.handler(sqs_event(spot_warning(victim_id)))

    assert result["results"] == [f"node {victim} drained and deleted"]
    assert victim not in kube_api.nodes and bystander in kube_api.nodes
    assert kube_api.pods_on(bystander) == ["web/web-2"]
    # DaemonSet and finished pods are not evicted (they would come straight back / need nothing).
    assert not any("flannel-x/eviction" in c or "done/eviction" in c for c in kube_api.log)
    assert "POST /api/v1/namespaces/web/pods/web-1/eviction" in kube_api.log
    cordon = kube_api.log.index(f"PATCH /api/v1/nodes/{victim}")
    assert cordon < kube_api.log.index("POST /api/v1/namespaces/web/pods/web-1/eviction")
    assert kube_api.log[-1] == f"DELETE /api/v1/nodes/{victim}"
    assert kube_api.users == {DRAINER_USER}


def test_redelivered_event_is_a_noop_success(aws, kube_api):
    (victim,) = register_nodes(kube_api, launch(aws["ec2"]))
    kube_api.add_pod("web", "web-1", victim)
    body = spot_warning(kube_api.nodes[victim]["spec"]["providerID"].rsplit("/", 1)[1])
    drainer.handler(sqs_event(body))
    calls = len(kube_api.log)

    again = drainer.handler(sqs_event(body))

    assert again["results"] == ["no node (already deleted or not in this cluster)"]
    assert not any(c.startswith(("PATCH", "POST", "DELETE")) for c in kube_api.log[calls:])


def test_pdb_refusals_are_retried_until_the_eviction_is_allowed(aws, kube_api):
    (victim,) = register_nodes(kube_api, launch(aws["ec2"]))
    kube_api.add_pod("db", "db-0", victim)
    kube_api.pdb_refusals[("db", "db-0")] = 3
    drainer.handler(sqs_event(spot_warning(kube_api.nodes[victim]["spec"]["providerID"].rsplit("/", 1)[1])))
    assert kube_api.log.count("POST /api/v1/namespaces/db/pods/db-0/eviction") == 4
    assert victim not in kube_api.nodes


def test_pdb_blocking_past_the_deadline_raises_and_keeps_the_node(aws, kube_api, monkeypatch):
    monkeypatch.setenv("DRAIN_TIMEOUT_SECONDS", "0.2")
    (victim,) = register_nodes(kube_api, launch(aws["ec2"]))
    kube_api.add_pod("db", "db-0", victim)
    kube_api.pdb_refusals[("db", "db-0")] = 10**9
    with pytest.raises(drainer.DrainTimeout, match="db/db-0"):
        drainer.handler(sqs_event(spot_warning(kube_api.nodes[victim]["spec"]["providerID"].rsplit("/", 1)[1])))
    assert victim in kube_api.nodes and kube_api.nodes[victim]["spec"]["unschedulable"] is True
    assert kube_api.pods_on(victim) == ["db/db-0"]


def test_rebalance_recommendation_cordons_and_drains_but_keeps_the_node(aws, kube_api):
    (node,) = register_nodes(kube_api, launch(aws["ec2"]))
    kube_api.add_pod("web", "web-1", node)
    body = json.dumps(
        {
            "source": "aws.ec2",
            "detail-type": drainer.REBALANCE,
            "detail": {"instance-id": kube_api.nodes[node]["spec"]["providerID"].rsplit("/", 1)[1]},
        }
    )
    drainer.handler(sqs_event(body))
    assert kube_api.nodes[node]["spec"]["unschedulable"] is True and kube_api.pods_on(node) == []


def test_node_found_by_provider_id_when_the_instance_is_gone_from_ec2(aws, kube_api):
    kube_api.add_node("ip-10-20-9-9.ec2.internal", "aws:///us-east-1b/i-0aaaaaaaaaaaaaaa1")
    state = json.dumps(
        {
            "source": "aws.ec2",
            "detail-type": drainer.STATE_CHANGE,
            "detail": {"instance-id": "i-0aaaaaaaaaaaaaaa1", "state": "terminated"},
        }
    )
    drainer.handler(sqs_event(state))
    assert "ip-10-20-9-9.ec2.internal" not in kube_api.nodes


def test_terminated_instance_node_is_deleted_without_waiting_for_stuck_pods(aws, kube_api):
    (inst,) = launch(aws["ec2"])
    (node,) = register_nodes(kube_api, [inst])
    kube_api.add_pod("web", "web-1", node)
    kube_api.pods[("web", "web-1")]["metadata"]["deletionTimestamp"] = "2026-11-21T08:00:00Z"  # no kubelet to finish it
    aws["ec2"].terminate_instances(InstanceIds=[inst["InstanceId"]])
    body = json.dumps(
        {
            "source": "aws.ec2",
            "detail-type": drainer.STATE_CHANGE,
            "detail": {"instance-id": inst["InstanceId"], "state": "terminated"},
        }
    )
    assert drainer.handler(sqs_event(body))["results"] == [f"instance gone: node {node} deleted"]
    assert node not in kube_api.nodes


def test_stopped_instance_node_is_deleted_without_waiting_for_its_pods(aws, kube_api, monkeypatch):
    """A stopped instance has no kubelet to finish evicted pods: draining would only hit the deadline,
    be retried and dead-letter, leaving the node behind."""
    monkeypatch.setenv("DRAIN_TIMEOUT_SECONDS", "0.2")
    (inst,) = launch(aws["ec2"])
    (node,) = register_nodes(kube_api, [inst])
    kube_api.add_pod("web", "web-1", node)
    kube_api.pods[("web", "web-1")]["metadata"]["deletionTimestamp"] = "2026-11-21T08:00:00Z"
    aws["ec2"].stop_instances(InstanceIds=[inst["InstanceId"]])
    body = json.dumps(
        {
            "source": "aws.ec2",
            "detail-type": drainer.STATE_CHANGE,
            "detail": {"instance-id": inst["InstanceId"], "state": "stopped"},
        }
    )
    assert drainer.handler(sqs_event(body))["results"] == [f"instance gone: node {node} deleted"]
    assert node not in kube_api.nodes


def test_karpenter_nodes_are_left_to_karpenter(aws, kube_api):
    (node,) = register_nodes(kube_api, launch(aws["ec2"]))
    kube_api.nodes[node]["metadata"]["labels"] = {"karpenter.sh/nodepool": "general"}
    kube_api.add_pod("web", "web-1", node)
    drainer.handler(sqs_event(spot_warning(kube_api.nodes[node]["spec"]["providerID"].rsplit("/", 1)[1])))
    assert node in kube_api.nodes and kube_api.pods_on(node) == ["web/web-1"]
    assert not any(c.startswith(("PATCH", "POST", "DELETE")) for c in kube_api.log)


def test_running_state_change_is_ignored(aws, kube_api):
    body = json.dumps(
        {
            "source": "aws.ec2",
            "detail-type": drainer.STATE_CHANGE,
            "detail": {"instance-id": "i-0123", "state": "running"},
        }
    )
    assert drainer.handler(sqs_event(body))["results"] == ["ignored"]
    assert kube_api.log == []


def test_poison_message_ends_in_the_dead_letter_queue(aws, kube_api):
    sqs = aws["sqs"]
    dlq = sqs.create_queue(QueueName="dev-k3s-node-drainer-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName="dev-k3s-node-drainer",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})},
    )["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody='{"detail-type": "Something Else", "detail": {}}')

    failures = 0
    for _ in range(6):  # what the Lambda event source mapping does: receive, invoke, delete on success
        received = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0, MaxNumberOfMessages=1).get("Messages", [])
        if not received:
            continue
        event = sqs_event(received[0]["Body"])
        try:
            drainer.handler(event)
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=received[0]["ReceiptHandle"])
        except drainer.PoisonEvent:
            failures += 1

    assert failures == 3
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in dead] == ['{"detail-type": "Something Else", "detail": {}}']
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []


def test_lifecycle_hook_event_completes_the_action_after_deleting_the_node(aws, kube_api, monkeypatch):
    (node,) = register_nodes(kube_api, launch(aws["ec2"]))
    instance_id = kube_api.nodes[node]["spec"]["providerID"].rsplit("/", 1)[1]
    completed = []

    class FakeAutoscaling:
        def complete_lifecycle_action(self, **kwargs):
            completed.append(kwargs)

    monkeypatch.setitem(drainer._CLIENTS, "autoscaling", FakeAutoscaling())
    body = json.dumps(
        {
            "source": "aws.autoscaling",
            "detail-type": drainer.LIFECYCLE_TERMINATE,
            "detail": {
                "EC2InstanceId": instance_id,
                "LifecycleHookName": "k8s-platform-drain",
                "AutoScalingGroupName": "dev-k3s-k3s-agents",
                "LifecycleActionToken": "tok",
            },
        }
    )
    drainer.handler(sqs_event(body))
    assert node not in kube_api.nodes
    assert completed == [
        {
            "LifecycleHookName": "k8s-platform-drain",
            "AutoScalingGroupName": "dev-k3s-k3s-agents",
            "LifecycleActionToken": "tok",
            "LifecycleActionResult": "CONTINUE",
            "InstanceId": instance_id,
        }
    ]


def test_handler_is_stdlib_only_apart_from_the_runtime_boto3():
    import ast

    source = Path(drainer.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    import sys

    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "__future__"}
    assert third_party == {"boto3"}  # provided by the AWS Lambda Python runtime
