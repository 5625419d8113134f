"""Tracking cost and stop latency: ours with ECS events, ours polling, and upstream, in one run.

``python -m benchmarks.events`` (also run by ``make bench`` through ``benchmarks.compare``) starts
``--tasks`` workloads of ``--task-seconds`` each, all running at once, against a fresh emulator per
executor (``aws`` profile, simulated runner), driven by ``benchmarks.drive`` as Airflow's scheduler
drives them. It measures:

- ECS read calls (DescribeTasks, DescribeClusters, ListTasks) per task-hour of running: the cost
  that grows with tasks x time and draws from the account's shared cluster-read bucket;
- the time from a task's ``stoppedAt`` (ECS's STOPPED) to its final state in the executor's event
  buffer, p50 and p99 (negative when the executor reported the container's exit before ECS reached
  STOPPED);
- throttled read calls, failed, lost and duplicated workloads.

For "ours with events" the emulator holds an EventBridge rule for the cluster's task state changes
and an SQS queue as its target (what deploy/cloudformation.yaml creates); the executor reads it.

Then the load scenarios of ``benchmarks.compare`` (bursts, steady arrivals, a throttle storm, a
capacity shortfall) run with our executor polling and with events, side by side: tracking by events
must make none of them slower (``--scenario-size``: full, quick or none).

Results go to ``benchmarks/results/events.json`` and ``events.md``, with the machine's load average
at the start and end (this is a shared 2-core machine). It asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import compare
from benchmarks.compare import RESULTS, git_commit, pct, prepare, workload_of
from ecs_emulator import Emulator
from ecs_emulator.profile import Profile, load_profile
from ecs_emulator.runners import SIM_DURATION_ENV

VARIANTS = ("ours-events", "ours-polling", "ours-polling-2s", "upstream")
# ours-polling-2s: polling with its DescribeTasks cap (describe_rate, 10/s by default) raised to what
# a round over every task each poll_interval (2 s) needs: the freshness events give, bought by
# polling. Beyond 2,000 running tasks that is more than the account's cluster-read bucket refills.
POLL_INTERVAL = 2.0
READ_APIS = ("DescribeTasks", "DescribeClusters", "ListTasks")
QUEUE = "bench-task-events"


def _client(emulator: Emulator, service: str) -> Any:
    import boto3

    return boto3.client(service, **emulator.client_kwargs())


def clear_events(emulator: Emulator) -> None:
    """Remove the rules and queues of earlier runs in this process.

    moto's backends are global to the process and outlive an emulator: a rule made for one run
    would route the next run's events (the same cluster ARN) into its queue. A polling run then fed
    a queue nobody read, and the next run with events found thousands of stale messages ahead of its
    own (its stops reached the executor 10 to 30 s late).
    """
    sqs, events = (_client(emulator, s) for s in ("sqs", "events"))
    for rule in events.list_rules(NamePrefix=QUEUE)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        if targets:
            events.remove_targets(Rule=rule["Name"], Ids=[t["Id"] for t in targets])
        events.delete_rule(Name=rule["Name"])
    for url in sqs.list_queues(QueueNamePrefix=QUEUE).get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)


def events_queue(emulator: Emulator) -> str:
    """The rule and queue deploy/cloudformation.yaml creates, in the emulator's moto (fresh names each run)."""
    clear_events(emulator)
    name = f"{QUEUE}-{uuid.uuid4().hex[:8]}"
    sqs, events, ecs = (_client(emulator, s) for s in ("sqs", "events", "ecs"))
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    cluster = ecs.describe_clusters(clusters=["bench"])["clusters"][0]["clusterArn"]
    pattern = {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"], "detail": {"clusterArn": [cluster]}}
    events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=name, Targets=[{"Id": "scheduler", "Arn": arn}])
    return url


def run_variant(variant: str, n: int, task_seconds: float, heartbeat_interval: float) -> dict[str, Any]:
    with Emulator("aws", runner="simulated") as emulator:
        prepare(emulator)
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
        clear_events(emulator)
        if variant == "ours-events":
            env["AIRFLOW__ECS_EXECUTOR__TASK_EVENTS_QUEUE_URL"] = events_queue(emulator)
        if variant == "ours-polling-2s":
            env["AIRFLOW__ECS_EXECUTOR__DESCRIBE_RATE"] = f"{min(50.0, max(10.0, n / 100 / POLL_INTERVAL)):g}"
        ecs = _client(emulator, "ecs")
        ecs.register_task_definition(  # the same bench-task, with this run's task duration
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
                    "environment": [{"name": SIM_DURATION_ENV, "value": f"{task_seconds:g}"}],
                }
            ],
        )
        emulator.reset_counters()
        spec = {
            "executor": "upstream" if variant == "upstream" else "ours",
            "scenario": f"tracking-{n}",
            "n": n,
            "arrivals": [0.0] * n,
            "deadline": task_seconds + 300 + n * 0.2,
            "heartbeat_interval": heartbeat_interval,
            "endpoint": emulator.endpoint_url,
            "access_key_id": emulator.access_key_id,  # the spec file lives in a 0700 temporary directory
            "secret_access_key": emulator.secret_access_key,
        }
        with tempfile.TemporaryDirectory() as tmp:
            spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "out.json")
            spec_path.write_text(json.dumps(spec))
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.drive", str(spec_path), str(out_path)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
            )
            if done.returncode != 0 or not out_path.exists():
                reason = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
                return {"variant": variant, "n": n, "error": reason}
            seen = json.loads(out_path.read_text())
        return summarise(variant, seen, emulator.tasks(with_overrides=True), emulator.counters(), n)


