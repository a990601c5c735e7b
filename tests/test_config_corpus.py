"""Regression corpus of careless and hostile stack files (issue 21) and the 10-mistake file (issue 13).

Each case goes through what `platformctl preview --offline` does, in-process: exit 2, the key (or the
file) named, one printable line per problem, no traceback, and no resource ever registered.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from programs import offline
from programs.platformctl import cli
from tests import fast_yaml
from tests.conftest import DELETE, shipped_config


@pytest.fixture
def no_registration(monkeypatch):
    registered: list[str] = []
    original = offline._CaptureMonitor.RegisterResource

    def spy(self, request):
        registered.append(request.type)
        return original(self, request)

    monkeypatch.setattr(offline._CaptureMonitor, "RegisterResource", spy)
    yield registered
    assert registered == [], f"resources were registered: {registered[:5]}"


def preview(path: Path, tmp_path: Path, capsys) -> tuple[int, list[str]]:
    """Exit code and stderr lines of `platformctl preview --offline` on `path`; the JSON holds no resources."""
    out = tmp_path / "plan.json"
    code = cli.main(["preview", "--stack", "dev", "--offline", "--config-file", str(path), "--json", str(out)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if out.exists():
        assert json.loads(out.read_text())["resources"] == []
    return code, [line for line in err.splitlines() if line.strip()]


def write_config(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "Pulumi.case.yaml"
    path.write_text(fast_yaml.dump({"config": config}, sort_keys=False, allow_unicode=True))
    return path


def mutated(stack: str, key: str, value: Any) -> dict[str, Any]:
    """A shipped stack's config with `key` (dots; digits index lists) set to `value` (or removed: DELETE)."""
    cfg = copy.deepcopy(shipped_config(stack))
    cfg.pop("pulumi:tags", None)  # project config, merged back in by the reader
    top, *rest = key.split(".")
    full = top if ":" in top else f"k8s-platform:{top}"
    if not rest:
        cfg[full] = value
        return cfg
    node: Any = cfg.setdefault(full, {})
    for part in rest[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    last = rest[-1]
    if value is DELETE:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return cfg


def assert_refused(lines: list[str], code: int, expected: str) -> None:
    assert code == 2, lines
    problems = [line.strip() for line in lines[1:]] if lines and lines[0].startswith("error: invalid") else lines
    assert any(p.startswith(expected + ":") or p.startswith(f"error: {expected}") for p in problems), lines
    for line in lines:
        assert len(line) <= 700 and "\x1b" not in line and "\x00" not in line, line


# ------------------------------------------------------------------------------------- file level

FILES = {
    "billion-laughs": "config:\n  k8s-platform:tags:\n"
    + "".join(
        f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n" for i in range(10)
    ),
    "recursive-alias": "config:\n  k8s-platform:tags: &a [*a]\n",
    "top-level-list": "- config\n- x\n",
    "top-level-scalar": "just text\n",
    "deep-nesting": "config:\n  k8s-platform:network: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-mapping": "config:\n  k8s-platform:network:\n" + "".join("  " * (i + 2) + f"k{i}:\n" for i in range(300)),
    "syntax-error": "config:\n  k8s-platform:environment: [dev\n  aws:region: us-east-1\n",
    "config-a-list": "config: [a, b]\n",
    "secure-value": "config:\n  k8s-platform:tags:\n    secure: AAABAJ\n",
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_unreadable_files_name_the_file(name, tmp_path, capsys, no_registration):
    path = tmp_path / f"{name}.yaml"
    path.write_text(FILES[name])
    code, lines = preview(path, tmp_path, capsys)
    assert code == 2, lines
    assert len(lines) == 1 and str(path) in lines[0], lines


@pytest.mark.parametrize(
    "data",
    [
        "config:\n  aws:region: us-east-1\n".encode("utf-16"),
        bytes(range(256)) * 4,
        b"config:\n  k8s-platform:environment: dev\x00\n",
    ],
    ids=["utf-16", "random-bytes", "nul"],
)
def test_undecodable_bytes_name_the_file(data, tmp_path, capsys, no_registration):
    path = tmp_path / "Pulumi.bin.yaml"
    path.write_bytes(data)
    code, lines = preview(path, tmp_path, capsys)
    assert code == 2 and len(lines) == 1 and str(path) in lines[0], lines


def test_a_directory_names_it(tmp_path, capsys, no_registration):
    code, lines = preview(tmp_path, tmp_path, capsys)
    assert code == 2 and lines == [f"error: {tmp_path}: is a directory, not a stack file (Pulumi.<stack>.yaml)"]


DEV = Path(__file__).resolve().parents[1] / "Pulumi.dev.yaml"


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("cost-center: cc-1234", "cost-center: 2024-01-01", "k8s-platform:tags.cost-center"),
        ("cost-center: cc-1234", "cost-center: !!binary aGVsbG8=", "k8s-platform:tags.cost-center"),
        ("cost-center: cc-1234", "cost-center: !!set {a, b}", "k8s-platform:tags.cost-center"),
        ("cost-center: cc-1234", "cost-center: .inf", "k8s-platform:tags.cost-center"),
        ("    owner: platform-team", "    owner: platform-team\n    owner: someone-else", "k8s-platform:tags.owner"),
        ("    owner: platform-team", "    1: one", "k8s-platform:tags"),
        ("    owner: platform-team", "    true: yes", "k8s-platform:tags"),
        ("    owner: platform-team", "    ~: nothing", "k8s-platform:tags"),
        ("  k8s-platform:karpenter:", "  karpenter:", "karpenter"),
        ("  aws:region: us-east-1", "  aws:regoin: us-east-1", "aws:regoin"),
        ("config:", "confg: {}\nconfig:", "confg"),
        ("  k8s-platform:tags:", "  k8s-platfrom:tags:", "k8s-platfrom:tags"),
    ],
)
def test_yaml_level_slips_name_the_key(replace, by, expected, tmp_path, capsys, no_registration):
    text = DEV.read_text()
    assert replace in text
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text.replace(replace, by, 1))
    code, lines = preview(path, tmp_path, capsys)
    assert_refused(lines, code, expected)


