"""Upstream contracts of what K3s nodes and the pod-identity webhook are told to run.

Oracles (read in place from ../shared/reference/upstream, see tests/upstream_reference.py):
- k3s-server-flags-v<minor>.txt / k3s-agent-flags-v<minor>.txt: K3s's CLI reference (config-file
  keys are the flag names); k3s-disable-items.txt: valid `disable` items; k3s-releases.txt: tags.
- pod-identity-webhook-flags-v0.6.17.txt: the webhook's flags and which port serves which endpoint.

Every K3s config key in every rendered user-data of the dev plan (servers, ASG agents, the Karpenter
EC2NodeClass), every key the boot script writes into config.yaml.d and every flag it passes to
`k3s`, must be a flag of the pinned K3s minor: K3s refuses to start on an unknown config key.
"""

from __future__ import annotations

import base64
import re
from importlib import resources

import pytest

from components.addons import pod_identity_webhook as webhook
from components.config.k3s import K3sConfig
from components.k3s.user_data import K3S_CONFIG_DIR
from programs.offline import reveal
from tests import fast_yaml
from tests.conftest import shipped_config, variants_run
from tests.upstream_reference import name_list, upstream_file

CONFIG_PATH = f"{K3S_CONFIG_DIR}/config.yaml"


# ------------------------------------------------------------------------------------ helpers
def minor(version: str) -> str:
    return ".".join(version.lstrip("v").split(".")[:2])


# Pinned minors checked against the previous minor's CLI reference (none of their own at hand). K3s's
# flag deprecation policy (docs.k3s.io/reference/flag-deprecation): a flag deprecated in minor N keeps
# working (with a warning) through N and turns fatal in N+1, so a flag documented, not deprecated, in
# 1.35 still works in 1.36; the v1.36.0+k3s1 release notes remove none.
REFERENCE_OF_MINOR = {"1.36": "1.35"}


def reference_minor(version: str) -> str:
    return REFERENCE_OF_MINOR.get(minor(version), minor(version))


def k3s_flags(kind: str, version: str) -> set[str]:
    """Known flags of a K3s minor for a node kind; agent flags are valid on servers too."""
    ref = reference_minor(version)
    agent = name_list(f"k3s-agent-flags-v{ref}.txt")
    return agent | name_list(f"k3s-server-flags-v{ref}.txt") if kind == "server" else agent


def unknown_keys(config: dict, known: set[str]) -> list[str]:
    # `key+:` (config.yaml.d drop-ins) appends to `key`; the flag is the same.
    return sorted(k for k in config if k.rstrip("+") not in known)


def k3s_config_of(user_data: str) -> dict:
    if not user_data.startswith("#cloud-config"):
        user_data = base64.b64decode(user_data).decode()
    doc = fast_yaml.load(user_data)
    (config,) = [f["content"] for f in doc["write_files"] if f["path"] == CONFIG_PATH]
    return fast_yaml.load(config)


def rendered_node_configs(run) -> dict[str, tuple[str, dict]]:
    """name -> (node kind, K3s config.yaml) for every K3s node kind the plan launches."""
    found: dict[str, tuple[str, dict]] = {}
    for r in run.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        kind = "server" if "server" in r.name else "agent"
        found[r.name] = (kind, k3s_config_of(reveal(r.inputs)["userData"]))
    for r in run.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        found[r.name] = ("agent", k3s_config_of(reveal(r.inputs)["spec"]["userData"]))
    return found


def boot_script_keys() -> dict[str, set[str]]:
    """Config keys the boot script writes into config.yaml.d, and the flags it passes to `k3s server`."""
    script = resources.files("components.k3s").joinpath("node_boot.sh").read_text()
    every_node: set[str] = set()  # the instance drop-in (heredoc) is written on servers and agents
    for heredoc in re.findall(r"<<EOF\n(.*?)\nEOF", script, flags=re.S):
        every_node |= {m.group(1) for m in re.finditer(r"^([a-z0-9-]+)\+?:", heredoc, flags=re.M)}
    server_role = set(re.findall(r'echo "([a-z0-9-]+): [^"]*" >"\$\{dropins\}', script))
    cli = {f for line in re.findall(r"\bk3s server ([^\n]*)", script) for f in re.findall(r"--([a-z0-9-]+)", line)}
    return {"drop-in": every_node | server_role, "every-node": every_node, "cli": cli}


