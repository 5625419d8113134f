"""Task logs in the Airflow UI straight from the ECS task's CloudWatch Logs stream.

Two readers share ``EcsLogReader``:

* ``EcsExecutor.get_task_log``: the API server asks the executor for a *running* try's log.
* ``EcsTaskLogHandler``: a read-only task log handler for *finished* tries that have no remote
  log; it finds the try's ECS task through the ARN Airflow keeps as ``external_executor_id`` (in
  ``task_instance`` and ``task_instance_history``). Turn it on in the API server with one line::

      AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS=airflow_ecs_executor.logs.LOGGING_CONFIG

Remote logging (S3, CloudWatch), when configured, still comes first; the ECS stream is the
fallback, so a container killed by OOM or a Spot interruption before it could upload anything
still has its output shown.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from airflow.config_templates import airflow_local_settings
from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG
from airflow.configuration import conf
from airflow.utils.log.file_task_handler import FileTaskHandler
from airflow.utils.state import TaskInstanceState

from airflow_ecs_executor.aws.arns import is_task_arn, parse_task_arn
from airflow_ecs_executor.aws.client import translate
from airflow_ecs_executor.aws.logs import LogStream, awslogs_stream, read_stream
from airflow_ecs_executor.aws.session import client_config
from airflow_ecs_executor.config import SECTION, ConfigError, ExecutorConfig, parse_config
from airflow_ecs_executor.connection import make_client
from airflow_ecs_executor.redaction import redact_text

NOTE_PREFIX = "[airflow-ecs-executor]"
_LIVE_STATES = frozenset({TaskInstanceState.RUNNING, TaskInstanceState.DEFERRED})


def note_line(text: str, level: str = "warning") -> str:
    """A line for the log view that says something about the log itself, not from the task."""
    return json.dumps({"event": f"{NOTE_PREFIX} {text}", "level": level})


class EcsLogReader:
    """Finds a try's ECS task, its task definition's awslogs stream, and reads it."""

    def __init__(self, cfg: ExecutorConfig, client_factory: Callable[..., Any]) -> None:
        self._cfg = cfg
        self._client_factory = client_factory
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._definitions: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()

    def _client(self, service: str, region: str | None = None) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                config = client_config(attempts=1, read_timeout=20)
                self._clients[key] = self._client_factory(self._cfg, service, region_name=region, config=config)
            return self._clients[key]

    def _definition(self, ref: str) -> Mapping[str, Any]:
        if ref not in self._definitions or ":task-definition/" not in ref:
            definition = self._client("ecs").describe_task_definition(taskDefinition=ref)["taskDefinition"]
            self._definitions[ref] = definition
        return self._definitions[ref]

    def locate(self, arn: str, queue: str | None) -> LogStream | str:
        """Where the workload container of ECS task ``arn`` logs, or why that cannot be known."""
        profile = self._cfg.queue_profiles.get(queue or "")
        container = (profile.container_name if profile else None) or self._cfg.container_name
        parsed = parse_task_arn(arn)
        if parsed is None:
            return f"{arn!r} is not an ECS task ARN"
        cluster, task_id = parsed.cluster, parsed.task_id
        definition_ref: str | None = None
        try:
            described = self._client("ecs").describe_tasks(cluster=cluster or self._cfg.cluster, tasks=[arn])
            tasks = described.get("tasks") or []
            if tasks:
                definition_ref = tasks[0].get("taskDefinitionArn")
        except Exception as exc:
            translate(exc)
        # ECS forgets stopped tasks after about an hour: then the configured definition tells.
        definition_ref = definition_ref or (profile.task_definition if profile else None) or self._cfg.task_definition
        try:
            definition = self._definition(definition_ref)
        except Exception as exc:
            err = translate(exc)
            return f"cannot read task definition {definition_ref}: {err.code}: {err.message}"
        return awslogs_stream(definition, container, task_id)

    def read(self, arn: str | None, queue: str | None, try_number: int) -> tuple[list[str], list[str]]:
        """``(sources, lines)`` in the shape Airflow's log readers expect."""
        if not is_task_arn(arn):
            return [f"ECS: no ECS task is recorded for try {try_number} yet"], [
                note_line(f"try {try_number} has no ECS task ARN recorded yet; its log appears once it is launched")
            ]
        assert arn is not None
        where = self.locate(arn, queue)
        if isinstance(where, str):
            return [f"ECS task {arn}"], [note_line(f"cannot show this ECS task's output: {where}")]
        page = read_stream(self._client("logs", where.region or self._cfg.region_name), where)
        source = f"ECS task {arn}: CloudWatch Logs {where.group} {where.stream} ({len(page.lines)} lines)"
        # Every container line is redacted here, whatever produced it: a task's own code can print a
        # token, and Airflow 3.1's execute_workload prints the workload it was given.
        lines = [redact_text(line) for line in page.lines]
        if page.note is not None:
            lines = [note_line(page.note), *lines]
        return [source], lines


