"""Speed of the offline toolchain, measured in one run (never asserted in tests).

    .venv/bin/python benchmarks/run.py [--reps 3] [--stacks 15] [--resources 10000] [--skip-suite] [--json out.json]

1. the true floor of each shipped stack: a fresh interpreter that imports every module an offline
   preview of that stack loads (the list is what `sys.modules` holds after a real run, in load order,
   less the project's own modules and the SDKs' never-touched lazy placeholders) and resolves the type
   hints of every input, output and resource class that run resolved (recorded at the SDK's
   `pulumi._types` entry points), registering nothing: what that preview pays before its first
   resource. Figures are given as ratios to it;
2. cold offline preview of dev and prod: `platformctl preview --offline --no-cache` in a fresh
   interpreter, as a user runs it (max RSS per preview);
3. re-preview of an unchanged stack: the same command again, answered by the plan cache;
4. warm preview: the warm runner's forked child (programs/platformctl/warm_runner.py) after its warm-up;
5. fleets of generated stacks (variants of dev: names, VPC blocks, zones) through
   `platformctl fleet preview --offline --no-cache --parallel 2` (the warm runner), 15 and 5 stacks,
   so that the cost of each added stack is the difference; max RSS of the fleet's processes;
6. the policy pack over synthetic resources (copies of the dev stack's resources under new URNs);
7. the test suite, `make test` (wall, and user+system CPU seconds of all its processes).

Wall times are medians of `--reps` runs where a measurement is repeated; CPU seconds (user+system of
the measured processes) are barely moved by other work on a shared machine, wall seconds are. Prints
a table, the ratios and the targets of issue 19.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

PROJECT_PACKAGES = ("components", "programs", "policy", "tests", "benchmarks")
# The SDK's entry points that resolve a class's type hints (each call is replayed by the floor).
TYPE_RESOLVERS = (
    "input_type_types",
    "input_type_py_to_pulumi_names",
    "output_type_types",
    "resource_types",
    "resource_py_to_pulumi_names",
    "resource_pulumi_to_py_names",
)


def machine() -> str:
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), {mem} RAM, Python {platform.python_version()}, {platform.machine()}"


def load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


# --- measuring one process (wall, CPU and max RSS of it and everything it waited for) -------------


def timed_process(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO_ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mib": usage.ru_maxrss / 1024,
            "code": proc.returncode,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


def repeated(cmd: list[str], reps: int, env: dict[str, str] | None = None) -> dict:
    runs = [timed_process(cmd, env) for _ in range(reps)]
    return {
        "seconds": statistics.median(r["wall"] for r in runs),
        "cpu": statistics.median(r["cpu"] for r in runs),
        "rss_mib": max(r["rss_mib"] for r in runs),
        "runs": [r["wall"] for r in runs],
        "last": runs[-1],
    }


def fail_line(proc: dict) -> str:
    return (proc["stderr"].strip().splitlines() or ["?"])[-1][:100]


# --- the true floor -------------------------------------------------------------------------------


def record_footprint(out: Path, stack: str) -> None:
    """In a fresh interpreter: an offline preview of `stack` as `platformctl` runs it, recording which
    classes the SDK resolves; then every non-project module loaded, in load order."""
    import pulumi._types as types

    resolved: dict[tuple[str, str, str], None] = {}

    def recording(fn_name: str):
        original = getattr(types, fn_name)

        def wrapper(cls, *a, **kw):
            resolved[(fn_name, cls.__module__, cls.__qualname__)] = None
            return original(cls, *a, **kw)

        return wrapper

    for fn_name in TYPE_RESOLVERS:
        setattr(types, fn_name, recording(fn_name))
    from programs.api.offline_preview import offline_plan

    offline_plan(stack, None, False)
    # The SDKs register every submodule lazily (pulumi._utils.lazy_import, a `_LazyModule` until its
    # first attribute access): a placeholder never touched was never loaded, so it is no part of the
    # floor. `type()` does not touch it.
    modules = [
        name
        for name, module in list(sys.modules.items())
        if name.split(".")[0] not in PROJECT_PACKAGES
        and name not in ("__main__", "run")
        and type(module).__name__ != "_LazyModule"
    ]
    out.write_text(json.dumps({"modules": modules, "types": [list(k) for k in resolved]}))


def floor_process(footprint: Path) -> None:
    """The floor itself: import the modules, resolve the types, register nothing."""
    import importlib

    data = json.loads(footprint.read_text())
    failed = 0
    for name in data["modules"]:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a few entries are aliases that cannot be imported by name
            failed += 1
    import pulumi._types as types

    for fn_name, module, qualname in data["types"]:
        obj = sys.modules.get(module)
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        if obj is not None:
            getattr(types, fn_name)(obj)
    print(json.dumps({"modules": len(data["modules"]), "not_importable": failed, "types": len(data["types"])}))


def bench_floor(stack: str, reps: int, tmp: Path) -> dict:
    footprint = tmp / f"footprint-{stack}.json"
    rec = timed_process([sys.executable, __file__, "--record-footprint", str(footprint), stack])
    if rec["code"] != 0:
        raise SystemExit(f"recording the footprint failed: {fail_line(rec)}")
    r = repeated([sys.executable, __file__, "--floor", str(footprint)], reps)
    if r["last"]["code"] != 0:
        raise SystemExit(f"floor failed: {fail_line(r['last'])}")
    info = json.loads(r["last"]["stdout"].strip().splitlines()[-1])
    top = repeated([sys.executable, "-c", "import pulumi, pulumi_aws, pulumi_kubernetes, pulumi_tls"], reps)
    return {
        "name": f"true floor {stack}",
        **r,
        "info": info,
        "top_level_imports": top["seconds"],
        "note": f"{info['modules']} modules, {info['types']} type resolutions, nothing registered "
        f"(top-level imports alone: {top['seconds']:.2f}s)",
    }


# --- previews -------------------------------------------------------------------------------------


def preview_cmd(stack: str, plan: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "programs.platformctl.cli",
        "preview",
        "--stack",
        stack,
        "--offline",
        "--quiet",
        "--json",
        str(plan),
        *extra,
    ]


def bench_preview(stack: str, reps: int, tmp: Path) -> dict:
    plan_path = tmp / f"plan-{stack}.json"
    r = repeated(preview_cmd(stack, plan_path, "--no-cache"), reps)
    resources = len(json.loads(plan_path.read_text())["resources"]) if plan_path.exists() else 0
    note = f"{resources} resources, exit {r['last']['code']}, max RSS {r['rss_mib']:.0f} MiB"
    if r["last"]["code"] not in (0, 1):
        note += f" ({fail_line(r['last'])})"
    return {"name": f"cold preview {stack}", **r, "resources": resources, "note": note}


def bench_repreview(stack: str, reps: int, tmp: Path) -> dict:
    env = {**os.environ, "PLATFORMCTL_CACHE_DIR": str(tmp / "cache")}
    env.pop("PLATFORMCTL_NO_CACHE", None)
    plan_path = tmp / f"plan-{stack}-again.json"
    fill = timed_process(preview_cmd(stack, plan_path), env)
    r = repeated(preview_cmd(stack, plan_path), reps, env)
    same = fill["code"] == r["last"]["code"]
    return {
        "name": f"re-preview {stack} (unchanged)",
        **r,
        "note": f"plan cache; exit {r['last']['code']}{'' if same else ' (differs from the first run!)'}",
    }


def warm_previews(stack: str, count: int) -> None:
    """In a fresh interpreter: the warm runner's warm-up, then `count` forked previews of `stack`."""
    from programs.offline import stack_file
    from programs.platformctl.fleet import StackJob
    from programs.platformctl.warm_runner import WarmRunner

    job = StackJob(stack, stack_file(stack))
    runner = WarmRunner(parallel=1, use_cache=False)
    warm = runner.warm([job])
    runs = []
    for _ in range(count):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        [result] = runner.run([job])
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        runs.append(
            {
                "wall": result.seconds,
                "ok": result.ok,
                "rss_mib": after.ru_maxrss / 1024,
                "cpu": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
            }
        )
    print(json.dumps({"warm": warm, "runs": runs}))


