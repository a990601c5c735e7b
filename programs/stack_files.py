"""The one reader of stack files (`Pulumi.<stack>.yaml`), for the offline harness and the Automation API.

A stack file is typed by people in a hurry and sometimes by nobody friendly, so it is read defensively:
bounded size, nesting depth and alias expansion (no "billion laughs", no recursion), string keys only,
no duplicate keys, only values JSON can carry (an unquoted date, `!!binary` or `!!set` is refused with
"quote it" naming the key), and every problem as one line naming the file (and line) or the config key.
File-level problems raise `StackFileError` (a ValueError: exit 2); value-level problems are collected and
raised together as a `ConfigError`, each naming its key, before any config is parsed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from components.config import ConfigError, decode_config_values
from components.config.checks import did_you_mean, shown
from components.config.stack import config_key_problem
from programs.paths import REPO_ROOT, stack_file  # noqa: F401 (public here too)

MAX_BYTES = 1 << 20  # a stack file is a few KB; a megabyte is not a stack file
MAX_DEPTH = 64  # nesting of mappings/lists, aliases included
MAX_NODES = 100_000  # values after alias expansion (the shipped stacks have ~600)

# Top-level keys Pulumi reads from a stack file besides `config`.
STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment")

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_YAML}{t}" for t in ("str", "int", "float", "bool", "null")}
_WHAT = {
    f"{_YAML}timestamp": "a date/time",
    f"{_YAML}binary": "binary data",
    f"{_YAML}set": "a set",
    f"{_YAML}omap": "an ordered map",
    f"{_YAML}pairs": "a list of pairs",
}


_NOT_FINITE = re.compile(r"[-+]?\.(inf|Inf|INF|nan|NaN|NAN)")


class StackFileError(ValueError):
    """A stack file that cannot be read as one: one line, naming the file."""


class _Limited(yaml.SafeLoader):
    """SafeLoader that refuses nesting beyond MAX_DEPTH while composing (before Python recursion can fail)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise StackFileError(f"line {mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _check_depth(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise StackFileError(f"line {event.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


# libyaml (C) when PyYAML has it: the pure-Python scanner costs ~50 ms per stack file.
_LOADER: Any = getattr(yaml, "CSafeLoader", None) or _Limited


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _key_text(node: Node) -> str:
    return shown(node.value) if isinstance(node, ScalarNode) else f"<{type(node).__name__}>"


class _Checker:
    """Walks the composed document: keys, duplicates, value types, expansion size and cycles."""

    def __init__(self, where: str):
        self.where = where
        self.problems: list[str] = []
        self._size: dict[int, int] = {}
        self._open: set[int] = set()

    def check(self, node: Node, path: str, depth: int = 0) -> int:
        """The node's expanded size; problems recorded on the way (each shared node checked once)."""
        ident = id(node)
        if ident in self._open:
            raise StackFileError(
                f"{self.where}line {_line(node)}: {path or 'the document'} contains itself through a recursive alias"
            )
        if ident in self._size:
            return self._size[ident]
        if depth > MAX_DEPTH:
            raise StackFileError(
                f"{self.where}line {_line(node)}: {path}: nested deeper than {MAX_DEPTH} levels (aliases included)"
            )
        self._open.add(ident)
        size = 1
        if isinstance(node, MappingNode):
            size += self._mapping(node, path, depth)
        elif isinstance(node, SequenceNode):
            if node.tag != f"{_YAML}seq":
                self._refuse(node, path)
            for i, item in enumerate(node.value):
                size += self.check(item, f"{path}[{i}]", depth + 1)
        elif node.tag not in _SCALAR_TAGS:
            self._refuse(node, path)
        elif node.tag == f"{_YAML}float" and _NOT_FINITE.fullmatch(node.value):
            self.problems.append(f"{path}: {shown(node.value)} is not a finite number; quote it if it is text")
        self._open.discard(ident)
        self._size[ident] = size
        if size > MAX_NODES:
            raise StackFileError(
                f"{self.where}line {_line(node)}: expands to more than {MAX_NODES:,} values through "
                "aliases; write the values out"
            )
        return size

    def _mapping(self, node: MappingNode, path: str, depth: int) -> int:
        if node.tag != f"{_YAML}map":
            self._refuse(node, path)
            return 0
        size = 0
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_YAML}merge":
                size += self.check(value_node, path, depth + 1)  # `<<: *base`: merged keys may be overridden
                continue
            if not (isinstance(key_node, ScalarNode) and key_node.tag == f"{_YAML}str"):
                kind = key_node.tag.rsplit(":", 1)[-1] if isinstance(key_node, ScalarNode) else "a collection"
                self.problems.append(
                    f"{path or '(top level)'}: key {_key_text(key_node)} (line {_line(key_node)}) "
                    f"is read as {kind}, not a string; keys must be strings (quote it)"
                )
                continue
            key = key_node.value
            child = self._child(path, key)
            if key in seen:
                self.problems.append(
                    f"{child}: duplicate key (lines {seen[key]} and {_line(key_node)}); YAML would "
                    "silently keep only the last one"
                )
            else:
                seen[key] = _line(key_node)
            size += self.check(value_node, child, depth + 1)
        return size

    @staticmethod
    def _child(path: str, key: str) -> str:
        if path == "config":
            return shown(key)  # config keys are already fully qualified: k8s-platform:network
        return f"{path}.{shown(key)}" if path else shown(key)

    def _refuse(self, node: Node, path: str) -> None:
        what = _WHAT.get(node.tag, f"a value tagged {shown(node.tag)}")
        text = node.value if isinstance(node, ScalarNode) else ""
        hint = f' (write "{shown(text)}")' if text else ""
        self.problems.append(
            f"{path or '(top level)'}: {what} (line {_line(node)}) cannot be passed to the program "
            f"as config; quote it to make it a string{hint}"
        )


def load_yaml(text: str, where: str = "") -> tuple[Any, list[str]]:
    """Parse one YAML document defensively: (value, problems). Raises StackFileError when unreadable."""
    try:
        loader = _LOADER(text)
    except yaml.YAMLError as exc:  # the reader refuses characters YAML does not allow (before any parsing)
        raise StackFileError(f"{where}not valid YAML: {shown(' '.join(str(exc).split()), 160)}") from None
    try:
        try:
            if _LOADER is not _Limited:
                _check_depth(text)  # libyaml's composer recurses: bound the nesting on its event stream first
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
            raise StackFileError(f"{where}{at}not valid YAML: {shown(problem, 160)}") from None
        except yaml.YAMLError as exc:
            raise StackFileError(f"{where}not valid YAML: {shown(' '.join(str(exc).split()), 160)}") from None
        except RecursionError:
            raise StackFileError(f"{where}nested too deeply to read") from None
        except StackFileError as exc:
            raise StackFileError(f"{where}{exc}") from None
        if node is None:
            return None, []
        checker = _Checker(where)
        checker.check(node, "")
        try:
            # Constructed even with problems (bounded now), so the caller can report the rest of the file too.
            return loader.construct_document(node), checker.problems
        except (yaml.YAMLError, TypeError, ValueError) as exc:
            if checker.problems:
                return None, checker.problems
            raise StackFileError(f"{where}not valid YAML: {shown(' '.join(str(exc).split()), 160)}") from None
    finally:
        loader.dispose()


def read_text(path: Path) -> str:
    """The file's text, or a one-line StackFileError naming it (missing, a directory, too big, not UTF-8)."""
    if path.is_dir():
        raise StackFileError(f"{path}: is a directory, not a stack file (Pulumi.<stack>.yaml)")
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path} (stacks: Pulumi.<stack>.yaml beside Pulumi.yaml)")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise StackFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_BYTES:
        raise StackFileError(f"{path}: larger than {MAX_BYTES // 1024} KiB; not a stack file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StackFileError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the stack file as UTF-8"
        ) from None
    bad = re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise StackFileError(
            f"{path}: line {line}: control character {shown(bad.group())} in the file; a stack file is plain text"
        )
    return text


