"""Launch pacing: several schedulers sharing one RunTask quota, and one scheduler's burst at several RunTask latencies.

``python -m benchmarks.pacing [--quick]`` (or ``python -m benchmarks.compare --pacing``) writes
``benchmarks/results/pacing.md`` and ``pacing.json``.

- **shared quota**: 1, 2 and 3 of our executors, each in its own process (as each scheduler of an HA
  deployment has its own executor), queue their workloads at the same moment against one emulator
  whose RunTask bucket is AWS's Fargate quota (20 calls burst, 20 per second). Measured while every
  executor still has work: the combined launch rate, each executor's share, and the throttled RunTask
  calls per task launched.
- **burst vs latency**: 300 workloads queued at once, RunTask's median latency at 50, 150 and 500 ms
  (99th percentile three times the median), ours and upstream's ``AwsEcsExecutor``. Measured: the
  seconds from the moment they are queued to the last task's ``createdAt`` in the emulator; against
  20 + 20/s the floor is 14 s.

Everything else is the emulator's ``aws`` profile; tasks run in the simulated runner.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from ecs_emulator import Emulator
from ecs_emulator.profile import Profile, Spread, load_profile

RESULTS = Path("benchmarks/results")
LATENCIES = (0.05, 0.15, 0.5)  # RunTask median latency, seconds
QUOTA = 20.0  # RunTask calls per second in the aws profile (AWS Fargate throttling quotas)
BURST = 20.0
START_TIMEOUT = 300.0  # seconds for the executor processes to start on a loaded machine


def profile_with(latency: float) -> Profile:
    """The aws profile with RunTask's median latency set (99th percentile three times it)."""
    base = load_profile("aws")
    latencies = {**base.latency, "RunTask": Spread(median=latency, p99=3 * latency)}
    return base.model_copy(update={"latency": latencies, "name": f"aws, RunTask {latency * 1000:.0f} ms"})