def bench_warm(stack: str, reps: int) -> dict:
    proc = timed_process([sys.executable, __file__, "--warm-previews", stack, str(reps)])
    if proc["code"] != 0:
        return {
            "name": f"warm preview {stack} (forked)",
            "seconds": None,
            "cpu": None,
            "runs": [],
            "note": f"failed: {fail_line(proc)}",
        }
    data = json.loads(proc["stdout"].strip().splitlines()[-1])
    runs = data["runs"]
    return {
        "name": f"warm preview {stack} (forked)",
        "seconds": statistics.median(r["wall"] for r in runs),
        "cpu": statistics.median(r["cpu"] for r in runs),
        "rss_mib": max(r["rss_mib"] for r in runs),
        "runs": [r["wall"] for r in runs],
        "warm_up": data["warm"],
        "note": f"after a {data['warm']:.2f}s warm-up; {sum(r['ok'] for r in runs)}/{len(runs)} ok",
    }


def bench_fleet(count: int, parallel: int, tmp: Path) -> dict:
    from programs.platformctl.fleet_stacks import write_dev_variants

    stacks_dir = tmp / f"fleet-{count}"
    write_dev_variants(REPO_ROOT / "Pulumi.dev.yaml", stacks_dir, count)
    out = tmp / f"fleet-{count}.json"
    proc = timed_process(
        [
            sys.executable,
            "-m",
            "programs.platformctl.cli",
            "fleet",
            "preview",
            "--offline",
            "--no-cache",
            "--stacks-dir",
            str(stacks_dir),
            "--parallel",
            str(parallel),
            "--json",
            str(out),
        ]
    )
    stacks = json.loads(out.read_text())["stacks"] if out.exists() else []
    ok = sum(s["code"] == 0 for s in stacks)
    failed = [f"{s['name']}: {s['detail']}" for s in stacks if s["code"] != 0] or (
        [] if proc["code"] == 0 else [fail_line(proc)]
    )
    return {
        "name": f"fleet of {count} stacks",
        "seconds": proc["wall"],
        "cpu": proc["cpu"],
        "rss_mib": proc["rss_mib"],
        "runs": [proc["wall"]],
        "parallel": parallel,
        "ok": ok,
        "failed": failed,
        "note": f"parallel {parallel}, {ok}/{count} ok, max RSS {proc['rss_mib']:.0f} MiB"
        + (f"; {failed[0][:60]}" if failed else ""),
    }


