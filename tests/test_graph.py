"""platformctl graph: DOT text (components as clusters, dependency edges) and SVG through Graphviz."""

from __future__ import annotations

import html
import re
import shutil

import pytest

from programs.plan import build_plan
from programs.platformctl import exit_codes, graph
from programs.platformctl.cli import main
from programs.platformctl.graph import output_format, plan_from_preview_json, plan_to_dot, render

P = "urn:pulumi:dev::k8s-platform::"
NET = P + "k8s-platform:network:Network::network"
VPC = P + "k8s-platform:network:Network$aws:ec2/vpc:Vpc::network-vpc"
SUBNET = P + "k8s-platform:network:Network$aws:ec2/subnet:Subnet::network-private-a"
ENDPOINTS = P + "k8s-platform:network:Network$k8s-platform:network:Endpoints::network-endpoints"
SQS = P + "k8s-platform:network:Network$k8s-platform:network:Endpoints$aws:ec2/vpcEndpoint:VpcEndpoint::sqs"
CLUSTER = P + "k8s-platform:k3s:Cluster::dev-k3s"
SERVER = P + "k8s-platform:k3s:Cluster$aws:ec2/instance:Instance::dev-k3s-server"
KEY = P + "aws:kms/key:Key::state"


def res(urn, custom=True, parent=None, deps=(), protect=False):
    return {
        "urn": urn,
        "type": urn.split("::")[-2].rsplit("$", 1)[-1],
        "name": urn.rsplit("::", 1)[-1],
        "parent": parent,
        "custom": custom,
        "inputs": {},
        "dependencies": list(deps),
        "protect": protect,
    }


def sample_plan() -> dict:
    return {
        "project": "k8s-platform",
        "stack": "dev",
        "outputs": {},
        "policy": {"violations": []},
        "resources": [
            res(NET, custom=False),
            res(VPC, parent=NET),
            res(SUBNET, parent=NET, deps=[VPC, VPC, "urn:unknown::x"]),
            res(ENDPOINTS, custom=False, parent=NET, deps=[NET]),
            res(SQS, parent=ENDPOINTS, deps=[SUBNET, NET]),
            res(CLUSTER, custom=False, deps=[NET]),
            res(SERVER, parent=CLUSTER, deps=[SUBNET, KEY]),
            res(KEY, protect=True),
        ],
    }


def node_ids(dot: str) -> dict[str, str]:
    """name -> DOT node id, from the node labels."""
    return {m.group(2): m.group(1) for m in re.finditer(r'^\s*(r\d+) \[label="([^"\\]+)\\n', dot, re.M)}


def cluster_blocks(dot: str) -> dict[str, str]:
    """cluster id -> the DOT text inside its braces (nested clusters included)."""
    blocks = {}
    for m in re.finditer(r"subgraph (cluster_\w+) \{", dot):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(dot[i], 0)
            i += 1
        blocks[m.group(1)] = dot[m.end() : i - 1]
    return blocks


def test_components_are_clusters_holding_their_children():
    dot = plan_to_dot(sample_plan())
    blocks = cluster_blocks(dot)
    assert len(blocks) == 3  # network, its endpoints component, the cluster
    labels = {cid: re.search(r'label="([^"]+)"', body).group(1) for cid, body in blocks.items()}
    by_name = {lbl.split("\\n")[0]: cid for cid, lbl in labels.items()}
    assert set(by_name) == {"network", "network-endpoints", "dev-k3s"}
    ids = node_ids(dot)
    net_body = blocks[by_name["network"]]
    assert f"{ids['network-vpc']} [" in net_body and f"{ids['network-private-a']} [" in net_body
    # Nested component: a cluster inside the network cluster, holding the endpoint.
    assert f"subgraph {by_name['network-endpoints']} {{" in net_body
    assert f"{ids['sqs']} [" in blocks[by_name["network-endpoints"]]
    assert f"{ids['dev-k3s-server']} [" in blocks[by_name["dev-k3s"]]
    assert f"{ids['state']} [" not in "".join(blocks.values())  # top-level resource outside every cluster
    assert "[protect]" in dot and "penwidth=2" in dot


