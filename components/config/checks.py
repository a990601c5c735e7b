"""Value checks that parse instead of pattern-matching by accident.

Every pattern here is used with `fullmatch` (a trailing newline never passes) and compiled ASCII-only
(`\\d` is 0-9, not every Unicode digit). CIDRs are classified against explicit tables, allowlists are
judged as the set of addresses they admit, cron expressions and durations are parsed and bounded, and
every value a message echoes goes through `shown` (control characters escaped, long values shortened),
so a value can never forge a second problem line or reach the terminal as an escape sequence.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

# ---------------------------------------------------------------------------------------------- messages

SHOWN_MAX = 80


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """`value` as a message may echo it: control/format characters escaped, at most `limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    out = []
    for ch in text:
        if unicodedata.category(ch)[0] in ("C", "Z") and ch != " ":
            # Cc control, Cf format (zero-width, bidi overrides), Cs/Co/Cn, Zl/Zp line breaks, odd spaces.
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    escaped = "".join(out)
    if len(escaped) > limit:
        return f"{escaped[:limit]}...({len(text)} characters)"
    return escaped


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when one choice is close, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


# -------------------------------------------------------------------------------------------- patterns


def ascii_pattern(pattern: str) -> re.Pattern[str]:
    """A pattern meant for `fullmatch`, ASCII-only."""
    return re.compile(pattern, re.ASCII)


ACCOUNT_ID = ascii_pattern(r"[0-9]{12}")
# Commercial regions: two letters, one or more words, a number (us-east-1, ap-southeast-5, eu-central-2).
REGION = ascii_pattern(
    r"(af|ap|ca|eu|il|me|mx|sa|us)-(central|north|northeast|northwest|south|southeast|"
    r"southwest|east|west)-[1-9]"
)
ZONE = ascii_pattern(r"(?P<region>[a-z]{2}(-[a-z]+)+-[0-9]+)(?P<letter>[a-z])")
IAM_NAME_CHARS = r"[A-Za-z0-9+=,.@_-]"
# arn:aws:iam::<account>:role/<path/><name>: name 1-64 characters (IAM), path at most 512.
IAM_ROLE_ARN = ascii_pattern(
    rf"arn:aws:iam::[0-9]{{12}}:role/(?P<path>({IAM_NAME_CHARS}+/)*)(?P<name>{IAM_NAME_CHARS}{{1,64}})"
)
IAM_POLICY_ARN = ascii_pattern(
    rf"arn:aws:iam::(aws|[0-9]{{12}}):policy/(?P<path>({IAM_NAME_CHARS}+/)*)"
    rf"(?P<name>{IAM_NAME_CHARS}{{1,128}})"
)
# An ARN a policy statement may name: `*`, or arn:aws:<service>:<region>:<account>:<resource>.
RESOURCE_ARN = ascii_pattern(r"\*|arn:aws:[a-z0-9-]+:([a-z0-9-]*|\*):([0-9]{12}|aws|\*)?:[\x21-\x7e]+")
SID = ascii_pattern(r"[A-Za-z0-9]{1,128}")


def role_arn_problem(value: str) -> str | None:
    m = IAM_ROLE_ARN.fullmatch(value)
    if not m:
        return (
            f"'{shown(value)}' is not an IAM role ARN like arn:aws:iam::123456789012:role/name (partition aws, "
            "12-digit account, a role name of 1-64 characters)"
        )
    if len(m.group("path")) > 512:
        return f"'{shown(value)}': the role path is at most 512 characters"
    return None


# ----------------------------------------------------------------------------------------------- CIDRs

RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
# Not public either: carrier-grade NAT (RFC 6598), which VPCs accept as secondary blocks.
NON_PUBLIC = RFC1918 + (ipaddress.ip_network("100.64.0.0/10"),)
# An allowlist may admit at most this much public address space in total: one /8.
ALLOWLIST_MAX_PUBLIC = 2**24


def in_ranges(net: ipaddress.IPv4Network, ranges: Iterable[ipaddress.IPv4Network]) -> bool:
    return any(net.subnet_of(r) for r in ranges)


def public_addresses(cidrs: Iterable[ipaddress.IPv4Network]) -> int:
    """How many public addresses the union of `cidrs` admits (overlaps counted once)."""
    total = 0
    for net in ipaddress.collapse_addresses(cidrs):
        size = net.num_addresses
        for private in NON_PUBLIC:
            if net.overlaps(private):
                size -= (private if private.subnet_of(net) else net).num_addresses
        total += size
    return total


def allowlist_problem(cidrs: list[ipaddress.IPv4Network]) -> str | None:
    """Refuse an allowlist whose union covers more public space than one /8 ([0.0.0.0/1, 128.0.0.0/1] is /0)."""
    public = public_addresses(cidrs)
    if public > ALLOWLIST_MAX_PUBLIC:
        return (
            f"together these CIDRs admit {public:,} public addresses, more than a /8 ({ALLOWLIST_MAX_PUBLIC:,}); "
            "list the networks deploys and admins come from"
        )
    return None


# ------------------------------------------------------------------------------------------------ cron

_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}),
    ("day of week", 0, 7, {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}),
)
CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRON_ITEM = ascii_pattern(r"(?P<range>\*|(?P<lo>[0-9a-z]+)(-(?P<hi>[0-9a-z]+))?)(/(?P<step>[0-9]+))?")


def cron_problem(expr: str, macros: bool = False) -> str | None:
    """None if `expr` is a valid 5-field cron expression (names for months/days allowed), else why not."""
    if macros and expr in CRON_MACROS:
        return None
    fields = expr.split(" ")
    if len(fields) != 5 or any(not f for f in fields):
        extra = f" or one of {', '.join(CRON_MACROS)}" if macros else ""
        return f"'{shown(expr)}' is not a 5-field cron expression like '0 */6 * * *'{extra}"
    for text, (what, lo, hi, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            m = _CRON_ITEM.fullmatch(item.lower())
            if not m:
                return f"'{shown(expr)}': {what} '{shown(item)}' is not a value, range or step"

            def value(token: str, names: dict[str, int] = names) -> int | None:
                if token.isdigit():
                    return int(token)
                return names.get(token)

            if m.group("range") != "*":
                first = value(m.group("lo"))
                last = value(m.group("hi")) if m.group("hi") else first
                if first is None or last is None or not lo <= first <= hi or not lo <= last <= hi:
                    return f"'{shown(expr)}': {what} '{shown(item)}' is outside {lo}-{hi}"
                if first > last:
                    return f"'{shown(expr)}': {what} range '{shown(item)}' runs backwards"
            if m.group("step") is not None and not 1 <= int(m.group("step")) <= hi:
                return f"'{shown(expr)}': {what} step '{shown(item)}' must be 1-{hi}"
    return None


# ----------------------------------------------------------------------------------- durations, sizes

# Go's time.Duration is an int64 of nanoseconds: about 2,562,047 hours.
GO_DURATION_MAX_SECONDS = (2**63 - 1) // 10**9
_DURATION_PART = ascii_pattern(r"([0-9]+)(h|m|s)")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


def duration_seconds(text: str) -> int | None:
    """`1h30m` -> 5400; None if not a sequence of <digits><h|m|s>."""
    if not re.fullmatch(r"([0-9]+[hms])+", text, re.ASCII):
        return None
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


_QUANTITY = ascii_pattern(
    r"(?P<num>[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+))(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
}


def quantity_value(text: str) -> Decimal | None:
    """A Kubernetes quantity (`4000Gi`, `1.5`, `500m`, `1e3`) as a number; None if it is not one."""
    m = _QUANTITY.fullmatch(text)
    if not m:
        return None
    try:
        number = Decimal(m.group("num"))
        suffix = m.group("suffix") or ""
        if suffix in _BINARY:
            return number * _BINARY[suffix]
        if suffix in _DECIMAL:
            return number * _DECIMAL[suffix]
        if suffix:
            exponent = int(suffix[1:])
            if abs(exponent) > 30:
                return None
            return number * Decimal(10) ** exponent
        return number
    except (InvalidOperation, ValueError):
        return None


# ------------------------------------------------------------------------------------------------ tags

# What IAM, S3, EC2 and EKS all accept in tag keys and values: letters, digits, spaces and + - = . _ : / @.
TAG_TEXT = re.compile(r"[\w .:/=+\-@]*")
AWS_TAGS_PER_RESOURCE = 50


def tag_text_ok(text: str) -> bool:
    # \w here is Unicode letters/digits (AWS allows "letters in UTF-8"), never control or format characters.
    return bool(TAG_TEXT.fullmatch(text)) and all(unicodedata.category(c)[0] not in ("C",) for c in text)


# -------------------------------------------------------------------------------------------- S3 names

_BUCKET = ascii_pattern(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "sthree-configurator", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", "--x-s3", ".mrap", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """S3 general-purpose bucket naming rules, without dots (virtual-hosted HTTPS needs a dot-free name)."""
    if not _BUCKET.fullmatch(name):
        return (
            f"'{shown(name)}' is not an S3 bucket name usable over HTTPS: 3-63 lowercase letters, digits, '-' "
            "(no dots), starting and ending with a letter or digit"
        )
    for prefix in BUCKET_RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"'{shown(name)}' starts with '{prefix}', a prefix S3 reserves"
    for suffix in BUCKET_RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"'{shown(name)}' ends with '{suffix}', a suffix S3 reserves"
    return None
