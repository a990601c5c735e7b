"""Loopback fakes for the day-two commands: a small Kubernetes API, the EKS calls moto lacks, an
HTTPS OIDC issuer, and moto in server mode. Real clients (the official `kubernetes` client,
boto3, urllib) talk to them over 127.0.0.1 only."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOKEN = "day2-test-token"


class _Server:
    def __init__(self, handler_cls, *, tls: tuple[Path, Path] | None = None):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
        self.httpd.fake = self  # type: ignore[attr-defined]
        if tls is not None:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        # Polled every 20 ms so that `stop` returns at once (the default waits up to 0.5 s).
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None


# ------------------------------------------------------------------------------ Kubernetes API
def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


class FakeKube(_Server):
    """Serves recorded objects by exact path; creates a pod (phase, log, events from `job_runner`)
    for every Job posted; deletes Jobs. `requests` records (method, path)."""

    def __init__(self) -> None:
        self.reset()
        super().__init__(_KubeHandler)

    def reset(self) -> None:
        self.objects: dict[str, Any] = {}
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.deleted_jobs: list[tuple[str, str]] = []
        self.logs: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[str, str]] = []
        # (job manifest) -> (pod phase, log text, warning events [(reason, message)])
        self.job_runner: Callable[[dict[str, Any]], tuple[str, str, list[tuple[str, str]]]] | None = None

    def set_list(self, path: str, items: list[dict[str, Any]]) -> None:
        self.objects[path] = {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "users": [{"name": "fake", "user": {"token": TOKEN}}],
        }

    def pods_of_jobs(self, namespace: str) -> list[dict[str, Any]]:
        return [job["_pod"] for (ns, _), job in self.jobs.items() if ns == namespace]


class _KubeHandler(_Handler):
    @property
    def fake(self) -> FakeKube:
        return self.server.fake  # type: ignore[attr-defined]

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, _status(401, "Unauthorized", "no or wrong bearer token"))
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, dict(urllib.parse.parse_qsl(url.query))
        self.fake.requests.append(("GET", self.path))
        if not self._authorized():
            return
        parts = path.strip("/").split("/")
        # /api/v1/namespaces/{ns}/pods?labelSelector=job-name=X (pods the fake made for Jobs)
        if (
            len(parts) == 5
            and parts[:3] == ["api", "v1", "namespaces"]
            and parts[4] == "pods"
            and "labelSelector" in query
        ):
            key, _, value = query["labelSelector"].partition("=")
            items = [p for p in self.fake.pods_of_jobs(parts[3]) if p["metadata"]["labels"].get(key) == value]
            return self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
        if len(parts) == 5 and parts[4] == "events" and "fieldSelector" in query:
            name = query["fieldSelector"].split("=", 1)[1]
            items = [
                e for job in self.fake.jobs.values() for e in job["_events"] if e["involvedObject"]["name"] == name
            ]
            return self._send(200, {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": items})
        if len(parts) == 7 and parts[4] == "pods" and parts[6] == "log":
            log = self.fake.logs.get((parts[3], parts[5]))
            return (
                self._send(200, log, "text/plain")
                if log is not None
                else self._send(404, _status(404, "NotFound", "no pod"))
            )
        if path in self.fake.objects:
            return self._send(200, self.fake.objects[path])
        parent, _, name = path.rpartition("/")
        for item in (self.fake.objects.get(parent) or {}).get("items", []):
            if item.get("metadata", {}).get("name") == name:
                return self._send(200, item)
        self._send(404, _status(404, "NotFound", f"{path} not found"))

    def do_POST(self) -> None:  # noqa: N802
        self.fake.requests.append(("POST", self.path))
        if not self._authorized():
            return
        parts = self.path.strip("/").split("/")
        if parts[:3] != ["apis", "batch", "v1"] or parts[5] != "jobs":
            return self._send(404, _status(404, "NotFound", self.path))
        ns, job = parts[4], self._body()
        name = job["metadata"]["name"]
        phase, log, events = self.fake.job_runner(job) if self.fake.job_runner else ("Succeeded", "", [])
        pod_name = f"{name}-x7k2p"
        template = job["spec"]["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": ns,
                "labels": {**template["metadata"]["labels"], "job-name": name},
            },
            "spec": template["spec"],
            "status": {
                "phase": phase,
                "containerStatuses": []
                if phase != "Pending"
                else [
                    {
                        "name": "probe",
                        "image": template["spec"]["containers"][0]["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                    }
                ],
            },
        }
        job["_pod"] = pod
        job["_events"] = [
            {
                "apiVersion": "v1",
                "kind": "Event",
                "type": "Warning",
                "reason": reason,
                "message": message,
                "metadata": {"name": f"{pod_name}.{i}", "namespace": ns},
                "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": ns},
            }
            for i, (reason, message) in enumerate(events)
        ]
        self.fake.jobs[(ns, name)] = job
        self.fake.logs[(ns, pod_name)] = log
        self._send(201, {k: v for k, v in job.items() if not k.startswith("_")})

    def do_DELETE(self) -> None:  # noqa: N802
        self.fake.requests.append(("DELETE", self.path))
        if not self._authorized():
            return
        parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
        key = (parts[4], parts[6])
        if self.fake.jobs.pop(key, None) is None:
            return self._send(404, _status(404, "NotFound", self.path))
        self.fake.deleted_jobs.append(key)
        self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


# ------------------------------------------------------------------------------ EKS (what moto lacks)
class FakeEks(_Server):
    """DescribeCluster, access entries and their policies, Pod Identity associations, add-ons."""

    def __init__(self) -> None:
        self.reset()
        super().__init__(_EksHandler)

    def reset(self) -> None:
        self.clusters: dict[str, dict[str, Any]] = {}
        self.access_entries: dict[str, dict[str, list[dict[str, Any]]]] = {}  # cluster -> principal -> policies
        self.associations: dict[str, list[dict[str, Any]]] = {}
        self.addons: dict[str, dict[str, dict[str, Any]]] = {}


class _EksHandler(_Handler):
    def do_GET(self) -> None:  # noqa: N802
        fake: FakeEks = self.server.fake  # type: ignore[attr-defined]
        path = urllib.parse.urlsplit(self.path).path
        parts = path.strip("/").split("/", 2)
        if parts[0] != "clusters" or len(parts) < 2 or parts[1] not in fake.clusters:
            return self._send(404, {"message": "No cluster found"}, "application/x-amz-json-1.1")
        name, rest = parts[1], parts[2] if len(parts) > 2 else ""
        if not rest:
            return self._send(200, {"cluster": fake.clusters[name]})
        entries = fake.access_entries.get(name, {})
        if rest == "access-entries":
            return self._send(200, {"accessEntries": sorted(entries)})
        if rest.startswith("access-entries/") and rest.endswith("/access-policies"):
            principal = urllib.parse.unquote(rest[len("access-entries/") : -len("/access-policies")])
            if principal not in entries:
                return self._send(404, {"message": "no access entry"})
            return self._send(
                200, {"clusterName": name, "principalArn": principal, "associatedAccessPolicies": entries[principal]}
            )
        if rest == "pod-identity-associations":
            return self._send(200, {"associations": fake.associations.get(name, [])})
        if rest == "addons":
            return self._send(200, {"addons": sorted(fake.addons.get(name, {}))})
        if rest.startswith("addons/"):
            addon = fake.addons.get(name, {}).get(rest[len("addons/") :])
            if addon is None:
                return self._send(404, {"message": "no addon"})
            return self._send(200, {"addon": addon})
        self._send(404, {"message": f"unsupported {path}"})


# ------------------------------------------------------------------------------ HTTPS OIDC issuer
def self_signed_localhost(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (IP SAN), its own CA: point SSL_CERT_FILE at it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "issuer.crt", directory / "issuer.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class FakeIssuer(_Server):
    """Serves `documents[path]` over HTTPS (discovery documents and JWKS of several issuers)."""

    def __init__(self, tls: tuple[Path, Path]) -> None:
        self.documents: dict[str, Any] = {}
        super().__init__(_IssuerHandler, tls=tls)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"


class _IssuerHandler(_Handler):
    def do_GET(self) -> None:  # noqa: N802
        docs = self.server.fake.documents  # type: ignore[attr-defined]
        if self.path in docs:
            return self._send(200, docs[self.path])
        self._send(404, {"error": "not found"})


# ------------------------------------------------------------------------------ moto
class MotoServer:
    """moto's server app on 127.0.0.1, served as `moto.server.ThreadedMotoServer` serves it, but
    polled every 20 ms: ThreadedMotoServer's loop waits up to 0.5 s to notice `stop`."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        self.port = self.httpd.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10).read()

    def stop(self) -> None:
        self.httpd.shutdown()  # werkzeug's serve_forever closes the socket as it returns
        self.thread.join()
