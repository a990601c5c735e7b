"""K3s user-data renderers: valid cloud-config and shell, no secrets, and the boot script's real
behaviour (run under bash with fake curl/aws/systemctl) — only the bootstrap server can cluster-init."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.k3s.datastore import DatastoreConnection, rds_ca_bundle_url
from components.k3s.user_data import (
    BOOT_SCRIPT_PATH,
    K3S_CONFIG_DIR,
    K3S_DEFAULT_SERVICE_ACCOUNT_ISSUER,
    K3S_TLS_DIR,
    K3sServerSettings,
    render_k3s_agent_cloud_init,
    render_k3s_server_cloud_init,
)
from tests import fast_yaml
from tests.cloud_init_schema import schema_errors
from tests.shellcheck import shellcheck_findings

ISSUER = "https://dev-k3s-oidc-111111111111.s3.us-east-1.amazonaws.com"
MIRRORS = ("docker.io", "registry.k8s.io", "registry.example.com:5000")


def settings(role: str = "bootstrap", **over) -> K3sServerSettings:
    base = dict(
        role=role,
        cluster_name="dev-k3s",
        k3s_version="v1.35.1+k3s1",
        region="us-east-1",
        server_url="https://k3s-api-0123.elb.us-east-1.amazonaws.com:6443",
        api_host="k3s-api-0123.elb.us-east-1.amazonaws.com",
        token_parameter_name="/k8s-platform/dev-k3s/k3s/server-token",
        agent_token_parameter_name="/k8s-platform/dev-k3s/k3s/agent-token",
        pki_secret_id="k8s-platform/dev-k3s/k3s/pki",
        service_account_issuer_url=ISSUER,
        service_account_jwks_uri=f"{ISSUER}/keys.json",
        snapshot_bucket="k3s-etcd-snapshots-abc",
        snapshot_schedule_cron="0 */6 * * *",
        snapshot_retention=12,
        node_taints=["CriticalAddonsOnly=true:NoExecute"],
        api_target_group_arn="arn:aws:elasticloadbalancing:us-east-1:111111111111:targetgroup/k3s-api/0123456789abcdef",
    )
    return K3sServerSettings(**{**base, **over})


def agent_user_data(**over) -> str:
    args = dict(
        server_url="https://k3s-api-0123.elb.us-east-1.amazonaws.com:6443",
        token_parameter_name="/k8s-platform/dev-k3s/k3s/agent-token",
        region="us-east-1",
        k3s_version="v1.35.1+k3s1",
        node_labels={"karpenter.sh/nodepool": "general"},
        node_taints=["karpenter.sh/unregistered:NoExecute"],
        max_pods=58,
    )
    return render_k3s_agent_cloud_init(**{**args, **over})


DATASTORE = DatastoreConnection(
    secret_arn="arn:aws:secretsmanager:us-east-1:111111111111:secret:rds!cluster-0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9-AbCdEf",
    host="dev-k3s-k3s.cluster-c0123456789a.us-east-1.rds.amazonaws.com",
    port=5432,
    database="k3s",
    ca_bundle_url=rds_ca_bundle_url("us-east-1"),
)

ALL_USER_DATA = {
    "server-bootstrap": lambda: render_k3s_server_cloud_init(settings("bootstrap")),
    "server-join": lambda: render_k3s_server_cloud_init(settings("join")),
    "server-datastore-bootstrap": lambda: render_k3s_server_cloud_init(settings("bootstrap", datastore=DATASTORE)),
    "server-datastore-join": lambda: render_k3s_server_cloud_init(settings("join", datastore=DATASTORE)),
    "agent": agent_user_data,
    # The embedded registry mirror on: registries.yaml written at boot on every node kind.
    "server-join-mirror": lambda: render_k3s_server_cloud_init(settings("join", registry_mirrors=MIRRORS)),
    "agent-mirror": lambda: agent_user_data(registry_mirrors=MIRRORS),
}


def files_of(user_data: str) -> dict[str, str]:
    assert user_data.startswith("#cloud-config\n")
    return {f["path"]: f["content"] for f in fast_yaml.load(user_data)["write_files"]}


# Known-bad documents checked in the same cloud-init run: the check can fail.
SCHEMA_REFUSES = {
    "refused: write_files not a list": "#cloud-config\nwrite_files: 5\n",
    "refused: no #cloud-config line": "write_files: []\n",
}


@functools.cache
def _rendered() -> tuple[dict[str, str], dict[str, str]]:
    """Every kind's user-data, and why each kind that could not be rendered was not: the checks
    below batch the kinds into one process, and a kind that fails to render fails only its test."""
    rendered, failed = {}, {}
    for kind, render in ALL_USER_DATA.items():
        try:
            rendered[kind] = render()
        except Exception as exc:  # noqa: BLE001 - reported by that kind's test
            failed[kind] = f"not rendered: {exc!r}"
    return rendered, failed


@functools.cache
def _schema_errors() -> dict[str, str]:
    """Every kind's user-data and the known-bad documents, through one cloud-init process."""
    rendered, failed = _rendered()
    return {**schema_errors({**rendered, **SCHEMA_REFUSES}), **failed}


