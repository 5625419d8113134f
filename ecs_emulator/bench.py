"""How fast the emulator itself is, so that it never limits a benchmark of the executor.

``python -m ecs_emulator.bench`` (``make bench-emulator``) starts the emulator as its own process
and measures, with raw HTTP clients in this process:

1. RunTask calls per second, sustained (profile ``fast``, simulated runner);
2. DescribeTasks latency for 100 ARNs while 10,000 tasks are tracked (median, p99);
3. with the process runner: the concurrency cap and the memory that 200 concurrent short tasks take.

It writes ``benchmarks/results/emulator.json`` and prints a Markdown summary. It asserts nothing.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ecs_emulator import credentials as creds
from ecs_emulator.emulator import ControlClient
from ecs_emulator.runners import SIM_DURATION_ENV

TARGET = "AmazonEC2ContainerServiceV20141113."
OUT = Path("benchmarks/results/emulator.json")


class _Conn:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.connect()
        # As urllib3 (boto3) does: no Nagle delay on small requests.
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The emulator verifies every signature: sign as boto3 does, with the key from its env file.
        values = creds.read_env_file(creds.default_env_file(port))
        self.url = values[creds.ENDPOINT_ENV]
        self.signer = SigV4Auth(
            Credentials(values[creds.ACCESS_KEY_ENV], values[creds.SECRET_KEY_ENV]), "ecs", values[creds.REGION_ENV]
        )

    def call(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        request = AWSRequest(
            method="POST",
            url=self.url + "/",
            data=data,
            headers={"X-Amz-Target": TARGET + op, "Content-Type": "application/x-amz-json-1.1"},
        )
        self.signer.add_auth(request)
        self.conn.request("POST", "/", body=data, headers=dict(request.headers.items()))
        response = self.conn.getresponse()
        payload: dict[str, Any] = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"{op}: {response.status} {payload}")
        return payload


def _start(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecs_emulator", "--port", "0", "--log-level", "WARNING", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    port = int(line.split("127.0.0.1:", 1)[1].split(" ", 1)[0])
    ControlClient(f"http://127.0.0.1:{port}").wait_ready()
    return proc, port


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)  # the emulator prints every thread's stack to stderr
        time.sleep(1)
        proc.kill()
        proc.wait(timeout=30)
        print("warning: the emulator did not stop within 30 s of SIGTERM and was killed", file=sys.stderr)
    if proc.stdout:
        proc.stdout.close()


def _setup(conn: _Conn, command: list[str], env: dict[str, str]) -> None:
    conn.call("CreateCluster", {"clusterName": "bench"})
    # EC2 capacity for 20,000 tasks of 128 MiB (RunTask without a launch type places on EC2).
    resources = [
        {"name": "CPU", "type": "INTEGER", "integerValue": 65536},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 131072},
    ]
    for _ in range(20):
        conn.call("RegisterContainerInstance", {"cluster": "bench", "totalResources": resources})
    conn.call(
        "RegisterTaskDefinition",
        {
            "family": "bench",
            "containerDefinitions": [
                {
                    "name": "main",
                    "image": "python:3.11-slim",
                    "memory": 128,
                    "command": command,
                    "environment": [{"name": k, "value": v} for k, v in env.items()],
                }
            ],
        },
    )


def run_task_throughput(seconds: float = 10.0, clients: int = 8) -> dict[str, Any]:
    """Sustained RunTask calls per second with ``clients`` concurrent keep-alive connections."""
    proc, port = _start("--profile", "fast", "--runner", "simulated")
    try:
        _setup(_Conn(port), ["true"], {SIM_DURATION_ENV: "3600"})
        counts = [0] * clients
        stop = time.monotonic() + seconds

        def worker(i: int) -> None:
            conn = _Conn(port)
            while time.monotonic() < stop:
                conn.call("RunTask", {"cluster": "bench", "taskDefinition": "bench", "startedBy": "bench"})
                counts[i] += 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        return {
            "clients": clients,
            "seconds": round(elapsed, 2),
            "calls": sum(counts),
            "calls_per_second": round(sum(counts) / elapsed, 1),
        }
    finally:
        _stop(proc)


def describe_latency(tracked: int = 10_000, samples: int = 300) -> dict[str, Any]:
    """DescribeTasks of 100 ARNs while ``tracked`` tasks exist."""
    proc, port = _start("--profile", "fast", "--runner", "simulated")
    try:
        conn = _Conn(port)
        _setup(conn, ["true"], {SIM_DURATION_ENV: "3600"})
        arns: list[str] = []
        while len(arns) < tracked:
            out = conn.call("RunTask", {"cluster": "bench", "taskDefinition": "bench", "count": 10})
            arns += [t["taskArn"] for t in out["tasks"]]
        time.sleep(1.0)  # let every task reach RUNNING
        timings = []
        for i in range(samples):
            batch = arns[(i * 100) % tracked : (i * 100) % tracked + 100]
            t0 = time.perf_counter()
            out = conn.call("DescribeTasks", {"cluster": "bench", "tasks": batch})
            timings.append((time.perf_counter() - t0) * 1000)
            assert len(out["tasks"]) == 100
        timings.sort()
        return {
            "tracked_tasks": tracked,
            "arns_per_call": 100,
            "samples": samples,
            "median_ms": round(statistics.median(timings), 2),
            "p99_ms": round(timings[int(samples * 0.99) - 1], 2),
        }
    finally:
        _stop(proc)


def _tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(fields[21]) * page
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total / 1024 / 1024


def process_runner_memory(concurrent: int = 200) -> dict[str, Any]:
    """Peak memory of the emulator and its children with ``concurrent`` short Python tasks."""
    proc, port = _start("--profile", "fast", "--runner", "process")
    try:
        conn = _Conn(port)
        _setup(conn, [sys.executable, "-c", "import time; time.sleep(8)"], {})
        idle = _tree_rss_mib(proc.pid)
        started = 0
        while started < concurrent:
            out = conn.call("RunTask", {"cluster": "bench", "taskDefinition": "bench", "count": 10})
            started += len(out["tasks"])
        peak, running = 0.0, 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = ControlClient(f"http://127.0.0.1:{port}").tasks()
            running = max(running, sum(r["lastStatus"] == "RUNNING" for r in rows))
            peak = max(peak, _tree_rss_mib(proc.pid))
            if all(r["lastStatus"] == "STOPPED" for r in rows):
                break
            time.sleep(0.25)
        return {
            "concurrent_tasks": concurrent,
            "peak_running": running,
            "concurrency_cap": 200,
            "idle_rss_mib": round(idle, 1),
            "peak_rss_mib": round(peak, 1),
            "per_task_mib": round((peak - idle) / max(1, running), 1),
            "task_program": "python -c 'import time; time.sleep(8)'",
        }
    finally:
        _stop(proc)


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "unknown"


def main() -> int:
    """Run the three measurements, write the JSON, print the Markdown summary."""
    print("emulator benchmark: RunTask throughput (10 s) ...", flush=True)
    throughput = run_task_throughput()
    print("emulator benchmark: DescribeTasks latency with 10,000 tasks tracked ...", flush=True)
    latency = describe_latency()
    print("emulator benchmark: process runner, 200 concurrent tasks ...", flush=True)
    memory = process_runner_memory()
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "run_task_throughput": throughput,
        "describe_tasks_latency": latency,
        "process_runner": memory,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\n| measure | figure | target |\n|---|---|---|\n"
        f"| RunTask calls/s sustained ({throughput['clients']} clients, simulated runner) | "
        f"{throughput['calls_per_second']} | >= 300 |\n"
        f"| DescribeTasks, 100 ARNs, 10,000 tracked: median / p99 | {latency['median_ms']} ms / "
        f"{latency['p99_ms']} ms | median <= 10 ms |\n"
        f"| process runner: peak running / cap | {memory['peak_running']} / {memory['concurrency_cap']} | |\n"
        f"| process runner: memory at 200 concurrent tasks | {memory['peak_rss_mib']} MiB "
        f"(~{memory['per_task_mib']} MiB per task) | |\n"
    )
    print(f"written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