def test_duplicate_key_names_both_lines(tmp_path, capsys):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(DEV.read_text().replace("    owner: platform-team", "    owner: a\n    owner: b", 1))
    _, lines = preview(path, tmp_path, capsys)
    assert any("k8s-platform:tags.owner: duplicate key (lines 7 and 8)" in line for line in lines), lines


def test_unquoted_account_id_hints_to_quote_it(tmp_path, capsys):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(DEV.read_text().replace('accountId: "111111111111"', "accountId: 011111111111"))
    code, lines = preview(path, tmp_path, capsys)
    assert_refused(lines, code, "k8s-platform:accountId")
    assert any("quote it" in line for line in lines)


# ------------------------------------------------------------------------------------- value level

CIDRS_41 = [f"203.0.{i}.0/24" for i in range(41)]
LONG = "A" * 100_000
CASES = [
    # guardrails bypassed through config
    (
        "dev",
        "cluster.k3s.apiAccess",
        {"internetFacing": True, "allowedCidrs": ["0.0.0.0/1", "128.0.0.0/1"]},
        "k8s-platform:cluster.k3s.apiAccess.allowedCidrs",
    ),
    (
        "dev",
        "cluster.k3s.apiAccess",
        {"internetFacing": True, "allowedCidrs": ["1.0.0.0/7"]},
        "k8s-platform:cluster.k3s.apiAccess.allowedCidrs",
    ),
    *[
        ("dev", "network.vpcCidr", c, "k8s-platform:network.vpcCidr")
        for c in ("127.0.0.0/16", "0.0.0.0/16", "169.254.0.0/16", "198.18.0.0/16", "240.0.0.0/16")
    ],
    (
        "prod",
        "cluster.eks.endpoint",
        {"publicAccess": True, "publicAccessCidrs": CIDRS_41},
        "k8s-platform:cluster.eks.endpoint.publicAccessCidrs",
    ),
    (
        "prod",
        "cluster.eks.endpoint",
        {"publicAccess": True, "publicAccessCidrs": ["0.0.0.0/1", "128.0.0.0/1"]},
        "k8s-platform:cluster.eks.endpoint.publicAccessCidrs",
    ),
    # anchors and Unicode digits
    ("dev", "accountId", "111111111111\n", "k8s-platform:accountId"),
    ("dev", "accountId", "１１１１１１１１１１１１", "k8s-platform:accountId"),
    ("dev", "cluster.name", "dev-k3s\n", "k8s-platform:cluster.name"),
    ("prod", "workloads.0.namespace", "orders\n", "k8s-platform:workloads[0].namespace"),
    ("dev", "karpenter.nodePools.0.consolidateAfter", "30s\n", "k8s-platform:karpenter.nodePools[0].consolidateAfter"),
    ("dev", "karpenter.nodePools.0.limits.memory", "256Gi\n", "k8s-platform:karpenter.nodePools[0].limits.memory"),
    (
        "dev",
        "workloads.0.policies.statements.0.actions",
        ["s3:PutObject\n"],
        "k8s-platform:workloads[0].policies.statements[0].actions",
    ),
    (
        "dev",
        "identity.issuers.1.hostedZoneId",
        "Z0DEVPLATFORMEXAMPLE1\n",
        "k8s-platform:identity.issuers[1].hostedZoneId",
    ),
    ("dev", "identity.issuers.0.bucketName", "dev-k3s-oidc-bucket\n", "k8s-platform:identity.issuers[0].bucketName"),
    *[
        (
            "prod",
            "cluster.eks.access.adminRoleArns",
            [f"arn:{p}:iam::222222222222:role/platform-admin"],
            "k8s-platform:cluster.eks.access.adminRoleArns",
        )
        for p in ("aws-cn", "aws-us-gov", "awsx")
    ],
    (
        "prod",
        "cluster.eks.access.adminRoleArns",
        ["arn:aws:iam::222222222222:role/" + "r" * 65],
        "k8s-platform:cluster.eks.access.adminRoleArns",
    ),
    # weak or no validation
    ("dev", "karpenter.nodePools.0.limits.cpu", -1, "k8s-platform:karpenter.nodePools[0].limits.cpu"),
    ("dev", "karpenter.nodePools.0.limits.memory", "-4000Gi", "k8s-platform:karpenter.nodePools[0].limits.memory"),
    *[
        (
            "prod",
            "karpenter.nodePools.0.budgets.1.schedule",
            s,
            "k8s-platform:karpenter.nodePools[0].budgets[1].schedule",
        )
        for s in ("every weekday at nine", "60 9 * * mon-fri", "*/0 9 * * *")
    ],
    ("dev", "cluster.k3s.snapshots.scheduleCron", "99 99 99 99 99", "k8s-platform:cluster.k3s.snapshots.scheduleCron"),
    (
        "dev",
        "workloads.0.policies.statements.0.sid",
        "Write\x00Reports",
        "k8s-platform:workloads[0].policies.statements[0].sid",
    ),
    ("dev", "workloads.0.policies.statements.0.sid", LONG, "k8s-platform:workloads[0].policies.statements[0].sid"),
    (
        "dev",
        "workloads.0.policies.statements.0.resources",
        ["not-an-arn"],
        "k8s-platform:workloads[0].policies.statements[0].resources",
    ),
    (
        "dev",
        "workloads.0.policies.statements",
        [
            {"sid": "Same", "actions": ["s3:PutObject"], "resources": ["arn:aws:s3:::b/*"]},
            {"sid": "Same", "actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::b/*"]},
        ],
        "k8s-platform:workloads[0].policies.statements",
    ),
    (
        "dev",
        "workloads.0.policies.statements.0.conditions",
        {"StringEquals": {"aws:PrincipalTag/team": "a\x00b"}},
        "k8s-platform:workloads[0].policies.statements[0].conditions",
    ),
    (
        "dev",
        "workloads.0.policies.statements.0.conditions",
        {"StringEqual\n": {"aws:SourceAccount": "111111111111"}},
        "k8s-platform:workloads[0].policies.statements[0].conditions",
    ),
    (
        "dev",
        "workloads.0.policies.managedArns",
        ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"] * 2,
        "k8s-platform:workloads[0].policies.managedArns",
    ),
    ("dev", "karpenter.nodePools.1.taints.0.value", "state ful", "k8s-platform:karpenter.nodePools[1].taints[0].value"),
    (
        "dev",
        "karpenter.nodePools.1.taints",
        [{"key": "a", "value": "x", "effect": "NoSchedule"}, {"key": "a", "value": "y", "effect": "NoSchedule"}],
        "k8s-platform:karpenter.nodePools[1].taints",
    ),
    *[
        ("dev", "tags", {"owner": "platform-team", "cost-center": "cc-1234", k: v}, f"k8s-platform:tags.{e}")
        for k, v, e in (
            ("team\x00", "x", "team\\x00"),
            ("team", "a\tb", "team"),
            ("team", "a\nb", "team"),
            ("team", "a\u200bb", "team"),
        )
    ],
    ("dev", "karpenter.nodePools.0.expireAfter", "9999999999h", "k8s-platform:karpenter.nodePools[0].expireAfter"),
    ("dev", "karpenter.nodePools.0.weight", True, "k8s-platform:karpenter.nodePools[0].weight"),
    ("prod", "karpenter.replicas", True, "k8s-platform:karpenter.replicas"),
    ("dev", "karpenter.nodePools.0.limits.cpu", True, "k8s-platform:karpenter.nodePools[0].limits.cpu"),
    ("dev", "network.flowLogs.retentionDays", True, "k8s-platform:network.flowLogs.retentionDays"),
    ("prod", "cluster.eks.systemNodeGroup.maxSize", True, "k8s-platform:cluster.eks.systemNodeGroup.maxSize"),
    ("dev", "karpenter.nodePools.1.instanceSizes", ["0xlarge"], "k8s-platform:karpenter.nodePools[1].instanceSizes"),
    ("prod", "karpenter.nodeClasses.0.amiAlias", "al2023@v20269999", "k8s-platform:karpenter.nodeClasses[0].amiAlias"),
    ("dev", "network.availabilityZones", ["us-east-1a", "us-east-1z"], "k8s-platform:network.availabilityZones"),
    ("dev", "aws:region", "xx-fake-9", "aws:region"),
    *[
        ("dev", "identity.issuers.0.bucketName", b, "k8s-platform:identity.issuers[0].bucketName")
        for b in ("sthree-oidc-bucket", "oidc-bucket-s3alias", "xn--oidc-bucket")
    ],
    # silently ignored
    (
        "dev",
        "tags",
        {"owner": "platform-team", "cost-center": "cc-1234", "environment": "qa"},
        "k8s-platform:tags.environment",
    ),
    (
        "dev",
        "tags",
        {"owner": "platform-team", "cost-center": "cc-1234", "managed-by": "me"},
        "k8s-platform:tags.managed-by",
    ),
    (
        "dev",
        "cluster.k3s.apiAccess",
        {"internetFacing": False, "allowedCidrs": ["203.0.113.0/24"]},
        "k8s-platform:cluster.k3s.apiAccess.allowedCidrs",
    ),
    ("prod", "cluster.k3s", {"version": "v1.35.1+k3s1"}, "k8s-platform:cluster.k3s"),
    ("dev", "cluster.eks", {"version": "1.35"}, "k8s-platform:cluster.eks"),
    ("dev", "tags", DELETE, "k8s-platform:tags"),
    # messages
    ("dev", "cluster.name", "dev\nk8s-platform:forged: problem", "k8s-platform:cluster.name"),
    ("dev", "cluster.name", "\x1b[31mred\x1b[0m", "k8s-platform:cluster.name"),
    ("dev", "cluster.name", LONG, "k8s-platform:cluster.name"),
]


