"""Worker nodes: instance metadata (IMDSv2, hop limit), encrypted volumes, no public IPs, and no
secrets in user-data, for launch templates, instances and Karpenter EC2NodeClasses."""

from __future__ import annotations

import base64
import binascii
import email
import gzip
import re

from pulumi_policy import Severity

from .common import as_list, awsguard, checkov, cis_eks, get, resource_rule, truthy

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
EC2_NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
# EKS Auto Mode's NodeClass: AWS owns IMDS, the AMI, volume encryption and user-data; the public IP is ours.
AUTO_MODE_NODE_CLASS = "kubernetes:eks.amazonaws.com/v1:NodeClass"


def _metadata_options(props, resource_type):
    if resource_type == EC2_NODE_CLASS:
        return get(props, "spec", "metadataOptions")
    return get(props, "metadataOptions")


def _imdsv2(props, cfg, report, args) -> None:
    opts = _metadata_options(props, args.resource_type)
    if args.resource_type == EC2_NODE_CLASS and opts is None:
        return  # Karpenter v1 defaults: httpTokens required, hop limit 1
    if get(opts, "httpEndpoint") == "disabled":
        return  # no metadata service at all
    tokens = get(opts, "httpTokens")
    if tokens is None and args.resource_type == EC2_NODE_CLASS:
        tokens = "required"  # the CRD defaults each metadataOptions field on its own
    if tokens != "required":
        report(
            f"metadataOptions.httpTokens is {tokens or 'unset (optional)'}; IMDSv2 must be required "
            "so a pod cannot read node credentials with a plain GET"
        )


def _hop_limit(props, cfg, report, args) -> None:
    opts = _metadata_options(props, args.resource_type)
    if args.resource_type == EC2_NODE_CLASS and opts is None:
        return
    if get(opts, "httpEndpoint") == "disabled":
        return
    limit = get(opts, "httpPutResponseHopLimit")
    if limit is None and args.resource_type != EC2_NODE_CLASS:
        report(
            f"metadataOptions.httpPutResponseHopLimit is unset; set it to at most {cfg['maxHopLimit']} "
            "so containers behind a network hop cannot reach IMDS"
        )
    elif limit is not None and int(limit) > cfg["maxHopLimit"]:
        report(f"metadataOptions.httpPutResponseHopLimit is {limit}; at most {cfg['maxHopLimit']} is allowed")


def _volumes_encrypted(props, cfg, report, args) -> None:
    if args.resource_type == INSTANCE:
        root = get(props, "rootBlockDevice")
        if root is not None and not truthy(get(root, "encrypted", default=False)):
            report("rootBlockDevice.encrypted is not true")
        mappings = as_list(get(props, "ebsBlockDevices"))
        for m in mappings:
            if not truthy(get(m, "encrypted", default=False)):
                report(f"ebsBlockDevices {get(m, 'deviceName')} is not encrypted")
        return
    mappings = as_list(
        get(props, "spec", "blockDeviceMappings")
        if args.resource_type == EC2_NODE_CLASS
        else get(props, "blockDeviceMappings")
    )
    for m in mappings:
        ebs = get(m, "ebs")
        if ebs is not None and not truthy(get(ebs, "encrypted", default=False)):
            report(f"block device {get(m, 'deviceName')} is not encrypted (ebs.encrypted)")


def _no_public_ip(props, cfg, report, args) -> None:
    if args.resource_type == INSTANCE:
        if truthy(get(props, "associatePublicIpAddress", default=False)):
            report("associatePublicIpAddress is true: nodes must stay in private subnets")
        return
    if args.resource_type == EC2_NODE_CLASS:
        if truthy(get(props, "spec", "associatePublicIPAddress", default=False)):
            report("spec.associatePublicIPAddress is true: nodes must stay in private subnets")
        return
    if args.resource_type == AUTO_MODE_NODE_CLASS:
        if truthy(get(props, "spec", "advancedNetworking", "associatePublicIPAddress", default=False)):
            report("spec.advancedNetworking.associatePublicIPAddress is true: nodes must stay in private subnets")
        return
    for ni in as_list(get(props, "networkInterfaces")):
        if truthy(get(ni, "associatePublicIpAddress", default=False)):
            report("networkInterfaces[].associatePublicIpAddress is true: nodes must stay in private subnets")