@pytest.mark.parametrize("kind", sorted(ALL_USER_DATA))
def test_rendered_user_data_passes_cloud_init_schema(kind):
    assert _schema_errors()[kind] == ""


@pytest.mark.parametrize("name", sorted(SCHEMA_REFUSES))
def test_the_schema_check_refuses_what_cloud_init_refuses(name):
    assert "Cloud config schema errors" in _schema_errors()[name]


# A known-bad script checked in the same shellcheck run: the check can fail.
SHELLCHECK_REFUSES = {"refused: unquoted expansion": "#!/bin/bash\nrm -rf $1/tmp\n"}


@functools.cache
def _shellcheck_findings() -> dict[str, list[str]]:
    """Every kind's boot script and the known-bad one through one shellcheck run: the findings by
    kind, or why the kind could not be rendered."""
    rendered, failed = _rendered()
    scripts = {kind: files_of(text)[BOOT_SCRIPT_PATH] for kind, text in rendered.items()}
    return {**shellcheck_findings({**scripts, **SHELLCHECK_REFUSES}), **{k: [why] for k, why in failed.items()}}


@pytest.mark.parametrize("kind", sorted(ALL_USER_DATA))
def test_embedded_boot_script_passes_shellcheck(kind):
    assert _shellcheck_findings()[kind] == []


def test_the_shellcheck_check_refuses_what_shellcheck_refuses():
    [finding] = _shellcheck_findings()["refused: unquoted expansion"]
    assert "SC2086" in finding


def test_server_config_sets_issuers_keys_and_cloud_provider_flags():
    config = yaml.safe_load(files_of(render_k3s_server_cloud_init(settings()))[f"{K3S_CONFIG_DIR}/config.yaml"])
    api_args = config["kube-apiserver-arg"]
    issuers = [a.split("=", 1)[1] for a in api_args if a.startswith("service-account-issuer=")]
    assert issuers == [ISSUER, K3S_DEFAULT_SERVICE_ACCOUNT_ISSUER]  # ours signs, K3s's default still verifies
    assert f"service-account-jwks-uri={ISSUER}/keys.json" in api_args
    assert f"service-account-key-file={K3S_TLS_DIR}/service.key" in api_args
    assert f"service-account-signing-key-file={K3S_TLS_DIR}/service.key" in api_args
    assert config["disable-cloud-controller"] is True
    assert config["tls-san"] == ["k3s-api-0123.elb.us-east-1.amazonaws.com"]
    assert config["token-file"] == f"{K3S_CONFIG_DIR}/token" and "token" not in config
    assert config["etcd-s3"] is True and config["etcd-s3-bucket"] == "k3s-etcd-snapshots-abc"
    assert config["node-taint"] == ["CriticalAddonsOnly=true:NoExecute"]
    # Neither static config can start a cluster: only the boot script decides, on the bootstrap server.
    assert "cluster-init" not in config and "server" not in config


def test_standby_issuers_sit_between_active_and_default():
    config = yaml.safe_load(
        files_of(render_k3s_server_cloud_init(settings(extra_service_account_issuers=["https://standby.example.com"])))[
            f"{K3S_CONFIG_DIR}/config.yaml"
        ]
    )
    issuers = [a.split("=", 1)[1] for a in config["kube-apiserver-arg"] if a.startswith("service-account-issuer=")]
    assert issuers == [ISSUER, "https://standby.example.com", K3S_DEFAULT_SERVICE_ACCOUNT_ISSUER]