@pytest.mark.parametrize(("stack", "key", "value", "expected"), CASES, ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)])
def test_invalid_values_are_refused_naming_the_key(stack, key, value, expected, tmp_path, capsys, no_registration):
    raw = mutated(stack, key, value)
    if value is DELETE and key == "tags":
        raw.pop("k8s-platform:tags")
    code, lines = preview(write_config(tmp_path, raw), tmp_path, capsys)
    assert_refused(lines, code, expected)
    assert not any(line.strip().startswith("k8s-platform:forged") for line in lines)


# ---------------------------------------------------------------------------- issue 13: 10 mistakes

TEN_MISTAKES = {
    # replace in Pulumi.prod.yaml -> the key that must be named
    '  k8s-platform:accountId: "222222222222"': ("  k8s-platform:accountId: 022222222222", "k8s-platform:accountId"),
    "  k8s-platform:tags:": ("  k8s-platfrom:tags:", "k8s-platfrom:tags"),
    "availabilityZones: [us-east-1a, us-east-1b, us-east-1c]": (
        "availabilityZones: [us-east-1a, us-east-1b, us-east-1z]",
        "k8s-platform:network.availabilityZones",
    ),
    "natGateways: one-per-az": ("natGateways: single", "k8s-platform:network.natGateways"),
    "    kind: eks\n": ("    kind: eks\n    k3s:\n      version: v1.35.1+k3s1\n", "k8s-platform:cluster.k3s"),
    "        adminRoleArns:\n          - arn:aws:iam::222222222222:role/platform-admin\n": (
        "        adminRoleArns: []\n",
        "k8s-platform:cluster.eks.access.adminRoleArns",
    ),
    "    replicas: 2\n": ("    replicas: 1\n", "k8s-platform:karpenter.replicas"),
    'limits: {cpu: "1000", memory: 4000Gi}': (
        'limits: {cpu: "-1", memory: 4000Gi}',
        "k8s-platform:karpenter.nodePools[0].limits.cpu",
    ),
    "          - sid: OrdersTable": (
        "          - sid: Orders Table",
        "k8s-platform:workloads[0].policies.statements[0].sid",
    ),
    "  k8s-platform:karpenter:\n": (
        "  k8s-platform:addons:\n    cloudControllerManager:\n      enabled: true\n  k8s-platform:karpenter:\n",
        "k8s-platform:addons.cloudControllerManager.enabled",
    ),
}


