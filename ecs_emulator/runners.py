"""Runners: how an ECS container becomes something that runs and exits.

``ProcessRunner`` runs the container's command as a local process in its own process group, with
stdout and stderr read line by line while it runs. ``SimulatedRunner`` runs nothing and exits
after a duration from the profile, for benchmarks at scale. ``DockerRunner`` runs the image with
the Docker CLI where an engine answers, and refuses to start, with the reason, where none does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ecs_emulator.errors import EmulatorConfigError
from ecs_emulator.profile import Simulated
from ecs_emulator.timeline import Timeline

_log = logging.getLogger(__name__)

OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
# Environment variables a task may set to steer the simulated runner for that one container.
SIM_DURATION_ENV = "ECS_EMULATOR_SIM_DURATION"
SIM_EXIT_CODE_ENV = "ECS_EMULATOR_SIM_EXIT_CODE"
# What a task never inherits from the emulator's environment: on ECS a container's credentials come
# from its task role (the container credentials endpoint), never from the operator's shell, and it
# reads no shared AWS config or credentials file (so boto3 does not find a profile before the
# container credentials provider in its chain).
STRIPPED_ENV = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "ECS_EMULATOR_CONTROL_TOKEN",
        "ECS_EMULATOR_FIXED_ACCESS_KEY_ID",
        "ECS_EMULATOR_FIXED_SECRET_ACCESS_KEY",
        "ECS_EMULATOR_FIXED_CONTROL_TOKEN",
        "ECS_EMULATOR_PRINCIPALS",  # other principals' keys (credentials.PRINCIPALS_ENV)
    }
)
_NO_AWS_FILES = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
_MEMORY_POLL_SECONDS = 0.25
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

OnOutput = Callable[[int, str], None]
OnExit = Callable[[int, str | None], None]


class StartError(Exception):
    """The container could not be started; the message is the ECS container reason."""


@dataclass(frozen=True)
class ContainerSpec:
    """What a runner needs to start one container."""

    task_id: str
    name: str
    image: str
    argv: Sequence[str]
    environment: Mapping[str, str]
    working_directory: str | None = None
    memory_limit_mib: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    rng: random.Random | None = None  # the task's own draws (model.Task.rng); None: the runner's


class Handle(Protocol):
    """A started container that can be sent a signal."""

    def signal(self, sig: int) -> None: ...


class Runner(Protocol):
    """Starts containers; one implementation per runner kind."""

    kind: str

    def start(self, spec: ContainerSpec, on_output: OnOutput, on_exit: OnExit) -> Handle: ...

    def close(self) -> None: ...


def _exit_code(returncode: int) -> int:
    # Docker reports a container killed by signal N as exit code 128 + N.
    return 128 - returncode if returncode < 0 else returncode


class _ProcessHandle:
    def __init__(self, proc: subprocess.Popen[bytes], memory_limit_mib: int | None) -> None:
        self.proc = proc
        self.memory_limit_mib = memory_limit_mib
        self.oom_killed = False

    def signal(self, sig: int) -> None:
        if sig == signal.SIGKILL:
            # A killed container loses every process in its cgroup, including ones in other sessions.
            _, members = _container_usage([self.proc.pid]).get(self.proc.pid, (0, set()))
            for member in members - {self.proc.pid}:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member, sig)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


class ProcessRunner:
    """Runs each container as a local process group."""

    kind = "process"

    def __init__(self, *, max_processes: int = 200, enforce_memory: bool = True, inherit_env: bool = True) -> None:
        self.max_processes = max_processes
        self.enforce_memory = enforce_memory
        self.inherit_env = inherit_env
        # What the "agent" adds for one container: endpoint, Region, task role credentials (set by the emulator).
        self.agent_environment: Callable[[ContainerSpec], Mapping[str, str]] | None = None
        self._live: dict[int, _ProcessHandle] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._workdir = Path(tempfile.mkdtemp(prefix="ecs-emulator-"))
        self._monitor = threading.Thread(target=self._watch_memory, name="ecs-emulator-memory", daemon=True)
        self._monitor.start()

    def _argv(self, spec: ContainerSpec) -> list[str]:
        return list(spec.argv)

    def _env(self, spec: ContainerSpec) -> dict[str, str]:
        env = dict(os.environ) if self.inherit_env else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for name in STRIPPED_ENV:
            env.pop(name, None)
        env.update(_NO_AWS_FILES)
        agent = dict(self.agent_environment(spec)) if self.agent_environment is not None else {}
        # The task definition's environment applies as on ECS; the credentials endpoint is the agent's.
        env.update({k: v for k, v in agent.items() if not k.startswith("AWS_CONTAINER_")})
        env.update(spec.environment)
        env.update({k: v for k, v in agent.items() if k.startswith("AWS_CONTAINER_")})
        return env

    def start(self, spec: ContainerSpec, on_output: OnOutput, on_exit: OnExit) -> Handle:
        argv = self._argv(spec)
        if not argv:
            raise StartError("CannotStartContainerError: Error response from daemon: no command specified")
        with self._lock:
            if len(self._live) >= self.max_processes:
                raise StartError(
                    f"ResourceInitializationError: the emulator's process runner is at its cap of "
                    f"{self.max_processes} concurrent containers"
                )
        cwd = spec.working_directory or str(self._workdir)
        try:
            proc = subprocess.Popen(
                argv,
                env=self._env(spec),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise StartError(
                "CannotStartContainerError: Error response from daemon: failed to create task for container: "
                f'exec: "{argv[0]}": executable file not found in $PATH: unknown'
            ) from None
        except OSError as exc:
            raise StartError(f"CannotStartContainerError: Error response from daemon: {exc}") from None
        handle = _ProcessHandle(proc, spec.memory_limit_mib if self.enforce_memory else None)
        with self._lock:
            self._live[proc.pid] = handle
        threading.Thread(
            target=self._pump,
            args=(handle, on_output, on_exit),
            name=f"ecs-emulator-{spec.task_id[:8]}",
            daemon=True,
        ).start()
        return handle

    def _pump(self, handle: _ProcessHandle, on_output: OnOutput, on_exit: OnExit) -> None:
        stream = handle.proc.stdout
        assert stream is not None
        for raw in iter(stream.readline, b""):
            on_output(int(time.time() * 1000), raw.decode("utf-8", "replace").rstrip("\r\n"))
        stream.close()
        returncode = handle.proc.wait()
        with self._lock:
            self._live.pop(handle.proc.pid, None)
        if handle.oom_killed:
            on_exit(137, OOM_REASON)
        else:
            on_exit(_exit_code(returncode), None)

    def _watch_memory(self) -> None:
        while not self._closed.wait(_MEMORY_POLL_SECONDS):
            with self._lock:
                limited = {pid: h for pid, h in self._live.items() if h.memory_limit_mib}
            if not limited:
                continue
            usage = _container_usage(limited)
            for pid, handle in limited.items():
                assert handle.memory_limit_mib is not None
                rss, _ = usage.get(pid, (0, set()))
                if rss > handle.memory_limit_mib * 1024 * 1024:
                    handle.oom_killed = True
                    handle.signal(signal.SIGKILL)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            handles = list(self._live.values())
        for h in handles:
            h.signal(signal.SIGKILL)
        shutil.rmtree(self._workdir, ignore_errors=True)


def _process_table() -> dict[int, tuple[int, int, int]]:
    """Every process: its pid -> (parent pid, process group, resident bytes)."""
    table: dict[int, tuple[int, int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp ... rss is field 24.
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry)] = (int(fields[1]), int(fields[2]), int(fields[21]) * _PAGE)
    return table


def _container_usage(roots: Iterable[int]) -> dict[int, tuple[int, set[int]]]:
    """Resident bytes and member pids of each container: its process group plus every descendant.

    A cgroup holds a container's processes wherever they move; Airflow's supervisor, for one,
    forks the task into a new session. Descendants are followed through parent pids.
    """
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[int, tuple[int, set[int]]] = {}
    for root in roots:
        members = {pid for pid, (_, pgrp, _) in table.items() if pgrp == root}
        stack = list(members | {root})
        while stack:
            pid = stack.pop()
            for child in children.get(pid, []):
                if child not in members:
                    members.add(child)
                    stack.append(child)
        members &= table.keys()
        out[root] = (sum(table[pid][2] for pid in members), members)
    return out


class _SimulatedHandle:
    def __init__(self, runner: SimulatedRunner, on_exit: OnExit) -> None:
        self._runner = runner
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._done = False

    def finish(self, code: int, reason: str | None = None) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._on_exit(code, reason)

    def signal(self, sig: int) -> None:
        if sig == signal.SIGKILL:
            self.finish(137)
        elif sig == signal.SIGTERM:
            # A well-behaved program exits soon after SIGTERM, with 128 + 15.
            self._runner.timeline.call_later(0.05, lambda: self.finish(143))


class SimulatedRunner:
    """Completes containers after a duration and exit code from the profile; runs no process."""

    kind = "simulated"

    def __init__(self, timeline: Timeline, settings: Simulated, rng: random.Random) -> None:
        self.timeline = timeline
        self.settings = settings
        self._rng = rng

    def start(self, spec: ContainerSpec, on_output: OnOutput, on_exit: OnExit) -> Handle:
        env = spec.environment
        if SIM_DURATION_ENV in env:
            duration = float(env[SIM_DURATION_ENV])
        else:
            duration = self.settings.duration.sample(spec.rng or self._rng)
        code = int(env[SIM_EXIT_CODE_ENV]) if SIM_EXIT_CODE_ENV in env else self.settings.exit_code
        handle = _SimulatedHandle(self, on_exit)
        self.timeline.call_later(duration, lambda: handle.finish(code))
        return handle

    def close(self) -> None:
        return None


def docker_engine_problem(timeout: float = 5.0) -> str | None:
    """None when a Docker engine answers; otherwise why not, in words."""
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    try:
        out = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"docker info did not answer within {timeout:.0f} s"
    if out.returncode != 0:
        detail = (out.stderr or out.stdout).strip().splitlines()
        return "no Docker engine answers" + (f" ({detail[-1]})" if detail else "")
    return None


class _DockerHandle:
    def __init__(self, name: str) -> None:
        self.name = name

    def signal(self, sig: int) -> None:
        subprocess.run(
            ["docker", "kill", "--signal", signal.Signals(sig).name, self.name],
            capture_output=True,
            check=False,
            timeout=30,
        )


class DockerRunner(ProcessRunner):
    """Runs each container's image with ``docker run``; needs a Docker engine."""

    kind = "docker"

    def __init__(self, *, max_processes: int = 200) -> None:
        problem = docker_engine_problem()
        if problem:
            raise EmulatorConfigError(
                f"the docker runner cannot start: {problem}. Use --runner process or --runner simulated."
            )
        super().__init__(max_processes=max_processes, enforce_memory=False, inherit_env=False)

    def _docker_argv(self, spec: ContainerSpec, name: str) -> list[str]:
        argv = ["docker", "run", "--rm", "--name", name, "--network", "host"]
        for key, value in spec.environment.items():
            argv += ["-e", f"{key}={value}"]
        if spec.memory_limit_mib:
            argv += ["--memory", f"{spec.memory_limit_mib}m"]
        if spec.working_directory:
            argv += ["--workdir", spec.working_directory]
        for key, value in spec.labels.items():
            argv += ["--label", f"{key}={value}"]
        return [*argv, spec.image, *spec.argv]

    def start(self, spec: ContainerSpec, on_output: OnOutput, on_exit: OnExit) -> Handle:
        name = f"ecs-emulator-{spec.task_id}-{spec.name}"
        docker_spec = ContainerSpec(
            task_id=spec.task_id,
            name=spec.name,
            image=spec.image,
            argv=self._docker_argv(spec, name),
            environment={},
        )
        super().start(docker_spec, on_output, on_exit)
        return _DockerHandle(name)


def make_runner(
    kind: str,
    *,
    timeline: Timeline,
    simulated: Simulated,
    rng: random.Random,
    max_processes: int,
    enforce_memory: bool,
) -> Runner:
    """The runner of the given kind."""
    if kind == "process":
        return ProcessRunner(max_processes=max_processes, enforce_memory=enforce_memory)
    if kind == "simulated":
        return SimulatedRunner(timeline, simulated, rng)
    if kind == "docker":
        return DockerRunner(max_processes=max_processes)
    raise EmulatorConfigError(f"unknown runner {kind!r}: use process, simulated or docker")


__all__ = [
    "OOM_REASON",
    "ContainerSpec",
    "DockerRunner",
    "ProcessRunner",
    "Runner",
    "SimulatedRunner",
    "StartError",
    "docker_engine_problem",
    "make_runner",
]
