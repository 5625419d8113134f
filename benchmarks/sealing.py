"""What sealing workloads costs: the launch rate against the RunTask quota, and the extra per launch.

``python -m benchmarks.sealing [--quick]`` runs, against the emulator's ``aws`` profile (RunTask
20 calls/s, burst and sustained, as Fargate's quota) with simulated containers:

* a burst of workloads launched by our executor with ``workload_delivery = sealed`` and, for
  reference, ``plain``: the launch rate of each against the RunTask quota (sealed must reach 95 %);
* the extra cost per launch, measured over HTTP against the emulator's KMS (moto): calls made
  (scheduler: one ``GenerateDataKey`` per launch attempt; task: one ``Decrypt`` per container
  start) and milliseconds of each side's sealing step.

Results go to ``benchmarks/results/sealing.json`` and ``sealing.md``. The emulator's KMS answers
in about a millisecond on loopback; AWS KMS in the same Region takes longer (its latency is not
measured here), which adds to each launch's time on the launcher thread, not to the scheduler's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from airflow_ecs_executor.aws.sealing import Sealed, launch_context, open_sealed, seal
from benchmarks.compare import RESULTS, pct, prepare
from ecs_emulator.emulator import Emulator
from ecs_emulator.profile import load_profile

QUOTA_SHARE = 0.95


def _kms(emulator: Emulator) -> Any:
    return boto3.client("kms", **emulator.client_kwargs())


def _launch_times(tasks: list[dict[str, Any]]) -> list[float]:
    """CreatedAt of the first task of each queueing (the sealed command's context names it)."""
    first: dict[str, float] = {}
    for task in tasks:
        for override in task.get("overrides", {}).get("containerOverrides", []):
            command = override.get("command") or []
            if len(command) == 7 and command[2].endswith(".unseal"):
                queueing = json.loads(command[4])["ecs-executor:queueing"]
            elif command and command[-1].startswith("{"):
                queueing = str(json.loads(command[-1])["ti"]["id"])
            else:
                continue
            first[queueing] = min(first.get(queueing, float("inf")), float(task["createdAt"]))
    return sorted(first.values())


def launch_run(delivery: str, n: int, profile: str) -> dict[str, Any]:
    """One burst of ``n`` workloads through the real executor (benchmarks.drive) with this delivery."""
    with Emulator(profile, runner="simulated") as emulator:
        prepare(emulator)
        key = _kms(emulator).create_key(Description="bench workloads")["KeyMetadata"]["KeyId"]
        emulator.reset_counters()
        spec = {
            "executor": "ours",
            "scenario": f"sealing-{delivery}",
            "n": n,
            "arrivals": [0.0] * n,
            "deadline": 120 + n * 0.5,
            "heartbeat_interval": 1.0,
            "endpoint": emulator.endpoint_url,
            "access_key_id": emulator.access_key_id,  # the spec file lives in a 0700 temporary directory
            "secret_access_key": emulator.secret_access_key,
            "workload_delivery": delivery,
            "workload_kms_key": key if delivery == "sealed" else "",
        }
        with tempfile.TemporaryDirectory() as tmp:
            spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "out.json")
            spec_path.write_text(json.dumps(spec))
            env = {**os.environ, "PYTHONWARNINGS": "ignore", "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.drive", str(spec_path), str(out_path)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
            )
            if done.returncode != 0 or not out_path.exists():
                return {"delivery": delivery, "n": n, "error": (done.stderr.strip().splitlines() or ["?"])[-1][:300]}
            seen = json.loads(out_path.read_text())
        created = _launch_times(emulator.tasks(with_overrides=True))
        span = created[-1] - created[0] if len(created) > 1 else None
        finals = [f["state"] for f in seen["final"].values()]
        return {
            "delivery": delivery,
            "n": n,
            "launched": len(created),
            "launch_rate_per_s": round((len(created) - 1) / span, 2) if span else None,
            "succeeded": finals.count("success"),
            "failed": finals.count("failed"),
            "heartbeat_ms_p99": round(pct([s * 1000 for s in seen["heartbeat_seconds"]], 0.99) or 0, 2),
        }


