"""Our EcsExecutor and upstream's AwsEcsExecutor side by side, in one run, on the same workloads.

``python -m benchmarks.compare`` (``make bench``) runs every scenario for both executors,
alternating, each against a fresh emulator with the ``aws`` profile (API latency and the ECS and
Fargate throttling quotas of AWS_FACTS.md) and the simulated runner. Each executor runs in a
process of its own (``benchmarks.drive``), driven as Airflow's scheduler drives it. It writes
``benchmarks/results/compare.json`` (with commit, profile and machine), ``compare.md`` (the table)
and ``compare.png`` (both launch timelines). It asserts nothing.

``--quick`` runs small sizes (for a look in a minute); ``--scenarios`` picks some.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecs_emulator import Emulator
from ecs_emulator.profile import Profile, load_profile
from ecs_emulator.runners import SIM_DURATION_ENV

RESULTS = Path("benchmarks/results")
EXECUTORS = ("ours", "upstream")
TASK_SECONDS = "5"  # how long each simulated task runs


@dataclass(frozen=True)
class Scenario:
    """One load shape: how many workloads, when each is queued, and what goes wrong meanwhile."""

    name: str
    n: int
    arrivals: list[float]
    description: str
    deadline: float
    setup: str = ""  # "throttle_storm" or "capacity_shortfall"


def burst(n: int) -> Scenario:
    return Scenario(f"burst-{n}", n, [0.0] * n, f"{n} workloads queued at once", deadline=120 + n * 0.5)


def scenarios(quick: bool) -> list[Scenario]:
    sizes = (20, 100) if quick else (100, 1000, 5000)
    steady_n, rate = (60, 10.0) if quick else (600, 10.0)
    storm_n = 50 if quick else 500
    short_n = 40 if quick else 400
    return [
        *(burst(n) for n in sizes),
        Scenario(
            f"steady-{rate:g}/s",
            steady_n,
            [i / rate for i in range(steady_n)],
            f"{steady_n} workloads arriving at {rate:g}/s",
            deadline=steady_n / rate + 180,
        ),
        Scenario(
            "throttle-storm",
            storm_n,
            [0.0] * storm_n,
            f"{storm_n} at once while every ECS API answers ThrottlingException for 15 s",
            deadline=300 + storm_n * 0.5,
            setup="throttle_storm",
        ),
        Scenario(
            "capacity-shortfall",
            short_n,
            [0.0] * short_n,
            f"{short_n} at once while the cluster places at most {short_n // 4} tasks for 30 s",
            deadline=300 + short_n * 0.5,
            setup="capacity_shortfall",
        ),
    ]


def prepare(emulator: Emulator) -> None:
    import boto3

    ecs = boto3.client("ecs", **emulator.client_kwargs())
    ecs.create_cluster(clusterName="bench", capacityProviders=["FARGATE", "FARGATE_SPOT"])
    ecs.register_task_definition(
        family="bench-task",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "base",
                "image": "apache/airflow:3",
                "essential": True,
                "environment": [{"name": SIM_DURATION_ENV, "value": TASK_SECONDS}],
            }
        ],
    )


def workload_of(task: dict[str, Any]) -> str | None:
    """The TI id inside the workload JSON the task's command carries (both executors send one)."""
    for override in task.get("overrides", {}).get("containerOverrides", []):
        command = override.get("command") or []
        for arg in command:
            if arg.startswith("{") and '"ti"' in arg:
                try:
                    return str(json.loads(arg)["ti"]["id"])
                except (ValueError, KeyError):
                    return None
    return None


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_one(
    executor: str,
    sc: Scenario,
    *,
    profile: str | Profile,  # benchmarks/events.py: the aws profile seeded alike for both runs of a pair
    heartbeat_interval: float,
    extra_env: Callable[[Emulator], dict[str, str]] | None = None,  # benchmarks/events.py: the events queue
) -> dict[str, Any]:
    with Emulator(profile, runner="simulated") as emulator:
        prepare(emulator)
        added = extra_env(emulator) if extra_env is not None else {}
        emulator.reset_counters()
        spec = {
            "executor": executor,
            "scenario": sc.name,
            "n": sc.n,
            "arrivals": sc.arrivals,
            "deadline": sc.deadline,
            "heartbeat_interval": heartbeat_interval,
            "endpoint": emulator.endpoint_url,
            "access_key_id": emulator.access_key_id,  # the spec file lives in a 0700 temporary directory
            "secret_access_key": emulator.secret_access_key,
        }
        with tempfile.TemporaryDirectory() as tmp:
            spec_path, out_path, ready = Path(tmp, "spec.json"), Path(tmp, "out.json"), Path(tmp, "ready")
            spec["ready_file"] = str(ready)
            spec_path.write_text(json.dumps(spec))
            env = {**os.environ, "PYTHONWARNINGS": "ignore", "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", **added}
            child = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.drive", str(spec_path), str(out_path)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            if sc.setup == "capacity_shortfall":
                emulator.set_capacity(max(1, sc.n // 4))
            # Faults start once the executor has started (a storm during start-up tests start-up).
            deadline = time.monotonic() + 180
            while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if sc.setup == "throttle_storm":
                time.sleep(1)  # the burst is queued and launching
                emulator.inject("throttle_storm", seconds=15)
            elif sc.setup == "capacity_shortfall":
                time.sleep(30)
                emulator.set_capacity(None)
            _, stderr = child.communicate()
            if child.returncode != 0 or not out_path.exists():
                reason = (stderr.strip().splitlines() or ["no output"])[-1][:300]
                return {"executor": executor, "scenario": sc.name, "n": sc.n, "error": reason}
            seen = json.loads(out_path.read_text())
        got = summarise(seen, emulator.tasks(with_overrides=True), emulator.counters(), sc)
        # The executor's warnings and errors (the child logs at WARNING): a fallback to polling, a
        # restarted worker. Kept with the figures they explain.
        got["log_warnings"] = [line[:300] for line in stderr.splitlines() if "WARNING" in line or "ERROR" in line][:20]
        return got


def summarise(
    seen: dict[str, Any], tasks: list[dict[str, Any]], counters: dict[str, Any], sc: Scenario
) -> dict[str, Any]:
    n = sc.n
    t0 = seen["t0"]
    by_workload: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        wid = workload_of(task)
        if wid is not None:
            by_workload.setdefault(wid, []).append(task)
    created = sorted(min(t["createdAt"] for t in ts) - t0 for ts in by_workload.values())
    to_running = [
        min(t["startedAt"] for t in ts if t.get("startedAt")) - seen["queued_at"][wid]
        for wid, ts in by_workload.items()
        if any(t.get("startedAt") for t in ts) and wid in seen["queued_at"]
    ]
    finals = Counter(f["state"] for f in seen["final"].values())
    failure_reasons = Counter(
        (f.get("info") or "no reason given")[:120] for f in seen["final"].values() if f["state"] == "failed"
    )
    duplicated = sum(1 for ts in by_workload.values() if sum(1 for t in ts if t.get("startedAt")) > 1)
    lost = n - len(seen["final"])
    # What tracking itself costs: from ECS's stop of a workload's last task to its final state in the
    # executor's event buffer (negative: the container's exit was seen before ECS reached STOPPED).
    stopped = {
        wid: max(t["stoppedAt"] for t in ts) for wid, ts in by_workload.items() if all(t.get("stoppedAt") for t in ts)
    }
    stop_to_final = [f["at"] - stopped[wid] for wid, f in seen["final"].items() if wid in stopped]
    api = {op: c.get("calls", 0) for op, c in counters.get("api", {}).items()}
    throttled = sum(c.get("throttled", 0) for c in counters.get("api", {}).values())
    hb = [s * 1000 for s in seen["heartbeat_seconds"]]
    launch_span = (created[-1] - created[0]) if len(created) > 1 else None
    return {
        "executor": seen["executor"],
        "scenario": sc.name,
        "description": sc.description,
        "n": n,
        "launched": len(created),
        "all_launched_s": created[-1] if len(created) == n else None,
        "launch_rate_per_s": (len(created) - 1) / launch_span if launch_span else None,
        "queued_to_running_p50_s": pct(to_running, 0.5),
        "queued_to_running_p99_s": pct(to_running, 0.99),
        "stopped_to_final_p50_s": pct(stop_to_final, 0.5),
        "stopped_to_final_p99_s": pct(stop_to_final, 0.99),
        "heartbeat_ms_p50": pct(hb, 0.5),
        "heartbeat_ms_p99": pct(hb, 0.99),
        "heartbeat_ms_max": max(hb) if hb else None,
        "heartbeats": len(hb),
        "api_calls_per_workload": {op: round(c / n, 2) for op, c in sorted(api.items()) if c},
        "throttled_calls": throttled,
        "succeeded": finals.get("success", 0),
        "failed": finals.get("failed", 0),
        "failure_reasons": dict(failure_reasons.most_common(5)),
        "lost": lost,
        "duplicated": duplicated,
        "peak_rss_mib": round(seen["peak_rss_mib"], 1),
        "elapsed_s": round(seen["elapsed"], 1),
        "launch_timeline_s": created,
    }


def ratio(ours: float | None, upstream: float | None) -> float | None:
    if ours is None or upstream is None or upstream == 0:
        return None
    return ours / upstream


RATIO_KEYS = (
    "all_launched_s",
    "launch_rate_per_s",
    "queued_to_running_p50_s",
    "queued_to_running_p99_s",
    "heartbeat_ms_p50",
    "heartbeat_ms_p99",
    "heartbeat_ms_max",
    "peak_rss_mib",
)


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ratio_text(value: float | None) -> str:
    """Three significant digits: 0.000112 stays readable."""
    return "-" if value is None else f"{value:.3g}"


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"Run {meta['date']} on {meta['machine']} (commit {meta['commit'][:10]}), emulator profile "
        f"`{meta['profile']}` (RunTask {meta['run_task_limit']:g}/s), simulated tasks of {TASK_SECONDS} s, "
        f"heartbeat every {meta['heartbeat_interval']:g} s.",
        "",
        "| scenario | executor | launched | all launched (s) | launch rate (/s) | queued→RUNNING p50 / p99 (s) "
        "| heartbeat p50 / p99 / max (ms) | API calls per workload | failed | lost | duplicated | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        if "error" in row:
            lines.append(f"| {row['scenario']} | {row['executor']} | did not run: {row['error']} |" + " |" * 9)
            continue
        calls = ", ".join(f"{op} {c:g}" for op, c in row["api_calls_per_workload"].items())
        lines.append(
            f"| {row['scenario']} | {row['executor']} | {row['launched']}/{row['n']} | {fmt(row['all_launched_s'], 1)} "
            f"| {fmt(row['launch_rate_per_s'], 1)} "
            f"| {fmt(row['queued_to_running_p50_s'], 1)} / {fmt(row['queued_to_running_p99_s'], 1)} "
            f"| {fmt(row['heartbeat_ms_p50'])} / {fmt(row['heartbeat_ms_p99'])} / {fmt(row['heartbeat_ms_max'])} "
            f"| {calls} | {row['failed']} | {row['lost']} | {row['duplicated']} | {fmt(row['peak_rss_mib'], 0)} |"
        )
    lines += ["", "Ratios ours / upstream (below 1 is better for times and memory, above 1 for launch rate):", ""]
    lines.append("| scenario | " + " | ".join(RATIO_KEYS) + " |")
    lines.append("|---|" + "---|" * len(RATIO_KEYS))
    for name, ratios in report["ratios"].items():
        lines.append(f"| {name} | " + " | ".join(_ratio_text(ratios.get(k)) for k in RATIO_KEYS) + " |")
    failures = [
        f"- {row['scenario']}, {row['executor']}: {row['failed']} failed: "
        + "; ".join(f"{count} x {reason}" for reason, count in row["failure_reasons"].items())
        for row in report["rows"]
        if row.get("failed")
    ]
    if failures:
        lines += ["", "Failed workloads and why:", "", *failures]
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["rows"] if r["scenario"].startswith("burst-") and "error" not in r]
    names = sorted({r["scenario"] for r in rows}, key=lambda s: int(s.split("-")[1]))
    if not names:
        return
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for row in (r for r in rows if r["scenario"] == name):
            times = row["launch_timeline_s"]
            ax.step(times, range(1, len(times) + 1), where="post", label=row["executor"])
        ax.set_title(f"{name}: ECS tasks launched")
        ax.set_xlabel("seconds after the burst was queued")
        ax.set_ylabel("tasks launched")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(
    selected: list[Scenario],
    *,
    profile: str = "aws",
    heartbeat_interval: float = 1.0,
    out: Path | None = RESULTS,
    png: bool = True,
) -> dict[str, Any]:
    prof = load_profile(profile)
    bucket = next((b for b in prof.throttling.values() if "RunTask" in b.apis), None)
    rows: list[dict[str, Any]] = []
    ratios: dict[str, dict[str, float | None]] = {}
    for index, sc in enumerate(selected):
        order = EXECUTORS if index % 2 == 0 else tuple(reversed(EXECUTORS))  # alternate who goes first
        pair: dict[str, dict[str, Any]] = {}
        for executor in order:
            print(f"==> {sc.name} ({sc.description}): {executor}", flush=True)
            pair[executor] = run_one(executor, sc, profile=profile, heartbeat_interval=heartbeat_interval)
            row = pair[executor]
            if "error" in row:
                print(f"    did not run: {row['error']}", flush=True)
                continue
            print(
                f"    launched {row['launched']}/{row['n']}, all launched {fmt(row['all_launched_s'], 1)} s, "
                f"heartbeat p99 {fmt(row['heartbeat_ms_p99'])} ms, failed {row['failed']}, lost {row['lost']}, "
                f"duplicated {row['duplicated']}",
                flush=True,
            )
        rows += [pair["ours"], pair["upstream"]]
        ratios[sc.name] = {k: ratio(pair["ours"].get(k), pair["upstream"].get(k)) for k in RATIO_KEYS}
    report = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "commit": git_commit(),
            "profile": profile,
            "run_task_limit": bucket.rate if bucket else None,
            "heartbeat_interval": heartbeat_interval,
            "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
            "upstream": _upstream_version(),
        },
        "rows": rows,
        "ratios": ratios,
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(report, indent=1))
        (out / "compare.md").write_text(markdown(report))
        if png:
            chart(report, out / "compare.png")
    return report


