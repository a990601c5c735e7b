"""What the mocked engine answers for each resource: realistic IDs, ARNs and computed outputs.

IDs are deterministic (derived from type and name) so two previews of one stack give one plan.
`pulumi_tls` and `pulumi_random` are emulated for real with `cryptography`/`secrets`, so keys,
certificates and tokens flowing downstream are genuine and can be verified by tests. A key or
certificate is made once per stack, resource and inputs in a process, as a stack's state keeps it.

To teach the mocks a new resource type, add a function to `COMPUTED` keyed by its type token.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class MockContext:
    region: str
    account_id: str
    stack: str


def short_hash(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


# EC2-style ID prefixes per type token.
ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
    "aws:ec2/vpcIpv4CidrBlockAssociation:VpcIpv4CidrBlockAssociation": "vpc-cidr-assoc",
    "aws:ec2/flowLog:FlowLog": "fl",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt",
    "aws:ec2/instance:Instance": "i",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
}


def resource_id(ctx: MockContext, typ: str, name: str, inputs: dict[str, Any]) -> str:
    if typ in ID_PREFIX:
        return f"{ID_PREFIX[typ]}-{short_hash(ctx.stack, typ, name)}"
    for key in ("name", "bucket", "functionName", "clusterName"):
        if isinstance(inputs.get(key), str) and inputs[key]:
            return inputs[key]
    return f"{name}-{short_hash(typ, name, length=7)}"


def arn_for(ctx: MockContext, typ: str, name: str, rid: str, inputs: dict[str, Any]) -> str | None:
    """ARN shaped like the real service's, or None for types that have none."""
    module = typ.split(":")[1].split("/")[0] if typ.count(":") >= 2 else ""
    r, a = ctx.region, ctx.account_id
    nm = inputs.get("name") if isinstance(inputs.get("name"), str) else rid
    if not typ.startswith("aws:"):
        return None
    if module == "iam":
        kind = typ.rsplit(":", 1)[1]
        path = {"Role": "role", "Policy": "policy", "InstanceProfile": "instance-profile", "User": "user"}.get(kind)
        if kind == "OpenIdConnectProvider":
            url = str(inputs.get("url", "")).removeprefix("https://")
            return f"arn:aws:iam::{a}:oidc-provider/{url}"
        return f"arn:aws:iam::{a}:{path}/{nm}" if path else None
    if module == "s3":
        return f"arn:aws:s3:::{inputs.get('bucket') or rid}"
    if module == "kms":
        return f"arn:aws:kms:{r}:{a}:key/{uuid.UUID(short_hash(typ, name, length=32))}"
    if module == "sqs":
        return f"arn:aws:sqs:{r}:{a}:{nm}"
    if module == "cloudwatch" and typ.endswith("LogGroup"):
        return f"arn:aws:logs:{r}:{a}:log-group:{nm}"
    if module == "cloudwatch" and typ.endswith("EventRule"):
        return f"arn:aws:events:{r}:{a}:rule/{nm}"
    if module == "lambda":
        return f"arn:aws:lambda:{r}:{a}:function:{nm}"
    if module == "eks" and typ.endswith(":Cluster"):
        return f"arn:aws:eks:{r}:{a}:cluster/{nm}"
    if module in ("ec2", "vpc"):
        kind = ID_PREFIX.get(typ, "resource").replace("eipalloc", "elastic-ip")
        resource_type = {
            "vpc": "vpc",
            "subnet": "subnet",
            "sg": "security-group",
            "lt": "launch-template",
            "igw": "internet-gateway",
            "nat": "natgateway",
            "rtb": "route-table",
            "vpce": "vpc-endpoint",
            "i": "instance",
            "fl": "vpc-flow-log",
            "sgr": "security-group-rule",
        }.get(kind, kind)
        return f"arn:aws:ec2:{r}:{a}:{resource_type}/{rid}"
    return f"arn:aws:{module}:{r}:{a}:{typ.rsplit(':', 1)[1].lower()}/{nm}"


