"""`K3sDatastore`: the external datastore of a K3s cluster (RDS PostgreSQL or Aurora PostgreSQL
Serverless v2), and the pure facts and documents it is built from.

What a server needs to reach it is public (`DatastoreConnection`: host, port, database, the managed
secret's ARN, where the CA bundle comes from); the password never leaves AWS except into the
server's K3s config file, assembled at boot (components/k3s/node_boot.sh).

Decisions:
- The master password is RDS-managed (`manage_master_user_password`): RDS creates it in Secrets
  Manager under the datastore key and rotates it; Pulumi never sees it. Servers re-read it every
  10 minutes (`k3s-datastore-refresh.timer`) and restart K3s only when it changed, so a rotation
  costs new connections at most one refresh interval (open connections survive a password change).
- TLS is required on the database side by a parameter group (`rds.force_ssl=1`, TLS 1.2 at least)
  and verified on K3s's side (`datastore-cafile` + `sslmode=verify-full` against the endpoint
  name the certificate carries). The CA bundle is the region's RDS bundle, fetched at boot over
  HTTPS (verified against the OS trust store) from truststore.pki.rds.amazonaws.com rather than
  shipped in user-data: it holds every CA RDS may sign with in the region (new CAs appear there
  before RDS rotates to them, and the refresh timer picks them up), it would take a third of the
  16 KiB user-data limit, and servers already need egress for the K3s release.
- One KMS key (the stack's `k3s-datastore` key) encrypts storage, backups and the managed secret;
  the server role may decrypt with it only through Secrets Manager and read only that secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.config import K3sDatastoreConfig, StackConfig
from components.core import iam_documents as iam
from components.core.kms_keys import rotating_key
from components.core.pins import AURORA_POSTGRES_VERSION, RDS_POSTGRES_VERSION
from components.k3s.policies import KMS_DECRYPT, via
from components.network import Network

DATASTORE_PORT = 5432
DATABASE_NAME = "k3s"  # kine keeps its one table here
MASTER_USERNAME = "k3s"
# The CA RDS signs new server certificates with (RSA 2048, automatic server certificate rotation);
# it is in the regional bundle the servers verify against.
CA_CERT_IDENTIFIER = "rds-ca-rsa2048-g1"
AURORA_INSTANCE_CLASS = "db.serverless"
# Where the servers keep the CA bundle and the endpoint drop-in (both read by K3s at start).
CA_BUNDLE_PATH = "/etc/rancher/k3s/datastore-ca.pem"
ENDPOINT_DROPIN = "30-datastore.yaml"
REFRESH_UNIT = "k3s-datastore-refresh"


@dataclass(frozen=True)
class DatastoreConnection:
    """What a server's user-data says about the datastore: public values only."""

    secret_arn: str  # the RDS-managed master user secret (JSON: username, password)
    host: str  # the endpoint name the server certificate carries (verify-full)
    port: int
    database: str
    ca_bundle_url: str


def rds_ca_bundle_url(region: str) -> str:
    """The region's RDS CA bundle (every CA RDS signs server certificates with there)."""
    return f"https://truststore.pki.rds.amazonaws.com/{region}/{region}-bundle.pem"


def engine_version(config: K3sDatastoreConfig) -> str:
    if config.engine_version:
        return config.engine_version
    return AURORA_POSTGRES_VERSION if config.kind == "aurora-serverless" else RDS_POSTGRES_VERSION


def parameter_group_family(kind: str, version: str) -> str:
    major = version.split(".")[0]
    return f"aurora-postgresql{major}" if kind == "aurora-serverless" else f"postgres{major}"


def tls_parameters() -> list[dict[str, str]]:
    """Parameters that make the database refuse unencrypted and pre-TLS-1.2 connections (both dynamic)."""
    return [
        {"name": "rds.force_ssl", "value": "1"},
        {"name": "ssl_min_protocol_version", "value": "TLSv1.2"},
    ]


def datastore_k3s_config() -> dict[str, Any]:
    """The static K3s config keys of a server on an external datastore (the endpoint comes at boot)."""
    return {"datastore-cafile": CA_BUNDLE_PATH}