def _upstream_version() -> str:
    from importlib.metadata import version

    return f"apache-airflow-providers-amazon {version('apache-airflow-providers-amazon')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about two minutes")
    parser.add_argument("--scenarios", nargs="*", help="scenario names to run (default: all)")
    parser.add_argument("--profile", default="aws")
    parser.add_argument("--sealing", action="store_true", help="also measure sealed workloads (benchmarks/sealing.py)")
    parser.add_argument("--no-events", action="store_true", help="skip the tracking benchmark (benchmarks/events.py)")
    parser.add_argument("--pacing", action="store_true", help="run the launch pacing benchmark (benchmarks/pacing.py)")
    args = parser.parse_args()
    if args.pacing:
        from benchmarks import pacing

        pacing.main(["--quick"] if args.quick else [])
        return
    if args.sealing:  # our executor alone: upstream has no sealing to compare with
        from benchmarks import sealing

        print(sealing.markdown(sealing.run(quick=args.quick, profile=args.profile)))
    selected = [s for s in scenarios(args.quick) if not args.scenarios or s.name in args.scenarios]
    started = time.monotonic()
    report = run(selected, profile=args.profile)
    print(markdown(report))
    print(f"wrote {RESULTS}/compare.json, compare.md, compare.png in {time.monotonic() - started:.0f} s")
    if not args.no_events:  # tracking by ECS events vs polling vs upstream (benchmarks/events.py)
        from benchmarks import events

        events.main(["--tasks", "200", "--task-seconds", "60", "--scenario-size", "quick"] if args.quick else [])


if __name__ == "__main__":
    main()
