"""Property-based tests: invalid stack files generated from the shipped stacks and the config models.

Every generated file is invalid by construction (a wrong type at a leaf, an unknown key at a model level,
a stray newline or control character in a validated string, or YAML-level garbage). Each goes through
`platformctl preview --offline` in-process and must give: exit 2, the right key named, one line per
problem, no traceback and no resource registered. Runtime stays at a few seconds (max_examples bounded).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from programs import offline
from programs.platformctl import cli
from tests import fast_yaml
from tests.conftest import shipped_config

FUZZ = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Free-form mappings (their keys are data, not model fields) and values typed `str | int`.
FREE_DICTS = {"tags", "labels", "addonVersions", "amiSsmParameters", "conditions"}
STR_OR_INT = {"cpu"}


def _stack(stack: str) -> dict[str, Any]:
    cfg = copy.deepcopy(shipped_config(stack))
    cfg.pop("pulumi:tags", None)
    return cfg


def _nodes(value: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every (path, value) below a config value, parents first; free-form mappings are leaves."""
    found = [(path, value)]
    if isinstance(value, dict) and not (path and _name(path) in FREE_DICTS):
        for k, v in value.items():
            found += _nodes(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _nodes(v, path + (i,))
    return found


def _name(path: tuple) -> str:
    return str(path[-1]).split(":")[-1]


class _PerStack(dict):
    """Filled for a stack when a test first reads it, not at collection (the workers are forked after
    collection, and only one of them runs this file)."""

    def __init__(self, compute: Callable[[str], Any]) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, stack: str) -> Any:
        value = self[stack] = self._compute(stack)
        return value


NODES = _PerStack(lambda s: [n for n in _nodes(_stack(s)) if n[0]])


def key_path(path: tuple) -> str:
    out = str(path[0])
    for p in path[1:]:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _set(cfg: dict[str, Any], path: tuple, value: Any) -> None:
    node: Any = cfg
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def run_cli(text: bytes | str) -> tuple[int, list[str], list[str]]:
    """(exit code, stderr lines, registered resource types) of an offline preview of this stack file."""
    registered: list[str] = []
    original = offline._CaptureMonitor.RegisterResource

    def spy(self, request):
        registered.append(request.type)
        return original(self, request)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Pulumi.fuzz.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        out = Path(tmp) / "plan.json"
        err = io.StringIO()
        offline._CaptureMonitor.RegisterResource = spy
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = cli.main(
                    ["preview", "--stack", "fuzz", "--offline", "--config-file", str(path), "--json", str(out)]
                )
        finally:
            offline._CaptureMonitor.RegisterResource = original
        if out.exists():
            assert json.loads(out.read_text())["resources"] == []
    return code, err.getvalue().splitlines(), registered


def assert_refused(code: int, lines: list[str], registered: list[str], expected_key: str | None) -> None:
    assert code == 2, lines
    assert registered == []
    assert lines and not any("Traceback" in line for line in lines), lines
    if lines[0].startswith("error: invalid configuration"):
        problems = lines[1:]
        # One line per problem, each naming a key.
        assert problems and all(p.startswith("  ") and ": " in p for p in problems), lines
        if expected_key is not None:
            # A list's validator names the list for a bad element: `zones` for `zones[0]`.
            accepted = {expected_key, re.sub(r"(\[[0-9]+\])+$", "", expected_key)}
            assert any(p.strip().split(": ", 1)[0] in accepted for p in problems), (expected_key, lines)
    else:
        assert len(lines) == 1, lines
        assert expected_key is None, lines
    for line in lines:
        assert len(line) <= 700 and not any(c in line for c in "\x00\x1b\r"), line


def wrong_values(current: Any, leaf: str) -> st.SearchStrategy[Any]:
    """Values of a JSON type the field cannot take, given the type of its valid current value."""
    text = st.text(min_size=1, max_size=20).filter(lambda s: not s.strip().lstrip("-").isdigit())
    collections = st.sampled_from([[], ["x"], {"k": "v"}])
    if isinstance(current, bool):
        return st.one_of(st.integers(-5, 5), text.filter(lambda s: s not in ("true", "false")), collections)
    if isinstance(current, int):
        return st.one_of(st.booleans(), text, st.floats(allow_nan=False).map(lambda f: f + 0.5), collections)
    if isinstance(current, str):
        ints = st.nothing() if leaf in STR_OR_INT else st.integers()
        return st.one_of(st.booleans(), ints, collections)
    if isinstance(current, list):
        return st.one_of(st.booleans(), st.integers(), text, st.just({"k": "v"}))
    return st.one_of(st.booleans(), st.integers(), text, st.just(["x"]))


@st.composite
def wrong_type(draw):
    stack = draw(st.sampled_from(["dev", "prod"]))
    path, current = draw(st.sampled_from(NODES[stack]))
    leaf = _name(path)
    cfg = _stack(stack)
    _set(cfg, path, draw(wrong_values(current, leaf)))
    return cfg, key_path(path)