def test_dependency_edges_point_from_dependency_to_dependent():
    dot = plan_to_dot(sample_plan())
    ids = node_ids(dot)
    edges = re.findall(r"^\s*(\w+) -> (\w+)(?: \[([^\]]*)\])?;", dot, re.M)
    plain = {(a, b) for a, b, attrs in edges if not attrs}
    assert (ids["network-vpc"], ids["network-private-a"]) in plain
    assert (ids["network-private-a"], ids["sqs"]) in plain
    assert (ids["network-private-a"], ids["dev-k3s-server"]) in plain and (ids["state"], ids["dev-k3s-server"]) in plain
    # The duplicate dependency is one edge; an unknown URN draws nothing.
    assert sum(1 for a, b, _ in edges if (a, b) == (ids["network-vpc"], ids["network-private-a"])) == 1
    # A dependency on a component is drawn from the component's cluster (compound edge) ...
    cluster_edges = [attrs for a, b, attrs in edges if "ltail=" in attrs]
    assert any("lhead=" in attrs for attrs in cluster_edges)  # dev-k3s depends on network
    # ... but a child depending on its own ancestor is shown by nesting, not by an edge.
    assert not any(b == ids["sqs"] and "ltail" in attrs for a, b, attrs in edges)
    assert len(edges) == 5


def test_labels_are_escaped():
    plan = {"project": "p", "stack": "s", "resources": [res(P + 'aws:s3/bucket:Bucket::say "hi"\\now')]}
    dot = plan_to_dot(plan)
    assert 'label="say \\"hi\\"\\\\now\\naws:s3/bucket:Bucket"' in dot


def test_dev_plan_draws_every_component_and_dependency(dev_run):
    plan = build_plan(dev_run)
    dot = plan_to_dot(plan)
    components = [r for r in plan["resources"] if not r["custom"]]
    assert components, "the dev stack has components"
    assert len(re.findall(r"subgraph cluster_\w+ \{", dot)) == len(components)
    urns = {r["urn"] for r in plan["resources"]}
    custom_pairs = {
        (d, r["urn"])
        for r in plan["resources"]
        for d in r["dependencies"]
        if d in urns and d != r["urn"] and r["custom"]
    }
    custom_deps = {(a, b) for a, b in custom_pairs if next(x for x in plan["resources"] if x["urn"] == a)["custom"]}
    assert len(re.findall(r"^\s*r\d+ -> r\d+;", dot, re.M)) == len(custom_deps)
    assert dot.count(" [label=") == len(plan["resources"]) - len(components)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed (make setup installs it)")
def test_svg_is_rendered_with_clusters(dev_run):
    svg = html.unescape(render(plan_to_dot(build_plan(dev_run)), "svg", shutil.which("dot")).decode())
    assert "<svg" in svg
    assert svg.count('class="cluster"') == sum(1 for r in dev_run.resources if not r.custom)
    assert "network-vpc" in svg


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed (make setup installs it)")
def test_graph_command_writes_svg(tmp_path, capsys):
    out = tmp_path / "graph.svg"
    assert main(["graph", "--stack", "dev", "--offline", "-o", str(out)]) == exit_codes.OK
    assert out.read_text().lstrip().startswith("<?xml") and "<svg" in out.read_text()
    assert "drawn to" in capsys.readouterr().out


@pytest.mark.patches_outside_the_program
def test_dot_output_needs_no_graphviz_and_svg_without_it_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(graph, "dot_binary", lambda: None)
    out = tmp_path / "graph.dot"
    assert main(["graph", "--stack", "dev", "--offline", "--depth", "all", "-o", str(out)]) == exit_codes.OK
    assert out.read_text().startswith('digraph "k8s-platform-dev"') and "subgraph cluster_" in out.read_text()
    capsys.readouterr()
    assert main(["graph", "--stack", "dev", "--offline", "-o", str(tmp_path / "g.svg")]) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Graphviz" in err[0] and "-o g.dot" in err[0]
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.patches_outside_the_program
def test_graph_errors(tmp_path, monkeypatch, capsys):
    assert main(["graph", "--stack", "dev", "--offline", "-o", str(tmp_path / "g.jpg")]) == exit_codes.CONFIG_ERROR
    assert "allowed suffixes" in capsys.readouterr().err
    assert main(["graph", "--stack", "nope", "--offline", "-o", str(tmp_path / "g.dot")]) == exit_codes.CONFIG_ERROR
    assert "Pulumi.nope.yaml" in capsys.readouterr().err
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["graph", "--stack", "dev", "-o", str(tmp_path / "g.dot")]) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pulumi CLI is not installed" in err[0] and "--offline" in err[0]