def per_launch_cost(samples: int) -> dict[str, Any]:
    """Milliseconds of the scheduler's seal (GenerateDataKey + AES-GCM) and the task's open (Decrypt + AES-GCM)."""
    payload = json.dumps({"token": "x" * 600, "ti": {"id": "0" * 36, "dag_id": "d" * 100}}).encode()
    with Emulator("fast") as emulator:
        kms = _kms(emulator)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        seal(kms, key, payload, launch_context("bench", "warm", 0))  # connection and moto warmed up
        seal_ms, open_ms, overhead_chars = [], [], []
        for i in range(samples):
            context = launch_context("bench", f"q{i}", 1)
            started = time.perf_counter()
            sealed = seal(kms, key, payload, context)
            seal_ms.append((time.perf_counter() - started) * 1000)
            command = sealed.command()
            overhead_chars.append(len(json.dumps(command)) - len(json.dumps(payload.decode())))
            started = time.perf_counter()
            assert open_sealed(kms, Sealed.from_args(command[3:])) == payload
            open_ms.append((time.perf_counter() - started) * 1000)
    return {
        "samples": samples,
        "calls_per_launch": {"scheduler": {"kms:GenerateDataKey": 1}, "task": {"kms:Decrypt": 1}},
        "seal_ms_p50": round(statistics.median(seal_ms), 2),
        "seal_ms_p99": round(pct(seal_ms, 0.99) or 0, 2),
        "open_ms_p50": round(statistics.median(open_ms), 2),
        "open_ms_p99": round(pct(open_ms, 0.99) or 0, 2),
        "extra_command_chars": max(overhead_chars),
    }


def markdown(report: dict[str, Any]) -> str:
    quota = report["run_task_quota_per_s"]
    lines = [
        "# Sealed workloads: cost",
        "",
        f"Emulator profile `{report['profile']}` (RunTask quota {quota:g} calls/s), simulated containers, "
        f"{report['machine']}.",
        "",
        "| delivery | workloads | launched | launch rate /s | share of the quota | failed | heartbeat p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["runs"]:
        if "error" in row:
            lines.append(f"| {row['delivery']} | {row['n']} | did not run: {row['error']} | | | | |")
            continue
        rate = row["launch_rate_per_s"]
        share = f"{rate / quota:.0%}" if rate else "-"
        lines.append(
            f"| {row['delivery']} | {row['n']} | {row['launched']} | {rate} | {share} | {row['failed']} | "
            f"{row['heartbeat_ms_p99']} |"
        )
    cost = report["per_launch"]
    lines += [
        "",
        f"Per launch (over {cost['samples']} samples, emulator KMS over loopback HTTP): the scheduler makes one "
        f"kms:GenerateDataKey call and seals in {cost['seal_ms_p50']} ms (p99 {cost['seal_ms_p99']} ms); the task "
        f"makes one kms:Decrypt call and opens in {cost['open_ms_p50']} ms (p99 {cost['open_ms_p99']} ms). The "
        f"sealed command is at most {cost['extra_command_chars']} characters longer than the plain one.",
        "",
    ]
    return "\n".join(lines)


def run(*, quick: bool, profile: str = "aws", out: Path | None = RESULTS) -> dict[str, Any]:
    """Both launch runs and the per-launch cost; written to ``out`` when given."""
    import platform

    n = 200 if quick else 1000
    prof = load_profile(profile)
    bucket = next(b for b in prof.throttling.values() if "RunTask" in b.apis)
    runs = [launch_run("sealed", n, profile), launch_run("plain", n, profile)]
    report = {
        "profile": profile,
        "quick": quick,
        "run_task_quota_per_s": bucket.rate,
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "runs": runs,
        "per_launch": per_launch_cost(50 if quick else 300),
    }
    sealed = runs[0].get("launch_rate_per_s") or 0.0
    report["sealed_share_of_quota"] = round(sealed / bucket.rate, 3)
    report["meets_95_percent"] = sealed >= QUOTA_SHARE * bucket.rate
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "sealing.json").write_text(json.dumps(report, indent=1))
        (out / "sealing.md").write_text(markdown(report))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 workloads instead of 1,000")
    parser.add_argument("--profile", default="aws")
    args = parser.parse_args()
    report = run(quick=args.quick, profile=args.profile)
    print(markdown(report))


if __name__ == "__main__":
    main()