def summarise(
    variant: str, seen: dict[str, Any], tasks: list[dict[str, Any]], counters: dict[str, Any], n: int
) -> dict[str, Any]:
    api = counters.get("api", {})
    reads = sum(api.get(name, {}).get("calls", 0) for name in READ_APIS)
    throttled = sum(api.get(name, {}).get("throttled", 0) for name in READ_APIS)
    # Task-hours: from each task's start to its stop (or to the end of the run).
    end = seen["t0"] + seen["elapsed"]
    task_seconds = sum((t.get("stoppedAt") or end) - t["startedAt"] for t in tasks if t.get("startedAt"))
    stopped_by_workload = {workload_of(t): t["stoppedAt"] for t in tasks if t.get("stoppedAt")}
    to_buffer = [f["at"] - stopped_by_workload[wid] for wid, f in seen["final"].items() if wid in stopped_by_workload]
    finals = [f["state"] for f in seen["final"].values()]
    started: dict[str | None, int] = {}
    for t in tasks:
        if t.get("startedAt"):
            wid = workload_of(t)
            started[wid] = started.get(wid, 0) + 1
    return {
        "variant": variant,
        "n": n,
        "task_hours": round(task_seconds / 3600, 3),
        "read_calls": reads,
        "read_calls_per_task_hour": round(reads / (task_seconds / 3600), 2) if task_seconds else None,
        "describe_tasks_calls": api.get("DescribeTasks", {}).get("calls", 0),
        "throttled_read_calls": throttled,
        "stopped_to_buffer_p50_s": pct(to_buffer, 0.5),
        "stopped_to_buffer_p99_s": pct(to_buffer, 0.99),
        "succeeded": finals.count("success"),
        "failed": finals.count("failed"),
        "lost": n - len(seen["final"]),
        "duplicated": sum(1 for c in started.values() if c > 1),
        "events_published": counters.get("ecs", {}).get("events.published", 0),
        "elapsed_s": round(seen["elapsed"], 1),
    }


def events_env(emulator: Emulator) -> dict[str, str]:
    """compare.run_one's hook: our executor reads the rule's queue."""
    return {"AIRFLOW__ECS_EXECUTOR__TASK_EVENTS_QUEUE_URL": events_queue(emulator)}


def no_events_env(emulator: Emulator) -> dict[str, str]:
    """compare.run_one's hook for polling: no rule of an earlier run routes this run's events."""
    clear_events(emulator)
    return {}


SCENARIO_KEYS = (
    "elapsed_s",
    "queued_to_running_p50_s",
    "queued_to_running_p99_s",
    "stopped_to_final_p50_s",
    "stopped_to_final_p99_s",
    "heartbeat_ms_p99",
)


def seeded_aws(name: str) -> Profile:
    """The aws profile with a seed of the scenario's own: both runs' n-th tasks live the same lifecycle.

    The emulator seeds each task's draws by the profile's seed and the task's place in launch order.
    Unseeded, each run draws its own provisioning and start times, and with 20 tasks the slowest
    draw alone moved "all final" by seconds between two runs of the same executor. API latencies
    and the order in which each executor launches are still each run's own.
    """
    return load_profile("aws").model_copy(update={"seed": zlib.crc32(name.encode())})