def test_agent_renderer_takes_what_karpenter_needs():
    files = files_of(agent_user_data())
    config = yaml.safe_load(files[f"{K3S_CONFIG_DIR}/config.yaml"])
    assert config["server"] == "https://k3s-api-0123.elb.us-east-1.amazonaws.com:6443"
    assert config["node-taint"] == ["karpenter.sh/unregistered:NoExecute"]
    assert config["node-label"] == ["karpenter.sh/nodepool=general"]
    assert config["kubelet-arg"] == ["cloud-provider=external", "max-pods=58"]
    script = files[BOOT_SCRIPT_PATH]
    assert "readonly TOKEN_PARAMETER=/k8s-platform/dev-k3s/k3s/agent-token" in script
    assert "readonly K3S_VERSION=v1.35.1+k3s1" in script and "readonly NODE_KIND=agent" in script


def test_no_secret_material_can_enter_user_data():
    """The renderers take parameter names and secret ids only; nothing key- or token-shaped is emitted."""
    for kind, render in ALL_USER_DATA.items():
        text = render()
        assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text, kind
        config = yaml.safe_load(files_of(text)[f"{K3S_CONFIG_DIR}/config.yaml"])
        assert not {"token", "agent-token", "datastore-endpoint"} & config.keys(), kind


# ------------------------------------------------------------------ running the boot script
FAKE_CURL = r"""#!/usr/bin/env bash
# Fake curl: IMDSv2, the server's /ping (answers iff $FAKE_CLUSTER_UP=1) and the install script.
out=""; url=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift 2 ;;
    -H|-X|--max-time) shift 2 ;;
    -*) shift ;;
    *) url="$1"; shift ;;
  esac
done
echo "curl $url" >>"$FAKE_LOG"
case "$url" in
  */latest/api/token) echo imds-token ;;
  */meta-data/instance-id) echo i-0123456789abcdef0 ;;
  */meta-data/placement/availability-zone) echo us-east-1a ;;
  */meta-data/local-hostname) echo ip-10-20-1-5.ec2.internal ;;
  */meta-data/instance-life-cycle) echo spot ;;
  */ping) [ "${FAKE_CLUSTER_UP:-0}" = 1 ] || exit 7 ;;
  https://truststore.pki.rds.amazonaws.com/*) cat "$FAKE_RDS_CA" >"$out" ;;
  */install.sh) printf '#!/bin/sh\necho "install $INSTALL_K3S_EXEC $INSTALL_K3S_VERSION" >>"$FAKE_LOG"\n' >"$out" ;;
  *) exit 22 ;;
esac
"""

FAKE_AWS = r"""#!/usr/bin/env bash
echo "aws $*" >>"$FAKE_LOG"
case "$1 $2" in
  "ssm get-parameter") echo "token-for-$7" ;;
  "secretsmanager get-secret-value") case "$6" in *:secret:rds!*) cat "$FAKE_DB_SECRET" ;; *) cat "$FAKE_PKI" ;; esac ;;
  "s3api list-objects-v2") echo "${FAKE_SNAPSHOT:-None}" ;;
  "elbv2 describe-target-health") [ "${FAKE_PEERS:-0}" != unreadable ] || exit 255; echo "${FAKE_PEERS:-0}" ;;
  *) exit 1 ;;
esac
"""

FAKE_LOGGER = '#!/usr/bin/env bash\necho "$(basename "$0") $*" >>"$FAKE_LOG"\n'


AL2023_CHRONY_SOURCES = "server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4\n"