def problems_of_mistakes(mistakes: dict[str, tuple[str, str]], tmp_path, capsys) -> list[str]:
    """The problem lines `preview` prints for Pulumi.prod.yaml with `mistakes` (old -> (new, key)) applied."""
    text = (Path(__file__).resolve().parents[1] / "Pulumi.prod.yaml").read_text()
    for old, (new, _) in mistakes.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(text)
    code, lines = preview(path, tmp_path, capsys)
    assert code == 2
    problems = [line.strip() for line in lines[1:]]
    named = [p.split(": ", 1)[0] for p in problems]
    assert sorted(named) == sorted(key for _, key in mistakes.values()), problems
    return problems


def test_ten_mistakes_are_ten_problems_in_one_run(tmp_path, capsys, no_registration):
    problems = problems_of_mistakes(TEN_MISTAKES, tmp_path, capsys)
    assert len(problems) == 10
    # The typo's line says what it meant and that the meant key is therefore missing.
    assert any(
        "did you mean 'k8s-platform:tags'" in p and p.endswith("k8s-platform:tags is required") for p in problems
    )


# Field errors inside list items beside cross-field rules on their sibling items: the rule about
# the sibling (a reference, a duplicate) must still run although its list has a failed item.
TEN_MISTAKES_IN_LISTS = {
    '  k8s-platform:accountId: "222222222222"': ('  k8s-platform:accountId: "12345"', "k8s-platform:accountId"),
    "    cost-center: cc-1234\n": ("", "k8s-platform:tags"),
    "availabilityZones: [us-east-1a, us-east-1b, us-east-1c]": (
        "availabilityZones: [us-east-1a, us-west-2b, us-east-1c]",
        "k8s-platform:network.availabilityZones",
    ),
    "retentionDays: 365": ("retentionDays: 13", "k8s-platform:network.flowLogs.retentionDays"),
    "authenticationMode: API": ("authenticationMode: FOO", "k8s-platform:cluster.eks.authenticationMode"),
    "        minSize: 3": ("        minSize: 4", "k8s-platform:cluster.eks.systemNodeGroup.desiredSize"),
    "      - name: general\n        nodeClass: default": (
        "      - name: general\n        nodeClass: missing",
        "k8s-platform:karpenter.nodePools[0].nodeClass",
    ),
    "        weight: 10\n": ("        weight: 500\n", "k8s-platform:karpenter.nodePools[1].weight"),
    "        - arn:aws:iam::333333333333:role/shared-catalog-reader": (
        "        - arn:aws:iam::333:role/x",
        "k8s-platform:workloads[0].crossAccountRoleArns",
    ),
    "    - name: billing-export": ("    - name: orders-api", "k8s-platform:workloads[1].name"),
}


