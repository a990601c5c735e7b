"""Pure renderers for K3s node user-data (cloud-init) and the boot script it embeds.

Nothing secret is ever rendered: the join token and (on the first server) the PKI bundle are
fetched at boot from SSM Parameter Store SecureString / Secrets Manager with the instance role.
Everything in here is public: versions, URLs, parameter names, labels, taints, kube-apiserver flags.

`render_k3s_agent_cloud_init` is also what Karpenter's EC2NodeClass uses for its nodes, so its
signature stays small: server URL, token parameter, region, K3s version, labels, taints, max pods.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

import yaml

from components.config import AddonsConfig
from components.k3s.datastore import (
    CA_BUNDLE_PATH,
    ENDPOINT_DROPIN,
    REFRESH_UNIT,
    DatastoreConnection,
    datastore_k3s_config,
    refresh_units,
)

K3S_CONFIG_DIR = "/etc/rancher/k3s"
K3S_TLS_DIR = "/var/lib/rancher/k3s/server/tls"
BOOT_SCRIPT_PATH = "/usr/local/sbin/k3s-node-boot.sh"
REGISTRIES_PATH = f"{K3S_CONFIG_DIR}/registries.yaml"
AMAZON_TIME_SYNC = "169.254.169.123"
CHRONY_CONF = "/etc/chrony.conf"  # AL2023 (chrony); drop-ins under /etc/chrony.d
# K3s's built-in issuer: kept as the second issuer so tokens minted before the switch stay valid.
K3S_DEFAULT_SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_ACCOUNT_KEY_PATH = f"{K3S_TLS_DIR}/service.key"

ServerRole = Literal["bootstrap", "join"]

# Every node kind (servers, ASG agents, Karpenter nodes). K3s passes `--cloud-provider=external` to
# the kubelet only while its embedded cloud controller runs (k3s pkg/daemons/agent/agent_linux.go:
# `if !cfg.DisableCCM`); with the AWS cloud controller add-on it is disabled, and without this the
# nodes never get the `node.cloudprovider.kubernetes.io/uninitialized` taint, so the AWS controller
# never initialises them (no zone/region/instance-type labels, which EBS CSI's node plugin needs).
# Harmless when the embedded controller runs: K3s then sets the same flag itself.
KUBELET_ARGS = ("cloud-provider=external",)


@dataclass(frozen=True)
class K3sServerSettings:
    """Everything a server's user-data says. `role`: `bootstrap` is the one server that may run
    `cluster-init` (only when no cluster answers at the server URL yet); `join` servers always join."""

    role: ServerRole
    cluster_name: str
    k3s_version: str
    region: str
    server_url: str  # https://<nlb dns>:6443
    api_host: str  # the NLB DNS name, added to the serving certificate's SANs
    token_parameter_name: str
    agent_token_parameter_name: str
    pki_secret_id: str
    service_account_issuer_url: str
    service_account_jwks_uri: str
    snapshot_bucket: str
    snapshot_schedule_cron: str
    snapshot_retention: int
    # The API target group: the bootstrap server reads its health before it may cluster-init.
    api_target_group_arn: str = ""
    node_labels: Mapping[str, str] = field(default_factory=dict)
    node_taints: Sequence[str] = ()
    # Packaged K3s components replaced by enabled cluster add-ons (servicelb/traefik by the AWS Load
    # Balancer Controller, local-storage by EBS CSI, metrics-server by its chart): pass
    # `cfg.addons.k3s_disabled_components()`; the default matches the default add-on config.
    disable_components: Sequence[str] = field(default_factory=lambda: AddonsConfig().k3s_disabled_components())
    # False only when the AWS cloud controller add-on is off: K3s's own then initialises nodes.
    disable_cloud_controller: bool = True
    # Standby issuers (published, trusted, not signing) during an issuer migration.
    extra_service_account_issuers: Sequence[str] = ()
    # The embedded registry mirror (Spegel): the registries nodes share images of; empty = off.
    registry_mirrors: Sequence[str] = ()
    # An external datastore (components/k3s/datastore.py): no etcd, no cluster-init, no snapshots; the
    # boot script assembles `datastore-endpoint` from the RDS-managed secret. None: embedded etcd.
    datastore: DatastoreConnection | None = None


def service_account_issuers(issuer_url: str, extra: Sequence[str] = ()) -> list[str]:
    """The configured issuer signs (first); standby issuers and K3s's default still verify."""
    return list(dict.fromkeys([issuer_url, *extra, K3S_DEFAULT_SERVICE_ACCOUNT_ISSUER]))


