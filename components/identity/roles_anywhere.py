"""IAM Roles Anywhere for workloads: a Pulumi-minted CA as trust anchor, one leaf certificate per workload.

Chain: CA (`pulumi_tls`; CA:TRUE, keyCertSign, SHA-256) -> `TrustAnchor` (CERTIFICATE_BUNDLE) ->
per workload: a role trusting rolesanywhere.amazonaws.com only for its certificate's subject CN
and this anchor (`trust_policies.roles_anywhere_trust`, created by `WorkloadIdentity`) -> a
`Profile` listing just that role -> a leaf certificate (CA:FALSE, digitalSignature) whose
certificate and key go into a Kubernetes Secret, plus a ConfigMap holding an AWS config file
whose `credential_process` runs `aws_signing_helper credential-process` (the helper's `serve`
mode is avoided: it is broken for this use). Pods mount both and set AWS_CONFIG_FILE; the
workload image must ship `aws_signing_helper` >= 1.2 (for `--role-session-name`).

The session name is the workload's name (the profile accepts it), so the caller identity inside
the pod is exact: `arn:aws:sts::<account>:assumed-role/<role>/<workload>`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.core.tls_certs import issue_certificate, private_ca

CA_VALIDITY_HOURS = 5 * 365 * 24  # leaves: 1 year, re-issued in their last 30 days (components/core/tls_certs.py)
LEAF_USES = ["digital_signature", "client_auth"]
SESSION_SECONDS = 3600

CERT_MOUNT = "/var/run/secrets/rolesanywhere"
CONFIG_MOUNT = "/etc/aws-rolesanywhere"
CONFIG_FILE = f"{CONFIG_MOUNT}/config"


def certificate_cn(cluster_name: str, namespace: str, service_account: str) -> str:
    """The subject CN the workload's role trust pins: unique per (cluster, namespace, ServiceAccount)."""
    return f"{service_account}.{namespace}.{cluster_name}"


def credential_process_command(
    *, trust_anchor_arn: str, profile_arn: str, role_arn: str, region: str, session_name: str
) -> str:
    return " ".join(
        [
            "aws_signing_helper credential-process",
            f"--certificate {CERT_MOUNT}/tls.crt",
            f"--private-key {CERT_MOUNT}/tls.key",
            f"--trust-anchor-arn {trust_anchor_arn}",
            f"--profile-arn {profile_arn}",
            f"--role-arn {role_arn}",
            f"--region {region}",
            f"--role-session-name {session_name}",
        ]
    )


def aws_config_file(**kwargs: str) -> str:
    """An AWS shared config file whose default profile gets credentials through the helper."""
    return f"[default]\nregion = {kwargs['region']}\ncredential_process = {credential_process_command(**kwargs)}\n"


@dataclass(frozen=True)
class RolesAnywhereAuthorityArgs:
    """Built by `WorkloadIdentity` when the first `roles-anywhere` workload needs it, not from the
    stack: no `from_stack`."""

    cluster_name: str
    """Names the CA (`<cluster> workload identity CA`) and the trust anchor (`<cluster>-workloads`)."""
    tags: dict[str, str]
    """Tags for the trust anchor."""
    protect: bool = False
    """Protect the CA (prod): replacing it invalidates every issued workload certificate."""