def test_output_formats():
    assert output_format("-") == "dot" and output_format("x.gv") == "dot" and output_format("X.DOT") == "dot"
    assert output_format("a/b.svg") == "svg" and output_format("g.png") == "png" and output_format("g.pdf") == "pdf"
    with pytest.raises(ValueError):
        output_format("graph")


def test_plan_from_the_engines_preview_json():
    doc = {
        "steps": [
            {
                "op": "same",
                "urn": P + "pulumi:pulumi:Stack::k8s-platform-dev",
                "newState": {"urn": P + "pulumi:pulumi:Stack::k8s-platform-dev", "type": "pulumi:pulumi:Stack"},
            },
            {
                "op": "create",
                "urn": NET,
                "newState": {"urn": NET, "type": "k8s-platform:network:Network", "custom": False},
            },
            {
                "op": "create",
                "urn": VPC,
                "newState": {"urn": VPC, "type": "aws:ec2/vpc:Vpc", "custom": True, "parent": NET},
            },
            {
                "op": "update",
                "urn": SUBNET,
                "newState": {
                    "urn": SUBNET,
                    "type": "aws:ec2/subnet:Subnet",
                    "custom": True,
                    "parent": NET,
                    "dependencies": [VPC],
                },
            },
            {"op": "delete", "urn": KEY, "oldState": {"urn": KEY, "type": "aws:kms/key:Key", "custom": True}},
        ],
        "changeSummary": {"create": 2, "update": 1, "delete": 1},
    }
    plan = plan_from_preview_json(doc, "k8s-platform", "dev")
    assert [r["name"] for r in plan["resources"]] == ["network", "network-vpc", "network-private-a"]
    dot = plan_to_dot(plan)
    ids = node_ids(dot)
    assert len(cluster_blocks(dot)) == 1 and f"{ids['network-vpc']} -> {ids['network-private-a']};" in dot


# --- issue 13: legend, --depth, --focus, PNG at screen size, the -o default in --help -------------------
def _plan_of(dev_run):
    from programs.plan import build_plan

    return build_plan(dev_run)


def test_depth_collapses_components_and_keeps_their_dependencies(dev_run):
    from programs.platformctl.graph_view import collapse

    plan = _plan_of(dev_run)
    top = collapse(plan, 0)
    components = [r for r in top["resources"] if "collapsed" in r]
    tops = [
        r for r in plan["resources"] if not r["custom"] and r["parent"] not in {x["urn"] for x in plan["resources"]}
    ]
    assert sorted(r["name"] for r in components) == sorted(r["name"] for r in tops)
    # every resource is either drawn or counted inside exactly one collapsed node
    drawn = [r for r in top["resources"] if "collapsed" not in r]
    assert len(drawn) + sum(r["collapsed"] for r in components) + len(components) == len(plan["resources"])
    network = next(r for r in components if r["type"] == "k8s-platform:network:Network")
    assert any(network["urn"] in r["dependencies"] for r in components)  # the cluster depends on the network
    one = collapse(plan, 1)
    assert len(top["resources"]) < len(one["resources"]) < len(plan["resources"])


def test_focus_draws_one_component_with_its_neighbours(dev_run):
    from programs.platformctl.graph_view import focus

    plan = _plan_of(dev_run)
    view = focus(plan, "karpenter")
    names = {r["name"] for r in view["resources"]}
    assert "karpenter" in names and "karpenter-chart" in names
    neighbours = [r for r in view["resources"] if r.get("neighbour")]
    assert neighbours and not any(r["name"].startswith("karpenter") for r in neighbours)
    with pytest.raises(ValueError, match="no component of that name"):
        focus(plan, "nope")


def test_the_picture_has_a_legend():
    text = plan_to_dot({"project": "p", "stack": "s", "resources": []})
    assert "Legend" in text and "B depends on A" in text and "protected" in text
    assert "Legend" not in plan_to_dot({"project": "p", "stack": "s", "resources": []}, legend=False)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed (make setup installs it)")
def test_default_prod_png_fits_a_screen(tmp_path, capsys):
    import struct

    out = tmp_path / "prod.png"
    assert main(["graph", "--stack", "prod", "--offline", "-o", str(out)]) == exit_codes.OK
    head = out.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width <= 1920 and height <= 1200, (width, height)
    assert "--depth 1 or --depth all draws more" in capsys.readouterr().out


def test_help_states_the_output_default(capsys):
    with pytest.raises(SystemExit):
        main(["graph", "--help"])
    assert "default: graph.svg" in capsys.readouterr().out