# A literal credential: a known secret-bearing name assigned a value that is not a shell expansion,
# a command substitution or a file reference (reading the secret at boot is the allowed pattern).
_SECRET_ASSIGNMENT = re.compile(
    r"(?im)(?:^|[\s\"'{,])(?:export\s+)?(K3S_TOKEN|K3S_AGENT_TOKEN|TOKEN|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|"
    r"PASSWORD|DB_PASSWORD|SECRET|CLIENT_SECRET|API_KEY)\s*[=:]\s*[\"']?(?![\"'$`<(/])([^\s\"']{8,})"
)
_TOKEN_FLAG = re.compile(
    r"(?i)--(token|agent-token|etcd-s3-secret-key|datastore-endpoint)[= ]+[\"']?(?![\"'$`<(/])([^\s\"']{8,})"
)
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")
# A URL carrying a literal password (a database connection string, `https://user:pass@host`); a
# template (`{user}:{word}@`) or shell expansion (`${USER}:${PASS}@`) is not one.
_CREDENTIAL_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@\"'{}$`]+:[^\s/@\"'{}$`]{3,}@[^\s/@]")
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")


def decode_user_data(value: str) -> str:
    """User-data as the instance sees it: base64 (launch templates) and gzip undone where present."""
    text = value
    try:
        raw = base64.b64decode(value, validate=True)
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            pass
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        pass
    if text.lstrip().startswith(("MIME-Version", "Content-Type: multipart")):
        # Multi-part user-data (cloud-init, nodeadm): parts may themselves be base64-encoded.
        message = email.message_from_string(text)
        parts = [p.get_payload(decode=True) for p in message.walk() if not p.is_multipart()]
        text = text + "\n" + "\n".join(p.decode("utf-8", "replace") for p in parts if isinstance(p, bytes))
    return text


def secret_findings(text: str) -> list[str]:
    found = []
    if _PRIVATE_KEY.search(text):
        found.append("a PEM private key")
    if _ACCESS_KEY_ID.search(text):
        found.append("an AWS access key id")
    for m in _SECRET_ASSIGNMENT.finditer(text):
        found.append(f"a literal value for {m.group(1)}")
    for m in _TOKEN_FLAG.finditer(text):
        found.append(f"a literal --{m.group(1)} argument")
    if _CREDENTIAL_URL.search(text):
        found.append("a URL with an embedded password")
    return found


def _user_data(props, cfg, report, args) -> None:
    if args.resource_type == EC2_NODE_CLASS:
        value = get(props, "spec", "userData")
    else:
        value = get(props, "userData")
    if not isinstance(value, str) or not value:
        return
    findings = secret_findings(decode_user_data(value))
    if findings:
        report(
            f"user-data contains {', '.join(sorted(set(findings)))}: anyone who can describe the instance "
            "reads it; fetch secrets at boot from SSM Parameter Store or Secrets Manager instead"
        )


NODE_TYPES = [LAUNCH_TEMPLATE, INSTANCE, EC2_NODE_CLASS]

RULES = [
    resource_rule(
        "imdsv2-required",
        "Nodes require IMDSv2 session tokens.",
        Severity.HIGH,
        [checkov("CKV_AWS_79")],
        NODE_TYPES,
        _imdsv2,
    ),
    resource_rule(
        "imds-hop-limit",
        "The instance metadata response hop limit keeps IMDS away from pods.",
        Severity.HIGH,
        [checkov("CKV_AWS_341")],
        NODE_TYPES,
        _hop_limit,
        {"maxHopLimit": {"type": "integer", "minimum": 1, "maximum": 64, "default": 1}},
    ),
    resource_rule(
        "node-volumes-encrypted",
        "Node EBS volumes are encrypted.",
        Severity.HIGH,
        [awsguard("encrypted-volumes"), checkov("CKV_AWS_8")],
        NODE_TYPES,
        _volumes_encrypted,
    ),
    resource_rule(
        "node-no-public-ip",
        "Nodes get no public IP address.",
        Severity.HIGH,
        [cis_eks("5.4.3"), awsguard("ec2-instance-no-public-ip"), checkov("CKV_AWS_88")],
        [*NODE_TYPES, AUTO_MODE_NODE_CLASS],
        _no_public_ip,
    ),
    resource_rule(
        "user-data-no-secrets",
        "User-data carries no secret (tokens, keys, passwords).",
        Severity.CRITICAL,
        [checkov("CKV_AWS_46")],
        NODE_TYPES,
        _user_data,
    ),
]
