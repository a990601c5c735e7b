"""Every guardrail: the compliant fixture passes, and each negative case (one mutation of the
fixture) is reported by that policy, at the prod enforcement level, on the mutated resource.

In the style of pulumi-policy-aws: one compliant resource set, one mutation per negative case. The
fixture is registered through the real SDKs under mocks and evaluated by the offline runner, which
hands each policy the inputs in pulumi_policy's unknown-checking proxy, exactly as the engine does.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from policy.offline_runner import CONFIG_DIR, Resource, evaluate, load_pack_config, reconcile
from policy.registry import BY_ID, RULES
from tests.policy_fixtures import compliant_resources, named

DELETE = object()
PROD = reconcile(load_pack_config(CONFIG_DIR / "prod.json"))

Mutation = Callable[[list[Resource]], None]


def set_input(name: str, path: str, value: Any) -> Mutation:
    """Set (or DELETE) the input at a dotted path ("a.b.0.c") of the named resource."""

    def mutate(resources: list[Resource]) -> None:
        node: Any = named(resources, name).inputs
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        last = parts[-1]
        if value is DELETE:
            node.pop(last, None)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def edit_document(name: str, key: str, edit: Callable[[dict[str, Any]], None]) -> Mutation:
    """Edit the JSON policy document held in an input of the named resource."""

    def mutate(resources: list[Resource]) -> None:
        inputs = named(resources, name).inputs
        doc = json.loads(inputs[key])
        edit(doc)
        inputs[key] = json.dumps(doc)

    return mutate


def first_statement(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda doc: edit(doc["Statement"][0])


def remove(name: str) -> Mutation:
    return lambda resources: resources.remove(named(resources, name))


def duplicate(name: str, copies: int = 1) -> Mutation:
    def mutate(resources: list[Resource]) -> None:
        original = named(resources, name)
        for i in range(copies):
            resources.append(replace(copy.deepcopy(original), urn=f"{original.urn}-copy{i}", name=f"{name}-copy{i}"))

    return mutate


def unprotect(name: str) -> Mutation:
    return lambda resources: setattr(named(resources, name), "protect", False)


def user_data(name: str, text: str, encode: bool = True) -> Mutation:
    return set_input(name, "userData", base64.b64encode(text.encode()).decode() if encode else text)


def with_condition(
    op: str, key_suffix: str, values: Any, drop_ops: tuple[str, ...] = ()
) -> Callable[[dict[str, Any]], None]:
    """Move the condition key ending in `key_suffix` under operator `op` with `values`."""

    def edit(stmt: dict[str, Any]) -> None:
        cond = stmt.setdefault("Condition", {})
        key = next(k for body in cond.values() for k in body if k.endswith(key_suffix))
        for body in cond.values():
            body.pop(key, None)
        if values is not DELETE:
            cond.setdefault(op, {})[key] = values
        for o in [o for o, body in cond.items() if not body]:
            del cond[o]

    return edit


def ports(name: str, low: int, high: int | None = None) -> Callable[[list[Resource]], None]:
    def edit(rs: list[Resource]) -> None:
        set_input(name, "fromPort", low)(rs)
        set_input(name, "toPort", low if high is None else high)(rs)

    return edit


def fargate_in(subnet: str | None) -> Mutation:
    """Point the Fargate profile at another subnet of the fixture (None: at ids from outside the stack)."""

    def mutate(resources: list[Resource]) -> None:
        profile = named(resources, "fargate")
        old = named(resources, "private").urn
        profile.dependencies = [d for d in profile.dependencies if d != old]
        if subnet is None:
            profile.property_dependencies["subnetIds"] = []
            profile.inputs["subnetIds"] = ["subnet-0123456789abcdef0"]
            return
        target = named(resources, subnet).urn
        profile.dependencies.append(target)
        profile.property_dependencies["subnetIds"] = [target]

    return mutate


ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"

# (policy id, resource the violation is reported on (None: the stack), mutation, case id)
CASES: list[tuple[str, str | None, Mutation, str]] = [
    # --- EKS
    (
        "eks-endpoint-private",
        "cluster",
        set_input("cluster", "vpcConfig.endpointPublicAccess", True),
        "public-no-cidrs",
    ),
    (
        "eks-endpoint-private",
        "cluster",
        set_input("cluster", "vpcConfig.endpointPublicAccess", DELETE),
        "public-by-default",
    ),
    (
        "eks-endpoint-private",
        "cluster",
        lambda rs: (
            set_input("cluster", "vpcConfig.endpointPublicAccess", True)(rs),
            set_input("cluster", "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"])(rs),
        ),
        "public-world",
    ),
    (
        "eks-endpoint-private",
        "cluster",
        lambda rs: (
            set_input("cluster", "vpcConfig.endpointPublicAccess", True)(rs),
            set_input("cluster", "vpcConfig.publicAccessCidrs", ["203.0.113.0/24"])(rs),
        ),
        "cidr-not-allowed",
    ),
    ("eks-endpoint-private", "cluster", set_input("cluster", "vpcConfig.endpointPrivateAccess", False), "no-private"),
    ("eks-secrets-encryption-kms", "cluster", set_input("cluster", "encryptionConfig", DELETE), "absent"),
    (
        "eks-secrets-encryption-kms",
        "cluster",
        set_input("cluster", "encryptionConfig.resources", ["configmaps"]),
        "not-secrets",
    ),
    ("eks-control-plane-logging", "cluster", set_input("cluster", "enabledClusterLogTypes", ["api"]), "no-audit"),
    ("eks-version-allowed", "cluster", set_input("cluster", "version", "1.29"), "old"),
    ("eks-version-allowed", "cluster", set_input("cluster", "version", DELETE), "unpinned"),
    (
        "eks-authentication-mode-api",
        "cluster",
        set_input("cluster", "accessConfig.authenticationMode", "CONFIG_MAP"),
        "config-map",
    ),
    (
        "eks-authentication-mode-api",
        "cluster",
        set_input("cluster", "accessConfig.authenticationMode", "API_AND_CONFIG_MAP"),
        "migration-mode-in-prod",
    ),
    (
        "eks-authentication-mode-api",
        "cluster",
        set_input("cluster", "accessConfig.authenticationMode", DELETE),
        "default",
    ),
    (
        "eks-no-creator-admin-bootstrap",
        "cluster",
        set_input("cluster", "accessConfig.bootstrapClusterCreatorAdminPermissions", True),
        "true",
    ),
    (
        "eks-no-creator-admin-bootstrap",
        "cluster",
        set_input("cluster", "accessConfig.bootstrapClusterCreatorAdminPermissions", DELETE),
        "default-true",
    ),
    ("eks-admin-access-entry-present", "cluster", remove("admin"), "no-admin-association"),
    (
        "eks-admin-access-entry-present",
        "cluster",
        set_input("admin", "policyArn", "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"),
        "view-only",
    ),
    ("eks-cluster-admin-limited", None, duplicate("admin", 3), "four-admins"),
    ("eks-addon-version-pinned", "vpc-cni", set_input("vpc-cni", "addonVersion", DELETE), "unpinned"),
    ("eks-nodegroup-no-open-ssh", "system", set_input("system", "remoteAccess", {"ec2SshKey": "ops"}), "ssh-key-no-sg"),
    # --- nodes
    ("imdsv2-required", "nodes", set_input("nodes", "metadataOptions.httpTokens", "optional"), "lt-optional"),
    ("imdsv2-required", "bastion", set_input("bastion", "metadataOptions", DELETE), "instance-default"),
    (
        "imdsv2-required",
        "default-class",
        set_input("default-class", "spec.metadataOptions.httpTokens", "optional"),
        "nodeclass-optional",
    ),
    ("imds-hop-limit", "nodes", set_input("nodes", "metadataOptions.httpPutResponseHopLimit", 2), "lt-two-hops"),
    ("imds-hop-limit", "nodes", set_input("nodes", "metadataOptions.httpPutResponseHopLimit", DELETE), "lt-unset"),
    (
        "imds-hop-limit",
        "default-class",
        set_input("default-class", "spec.metadataOptions.httpPutResponseHopLimit", 3),
        "nodeclass",
    ),
    ("node-volumes-encrypted", "nodes", set_input("nodes", "blockDeviceMappings.0.ebs.encrypted", "false"), "lt"),
    ("node-volumes-encrypted", "bastion", set_input("bastion", "rootBlockDevice.encrypted", False), "instance-root"),
    (
        "node-volumes-encrypted",
        "default-class",
        set_input("default-class", "spec.blockDeviceMappings.0.ebs.encrypted", False),
        "nodeclass",
    ),
    ("node-no-public-ip", "nodes", set_input("nodes", "networkInterfaces.0.associatePublicIpAddress", "true"), "lt"),
    ("node-no-public-ip", "bastion", set_input("bastion", "associatePublicIpAddress", True), "instance"),
    (
        "node-no-public-ip",
        "default-class",
        set_input("default-class", "spec.associatePublicIPAddress", True),
        "nodeclass",
    ),
    (
        "user-data-no-secrets",
        "nodes",
        user_data("nodes", "#!/bin/sh\nK3S_TOKEN=K10abcdef0123456789::server:xyz k3s agent\n"),
        "k3s-token-literal",
    ),
    (
        "user-data-no-secrets",
        "nodes",
        user_data("nodes", "#!/bin/sh\nk3s agent --token 0123456789abcdef\n"),
        "token-flag",
    ),
    (
        "user-data-no-secrets",
        "nodes",
        user_data("nodes", f"#cloud-config\nwrite_files:\n- content: |\n    {PEM}\n"),
        "private-key",
    ),
    (
        "user-data-no-secrets",
        "nodes",
        user_data("nodes", "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"),
        "access-key",
    ),
    (
        "user-data-no-secrets",
        "nodes",
        user_data(
            "nodes",
            "#cloud-config\nwrite_files:\n- path: /etc/rancher/k3s/config.yaml\n  content: |\n"
            '    datastore-endpoint: "postgres://k3s:Zx9%40qL2wr@db.example.com:5432/k3s?sslmode=verify-full"\n',
        ),
        "datastore-connection-string",
    ),
    (
        "user-data-no-secrets",
        "nodes",
        user_data(
            "nodes",
            (
                'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: '
                "text/x-shellscript\n"
                "Content-Transfer-Encoding: base64\n\n"
                + base64.b64encode(b"#!/bin/sh\nK3S_TOKEN=K10abcdefabcdef k3s\n").decode()
                + "\n--B--\n"
            ),
        ),
        "mime-base64-part",
    ),
    (
        "user-data-no-secrets",
        "bastion",
        user_data("bastion", "#!/bin/sh\nDB_PASSWORD=hunter2hunter2\n", encode=False),
        "instance-plain",
    ),
    (
        "user-data-no-secrets",
        "default-class",
        set_input(
            "default-class",
            "spec.userData",
            "#cloud-config\nwrite_files:\n- path: /etc/rancher/k3s/config.yaml\n  content: |\n    token: "
            "K10deadbeefdeadbeef\n",
        ),
        "nodeclass-yaml-token",
    ),
    # --- network
    ("no-world-open-admin-ports", "api-sg", set_input("api-sg", "ingress.0.cidrBlocks", ["0.0.0.0/0"]), "sg-6443"),
    (
        "no-world-open-admin-ports",
        "https-rule",
        lambda rs: (set_input("https-rule", "fromPort", 22)(rs), set_input("https-rule", "toPort", 22)(rs)),
        "rule-ssh",
    ),
    (
        "no-world-open-admin-ports",
        "kubelet-rule",
        lambda rs: (
            set_input("kubelet-rule", "cidrIpv4", DELETE)(rs),
            set_input("kubelet-rule", "cidrIpv6", "::/0")(rs),
        ),
        "ipv6-kubelet",
    ),
    (
        "no-world-open-admin-ports",
        "api-sg",
        lambda rs: (
            named(rs, "api-sg")
            .inputs["ingress"]
            .append({"fromPort": 2379, "toPort": 2380, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]})
        ),
        "sg-etcd",
    ),
    ("no-world-open-admin-ports", "https-rule", set_input("https-rule", "protocol", "-1"), "all-protocols"),
    ("no-world-open-admin-ports", "https-rule", ports("https-rule", 3389), "rule-rdp"),
    ("no-world-open-admin-ports", "https-rule", ports("https-rule", 5986), "rule-winrm"),
    (
        "no-world-open-admin-ports",
        "https-rule",
        lambda rs: (
            ports("https-rule", 22)(rs),
            set_input("https-rule", "cidrBlocks", ["0.0.0.0/1", "128.0.0.0/1"])(rs),
        ),
        "ssh-halves",
    ),
    (
        "no-world-open-admin-ports",
        "https-rule",
        lambda rs: (ports("https-rule", 22)(rs), set_input("https-rule", "cidrBlocks", ["1.0.0.0/8"])(rs)),
        "ssh-slash8",
    ),
    (
        "no-world-open-admin-ports",
        "kubelet-rule",
        lambda rs: (
            set_input("kubelet-rule", "cidrIpv4", DELETE)(rs),
            set_input("kubelet-rule", "cidrIpv6", "2600::/32")(rs),
        ),
        "ipv6-slash32",
    ),
    (
        "no-world-open-admin-ports",
        "api-sg",
        lambda rs: (
            named(rs, "api-sg")
            .inputs["ingress"]
            .extend(
                [
                    {"fromPort": 22, "toPort": 22, "protocol": "tcp", "cidrBlocks": ["1.0.0.0/9"]},
                    {"fromPort": 22, "toPort": 22, "protocol": "tcp", "cidrBlocks": ["1.128.0.0/9"]},
                ]
            )
        ),
        "sg-inline-entries-add-up",
    ),
    (
        "no-world-open-admin-ports-combined",
        "kubelet-rule",
        lambda rs: (
            ports("https-rule", 22)(rs),
            set_input("https-rule", "cidrBlocks", ["1.0.0.0/9"])(rs),
            ports("kubelet-rule", 22)(rs),
            set_input("kubelet-rule", "cidrIpv4", "1.128.0.0/9")(rs),
        ),
        "two-rules-one-group",
    ),
    ("no-world-open-all-traffic", "https-rule", set_input("https-rule", "protocol", "-1"), "rule"),
    ("subnet-no-auto-public-ip", "private", set_input("private", "mapPublicIpOnLaunch", True), "public-ip"),
    ("vpc-flow-logs-enabled", "vpc", remove("vpc-flow"), "no-flow-log"),
    ("k8s-api-load-balancer-internal", "api-nlb", set_input("api-nlb", "internal", False), "internet-facing"),
    # --- IAM
    (
        "iam-no-full-admin-statement",
        "controller-policy",
        edit_document(
            "controller-policy",
            "policy",
            lambda d: d["Statement"].append({"Effect": "Allow", "Action": "*", "Resource": "*"}),
        ),
        "policy",
    ),
    (
        "iam-no-full-admin-statement",
        "node-inline",
        edit_document("node-inline", "policy", first_statement(lambda s: s.update(Action="*:*", Resource="*"))),
        "role-policy",
    ),
    (
        "iam-no-full-admin-statement",
        "node-role",
        set_input(
            "node-role",
            "inlinePolicies",
            [
                {
                    "name": "x",
                    "policy": json.dumps(
                        {
                            "Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": ["*"], "Resource": ["*"]}],
                        }
                    ),
                }
            ],
        ),
        "role-inline",
    ),
    ("iam-no-admin-policy-attachment", "node-worker", set_input("node-worker", "policyArn", ADMIN), "attachment"),
    (
        "iam-no-admin-policy-attachment",
        "node-role",
        set_input("node-role", "managedPolicyArns", [ADMIN]),
        "managed-arns",
    ),
    (
        "iam-no-wildcard-principal",
        "node-role",
        edit_document("node-role", "assumeRolePolicy", first_statement(lambda s: s.update(Principal={"AWS": "*"}))),
        "trust",
    ),
    (
        "iam-no-wildcard-principal",
        "interruptions-policy",
        edit_document("interruptions-policy", "policy", first_statement(lambda s: s.update(Principal="*"))),
        "queue-policy",
    ),
    (
        "iam-no-wildcard-principal",
        "key",
        edit_document("key", "policy", first_statement(lambda s: s.update(Principal={"AWS": ["*"]}))),
        "key-policy",
    ),
    (
        "iam-passrole-scoped",
        "controller-policy",
        edit_document("controller-policy", "policy", lambda d: d["Statement"][1].update(Resource="*")),
        "passrole-any",
    ),
    # --- identity
    (
        "irsa-trust-pins-subject",
        "irsa-role",
        edit_document(
            "irsa-role",
            "assumeRolePolicy",
            first_statement(with_condition("StringLike", ":sub", "system:serviceaccount:apps:*")),
        ),
        "stringlike-wildcard",
    ),
    (
        "irsa-trust-pins-subject",
        "irsa-role",
        edit_document("irsa-role", "assumeRolePolicy", first_statement(with_condition("StringEquals", ":sub", DELETE))),
        "no-sub",
    ),
    (
        "irsa-trust-pins-subject",
        "irsa-role",
        edit_document(
            "irsa-role",
            "assumeRolePolicy",
            first_statement(with_condition("StringEquals", ":sub", "system:serviceaccount:apps:*")),
        ),
        "wildcard-in-equals",
    ),
    (
        "irsa-trust-pins-audience",
        "irsa-role",
        edit_document("irsa-role", "assumeRolePolicy", first_statement(with_condition("StringEquals", ":aud", DELETE))),
        "no-aud",
    ),
    (
        "irsa-trust-pins-audience",
        "irsa-role",
        edit_document(
            "irsa-role", "assumeRolePolicy", first_statement(with_condition("StringEquals", ":aud", "other"))
        ),
        "wrong-aud",
    ),
    (
        "pod-identity-trust-shape",
        "pod-identity-role",
        edit_document(
            "pod-identity-role", "assumeRolePolicy", first_statement(lambda s: s.update(Action="sts:AssumeRole"))
        ),
        "no-tag-session",
    ),
    (
        "pod-identity-trust-shape",
        "pod-identity-role",
        edit_document(
            "pod-identity-role",
            "assumeRolePolicy",
            first_statement(lambda s: s["Principal"].update(AWS="arn:aws:iam::999999999999:root")),
        ),
        "extra-principal",
    ),
    (
        "pod-identity-trust-shape",
        "pod-identity-role",
        edit_document("pod-identity-role", "assumeRolePolicy", first_statement(lambda s: s.pop("Condition"))),
        "no-source-account",
    ),
    (
        "roles-anywhere-trust-conditions",
        "roles-anywhere-role",
        edit_document(
            "roles-anywhere-role", "assumeRolePolicy", first_statement(with_condition("StringEquals", "/CN", DELETE))
        ),
        "no-subject",
    ),
    (
        "roles-anywhere-trust-conditions",
        "roles-anywhere-role",
        edit_document(
            "roles-anywhere-role", "assumeRolePolicy", first_statement(with_condition("StringLike", "/CN", "batch-*"))
        ),
        "subject-wildcard",
    ),
    (
        "roles-anywhere-trust-conditions",
        "roles-anywhere-role",
        edit_document(
            "roles-anywhere-role", "assumeRolePolicy", first_statement(with_condition("ArnEquals", "SourceArn", DELETE))
        ),
        "no-anchor",
    ),
    (
        "roles-anywhere-trust-conditions",
        "roles-anywhere-role",
        edit_document(
            "roles-anywhere-role",
            "assumeRolePolicy",
            first_statement(lambda s: s.update(Action=s["Action"] + ["sts:AssumeRoleWithWebIdentity"])),
        ),
        "extra-action",
    ),
    ("oidc-provider-sts-audience", "oidc", set_input("oidc", "clientIdLists", ["kubernetes"]), "no-sts-client"),
    ("oidc-provider-sts-audience", "oidc", set_input("oidc", "url", "http://oidc.example.com/id/EXAMPLE"), "http"),
    (
        "pod-identity-association-unique",
        "karpenter-association-copy0",
        duplicate("karpenter-association"),
        "two-associations",
    ),
    (
        "pod-identity-no-irsa-annotation",
        "karpenter-sa",
        set_input(
            "karpenter-sa", "metadata.annotations", {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/old"}
        ),
        "service-account",
    ),
    (
        "pod-identity-no-irsa-annotation",
        "karpenter",
        set_input(
            "karpenter",
            "values.serviceAccount",
            {"name": "karpenter", "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}},
        ),
        "helm-values",
    ),
    ("irsa-subject-matches-service-account", "irsa-sa", set_input("irsa-sa", "metadata.name", "api-v2"), "renamed-sa"),
    (
        "irsa-subject-matches-service-account",
        "irsa-sa",
        set_input("irsa-sa", "metadata.namespace", "payments"),
        "other-namespace",
    ),
    ("irsa-issuer-managed-in-stack", "irsa-role", remove("oidc"), "provider-deleted"),
    (
        "irsa-issuer-managed-in-stack",
        "irsa-role",
        set_input("oidc", "url", "https://oidc.example.com/id/NEW"),
        "issuer-changed",
    ),
    # --- storage
    ("s3-public-access-blocked", "snapshots", remove("snapshots-pab"), "no-block"),
    (
        "s3-public-access-blocked",
        "snapshots-pab",
        set_input("snapshots-pab", "blockPublicPolicy", False),
        "policy-allowed",
    ),
    ("s3-public-access-blocked", "issuer-pab", set_input("issuer-pab", "blockPublicAcls", False), "issuer-acls"),
    (
        "s3-oidc-issuer-serves-only-discovery",
        "issuer-policy",
        edit_document(
            "issuer-policy",
            "policy",
            first_statement(lambda s: s["Resource"].append(s["Resource"][0].split("/")[0] + "/*")),
        ),
        "whole-bucket",
    ),
    (
        "s3-oidc-issuer-serves-only-discovery",
        "issuer-policy",
        edit_document(
            "issuer-policy", "policy", first_statement(lambda s: s.update(Action=["s3:GetObject", "s3:ListBucket"]))
        ),
        "list",
    ),
    (
        "s3-oidc-issuer-serves-only-discovery",
        "issuer-policy",
        set_input("issuer", "tags", {"owner": "platform-team", "cost-center": "cc-1234"}),
        "untagged-bucket-public",
    ),
    ("s3-bucket-kms-encryption", "snapshots", remove("snapshots-sse"), "no-sse"),
    (
        "s3-bucket-kms-encryption",
        "snapshots",
        set_input("snapshots-sse", "rules", [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]),
        "sse-s3",
    ),
    ("kms-key-rotation", "key", set_input("key", "enableKeyRotation", False), "off"),
    ("log-group-retention", "cluster-logs", set_input("cluster-logs", "retentionInDays", 7), "short"),
    ("log-group-retention", "cluster-logs", set_input("cluster-logs", "retentionInDays", DELETE), "unset"),
    ("log-group-kms", "cluster-logs", set_input("cluster-logs", "kmsKeyId", DELETE), "no-key"),
    ("sqs-queue-encrypted", "interruptions", set_input("interruptions", "sqsManagedSseEnabled", DELETE), "unencrypted"),
    ("ssm-secret-parameter-secure-string", "join-token", set_input("join-token", "type", "String"), "plain-string"),
    (
        "secretsmanager-secret-kms",
        "drain-credentials",
        set_input("drain-credentials", "kmsKeyId", DELETE),
        "aws-managed",
    ),
    ("ebs-volume-encrypted", "data", set_input("data", "encrypted", False), "unencrypted"),
    # --- Karpenter
    ("karpenter-nodepool-limits", "general-pool", set_input("general-pool", "spec.limits", DELETE), "no-limits"),
    ("karpenter-nodepool-limits", "general-pool", set_input("general-pool", "spec.limits.memory", DELETE), "no-memory"),
    (
        "karpenter-nodepool-disruption-budgets",
        "general-pool",
        set_input("general-pool", "spec.disruption.budgets", []),
        "empty-list",
    ),
    (
        "karpenter-nodepool-disruption-budgets",
        "general-pool",
        set_input("general-pool", "spec.disruption.budgets", [{"nodes": "100%"}]),
        "all-nodes",
    ),
    (
        "karpenter-nodepool-consolidation",
        "general-pool",
        set_input("general-pool", "spec.disruption.consolidationPolicy", "WhenEmpty"),
        "when-empty",
    ),
    (
        "karpenter-nodepool-consolidation",
        "general-pool",
        set_input("general-pool", "spec.disruption.consolidateAfter", "Never"),
        "never",
    ),
    (
        "karpenter-nodepool-expire-after",
        "general-pool",
        set_input("general-pool", "spec.template.spec.expireAfter", "Never"),
        "never",
    ),
    (
        "karpenter-nodepool-expire-after",
        "general-pool",
        set_input("general-pool", "spec.template.spec.expireAfter", "2160h"),
        "too-long",
    ),
    (
        "eks-auto-mode-capabilities-together",
        "cluster",
        set_input("cluster", "computeConfig", {"enabled": True, "nodePools": ["system"], "nodeRoleArn": "arn"}),
        "compute-without-storage-and-load-balancing",
    ),
    (
        "eks-auto-mode-capabilities-together",
        "cluster",
        lambda rs: (
            set_input("cluster", "computeConfig", {"enabled": True, "nodePools": [], "nodeRoleArn": None})(rs),
            set_input("cluster", "storageConfig", {"blockStorage": {"enabled": True}})(rs),
            set_input("cluster", "kubernetesNetworkConfig.elasticLoadBalancing", {"enabled": True})(rs),
            set_input("cluster", "bootstrapSelfManagedAddons", True)(rs),
        ),
        "self-managed-addons",
    ),
    # EKS Auto Mode: nodes live at most 21 days, whatever maxExpireAfterHours allows.
    (
        "karpenter-nodepool-expire-after",
        "auto-pool",
        set_input("auto-pool", "spec.template.spec.expireAfter", "600h"),
        "auto-mode-over-21-days",
    ),
    (
        "karpenter-nodepool-requirement-labels",
        "general-pool",
        set_input(
            "general-pool",
            "spec.template.spec.requirements",
            [{"key": "eks.amazonaws.com/instance-category", "operator": "In", "values": ["m"]}],
        ),
        "auto-mode-label-on-ec2nodeclass-pool",
    ),
    (
        "karpenter-nodepool-requirement-labels",
        "auto-pool",
        set_input(
            "auto-pool",
            "spec.template.spec.requirements",
            [{"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["m"]}],
        ),
        "karpenter-label-on-auto-mode-pool",
    ),
    (
        "karpenter-nodepool-node-class-exists",
        "general-pool",
        set_input("general-pool", "spec.template.spec.nodeClassRef.name", "missing"),
        "missing-ec2nodeclass",
    ),
    (
        "karpenter-nodepool-node-class-exists",
        "auto-pool",
        set_input("auto-pool", "spec.template.spec.nodeClassRef.kind", "EC2NodeClass"),
        "kind-of-another-group",
    ),
    (
        "karpenter-nodepool-node-class-exists",
        "auto-pool",
        set_input("auto-pool", "spec.template.spec.nodeClassRef.name", "default"),
        "built-in-class-without-built-in-pools",
    ),
    (
        "node-no-public-ip",
        "auto-class",
        set_input("auto-class", "spec.advancedNetworking.associatePublicIPAddress", True),
        "auto-mode-nodeclass",
    ),
    (
        "karpenter-ami-pinned",
        "default-class",
        set_input("default-class", "spec.amiSelectorTerms", [{"alias": "al2023@latest"}]),
        "latest",
    ),
    (
        "karpenter-ami-pinned",
        "default-class",
        set_input("default-class", "spec.amiSelectorTerms", [{"alias": "al2023"}]),
        "no-version",
    ),
    ("karpenter-ami-pinned", "default-class", set_input("default-class", "spec.amiSelectorTerms", []), "empty"),
    # --- Helm and namespaces
    ("helm-chart-version-pinned", "karpenter", set_input("karpenter", "version", "^1.8"), "range"),
    ("helm-chart-version-pinned", "metrics-server", set_input("metrics-server", "version", DELETE), "unset"),
    (
        "helm-chart-source-trusted",
        "metrics-server",
        set_input("metrics-server", "repositoryOpts.repo", "http://charts.example.com"),
        "http",
    ),
    ("helm-chart-source-trusted", "metrics-server", set_input("metrics-server", "repositoryOpts", DELETE), "no-repo"),
    ("k8s-no-default-namespace", "metrics-server", set_input("metrics-server", "namespace", "default"), "release"),
    (
        "k8s-no-default-namespace",
        "karpenter-sa",
        set_input("karpenter-sa", "metadata.namespace", DELETE),
        "service-account",
    ),
    # --- EKS resilience
    (
        "eks-cluster-deletion-protection",
        "cluster",
        set_input("cluster", "deletionProtection", False),
        "off",
    ),
    (
        "eks-cluster-deletion-protection",
        "cluster",
        set_input("cluster", "deletionProtection", DELETE),
        "provider-default-off",
    ),
    ("eks-nodegroup-auto-repair", "system", set_input("system", "nodeRepairConfig.enabled", False), "repair-off"),
    ("eks-nodegroup-auto-repair", "system", set_input("system", "nodeRepairConfig", DELETE), "no-repair-config"),
    ("eks-nodegroup-auto-repair", None, remove("node-monitoring-agent"), "repair-without-monitoring-agent"),
    # --- cross-account targets (the exported trust of a target role; one mutation each)
    (
        "cross-account-target-trust-shape",
        "catalog-target",
        edit_document(
            "catalog-target",
            "targetTrustPolicy",
            first_statement(lambda st: st.update(Principal={"AWS": "arn:aws:iam::123456789012:root"})),
        ),
        "account-root-principal",
    ),
    (
        "cross-account-target-trust-shape",
        "catalog-target",
        edit_document("catalog-target", "targetTrustPolicy", first_statement(lambda st: st.update(Principal="*"))),
        "wildcard-principal",
    ),
    (
        "cross-account-target-trust-shape",
        "catalog-target",
        edit_document("catalog-target", "targetTrustPolicy", first_statement(lambda st: st.pop("Condition"))),
        "native-without-external-id",
    ),
    (
        "cross-account-target-trust-shape",
        "catalog-target",
        edit_document(
            "catalog-target",
            "targetTrustPolicy",
            first_statement(with_condition("StringLike", "sts:ExternalId", "us-east-1/*")),
        ),
        "external-id-wildcard",
    ),
    (
        "cross-account-target-trust-shape",
        "catalog-target",
        edit_document("catalog-target", "targetTrustPolicy", lambda doc: doc["Statement"].pop()),
        "tags-arrive-without-tag-session",
    ),
    (
        "cross-account-target-trust-shape",
        "reports-target",
        edit_document("reports-target", "targetTrustPolicy", first_statement(lambda st: st.update(Action="sts:*"))),
        "wildcard-action",
    ),
    (
        "cross-account-target-trust-shape",
        "reports-target",
        edit_document(
            "reports-target",
            "targetTrustPolicy",
            first_statement(lambda st: st.update(Action=["sts:AssumeRole", "sts:TagSession"])),
        ),
        "tag-session-without-tags",
    ),
    (
        "cross-account-target-trust-shape",
        "reports-target",
        edit_document(
            "reports-target",
            "targetTrustPolicy",
            first_statement(lambda st: st.update(Principal={"AWS": "arn:aws:iam::123456789012:role/other"})),
        ),
        "another-source-role",
    ),
    (
        "pod-identity-target-association",
        "catalog-association",
        set_input("catalog-association", "policy", '{"Version":"2012-10-17","Statement":[]}'),
        "session-policy-with-tags",
    ),
    (
        "pod-identity-target-association",
        "catalog-association",
        set_input("catalog-association", "targetRoleArn", "arn:aws:s3:::bucket"),
        "target-not-a-role",
    ),
    (
        "pod-identity-target-association",
        "catalog-association",
        set_input("catalog-association", "targetRoleArn", "arn:aws:iam::123456789012:role/catalog-sync"),
        "chains-to-itself",
    ),
    # --- tags and protection
    ("required-tags", "vpc", set_input("vpc", "tags", {"owner": "platform-team"}), "no-cost-center"),
    ("required-tags", "key", set_input("key", "tags", DELETE), "untagged"),
    (
        "required-tags",
        "agents",
        set_input("agents", "tags", [{"key": "cost-center", "value": "cc-1", "propagateAtLaunch": True}]),
        "asg-list-form",
    ),
    ("stateful-resources-protected", "cluster", unprotect("cluster"), "cluster"),
    ("stateful-resources-protected", "key", unprotect("key"), "kms-key"),
    ("stateful-resources-protected", "snapshots", unprotect("snapshots"), "bucket"),
    ("lambda-in-vpc", "drainer", set_input("drainer", "vpcConfig", DELETE), "no-vpc"),
    # --- optional data-plane pieces: EFS, Fargate
    ("efs-encrypted-kms", "efs", set_input("efs", "encrypted", False), "unencrypted"),
    ("efs-encrypted-kms", "efs", set_input("efs", "kmsKeyId", DELETE), "aws-managed-key"),
    ("stateful-resources-protected", "efs", unprotect("efs"), "efs-file-system"),
    (
        "efs-nfs-not-world-open",
        "nfs-rule",
        lambda rs: (
            set_input("nfs-rule", "referencedSecurityGroupId", DELETE)(rs),
            set_input("nfs-rule", "cidrIpv4", "0.0.0.0/0")(rs),
        ),
        "world",
    ),
    (
        "efs-nfs-not-world-open",
        "efs-sg",
        set_input(
            "efs-sg",
            "ingress",
            [{"fromPort": 2000, "toPort": 3000, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/1", "128.0.0.0/1"]}],
        ),
        "inline-range-two-halves",
    ),
    ("eks-fargate-private-subnets", "fargate", fargate_in("public"), "public-route"),
    (
        "eks-fargate-private-subnets",
        "fargate",
        lambda rs: (fargate_in("public")(rs), set_input("public", "mapPublicIpOnLaunch", True)(rs)),
        "maps-public-ips",
    ),
    ("eks-fargate-private-subnets", "fargate", fargate_in(None), "subnets-outside-the-stack"),
    # --- databases (the K3s external datastore)
    ("rds-storage-encrypted", "postgres", set_input("postgres", "storageEncrypted", False), "instance-plaintext"),
    ("rds-storage-encrypted", "aurora", set_input("aurora", "storageEncrypted", DELETE), "cluster-by-default"),
    ("rds-storage-encrypted", "postgres", set_input("postgres", "kmsKeyId", DELETE), "aws-managed-key"),
    ("rds-not-publicly-accessible", "postgres", set_input("postgres", "publiclyAccessible", True), "instance"),
    (
        "rds-not-publicly-accessible",
        "aurora-writer",
        set_input("aurora-writer", "publiclyAccessible", True),
        "cluster-instance",
    ),
    ("rds-tls-enforced", "db-params", set_input("db-params", "parameters.0.value", "0"), "force-ssl-off"),
    ("rds-tls-enforced", "postgres", set_input("postgres", "parameterGroupName", DELETE), "default-group"),
    (
        "rds-tls-enforced",
        "cluster-params",
        set_input("cluster-params", "parameters", [{"name": "ssl_min_protocol_version", "value": "TLSv1.2"}]),
        "aurora-no-force-ssl",
    ),
    ("rds-tls-enforced", "postgres", set_input("postgres", "engine", "oracle-ee"), "unknown-engine"),
    (
        "rds-managed-master-password",
        "aurora",
        set_input("aurora", "masterPassword", "Pulumi-generated-0123"),
        "literal-password",
    ),
    (
        "rds-managed-master-password",
        "postgres",
        set_input("postgres", "manageMasterUserPassword", False),
        "unmanaged",
    ),
    ("rds-deletion-protection", "postgres", set_input("postgres", "deletionProtection", False), "instance"),
    ("rds-deletion-protection", "aurora", set_input("aurora", "deletionProtection", DELETE), "cluster"),
    ("stateful-resources-protected", "postgres", unprotect("postgres"), "rds-instance"),
    ("stateful-resources-protected", "aurora", unprotect("aurora"), "aurora-cluster"),
]


def violations_of(resources: list[Resource], settings=PROD):
    return evaluate(resources, settings)


def test_the_pack_has_at_least_35_policies_each_mapped_to_a_benchmark():
    assert len(RULES) >= 35
    for rule in RULES:
        assert rule.benchmarks, rule.id
        assert rule.description and rule.severity
    assert len({r.id for r in RULES}) == len(RULES)


def test_every_policy_has_a_negative_case():
    covered = {case[0] for case in CASES}
    assert covered == set(BY_ID), f"policies without a failing case: {sorted(set(BY_ID) - covered)}"


def test_compliant_fixture_has_no_violation_under_prod_or_dev():
    resources = compliant_resources()
    assert violations_of(resources) == []
    dev = reconcile(load_pack_config(CONFIG_DIR / "dev.json"))
    assert violations_of(resources, dev) == []


@pytest.mark.parametrize("policy_id,target,mutation", [pytest.param(p, t, m, id=f"{p}:{c}") for p, t, m, c in CASES])
def test_negative_case_is_reported_by_its_policy(policy_id, target, mutation):
    resources = compliant_resources()
    mutation(resources)
    # Only its policy runs: the assertions read its findings alone (the whole pack on the compliant
    # fixture is the test above).
    hits = [v for v in evaluate(resources, PROD, rules=[BY_ID[policy_id]]) if v.policy == policy_id]
    assert hits, f"{policy_id} reported nothing"
    assert all(v.level == "mandatory" for v in hits)
    assert not any(v.message.startswith("policy raised") for v in hits), hits
    if target is not None:
        urn = named(resources, target).urn
        assert urn in {v.urn for v in hits}, f"{policy_id} did not name {target}: {hits}"


# Compliant variants: configurations the engine or the API treats as compliant that a naive rule
# would flag (each mutation must leave the policy silent).
COMPLIANT_VARIANTS: list[tuple[str, Mutation, str]] = [
    # A MySQL database enforces TLS with require_secure_transport (ON), not rds.force_ssl.
    (
        "rds-tls-enforced",
        lambda rs: (
            set_input("postgres", "engine", "mysql")(rs),
            set_input("db-params", "parameters", [{"name": "require_secure_transport", "value": "ON"}])(rs),
        ),
        "mysql-require-secure-transport",
    ),
    # The EC2NodeClass CRD defaults every metadataOptions field on its own: httpTokens -> required.
    (
        "imdsv2-required",
        set_input("default-class", "spec.metadataOptions.httpTokens", DELETE),
        "nodeclass-field-default",
    ),
    (
        "imds-hop-limit",
        set_input("default-class", "spec.metadataOptions.httpPutResponseHopLimit", DELETE),
        "nodeclass-hop-default",
    ),
    ("imdsv2-required", set_input("default-class", "spec.metadataOptions", DELETE), "nodeclass-block-default"),
    # A bucket's own (deprecated) serverSideEncryptionConfiguration still encrypts it.
    (
        "s3-bucket-kms-encryption",
        lambda rs: (
            remove("snapshots-sse")(rs),
            set_input(
                "snapshots",
                "serverSideEncryptionConfiguration",
                {"rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}},
            )(rs),
        ),
        "inline-sse-kms",
    ),
    # NodePool CRD defaults: budgets [{nodes: 10%}], WhenEmptyOrUnderutilized, expireAfter 720h.
    (
        "karpenter-nodepool-disruption-budgets",
        set_input("general-pool", "spec.disruption.budgets", DELETE),
        "crd-default",
    ),
    (
        "karpenter-nodepool-consolidation",
        set_input("general-pool", "spec.disruption.consolidationPolicy", DELETE),
        "crd-default",
    ),
    (
        "karpenter-nodepool-consolidation",
        set_input("general-pool", "spec.disruption.consolidationPolicy", "Balanced"),
        "balanced",
    ),
    (
        "karpenter-nodepool-expire-after",
        set_input("general-pool", "spec.template.spec.expireAfter", DELETE),
        "crd-default",
    ),
    (
        "eks-auto-mode-capabilities-together",
        lambda rs: (
            set_input("cluster", "computeConfig", {"enabled": True, "nodePools": ["system"], "nodeRoleArn": "a"})(rs),
            set_input("cluster", "storageConfig", {"blockStorage": {"enabled": True}})(rs),
            set_input("cluster", "kubernetesNetworkConfig.elasticLoadBalancing", {"enabled": True})(rs),
            set_input("cluster", "bootstrapSelfManagedAddons", False)(rs),
        ),
        "all-three",
    ),
    # Auto Mode's built-in NodeClass `default` exists while the cluster enables built-in pools.
    (
        "karpenter-nodepool-node-class-exists",
        lambda rs: (
            set_input("auto-pool", "spec.template.spec.nodeClassRef.name", "default")(rs),
            set_input("cluster", "computeConfig", {"enabled": True, "nodePools": ["system"], "nodeRoleArn": "arn"})(rs),
        ),
        "auto-mode-built-in-default",
    ),
    # Ingress from the VPC only, on every admin port, is not world-open.
    ("no-world-open-admin-ports", set_input("api-sg", "ingress.0.toPort", 65535), "vpc-cidr-wide-range"),
    # Private and narrow public sources are not world-open.
    (
        "no-world-open-admin-ports",
        lambda rs: (
            ports("https-rule", 22)(rs),
            set_input("https-rule", "cidrBlocks", ["10.0.0.0/8", "100.64.0.0/10"])(rs),
        ),
        "private-slash8",
    ),
    (
        "no-world-open-admin-ports",
        lambda rs: (ports("https-rule", 3389)(rs), set_input("https-rule", "cidrBlocks", ["1.0.0.0/9"])(rs)),
        "public-slash9",
    ),
    # A session policy with session tags disabled is what EKS accepts.
    (
        "pod-identity-target-association",
        lambda rs: (
            set_input("catalog-association", "policy", '{"Version":"2012-10-17","Statement":[]}')(rs),
            set_input("catalog-association", "disableSessionTags", True)(rs),
        ),
        "session-policy-untagged",
    ),
    # Without session tags a native target's trust needs no TagSession statement.
    (
        "cross-account-target-trust-shape",
        lambda rs: (
            set_input("catalog-target", "sessionTags", False)(rs),
            edit_document("catalog-target", "targetTrustPolicy", lambda doc: doc["Statement"].pop())(rs),
        ),
        "native-untagged",
    ),
    # Two rules on different groups do not add up.
    (
        "no-world-open-admin-ports-combined",
        lambda rs: (
            ports("https-rule", 22)(rs),
            set_input("https-rule", "cidrBlocks", ["1.0.0.0/9"])(rs),
            ports("kubelet-rule", 22)(rs),
            set_input("kubelet-rule", "cidrIpv4", "1.128.0.0/9")(rs),
            set_input("kubelet-rule", "securityGroupId", "sg-2")(rs),
        ),
        "two-groups",
    ),
]


@pytest.mark.parametrize("policy_id,mutation", [pytest.param(p, m, id=f"{p}:{c}") for p, m, c in COMPLIANT_VARIANTS])
def test_compliant_variant_is_not_reported(policy_id, mutation):
    resources = compliant_resources()
    mutation(resources)
    assert [v for v in violations_of(resources) if v.policy == policy_id] == []


@pytest.mark.parametrize("protocol,low,high", [("-1", 0, 0), ("tcp", 0, 65535)], ids=["all-protocols", "port-range"])
def test_wide_rule_names_every_admin_port_it_exposes(protocol, low, high):
    resources = compliant_resources()
    ports("https-rule", low, high)(resources)
    set_input("https-rule", "protocol", protocol)(resources)
    [hit] = [v for v in violations_of(resources) if v.policy == "no-world-open-admin-ports"]
    for port in (
        "22 (SSH)",
        "3389 (RDP)",
        "5985-5986 (WinRM)",
        "6443 (Kubernetes API)",
        "10250 (kubelet)",
        "2379-2380 (etcd)",
    ):
        assert port in hit.message, hit.message


def test_without_a_policy_config_critical_and_high_policies_are_mandatory():
    """`pulumi preview --policy-pack policy` without --policy-pack-config: the pack fails safe."""
    from policy.offline_runner import check

    resources = compliant_resources()
    ports("https-rule", 22)(resources)
    hits = [v for v in check(resources, None) if v.policy == "no-world-open-admin-ports"]
    assert hits and all(v.level == "mandatory" for v in hits)
    levels = {rid: s.level.value for rid, s in reconcile({}).items()}
    for rule in RULES:
        expected = "mandatory" if rule.severity.value in ("critical", "high") else "advisory"
        assert levels[rule.id] == expected, rule.id
