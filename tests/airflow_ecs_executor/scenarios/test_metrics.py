"""Metrics reach a real StatsD listener on loopback through Airflow's Stats."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from tests.airflow_ecs_executor.scenarios.conftest import run, workload


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
    from airflow_ecs_executor import EcsExecutor

    ex = EcsExecutor()
    ex.start()
    try:
        run(ex, [workload("ok"), workload("fail")])
    finally:
        ex.terminate()
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
