"""The offline harness itself: what it refuses (so a plan never looks complete when it is not),
provider pinning of every cloud resource, and secret masking of a whole real plan."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest

from programs import mock_resources
from programs.offline import OfflineProgramError, Secret, reveal, run_offline, secret_strings
from programs.plan import SECRET_MASK, build_plan
from programs.platformctl.cli import main
from tests.conftest import shipped_config


def _run(program):
    return run_offline("dev", shipped_config("dev"), program=program)


def test_a_provider_invoke_is_refused():
    def program(cfg):
        aws.get_availability_zones_output()
        return {}

    with pytest.raises(OfflineProgramError, match="invoked aws:index/getAvailabilityZones"):
        _run(program)


def test_reading_an_existing_resource_is_refused():
    """`Resource.get` would return made-up state under mocks and be missing from the plan."""

    def program(cfg):
        vpc = aws.ec2.Vpc.get("existing", "vpc-0123456789abcdef0")
        aws.ec2.Subnet("s", vpc_id=vpc.id, cidr_block="10.0.0.0/24")
        return {}

    with pytest.raises(OfflineProgramError, match=r"reads an existing aws:ec2/vpc:Vpc 'existing' \(Resource.get\)"):
        _run(program)


def test_a_remote_component_is_refused():
    """A multi-language component (e.g. pulumi_eks.Cluster) registers alone under mocks."""

    class RemoteCluster(pulumi.ComponentResource):
        def __init__(self, name: str):
            super().__init__("eks:index:Cluster", name, None, None, remote=True)

    def program(cfg):
        RemoteCluster("cluster")
        return {}

    with pytest.raises(OfflineProgramError, match="eks:index:Cluster 'cluster' is a multi-language"):
        _run(program)


def test_preview_reports_a_program_error_in_one_line_with_exit_3(monkeypatch, tmp_path, capsys):
    def program(cfg):
        aws.ec2.Vpc.get("existing", "vpc-0123456789abcdef0")
        return {}

    monkeypatch.setattr("programs.stack.build_stack", program)
    out = tmp_path / "plan.json"
    assert main(["preview", "--stack", "dev", "--offline", "--json", str(out)]) == 3
    err = capsys.readouterr().err
    assert "Resource.get" in err and "Traceback" not in err
    plan = json.loads(out.read_text())
    assert plan["resources"] == [] and any("Resource.get" in e for e in plan["errors"])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_cloud_resource_goes_through_the_explicit_providers(stack, request):
    """A resource on a default provider would ignore `allowedAccountIds` (AWS) or use the ambient
    kubeconfig (Kubernetes) in a real `pulumi up`."""
    run = request.getfixturevalue(f"{stack}_run")
    aws_provider = run.one("pulumi:providers:aws")
    assert aws_provider.inputs["region"] == run.config.region
    assert json.loads(aws_provider.inputs["allowedAccountIds"]) == [run.config.account_id]
    k8s_provider = run.one("pulumi:providers:kubernetes")
    assert isinstance(k8s_provider.inputs["kubeconfig"], Secret)
    for res in run.resources:
        if not res.custom:
            continue
        package = res.type.split(":", 1)[0]
        if package == "aws":
            assert res.provider == aws_provider.name, res.urn
        elif package == "kubernetes":
            assert res.provider == k8s_provider.name, res.urn


def _secret_strings(value) -> list[str]:
    # Short secrets (e.g. booleans rendered as text) would match by accident; the leak check wants real material.
    return [s for s in secret_strings(value) if len(s) >= 16]


def test_the_dev_plan_masks_every_secret_input_and_output(dev_run):
    """Private keys, join tokens, the PKI bundle and the kubeconfig never reach the plan JSON."""
    secrets = _secret_strings([r.inputs for r in dev_run.resources]) + _secret_strings(dev_run.outputs)
    assert len(secrets) > 20  # CA keys, tokens, kubeconfig...: the check below has something to find
    masked = json.dumps(build_plan(dev_run))
    assert "PRIVATE KEY" not in masked
    leaked = [s[:40] for s in secrets if s in masked]
    assert leaked == []
    plan = json.loads(masked)
    assert plan["outputs"]["kubeconfig"] == SECRET_MASK
    shown = build_plan(dev_run, show_secrets=True)
    assert shown["outputs"]["kubeconfig"].startswith("apiVersion: v1")


def test_a_duplicate_urn_is_refused_as_the_engine_would():
    def program(cfg):
        aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
        aws.ec2.Vpc("vpc", cidr_block="10.1.0.0/16")
        return {}

    with pytest.raises(OfflineProgramError, match=r"duplicate resource URN .*aws:ec2/vpc:Vpc::vpc"):
        _run(program)


def test_additional_secret_outputs_stay_secret_downstream_as_in_the_engine():
    """tls private keys and random passwords are secret outputs (the engine honours the providers'
    `additional_secret_outputs`); a value derived from them must be masked in the plan too."""
    import pulumi_random as random
    import pulumi_tls as tls

    def program(cfg):
        password = random.RandomPassword("pw", length=20)
        key = tls.PrivateKey("key", algorithm="ECDSA", ecdsa_curve="P256")
        aws.s3.BucketObjectv2("obj", bucket="b", key="k", content=key.private_key_pem)
        return {"password": password.result, "publicKey": key.public_key_pem}

    run = _run(program)
    content = run.one("aws:s3/bucketObjectv2:BucketObjectv2").inputs["content"]
    assert isinstance(content, Secret) and "PRIVATE KEY" in content.value
    assert isinstance(run.outputs["password"], Secret)
    assert not isinstance(run.outputs["publicKey"], Secret)  # only the named outputs
    assert "PRIVATE KEY" not in json.dumps(build_plan(run))


def _ca_program(curve: str):
    import pulumi_tls as tls

    def program(cfg):
        key = tls.PrivateKey("ca-key", algorithm="ECDSA", ecdsa_curve=curve)
        cert = tls.SelfSignedCert(
            "ca",
            private_key_pem=key.private_key_pem,
            subject={"common_name": "ca"},
            validity_period_hours=24,
            is_ca_certificate=True,
            allowed_uses=["cert_signing"],
        )
        return {"publicKey": key.public_key_pem, "cert": cert.cert_pem}

    return program


def test_a_stack_previewed_again_in_one_process_keeps_its_keys_and_certificates():
    """As a stack's state keeps what pulumi_tls made, so the second plan equals the first; changed
    inputs, or another stack, make new ones."""
    first = _run(_ca_program("P256")).outputs
    assert _run(_ca_program("P256")).outputs == first
    other_curve = _run(_ca_program("P384")).outputs
    assert other_curve["publicKey"] != first["publicKey"]
    assert other_curve["cert"] != first["cert"]  # its key is one of its inputs
    other_stack = run_offline("dev-b", shipped_config("dev"), program=_ca_program("P256")).outputs
    assert other_stack["publicKey"] != first["publicKey"]


def test_equal_names_under_different_parents_are_different_keys():
    """The engine tells them apart by URN (the parent's type is part of it), and so does the memo."""
    import pulumi_tls as tls

    class Issuer(pulumi.ComponentResource):
        def __init__(self, token: str):
            super().__init__(token, "issuer")
            self.key = tls.PrivateKey("signing", algorithm="ED25519", opts=pulumi.ResourceOptions(parent=self))

    def program(cfg):
        keys = [Issuer(f"test:index:{kind}").key for kind in ("Primary", "Edge")]
        return {kind: key.public_key_pem for kind, key in zip(("primary", "edge"), keys, strict=True)}

    outputs = _run(program).outputs
    assert outputs["primary"] != outputs["edge"]


def test_what_pulumi_tls_made_keeps_no_input_in_plain_text(monkeypatch):
    """Its inputs hold private keys (a certificate's issuer key): the memo keeps only their digest."""
    monkeypatch.setattr(mock_resources, "_TLS_MADE", {})
    run = _run(_ca_program("P256"))
    assert any("PRIVATE KEY" in json.dumps(reveal(r.inputs)) for r in run.resources)  # the certificate's
    assert mock_resources._TLS_MADE and not [k for k in mock_resources._TLS_MADE if "PRIVATE KEY" in repr(k)]


class _ClearedAfterEachStore(dict):
    """The memo as another registration thread sees it when that thread clears it right after this
    one stored its entry."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.clear()


def test_a_memo_cleared_by_another_thread_right_after_a_store_still_answers(monkeypatch):
    monkeypatch.setattr(mock_resources, "_TLS_MADE", _ClearedAfterEachStore())
    ctx = mock_resources.MockContext(region="eu-west-1", account_id="111111111111", stack="dev")
    _id, state = mock_resources.mock_state(ctx, "tls:index/privateKey:PrivateKey", "key", {"algorithm": "ED25519"})
    assert "PRIVATE KEY" in state["privateKeyPem"]


def test_what_pulumi_tls_made_is_kept_within_a_bound(monkeypatch):
    monkeypatch.setattr(mock_resources, "_TLS_MADE", {})
    monkeypatch.setattr(mock_resources, "_TLS_MADE_LIMIT", 3)
    ctx = mock_resources.MockContext(region="eu-west-1", account_id="111111111111", stack="dev")
    for i in range(7):
        mock_resources.mock_state(ctx, "tls:index/privateKey:PrivateKey", f"key-{i}", {"algorithm": "ED25519"})
        assert len(mock_resources._TLS_MADE) <= 3


def test_stack_files_read_like_the_engine_project_values_then_stack_values(tmp_path):
    from programs.offline import read_stack_file

    (tmp_path / "Pulumi.yaml").write_text(
        "name: k8s-platform\nruntime: python\nconfig:\n"
        "  k8s-platform:environment: {value: staging}\n"
        "  k8s-platform:tags:\n    default: {owner: a, cost-center: b}\n"
        "  pulumi:tags:\n    value: {pulumi:template: k8s-platform}\n"
    )
    (tmp_path / "Pulumi.s.yaml").write_text(
        "config:\n  k8s-platform:environment: dev\n  k8s-platform:accountId: '012345678901'\n"
    )
    raw = read_stack_file(tmp_path / "Pulumi.s.yaml")
    assert raw["k8s-platform:environment"] == "dev"  # the stack file wins
    assert raw["k8s-platform:tags"] == {"owner": "a", "cost-center": "b"}  # project value fills in
    assert raw["k8s-platform:accountId"] == "012345678901"


def test_an_encrypted_stack_value_is_a_clear_input_error(tmp_path):
    from programs.offline import read_stack_file

    (tmp_path / "Pulumi.s.yaml").write_text("config:\n  k8s-platform:accountId:\n    secure: v1:abc\n")
    with pytest.raises(ValueError, match="k8s-platform:accountId: encrypted"):
        read_stack_file(tmp_path / "Pulumi.s.yaml")