def read_stack_document(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The stack file's `config:` mapping, exactly as written (keys fully qualified), and its problems."""
    text = read_text(path)
    doc, problems = load_yaml(text, f"{path}: ")
    if doc is None:
        return {}, problems
    if not isinstance(doc, dict):
        raise StackFileError(f"{path}: the document is {_kind(doc)}; a stack file is a mapping with a 'config:' key")
    problems += [
        f"{shown(k)}: is not a stack file key{did_you_mean(str(k), STACK_FILE_KEYS)}; config goes under "
        "'config:' (allowed beside it: " + ", ".join(STACK_FILE_KEYS[1:]) + ")"
        for k in doc
        if k not in STACK_FILE_KEYS
    ]
    config = doc.get("config")
    if config is None:
        return {}, problems
    if not isinstance(config, dict):
        raise StackFileError(
            f"{path}: 'config' is {_kind(config)}; it must be a mapping of keys like k8s-platform:environment"
        )
    return config, problems


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    return f"a single value ({shown(value, 40)})"


def read_stack_file(path: Path) -> dict[str, Any]:
    """Fully-qualified config from a `Pulumi.<stack>.yaml`, shaped as the engine hands it to the program."""
    path = Path(path)
    config, problems = read_stack_document(path)
    if problems:
        # Report the rest of the file's key problems with these (parse_stack_config would, once readable).
        problems += [p for p in (config_key_problem(k) for k in config if isinstance(k, str)) if p]
        raise ConfigError(problems, source=path)
    encrypted = sorted(k for k, v in config.items() if isinstance(v, dict) and set(v) == {"secure"})
    if encrypted:
        raise StackFileError(
            f"{path}: {', '.join(encrypted)}: encrypted (secure) values need the Pulumi CLI to "
            "decrypt; the offline preview cannot read them"
        )
    # Project-level values (Pulumi.yaml `config:`) apply to every stack; the stack file wins, as in the engine.
    merged = {**project_config(_project_file(path)), **config}
    # The engine passes top-level values as strings (objects as JSON); mirror it, then decode.
    as_engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in merged.items()}
    return decode_config_values(as_engine)


def _project_file(stack_path: Path) -> Path:
    beside = stack_path.parent / "Pulumi.yaml"
    return beside if beside.exists() else REPO_ROOT / "Pulumi.yaml"


def project_config(project_file: Path) -> dict[str, Any]:
    """Values of a `Pulumi.yaml` `config:` block: `key: value`, `key: {value: ...}` or `key: {default: ...}`."""
    if not project_file.exists():
        return {}
    doc, problems = load_yaml(read_text(project_file), f"{project_file}: ")
    if problems:
        raise ConfigError(problems, source=project_file)
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("config") or {}, dict):
        raise StackFileError(
            f"{project_file}: not a Pulumi project file (a mapping with an optional 'config:' mapping)"
        )
    values: dict[str, Any] = {}
    for key, spec in (doc.get("config") or {}).items():
        if isinstance(spec, dict) and ("value" in spec or "default" in spec):
            values[key] = spec.get("value", spec.get("default"))
        elif isinstance(spec, dict) and "type" in spec:
            continue  # a declared key without a value: the stack must set it
        else:
            values[key] = spec
    return values
