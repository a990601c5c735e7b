"""Node drainer Lambda: EC2 interruption / termination events (via SQS) -> cordon, drain, delete.

Kubernetes is reached with the standard library only (urllib + ssl) using the drainer's client
certificate from Secrets Manager; AWS through boto3, which the Lambda Python runtime provides.
Nothing to package but this file.

Per event (one SQS record each, batch size 1):
- find the node of the instance (node name = private DNS name; confirmed by its providerID);
- cordon it; evict its pods through the Eviction API so PodDisruptionBudgets hold (429 -> retry
  until the drain deadline); wait until they are gone;
- delete the node, except on a rebalance recommendation (the instance may live on: cordon+drain);
  an instance already shutting down or terminated has its node deleted at once (no kubelet is
  left to finish pods);
- leave nodes labelled `karpenter.sh/nodepool` to Karpenter, which handles the same events;
- complete the ASG lifecycle action, if the event came from a termination hook.
Every step is idempotent: a redelivered event finds the node cordoned, pods gone or the node
already deleted and succeeds. A failure raises, so SQS redelivers the message and, after
maxReceiveCount, moves it to the dead-letter queue.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger("node-drainer")
LOG.setLevel(logging.INFO)

SPOT_INTERRUPTION = "EC2 Spot Instance Interruption Warning"
REBALANCE = "EC2 Instance Rebalance Recommendation"
STATE_CHANGE = "EC2 Instance State-change Notification"
LIFECYCLE_TERMINATE = "EC2 Instance-terminate Lifecycle Action"
HANDLED = {SPOT_INTERRUPTION, REBALANCE, STATE_CHANGE, LIFECYCLE_TERMINATE}
STOPPING_STATES = {"stopping", "stopped", "shutting-down", "terminated"}

KARPENTER_NODEPOOL_LABEL = "karpenter.sh/nodepool"
EVICTION_RETRY_SECONDS = 5.0
POLL_SECONDS = 2.0


class PoisonEvent(ValueError):
    """The message is not an event this handler understands; redelivery cannot help."""


class DrainTimeout(RuntimeError):
    """Pods were still on the node at the deadline (e.g. a PodDisruptionBudget kept blocking)."""


@dataclass(frozen=True)
class NodeEvent:
    kind: str  # detail-type
    instance_id: str
    lifecycle: dict[str, str] | None = None  # ASG hook: name, group, token

    @property
    def deletes_node(self) -> bool:
        return self.kind != REBALANCE


def parse_event(body: str) -> NodeEvent | None:
    """EventBridge event JSON -> NodeEvent; None for an event that needs no action. Raises PoisonEvent."""
    try:
        event = json.loads(body)
        kind = event["detail-type"]
        detail = event["detail"]
    except (ValueError, TypeError, KeyError) as exc:
        raise PoisonEvent(f"not an EventBridge event: {exc}") from None
    if kind not in HANDLED:
        raise PoisonEvent(f"unexpected detail-type {kind!r}")
    if kind == LIFECYCLE_TERMINATE:
        try:
            return NodeEvent(
                kind,
                detail["EC2InstanceId"],
                {
                    "hook": detail["LifecycleHookName"],
                    "group": detail["AutoScalingGroupName"],
                    "token": detail["LifecycleActionToken"],
                },
            )
        except KeyError as exc:
            raise PoisonEvent(f"lifecycle event without {exc}") from None
    instance_id = detail.get("instance-id")
    if not isinstance(instance_id, str) or not instance_id.startswith("i-"):
        raise PoisonEvent("event without an instance-id")
    if kind == STATE_CHANGE and detail.get("state") not in STOPPING_STATES:
        return None
    return NodeEvent(kind, instance_id)


# ------------------------------------------------------------------------------- Kubernetes
class KubeError(RuntimeError):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(f"HTTP {status}: {message}")


class Kube:
    """A minimal Kubernetes API client over urllib with a client certificate."""

    def __init__(self, server: str, ca_pem: str, cert_pem: str, key_pem: str, timeout: float = 10.0):
        self.server = server.rstrip("/")
        self.timeout = timeout
        self.context = ssl.create_default_context(cadata=ca_pem)
        # load_cert_chain reads files: write them private, only for the duration of the load.
        with tempfile.TemporaryDirectory() as tmp:
            cert_file, key_file = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for path, pem in ((cert_file, cert_pem), (key_file, key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(pem)
            self.context.load_cert_chain(cert_file, key_file)

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, content_type: str = "application/json"
    ) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={"Accept": "application/json", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise KubeError(exc.code, exc.read().decode(errors="replace")[:500]) from None
        return json.loads(raw) if raw else {}

    def get_node(self, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", f"/api/v1/nodes/{urllib.parse.quote(name)}")
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list_nodes(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/v1/nodes").get("items", [])

    def cordon(self, name: str) -> None:
        self.request(
            "PATCH",
            f"/api/v1/nodes/{urllib.parse.quote(name)}",
            {"spec": {"unschedulable": True}},
            content_type="application/merge-patch+json",
        )

    def pods_on(self, name: str) -> list[dict[str, Any]]:
        selector = urllib.parse.quote(f"spec.nodeName={name}")
        return self.request("GET", f"/api/v1/pods?fieldSelector={selector}").get("items", [])

    def evict(self, namespace: str, pod: str) -> bool:
        """True once the eviction is accepted (or the pod is gone); False when a PDB blocks it (429)."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": namespace}}
        try:
            self.request(
                "POST",
                f"/api/v1/namespaces/{urllib.parse.quote(namespace)}/pods/{urllib.parse.quote(pod)}/eviction",
                body,
            )
        except KubeError as exc:
            if exc.status == 404:
                return True
            if exc.status == 429:
                return False
            raise
        return True

    def delete_node(self, name: str) -> None:
        try:
            self.request("DELETE", f"/api/v1/nodes/{urllib.parse.quote(name)}")
        except KubeError as exc:
            if exc.status != 404:
                raise