_readers: dict[str, EcsLogReader] = {}  # by the configuration's JSON: equal settings share a reader


def reader_for(section: Mapping[str, Any], client_factory: Callable[..., Any]) -> EcsLogReader | str:
    """One reader per configuration, or the configuration's problems in words."""
    try:
        cfg = parse_config(section)
    except ConfigError as exc:
        return f"[{SECTION}] is not usable for reading logs: {exc}"
    key = cfg.model_dump_json()
    if key not in _readers:
        _readers[key] = EcsLogReader(cfg, client_factory)
    return _readers[key]


def read_try_log(ti: Any, try_number: int, section: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """A try's ECS log; never raises, because the caller is the UI."""
    reader = reader_for(section, make_client)
    if isinstance(reader, str):
        return ["ECS"], [note_line(reader)]
    try:
        return reader.read(getattr(ti, "external_executor_id", None), getattr(ti, "queue", None), try_number)
    except Exception as exc:
        return ["ECS"], [note_line(f"reading the ECS task's log failed: {type(exc).__name__}: {exc}")]


class EcsTaskLogHandler(FileTaskHandler):
    """Airflow's file task handler, plus the ECS task's CloudWatch stream for finished tries.

    Order for a finished try: remote log (when remote logging is configured) -> the ECS stream ->
    Airflow's usual local and served-log fallbacks. Running tries are the executor's job
    (``EcsExecutor.get_task_log``), so they are not read twice.
    """

    def _read_remote_logs(self, ti: Any, try_number: int, metadata: Any = None) -> Any:
        try:
            sources, logs = super()._read_remote_logs(ti, try_number, metadata)
        except NotImplementedError:
            sources, logs = [], []
        if logs or not is_task_arn(getattr(ti, "external_executor_id", None)):
            return sources, logs
        if ti.state in _LIVE_STATES and ti.try_number == try_number:
            return sources, logs
        ecs_sources, ecs_lines = read_try_log(ti, try_number, dict(conf.getsection(SECTION) or {}))
        return [*sources, *ecs_sources], (["\n".join(ecs_lines)] if ecs_lines else [])


def _logging_config() -> dict[str, Any]:
    config = copy.deepcopy(DEFAULT_LOGGING_CONFIG)
    config["handlers"]["task"]["class"] = f"{EcsTaskLogHandler.__module__}.{EcsTaskLogHandler.__qualname__}"
    return config


#: Airflow's default logging configuration with the task handler swapped for ``EcsTaskLogHandler``.
LOGGING_CONFIG: dict[str, Any] = _logging_config()
# Airflow reads the remote-logging set-up from the module that holds the logging configuration
# (3.1 fails without them): the defaults', so remote logging works as it would without us.
REMOTE_TASK_LOG: Any = getattr(airflow_local_settings, "REMOTE_TASK_LOG", None)
DEFAULT_REMOTE_CONN_ID: str | None = getattr(airflow_local_settings, "DEFAULT_REMOTE_CONN_ID", None)