# --- policy pack ----------------------------------------------------------------------------------


def synthetic_resources(count: int) -> list:
    """`count` resources: the dev stack's real resources, copied under new URNs until there are enough."""
    from programs.offline import read_stack_file, run_offline, stack_file
    from programs.plan import resources_from_run

    base = resources_from_run(run_offline("dev", read_stack_file(stack_file("dev"))))
    out = []
    i = 0
    while len(out) < count:
        for r in base:
            if len(out) == count:
                break
            suffix = f"-c{i}"
            out.append(
                type(r)(
                    urn=r.urn + suffix,
                    type=r.type,
                    name=r.name + suffix,
                    inputs=r.inputs,
                    parent=(r.parent + suffix) if r.parent else None,
                    dependencies=[d + suffix for d in r.dependencies],
                    property_dependencies={k: [d + suffix for d in v] for k, v in r.property_dependencies.items()},
                    protect=r.protect,
                )
            )
        i += 1
    return out


def bench_policy(count: int) -> dict:
    try:
        from policy.offline_runner import evaluate, load_pack_config, reconcile
    except ImportError as exc:
        return {
            "name": f"policy pack, {count} resources",
            "seconds": None,
            "cpu": None,
            "runs": [],
            "note": f"skipped: offline policy runner not importable ({exc})",
        }
    resources = synthetic_resources(count)
    config_file = REPO_ROOT / "policy" / "config" / "dev.json"
    config = load_pack_config(config_file) if config_file.exists() else {}
    settings = reconcile(config, source=str(config_file))
    start, cpu0 = time.perf_counter(), time.process_time()
    violations = evaluate(resources, settings)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    per = seconds / count * 1e6
    return {
        "name": f"policy pack, {count} resources",
        "seconds": seconds,
        "cpu": cpu,
        "runs": [seconds],
        "us_per_resource": per,
        "violations": len(violations),
        "note": f"{per:.0f} µs/resource, {len(violations)} violations reported",
    }


# --- the test suite -------------------------------------------------------------------------------


def bench_suite() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = timed_process(["make", "test"], env)
    tail = [ln for ln in proc["stdout"].splitlines() if " passed" in ln or " failed" in ln]
    return {
        "name": "make test",
        "seconds": proc["wall"],
        "cpu": proc["cpu"],
        "rss_mib": proc["rss_mib"],
        "runs": [proc["wall"]],
        "code": proc["code"],
        "note": f"exit {proc['code']}; {tail[-1].strip('= ') if tail else fail_line(proc)}",
    }