def provider_id_matches(node: dict[str, Any], instance_id: str) -> bool:
    return str(node.get("spec", {}).get("providerID", "")).rstrip("/").endswith(f"/{instance_id}")


def find_node(kube: Kube, instance_id: str, private_dns_name: str | None) -> dict[str, Any] | None:
    """The node of this instance: by name, confirmed by providerID; else by providerID alone."""
    if private_dns_name:
        node = kube.get_node(private_dns_name)
        if node is not None and provider_id_matches(node, instance_id):
            return node
    for node in kube.list_nodes():
        if provider_id_matches(node, instance_id):
            return node
    return None


def evictable(pod: dict[str, Any]) -> bool:
    """DaemonSet pods and mirror (static) pods stay; finished pods need no eviction."""
    meta = pod.get("metadata", {})
    if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
        return False
    if any(o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or []):
        return False
    return pod.get("status", {}).get("phase") not in ("Succeeded", "Failed")


def drain(
    kube: Kube,
    node: str,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Evict every evictable pod, retrying PDB refusals, until none is left or the deadline passes."""
    while True:
        pending = [p for p in kube.pods_on(node) if evictable(p)]
        if not pending:
            return
        blocked = False
        for pod in pending:
            meta = pod["metadata"]
            if not meta.get("deletionTimestamp") and not kube.evict(meta["namespace"], meta["name"]):
                LOG.info(
                    "eviction of %s/%s refused by a PodDisruptionBudget; retrying", meta["namespace"], meta["name"]
                )
                blocked = True
        if clock() >= deadline:
            names = ", ".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pending)
            raise DrainTimeout(f"node {node}: pods still running at the deadline: {names}")
        # Blocked evictions wait for the PDB to allow one more disruption; accepted ones for termination.
        sleep(EVICTION_RETRY_SECONDS if blocked else POLL_SECONDS)


# ------------------------------------------------------------------------------------ AWS
def describe_instance(ec2, instance_id: str) -> tuple[str | None, bool]:
    """(private DNS name, gone): gone when the instance is stopping, stopped, shutting down, terminated
    or unknown - no kubelet is left (or will stay) to finish evicted pods."""
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except Exception as exc:  # an instance long gone is not an error: fall back to providerID
        if "InvalidInstanceID" in str(exc):
            return None, True
        raise
    for reservation in reservations:
        for instance in reservation["Instances"]:
            gone = instance.get("State", {}).get("Name") in STOPPING_STATES
            return instance.get("PrivateDnsName") or None, gone
    return None, True


def load_credentials(secrets, secret_id: str) -> dict[str, str]:
    creds = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    missing = {"server", "ca", "cert", "key"} - creds.keys()
    if missing:
        raise RuntimeError(f"drainer credentials lack {sorted(missing)}")
    return creds


def handle_event(
    event: NodeEvent,
    kube: Kube,
    ec2,
    autoscaling,
    drain_timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    dns_name, gone = describe_instance(ec2, event.instance_id)
    node = find_node(kube, event.instance_id, dns_name)
    if node is None:
        outcome = "no node (already deleted or not in this cluster)"
    elif KARPENTER_NODEPOOL_LABEL in (node["metadata"].get("labels") or {}):
        # Karpenter drains its own nodes on the same events (its interruption queue); two drainers
        # racing on one node would only fight over evictions.
        outcome = f"node {node['metadata']['name']} is Karpenter's; left to Karpenter"
    else:
        name = node["metadata"]["name"]
        kube.cordon(name)
        if gone:
            # No kubelet left to stop the pods: waiting for them would only run into the deadline.
            # Deleting the node lets the pod garbage collector release them to their controllers.
            kube.delete_node(name)
            return _complete(event, autoscaling, f"instance gone: node {name} deleted")
        drain(kube, name, clock() + drain_timeout, clock, sleep)
        if event.deletes_node:
            kube.delete_node(name)
            outcome = f"node {name} drained and deleted"
        else:
            outcome = f"node {name} cordoned and drained"
    return _complete(event, autoscaling, outcome)


def _complete(event: NodeEvent, autoscaling, outcome: str) -> str:
    """Release a terminating instance held by the ASG lifecycle hook (idempotent)."""
    if event.lifecycle:
        try:
            autoscaling.complete_lifecycle_action(
                LifecycleHookName=event.lifecycle["hook"],
                AutoScalingGroupName=event.lifecycle["group"],
                LifecycleActionToken=event.lifecycle["token"],
                LifecycleActionResult="CONTINUE",
                InstanceId=event.instance_id,
            )
        except Exception as exc:  # a redelivery after the action completed or timed out
            if "No active Lifecycle Action" not in str(exc):
                raise
    return outcome


_CLIENTS: dict[str, Any] = {}


def _client(service: str):
    if service not in _CLIENTS:
        import boto3  # provided by the Lambda runtime

        _CLIENTS[service] = boto3.client(service)
    return _CLIENTS[service]


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """SQS batch entry point. Raises on any failure, so SQS redelivers (then dead-letters) the message."""
    secret_id = os.environ["CREDENTIALS_SECRET_ID"]
    drain_timeout = float(os.environ.get("DRAIN_TIMEOUT_SECONDS", "240"))
    results = []
    kube: Kube | None = None
    for record in event.get("Records", []):
        parsed = parse_event(record["body"])
        if parsed is None:
            results.append("ignored")
            continue
        if kube is None:
            creds = load_credentials(_client("secretsmanager"), secret_id)
            kube = Kube(creds["server"], creds["ca"], creds["cert"], creds["key"])
        outcome = handle_event(parsed, kube, _client("ec2"), _client("autoscaling"), drain_timeout)
        LOG.info("%s %s: %s", parsed.kind, parsed.instance_id, outcome)
        results.append(outcome)
    return {"results": results}
