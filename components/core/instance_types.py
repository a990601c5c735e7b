"""Facts about EC2 instance types and the Amazon Linux 2023 images every node boots (pure).

One architecture rule for the whole platform (config validation, K3s launch templates, the EKS
system node group and Karpenter's pool capacity check all ask `architecture`).
"""

from __future__ import annotations

import re
from typing import Literal

KubernetesArch = Literal["amd64", "arm64"]

# EC2's name of each architecture (`ProcessorInfo.SupportedArchitectures`, AMI names and SSM paths).
EC2_ARCHITECTURE: dict[str, str] = {"amd64": "x86_64", "arm64": "arm64"}

# AL2023's root block device (the EKS-optimized and the standard AMIs alike).
AL2023_ROOT_DEVICE = "/dev/xvda"

# AWS-published SSM parameters that always hold the current standard AL2023 AMI per architecture.
AL2023_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{ec2_arch}"

_FAMILY = re.compile(r"(?P<category>[a-z]+?)(?P<generation>\d+)(?P<attributes>[a-z]*)(?:-.*)?")


def architecture(instance_type: str) -> KubernetesArch:
    """The CPU architecture of an instance type, in Kubernetes' words (`kubernetes.io/arch`).

    Graviton families carry a `g` among the attribute letters after the generation digit (t4g, m7g,
    c7gn, m7gd, im4gn, is4gen, x2gd); `a1`, the first Graviton, carries none. GPU families whose
    category is `g` (g5, g6e) are x86-64 unless the attribute says Graviton (g5g).
    """
    family = instance_type.split(".", 1)[0]
    match = _FAMILY.fullmatch(family)
    if family == "a1" or (match and "g" in match["attributes"]):
        return "arm64"
    return "amd64"


def al2023_ami_parameter(arch: KubernetesArch) -> str:
    return AL2023_AMI_PARAMETER.format(ec2_arch=EC2_ARCHITECTURE[arch])