def refresh_units(boot_script_path: str) -> dict[str, str]:
    """systemd units (path -> text) that re-read the managed secret and CA bundle every 10 minutes."""
    return {
        f"/etc/systemd/system/{REFRESH_UNIT}.service": (
            "[Unit]\n"
            "Description=Refresh the K3s datastore credentials and RDS CA bundle\n"
            "After=network-online.target k3s.service\n\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"ExecStart={boot_script_path} refresh-datastore\n"
        ),
        f"/etc/systemd/system/{REFRESH_UNIT}.timer": (
            "[Unit]\n"
            "Description=Refresh the K3s datastore credentials every minute\n\n"
            "[Timer]\n"
            # RDS rotates the managed password weekly: until a server re-reads it, K3s's new connections
            # fail. A minute bounds that; the spread keeps the servers from restarting together.
            "OnActiveSec=1min\n"
            "OnUnitActiveSec=1min\n"
            "RandomizedDelaySec=30s\n\n"
            "[Install]\n"
            "WantedBy=timers.target\n"
        ),
    }


def datastore_access_policy(*, region: str, secret_arn: str, key_arn: str) -> dict[str, Any]:
    """The servers: read the managed master secret, decrypt it through Secrets Manager. Nothing else."""
    return iam.document(
        iam.statement("secretsmanager:GetSecretValue", secret_arn, sid="DatastoreMasterSecret"),
        iam.statement(KMS_DECRYPT, key_arn, conditions=via(region, "secretsmanager"), sid="DecryptDatastoreSecret"),
    )


def datastore_key_policy(*, account_id: str, region: str, server_role_arn: str) -> dict[str, Any]:
    """The datastore key: administered through IAM (RDS uses it through the deployer's grants); the
    server role may only decrypt, through Secrets Manager."""
    return iam.kms_key_policy(
        account_id,
        iam.statement(
            KMS_DECRYPT,
            "*",
            principal={"AWS": server_role_arn},
            conditions=via(region, "secretsmanager"),
            sid="ServersReadTheDatastoreSecret",
        ),
    )


@dataclass(frozen=True)
class K3sDatastoreArgs:
    config: K3sDatastoreConfig
    """The `cluster.k3s.datastore` section (an external kind: `postgres` or `aurora-serverless`)."""
    cluster_name: str
    """Prefixes the database identifiers, groups and the key alias."""
    region: str
    """The region of the database, its key and its CA bundle."""
    account_id: str
    """The account the key policy names."""
    tags: dict[str, str]
    """Tags for every taggable resource (RDS copies them to snapshots)."""
    protect: bool
    """The environment's safeguard: `protect`, deletion protection and a final snapshot on destroy."""
    backup_retention_days: int
    """Days of automated backups (the environment's `datastoreBackupRetentionDays`)."""
    highly_available: bool
    """Multi-AZ RDS, or (default) a second Aurora instance in another zone."""
    vpc_id: pulumi.Input[str]
    """The VPC of the database's security group."""
    subnet_ids: dict[str, pulumi.Output[str]]
    """`{az: subnet_id}` of the private subnets the database lives in (two zones at least)."""
    server_role_arn: pulumi.Input[str]
    """The K3s server role: the one principal allowed to read the master secret."""
    server_role_name: pulumi.Input[str]
    """The same role's name, for its datastore access policy."""
    server_security_group_id: pulumi.Input[str]
    """The only source allowed to reach PostgreSQL."""

    @classmethod
    def from_stack(
        cls,
        cfg: StackConfig,
        network: Network,
        *,
        server_role_arn: pulumi.Input[str],
        server_role_name: pulumi.Input[str],
        server_security_group_id: pulumi.Input[str],
    ) -> "K3sDatastoreArgs":
        wanted = cfg.safeguards_in_force
        return cls(
            config=cfg.cluster.k3s.datastore,
            cluster_name=cfg.cluster_name,
            region=cfg.region,
            account_id=cfg.account_id,
            tags=cfg.resource_tags(),
            protect=wanted.protect_stateful_resources,
            backup_retention_days=wanted.datastore_backup_retention_days,
            highly_available=wanted.highly_available_datastore,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            server_role_arn=server_role_arn,
            server_role_name=server_role_name,
            server_security_group_id=server_security_group_id,
        )