class RolesAnywhereAuthority(pulumi.ComponentResource):
    """The cluster's workload CA and its trust anchor."""

    ca_cert_pem: pulumi.Output[str]
    ca_common_name: str
    trust_anchor_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RolesAnywhereAuthorityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:identity:RolesAnywhereAuthority", name, None, opts)
        cluster_name, tags, protect = args.cluster_name, args.tags, args.protect
        child = pulumi.ResourceOptions(parent=self)
        self._name = name
        self.ca_common_name = f"{cluster_name} workload identity CA"
        # Protected in prod: replacing the CA invalidates every issued workload certificate.
        # P-256 so the provider signs with ECDSA-SHA256 (Roles Anywhere: SHA-256 or stronger).
        self._ca = private_ca(
            f"{name}-ca",
            self.ca_common_name,
            pulumi.ResourceOptions(parent=self, protect=protect),
            validity_hours=CA_VALIDITY_HOURS,
        )
        ca = self._ca
        self.ca_cert_pem = ca.cert_pem
        anchor = aws.rolesanywhere.TrustAnchor(
            f"{name}-trust-anchor",
            name=f"{cluster_name}-workloads",
            enabled=True,
            source={"source_type": "CERTIFICATE_BUNDLE", "source_data": {"x509_certificate_data": ca.cert_pem}},
            tags=tags,
            opts=child,
        )
        self.trust_anchor_arn = anchor.arn
        self.register_outputs({"trustAnchorArn": self.trust_anchor_arn, "caCertPem": self.ca_cert_pem})

    def leaf_certificate(
        self, parent: pulumi.Resource, name: str, common_name: str
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """(certificate PEM, private key PEM as a secret) of an end-entity certificate signed by the CA."""
        leaf = issue_certificate(
            f"{name}-leaf",
            self._ca,
            pulumi.ResourceOptions(parent=parent),
            common_name=common_name,
            organization="k8s-platform",
            allowed_uses=LEAF_USES,
        )
        return leaf.cert_pem, leaf.private_key_pem


@dataclass(frozen=True)
class RolesAnywhereWorkloadArgs:
    """Built per workload by `WorkloadIdentity` (method `roles-anywhere`), not from the stack: no `from_stack`."""

    authority: RolesAnywhereAuthority
    """The cluster's CA and trust anchor; issues the workload's leaf certificate."""
    role: aws.iam.Role
    """The workload's role, the one role the profile may hand out."""
    profile_name: str
    """The Roles Anywhere profile's name."""
    common_name: str
    """The leaf certificate's CN (what the role's trust policy matches)."""
    namespace: str
    """Namespace of the ServiceAccount, the Secret and the ConfigMap."""
    service_account: str
    """The workload's ServiceAccount; names the Secret (`<sa>-rolesanywhere-cert`) and the ConfigMap."""
    session_name: str
    """The role session name written into the AWS config file."""
    region: str
    """The Roles Anywhere endpoint's region in the AWS config file."""
    tags: dict[str, str]
    """Tags for the profile."""
    k8s_provider: k8s.Provider
    """The cluster's Kubernetes provider for the Secret and the ConfigMap."""
    depends_on: list[pulumi.Resource]
    """What the Secret and the ConfigMap wait for (the namespace / ServiceAccount)."""


class RolesAnywhereWorkload(pulumi.ComponentResource):
    """Profile, leaf certificate, Secret and ConfigMap of one workload."""

    profile_arn: pulumi.Output[str]
    cert_pem: pulumi.Output[str]
    config_file: pulumi.Output[str]
    secret_name: str
    config_map_name: str

    def __init__(self, name: str, args: RolesAnywhereWorkloadArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:identity:RolesAnywhereWorkload", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        profile = aws.rolesanywhere.Profile(
            f"{name}-profile",
            name=args.profile_name,
            enabled=True,
            role_arns=[args.role.arn],
            accept_role_session_name=True,
            duration_seconds=SESSION_SECONDS,
            tags=args.tags,
            opts=child,
        )
        self.profile_arn = profile.arn
        self.cert_pem, key_pem = args.authority.leaf_certificate(self, name, args.common_name)
        self.config_file = pulumi.Output.all(args.authority.trust_anchor_arn, profile.arn, args.role.arn).apply(
            lambda a: aws_config_file(
                trust_anchor_arn=a[0],
                profile_arn=a[1],
                role_arn=a[2],
                region=args.region,
                session_name=args.session_name,
            )
        )
        labels = {"app.kubernetes.io/managed-by": "pulumi", "k8s-platform/identity": "roles-anywhere"}
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.k8s_provider, depends_on=args.depends_on)
        self.secret_name = f"{args.service_account}-rolesanywhere-cert"
        self.config_map_name = f"{args.service_account}-rolesanywhere-config"
        k8s.core.v1.Secret(
            f"{name}-cert",
            metadata={
                "name": self.secret_name,
                "namespace": args.namespace,
                "labels": labels,
                "annotations": {"k8s-platform/mount-path": CERT_MOUNT},
            },
            type="kubernetes.io/tls",
            string_data={"tls.crt": self.cert_pem, "tls.key": key_pem},
            opts=pulumi.ResourceOptions.merge(
                k8s_opts, pulumi.ResourceOptions(additional_secret_outputs=["stringData", "data"])
            ),
        )
        k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={
                "name": self.config_map_name,
                "namespace": args.namespace,
                "labels": labels,
                "annotations": {
                    "k8s-platform/mount-path": CONFIG_MOUNT,
                    "k8s-platform/env": f"AWS_CONFIG_FILE={CONFIG_FILE}",
                },
            },
            data={"config": self.config_file},
            opts=k8s_opts,
        )
        self.register_outputs(
            {"profileArn": self.profile_arn, "secretName": self.secret_name, "configMapName": self.config_map_name}
        )
