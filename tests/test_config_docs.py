"""README's configuration reference is generated from the config models and must agree with them.

The generator (scripts/gen_config_docs.py) runs in-process, in check mode, against the real README;
the other tests show that the check can fail: a drifted row, a field without a description (named by
its key path) and a key the shipped stacks use but the reference does not list.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field

from components.config import TOP_LEVEL_KEYS, KarpenterNodePoolConfig, Model, StackConfig

REPO = Path(__file__).resolve().parents[1]


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_config_docs", REPO / "scripts" / "gen_config_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _documented_keys() -> list[str]:
    return [kf.key for kf in gen.walk(StackConfig)]


def test_every_config_field_has_a_description():
    missing = gen.missing_descriptions()
    assert not missing, "fields without Field(description=...): " + ", ".join(missing)


def test_readme_reference_matches_the_models(capsys):
    assert gen.main(["--check"]) == 0, capsys.readouterr().err


def test_check_fails_when_the_readme_drifts_and_make_docs_repairs_it(tmp_path, capsys):
    original = (REPO / "README.md").read_text(encoding="utf-8")
    row = next(line for line in original.splitlines() if line.startswith("| `k8s-platform:network.vpcCidr` |"))
    assert "`10.0.0.0/16`" in row  # the model's default, rendered
    readme = tmp_path / "README.md"
    readme.write_text(original.replace(row, row.replace("`10.0.0.0/16`", "`10.1.0.0/16`")), encoding="utf-8")

    assert gen.main(["--check", "--readme", str(readme)]) == 1
    err = capsys.readouterr().err
    assert "k8s-platform:network.vpcCidr" in err and "make docs" in err
    assert readme.read_text(encoding="utf-8") != original  # check mode does not write

    assert gen.main(["--readme", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == original
    assert gen.main(["--check", "--readme", str(readme)]) == 0


def test_text_outside_the_markers_is_kept_and_missing_markers_are_an_error(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{gen.BEGIN}\nstale\n{gen.END}\n\nafter\n", encoding="utf-8")
    assert gen.main(["--readme", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nbefore\n\n" + gen.BEGIN + "\n") and text.endswith(gen.END + "\n\nafter\n")
    assert "stale" not in text and "| `k8s-platform:karpenter.nodePools[].limits.cpu` |" in text

    readme.write_text("# Title\n\nno reference here\n", encoding="utf-8")
    assert gen.main(["--check", "--readme", str(readme)]) == 1
    assert gen.BEGIN in capsys.readouterr().err


class _Inner(Model):
    documented: int = Field(1, description="A documented field.")
    undocumented: str = "y"


class _Outer(Model):
    items: list[_Inner] = Field(default_factory=list, description="Documented list.")
    nested: _Inner = Field(_Inner(), description="Documented object.")
    plain: bool = True


def test_a_field_without_description_is_named_by_its_key_path():
    assert gen.missing_descriptions(_Outer) == [
        "_Outer.items[].undocumented",
        "_Outer.nested.undocumented",
        "_Outer.plain",
    ]
    with pytest.raises(gen.MissingDescriptions) as exc:
        gen.render_reference(_Outer)
    assert exc.value.keys == ["_Outer.items[].undocumented", "_Outer.nested.undocumented", "_Outer.plain"]


def test_an_undocumented_stack_field_fails_the_generator_naming_its_stack_key(monkeypatch, capsys):
    # As a field added later without a description would: the generator refuses, naming the key users write.
    monkeypatch.setattr(KarpenterNodePoolConfig.model_fields["weight"], "description", None)
    assert gen.missing_descriptions() == ["k8s-platform:karpenter.nodePools[].weight"]
    assert gen.main(["--check"]) == 1
    assert "k8s-platform:karpenter.nodePools[].weight: no Field(description=...)" in capsys.readouterr().err


def test_top_level_keys_are_the_ones_the_parser_reads():
    top = {key for key in _documented_keys() if "." not in key and "[" not in key}
    assert top == {"aws:region"} | {f"k8s-platform:{key}" for key in TOP_LEVEL_KEYS}


def _written_keys(key: str, value: Any, documented: set[str]) -> Iterator[str]:
    """The key paths a stack file spells, down to keys the reference documents as a whole (maps, scalars)."""
    yield key
    if isinstance(value, dict) and any(k.startswith(f"{key}.") for k in documented):
        for child, child_value in value.items():
            yield from _written_keys(f"{key}.{child}", child_value, documented)
    elif isinstance(value, list) and any(k.startswith(f"{key}[].") for k in documented):
        for item in value:
            for child, child_value in item.items():
                yield from _written_keys(f"{key}[].{child}", child_value, documented)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_key_the_shipped_stacks_write_is_in_the_reference(stack):
    # The stack file as users write it (the project's `pulumi:tags` in Pulumi.yaml are the engine's, not ours).
    config = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]
    documented = set(_documented_keys())
    written = {k for key, value in config.items() for k in _written_keys(key, value, documented)}
    assert len(written) > 60  # the walk reached the nested keys
    assert sorted(written - documented) == []


def test_rendered_defaults_read_back_as_the_models_defaults():
    # A default in the table is YAML a user can paste: `'1.35'` must stay a string, `true` a boolean.
    checked = 0
    for kf in gen.walk(StackConfig):
        cell = gen.default_text(kf.field)
        if cell.startswith("`"):
            value = kf.field.get_default(call_default_factory=True)
            assert yaml.safe_load(cell.strip("`")) == gen._plain(value), kf.key
            checked += 1
    assert checked > 50