@st.composite
def unknown_key(draw):
    stack = draw(st.sampled_from(["dev", "prod"]))
    mappings = [(p, v) for p, v in NODES[stack] if isinstance(v, dict) and _name(p) not in FREE_DICTS]
    path, node = draw(st.sampled_from(mappings))
    key = "x" + draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", min_size=2, max_size=12))
    cfg = _stack(stack)
    _set(cfg, path, {**node, key: draw(st.sampled_from(["v", 1, True, []]))})
    return cfg, key_path(path + (key,))


@st.composite
def dirty_string(draw):
    """A validated string with a newline, control character, zero-width or bidi character, or 300 more
    characters added: every validated string in the config refuses it."""
    stack = draw(st.sampled_from(["dev", "prod"]))
    strings = [(p, v) for p, v in NODES[stack] if isinstance(v, str) and "conditions" not in p]
    path, current = draw(st.sampled_from(strings))
    dirt = draw(st.sampled_from(["\n", "\r\n", "\x00", "\x1b[2J", "\t", "\u200b", "\u202e", "\x7f"]))
    where = draw(st.sampled_from(["end", "start"]))
    cfg = _stack(stack)
    _set(cfg, path, current + dirt if where == "end" else dirt + current)
    return cfg, key_path(path)


def dump(cfg: dict[str, Any]) -> str:
    # libyaml's dumper: the same YAML as safe_dump, five times faster (160 documents a session)
    return fast_yaml.dump({"config": cfg}, sort_keys=False, allow_unicode=True)


@FUZZ
@given(wrong_type())
def test_wrong_types_are_refused_naming_the_key(case):
    cfg, key = case
    assert_refused(*run_cli(dump(cfg)), key)


@FUZZ
@given(unknown_key())
def test_unknown_keys_are_refused_naming_the_key(case):
    cfg, key = case
    assert_refused(*run_cli(dump(cfg)), key)


@FUZZ
@given(dirty_string())
def test_dirty_strings_are_refused_naming_the_key(case):
    cfg, key = case
    assert_refused(*run_cli(dump(cfg)), key)


@settings(max_examples=40, deadline=None, database=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_garbage_files_never_crash(data):
    code, lines, registered = run_cli(data)
    assert code == 2 and registered == [] and lines, lines
    assert not any("Traceback" in line for line in lines)


def _field(path: tuple) -> Any:
    """The pydantic FieldInfo the config value at `path` is validated by (None for list items, free dicts)."""
    from components.config import StackConfig
    from components.config.stack import _model_of

    top = str(path[0])
    name = "region" if top == "aws:region" else top.split(":", 1)[1]
    model: Any = StackConfig
    field = None
    for part in (name, *path[1:]):
        if isinstance(part, int):
            field = None
            continue
        if model is None:
            return None
        field = next((f for n, f in model.model_fields.items() if part in (f.alias, n)), None)
        if field is None:
            return None
        model = _model_of(field.annotation)
    return field


def _bounds(field: Any) -> tuple[int | None, int | None]:
    lo = hi = None
    for meta in field.metadata:
        lo = getattr(meta, "ge", lo)
        hi = getattr(meta, "le", hi)
    return lo, hi


def _literal_choices(field: Any) -> tuple | None:
    import typing

    def find(annotation: Any) -> tuple | None:
        if typing.get_origin(annotation) is typing.Literal:
            return typing.get_args(annotation)
        for arg in typing.get_args(annotation):
            found = find(arg)
            if found:
                return found
        return None

    return find(field.annotation)


def _constrained(stack: str) -> list[tuple[tuple, Any, Any]]:
    found = []
    for path, value in NODES[stack]:
        field = _field(path) if not isinstance(path[-1], int) else None
        if field is None or isinstance(value, (dict, list)):
            continue
        if _literal_choices(field) or any(b is not None for b in _bounds(field)):
            found.append((path, value, field))
    return found


CONSTRAINED = _PerStack(_constrained)


@st.composite
def out_of_model(draw):
    """A value the model's own declaration excludes: outside its ge/le bounds, or not one of its Literal values."""
    stack = draw(st.sampled_from(["dev", "prod"]))
    path, value, field = draw(st.sampled_from(CONSTRAINED[stack]))
    choices = _literal_choices(field)
    if choices:
        new = draw(
            st.one_of(st.text(min_size=1, max_size=12), st.integers(-10, 5000)).filter(lambda v: v not in choices)
        )
    else:
        lo, hi = _bounds(field)
        options = ([st.integers(lo - 10_000, lo - 1)] if lo is not None else []) + (
            [st.integers(hi + 1, hi + 10_000)] if hi is not None else []
        )
        new = draw(st.one_of(*options))
    cfg = _stack(stack)
    _set(cfg, path, new)
    return cfg, key_path(path)


def test_the_models_have_constrained_fields_to_fuzz():
    assert len(CONSTRAINED["dev"]) >= 8 and len(CONSTRAINED["prod"]) >= 8


@FUZZ
@given(out_of_model())
def test_values_outside_the_models_are_refused_naming_the_key(case):
    cfg, key = case
    assert_refused(*run_cli(dump(cfg)), key)