def test_ten_mistakes_in_list_items_are_ten_problems_in_one_run(tmp_path, capsys, no_registration):
    assert len(problems_of_mistakes(TEN_MISTAKES_IN_LISTS, tmp_path, capsys)) == 10


@pytest.mark.patches_outside_the_program
def test_a_crash_still_writes_the_json_with_the_error(tmp_path, monkeypatch):
    """If platformctl itself fails (a bug), the plan JSON holds the error, as the README documents."""
    from programs.api import offline_preview

    def broken(*_args, **_kwargs):
        raise KeyError("boom\nsecond line")

    monkeypatch.setattr(offline_preview, "build_plan", broken)
    out = tmp_path / "plan.json"
    with pytest.raises(KeyError):
        cli.main(["preview", "--stack", "dev", "--offline", "--json", str(out)])
    plan = json.loads(out.read_text())
    assert plan["resources"] == []
    assert plan["errors"] == ["platformctl crashed: KeyError: 'boom\\nsecond line'"]


def test_every_problem_line_is_one_printable_line(tmp_path, capsys):
    raw = mutated("dev", "cluster.name", "x\x1b[2J\ny" + "z" * 5000)
    raw["k8s-platform:tags"] = {"owner": "a\nk8s-platform:fake: forged", "cost-center": "cc"}
    code, lines = preview(write_config(tmp_path, raw), tmp_path, capsys)
    assert code == 2
    assert [line.split(": ", 1)[0].strip() for line in lines[1:]] == [
        "k8s-platform:tags.owner",
        "k8s-platform:cluster.name",
    ]
    assert all(len(line) < 700 and "\x1b" not in line for line in lines)