def run_scenarios(size: str, heartbeat_interval: float) -> list[dict[str, Any]]:
    """The scenarios of benchmarks.compare with our executor polling, then with events; a row per scenario."""
    out = []
    for sc in compare.scenarios(quick=size == "quick"):
        pair = {}
        for variant in ("ours-polling", "ours-events"):
            print(f"==> {sc.name} ({sc.description}): {variant}", flush=True)
            hook = events_env if variant == "ours-events" else no_events_env
            pair[variant] = compare.run_one(
                "ours", sc, profile=seeded_aws(sc.name), heartbeat_interval=heartbeat_interval, extra_env=hook
            )
        row: dict[str, Any] = {"scenario": sc.name, "description": sc.description, "n": sc.n}
        for variant, got in pair.items():
            if "error" in got:
                row[variant] = {"error": got["error"]}
                continue
            row[variant] = {k: got.get(k) for k in (*SCENARIO_KEYS, "succeeded", "failed", "lost", "duplicated")}
            if got.get("log_warnings"):
                row[variant]["log_warnings"] = got["log_warnings"]
            row[variant]["read_calls_per_workload"] = sum(
                got["api_calls_per_workload"].get(api, 0) for api in READ_APIS
            )
        poll, ev = row["ours-polling"], row["ours-events"]
        if "error" not in poll and "error" not in ev and poll["elapsed_s"] and ev["elapsed_s"]:
            # slower: every workload final later than polling by more than 5% and a heartbeat, or a
            # stop reaching the event buffer later (p99) by more than a heartbeat
            ev_stop, poll_stop = ev.get("stopped_to_final_p99_s") or 0, poll.get("stopped_to_final_p99_s") or 0
            late_stop = ev_stop > poll_stop + heartbeat_interval
            row["events_slower"] = ev["elapsed_s"] > poll["elapsed_s"] * 1.05 + heartbeat_interval or late_stop
        print(f"    {row}", flush=True)
        out.append(row)
    return out


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"Run {meta['date']} (commit {meta['commit'][:10]}): {meta['tasks']} tasks of {meta['task_seconds']:g} s "
        f"running at once, emulator profile `aws`, simulated runner, heartbeat every {meta['heartbeat_interval']:g} s; "
        f"load average (1, 5, 15 min) {meta.get('load_average_start', '?')} at the start, "
        f"{meta.get('load_average_end', '?')} at the end (2 cores, shared).",
        "",
        "| executor | read calls | per task-hour | throttled | STOPPED→event buffer p50 / p99 (s) "
        "| succeeded | failed | lost | duplicated |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if meta.get("kept_rows"):
        earlier = [row for row in report["rows"] if row["variant"] in meta["kept_rows"]]
        said = "; ".join(
            f"{row['variant']} at commit {row['run']['commit'][:10]} ({row['run'].get('date', '?')}, load average "
            f"{row['run'].get('load_average_start', '?')} at its start)"
            for row in earlier
        )
        lines[1:1] = ["", f"Rows from earlier runs (`--variants` reran the others): {said}."]
    for row in report["rows"]:
        if "error" in row:
            lines.append(f"| {row['variant']} | did not run: {row['error']} |" + " |" * 7)
            continue
        lines.append(
            f"| {row['variant']} | {row['read_calls']} | {fmt(row['read_calls_per_task_hour'])} "
            f"| {row['throttled_read_calls']} "
            f"| {fmt(row['stopped_to_buffer_p50_s'])} / {fmt(row['stopped_to_buffer_p99_s'])} "
            f"| {row['succeeded']} | {row['failed']} | {row['lost']} | {row['duplicated']} |"
        )
    if report.get("scenarios"):
        when = ""
        if meta.get("scenarios_date"):
            when = (
                f" Run {meta['scenarios_date']} (commit {meta['scenarios_commit'][:10]}), load average "
                f"{meta.get('scenarios_load_average_start', '?')} at the start, "
                f"{meta.get('scenarios_load_average_end', '?')} at the end."
            )
        lines += [
            "",
            "The load scenarios of `benchmarks.compare`, our executor polling and with events "
            "(all final: seconds until every workload had its final state; each pair on the `aws` "
            "profile with the same seed, so the n-th task either run starts lives the same lifecycle; API "
            'latencies and the order in which the executor launches are each run\'s own, so "all final" '
            f"varies by a few seconds: what tracking controls is STOPPED→final).{when}",
            "",
            "| scenario | all final (s) polling / events | queued→running p99 (s) polling / events "
            "| STOPPED→final p99 (s) polling / events "
            "| heartbeat p99 (ms) polling / events | read calls per workload polling / events "
            "| failed+lost polling / events | events slower |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in report["scenarios"]:
            poll, ev = row["ours-polling"], row["ours-events"]
            if "error" in poll or "error" in ev:
                lines.append(f"| {row['scenario']} | did not run: {poll.get('error') or ev.get('error')} |" + " |" * 6)
                continue

            def both(key: str, a: dict[str, Any] = poll, b: dict[str, Any] = ev) -> str:
                return f"{fmt(a.get(key))} / {fmt(b.get(key))}"

            lost = f"{poll['failed'] + poll['lost']} / {ev['failed'] + ev['lost']}"
            slower = {True: "yes", False: "no"}.get(row.get("events_slower"), "-")
            lines.append(
                f"| {row['scenario']} | {both('elapsed_s')} | {both('queued_to_running_p99_s')} "
                f"| {both('stopped_to_final_p99_s')} "
                f"| {both('heartbeat_ms_p99')} | {both('read_calls_per_workload')} | {lost} | {slower} |"
            )
    return "\n".join(lines) + "\n"


def run(
    tasks: int,
    task_seconds: float,
    heartbeat_interval: float = 1.0,
    out: Path | None = RESULTS,
    *,
    variants: tuple[str, ...] = VARIANTS,
    scenario_size: str = "full",
) -> dict[str, Any]:
    load_at_start = load_average()
    rows = []
    scenarios: list[dict[str, Any]] | None = None
    if not variants and out is not None and (out / "events.json").exists():
        # The scenarios alone (``--variants`` with none): the tracking rows of the last run are kept.
        previous = json.loads((out / "events.json").read_text())
        kept_meta = {**previous["meta"], "scenarios_date": datetime.now(UTC).strftime("%Y-%m-%d")}
        kept_meta.update(scenarios_commit=git_commit(), scenarios_load_average_start=load_at_start)
        kept: dict[str, Any] = {**previous, "meta": kept_meta}
        kept["scenarios"] = run_scenarios(scenario_size, heartbeat_interval) if scenario_size != "none" else []
        kept["meta"]["scenarios_load_average_end"] = load_average()
        (out / "events.json").write_text(json.dumps(kept, indent=1))
        (out / "events.md").write_text(markdown(kept))
        return kept
    for variant in variants:
        print(f"==> tracking {tasks} tasks of {task_seconds:g} s: {variant}", flush=True)
        load_before = load_average()
        rows.append(run_variant(variant, tasks, task_seconds, heartbeat_interval))
        rows[-1]["run"] = {"commit": git_commit(), "load_average_start": load_before, "date": _today()}
        print(f"    {rows[-1]}", flush=True)
    meta: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "commit": git_commit(),
        "tasks": tasks,
        "task_seconds": task_seconds,
        "heartbeat_interval": heartbeat_interval,
        "load_average_start": load_at_start,
    }
    if set(variants) != set(VARIANTS) and out is not None and (out / "events.json").exists():
        # Some variants only: the others' rows of the last run of the same size are kept, and said so.
        previous = json.loads((out / "events.json").read_text())
        same = (previous["meta"]["tasks"], previous["meta"]["task_seconds"]) == (tasks, task_seconds)
        kept_rows = [row for row in previous["rows"] if row["variant"] not in variants] if same else []
        for row in kept_rows:  # rows of runs before rows said where they came from: the run's commit
            row.setdefault(
                "run",
                {
                    "commit": previous["meta"]["commit"],
                    "load_average_start": previous["meta"].get("load_average_start", "?"),
                    "date": previous["meta"]["date"],
                },
            )
        if kept_rows:
            meta["kept_rows"] = [row["variant"] for row in kept_rows]
        order = {name: i for i, name in enumerate(VARIANTS)}
        rows = sorted(rows + kept_rows, key=lambda row: order.get(row["variant"], len(order)))
        if scenario_size == "none" and previous.get("scenarios"):  # the last scenarios stay, with their dates
            meta.update({k: v for k, v in previous["meta"].items() if k.startswith("scenarios_")})
            meta.setdefault("scenarios_date", previous["meta"]["date"])
            meta.setdefault("scenarios_commit", previous["meta"]["commit"])
            meta.setdefault("scenarios_load_average_start", previous["meta"].get("load_average_start", "?"))
            meta.setdefault("scenarios_load_average_end", previous["meta"].get("load_average_end", "?"))
            scenarios = previous["scenarios"]
    report: dict[str, Any] = {
        "meta": meta,
        "rows": rows,
        "scenarios": scenarios
        if scenarios is not None
        else (run_scenarios(scenario_size, heartbeat_interval) if scenario_size != "none" else []),
    }
    report["meta"]["load_average_end"] = load_average()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "events.json").write_text(json.dumps(report, indent=1))
        (out / "events.md").write_text(markdown(report))
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--task-seconds", type=float, default=600.0)
    parser.add_argument(
        "--variants",
        nargs="*",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="tracking runs (none: the scenarios only, the last run's tracking rows kept)",
    )
    parser.add_argument("--scenario-size", choices=("full", "quick", "none"), default="full")
    args = parser.parse_args(argv)
    started = time.monotonic()
    report = run(args.tasks, args.task_seconds, variants=tuple(args.variants), scenario_size=args.scenario_size)
    print(markdown(report))
    print(f"wrote {RESULTS}/events.json, events.md in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
