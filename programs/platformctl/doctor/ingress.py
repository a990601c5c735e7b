"""AWS Load Balancer Controller: Ingresses share ALBs through `group.name`; one ALB per IngressGroup.
Without it every Ingress spawns an ALB until ENI and load-balancer quotas bite."""

from __future__ import annotations

from collections import defaultdict

from programs.platformctl.doctor.framework import Check, Context, Result, fail, ok, skipped, warn

GROUP_ANNOTATION = "alb.ingress.kubernetes.io/group.name"
CLUSTER_TAG = "elbv2.k8s.aws/cluster"
STACK_TAG = "ingress.k8s.aws/stack"  # the IngressGroup: group.name, or <namespace>/<name> for an ungrouped Ingress


def _alb_ingresses(ctx: Context) -> list[dict]:
    found = []
    for ing in ctx.kube_items("/apis/networking.k8s.io/v1/ingresses") or []:
        annotations = ing["metadata"].get("annotations") or {}
        cls = (ing.get("spec") or {}).get("ingressClassName") or annotations.get("kubernetes.io/ingress.class")
        if cls == "alb":
            found.append(ing)
    return found


def ingress_group_name(ctx: Context) -> Result:
    queried = ["GET /apis/networking.k8s.io/v1/ingresses"]
    ingresses = _alb_ingresses(ctx)
    if not ingresses:
        return skipped("no Ingress of class alb", queried)
    loose = [
        f"{i['metadata']['namespace']}/{i['metadata']['name']}: no {GROUP_ANNOTATION} (an ALB of its own)"
        for i in ingresses
        if not (i["metadata"].get("annotations") or {}).get(GROUP_ANNOTATION)
    ]
    if loose:
        return warn(f"{len(loose)} of {len(ingresses)} ALB Ingresses are not in an IngressGroup", queried, loose)
    return ok(f"all {len(ingresses)} ALB Ingresses name an IngressGroup", queried)


def load_balancers_per_group(ctx: Context) -> Result:
    elb = ctx.aws("elbv2")
    queried = ["elbv2:DescribeLoadBalancers", "elbv2:DescribeTags"]
    arns = [
        lb["LoadBalancerArn"]
        for page in elb.get_paginator("describe_load_balancers").paginate()
        for lb in page["LoadBalancers"]
        if lb.get("Type") == "application"
    ]
    groups: dict[str, list[str]] = defaultdict(list)
    for start in range(0, len(arns), 20):  # DescribeTags takes at most 20 ARNs
        for desc in elb.describe_tags(ResourceArns=arns[start : start + 20])["TagDescriptions"]:
            tags = {t["Key"]: t["Value"] for t in desc.get("Tags", [])}
            if tags.get(CLUSTER_TAG) == ctx.cluster_name and STACK_TAG in tags:
                groups[tags[STACK_TAG]].append(desc["ResourceArn"].rsplit("/", 2)[-2])
    if not groups:
        return skipped(f"no ALB of this cluster (tag {CLUSTER_TAG}={ctx.cluster_name})", queried)
    duplicated = [
        f"group {g}: {len(lbs)} ALBs ({', '.join(sorted(lbs))})" for g, lbs in sorted(groups.items()) if len(lbs) > 1
    ]
    if duplicated:
        return fail(
            "IngressGroups with more than one ALB (orphans from a renamed or deleted group)", queried, duplicated
        )
    ungrouped = sorted(g for g in groups if "/" in g)
    if ungrouped:
        return warn(
            f"{len(ungrouped)} of {len(groups)} ALBs serve a single ungrouped Ingress",
            queried,
            [f"{g}: its own ALB" for g in ungrouped],
        )
    return ok(f"{len(groups)} ALBs, one per IngressGroup", queried)


CHECKS = [
    Check(
        "alb-ingress-group",
        "dozens of ALBs appear; ENI or load-balancer quota hit",
        "kubectl get ingress -A -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name,"
        "GROUP:.metadata.annotations.alb\\.ingress\\.kubernetes\\.io/group\\.name",
        f"annotate each Ingress with {GROUP_ANNOTATION}: <team or domain> to merge them onto a shared ALB",
        ("eks", "k3s"),
        ingress_group_name,
    ),
    Check(
        "alb-per-group",
        "ALB count and cost grow faster than IngressGroups",
        "aws elbv2 describe-load-balancers --query 'length(LoadBalancers)'; "
        "aws elbv2 describe-tags --resource-arns <arn>  # ingress.k8s.aws/stack",
        "group ungrouped Ingresses; delete ALBs left behind by renamed groups once their targets are gone",
        ("eks", "k3s"),
        load_balancers_per_group,
    ),
]