# ------------------------------------------------------------------------------------------ child process
def child(spec: dict[str, Any], out: Path) -> None:
    """One scheduler's executor: start, wait for the go signal, queue every workload, heartbeat until launched."""
    from benchmarks import drive

    drive.configure(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from airflow.models import import_all_models
        from sqlalchemy.orm import configure_mappers

        import_all_models()  # type: ignore[no-untyped-call]
        configure_mappers()
    executor = drive.make_executor(spec["executor"])
    executor.start()
    # Built before the go: a scheduler has its workloads in hand when it queues them, and building
    # 300 of them took a few hundred milliseconds that the burst's time counted against the executor.
    items = [drive.make_workload(i, spec["run_id"]) for i in range(spec["n"])]
    # A running scheduler has heartbeated its executor many times before a burst arrives; the first
    # heartbeat of a process pays once for Airflow's metrics registry (a YAML file, about 0.35 s here).
    executor.heartbeat()
    Path(spec["ready_file"]).write_text("started")
    go = Path(spec["go_file"])
    deadline = time.monotonic() + START_TIMEOUT
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.time()
    for item in items:
        executor.queue_workload(item, session=None)
    launched: dict[str, float] = {}
    stop = time.monotonic() + spec["deadline"]
    while len(launched) < len(items) and time.monotonic() < stop:
        executor.heartbeat()
        for key, (state, info) in executor.get_event_buffer().items():
            if str(state) == "running" and info:
                launched.setdefault(str(key), time.time())
        time.sleep(spec["heartbeat_interval"])
    out.write_text(json.dumps({"started": started, "launched": len(launched), "n": len(items)}))
    os._exit(0)  # the emulator goes away with its tasks; no shutdown to measure here


def _run_id(task: dict[str, Any]) -> str | None:
    for override in task.get("overrides", {}).get("containerOverrides", []):
        for arg in override.get("command") or []:
            if arg.startswith("{") and '"ti"' in arg:
                try:
                    return str(json.loads(arg)["ti"]["run_id"])
                except (ValueError, KeyError):
                    return None
    return None


def run_executors(kinds: list[str], n_each: int, latency: float, *, deadline: float) -> dict[str, Any]:
    """Start one process per executor against one emulator, queue at the same moment; what the emulator saw."""
    from benchmarks.compare import prepare

    with Emulator(profile_with(latency), runner="simulated") as emulator, tempfile.TemporaryDirectory() as tmp:
        prepare(emulator)
        emulator.reset_counters()
        go = Path(tmp, "go")
        children = []
        for i, kind in enumerate(kinds):
            spec = {
                "executor": kind,
                "scenario": "pacing",
                "n": n_each,
                "endpoint": emulator.endpoint_url,
                "access_key_id": emulator.access_key_id,  # the spec file lives in a 0700 temporary directory
                "secret_access_key": emulator.secret_access_key,
                "run_id": f"pacing__{i}",
                "ready_file": str(Path(tmp, f"ready{i}")),
                "go_file": str(go),
                "deadline": deadline,
                "heartbeat_interval": 0.2,
            }
            spec_path = Path(tmp, f"spec{i}.json")
            spec_path.write_text(json.dumps(spec))
            env = {**os.environ, "PYTHONWARNINGS": "ignore", "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
            # A fresh AIRFLOW_HOME: an airflow.cfg written by an earlier version of either executor would
            # pin that version's defaults (it did: launch_concurrency = 8 from before it became 64).
            env["AIRFLOW_HOME"] = str(Path(tmp, f"airflow-home{i}"))
            child_process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.pacing", "child", str(spec_path), str(Path(tmp, f"out{i}.json"))],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            children.append(child_process)
        wait_until = time.monotonic() + START_TIMEOUT
        while not all(Path(tmp, f"ready{i}").exists() for i in range(len(kinds))):
            if time.monotonic() > wait_until or any(c.poll() is not None for c in children):
                errors = [c.communicate()[1].strip().splitlines()[-1:] for c in children if c.poll() is not None]
                raise RuntimeError(f"an executor did not start: {errors}")
            time.sleep(0.1)
        go_at = time.time()
        go.write_text("go")
        for c in children:
            c.communicate()
        outs = [json.loads(Path(tmp, f"out{i}.json").read_text()) for i in range(len(kinds))]
        rows = emulator.tasks(with_overrides=True)
        counters = emulator.counters()
    created: dict[str, list[float]] = {}
    for row in rows:
        created.setdefault(_run_id(row) or "?", []).append(float(row["createdAt"]))
    run_task = counters["api"].get("RunTask", {})
    return {"go": go_at, "outs": outs, "created": created, "throttled": run_task.get("throttled", 0)}


# ------------------------------------------------------------------------------------------ scenarios
def shared_quota(n_schedulers: int, total: int, latency: float) -> dict[str, Any]:
    raw = run_executors(["ours"] * n_schedulers, total // n_schedulers, latency, deadline=total / QUOTA * 3 + 60)
    go, created = raw["go"], raw["created"]
    series = [sorted(created.get(f"pacing__{i}", [])) for i in range(n_schedulers)]
    launched = sum(len(s) for s in series)
    # While every executor still has work: from 2 s after the start (the bucket's burst is spent) to
    # the moment the first executor launched its last task.
    end = min(s[-1] for s in series) if all(series) else go
    begin = go + 2.0
    in_window = [sum(1 for t in s if begin <= t <= end) for s in series]
    window = max(1e-9, end - begin)
    combined = sum(in_window) / window if end > begin else None
    return {
        "schedulers": n_schedulers,
        "latency_ms": latency * 1000,
        "launched": launched,
        "expected": (total // n_schedulers) * n_schedulers,
        "window_s": round(window, 2),
        "combined_rate": round(combined, 2) if combined else None,
        "quota_share": round(combined / QUOTA, 3) if combined else None,
        "shares": [round(c / max(1, sum(in_window)), 3) for c in in_window],
        "throttled": raw["throttled"],
        "throttled_per_launch": round(raw["throttled"] / max(1, launched), 3),
    }


def ideal_burst(n: int, latency: float, draws: int = 2000, seed: int = 1) -> float:
    """The mean all-launched time of an ideal client, computed from the profile's RunTask latency.

    The emulator spends a call's latency before the call reaches the quota's bucket. A client that
    sends every call at the very moment its token is due (the first 20 at once, then 20 a second)
    and is never throttled still waits for the last calls to arrive: the floor plus the slowest of
    the last calls' latencies. No pacing does better without sending calls early, which AWS refuses.
    """
    import random

    spread = profile_with(latency).latency_for("RunTask")
    assert spread is not None
    rng = random.Random(seed)
    due = [0.0] * min(n, int(BURST)) + [(k + 1) / QUOTA for k in range(max(0, n - int(BURST)))]
    total = 0.0
    for _ in range(draws):
        total += max(at + spread.sample(rng) for at in due)
    return round(total / draws, 2)


def burst(kind: str, n: int, latency: float) -> dict[str, Any]:
    raw = run_executors([kind], n, latency, deadline=n * latency * 1.5 + 120)
    times = sorted(raw["created"].get("pacing__0", []))
    floor = max(0.0, (n - BURST) / QUOTA)
    return {
        "executor": kind,
        "n": n,
        "latency_ms": latency * 1000,
        "launched": len(times),
        "all_launched_s": round(times[-1] - raw["go"], 2) if len(times) == n else None,
        # From the first task's creation: the first call's latency left out (the quota's bucket starts
        # refilling when the first call reaches it, so no executor can do better than the floor after it).
        "from_first_s": round(times[-1] - times[0], 2) if len(times) == n else None,
        "floor_s": floor,
        "ideal_s": ideal_burst(n, latency),
        "throttled": raw["throttled"],
        "throttled_per_launch": round(raw["throttled"] / max(1, len(times)), 3),
    }


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        "# Launch pacing",
        "",
        f"{meta['date']}, commit {meta['commit']}, {meta['machine']}. Emulator profile `aws` (RunTask bucket "
        f"{BURST:.0f} burst + {QUOTA:.0f}/s, shared by every executor), simulated tasks. "
        "`python -m benchmarks.pacing`. Load average (1, 5, 15 min) "
        f"{meta.get('load_average_start', '?')} at the start, {meta.get('load_average_end', '?')} at the end "
        "(2 cores, shared).",
        *(
            [f"Upstream's rows are from the run at commit {meta['upstream_rows_from']} (`--keep-upstream`)."]
            if meta.get("upstream_rows_from")
            else []
        ),
        "",
        "## Several schedulers, one RunTask quota",
        "",
        "Each executor in its own process queues its share of the workloads at the same moment. Rate and shares are "
        "measured while every executor still has work (from 2 s after the start to the first executor's last launch).",
        "",
        "| schedulers | RunTask latency | launched | combined launches/s | of the quota | shares "
        "| throttled calls per launch |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["shared_quota"]:
        shares = " / ".join(f"{s:.0%}" for s in row["shares"])
        rate = row["combined_rate"]
        lines.append(
            f"| {row['schedulers']} | {row['latency_ms']:.0f} ms | {row['launched']}/{row['expected']} | "
            f"{rate if rate is not None else '-'} | "
            f"{row['quota_share']:.0%} | {shares} | {row['throttled_per_launch']} |"
            if row["quota_share"] is not None
            else f"| {row['schedulers']} | {row['latency_ms']:.0f} ms | {row['launched']} | - | - | {shares} | - |"
        )
    lines += [
        "",
        "## One scheduler, a burst, RunTask latency swept",
        "",
        "Seconds from queueing the burst to the last task's creation in the emulator; the quota's floor is "
        "(n - 20) / 20 s. The last call's own latency (random: its 99th percentile is three times the median) "
        "adds to any executor's time; from the first task's creation to the last, it does not. The emulator spends "
        "a call's latency before the call reaches the quota's bucket; the ideal is computed, not measured: the mean "
        "time of a client that sends every call the moment its token is due and is never throttled (the floor plus "
        "the slowest of the last calls' latencies).",
        "",
        "| executor | tasks | RunTask median latency | all launched (s) | from the first task (s) | floor (s) "
        "| ideal (s) | throttled calls per launch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["burst"]:
        done = row["all_launched_s"]
        shown = done if done is not None else f"{row['launched']} launched by the deadline"
        first = row.get("from_first_s")
        lines.append(
            f"| {row['executor']} | {row['n']} | {row['latency_ms']:.0f} ms | {shown} | "
            f"{first if first is not None else '-'} | {row['floor_s']:.0f} | "
            f"{row.get('ideal_s', ideal_burst(row['n'], row['latency_ms'] / 1000))} | {row['throttled_per_launch']} |"
        )
    return "\n".join(lines) + "\n"


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run(
    *, quick: bool = False, upstream: bool = True, keep_upstream: bool = False, out: Path | None = RESULTS
) -> dict[str, Any]:
    """Every measurement; ``keep_upstream`` reuses upstream's burst rows of the last pacing.json (they take long)."""
    import platform
    from datetime import UTC, datetime

    from benchmarks.compare import git_commit

    total = 300 if quick else 600
    n_burst = 100 if quick else 300
    report: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "commit": git_commit(),
            "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
            "load_average_start": _load(),
        },
        "shared_quota": [],
        "burst": [],
    }
    kept: list[dict[str, Any]] = []
    if keep_upstream and (RESULTS / "pacing.json").exists():
        previous = json.loads((RESULTS / "pacing.json").read_text())
        kept = [row for row in previous["burst"] if row["executor"] == "upstream"]
        report["meta"]["upstream_rows_from"] = previous["meta"].get("upstream_rows_from", previous["meta"]["commit"])
        upstream = False
    for n in (1, 2, 3):
        print(f"==> shared quota: {n} scheduler(s), {total} workloads", flush=True)
        report["shared_quota"].append(row := shared_quota(n, total, 0.15))
        print(f"    {row}", flush=True)
    for latency in LATENCIES:
        for kind in ("ours", "upstream") if upstream else ("ours",):
            print(f"==> burst of {n_burst}: {kind}, RunTask {latency * 1000:.0f} ms", flush=True)
            report["burst"].append(row := burst(kind, n_burst, latency))
            print(f"    {row}", flush=True)
        report["burst"] += [row for row in kept if row["latency_ms"] == latency * 1000]
    report["meta"]["load_average_end"] = _load()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "pacing.json").write_text(json.dumps(report, indent=1))
        (out / "pacing.md").write_text(markdown(report))
    return report


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "child":
        child(json.loads(Path(args[1]).read_text()), Path(args[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer workloads")
    parser.add_argument("--ours-only", action="store_true", help="leave upstream out of the latency sweep")
    parser.add_argument(
        "--keep-upstream", action="store_true", help="reuse upstream's rows of the last pacing.json (it is unchanged)"
    )
    parsed = parser.parse_args(args)
    report = run(quick=parsed.quick, upstream=not parsed.ours_only, keep_upstream=parsed.keep_upstream)
    print(markdown(report))


if __name__ == "__main__":
    main()