def run_boot_script(
    tmp_path: Path,
    user_data: str,
    cluster_up: bool,
    snapshot: str = "None",
    peers: str = "0",
    expect_success: bool = True,
    chrony_conf: str = "driftfile /var/lib/chrony/drift\n",
    chrony_dropin: str | None = AL2023_CHRONY_SOURCES,
    db_secret: str = '{"username": "k3s", "password": "unused"}',
    rds_ca: str | None = None,
    script_args: tuple[str, ...] = (),
    attempts: int | None = None,
) -> tuple[Path, str]:
    """Run the rendered script with fakes on PATH and its directories moved under tmp_path (again, with
    `script_args`, on the same root: a rerun keeps what the first run wrote). `attempts` lowers the
    script's retry counts, for a failure path that would otherwise try 30 times."""
    root = tmp_path / "root"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in {
        "curl": FAKE_CURL,
        "aws": FAKE_AWS,
        "systemctl": FAKE_LOGGER,
        "k3s": FAKE_LOGGER,
        "sleep": "#!/bin/sh\nexit 0\n",
    }.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    # The script's python3 (stdlib only, as on AL2023) is an interpreter, not a version manager's shim
    # found first on PATH: a pyenv shim costs ~0.1 s a call, and the script calls python3 several times.
    python3 = bin_dir / "python3"
    if not python3.exists():
        python3.symlink_to("/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable)
    pki = tmp_path / "pki.json"
    pki.write_text(json.dumps({"server-ca.crt": "CERT", "etcd/peer-ca.key": "KEY", "service.key": "SAKEY"}))
    script = files_of(user_data)[BOOT_SCRIPT_PATH]
    script = script.replace(f"readonly K3S_CONFIG_DIR={K3S_CONFIG_DIR}", f"readonly K3S_CONFIG_DIR={root}/etc")
    script = script.replace(f"readonly K3S_TLS_DIR={K3S_TLS_DIR}", f"readonly K3S_TLS_DIR={root}/tls")
    script = script.replace(
        "readonly DATASTORE_CA_FILE=/etc/rancher/k3s/datastore-ca.pem", f"readonly DATASTORE_CA_FILE={root}/etc/ca.pem"
    )
    (root / "chrony.d").mkdir(parents=True, exist_ok=True)
    (root / "chrony.conf").write_text(chrony_conf)
    if chrony_dropin is not None:
        (root / "chrony.d/link-local.sources").write_text(chrony_dropin)
    script = script.replace("readonly CHRONY_CONF=/etc/chrony.conf", f"readonly CHRONY_CONF={root}/chrony.conf")
    script = script.replace("readonly CHRONY_CONF_DIR=/etc/chrony.d", f"readonly CHRONY_CONF_DIR={root}/chrony.d")
    assert str(root) in script.split("readonly CHRONY_CONF_DIR=")[1].split("\n")[0]
    if attempts is not None:
        assert "retry 30 " in script
        script = script.replace("retry 30 ", f"retry {attempts} ")
    (tmp_path / "boot.sh").write_text(script)
    log = tmp_path / "calls.log"
    (tmp_path / "db-secret.json").write_text(db_secret)
    (tmp_path / "rds-ca.pem").write_text(rds_ca if rds_ca is not None else rds_ca_bundle())
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(log),
        "FAKE_PKI": str(pki),
        "FAKE_CLUSTER_UP": "1" if cluster_up else "0",
        "FAKE_SNAPSHOT": snapshot,
        "FAKE_PEERS": peers,
        "FAKE_DB_SECRET": str(tmp_path / "db-secret.json"),
        "FAKE_RDS_CA": str(tmp_path / "rds-ca.pem"),
        "TMPDIR": str(tmp_path),
    }
    result = subprocess.run(
        ["bash", str(tmp_path / "boot.sh"), *script_args], env=env, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode == 0) == expect_success, result.stderr
    (tmp_path / "output.log").write_text(result.stdout + result.stderr)
    return root, log.read_text()


