"""`platformctl graph --stack S --offline -o graph.svg`: the planned resources as a Graphviz picture.

`plan_to_dot(plan)` (pure) turns a plan (the offline plan JSON shape) into DOT text: every
ComponentResource is a cluster (`subgraph cluster_N`) holding its children, custom resources are
boxes, and an edge `A -> B` means B depends on A (arrows follow creation order). The `dot` binary
renders SVG/PNG/PDF; `-o x.dot` (or `-o -`) writes the DOT text and needs no Graphviz.
Without --offline the plan comes from the engine (`pulumi preview --json` through the Automation API).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from programs.platformctl import exit_codes
from programs.platformctl.input_errors import INPUT_ERRORS, report_input_error

DOT_SUFFIXES = {".dot", ".gv"}
DEFAULT_DEPTH_TEXT = "0, or all with --focus"


def _depth(text: str) -> int | str:
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of levels or 'all'") from None


RENDERED_SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
# Fill colours per provider package, so AWS, Kubernetes and generated secrets read apart at a glance.
PACKAGE_COLOURS = {
    "aws": "#fde7c8",
    "kubernetes": "#d6e6fb",
    "tls": "#e6dcf5",
    "random": "#e6dcf5",
    "pulumi": "#eeeeee",
}
COLLAPSED_COLOUR = "#dff0d8"


def quote(text: str) -> str:
    """A DOT double-quoted string (newlines become centred line breaks)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _package(typ: str) -> str:
    if typ.startswith("pulumi:providers:"):
        return "pulumi"
    return typ.split(":", 1)[0]


def legend_lines() -> list[str]:
    """A legend: one compact table node saying what colours, borders, frames and arrows mean."""
    rows = [
        (PACKAGE_COLOURS["aws"], "AWS resource"),
        (PACKAGE_COLOURS["kubernetes"], "Kubernetes object"),
        (PACKAGE_COLOURS["tls"], "generated key or secret (tls, random)"),
        (PACKAGE_COLOURS["pulumi"], "provider"),
        (COLLAPSED_COLOUR, "component drawn as one node (--depth), with its resource count"),
    ]
    cells = "".join(
        f'<TR><TD BGCOLOR="{colour}" WIDTH="18"> </TD><TD ALIGN="LEFT">{text}</TD></TR>' for colour, text in rows
    )
    cells += (
        '<TR><TD COLOR="#b00020" BORDER="2"> </TD><TD ALIGN="LEFT">red border: protected from deletion '
        "(or holds protected resources)</TD></TR>"
        '<TR><TD STYLE="dashed"> </TD><TD ALIGN="LEFT">dashed frame: a component and what it holds; '
        "dashed box: outside the --focus component</TD></TR>"
        '<TR><TD>A &#8594; B</TD><TD ALIGN="LEFT">B depends on A (A is created first)</TD></TR>'
    )
    table = (
        '<<TABLE BORDER="1" CELLBORDER="1" CELLSPACING="2" CELLPADDING="3" COLOR="#999999">'
        f'<TR><TD COLSPAN="2"><B>Legend</B></TD></TR>{cells}</TABLE>>'
    )
    return [f'  legend [shape=plaintext, style="", fillcolor=none, fontsize=9, label={table}];']