# --- report ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the floor and of single previews")
    parser.add_argument("--stacks", type=int, default=15, help="generated stacks in the large fleet")
    parser.add_argument("--small-stacks", type=int, default=5, help="generated stacks in the small fleet")
    parser.add_argument("--parallel", type=int, default=2, help="fleet parallelism")
    parser.add_argument("--resources", type=int, default=10_000, help="synthetic resources for the policy pack")
    parser.add_argument("--skip-suite", action="store_true", help="do not run `make test`")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--record-footprint", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warm-previews", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record_footprint:
        record_footprint(Path(args.record_footprint[0]), args.record_footprint[1])
        return 0
    if args.floor:
        floor_process(args.floor)
        return 0
    if args.warm_previews:
        warm_previews(args.warm_previews[0], int(args.warm_previews[1]))
        return 0

    print(f"machine: {machine()}; load average at start: {load()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="k8s-platform-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        steps = [
            lambda: bench_floor("dev", args.reps, tmp),
            lambda: bench_floor("prod", args.reps, tmp),
            lambda: bench_preview("dev", args.reps, tmp),
            lambda: bench_preview("prod", args.reps, tmp),
            lambda: bench_repreview("dev", args.reps, tmp),
            lambda: bench_warm("dev", args.reps),
            lambda: bench_fleet(args.stacks, args.parallel, tmp),
            lambda: bench_fleet(args.small_stacks, args.parallel, tmp),
            lambda: bench_policy(args.resources),
        ]
        if not args.skip_suite:
            steps.append(bench_suite)
        for step in steps:
            row = step()
            row.pop("last", None)
            rows.append(row)
            shown = "-" if row["seconds"] is None else f"{row['seconds']:.2f}s"
            print(f"  {row['name']:<34} {shown:>9}   {row['note']}", flush=True)

    by = {r["name"]: r for r in rows}
    floor, floor_prod = by["true floor dev"], by["true floor prod"]
    dev, prod = by["cold preview dev"], by["cold preview prod"]
    again = by["re-preview dev (unchanged)"]
    warm = by["warm preview dev (forked)"]
    big, small = by[f"fleet of {args.stacks} stacks"], by[f"fleet of {args.small_stacks} stacks"]
    policy = by[f"policy pack, {args.resources} resources"]
    serial = args.stacks * dev["seconds"]
    added = (big["seconds"] - small["seconds"]) / max(1, args.stacks - args.small_stacks)
    added_cpu = (big["cpu"] - small["cpu"]) / max(1, args.stacks - args.small_stacks)
    # (name, value, target, how it compares); wall ratios first, then the same in CPU seconds
    ratios: list[tuple[str, float, float | None]] = [
        ("cold preview prod / its floor", prod["seconds"] / floor_prod["seconds"], 2.5),
        ("cold preview dev / its floor", dev["seconds"] / floor["seconds"], 3.0),
        (f"fleet {args.stacks} / ({args.stacks} x cold dev)", big["seconds"] / serial, 0.3),
        (f"each added stack at parallel {args.parallel} (s)", added, 1.0),
        ("re-preview unchanged dev (s)", again["seconds"], 0.5),
        ("re-preview unchanged dev / dev floor", again["seconds"] / floor["seconds"], None),
        (
            "warm forked dev preview / dev floor",
            warm["seconds"] / floor["seconds"] if warm["seconds"] else float("nan"),
            None,
        ),
        (f"fleet {args.stacks} / dev floor", big["seconds"] / floor["seconds"], None),
        ("cold preview prod / its floor, CPU", prod["cpu"] / floor_prod["cpu"], 2.5),
        ("cold preview dev / its floor, CPU", dev["cpu"] / floor["cpu"], 3.0),
        (f"fleet {args.stacks} / ({args.stacks} x cold dev), CPU", big["cpu"] / (args.stacks * dev["cpu"]), 0.3),
        (f"each added stack, CPU s / {args.parallel} cores", added_cpu / args.parallel, 1.0),
        ("re-preview unchanged dev, CPU (s)", again["cpu"], 0.5),
    ]
    if policy["seconds"] is not None:
        ratios.append(("policy µs/resource", policy["us_per_resource"], None))
    if "make test" in by:
        ratios.append(("make test (s)", by["make test"]["seconds"], 60.0))
        ratios.append(("make test, CPU s / 2 cores (idle-machine estimate)", by["make test"]["cpu"] / 2, 60.0))

    print()
    print(f"{'measurement':<36} {'wall':>9} {'cpu':>9} {'max RSS':>9}  wall of each run")
    print(f"{'-' * 36} {'-' * 9} {'-' * 9} {'-' * 9}  {'-' * 24}")
    for r in rows:
        shown = "-" if r["seconds"] is None else f"{r['seconds']:.2f}s"
        cpu = "-" if r.get("cpu") is None else f"{r['cpu']:.2f}s"
        rss = "-" if r.get("rss_mib") is None else f"{r['rss_mib']:.0f}MiB"
        print(f"{r['name']:<36} {shown:>9} {cpu:>9} {rss:>9}  {', '.join(f'{t:.2f}' for t in r['runs'])}")
    print(f"(wall: median where repeated; cpu: user+system seconds of the processes; load average at end: {load()})")
    print()
    print("ratios (target; a wall figure on a loaded machine is pessimistic, its CPU twin is the fairer one):")
    for name, value, target in ratios:
        mark = "" if target is None else f"  (target <= {target:g}: {'met' if value <= target else 'NOT met'})"
        print(f"  {name:<52} {value:8.2f}{mark}")
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine(), "rows": rows, "ratios": {n: v for n, v, _ in ratios}}, indent=2) + "\n"
        )
    return 0 if not big["failed"] and not small["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
