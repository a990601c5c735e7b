"""Speed of the offline toolchain, measured in one run (never asserted in tests).

    .venv/bin/python benchmarks/run.py [--reps 3] [--stacks 15] [--resources 10000] [--json out.json]

1. import floor: `python -c "import pulumi, pulumi_aws, pulumi_kubernetes, pulumi_tls"` (what every
   offline preview pays before the program runs);
2. offline preview of dev and prod: `platformctl preview --offline` in a fresh interpreter, as a user runs it;
3. a fleet of generated stacks (variants of dev: names, VPC blocks, zones) through
   `platformctl fleet preview --offline`'s scheduler, one process per stack, parallel = CPUs;
4. the policy pack over synthetic resources (copies of the dev stack's resources under new URNs)
   through the offline policy runner, with the dev policy config.

Wall times are medians of `--reps` runs where a measurement is repeated. Prints a table and the ratios.
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

IMPORT_FLOOR = "import pulumi, pulumi_aws, pulumi_kubernetes, pulumi_tls"


def machine() -> str:
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {mem} RAM, Python {platform.python_version()}, {platform.machine()}"


def children_cpu() -> float:
    """CPU seconds (user + system) of finished child processes: unlike wall time, barely moved by
    other work on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def timed_process(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    cpu0, start = children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    return time.perf_counter() - start, children_cpu() - cpu0, proc


def median_of(cmd: list[str], reps: int) -> tuple[float, list[float], float, subprocess.CompletedProcess]:
    times, cpus, last = [], [], None
    for _ in range(reps):
        seconds, cpu, last = timed_process(cmd)
        times.append(seconds)
        cpus.append(cpu)
    return statistics.median(times), times, statistics.median(cpus), last  # type: ignore[return-value]


def bench_import(reps: int) -> dict:
    med, times, cpu, proc = median_of([sys.executable, "-c", IMPORT_FLOOR], reps)
    if proc.returncode != 0:
        raise SystemExit(f"import floor failed: {proc.stderr.strip().splitlines()[-1:]}")
    return {"name": "import floor", "seconds": med, "cpu": cpu, "runs": times,
            "note": "pulumi, pulumi_aws, pulumi_kubernetes, pulumi_tls"}


def bench_preview(stack: str, reps: int, tmp: Path) -> dict:
    plan_path = tmp / f"plan-{stack}.json"
    cmd = [sys.executable, "-m", "programs.platformctl.cli", "preview", "--stack", stack, "--offline", "--quiet",
           "--json", str(plan_path)]
    med, times, cpu, proc = median_of(cmd, reps)
    resources = len(json.loads(plan_path.read_text())["resources"]) if plan_path.exists() else 0
    note = f"{resources} resources, exit {proc.returncode}"
    if proc.returncode not in (0, 1):
        note += f" ({(proc.stderr.strip().splitlines() or ['?'])[-1][:80]})"
    return {"name": f"offline preview {stack}", "seconds": med, "cpu": cpu, "runs": times, "resources": resources,
            "exit": proc.returncode, "note": note}


def bench_fleet(count: int, tmp: Path) -> dict:
    from programs.platformctl.fleet import OfflineRunner, RetryPolicy, run_fleet, select_jobs, write_dev_variants

    stacks_dir = tmp / "fleet"
    write_dev_variants(REPO_ROOT / "Pulumi.dev.yaml", stacks_dir, count)
    jobs = select_jobs("preview", stacks_dir=stacks_dir)
    parallel = os.cpu_count() or 1
    cpu0, start = children_cpu(), time.perf_counter()
    results = run_fleet(jobs, OfflineRunner(), parallel, RetryPolicy(attempts=1))
    wall = time.perf_counter() - start
    cpu = children_cpu() - cpu0
    ok = sum(r.ok for r in results)
    failed = [f"{r.name}: {r.detail}" for r in results if not r.ok]
    return {"name": f"fleet of {count} stacks", "seconds": wall, "cpu": cpu, "runs": [wall], "parallel": parallel,
            "sum_stack_seconds": sum(r.seconds for r in results), "ok": ok, "failed": failed,
            "note": f"parallel {parallel}, {ok}/{count} ok" + (f"; {failed[0][:60]}" if failed else "")}


def synthetic_resources(count: int) -> list:
    """`count` resources: the dev stack's real resources, copied under new URNs until there are enough."""
    from programs.plan import resources_from_run
    from programs.offline import read_stack_file, run_offline, stack_file

    base = resources_from_run(run_offline("dev", read_stack_file(stack_file("dev"))))
    out = []
    i = 0
    while len(out) < count:
        for r in base:
            if len(out) == count:
                break
            suffix = f"-c{i}"
            out.append(type(r)(urn=r.urn + suffix, type=r.type, name=r.name + suffix, inputs=r.inputs,
                               parent=(r.parent + suffix) if r.parent else None,
                               dependencies=[d + suffix for d in r.dependencies],
                               property_dependencies={k: [d + suffix for d in v] for k, v in r.property_dependencies.items()},
                               protect=r.protect))
        i += 1
    return out


def bench_policy(count: int) -> dict:
    try:
        from policy.offline_runner import evaluate, load_pack_config, reconcile
    except ImportError as exc:
        return {"name": f"policy pack, {count} resources", "seconds": None, "cpu": None, "runs": [],
                "note": f"skipped: offline policy runner not importable ({exc})"}
    resources = synthetic_resources(count)
    config_file = REPO_ROOT / "policy" / "config" / "dev.json"
    config = load_pack_config(config_file) if config_file.exists() else {}
    settings = reconcile(config, source=str(config_file))
    start, cpu0 = time.perf_counter(), time.process_time()
    violations = evaluate(resources, settings)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    per = seconds / count * 1e6
    return {"name": f"policy pack, {count} resources", "seconds": seconds, "cpu": cpu, "runs": [seconds], "resources": count,
            "us_per_resource": per, "violations": len(violations),
            "note": f"{per:.0f} µs/resource, {len(violations)} violations reported"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the import floor and single previews")
    parser.add_argument("--stacks", type=int, default=15, help="generated stacks in the fleet")
    parser.add_argument("--resources", type=int, default=10_000, help="synthetic resources for the policy pack")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args()

    print(f"machine: {machine()}; load average at start: {load()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="k8s-platform-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        for step in (lambda: bench_import(args.reps), lambda: bench_preview("dev", args.reps, tmp),
                     lambda: bench_preview("prod", args.reps, tmp), lambda: bench_fleet(args.stacks, tmp),
                     lambda: bench_policy(args.resources)):
            row = step()
            rows.append(row)
            shown = "-" if row["seconds"] is None else f"{row['seconds']:.2f}s"
            print(f"  {row['name']:<34} {shown:>9}   {row['note']}", flush=True)

    by = {r["name"]: r for r in rows}
    floor = by["import floor"]["seconds"]
    dev = by["offline preview dev"]["seconds"]
    prod = by["offline preview prod"]["seconds"]
    fleet = by[f"fleet of {args.stacks} stacks"]
    policy = by[f"policy pack, {args.resources} resources"]
    serial = args.stacks * dev
    ratios = {
        "preview dev / import floor": dev / floor,
        "preview prod / import floor": prod / floor,
        "preview prod / preview dev": prod / dev,
        f"fleet wall / {args.stacks} x single dev preview": fleet["seconds"] / serial,
        "fleet wall / sum of its stacks' times": fleet["seconds"] / fleet["sum_stack_seconds"],
        "fleet wall per stack (s)": fleet["seconds"] / args.stacks,
        "fleet cpu per stack / single dev preview cpu": fleet["cpu"] / args.stacks / by["offline preview dev"]["cpu"],
        "preview dev cpu / import floor cpu": by["offline preview dev"]["cpu"] / by["import floor"]["cpu"],
    }
    if policy["seconds"] is not None:
        ratios["policy µs/resource"] = policy["us_per_resource"]
        ratios[f"policy {args.resources} resources / preview dev"] = policy["seconds"] / dev

    print()
    print(f"{'measurement':<36} {'wall':>9} {'cpu':>9}  wall of each run")
    print(f"{'-' * 36} {'-' * 9} {'-' * 9}  {'-' * 24}")
    for r in rows:
        shown = "-" if r["seconds"] is None else f"{r['seconds']:.2f}s"
        cpu = "-" if r.get("cpu") is None else f"{r['cpu']:.2f}s"
        print(f"{r['name']:<36} {shown:>9} {cpu:>9}  {', '.join(f'{t:.2f}' for t in r['runs'])}")
    print(f"(wall: median where repeated; cpu: user+system seconds; load average at end: {load()})")
    print()
    print("ratios:")
    for name, value in ratios.items():
        print(f"  {name:<44} {value:8.2f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows, "ratios": ratios}, indent=2) + "\n")
    return 0 if not fleet["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