def server_k3s_config(s: K3sServerSettings) -> dict:
    """The static `/etc/rancher/k3s/config.yaml` of a server (instance-specific keys come at boot)."""
    api_args = [
        f"service-account-issuer={i}"
        for i in service_account_issuers(s.service_account_issuer_url, s.extra_service_account_issuers)
    ]
    api_args += [
        f"service-account-jwks-uri={s.service_account_jwks_uri}",
        f"service-account-key-file={SERVICE_ACCOUNT_KEY_PATH}",
        f"service-account-signing-key-file={SERVICE_ACCOUNT_KEY_PATH}",
    ]
    config = {
        "token-file": f"{K3S_CONFIG_DIR}/token",
        "agent-token-file": f"{K3S_CONFIG_DIR}/agent-token",
        "tls-san": [s.api_host],
        # The AWS cloud controller manager (an add-on) initialises nodes and owns load balancers.
        "disable-cloud-controller": s.disable_cloud_controller,
        "disable": list(s.disable_components),
        "secrets-encryption": True,
        "write-kubeconfig-mode": "0600",
        "kube-apiserver-arg": api_args,
        "kubelet-arg": list(KUBELET_ARGS),
        "node-label": _labels(s.node_labels),
        "node-taint": list(s.node_taints),
        "etcd-s3": True,
        "etcd-s3-bucket": s.snapshot_bucket,
        "etcd-s3-region": s.region,
        "etcd-s3-folder": s.cluster_name,
        "etcd-snapshot-schedule-cron": s.snapshot_schedule_cron,
        "etcd-snapshot-retention": s.snapshot_retention,
        # Separate since v1.34.0+k3s1 with its own default of 5; the fallback to
        # etcd-snapshot-retention (k3s PR #13770) came after v1.35.1. Set explicitly on every version.
        "etcd-s3-retention": s.snapshot_retention,
        # A server flag that turns the mirror on cluster-wide; each node's registries.yaml (written by
        # cloud-init next to this file) lists the registries it shares.
        **({"embedded-registry": True} if s.registry_mirrors else {}),
    }
    if s.datastore is not None:
        config = {k: v for k, v in config.items() if not k.startswith("etcd-")} | datastore_k3s_config()
    return config


def agent_k3s_config(
    server_url: str, node_labels: Mapping[str, str], node_taints: Sequence[str], max_pods: int | None
) -> dict:
    config: dict = {
        "server": server_url,
        "token-file": f"{K3S_CONFIG_DIR}/token",
        "node-label": _labels(node_labels),
        "node-taint": list(node_taints),
        "kubelet-arg": list(KUBELET_ARGS) + ([f"max-pods={max_pods}"] if max_pods is not None else []),
    }
    return config


