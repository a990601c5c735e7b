"""The doctor's shape: a check guards one symptom class, queries the live cluster and AWS, and
returns a verdict with what it looked at, the command a person runs to confirm, and the fix."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from components.config import StackConfig

Verdict = Literal["ok", "warn", "fail", "skipped"]
# Worst first decides the exit code; `skipped` (not applicable, or nothing to query) is not a problem.
SEVERITY: dict[str, int] = {"ok": 0, "skipped": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class Result:
    verdict: Verdict
    detail: str  # what was found (for skipped: why)
    queried: tuple[str, ...] = ()  # the API calls made, e.g. "eks:ListAccessEntries prod-eks"
    findings: tuple[str, ...] = ()  # one line per offending object


def ok(detail: str, queried: list[str] | tuple[str, ...] = ()) -> Result:
    return Result("ok", detail, tuple(queried))


def warn(detail: str, queried=(), findings=()) -> Result:
    return Result("warn", detail, tuple(queried), tuple(findings))


def fail(detail: str, queried=(), findings=()) -> Result:
    return Result("fail", detail, tuple(queried), tuple(findings))


def skipped(why: str, queried=()) -> Result:
    return Result("skipped", why, tuple(queried))


class Context:
    """What checks query: the stack (config + outputs), a Kubernetes client and boto3, made lazily."""

    def __init__(self, config: StackConfig, outputs: dict[str, Any], kubeconfig: dict[str, Any] | None,
                 now: Callable[[], float] | None = None):
        import time

        self.config, self.outputs, self._kubeconfig = config, outputs, kubeconfig
        self.now = now or time.time
        self._api = None
        self._boto: dict[str, Any] = {}

    @property
    def kind(self) -> str:
        return self.config.cluster.kind

    @property
    def cluster_name(self) -> str:
        return self.config.cluster_name

    def aws(self, service: str):
        if service not in self._boto:
            import boto3

            self._boto[service] = boto3.client(service, region_name=self.config.region)
        return self._boto[service]

    @property
    def api(self):
        """The official client's ApiClient for the stack's kubeconfig."""
        if self._api is None:
            if self._kubeconfig is None:
                raise KubeUnavailable("no kubeconfig: the stack exports none; pass --kubeconfig")
            from kubernetes import config as kconfig

            self._api = kconfig.new_client_from_config_dict(self._kubeconfig)
        return self._api

    def kube_get(self, path: str, query: dict[str, str] | None = None) -> dict[str, Any] | None:
        """GET a Kubernetes API path as JSON through the official client; None on 404."""
        from kubernetes.client.exceptions import ApiException

        try:
            resp = self.api.call_api(path, "GET", query_params=list((query or {}).items()),
                                     header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
                                     _preload_content=False, _return_http_data_only=True)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return json.loads(resp.data)

    def kube_items(self, path: str, query: dict[str, str] | None = None) -> list[dict[str, Any]] | None:
        body = self.kube_get(path, query)
        return None if body is None else list(body.get("items") or [])


class KubeUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Check:
    id: str
    symptom: str  # the symptom class it guards, as the on-call engineer sees it
    confirm: str  # the command a person runs to confirm
    fix: str
    kinds: tuple[str, ...]  # cluster kinds it applies to
    run: Callable[[Context], Result] = field(compare=False)

    def evaluate(self, ctx: Context) -> Result:
        if ctx.kind not in self.kinds:
            return skipped(f"applies to {'/'.join(self.kinds)} clusters; this stack is {ctx.kind}")
        try:
            return self.run(ctx)
        except KubeUnavailable as exc:
            return skipped(str(exc))
        except Exception as exc:  # noqa: BLE001 - an API error is a finding, never a crash of the doctor
            return fail(f"could not query: {type(exc).__name__}: {_short(exc)}")


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def age_seconds(ctx: Context, timestamp: str) -> float:
    from datetime import datetime

    return ctx.now() - datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