class K3sDatastore(pulumi.ComponentResource):
    """For the servers: `connection` (public values for user-data), `secret_arn`, `key`."""

    key: aws.kms.Key
    security_group: aws.ec2.SecurityGroup
    subnet_group: aws.rds.SubnetGroup
    parameter_group: aws.rds.ParameterGroup | aws.rds.ClusterParameterGroup
    db_instance: aws.rds.Instance | None  # postgres
    db_cluster: aws.rds.Cluster | None  # aurora-serverless
    cluster_instances: list[aws.rds.ClusterInstance]  # aurora-serverless: writer first
    secret_arn: pulumi.Output[str]
    host: pulumi.Output[str]
    connection: pulumi.Output[DatastoreConnection]

    def __init__(self, name: str, args: K3sDatastoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:k3s:K3sDatastore", name, None, opts)
        a, cfg = args, args.config
        if not cfg.external:
            raise ValueError(f"K3sDatastore needs an external datastore kind, not {cfg.kind}")
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=a.protect)
        ident = f"{a.cluster_name}-k3s"
        version = engine_version(cfg)
        family = parameter_group_family(cfg.kind, version)

        self.key = rotating_key(
            f"{name}-key",
            alias=f"{a.cluster_name}-k3s-datastore",
            description=f"{a.cluster_name} K3s datastore: storage, backups and the master user secret",
            policy=pulumi.Output.from_input(a.server_role_arn).apply(
                lambda arn: iam.to_json(
                    datastore_key_policy(account_id=a.account_id, region=a.region, server_role_arn=arn)
                )
            ),
            tags=a.tags,
            parent=self,
            protect=a.protect,
        )
        self.security_group = aws.ec2.SecurityGroup(
            name,
            vpc_id=a.vpc_id,
            description="K3s datastore: PostgreSQL from the K3s servers only",
            revoke_rules_on_delete=True,
            tags={**a.tags, "Name": f"{ident}-datastore"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-servers",
            security_group_id=self.security_group.id,
            ip_protocol="tcp",
            from_port=DATASTORE_PORT,
            to_port=DATASTORE_PORT,
            referenced_security_group_id=a.server_security_group_id,
            description="PostgreSQL from the K3s servers",
            tags=a.tags,
            opts=child,
        )
        self.subnet_group = aws.rds.SubnetGroup(
            name,
            name=f"{ident}-datastore",
            description=f"{a.cluster_name} K3s datastore: the private subnets",
            subnet_ids=list(a.subnet_ids.values()),
            tags=a.tags,
            opts=child,
        )
        # A per-cluster suffix: a fixed final snapshot name would refuse the second destroy of a stack of
        # the same name (the snapshot of the first one still exists).
        final_suffix = (
            random.RandomId(f"{name}-final-snapshot", byte_length=4, keepers={"identifier": ident}, opts=child)
            if a.protect
            else None
        )
        common = dict(
            storage_encrypted=True,
            kms_key_id=self.key.arn,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=self.key.arn,
            port=DATASTORE_PORT,
            db_subnet_group_name=self.subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            backup_retention_period=a.backup_retention_days,
            copy_tags_to_snapshot=True,
            deletion_protection=a.protect,
            skip_final_snapshot=not a.protect,
            final_snapshot_identifier=final_suffix.hex.apply(lambda h: f"{ident}-datastore-final-{h}")
            if final_suffix is not None
            else None,
            # The stack is the change window: a change applies at `pulumi up`, not in the next maintenance
            # window (a parameter group replaced by a major upgrade could not be deleted before), and a
            # major engine upgrade, which RDS refuses unless allowed, may run.
            allow_major_version_upgrade=True,
            apply_immediately=True,
            tags=a.tags,
        )
        self.db_instance, self.db_cluster, self.cluster_instances = None, None, []
        # The same TLS parameters; an instance takes a parameter group, an Aurora cluster a cluster one.
        group, parameter = (
            (aws.rds.ParameterGroup, aws.rds.ParameterGroupParameterArgs)
            if cfg.kind == "postgres"
            else (aws.rds.ClusterParameterGroup, aws.rds.ClusterParameterGroupParameterArgs)
        )
        self.parameter_group = group(
            name,
            name=f"{ident}-{family}",
            family=family,
            description="K3s datastore: TLS 1.2+ required",
            parameters=[parameter(**p) for p in tls_parameters()],
            tags=a.tags,
            opts=child,
        )
        if cfg.kind == "postgres":
            self.db_instance = aws.rds.Instance(
                f"{name}-postgres",
                identifier=ident,
                engine="postgres",
                engine_version=version,
                auto_minor_version_upgrade=True,
                instance_class=cfg.instance_class,
                allocated_storage=cfg.storage_gib,
                storage_type="gp3",
                db_name=DATABASE_NAME,
                username=MASTER_USERNAME,
                multi_az=a.highly_available,
                parameter_group_name=self.parameter_group.name,
                publicly_accessible=False,
                ca_cert_identifier=CA_CERT_IDENTIFIER,
                **common,
                opts=stateful,
            )
            self.secret_arn = self.db_instance.master_user_secrets.apply(lambda s: s[0].secret_arn)
            self.host = self.db_instance.address
        else:
            self.db_cluster = aws.rds.Cluster(
                f"{name}-aurora",
                cluster_identifier=ident,
                engine="aurora-postgresql",
                engine_mode="provisioned",
                engine_version=version,
                database_name=DATABASE_NAME,
                master_username=MASTER_USERNAME,
                db_cluster_parameter_group_name=self.parameter_group.name,
                serverlessv2_scaling_configuration=aws.rds.ClusterServerlessv2ScalingConfigurationArgs(
                    min_capacity=cfg.min_capacity, max_capacity=cfg.max_capacity
                ),
                **common,
                opts=stateful,
            )
            zones = sorted(a.subnet_ids)
            for i in range(cfg.instance_count(a.highly_available)):
                self.cluster_instances.append(
                    aws.rds.ClusterInstance(
                        f"{name}-aurora-{i}",
                        identifier=f"{ident}-{i}",
                        cluster_identifier=self.db_cluster.id,
                        instance_class=AURORA_INSTANCE_CLASS,
                        engine=self.db_cluster.engine,
                        engine_version=self.db_cluster.engine_version,
                        # The exact pin is the upgrade path (components/core/pins.py); RDS upgrading on
                        # its own would leave the plan asking for a downgrade.
                        auto_minor_version_upgrade=False,
                        availability_zone=zones[i % len(zones)],
                        db_subnet_group_name=self.subnet_group.name,
                        publicly_accessible=False,
                        ca_cert_identifier=CA_CERT_IDENTIFIER,
                        promotion_tier=min(i, 15),
                        tags=a.tags,
                        opts=stateful,
                    )
                )
            self.secret_arn = self.db_cluster.master_user_secrets.apply(lambda s: s[0].secret_arn)
            # The writer endpoint: its name is on every instance's certificate (verify-full).
            self.host = self.db_cluster.endpoint

        access = aws.iam.RolePolicy(
            f"{name}-server-access",
            role=a.server_role_name,
            policy=pulumi.Output.all(self.secret_arn, self.key.arn).apply(
                lambda v: iam.to_json(datastore_access_policy(region=a.region, secret_arn=v[0], key_arn=v[1]))
            ),
            opts=child,
        )
        # The servers' user-data is built from this, so they launch only once the database answers (the
        # Aurora writer, not just its cluster, which exists minutes earlier) and they may read its secret.
        ready = [access.id, *(instance.id for instance in self.cluster_instances[:1])]
        self.connection = pulumi.Output.all(self.secret_arn, self.host, *ready).apply(
            lambda v: DatastoreConnection(
                secret_arn=v[0],
                host=v[1],
                port=DATASTORE_PORT,
                database=DATABASE_NAME,
                ca_bundle_url=rds_ca_bundle_url(a.region),
            )
        )
        self.register_outputs({"secretArn": self.secret_arn, "host": self.host, "keyArn": self.key.arn})