def plan_to_dot(plan: dict[str, Any], legend: bool = True) -> str:
    """DOT text of a plan: components as nested clusters, custom resources as nodes, dependency edges."""
    resources = plan.get("resources", [])
    by_urn = {r["urn"]: r for r in resources}
    ids = {r["urn"]: f"r{i}" for i, r in enumerate(resources)}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for r in resources:
        parent = r.get("parent") if r.get("parent") in by_urn else None
        children[parent].append(r)

    total = plan.get("totalResources", len(resources))
    shown = f", {len(resources)} nodes drawn" if total != len(resources) else ""
    title = f"{plan.get('project', '')} {plan.get('stack', '')}: {total} resources{shown}".strip()
    lines = [
        f"digraph {quote(str(plan.get('project', 'stack')) + '-' + str(plan.get('stack', '')))} {{",
        "  graph [rankdir=LR, compound=true, newrank=true, fontname=Helvetica, fontsize=12, "
        f"label={quote(title)}, labelloc=t];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=9, fillcolor="#f5f5f5"];',
        '  edge [color="#7a7a7a", arrowsize=0.6];',
    ]
    cluster_of: dict[str, str] = {}  # component urn -> cluster id
    anchor_of: dict[str, str] = {}  # component urn -> an invisible node inside it (edge endpoint)

    def emit(parent: str | None, depth: int) -> None:
        pad = "  " * depth
        for r in sorted(children.get(parent, []), key=lambda x: (bool(x.get("custom")), x["type"], x["name"])):
            if not r.get("custom"):
                cid = f"cluster_{ids[r['urn']]}"
                cluster_of[r["urn"]] = cid
                anchor_of[r["urn"]] = f"{ids[r['urn']]}_anchor"
                lines.append(f"{pad}subgraph {cid} {{")
                lines.append(
                    f'{pad}  label={quote(r["name"] + chr(10) + r["type"])}; style="rounded,dashed"; '
                    'color="#5b7083"; fontsize=10;'
                )
                lines.append(f'{pad}  {anchor_of[r["urn"]]} [shape=point, style=invis, width=0, height=0, label=""];')
                emit(r["urn"], depth + 1)
                lines.append(f"{pad}}}")
            else:
                colour = PACKAGE_COLOURS.get(_package(r["type"]), "#f5f5f5")
                protect = ', penwidth=2, color="#b00020"' if r.get("protect") else ""
                label = r["name"] + "\n" + r["type"] + ("\n[protect]" if r.get("protect") else "")
                extra = ""
                if "collapsed" in r:  # a component drawn as one node (--depth)
                    label = f"{r['name']}\n{r['type']}\n{r['collapsed']} resources" + (
                        "\n[holds protected]" if r.get("protect") else ""
                    )
                    colour, extra = COLLAPSED_COLOUR, ", shape=box3d"
                elif r.get("neighbour"):  # outside the --focus component
                    extra = ', style="rounded,dashed"'
                lines.append(f'{pad}{ids[r["urn"]]} [label={quote(label)}, fillcolor="{colour}"{protect}{extra}];')
                emit(r["urn"], depth)  # children of a custom resource (rare) sit beside it

    emit(None, 1)
    if legend:
        lines.extend(legend_lines())

    edges: set[tuple[str, str]] = set()
    for r in resources:
        for dep in r.get("dependencies") or []:
            if dep in by_urn and dep != r["urn"]:
                edges.add((dep, r["urn"]))
    for dep, dependent in sorted(edges, key=lambda e: (ids[e[0]], ids[e[1]])):
        tail = anchor_of.get(dep, ids[dep])
        head = anchor_of.get(dependent, ids[dependent])
        attrs = []
        if dep in cluster_of:
            attrs.append(f"ltail={cluster_of[dep]}")
        if dependent in cluster_of:
            attrs.append(f"lhead={cluster_of[dependent]}")
        if dep in cluster_of and _inside(dependent, dep, by_urn):
            continue  # a child depending on its own component is what the cluster already shows
        lines.append(f"  {tail} -> {head}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _inside(urn: str, ancestor: str, by_urn: dict[str, dict[str, Any]]) -> bool:
    seen = set()
    cur = by_urn.get(urn, {}).get("parent")
    while cur and cur not in seen:
        if cur == ancestor:
            return True
        seen.add(cur)
        cur = by_urn.get(cur, {}).get("parent")
    return False


def plan_from_preview_json(doc: dict[str, Any], project: str, stack: str) -> dict[str, Any]:
    """The plan shape from `pulumi preview --json` output (steps with their planned `newState`)."""
    resources = []
    for step in doc.get("steps", []):
        state = step.get("newState") or step.get("oldState")
        if not state or step.get("op") == "delete" or state.get("type") == "pulumi:pulumi:Stack":
            continue
        resources.append(
            {
                "urn": state.get("urn", step.get("urn")),
                "type": state.get("type", ""),
                "name": state.get("urn", step.get("urn", "")).rsplit("::", 1)[-1],
                "parent": state.get("parent"),
                "custom": bool(state.get("custom")),
                "inputs": {},
                "dependencies": list(state.get("dependencies") or []),
                "protect": bool(state.get("protect")),
            }
        )
    return {"project": project, "stack": stack, "resources": resources, "outputs": {}, "policy": {"violations": []}}


def output_format(path: Path | str) -> str:
    """`dot` for DOT text (`-`, .dot, .gv), else the Graphviz format of the suffix; ValueError otherwise."""
    if str(path) == "-":
        return "dot"
    suffix = Path(path).suffix.lower()
    if suffix in DOT_SUFFIXES:
        return "dot"
    if suffix in RENDERED_SUFFIXES:
        return RENDERED_SUFFIXES[suffix]
    allowed = ", ".join(sorted(DOT_SUFFIXES | set(RENDERED_SUFFIXES)))
    raise ValueError(f"-o {path}: unknown picture type; allowed suffixes: {allowed} (or - for DOT on stdout)")


def dot_binary() -> str | None:
    return shutil.which("dot")


def render(dot_text: str, fmt: str, binary: str) -> bytes:
    proc = subprocess.run([binary, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed: {proc.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
    return proc.stdout


def _engine_plan(args: argparse.Namespace) -> tuple[dict[str, Any] | None, int]:
    """Planned resources from the engine (`preview --json`), or an exit code after a one-line error."""
    from programs.api.engine import pulumi_cli_missing
    from programs.offline import PROJECT
    from programs.platformctl import automation

    if pulumi_cli_missing():
        print(f"error: {automation.cli_missing_line('graph')}", file=sys.stderr)
        return None, exit_codes.CONFIG_ERROR
    req = automation.build_request("preview", args)
    missing = automation.missing_policy_files(req)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return None, exit_codes.CONFIG_ERROR
    try:
        stack = automation.open_stack(req)
        result = stack.preview(json=True, **automation.operation_kwargs(req))
        return plan_from_preview_json(json.loads(result.stdout), PROJECT, args.stack), exit_codes.OK
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        from programs.platformctl.events import credentials_problem

        problem = credentials_problem(str(exc))
        print(f"error: stack '{args.stack}': {problem or automation.last_error_line(str(exc))}", file=sys.stderr)
        return None, exit_codes.CREDENTIALS_MISSING if problem else exit_codes.DEPLOY_FAILED


def run(args: argparse.Namespace) -> int:
    from programs.api.offline_preview import offline_plan

    try:
        fmt = output_format(args.output)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    binary = dot_binary()
    if fmt != "dot" and binary is None:
        print(
            "error: Graphviz `dot` is not installed (apt-get install graphviz, or `make setup`); "
            f"write DOT text instead with -o {Path(args.output).with_suffix('.dot').name}",
            file=sys.stderr,
        )
        return exit_codes.CONFIG_ERROR
    try:
        if args.offline:
            plan = offline_plan(args.stack, args.config_file, show_secrets=False)
        else:
            plan, code = _engine_plan(args)
            if plan is None:
                return code
    except INPUT_ERRORS as exc:
        return report_input_error(args.stack, exc)
    from programs.platformctl import graph_view

    try:
        if args.focus:
            plan = graph_view.focus(plan, args.focus)
        depth = args.depth if args.depth is not None else ("all" if args.focus else graph_view.DEFAULT_DEPTH)
        plan = graph_view.collapse(plan, None if depth == "all" else depth)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    dot_text = plan_to_dot(plan, legend=not args.no_legend)
    if str(args.output) == "-":
        sys.stdout.write(dot_text)
        return exit_codes.OK
    out = Path(args.output)
    if fmt == "dot":
        out.write_text(dot_text)
    else:
        try:
            out.write_bytes(render(dot_text, fmt, binary))  # type: ignore[arg-type]
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exit_codes.DEPLOY_FAILED
    components = sum(1 for r in plan["resources"] if not r.get("custom") or "collapsed" in r)
    collapsed = sum(1 for r in plan["resources"] if "collapsed" in r)
    print(
        f"{args.stack}: {len(plan['resources'])} nodes ({components} components, {collapsed} of them collapsed"
        f"{'' if args.depth is not None or args.focus else '; --depth 1 or --depth all draws more'}) drawn to {out}"
    )
    return exit_codes.OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("graph", help="draw the planned resources (components as clusters) with Graphviz")
    p.add_argument("--stack", required=True, help="stack name; reads Pulumi.<stack>.yaml")
    p.add_argument("--offline", action="store_true", help="plan under Pulumi mocks (no CLI, no cloud)")
    p.add_argument("--config-file", type=Path, help="stack file to use instead of Pulumi.<stack>.yaml")
    p.add_argument(
        "-o",
        "--output",
        default="graph.svg",
        help="picture to write (default: graph.svg): .svg/.png/.pdf (needs Graphviz dot), .dot/.gv or - for DOT text",
    )
    p.add_argument(
        "--depth",
        type=_depth,
        metavar="N",
        help="open N levels of components, drawing deeper ones as one node each (0: each top-level "
        f"component is one node; 1: their resources, sub-components collapsed; all: everything; "
        f"default {DEFAULT_DEPTH_TEXT})",
    )
    p.add_argument(
        "--focus",
        metavar="NAME",
        help="draw one component (by name, or TYPE::NAME) with its resources and its neighbours",
    )
    p.add_argument("--no-legend", action="store_true", help="leave the legend out")
    p.set_defaults(func=run)
