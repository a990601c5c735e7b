"""IAM Roles Anywhere on the dev plan: CA -> trust anchor -> profile -> role, and the workload's leaf.

Certificates are real (pulumi_tls is emulated with `cryptography` under the mocks), so the chain
is checked the way Roles Anywhere checks it: signature, CA/leaf extensions, hash algorithm.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.identity.roles_anywhere import CERT_MOUNT, aws_config_file, certificate_cn, credential_process_command
from programs.offline import Secret, reveal
from tests.iam_eval import allows

ANCHOR = "aws:rolesanywhere/trustAnchor:TrustAnchor"
PROFILE = "aws:rolesanywhere/profile:Profile"
AGENT = ("Service", "rolesanywhere.amazonaws.com")


@pytest.fixture(scope="module")
def chain(dev_run):
    anchor = dev_run.one(ANCHOR, "roles-anywhere-trust-anchor").inputs
    secret = dev_run.one("kubernetes:core/v1:Secret", "wl-edge-agent-ra-cert").inputs
    data = reveal(secret["stringData"])
    return {
        "anchor": anchor,
        "secret": secret,
        "ca": x509.load_pem_x509_certificate(anchor["source"]["sourceData"]["x509CertificateData"].encode()),
        "leaf": x509.load_pem_x509_certificate(data["tls.crt"].encode()),
        "key": serialization.load_pem_private_key(data["tls.key"].encode(), password=None),
        "identity": reveal(dev_run.outputs["workloadIdentities"])["edge-agent"],
    }


def test_trust_anchor_is_a_certificate_bundle_of_a_proper_ca(chain):
    assert chain["anchor"]["source"]["sourceType"] == "CERTIFICATE_BUNDLE"
    ca = chain["ca"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign is True
    assert isinstance(ca.signature_hash_algorithm, hashes.SHA256)
    ca.verify_directly_issued_by(ca)  # self-signed


def test_leaf_chains_to_the_trust_anchor_ca_with_end_entity_extensions(chain):
    leaf = chain["leaf"]
    leaf.verify_directly_issued_by(chain["ca"])  # raises if the signature or issuer does not match
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature is True and usage.key_cert_sign is False
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA256)
    assert leaf.public_key().public_numbers() == chain["key"].public_key().public_numbers()  # the Secret's pair


def test_leaf_does_not_chain_to_another_ca(chain):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impostor")])
    now = dt.datetime.now(dt.UTC)
    impostor = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with pytest.raises((ValueError, InvalidSignature)):  # issuer name / signature mismatch
        chain["leaf"].verify_directly_issued_by(impostor)


def test_role_trust_admits_exactly_this_certificate_through_this_anchor(dev_run, chain):
    policy = json.loads(dev_run.one("aws:iam/role:Role", "wl-edge-agent-role").inputs["assumeRolePolicy"])
    anchor_arn = chain["identity"]["trustAnchorArn"]
    cn = chain["leaf"].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    issuer_cn = chain["ca"].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == certificate_cn("dev-k3s", "edge", "agent")
    ctx = {
        "aws:PrincipalTag/x509Subject/CN": cn,
        "aws:PrincipalTag/x509Issuer/CN": issuer_cn,
        "aws:SourceArn": anchor_arn,
    }
    for action in ("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"):
        assert allows(policy, action, context=ctx, principal=AGENT)
    assert not allows(
        policy,
        "sts:AssumeRole",
        context={**ctx, "aws:PrincipalTag/x509Subject/CN": "other.edge.dev-k3s"},
        principal=AGENT,
    )
    other_anchor = anchor_arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    assert not allows(policy, "sts:AssumeRole", context={**ctx, "aws:SourceArn": other_anchor}, principal=AGENT)
    assert not allows(policy, "sts:AssumeRole", context=ctx, principal=("Service", "ec2.amazonaws.com"))


def test_profile_lists_only_the_workload_role_and_accepts_the_session_name(dev_run, chain):
    profile = dev_run.one(PROFILE, "wl-edge-agent-ra-profile").inputs
    assert profile["roleArns"] == [chain["identity"]["roleArn"]]
    assert profile["acceptRoleSessionName"] is True and profile["enabled"] is True


def test_secret_holds_cert_and_key_as_a_pulumi_secret(chain):
    secret = chain["secret"]
    assert secret["type"] == "kubernetes.io/tls"
    assert isinstance(secret["stringData"], Secret)  # the private key never appears in plain plan output
    assert secret["metadata"]["namespace"] == "edge"


def test_config_map_runs_the_signing_helper_in_credential_process_mode(dev_run, chain):
    config = dev_run.one("kubernetes:core/v1:ConfigMap", "wl-edge-agent-ra-config").inputs
    ident = chain["identity"]
    assert config["metadata"]["namespace"] == "edge"
    expected = aws_config_file(
        trust_anchor_arn=ident["trustAnchorArn"],
        profile_arn=ident["profileArn"],
        role_arn=ident["roleArn"],
        region="us-east-1",
        session_name="edge-agent",
    )
    assert config["data"]["config"] == expected
    line = [ln for ln in expected.splitlines() if ln.startswith("credential_process = ")][0]
    assert line.startswith("credential_process = aws_signing_helper credential-process ")
    assert " serve" not in line
    for flag, value in (
        ("--certificate", f"{CERT_MOUNT}/tls.crt"),
        ("--private-key", f"{CERT_MOUNT}/tls.key"),
        ("--trust-anchor-arn", ident["trustAnchorArn"]),
        ("--profile-arn", ident["profileArn"]),
        ("--role-arn", ident["roleArn"]),
    ):
        assert f"{flag} {value}" in line
    assert ident["profileArn"].startswith("arn:aws:rolesanywhere:us-east-1:111111111111:profile/")


def test_credential_process_command_is_pure():
    cmd = credential_process_command(
        trust_anchor_arn="TA", profile_arn="P", role_arn="R", region="eu-west-1", session_name="s"
    )
    assert cmd.split() == [
        "aws_signing_helper",
        "credential-process",
        "--certificate",
        f"{CERT_MOUNT}/tls.crt",
        "--private-key",
        f"{CERT_MOUNT}/tls.key",
        "--trust-anchor-arn",
        "TA",
        "--profile-arn",
        "P",
        "--role-arn",
        "R",
        "--region",
        "eu-west-1",
        "--role-session-name",
        "s",
    ]
