"""`k8s-platform:addons.efsCsi`: an encrypted EFS file system, its mount targets and the EFS CSI driver with a
StorageClass that provisions one access point per volume (components/addons/efs.py). Off by default."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import Model, _KeyedError, dns_label
from components.config.checks import shown

# Octal permissions of the directory each access point creates (the driver's `directoryPerms`).
DIRECTORY_PERMS = re.compile(r"[0-7]{3,4}", re.ASCII)  # fullmatch
# POSIX ids the driver may hand out to access points (`gidRangeStart`/`gidRangeEnd`); EFS allows 0-2^32-1.
POSIX_ID_MAX = 4294967295
# EFS: at most 1,000 access points per file system (one per PersistentVolume).
ACCESS_POINTS_PER_FILE_SYSTEM = 1000


class EfsCsiConfig(Model):
    """EFS for ReadWriteMany volumes, on EKS (managed add-on, Pod Identity) and K3s (chart, IRSA)."""

    enabled: bool = Field(
        False,
        description=(
            "Create the EFS file system (KMS-encrypted, a mount target per zone in the node subnets, NFS open to "
            "the nodes only), the EFS CSI driver with its own role and the access-point StorageClass."
        ),
    )
    throughput_mode: Literal["elastic", "bursting"] = Field(
        "elastic",
        description=(
            "EFS throughput mode: `elastic` (scales with the workload, billed per use) or `bursting` (credits that "
            "grow with stored data)."
        ),
    )
    performance_mode: Literal["generalPurpose", "maxIO"] = Field(
        "generalPurpose",
        description="EFS performance mode; `maxIO` is refused with `elastic` throughput (EFS does not offer it).",
    )
    backup: bool = Field(True, description="Turn on EFS automatic backups (AWS Backup's default EFS plan).")
    storage_class_name: str = Field("efs", description="Name of the StorageClass (a DNS label); not the default class.")
    directory_perms: str = Field(
        "700",
        description="Octal permissions of the directory each access point creates (`directoryPerms`), like `700`.",
    )
    gid_range_start: int = Field(
        50000, ge=1, le=POSIX_ID_MAX, description="First POSIX uid/gid the driver hands out to access points."
    )
    gid_range_end: int = Field(
        7000000,
        ge=1,
        le=POSIX_ID_MAX,
        description=(
            "Last POSIX uid/gid the driver hands out to access points; the range holds at least 1,000 ids (one "
            "access point per volume, EFS's limit per file system)."
        ),
    )
    reclaim_policy: Literal["Delete", "Retain"] = Field(
        "Delete",
        description=(
            "What happens to a released volume's access point: `Delete` removes the access point (its directory "
            "and data stay on the file system), `Retain` keeps both."
        ),
    )

    _class_name = field_validator("storage_class_name")(classmethod(lambda cls, v: dns_label(v)))

    @field_validator("directory_perms")
    @classmethod
    def _perms(cls, v: str) -> str:
        if not DIRECTORY_PERMS.fullmatch(v):
            raise ValueError(f"'{shown(v)}' is not octal permissions like 700 or 0750")
        return v

    @model_validator(mode="after")
    def _ranges(self) -> "EfsCsiConfig":
        if self.gid_range_end - self.gid_range_start + 1 < ACCESS_POINTS_PER_FILE_SYSTEM:
            raise _KeyedError(
                "addons.efsCsi.gidRangeEnd",
                f"gidRangeStart {self.gid_range_start} .. gidRangeEnd {self.gid_range_end} holds fewer than "
                f"{ACCESS_POINTS_PER_FILE_SYSTEM} ids (one per access point); widen the range",
            )
        if self.performance_mode == "maxIO" and self.throughput_mode == "elastic":
            raise _KeyedError(
                "addons.efsCsi.performanceMode",
                "performanceMode maxIO is not available with throughputMode elastic; use generalPurpose",
            )
        return self
