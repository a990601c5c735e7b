"""The architecture, asserted from the source's AST (nothing is imported).

Layers, lowest first: `components.core` (facts and pure recipes, no ComponentResource) <
`components.config` (the typed stack file) < the feature packages < `programs`. The policy pack
stands apart: it reads plans and imports neither `components` nor `programs`, so `pulumi preview
--policy-pack policy` runs it without the program installed.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ("network", "eks", "k3s", "karpenter", "identity", "addons")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources(*tops: str) -> dict[str, Path]:
    return {_module_name(p): p for top in tops for p in sorted((ROOT / top).rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, known: set[str]):
    """(imported module, line, kind) for every import of a project module; kind is "top" (runs on
    import), "typing" (under `if TYPE_CHECKING:`, never runs) or "local" (inside a function)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(n) for n in tree.body}
    typing_only = {
        id(c) for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test) for c in n.body
    }
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, path.name == "__init__.py")
            # `from pkg import mod` imports pkg.mod when that is a module of ours
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in ("components", "programs", "policy"):
                kind = "top" if id(node) in top_level else "typing" if id(node) in typing_only else "local"
                out.append((name, node.lineno, kind))
    return out


SOURCES = _sources("components", "programs", "policy")
KNOWN = set(SOURCES)


@functools.cache
def import_graph() -> dict[str, list[tuple[str, int, str]]]:
    """Every project module's imports of project modules (parsed when a test first asks, not at
    collection: the suite's workers are forked after collection, and only one of them runs these)."""
    return {m: _imports(m, p, KNOWN) for m, p in SOURCES.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "components" and len(parts) > 1 else parts[0]


def _violations(rule):
    found = []
    for module, imports in import_graph().items():
        for target, line, _ in sorted(set(imports)):
            why = rule(module, target)
            if why:
                found.append(f"{SOURCES[module].relative_to(ROOT)}:{line} imports {target}: {why}")
    return found


def test_core_imports_no_feature_and_no_config():
    def rule(module, target):
        if module.startswith("components.core") and not target.startswith("components.core"):
            return "core/ imports only core/"

    assert _violations(rule) == []


def test_config_imports_only_core():
    def rule(module, target):
        if module.startswith("components.config") and not target.startswith(("components.core", "components.config")):
            return "config/ imports only core/ and itself"

    assert _violations(rule) == []


def test_features_reach_siblings_only_through_their_public_surface():
    def rule(module, target):
        pkg, dest = _package(module), _package(target)
        if pkg.split(".")[-1] not in FEATURES or not target.startswith("components."):
            return None
        if dest == pkg or dest in ("components.core", "components.config"):
            return None
        if target != dest:
            return f"a sibling's internals; import its public surface `{dest}`"

    assert _violations(rule) == []


def test_components_never_import_programs():
    def rule(module, target):
        if module.startswith("components") and target.startswith("programs"):
            return "components/ is below programs/"

    assert _violations(rule) == []


def test_policy_pack_imports_neither_components_nor_programs():
    def rule(module, target):
        if module.startswith("policy") and target.startswith(("components", "programs")):
            return "the pack runs without the program"

    assert _violations(rule) == []


def test_no_function_local_imports_in_components():
    found = [
        f"{SOURCES[m].relative_to(ROOT)}:{line} imports {t} inside a function"
        for m, imports in import_graph().items()
        if m.startswith("components")
        for t, line, kind in imports
        if kind == "local"
    ]
    assert found == []


def test_the_module_import_graph_has_no_cycle():
    edges = {
        m: sorted({t for t, _, kind in imports if kind == "top" and t in KNOWN and t != m})
        for m, imports in import_graph().items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", ("core", "config", *FEATURES))
def test_every_package_documents_its_design(package):
    doc = ast.get_docstring(ast.parse((ROOT / "components" / package / "__init__.py").read_text()))
    assert doc and len(doc.split()) >= 25, f"components/{package}/__init__.py needs its design notes"


# ---------------------------------------------------------------------------------------------
# One component convention: `Component(name, args, opts)`, frozen Args whose every field says what it
# is, `Args.from_stack(cfg, ...)` (or a class docstring saying why there is none), every public
# attribute declared on the class, `register_outputs` last.

COMPONENT_SOURCES = {m: p for m, p in SOURCES.items() if m.startswith("components")}
TREES = {m: ast.parse(p.read_text(), filename=str(p)) for m, p in COMPONENT_SOURCES.items()}


def _classes(predicate):
    return [
        (f"{COMPONENT_SOURCES[m].relative_to(ROOT)}:{node.lineno} {node.name}", node)
        for m, tree in TREES.items()
        for node in tree.body
        if isinstance(node, ast.ClassDef) and predicate(node)
    ]


ARGS_CLASSES = _classes(lambda c: c.name.endswith("Args"))
COMPONENTS = _classes(lambda c: any(ast.unparse(b).endswith("ComponentResource") for b in c.bases))


def _is_frozen_dataclass(cls: ast.ClassDef) -> bool:
    for deco in cls.decorator_list:
        if isinstance(deco, ast.Call) and ast.unparse(deco.func).endswith("dataclass"):
            return any(k.arg == "frozen" and ast.literal_eval(k.value) is True for k in deco.keywords)
    return False


def _undocumented_fields(cls: ast.ClassDef) -> list[str]:
    missing = []
    for i, stmt in enumerate(cls.body):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            after = cls.body[i + 1] if i + 1 < len(cls.body) else None
            documented = (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
                and after.value.value.strip()
            )
            if not documented:
                missing.append(stmt.target.id)
    return missing


def _init(cls: ast.ClassDef) -> ast.FunctionDef | None:
    return next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)


def test_the_convention_is_measured_on_every_component():
    # Guards the tests below against a selector that silently finds nothing.
    assert len(ARGS_CLASSES) >= 20 and len(COMPONENTS) >= 20


def test_every_args_class_is_a_frozen_dataclass():
    assert [where for where, cls in ARGS_CLASSES if not _is_frozen_dataclass(cls)] == []


def test_every_args_field_has_a_docstring():
    found = [f"{where}.{field}" for where, cls in ARGS_CLASSES for field in _undocumented_fields(cls)]
    assert found == [], "a string literal right after each field says what it is and what its default means"


def test_every_args_class_is_built_from_the_stack_or_says_why_not():
    def ok(cls: ast.ClassDef) -> bool:
        if any(isinstance(f, ast.FunctionDef) and f.name == "from_stack" for f in cls.body):
            return True
        return "no `from_stack`" in (ast.get_docstring(cls) or "")

    assert [where for where, cls in ARGS_CLASSES if not ok(cls)] == []


def test_every_component_takes_name_args_opts():
    def signature(cls: ast.ClassDef) -> list[str] | None:
        init = _init(cls)
        if init is None:
            return None
        a = init.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
            return None
        return [x.arg for x in a.args]

    found = [
        f"{where}: {signature(cls)}" for where, cls in COMPONENTS if signature(cls) != ["self", "name", "args", "opts"]
    ]
    assert found == []


def test_every_component_declares_its_public_attributes():
    found = []
    for where, cls in COMPONENTS:
        declared = {s.target.id for s in cls.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
        for node in ast.walk(cls):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            for target in targets:
                for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if (
                        isinstance(t, ast.Attribute)
                        and isinstance(t.value, ast.Name)
                        and t.value.id == "self"
                        and not t.attr.startswith("_")
                        and t.attr not in declared
                    ):
                        found.append(f"{where}.{t.attr} (line {t.lineno})")
    assert sorted(set(found)) == []


def test_every_component_registers_its_outputs_last():
    def last_is_register_outputs(cls: ast.ClassDef) -> bool:
        init = _init(cls)
        last = init.body[-1] if init else None
        return (
            isinstance(last, ast.Expr)
            and isinstance(last.value, ast.Call)
            and ast.unparse(last.value.func) == "self.register_outputs"
        )

    assert [where for where, cls in COMPONENTS if not last_is_register_outputs(cls)] == []
