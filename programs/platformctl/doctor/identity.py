"""EKS Pod Identity: the agent runs on every node, every declared (namespace, ServiceAccount) has
its association, and no Pod Identity ServiceAccount still carries an IRSA annotation. Each of the
three ends as AccessDenied, or as `sts get-caller-identity` returning the node role."""

from __future__ import annotations

from programs.platformctl.doctor.framework import Check, Context, Result, fail, ok, skipped

AGENT = "eks-pod-identity-agent"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"


def _pod_identity_workloads(ctx: Context):
    return [w for w in ctx.config.workloads if w.method == "pod-identity"]


def agent_ready(ctx: Context) -> Result:
    path = f"/apis/apps/v1/namespaces/kube-system/daemonsets/{AGENT}"
    queried = [f"GET {path}", "GET /api/v1/nodes"]
    ds = ctx.kube_get(path)
    if ds is None:
        return fail(f"DaemonSet kube-system/{AGENT} does not exist: the Pod Identity add-on is missing", queried)
    st = ds.get("status") or {}
    desired, ready = st.get("desiredNumberScheduled", 0), st.get("numberReady", 0)
    updated, available = st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0)
    nodes = len(ctx.kube_items("/api/v1/nodes") or [])
    counts = f"DESIRED {desired} READY {ready} UP-TO-DATE {updated} AVAILABLE {available}, {nodes} nodes"
    if not (desired == ready == updated == available) or desired < nodes:
        return fail(f"agent not ready everywhere: {counts}", queried)
    return ok(counts, queried)


def associations(ctx: Context) -> Result:
    declared = {(w.namespace, w.service_account): w.name for w in _pod_identity_workloads(ctx)}
    if not declared:
        return skipped("no pod-identity workloads declared (k8s-platform:workloads)")
    name = ctx.cluster_name
    found = set()
    for page in ctx.aws("eks").get_paginator("list_pod_identity_associations").paginate(clusterName=name):
        found.update((a["namespace"], a["serviceAccount"]) for a in page["associations"])
    missing = [
        f"{w} ({ns}/{sa}): no Pod Identity association" for (ns, sa), w in declared.items() if (ns, sa) not in found
    ]
    queried = [f"eks:ListPodIdentityAssociations {name}"]
    if missing:
        return fail(f"{len(missing)} of {len(declared)} declared ServiceAccounts have no association", queried, missing)
    return ok(f"all {len(declared)} declared ServiceAccounts have an association", queried)


def no_irsa_annotation(ctx: Context) -> Result:
    workloads = _pod_identity_workloads(ctx)
    if not workloads:
        return skipped("no pod-identity workloads declared (k8s-platform:workloads)")
    queried, findings = [], []
    for w in workloads:
        path = f"/api/v1/namespaces/{w.namespace}/serviceaccounts/{w.service_account}"
        queried.append(f"GET {path}")
        sa = ctx.kube_get(path)
        if sa is None:
            findings.append(f"{w.namespace}/{w.service_account}: ServiceAccount missing")
            continue
        role = ((sa.get("metadata") or {}).get("annotations") or {}).get(IRSA_ANNOTATION)
        if role:
            findings.append(
                f"{w.namespace}/{w.service_account}: annotated {IRSA_ANNOTATION}={role} beside its association"
            )
    if findings:
        return fail(
            f"{len(findings)} Pod Identity ServiceAccounts would not get their associated role", queried, findings
        )
    return ok(f"{len(workloads)} Pod Identity ServiceAccounts exist without an IRSA annotation", queried)


TOKEN_FILE_ENV = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"


def credentials_injected(ctx: Context) -> Result:
    """Pods started before the agent or the association run without the injected credentials env."""
    workloads = _pod_identity_workloads(ctx)
    if not workloads:
        return skipped("no pod-identity workloads declared (k8s-platform:workloads)")
    queried, missing, seen = [], [], 0
    for w in workloads:
        path = f"/api/v1/namespaces/{w.namespace}/pods"
        queried.append(f"GET {path}")
        for pod in ctx.kube_items(path) or []:
            spec = pod.get("spec") or {}
            if (
                spec.get("serviceAccountName") != w.service_account
                or (pod.get("status") or {}).get("phase") != "Running"
            ):
                continue
            seen += 1
            for c in spec.get("containers") or []:
                if not any(e.get("name") == TOKEN_FILE_ENV for e in c.get("env") or []):
                    missing.append(
                        f"{w.namespace}/{pod['metadata']['name']} container {c.get('name')}: no {TOKEN_FILE_ENV}"
                    )
    if not seen:
        return skipped("no running pod uses a Pod Identity ServiceAccount", queried)
    if missing:
        return fail(
            f"{len(missing)} containers run without Pod Identity credentials (started before the agent "
            "or the association)",
            queried,
            missing,
        )
    return ok(f"{seen} running Pod Identity pods have {TOKEN_FILE_ENV}", queried)


CHECKS = [
    Check(
        "pod-identity-agent",
        "AccessDenied / node role from get-caller-identity: Pod Identity agent missing",
        f"kubectl -n kube-system get ds {AGENT}  # DESIRED == READY == UP-TO-DATE",
        f"install the {AGENT} add-on before compute; check its pods' events on the nodes it misses",
        ("eks",),
        agent_ready,
    ),
    Check(
        "pod-identity-associations",
        "AccessDenied in a workload: no association for its ServiceAccount",
        "aws eks list-pod-identity-associations --cluster-name <cluster> --namespace <ns>",
        "pulumi up (the stack declares one association per workload); restart the workload's pods",
        ("eks",),
        associations,
    ),
    Check(
        "pod-identity-irsa-annotation",
        "AccessDenied: an IRSA annotation left beside a Pod Identity association",
        "kubectl -n <ns> get sa <sa> -o jsonpath='{.metadata.annotations}'; "
        "kubectl -n <ns> exec <pod> -- env | grep AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        f"kubectl -n <ns> annotate sa <sa> {IRSA_ANNOTATION}-; roll the pods",
        ("eks",),
        no_irsa_annotation,
    ),
    Check(
        "pod-identity-injection",
        "AccessDenied / node role in pods started before the agent or the association",
        f"kubectl -n <ns> exec <pod> -- env | grep {TOKEN_FILE_ENV}",
        "kubectl -n <ns> rollout restart deploy/<name> (credentials are injected at pod creation only)",
        ("eks",),
        credentials_injected,
    ),
]
