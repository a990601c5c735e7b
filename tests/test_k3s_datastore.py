"""`cluster.k3s.datastore`: K3s on RDS PostgreSQL or Aurora PostgreSQL Serverless v2.

One offline run per variant (module fixtures): a dev stack on Aurora Serverless v2 with two servers,
and a dev stack on RDS PostgreSQL tightened to prod's safeguards. Asserted: what AWS would build
(encrypted, private, TLS-only, managed secret, backups), what the servers are told (no etcd, no
cluster-init, no password or connection string in any user-data), what the policy pack says, and
what the boot script does with the managed secret.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import stat
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from components.config import ConfigError, parse_stack_config
from components.k3s.datastore import (
    CA_BUNDLE_PATH,
    DatastoreConnection,
    rds_ca_bundle_url,
)
from components.k3s.user_data import BOOT_SCRIPT_PATH, K3S_CONFIG_DIR, render_k3s_server_cloud_init
from policy.offline_runner import CONFIG_DIR, evaluate, load_pack_config, reconcile
from programs.mock_resources import MockContext, arn_for, short_hash
from programs.offline import reveal, run_offline
from programs.plan import build_plan, resources_from_run
from programs.platformctl.policy_gate import apply_policies
from tests.conftest import shipped_config
from tests.test_k3s_cluster import minted_secrets
from tests.test_k3s_user_data import DATASTORE, files_of, rds_ca_bundle, run_boot_script, settings

AURORA = {"kind": "aurora-serverless", "minCapacity": 0.5, "maxCapacity": 2}
POSTGRES = {"kind": "postgres", "instanceClass": "db.t4g.small", "storageGiB": 30}
PROD_SAFEGUARDS = {
    "protectStatefulResources": True,
    "highlyAvailableDatastore": True,
    "datastoreBackupRetentionDays": 30,
}
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_INSTANCE = "aws:rds/instance:Instance"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
# A connection string that carries credentials (a template like `{user}:{word}@` does not).
CREDENTIAL_URL = re.compile(r"postgres(ql)?://[^\s{}$/:@]+:[^\s{}$/@]+@")


def dev_on(datastore: dict, *, servers: int = 1, **top: object) -> dict:
    """The shipped dev stack on another datastore (its etcd snapshot block removed, as required)."""
    cfg = copy.deepcopy(shipped_config("dev"))
    k3s = cfg["k8s-platform:cluster"]["k3s"]
    k3s.pop("snapshots")
    k3s["datastore"] = datastore
    k3s["servers"]["count"] = servers
    for key, value in top.items():
        cfg[f"k8s-platform:{key}"] = value
    return cfg


@pytest.fixture(scope="module")
def aurora_run():
    return run_offline("dev", dev_on(AURORA, servers=2))


@pytest.fixture(scope="module")
def postgres_run():
    return run_offline("dev", dev_on(POSTGRES, servers=2, safeguards=PROD_SAFEGUARDS))


def user_data_of(run) -> dict[str, str]:
    """Every K3s user-data of the plan (launch templates and Karpenter node classes), decoded."""
    found = {lt.name: base64.b64decode(reveal(lt.inputs)["userData"]).decode() for lt in run.of_type(LT)}
    for nc in run.of_type(NODE_CLASS):
        found[nc.name] = reveal(nc.inputs)["spec"]["userData"]
    return found


def k3s_config(user_data: str) -> dict:
    return yaml.safe_load(files_of(user_data)[f"{K3S_CONFIG_DIR}/config.yaml"])


def boot_settings(user_data: str) -> dict[str, str]:
    script = files_of(user_data)[BOOT_SCRIPT_PATH]
    return dict(re.findall(r"^readonly ([A-Z_]+)=(\S*)$", script, flags=re.M))


def mandatory(run) -> list[str]:
    plan = apply_policies(build_plan(run), run, "dev")
    return [f"{v['policy']}: {v['message']}" for v in plan["policy"]["violations"] if v["level"] == "mandatory"]


def _key_arn(run, name: str) -> str:
    ctx = MockContext(region="us-east-1", account_id="111111111111", stack="dev")
    return arn_for(ctx, "aws:kms/key:Key", name, "", {})


# --------------------------------------------------------------------------------- acceptance
def test_dev_on_aurora_serverless_previews_clean_with_no_etcd_and_nothing_secret_in_user_data(aurora_run):
    assert mandatory(aurora_run) == []
    (cluster,) = aurora_run.of_type(RDS_CLUSTER)
    c = reveal(cluster.inputs)
    assert c["engine"] == "aurora-postgresql" and c["engineMode"] == "provisioned"
    assert c["serverlessv2ScalingConfiguration"] == {"minCapacity": 0.5, "maxCapacity": 2}
    key = _key_arn(aurora_run, "k3s-datastore-key")
    assert c["storageEncrypted"] is True and c["kmsKeyId"] == key
    # The secret is RDS's: managed, under the stack's key; no password input anywhere.
    assert c["manageMasterUserPassword"] is True and c["masterUserSecretKmsKeyId"] == key
    for db in (*aurora_run.of_type(RDS_CLUSTER), *aurora_run.of_type(CLUSTER_INSTANCE)):
        assert not {"masterPassword", "masterPasswordWo", "password"} & db.inputs.keys(), db.name
    passwords = aurora_run.of_type("random:index/randomPassword:RandomPassword")
    assert sorted(r.name for r in passwords) == ["k3s-agent-token", "k3s-server-token"]  # none for the database
    instances = aurora_run.of_type(CLUSTER_INSTANCE)
    assert instances and all(i.inputs["instanceClass"] == "db.serverless" for i in instances)
    assert all(i.inputs["publiclyAccessible"] is False for i in instances)
    # No etcd: no snapshot bucket, no exported bucket name.
    assert [b.name for b in aurora_run.of_type("aws:s3/bucket:Bucket") if "etcd" in b.name] == []
    assert "etcdSnapshotBucket" not in aurora_run.outputs
    secrets = minted_secrets(aurora_run)
    user_data = user_data_of(aurora_run)
    assert {"k3s-server-bootstrap", "k3s-server-join", "k3s-agent"} <= user_data.keys()
    for name, text in user_data.items():
        assert "cluster-init" not in text, name
        assert not CREDENTIAL_URL.search(text), name
        assert "datastore-endpoint" not in k3s_config(text), name
        assert not [s for s in secrets if s in text], name


def test_dev_on_rds_postgres_with_prod_safeguards_previews_clean(postgres_run):
    assert mandatory(postgres_run) == []
    (db,) = postgres_run.of_type(RDS_INSTANCE)
    d = reveal(db.inputs)
    assert d["engine"] == "postgres" and d["engineVersion"] == "17" and d["autoMinorVersionUpgrade"] is True
    assert d["instanceClass"] == "db.t4g.small" and d["allocatedStorage"] == 30 and d["storageType"] == "gp3"
    assert d["multiAz"] is True  # highlyAvailableDatastore
    assert d["storageEncrypted"] is True and d["kmsKeyId"] == _key_arn(postgres_run, "k3s-datastore-key")
    assert d["manageMasterUserPassword"] is True and "password" not in d
    assert d["publiclyAccessible"] is False
    assert d["backupRetentionPeriod"] == 30 and d["copyTagsToSnapshot"] is True
    # Protected: deletion protection, `protect`, and a final snapshot if it is ever destroyed.
    assert d["deletionProtection"] is True and db.protect is True
    # A suffix per cluster: a second destroy of a stack of the same name would meet the first one's snapshot.
    assert d["skipFinalSnapshot"] is False
    assert re.fullmatch(r"dev-k3s-k3s-datastore-final-[0-9a-f]{8}", d["finalSnapshotIdentifier"])
    # Changes apply at `pulumi up` and a major engine upgrade may run (RDS refuses it otherwise).
    assert d["applyImmediately"] is True and d["allowMajorVersionUpgrade"] is True
    assert postgres_run.one("aws:kms/key:Key", "k3s-datastore-key").protect is True
    for text in user_data_of(postgres_run).values():
        assert "cluster-init" not in text and not CREDENTIAL_URL.search(text)
    # Under prod's pack config the database resources pass every database and protection rule.
    prod = reconcile(load_pack_config(CONFIG_DIR / "prod.json"))
    rds_urns = {r.urn for r in postgres_run.resources if r.type.startswith("aws:rds/")}
    hits = [
        v for v in evaluate(resources_from_run(postgres_run), prod) if v.policy.startswith("rds-") or v.urn in rds_urns
    ]
    assert hits == []


# ------------------------------------------------------------------------------ what AWS gets
def test_aurora_writer_and_reader_spread_over_zones_only_when_ha_is_wanted(aurora_run, postgres_run):
    # dev: one instance, no Multi-AZ, short backups, nothing protected (the environment's safeguards).
    (only,) = aurora_run.of_type(CLUSTER_INSTANCE)
    assert only.protect is False and only.inputs["availabilityZone"] == "us-east-1a"
    c = aurora_run.one(RDS_CLUSTER).inputs
    assert c["backupRetentionPeriod"] == 1 and c["deletionProtection"] is False and c["skipFinalSnapshot"] is True
    ha = run_offline("dev", dev_on(AURORA, servers=2, safeguards=PROD_SAFEGUARDS))
    # By instance name (writer first): registration order under mocks is not the plan's order.
    zones = [i.inputs["availabilityZone"] for i in sorted(ha.of_type(CLUSTER_INSTANCE), key=lambda i: i.name)]
    assert zones == ["us-east-1a", "us-east-1b"] and all(i.protect for i in ha.of_type(CLUSTER_INSTANCE))
    assert ha.one(RDS_CLUSTER).protect is True and ha.one(RDS_CLUSTER).inputs["deletionProtection"] is True


def test_tls_is_required_by_the_parameter_group_the_database_uses(aurora_run, postgres_run):
    for run, group_type, prop, family in (
        (aurora_run, "aws:rds/clusterParameterGroup:ClusterParameterGroup", "dbClusterParameterGroupName", "17"),
        (postgres_run, "aws:rds/parameterGroup:ParameterGroup", "parameterGroupName", "17"),
    ):
        (group,) = run.of_type(group_type)
        params = {p["name"]: p["value"] for p in group.inputs["parameters"]}
        assert params == {"rds.force_ssl": "1", "ssl_min_protocol_version": "TLSv1.2"}
        assert group.inputs["family"].endswith(family)
        (db,) = [*run.of_type(RDS_CLUSTER), *run.of_type(RDS_INSTANCE)]
        assert db.inputs[prop] == group.inputs["name"]


def test_postgres_is_reachable_only_from_the_server_security_group(aurora_run):
    sgs = {sg.name: sg for sg in aurora_run.of_type("aws:ec2/securityGroup:SecurityGroup")}
    datastore_sg, servers_sg = sgs["k3s-datastore"], sgs["k3s-servers"]
    sg_id = {name: f"sg-{_sg_hash(name)}" for name in sgs}
    rules = [
        r
        for t in (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "aws:ec2/securityGroupRule:SecurityGroupRule",
        )
        for r in aurora_run.of_type(t)
        if r.inputs.get("securityGroupId") == sg_id["k3s-datastore"]
    ]
    assert len(rules) == 1
    (rule,) = rules
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 5432, 5432)
    assert rule.inputs["referencedSecurityGroupId"] == sg_id["k3s-servers"] and "cidrIpv4" not in rule.inputs
    assert [
        r
        for r in aurora_run.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if r.inputs.get("securityGroupId") == sg_id["k3s-datastore"]
    ] == []
    assert "ingress" not in datastore_sg.inputs and servers_sg is not None
    (db,) = aurora_run.of_type(RDS_CLUSTER)
    assert db.inputs["vpcSecurityGroupIds"] == [sg_id["k3s-datastore"]]


def _sg_hash(name: str) -> str:
    return short_hash("dev", "aws:ec2/securityGroup:SecurityGroup", name)


def test_the_server_role_reads_only_the_managed_secret_through_secrets_manager(aurora_run):
    secret_arn = aurora_run.one(RDS_CLUSTER).inputs.get("masterUserSecrets") or None
    access = json.loads(
        reveal(aurora_run.one("aws:iam/rolePolicy:RolePolicy", "k3s-datastore-server-access").inputs)["policy"]
    )
    (read, decrypt) = access["Statement"]
    assert read["Action"] == "secretsmanager:GetSecretValue"
    assert re.fullmatch(
        r"arn:aws:secretsmanager:us-east-1:111111111111:secret:rds!cluster-[0-9a-f-]{36}-\w{6}", read["Resource"]
    )
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == _key_arn(aurora_run, "k3s-datastore-key")
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": ["secretsmanager.us-east-1.amazonaws.com"]}}
    assert secret_arn is None  # the ARN is RDS's output, never a Pulumi input
    # The role's main policy lost its etcd grants (snapshots, the cluster-init peer check) ...
    server = reveal(aurora_run.one("aws:iam/rolePolicy:RolePolicy", "k3s-server").inputs)["policy"]
    assert "s3:" not in server and "DescribeTargetHealth" not in server
    # ... the key lets the server role only decrypt, only through Secrets Manager; agents get nothing.
    key_policy = json.loads(aurora_run.one("aws:kms/key:Key", "k3s-datastore-key").inputs["policy"])
    (grant,) = [s for s in key_policy["Statement"] if s.get("Sid") == "ServersReadTheDatastoreSecret"]
    assert grant["Principal"] == {"AWS": "arn:aws:iam::111111111111:role/dev-k3s-k3s-server"}
    assert grant["Action"] == "kms:Decrypt" and "secretsmanager" in json.dumps(grant["Condition"])
    agent = reveal(aurora_run.one("aws:iam/rolePolicy:RolePolicy", "k3s-agent").inputs)["policy"]
    assert "rds!" not in agent and _key_arn(aurora_run, "k3s-datastore-key") not in agent


def test_every_server_is_told_where_the_datastore_is_and_nothing_of_etcd(aurora_run):
    cluster = aurora_run.one(RDS_CLUSTER)
    access = json.loads(
        reveal(aurora_run.one("aws:iam/rolePolicy:RolePolicy", "k3s-datastore-server-access").inputs)["policy"]
    )
    secret_arn = access["Statement"][0]["Resource"]
    for role in ("bootstrap", "join"):
        text = user_data_of(aurora_run)[f"k3s-server-{role}"]
        config = k3s_config(text)
        assert config["datastore-cafile"] == CA_BUNDLE_PATH  # flag names: tests/test_upstream_contracts_k3s.py
        assert not [k for k in config if k.startswith("etcd-")], role
        boot = boot_settings(text)
        assert boot["DATASTORE_SECRET_ARN"] == f"'{secret_arn}'"  # shlex-quoted: it holds a `!`
        assert boot["DATASTORE_HOST"].startswith(f"{cluster.inputs['clusterIdentifier']}.cluster-")
        assert boot["DATASTORE_CA_URL"] == rds_ca_bundle_url("us-east-1")
        assert not {"SERVER_ROLE", "SNAPSHOT_BUCKET", "API_TARGET_GROUP_ARN"} & boot.keys()
        assert "/etc/systemd/system/k3s-datastore-refresh.timer" in files_of(text)
    assert len(user_data_of(aurora_run)["k3s-server-bootstrap"].encode()) < 16 * 1024  # EC2's user-data limit


# ---------------------------------------------------------------------------- the boot script
DB_LOGIN = {"username": "k3s", "password": "p@ss:w/rd%&?#x"}


def datastore_boot(tmp_path, role="bootstrap", **kw):
    return run_boot_script(
        tmp_path,
        render_k3s_server_cloud_init(settings(role, datastore=DATASTORE)),
        cluster_up=False,
        db_secret=json.dumps(DB_LOGIN),
        **kw,
    )


@pytest.mark.parametrize("role", ["bootstrap", "join"])
def test_servers_assemble_the_endpoint_from_the_managed_secret_into_a_0600_file(tmp_path, role):
    root, calls = datastore_boot(tmp_path, role)
    dropin = root / "etc/config.yaml.d/30-datastore.yaml"
    assert stat.S_IMODE(dropin.stat().st_mode) == 0o600
    url = yaml.safe_load(dropin.read_text())["datastore-endpoint"]
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == ("postgres", DATASTORE.host, 5432, "/k3s")
    assert parts.query == "sslmode=verify-full"
    assert (unquote(parts.username), unquote(parts.password)) == (DB_LOGIN["username"], DB_LOGIN["password"])
    assert DB_LOGIN["password"] not in url  # URL-encoded
    # The password went nowhere else: not into argv (the fakes log every call), stdout or stderr.
    output = (tmp_path / "output.log").read_text()
    assert "p@ss" not in calls and "p%40ss" not in calls and "p@ss" not in output and "p%40ss" not in output
    assert "secret-id arn:aws:secretsmanager:us-east-1:111111111111:secret:rds!cluster-" in calls
    assert "curl https://truststore.pki.rds.amazonaws.com/us-east-1/us-east-1-bundle.pem" in calls
    assert "BEGIN CERTIFICATE" in (root / "etc/ca.pem").read_text()
    # No etcd: neither cluster-init nor a join, on either server; each places the minted PKI.
    assert not (root / "etc/config.yaml.d/20-role.yaml").exists() and "/ping" not in calls
    assert (root / "tls/service.key").read_text() == "SAKEY"
    assert "install server v1.35.1+k3s1" in calls and "systemctl enable --now k3s-datastore-refresh.timer" in calls


def test_a_server_without_a_valid_ca_bundle_does_not_start(tmp_path):
    root, calls = datastore_boot(tmp_path, rds_ca="<html>not a bundle</html>", expect_success=False, attempts=2)
    assert not (root / "etc/ca.pem").exists() and "install server" not in calls
    assert calls.count("curl https://truststore.pki.rds.amazonaws.com/") == 2  # retried, then gave up


def test_the_refresh_restarts_k3s_only_when_the_password_or_the_ca_bundle_changed(tmp_path):
    user_data = render_k3s_server_cloud_init(settings("bootstrap", datastore=DATASTORE))
    login, bundle = json.dumps(DB_LOGIN), rds_ca_bundle()

    def boot(*args, secret=login, ca=bundle):
        return run_boot_script(tmp_path, user_data, cluster_up=False, db_secret=secret, rds_ca=ca, script_args=args)

    boot()
    _, calls = boot("refresh-datastore")
    assert calls.count("systemctl restart k3s") == 0 and calls.count("rds!cluster-") == 2  # boot + refresh
    root, calls = boot("refresh-datastore", secret=json.dumps({**DB_LOGIN, "password": "rotated-by-rds"}))
    assert calls.count("systemctl restart k3s") == 1 and calls.count("install server") == 1  # only the first boot
    url = yaml.safe_load((root / "etc/config.yaml.d/30-datastore.yaml").read_text())["datastore-endpoint"]
    assert unquote(urlsplit(url).password) == "rotated-by-rds"
    _, calls = boot(
        "refresh-datastore", secret=json.dumps({**DB_LOGIN, "password": "rotated-by-rds"}), ca=rds_ca_bundle()
    )
    assert calls.count("systemctl restart k3s") == 2  # RDS published a new CA
    # An unreadable bundle keeps the current one (and the server keeps running on it).
    _, calls = boot("refresh-datastore", secret=json.dumps({**DB_LOGIN, "password": "rotated-by-rds"}), ca="junk")
    assert calls.count("systemctl restart k3s") == 2 and "BEGIN CERTIFICATE" in (root / "etc/ca.pem").read_text()


def test_embedded_etcd_user_data_is_unchanged_by_the_datastore_option():
    """The datastore parts are spliced in only for external-datastore servers."""
    etcd = files_of(render_k3s_server_cloud_init(settings("bootstrap")))
    assert "cluster-init: true" in etcd[BOOT_SCRIPT_PATH] and "DATASTORE" not in etcd[BOOT_SCRIPT_PATH]
    assert "@DATASTORE" not in etcd[BOOT_SCRIPT_PATH] and "@ETCD" not in etcd[BOOT_SCRIPT_PATH]
    assert not [p for p in etcd if "datastore" in p]
    external = files_of(render_k3s_server_cloud_init(settings("bootstrap", datastore=DATASTORE)))
    assert "@DATASTORE" not in external[BOOT_SCRIPT_PATH] and "@ETCD" not in external[BOOT_SCRIPT_PATH]


# --------------------------------------------------------------------------------------- config
def problems(cfg: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(cfg)
    return err.value.problems


def prod_k3s(datastore: dict, servers: int) -> dict:
    cfg = dev_on(datastore, servers=servers)
    cfg["k8s-platform:environment"] = "prod"
    return cfg


def test_external_datastores_take_any_server_count_outside_prod():
    for count in (1, 2, 4):
        parse_stack_config(dev_on(POSTGRES, servers=count))


@pytest.mark.parametrize(
    "cfg,key,says",
    [
        (dev_on(POSTGRES, servers=8), "cluster.k3s.servers.count", "use 1-7"),
        (prod_k3s(POSTGRES, 1), "cluster.k3s.servers.count", "prod needs at least 2 servers"),
        (prod_k3s({**AURORA, "instances": 1}, 3), "cluster.k3s.datastore.instances", "at least 2 Aurora instances"),
        (dev_on({**AURORA, "minCapacity": 0}), "cluster.k3s.datastore.minCapacity", "auto-pause"),
        (dev_on({**AURORA, "minCapacity": 0.25}), "cluster.k3s.datastore.minCapacity", "steps of 0.5"),
        (dev_on({**AURORA, "maxCapacity": 300}), "cluster.k3s.datastore.maxCapacity", "0.5-256"),
        (dev_on({**AURORA, "minCapacity": 4}), "cluster.k3s.datastore.maxCapacity", "below minCapacity 4"),
        (dev_on({**AURORA, "engineVersion": "17"}), "cluster.k3s.datastore.engineVersion", "exact version"),
        (dev_on({**POSTGRES, "engineVersion": "13"}), "cluster.k3s.datastore.engineVersion", "majors 14"),
        (dev_on({**AURORA, "instanceClass": "db.r7g.large"}), "cluster.k3s.datastore.instanceClass", "kind postgres"),
        (dev_on({**POSTGRES, "maxCapacity": 8}), "cluster.k3s.datastore.maxCapacity", "kind aurora-serverless"),
        (dev_on({**POSTGRES, "instanceClass": "m7g.large"}), "cluster.k3s.datastore.instanceClass", "db.m7g.large"),
        (dev_on({"kind": "aurora-serverles"}), "cluster.k3s.datastore.kind", "did you mean 'aurora-serverless'"),
        (dev_on({"kind": "embedded-etcd", "storageGiB": 50}), "cluster.k3s.datastore.storageGiB", "kind postgres"),
        (
            dev_on(POSTGRES, safeguards={"datastoreBackupRetentionDays": 40}),
            "safeguards.datastoreBackupRetentionDays",
            "35",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and "." in v and " " not in v else None,
)
def test_bad_datastore_config_is_refused_naming_the_key(cfg, key, says):
    found = [p for p in problems(cfg) if p.startswith(f"k8s-platform:{key}: ")]
    assert found and says in found[0], problems(cfg)


def test_an_etcd_snapshot_block_on_an_external_datastore_is_refused():
    cfg = dev_on(POSTGRES)
    cfg["k8s-platform:cluster"]["k3s"]["snapshots"] = {"retention": 12}
    (msg,) = problems(cfg)
    assert msg.startswith("k8s-platform:cluster.k3s.snapshots: ") and "backed up by RDS" in msg


def test_every_datastore_problem_is_reported_at_once_and_nothing_is_registered():
    cfg = dev_on({**AURORA, "minCapacity": 0, "engineVersion": "9"}, servers=9)
    found = problems(cfg)
    assert len(found) == 3, found
    for key in ("servers.count", "datastore.minCapacity", "datastore.engineVersion"):
        assert any(p.startswith(f"k8s-platform:cluster.k3s.{key}: ") for p in found), (key, found)
    with pytest.raises(ConfigError):
        run_offline("dev", cfg)


def test_a_dev_stack_cannot_loosen_prod_like_datastore_safeguards():
    cfg = prod_k3s(POSTGRES, 2)
    cfg["k8s-platform:safeguards"] = {"highlyAvailableDatastore": False, "datastoreBackupRetentionDays": 7}
    found = problems(cfg)
    assert any(p.startswith("k8s-platform:safeguards.highlyAvailableDatastore: ") for p in found), found
    assert any(p.startswith("k8s-platform:safeguards.datastoreBackupRetentionDays: ") for p in found), found


def test_connection_values_are_public_by_construction():
    """The one type user-data takes for a datastore has no field a password could travel in."""
    assert set(DatastoreConnection.__dataclass_fields__) == {"secret_arn", "host", "port", "database", "ca_bundle_url"}


def test_the_servers_launch_after_the_aurora_writer_and_their_secret_access(aurora_run):
    """The Aurora cluster exists minutes before its first instance answers: a server started in between
    would fail its health check and be replaced over and over."""
    writer = aurora_run.one(CLUSTER_INSTANCE, "k3s-datastore-aurora-0")
    access = aurora_run.one("aws:iam/rolePolicy:RolePolicy", "k3s-datastore-server-access")
    servers = [lt for lt in aurora_run.of_type(LT) if "server" in lt.name]
    assert servers
    for lt in servers:
        assert {writer.urn, access.urn} <= set(lt.property_dependencies.get("userData", [])), lt.name


def test_no_etcd_port_between_servers_on_an_external_datastore(aurora_run, dev_run):
    def etcd_rules(run):
        return [r for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if "etcd" in r.name]

    assert etcd_rules(dev_run)  # embedded etcd: client and peer ports between servers
    assert etcd_rules(aurora_run) == []


def test_a_ci_stack_can_run_on_aurora():
    """The ci profile's snapshot default and limit are for etcd: an external datastore has none."""
    from tests.test_ci import ci_config

    raw = ci_config()
    raw["k8s-platform:cluster"]["k3s"].pop("snapshots", None)
    raw["k8s-platform:cluster"]["k3s"]["datastore"] = AURORA
    cfg = parse_stack_config(raw)
    assert cfg.cluster.k3s.datastore.external and "snapshots" not in cfg.cluster.k3s.model_fields_set