def render_boot_script(
    *,
    node_kind: Literal["server", "agent"],
    k3s_version: str,
    region: str,
    server_url: str,
    token_parameter_name: str,
    server_role: ServerRole | Literal[""] = "",
    agent_token_parameter_name: str = "",
    pki_secret_id: str = "",
    snapshot_bucket: str = "",
    snapshot_folder: str = "",
    api_target_group_arn: str = "",
    datastore: DatastoreConnection | None = None,
) -> str:
    """The boot script: header of shell-quoted settings + the fixed body (`node_boot.sh`)."""
    settings = {
        "NODE_KIND": node_kind,
        "SERVER_ROLE": server_role,
        "K3S_VERSION": k3s_version,
        "AWS_REGION": region,
        "SERVER_URL": server_url,
        "TOKEN_PARAMETER": token_parameter_name,
        "AGENT_TOKEN_PARAMETER": agent_token_parameter_name,
        "PKI_SECRET_ID": pki_secret_id,
        "SNAPSHOT_BUCKET": snapshot_bucket,
        "SNAPSHOT_FOLDER": snapshot_folder,
        "API_TARGET_GROUP_ARN": api_target_group_arn,
        "K3S_CONFIG_DIR": K3S_CONFIG_DIR,
        "K3S_TLS_DIR": K3S_TLS_DIR,
        "TIME_SYNC_SERVER": AMAZON_TIME_SYNC,
        "CHRONY_CONF": CHRONY_CONF,
        "CHRONY_CONF_DIR": "/etc/chrony.d",
    }
    embedded_etcd = node_kind == "server" and datastore is None
    if not embedded_etcd:
        # Only a server on embedded etcd bootstraps etcd (cluster-init, the join, snapshot restore):
        # agents and external-datastore servers carry none of it (user-data is limited to 16 KiB).
        for etcd_only in ("SERVER_ROLE", "SERVER_URL", "SNAPSHOT_BUCKET", "SNAPSHOT_FOLDER", "API_TARGET_GROUP_ARN"):
            del settings[etcd_only]
    if datastore is not None:
        settings |= {
            "DATASTORE_SECRET_ARN": datastore.secret_arn,
            "DATASTORE_HOST": datastore.host,
            "DATASTORE_PORT": str(datastore.port),
            "DATASTORE_NAME": datastore.database,
            "DATASTORE_CA_URL": datastore.ca_bundle_url,
            "DATASTORE_CA_FILE": CA_BUNDLE_PATH,
            "DATASTORE_DROPIN": ENDPOINT_DROPIN,
            "DATASTORE_REFRESH_TIMER": f"{REFRESH_UNIT}.timer",
        }
    header = "\n".join(f"readonly {k}={shlex.quote(v)}" for k, v in settings.items())
    body = resources.files("components.k3s").joinpath("node_boot.sh").read_text()
    head, marker, tail = body.partition("# @SETTINGS@\n")
    if not marker:
        raise RuntimeError("node_boot.sh lost its '# @SETTINGS@' marker")
    return f"{head}{header}\n{_body_for(tail, embedded_etcd=embedded_etcd, datastore=datastore is not None)}"


def _body_for(body: str, *, embedded_etcd: bool, datastore: bool) -> str:
    """The body for a server on embedded etcd (markers dropped: the script it always was), a server on
    an external datastore (datastore_boot.sh's functions in, the etcd bootstrap out) or an agent
    (neither: an agent never runs the server branch)."""
    before, marker, rest = body.partition("# @DATASTORE@\n")
    etcd_helpers, helpers_end, rest = rest.partition("# @DATASTORE-END@\n")
    etcd_head, begin, rest = rest.partition("    # @ETCD@\n")
    etcd_block, end, after = rest.partition("    # @ETCD-END@\n")
    if not (marker and helpers_end and begin and end):
        raise RuntimeError("node_boot.sh lost one of its @DATASTORE@, @DATASTORE-END@, @ETCD@, @ETCD-END@ markers")
    if embedded_etcd:
        return f"{before}{etcd_helpers}{etcd_head}{etcd_block}{after}"
    if not datastore:
        return f"{before}{etcd_head}{after}"
    functions = resources.files("components.k3s").joinpath("datastore_boot.sh").read_text()
    functions = functions.split("\n\n", 1)[1]  # without its own header comment
    return f'{before}{functions}\n{etcd_head}    start_on_datastore "${{dropins}}"\n{after}'


