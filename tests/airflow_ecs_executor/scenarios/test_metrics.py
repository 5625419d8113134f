"""Metrics reach a real StatsD listener on loopback through Airflow's Stats."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest


@pytest.fixture
def statsd_listener(monkeypatch: pytest.MonkeyPatch) -> Any:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    received: list[str] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                received.extend(sock.recv(65535).decode().splitlines())
            except TimeoutError:
                continue

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(sock.getsockname()[1]))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")
    yield received
    stop.set()
    thread.join(timeout=2)
    sock.close()


def test_executor_metrics(statsd_listener: list[str], ecs_setup: Any, executor_env: dict[str, str]) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    driver = [sys.executable, "-m", "tests.airflow_ecs_executor.scenarios.metrics_driver"]
    done = subprocess.run(driver, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    time.sleep(0.5)  # the last UDP datagrams
    names = {line.split(":", 1)[0] for line in statsd_listener}
    for expected in (
        "airflow.ecs_executor.pending",
        "airflow.ecs_executor.running",
        "airflow.ecs_executor.launch_latency",
        "airflow.ecs_executor.launch_call",
        "airflow.ecs_executor.failures",
        "airflow.ecs_executor.failures.exit_code",
    ):
        assert expected in names, sorted(n for n in names if "ecs_executor" in n)
