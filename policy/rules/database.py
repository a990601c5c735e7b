"""Managed databases (the K3s external datastore, or any RDS database in the stack): encrypted at
rest with a customer-managed key, never publicly accessible, TLS enforced by the database through
its parameter group, and deletion protection where the environment wants it."""

from __future__ import annotations

from pulumi_policy import Severity

from .common import (
    UNKNOWN,
    Benchmark,
    awsguard,
    checkov,
    cis_aws,
    get,
    is_set,
    peek,
    resource_rule,
    resources_of,
    stack_rule,
    truthy,
)

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
DB_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"

# engine prefix -> (parameter, accepted values) that makes the engine refuse unencrypted connections.
TLS_PARAMETERS = {
    "postgres": ("rds.force_ssl", {"1"}),
    "aurora-postgresql": ("rds.force_ssl", {"1"}),
    "sqlserver": ("rds.force_ssl", {"1"}),
    "mysql": ("require_secure_transport", {"1", "ON"}),
    "mariadb": ("require_secure_transport", {"1", "ON"}),
    "aurora-mysql": ("require_secure_transport", {"1", "ON"}),
}


def _storage_encrypted(props, cfg, report, args) -> None:
    if get(props, "replicateSourceDb") or get(props, "replicationSourceIdentifier"):
        return  # a replica inherits its source's encryption
    if not truthy(get(props, "storageEncrypted", default=False)):
        report("storageEncrypted is not true: the database, its backups and snapshots are stored unencrypted")
    elif not is_set(props, "kmsKeyId"):
        report("kmsKeyId is not set: storage is encrypted with the AWS-managed aws/rds key, not the stack's own")


def _not_public(props, cfg, report, args) -> None:
    if truthy(get(props, "publiclyAccessible", default=False)):
        report("publiclyAccessible is true: the database gets a public address; keep it in private subnets")


PASSWORD_INPUTS = ("password", "masterPassword", "passwordWo", "masterPasswordWo")


def _managed_password(props, cfg, report, args) -> None:
    if get(props, "replicateSourceDb") or get(props, "replicationSourceIdentifier"):
        return  # a replica has its source's users
    given = [k for k in PASSWORD_INPUTS if is_set(props, k)]
    if given:
        report(
            f"{', '.join(given)} set: the master password is in the program and its state; use "
            "manageMasterUserPassword (RDS keeps and rotates it in Secrets Manager)"
        )
    elif not truthy(get(props, "manageMasterUserPassword", default=False)) and not is_set(props, "snapshotIdentifier"):
        report("manageMasterUserPassword is not true: let RDS keep and rotate the master password in Secrets Manager")


def _deletion_protection(props, cfg, report, args) -> None:
    if not truthy(get(props, "deletionProtection", default=False)):
        report("deletionProtection is not true: one API call (or a destroy) deletes the database")


def _engine_tls(engine: str) -> tuple[str, set[str]] | None:
    for prefix in sorted(TLS_PARAMETERS, key=len, reverse=True):
        if engine == prefix or engine.startswith(f"{prefix}-"):
            return TLS_PARAMETERS[prefix]
    return None


def _group_of(db, groups, prop: str):
    """The parameter group a database names: through that input's dependency, else by name."""
    by_urn = {g.urn: g for g in groups}
    for dep in db.property_dependencies.get(prop, []):
        if dep.urn in by_urn:
            return by_urn[dep.urn]
    name = peek(db.props, prop)
    if name is UNKNOWN:
        get(db.props, prop)  # an unknown name that no dependency explains: the engine decides at up
    for g in groups:
        if name is not None and peek(g.props, "name") == name:
            return g
    return None


def _tls_enforced(resources, cfg, report, args) -> None:
    checks = (
        (RDS_INSTANCE, "parameterGroupName", DB_PARAMETER_GROUP),
        (RDS_CLUSTER, "dbClusterParameterGroupName", CLUSTER_PARAMETER_GROUP),
    )
    for db_type, prop, group_type in checks:
        groups = resources_of(resources, group_type)
        for db in resources_of(resources, db_type):
            engine = str(get(db.props, "engine", default=""))
            if db_type == RDS_INSTANCE and engine.startswith("aurora"):
                continue  # Aurora instances take TLS from their cluster's parameter group
            wanted = _engine_tls(engine)
            if wanted is None:
                report(f"'{db.name}': cannot tell how engine '{engine}' enforces TLS; enforce it and exempt", db.urn)
                continue
            parameter, values = wanted
            if not is_set(db.props, prop):
                report(
                    f"'{db.name}' uses the default parameter group: set {parameter} in its own group so TLS is "
                    "enforced by configuration, not by a default",
                    db.urn,
                )
                continue
            group = _group_of(db, groups, prop)
            if group is None:
                report(f"'{db.name}': its parameter group is not in the stack; {parameter} cannot be checked", db.urn)
                continue
            set_to = {
                str(get(p, "name")): str(get(p, "value")) for p in get(group.props, "parameters", default=[]) or []
            }
            if set_to.get(parameter) not in values:
                report(
                    f"'{db.name}': parameter group '{group.name}' does not set {parameter} to "
                    f"{' or '.join(sorted(values))}: clients may connect without TLS",
                    group.urn,
                )


RULES = [
    resource_rule(
        "rds-storage-encrypted",
        "RDS databases and Aurora clusters encrypt storage with a customer-managed KMS key.",
        Severity.HIGH,
        [cis_aws("2.3.1"), checkov("CKV_AWS_16"), checkov("CKV_AWS_96"), awsguard("rds-storage-encrypted")],
        [RDS_INSTANCE, RDS_CLUSTER],
        _storage_encrypted,
    ),
    resource_rule(
        "rds-not-publicly-accessible",
        "Database instances and clusters are not publicly accessible.",
        Severity.CRITICAL,
        [cis_aws("2.3.3"), checkov("CKV_AWS_17"), awsguard("rds-instance-public-access-check")],
        [RDS_INSTANCE, RDS_CLUSTER_INSTANCE, RDS_CLUSTER],
        _not_public,
    ),
    stack_rule(
        "rds-tls-enforced",
        "Databases enforce TLS through their own parameter group (rds.force_ssl, require_secure_transport).",
        Severity.HIGH,
        [checkov("CKV2_AWS_69")],
        [RDS_INSTANCE, RDS_CLUSTER, DB_PARAMETER_GROUP, CLUSTER_PARAMETER_GROUP],
        _tls_enforced,
    ),
    resource_rule(
        "rds-managed-master-password",
        "Database master passwords are RDS-managed in Secrets Manager, never set by the program.",
        Severity.HIGH,
        [Benchmark("RDS User Guide", "rds-secrets-manager (password management with Secrets Manager)")],
        [RDS_INSTANCE, RDS_CLUSTER],
        _managed_password,
    ),
    resource_rule(
        "rds-deletion-protection",
        "RDS databases and Aurora clusters have deletion protection.",
        Severity.MEDIUM,
        [
            checkov("CKV_AWS_293"),
            checkov("CKV_AWS_139"),
            Benchmark("AWS Config", "rds-instance-deletion-protection-enabled"),
        ],
        [RDS_INSTANCE, RDS_CLUSTER],
        _deletion_protection,
    ),
]
