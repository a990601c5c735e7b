"""`k8s-platform:cluster.k3s.datastore`: where K3s keeps cluster state (components/k3s/datastore.py).

`embedded-etcd` (the default) runs etcd on the servers, snapshotted to S3. `postgres` (RDS
PostgreSQL) and `aurora-serverless` (Aurora PostgreSQL Serverless v2) move the state into a managed
database that K3s reaches through kine (`datastore-endpoint`): the servers become stateless, any
count works, and backups are the database's own.

Rules that need the environment (Multi-AZ, server counts in prod, the snapshot block) are
`datastore_problems`, one of the stack's cross-field rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import Model, raise_problems
from components.config.checks import shown

if TYPE_CHECKING:  # pragma: no cover
    from components.config.stack import StackConfig

DatastoreKind = Literal["embedded-etcd", "postgres", "aurora-serverless"]
EXTERNAL_DATASTORES = ("postgres", "aurora-serverless")

# PostgreSQL majors RDS and Aurora offer that kine (K3s's datastore shim) runs on.
POSTGRES_MAJORS = (14, 15, 16, 17, 18)
ENGINE_VERSION = re.compile(r"([0-9]{2})(\.[0-9]{1,2})?", re.ASCII)  # used with fullmatch
# db.<family>.<size>: what RDS instance classes look like (db.serverless is Aurora's, not RDS's).
DB_INSTANCE_CLASS = re.compile(r"db\.[a-z][a-z0-9-]*\.(micro|small|medium|large|xlarge|[0-9]+xlarge)", re.ASCII)
# Aurora Serverless v2: 0.5-ACU steps up to 256 ACU per instance.
MAX_ACU = 256.0
# Servers in front of an external datastore (each holds a connection pool to it).
MAX_EXTERNAL_SERVERS = 7

# Which keys each kind reads: a key of another kind would be silently ignored.
KIND_KEYS = {
    "embedded-etcd": set(),
    "postgres": {"engine_version", "instance_class", "storage_gib"},
    "aurora-serverless": {"engine_version", "min_capacity", "max_capacity", "instances"},
}
CAMEL = {
    "engine_version": "engineVersion",
    "instance_class": "instanceClass",
    "storage_gib": "storageGiB",
    "min_capacity": "minCapacity",
    "max_capacity": "maxCapacity",
    "instances": "instances",
}


class K3sDatastoreConfig(Model):
    kind: DatastoreKind = Field(
        "embedded-etcd",
        description=(
            "Where K3s keeps cluster state: `embedded-etcd` (on the servers, snapshots to S3), `postgres` (RDS "
            "PostgreSQL, Multi-AZ in prod) or `aurora-serverless` (Aurora PostgreSQL Serverless v2). External "
            "datastores are KMS-encrypted, TLS-only (verified against the RDS CA bundle), with an RDS-managed "
            "master password in Secrets Manager that servers read at boot."
        ),
    )
    engine_version: str | None = Field(
        None,
        description=(
            "PostgreSQL version (`postgres`: a major like `17` or an exact `17.6`; `aurora-serverless`: an exact "
            "`17.5`); majors 14-18; unset: the pinned one (components/core/pins.py)."
        ),
    )
    instance_class: str = Field(
        "db.t4g.medium", description="RDS instance class (`postgres` only), like `db.m7g.large`."
    )
    storage_gib: int = Field(
        default=20, ge=20, le=65536, alias="storageGiB", description="gp3 storage in GiB (`postgres` only), 20-65536."
    )
    min_capacity: float = Field(
        0.5,
        description=(
            "Fewest Aurora capacity units per instance (`aurora-serverless` only), 0.5-256 in 0.5 steps; 0 "
            "(auto-pause) is refused: K3s polls its datastore continuously and a paused database stalls the API."
        ),
    )
    max_capacity: float = Field(
        4.0,
        description="Most Aurora capacity units per instance (`aurora-serverless` only), up to 256, >= `minCapacity`.",
    )
    instances: int | None = Field(
        default=None,
        ge=1,
        le=15,
        description=(
            "Aurora `db.serverless` instances (`aurora-serverless` only): a writer and readers it fails over to, "
            "spread over the zones; unset: 2 where the environment wants a highly available datastore, else 1."
        ),
    )

    @field_validator("engine_version")
    @classmethod
    def _engine_version(cls, v: str | None) -> str | None:
        if v is None:
            return v
        m = ENGINE_VERSION.fullmatch(v)
        if not m or int(m.group(1)) not in POSTGRES_MAJORS:
            raise ValueError(
                f"'{shown(v)}' is not a PostgreSQL version like 17 or 17.5 (majors "
                f"{', '.join(map(str, POSTGRES_MAJORS))})"
            )
        return v

    @field_validator("instance_class")
    @classmethod
    def _instance_class(cls, v: str) -> str:
        if not DB_INSTANCE_CLASS.fullmatch(v):
            raise ValueError(f"'{shown(v)}' is not an RDS instance class like db.m7g.large")
        return v

    @field_validator("min_capacity", "max_capacity", mode="before")
    @classmethod
    def _acu(cls, v: object) -> object:
        # Whole numbers are fine ACUs (strict mode would refuse `2` for a float).
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"got {shown(v)!r}; a number of Aurora capacity units like 0.5 or 4 is required")
        if not 0 < v <= MAX_ACU or (v * 2) != int(v * 2):
            hint = " (0 would auto-pause the database under a K3s API that never stops querying it)" if v == 0 else ""
            raise ValueError(f"{v} ACU is not allowed{hint}; use 0.5-{MAX_ACU:g} in steps of 0.5")
        return float(v)

    @model_validator(mode="after")
    def _kind_keys(self) -> "K3sDatastoreConfig":
        problems = []
        for key in sorted(self.model_fields_set - {"kind"} - KIND_KEYS[self.kind]):
            users = [k for k, keys in KIND_KEYS.items() if key in keys]
            problems.append(
                (
                    f"cluster.k3s.datastore.{CAMEL[key]}",
                    f"applies to kind {' and '.join(users)}; this datastore is {self.kind} (remove the key)",
                )
            )
        if self.kind == "aurora-serverless" and self.min_capacity > self.max_capacity:
            problems.append(
                (
                    "cluster.k3s.datastore.maxCapacity",
                    f"{self.max_capacity:g} ACU is below minCapacity {self.min_capacity:g}",
                )
            )
        if self.kind == "aurora-serverless" and self.engine_version and "." not in self.engine_version:
            problems.append(
                (
                    "cluster.k3s.datastore.engineVersion",
                    f"Aurora needs an exact version like {self.engine_version}.5, not the major alone",
                )
            )
        raise_problems("K3sDatastoreConfig", problems)
        return self

    @property
    def external(self) -> bool:
        return self.kind in EXTERNAL_DATASTORES

    def instance_count(self, highly_available: bool) -> int:
        """Aurora instances: as configured, else a writer plus a reader in another zone where HA is wanted."""
        if self.instances is not None:
            return self.instances
        return 2 if highly_available else 1


def datastore_problems(cfg: "StackConfig") -> Iterator[tuple[str, str]]:
    """Cross-field rules of the datastore: server counts and the environment's HA (the etcd-only
    snapshot block is refused by `K3sConfig` itself, which knows which keys were written)."""
    if cfg.cluster.kind != "k3s":
        return
    k3s = cfg.cluster.k3s
    store, count = k3s.datastore, k3s.servers.count
    wanted = cfg.safeguards_in_force
    if not store.external:
        if count not in (1, 3, 5):
            hint = " (even counts add no etcd fault tolerance and risk split votes)" if count % 2 == 0 else ""
            yield (
                "cluster.k3s.servers.count",
                f"{count} servers is not allowed{hint}; use 1 (dev), 3 or 5 (HA embedded etcd), "
                "or an external datastore (cluster.k3s.datastore.kind)",
            )
        return
    if not 1 <= count <= MAX_EXTERNAL_SERVERS:
        yield (
            "cluster.k3s.servers.count",
            f"{count} servers is not allowed; with an external datastore use 1-{MAX_EXTERNAL_SERVERS}",
        )
    elif wanted.highly_available_datastore and count < 2:
        yield (
            "cluster.k3s.servers.count",
            f"{cfg.environment} needs at least 2 servers in front of the external datastore (one server is a "
            "single point of failure for the API)",
        )
    if store.kind == "aurora-serverless" and wanted.highly_available_datastore and store.instance_count(True) < 2:
        yield (
            "cluster.k3s.datastore.instances",
            f"{cfg.environment} needs at least 2 Aurora instances (a reader in another zone to fail over to)",
        )