# ------------------------------------------------------------------------------------- K3s
def test_k3s_pins_are_published_releases_of_a_minor_with_a_flag_reference():
    releases = {}
    for line in upstream_file("k3s-releases.txt").read_text().splitlines():
        if line.startswith("v"):
            tag, _date, source = (p.strip() for p in line.split("|", 2))
            releases[tag] = source
    pins = {
        "default": K3sConfig().version,
        "Pulumi.dev.yaml": shipped_config("dev")["k8s-platform:cluster"]["k3s"]["version"],
    }
    for where, pin in pins.items():
        assert pin in releases and not releases[pin].startswith("NOT FOUND"), f"{where}: {pin} is no known K3s release"
        # The flag contract below needs the pinned minor's CLI reference (or the previous minor's).
        upstream_file(f"k3s-server-flags-v{reference_minor(pin)}.txt")
    assert minor(pins["default"]) == "1.36", "K3s 1.36 is the default for new stacks"


def test_dev_plan_renders_every_k3s_node_kind(dev_run):
    kinds = sorted(kind for kind, _ in rendered_node_configs(dev_run).values())
    assert kinds.count("server") >= 1 and kinds.count("agent") >= 2, kinds  # ASG agents + Karpenter node class


def test_every_k3s_config_key_in_every_user_data_is_a_known_flag(dev_run):
    version = dev_run.config.cluster.k3s.version
    for name, (kind, config) in rendered_node_configs(dev_run).items():
        assert unknown_keys(config, k3s_flags(kind, version)) == [], f"{name} ({kind})"


def test_boot_script_keys_and_flags_are_known_server_flags(dev_run):
    known = k3s_flags("server", dev_run.config.cluster.k3s.version)
    found = boot_script_keys()
    assert {"node-name", "kubelet-arg", "node-label", "cluster-init", "server"} <= found["drop-in"]
    assert "cluster-reset" in found["cli"]
    assert sorted((found["drop-in"] | found["cli"]) - known) == []
    # Agents get the instance drop-in too: its keys must be agent flags.
    assert sorted(found["every-node"] - k3s_flags("agent", dev_run.config.cluster.k3s.version)) == []
    assert {"cluster-reset", "cluster-reset-restore-path"} <= found["cli"]


# The dev stack on the default K3s release (1.36) with the embedded registry mirror on: every key a
# 1.36 node is told, the optional ones included (tests/test_k3s_registry_mirror.py shares this run).
DEFAULT_RELEASE_WITH_MIRROR = {
    "cluster.k3s.version": K3sConfig().version,
    "cluster.k3s.embeddedRegistry": {"enabled": True},
}


@pytest.fixture(scope="module")
def default_version_run():
    return variants_run("dev", DEFAULT_RELEASE_WITH_MIRROR)


def test_every_k3s_config_key_on_the_default_release_is_a_known_flag(default_version_run):
    version = default_version_run.config.cluster.k3s.version
    assert minor(version) == "1.36"
    configs = rendered_node_configs(default_version_run)
    assert any(c.get("embedded-registry") is True for kind, c in configs.values() if kind == "server")
    for name, (kind, config) in configs.items():
        assert unknown_keys(config, k3s_flags(kind, version)) == [], f"{name} ({kind})"
    assert "embedded-registry" in k3s_flags("server", version)
    assert "embedded-registry" not in k3s_flags("agent", version)  # a server flag: servers enable it cluster-wide


def test_disable_items_are_valid(dev_run):
    valid = name_list("k3s-disable-items.txt")
    for name, (_kind, config) in rendered_node_configs(dev_run).items():
        assert set(config.get("disable", [])) <= valid, name


def test_the_checker_catches_an_unknown_key(dev_run):
    known = k3s_flags("server", dev_run.config.cluster.k3s.version)
    assert unknown_keys({"etcd-s3-retention": 12, "etcd-s3-retension": 12, "kubelet-arg+": []}, known) == [
        "etcd-s3-retension"
    ]
    assert "disable-network-policy" in known and "cluster-reset" in known
    assert "etcd-s3" not in k3s_flags("agent", dev_run.config.cluster.k3s.version)