def rds_ca_bundle() -> str:
    """A real self-signed CA certificate standing in for the RDS regional bundle."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Amazon RDS us-east-1 Root CA ECC384 G1 (test)")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def role_config(root: Path) -> dict:
    return yaml.safe_load((root / "etc/config.yaml.d/20-role.yaml").read_text())


def test_bootstrap_server_initialises_a_new_cluster_with_the_minted_pki(tmp_path):
    root, calls = run_boot_script(tmp_path, render_k3s_server_cloud_init(settings("bootstrap")), cluster_up=False)
    assert role_config(root) == {"cluster-init": True}
    assert (root / "tls/etcd/peer-ca.key").read_text() == "KEY"
    assert (root / "tls/service.key").read_text() == "SAKEY"
    assert stat.S_IMODE((root / "tls/service.key").stat().st_mode) == 0o600
    assert (root / "etc/token").read_text().strip() == "token-for-/k8s-platform/dev-k3s/k3s/server-token"
    instance = yaml.safe_load((root / "etc/config.yaml.d/10-instance.yaml").read_text())
    assert instance["node-name"] == "ip-10-20-1-5.ec2.internal"
    assert instance["kubelet-arg+"] == ["provider-id=aws:///us-east-1a/i-0123456789abcdef0"]
    assert instance["node-label+"] == ["k8s-platform/capacity-type=spot"]
    assert "install server v1.35.1+k3s1" in calls and "systemctl enable --now k3s" in calls
    assert "--cluster-reset" not in calls  # nothing to restore in an empty bucket


def test_bootstrap_replacement_restores_the_newest_snapshot(tmp_path):
    root, calls = run_boot_script(
        tmp_path,
        render_k3s_server_cloud_init(settings("bootstrap")),
        cluster_up=False,
        snapshot="dev-k3s/etcd-snapshot-ip-10-20-1-5-1767225600",
    )
    assert role_config(root) == {"cluster-init": True}
    assert "k3s server --cluster-reset --cluster-reset-restore-path=etcd-snapshot-ip-10-20-1-5-1767225600" in calls


def test_bootstrap_server_joins_when_the_cluster_already_answers(tmp_path):
    root, calls = run_boot_script(tmp_path, render_k3s_server_cloud_init(settings("bootstrap")), cluster_up=True)
    assert role_config(root) == {"server": "https://k3s-api-0123.elb.us-east-1.amazonaws.com:6443"}
    assert "secretsmanager" not in calls and not (root / "tls/service.key").exists()


def test_bootstrap_server_joins_when_other_servers_are_healthy_but_the_nlb_does_not_answer_it(tmp_path):
    """A replaced bootstrap server whose /ping through the NLB fails (DNS/network hiccup at boot) must not
    start a second cluster next to healthy peers: it waits and joins."""
    root, calls = run_boot_script(
        tmp_path, render_k3s_server_cloud_init(settings("bootstrap")), cluster_up=False, peers="2", expect_success=False
    )
    assert "elbv2 describe-target-health" in calls and "Target.Id!='i-0123456789abcdef0'" in calls
    # It kept waiting for the cluster to answer (and gave up here, where the cluster never comes back).
    assert calls.count("/ping") > 6
    assert not (root / "etc/config.yaml.d/20-role.yaml").exists()
    assert "secretsmanager" not in calls and "install server" not in calls and "systemctl" not in calls


def test_bootstrap_server_fails_closed_when_target_health_is_unreadable(tmp_path):
    root, calls = run_boot_script(
        tmp_path,
        render_k3s_server_cloud_init(settings("bootstrap")),
        cluster_up=False,
        peers="unreadable",
        expect_success=False,
    )
    assert calls.count("elbv2 describe-target-health") == 30
    assert not (root / "etc/config.yaml.d/20-role.yaml").exists()
    assert "secretsmanager" not in calls and "install server" not in calls and "systemctl" not in calls


def test_bootstrap_renderer_requires_the_target_group():
    with pytest.raises(ValueError, match="api_target_group_arn"):
        render_k3s_server_cloud_init(settings("bootstrap", api_target_group_arn=""))
    assert "API_TARGET_GROUP_ARN=''" in render_k3s_server_cloud_init(settings("join", api_target_group_arn=""))


def test_join_server_never_initialises_and_never_reads_the_pki(tmp_path):
    root, calls = run_boot_script(tmp_path, render_k3s_server_cloud_init(settings("join")), cluster_up=True)
    assert role_config(root) == {"server": "https://k3s-api-0123.elb.us-east-1.amazonaws.com:6443"}
    assert "secretsmanager" not in calls
    assert (root / "etc/agent-token").read_text().strip() == "token-for-/k8s-platform/dev-k3s/k3s/agent-token"


def test_agent_fetches_only_its_token_and_starts_the_agent(tmp_path):
    root, calls = run_boot_script(tmp_path, agent_user_data(), cluster_up=False)
    assert not (root / "etc/config.yaml.d/20-role.yaml").exists()
    assert [c for c in calls.splitlines() if c.startswith("aws ")] == [
        "aws ssm get-parameter --region us-east-1 --with-decryption --name /k8s-platform/dev-k3s/k3s/agent-token "
        "--query Parameter.Value --output text"
    ]
    assert "install agent v1.35.1+k3s1" in calls and "systemctl enable --now k3s-agent" in calls


def test_time_sync_already_on_amazon_time_sync_is_left_alone(tmp_path):
    root, calls = run_boot_script(tmp_path, agent_user_data(), cluster_up=False)
    assert (root / "chrony.conf").read_text() == "driftfile /var/lib/chrony/drift\n"
    assert "systemctl restart chronyd" not in calls


def test_time_sync_is_pointed_at_amazon_time_sync_when_missing(tmp_path):
    root, calls = run_boot_script(
        tmp_path, agent_user_data(), cluster_up=False, chrony_dropin="pool 2.amazon.pool.ntp.org iburst\n"
    )
    assert (root / "chrony.conf").read_text().splitlines()[
        -1
    ] == "server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4"
    assert "systemctl restart chronyd" in calls
    # A look-alike address does not count as the Time Sync endpoint.
    (tmp_path / "again").mkdir()
    root, calls = run_boot_script(
        tmp_path / "again", agent_user_data(), cluster_up=False, chrony_dropin="server 169.254.169.1234 iburst\n"
    )
    assert "systemctl restart chronyd" in calls