# ----------------------------------------------------------------------------- pulumi_random
def _random_string(inputs: dict[str, Any]) -> str:
    length = int(inputs.get("length", 16))
    alphabet = ""
    if inputs.get("lower", True):
        alphabet += string.ascii_lowercase
    if inputs.get("upper", True):
        alphabet += string.ascii_uppercase
    if inputs.get("numeric", inputs.get("number", True)):
        alphabet += string.digits
    if inputs.get("special", True):
        alphabet += inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
    return "".join(secrets.choice(alphabet or string.ascii_letters) for _ in range(length))


def _random_password(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    value = _random_string(inputs)
    return {"result": value, "bcryptHash": hashlib.sha256(value.encode()).hexdigest()}


def _random_id(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    raw = secrets.token_bytes(int(inputs.get("byteLength", 8)))
    prefix = inputs.get("prefix", "")
    return {
        "hex": prefix + raw.hex(),
        "b64Std": prefix + base64.b64encode(raw).decode(),
        "b64Url": prefix + base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "dec": prefix + str(int.from_bytes(raw, "big")),
    }


# -------------------------------------------------------------------------------- pulumi_tls
def _private_key(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    algorithm = inputs.get("algorithm", "RSA")
    if algorithm == "RSA":
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(inputs.get("rsaBits", 2048)))
    elif algorithm == "ECDSA":
        curve = {"P224": ec.SECP224R1(), "P256": ec.SECP256R1(), "P384": ec.SECP384R1(), "P521": ec.SECP521R1()}
        key = ec.generate_private_key(curve[inputs.get("ecdsaCurve", "P224")])
    elif algorithm == "ED25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"tls.PrivateKey: unsupported algorithm {algorithm}")
    traditional = (
        serialization.PrivateFormat.TraditionalOpenSSL if algorithm != "ED25519" else serialization.PrivateFormat.PKCS8
    )
    pub = key.public_key()
    pub_der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    openssh = pub.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return {
        "privateKeyPem": key.private_bytes(
            serialization.Encoding.PEM, traditional, serialization.NoEncryption()
        ).decode(),
        "privateKeyPemPkcs8": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "privateKeyOpenssh": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ).decode(),
        "publicKeyPem": pub.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "publicKeyOpenssh": openssh + "\n",
        "publicKeyFingerprintSha256": "SHA256:"
        + base64.b64encode(hashlib.sha256(pub_der).digest()).decode().rstrip("="),
        "publicKeyFingerprintMd5": ":".join(f"{b:02x}" for b in hashlib.md5(pub_der).digest()),
    }


def _subject(subject: dict[str, Any] | None) -> x509.Name:
    subject = subject or {}
    fields = [
        ("country", NameOID.COUNTRY_NAME),
        ("province", NameOID.STATE_OR_PROVINCE_NAME),
        ("locality", NameOID.LOCALITY_NAME),
        ("organization", NameOID.ORGANIZATION_NAME),
        ("organizationalUnit", NameOID.ORGANIZATIONAL_UNIT_NAME),
        ("commonName", NameOID.COMMON_NAME),
        ("serialNumber", NameOID.SERIAL_NUMBER),
    ]
    attrs = []
    for key, oid in fields:
        value = subject.get(key)
        for v in value if isinstance(value, list) else [value] if value else []:
            attrs.append(x509.NameAttribute(oid, str(v)))
    return x509.Name(attrs)


def _load_key(pem: str):
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _sign_certificate(
    inputs: dict[str, Any],
    subject: x509.Name,
    public_key,
    issuer: x509.Name,
    signing_key,
    sans: list[x509.GeneralName],
    issuer_cert: x509.Certificate | None,
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    not_after = now + dt.timedelta(hours=int(inputs.get("validityPeriodHours", 24)))
    uses = set(inputs.get("allowedUses") or [])
    is_ca = bool(inputs.get("isCaCertificate", False))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    key_usage = {
        k: k.replace("_", "-") in {u.replace("_", "-") for u in uses}
        for k in (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "cert_signing",
            "crl_signing",
        )
    }
    if any(key_usage.values()):
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=key_usage["digital_signature"],
                content_commitment=key_usage["content_commitment"],
                key_encipherment=key_usage["key_encipherment"],
                data_encipherment=key_usage["data_encipherment"],
                key_agreement=key_usage["key_agreement"],
                key_cert_sign=key_usage["cert_signing"],
                crl_sign=key_usage["crl_signing"],
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    ext_map = {
        "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
        "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
        "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
        "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
        "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
        "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    }
    ekus = [ext_map[u] for u in sorted(uses) if u in ext_map]
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), critical=False
        )
    algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = builder.sign(signing_key, algorithm)
    return {
        "certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "validityStartTime": now.isoformat().replace("+00:00", "Z"),
        "validityEndTime": not_after.isoformat().replace("+00:00", "Z"),
        "readyForRenewal": False,
    }


def _sans(inputs: dict[str, Any]) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in inputs.get("dnsNames") or []]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in inputs.get("ipAddresses") or []]
    sans += [x509.UniformResourceIdentifier(u) for u in inputs.get("uris") or []]
    return sans