# ----------------------------------------------------------------------- pod-identity webhook
def webhook_flags(command: list[str]) -> dict[str, str | None]:
    flags = {}
    for arg in command[1:]:
        assert arg.startswith("--"), arg
        name, _, value = arg[2:].partition("=")
        flags[name] = value or None
    return flags


def endpoint_ports() -> dict[str, tuple[str, str]]:
    """`/path` -> (flag naming its port, scheme), from the reference's `HTTP endpoints` line."""
    (line,) = [
        ln
        for ln in upstream_file("pod-identity-webhook-flags-v0.6.17.txt").read_text().splitlines()
        if "HTTP endpoints" in ln
    ]
    served: dict[str, tuple[str, str]] = {}
    for clause in line.split(":", 1)[1].split(";"):
        match = re.match(r"(.*?) on --([a-z-]+)(.*)", clause.strip())
        if match:  # e.g. "/mutate and /healthz on --port (TLS)"
            for path in re.findall(r"/\w+", match.group(1)):
                served[path] = (match.group(2), "HTTPS" if "TLS" in match.group(3) else "HTTP")
    return served


WEBHOOK_VERSION = "v0.6.17"  # the version of the reference flag list


def test_webhook_image_is_the_version_of_the_reference():
    # `<repository>:<tag>@sha256:<digest>`: the tag names the version, the digest pins its bytes.
    assert WEBHOOK_VERSION == webhook.WEBHOOK_IMAGE.split("@", 1)[0].rsplit(":", 1)[1]


def test_every_webhook_flag_exists_in_the_pinned_version():
    flags = webhook_flags(webhook.container_command("us-east-1"))
    assert sorted(set(flags) - name_list(f"pod-identity-webhook-flags-{WEBHOOK_VERSION}.txt")) == []


@pytest.mark.parametrize("probe_name", ["readinessProbe", "livenessProbe"])
def test_webhook_probes_hit_an_endpoint_on_the_port_and_scheme_that_serves_it(probe_name):
    served = endpoint_ports()
    assert served["/healthz"] == ("port", "HTTPS") and served["/metrics"] == ("metrics-port", "HTTP")
    flags = webhook_flags(webhook.container_command("us-east-1"))
    container = webhook.pod_spec("us-east-1", "certs", {}, [])["containers"][0]
    get = container[probe_name]["httpGet"]
    port_flag, scheme = served[get["path"]]
    assert int(get["port"]) == int(flags[port_flag])
    assert get.get("scheme", "HTTP") == scheme
    assert int(flags[port_flag]) in {p["containerPort"] for p in container["ports"]}


def test_dev_plan_webhook_probes_use_the_tls_serving_port(dev_run):
    (deployment,) = [r for r in dev_run.of_type("kubernetes:apps/v1:Deployment") if "webhook" in r.name]
    container = reveal(deployment.inputs)["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": webhook.CONTAINER_PORT, "scheme": "HTTPS"}


# ------------------------------------------------------------ defects the oracles exposed (K3s)
def test_every_k3s_node_kind_runs_its_kubelet_with_the_external_cloud_provider(dev_run):
    # K3s adds --cloud-provider=external only while its embedded CCM runs (disabled here for the AWS one).
    configs = rendered_node_configs(dev_run)
    servers = [c for kind, c in configs.values() if kind == "server"]
    assert servers and all(c["disable-cloud-controller"] is True for c in servers)
    for name, (_kind, config) in configs.items():
        assert "cloud-provider=external" in config.get("kubelet-arg", []), name


def test_s3_snapshot_retention_is_set_explicitly(dev_run):
    retention = dev_run.config.cluster.k3s.snapshots.retention
    for name, (kind, config) in rendered_node_configs(dev_run).items():
        if kind == "server":
            # Default 5 since v1.34.0+k3s1, independent of etcd-snapshot-retention up to v1.35.1.
            assert config["etcd-s3-retention"] == config["etcd-snapshot-retention"] == retention, name