def render_k3s_server_cloud_init(settings: K3sServerSettings) -> str:
    """cloud-config for a server; `settings.role` decides whether it may run `cluster-init`."""
    external = settings.datastore is not None
    if settings.role == "bootstrap" and not settings.api_target_group_arn and not external:
        # Without it the bootstrap server could not tell a live cluster from a network hiccup.
        raise ValueError("the bootstrap server needs api_target_group_arn (checked before cluster-init)")
    script = render_boot_script(
        node_kind="server",
        server_role=settings.role,
        k3s_version=settings.k3s_version,
        region=settings.region,
        server_url=settings.server_url,
        token_parameter_name=settings.token_parameter_name,
        agent_token_parameter_name=settings.agent_token_parameter_name,
        # On an external datastore every server may be the first to start: each places the PKI.
        pki_secret_id=settings.pki_secret_id if settings.role == "bootstrap" or external else "",
        snapshot_bucket="" if external else settings.snapshot_bucket,
        snapshot_folder="" if external else settings.cluster_name,
        api_target_group_arn=settings.api_target_group_arn if settings.role == "bootstrap" and not external else "",
        datastore=settings.datastore,
    )
    units = refresh_units(BOOT_SCRIPT_PATH) if external else {}
    return _cloud_config(server_k3s_config(settings), script, settings.registry_mirrors, units)


def render_k3s_agent_cloud_init(
    *,
    server_url: str,
    token_parameter_name: str,
    region: str,
    k3s_version: str,
    node_labels: Mapping[str, str] | None = None,
    node_taints: Sequence[str] = (),
    max_pods: int | None = None,
    registry_mirrors: Sequence[str] = (),
) -> str:
    """cloud-config for an agent joining `server_url` with the token in SSM `token_parameter_name`.

    `node_taints` are `key=value:Effect` strings (Karpenter passes `karpenter.sh/unregistered:NoExecute`).
    The node name (private DNS FQDN) and `provider-id=aws:///<az>/<instance-id>` come from IMDSv2 at boot.
    `registry_mirrors`: the registries this node shares through the embedded mirror (the servers' list).
    """
    script = render_boot_script(
        node_kind="agent",
        k3s_version=k3s_version,
        region=region,
        server_url=server_url,
        token_parameter_name=token_parameter_name,
    )
    return _cloud_config(
        agent_k3s_config(server_url, node_labels or {}, node_taints, max_pods), script, registry_mirrors
    )


def registries_config(registry_mirrors: Sequence[str]) -> dict:
    """`/etc/rancher/k3s/registries.yaml` for the embedded registry mirror: K3s mirrors a registry on a
    node only when that node's file lists it; no endpoint is needed (the mirror is tried first, then
    the registry itself)."""
    return {"mirrors": {registry: {} for registry in registry_mirrors}}


def _labels(labels: Mapping[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in sorted(labels.items())]


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as `|` blocks, so the user-data reads like the files it writes."""


_LiteralDumper.add_representer(
    str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|" if "\n" in v else None)
)


def _cloud_config(
    k3s_config: dict, script: str, registry_mirrors: Sequence[str] = (), units: Mapping[str, str] | None = None
) -> str:
    # Time sync is enforced by the boot script (`ensure_time_sync`), not cloud-init's `ntp` module:
    # upstream cloud-init does not list AL2023 ("amazon") for that module (it is skipped there), and
    # where it runs without a chrony template for the distro it renames /etc/chrony.conf, then fails.
    doc = {
        "write_files": [
            {
                "path": f"{K3S_CONFIG_DIR}/config.yaml",
                "owner": "root:root",
                "permissions": "0600",
                "content": yaml.safe_dump(k3s_config, sort_keys=False),
            },
            {"path": BOOT_SCRIPT_PATH, "owner": "root:root", "permissions": "0700", "content": script},
            # Only with the embedded registry mirror on: without it the user-data is unchanged.
            *(
                [
                    {
                        "path": REGISTRIES_PATH,
                        "owner": "root:root",
                        "permissions": "0600",
                        "content": yaml.safe_dump(registries_config(registry_mirrors), sort_keys=False),
                    }
                ]
                if registry_mirrors
                else []
            ),
            *(
                {"path": path, "owner": "root:root", "permissions": "0644", "content": text}
                for path, text in (units or {}).items()
            ),
        ],
        "runcmd": [[BOOT_SCRIPT_PATH]],
    }
    return "#cloud-config\n" + yaml.dump(doc, Dumper=_LiteralDumper, sort_keys=False, width=10_000)