def _self_signed_cert(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    key = _load_key(inputs["privateKeyPem"])
    subject = _subject(inputs.get("subject"))
    return _sign_certificate(inputs, subject, key.public_key(), subject, key, _sans(inputs), None)


def _cert_request(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    key = _load_key(inputs["privateKeyPem"])
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(inputs.get("subject")))
    sans = _sans(inputs)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return {"certRequestPem": builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()}


def _locally_signed_cert(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
    ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
    ca_key = _load_key(inputs["caPrivateKeyPem"])
    try:
        sans = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        sans = []
    return _sign_certificate(inputs, csr.subject, csr.public_key(), ca_cert.subject, ca_key, sans, ca_cert)


# ------------------------------------------------------------------------------ AWS outputs
def _eks_cluster(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    nm = inputs.get("name") or name
    oidc_id = short_hash("oidc", nm, length=32).upper()
    ca_der = hashlib.sha256(nm.encode()).digest()  # opaque bytes; never parsed by the program
    return {
        "endpoint": f"https://{oidc_id}.gr7.{ctx.region}.eks.amazonaws.com",
        "certificateAuthority": {"data": base64.b64encode(ca_der).decode()},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{ctx.region}.amazonaws.com/id/{oidc_id}"}]}],
        "status": "ACTIVE",
        "platformVersion": "eks.1",
        "vpcConfig": {
            **(inputs.get("vpcConfig") or {}),
            "clusterSecurityGroupId": f"sg-{short_hash('cluster-sg', nm)}",
        },
    }


def _s3_bucket(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    bucket = inputs.get("bucket") or f"{name}-{short_hash(name, length=7)}"
    return {
        "bucket": bucket,
        "bucketDomainName": f"{bucket}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{bucket}.s3.{ctx.region}.amazonaws.com",
        "region": ctx.region,
    }


def _sqs_queue(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    nm = inputs.get("name") or name
    return {"name": nm, "url": f"https://sqs.{ctx.region}.amazonaws.com/{ctx.account_id}/{nm}"}


def _load_balancer(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    nm = inputs.get("name") or name[:32]
    scheme = "internal-" if inputs.get("internal") else ""
    return {
        "dnsName": f"{scheme}{nm}-{short_hash(nm, length=16)}.elb.{ctx.region}.amazonaws.com",
        "zoneId": "Z26RNL4JYFTOTI",
        "arnSuffix": f"net/{nm}/{short_hash(nm, length=16)}",
    }


def _launch_template(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    # A fresh template is at version 1; node groups and instances reference `latestVersion`.
    return {"latestVersion": 1, "defaultVersion": 1}


def _secretsmanager_secret(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    nm = inputs.get("name") or name
    return {"arn": f"arn:aws:secretsmanager:{ctx.region}:{ctx.account_id}:secret:{nm}-{short_hash(nm, length=6)}"}


def _ssm_parameter(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    nm = str(inputs.get("name") or name).lstrip("/")
    return {"arn": f"arn:aws:ssm:{ctx.region}:{ctx.account_id}:parameter/{nm}", "version": 1}


def _autoscaling_group(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    nm = inputs.get("name") or name
    group_id = uuid.UUID(short_hash("asg", nm, length=32))
    return {
        "name": nm,
        "arn": f"arn:aws:autoscaling:{ctx.region}:{ctx.account_id}:autoScalingGroup:{group_id}"
        f":autoScalingGroupName/{nm}",
    }


def _kms_key(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    return {"keyId": str(uuid.UUID(short_hash("aws:kms/key:Key", name, length=32)))}


def _iam_role(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "name": inputs.get("name") or f"{name}-{short_hash(name, length=7)}",
        "uniqueId": "AROA" + short_hash(name, length=17).upper(),
    }


def _cloudfront(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    dist_id = "E" + short_hash("cloudfront", name, length=13).upper()
    # CloudFront is global: no region in the ARN.
    return {
        "domainName": f"d{short_hash(name, length=13)}.cloudfront.net",
        "hostedZoneId": "Z2FDTNDATAQYW2",
        "arn": f"arn:aws:cloudfront::{ctx.account_id}:distribution/{dist_id}",
    }


def _rds_master_secret(ctx: MockContext, kind: str, name: str) -> list[dict[str, Any]]:
    # RDS names the secret it manages `rds!<kind>-<uuid>` and encrypts it with the given key.
    nm = f"rds!{kind}-{uuid.UUID(short_hash('rds', kind, name, length=32))}"
    arn = f"arn:aws:secretsmanager:{ctx.region}:{ctx.account_id}:secret:{nm}-{short_hash(nm, length=6)}"
    return [{"secretArn": arn, "secretStatus": "active"}]


def _rds_instance(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    ident = inputs.get("identifier") or name
    host = f"{ident}.c{short_hash('rds', ctx.account_id, length=11)}.{ctx.region}.rds.amazonaws.com"
    port = inputs.get("port") or 5432
    out: dict[str, Any] = {"address": host, "endpoint": f"{host}:{port}", "port": port}
    if inputs.get("manageMasterUserPassword"):
        out["masterUserSecrets"] = _rds_master_secret(ctx, "db", name)
    return out


def _rds_cluster(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    ident = inputs.get("clusterIdentifier") or name
    suffix = f"c{short_hash('rds', ctx.account_id, length=11)}.{ctx.region}.rds.amazonaws.com"
    out: dict[str, Any] = {
        "endpoint": f"{ident}.cluster-{suffix}",
        "readerEndpoint": f"{ident}.cluster-ro-{suffix}",
        "port": inputs.get("port") or 5432,
    }
    if inputs.get("manageMasterUserPassword"):
        out["masterUserSecrets"] = _rds_master_secret(ctx, "cluster", name)
    return out


def _rolesanywhere(kind: str) -> "ComputedFn":
    """Trust anchors and profiles are addressed by a UUID, not by name."""

    def computed(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
        rid = str(uuid.UUID(short_hash("rolesanywhere", kind, name, length=32)))
        return {"arn": f"arn:aws:rolesanywhere:{ctx.region}:{ctx.account_id}:{kind}/{rid}"}

    return computed


def _pod_identity_association(ctx: MockContext, inputs: dict[str, Any], name: str) -> dict[str, Any]:
    cluster = inputs.get("clusterName") or name
    association_id = "a-" + short_hash("pod-identity-association", name)
    arn = f"arn:aws:eks:{ctx.region}:{ctx.account_id}:podidentityassociation/{cluster}/{association_id}"
    out: dict[str, Any] = {"associationId": association_id, "associationArn": arn}
    if inputs.get("targetRoleArn"):
        # The form EKS documents for a target-role association (the value the target trust pins).
        out["externalId"] = (
            f"{ctx.region}/{ctx.account_id}/{cluster}/{inputs.get('namespace')}/{inputs.get('serviceAccount')}"
        )
    return out


ComputedFn = Callable[[MockContext, dict[str, Any], str], dict[str, Any]]

COMPUTED: dict[str, ComputedFn] = {
    "random:index/randomPassword:RandomPassword": _random_password,
    "random:index/randomString:RandomString": lambda c, i, n: {"result": _random_string(i)},
    "random:index/randomId:RandomId": _random_id,
    "random:index/randomUuid:RandomUuid": lambda c, i, n: {"result": str(uuid.uuid4())},
    "random:index/randomInteger:RandomInteger": lambda c, i, n: {
        "result": secrets.randbelow(int(i["max"]) - int(i["min"]) + 1) + int(i["min"])
    },
    "random:index/randomPet:RandomPet": lambda c, i, n: {"id": f"{i.get('prefix', 'pet')}-{short_hash(n, length=6)}"},
    "tls:index/privateKey:PrivateKey": _private_key,
    "tls:index/selfSignedCert:SelfSignedCert": _self_signed_cert,
    "tls:index/certRequest:CertRequest": _cert_request,
    "tls:index/locallySignedCert:LocallySignedCert": _locally_signed_cert,
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:s3/bucket:Bucket": _s3_bucket,
    "aws:s3/bucketV2:BucketV2": _s3_bucket,
    "aws:sqs/queue:Queue": _sqs_queue,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:kms/key:Key": _kms_key,
    "aws:secretsmanager/secret:Secret": _secretsmanager_secret,
    "aws:ssm/parameter:Parameter": _ssm_parameter,
    "aws:autoscaling/group:Group": _autoscaling_group,
    "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    "aws:iam/role:Role": _iam_role,
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": _pod_identity_association,
    "aws:cloudfront/distribution:Distribution": _cloudfront,
    "aws:rds/instance:Instance": _rds_instance,
    "aws:rds/cluster:Cluster": _rds_cluster,
    "aws:rolesanywhere/trustAnchor:TrustAnchor": _rolesanywhere("trust-anchor"),
    "aws:rolesanywhere/profile:Profile": _rolesanywhere("profile"),
}


# What pulumi_tls made in this process (keys, requests, certificates), by resource and inputs. A real
# stack makes each once and keeps it in its state; here a second preview of the stack in one process
# (a long-lived Automation API caller, the test suite) reuses them instead of searching for RSA
# primes again (20-500 ms a key) and signing again. Changed inputs (a key's size, a certificate's
# names or its issuer's key) make a new one. Inputs go into the key as a digest only (a
# certificate's inputs hold its issuer's private key: no second copy of it is kept). Bounded: a
# process that previews many stacks starts over.
_TLS_MADE: dict[tuple[str, ...], dict[str, Any]] = {}
_TLS_MADE_LIMIT = 4096


def _made_once(
    ctx: MockContext,
    typ: str,
    name: str,
    inputs: dict[str, Any],
    urn: str | None,
    computed: Callable[..., dict[str, Any]],
) -> dict[str, Any]:
    resource = urn or f"{ctx.stack}::{typ}::{name}"  # the URN tells apart equal names under other parents
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
    made = (ctx.account_id, ctx.region, resource, digest)
    # Read once: another registration thread may clear the memo between a store and a second read.
    value = _TLS_MADE.get(made)
    if value is None:
        value = computed(ctx, inputs, name)
        if len(_TLS_MADE) >= _TLS_MADE_LIMIT:
            _TLS_MADE.clear()
        _TLS_MADE[made] = value
    return dict(value)


def mock_state(
    ctx: MockContext, typ: str, name: str, inputs: dict[str, Any], urn: str | None = None
) -> tuple[str, dict[str, Any]]:
    """(id, state) the mocked engine returns for one resource: inputs plus realistic computed outputs
    (`urn`, when the caller knows it, identifies the resource for what pulumi_tls made)."""
    rid = resource_id(ctx, typ, name, inputs)
    state = dict(inputs)
    computed = COMPUTED.get(typ)
    if computed is not None and typ.startswith("tls:"):
        state.update(_made_once(ctx, typ, name, inputs, urn, computed))
    elif computed is not None:
        state.update(computed(ctx, inputs, name))
    if typ.startswith("aws:"):
        arn = arn_for(ctx, typ, name, state.get("bucket") if typ.startswith("aws:s3/bucket") else rid, state)
        if arn:
            state.setdefault("arn", arn)
        state.setdefault("tagsAll", inputs.get("tags") or {})
    if typ.startswith("random:") or typ.startswith("tls:"):
        rid = short_hash(typ, name, length=16) if typ != "random:index/randomPet:RandomPet" else state["id"]
    return rid, state
