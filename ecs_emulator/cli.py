"""``python -m ecs_emulator`` / ``ecs-emulator``: run the emulator until interrupted.

``python -m ecs_emulator env [--port N]`` prints the running emulator's endpoint, credentials and
control token as ``export`` lines: ``eval "$(python -m ecs_emulator env --port N)"``.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ecs_emulator import credentials as creds
from ecs_emulator.emulator import Emulator
from ecs_emulator.errors import EmulatorConfigError
from ecs_emulator.profile import BUILTIN_PROFILES


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``ecs-emulator``."""
    parser = argparse.ArgumentParser(
        prog="ecs-emulator",
        description="A local Amazon ECS + CloudWatch Logs emulator on 127.0.0.1 that runs tasks for real.",
    )
    parser.add_argument(
        "--port", type=int, default=4566, help="TCP port on 127.0.0.1 (0 picks a free one; default 4566)"
    )
    parser.add_argument(
        "--profile",
        default="fast",
        help=f"behaviour profile: {', '.join(BUILTIN_PROFILES)}, or a path to a TOML file (default fast)",
    )
    parser.add_argument("--runner", choices=["process", "simulated", "docker"], help="override the profile's runner")
    parser.add_argument("--region", default="us-east-1", help="Region used in ARNs (default us-east-1)")
    parser.add_argument("--retention", type=float, help="seconds a STOPPED task stays describable")
    parser.add_argument(
        "--time-scale",
        type=float,
        help="multiply every lifecycle dwell time of the profile (0.1: ten times faster; default 1)",
    )
    parser.add_argument(
        "--validate-responses",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="check every response against botocore's output shapes "
        "(default: on where ECS_EMULATOR_VALIDATE_RESPONSES=1, as under pytest)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    parser.add_argument(
        "--env-file",
        type=Path,
        help="where to write the endpoint, credentials and control token (mode 0600; removed on stop; "
        "default ~/.cache/ecs-emulator/127.0.0.1-PORT.env)",
    )
    parser.add_argument(
        "--request-log",
        type=Path,
        help="append one JSON line per AWS request received (service, action, signer, resources and the "
        "whole request body) to this file, created mode 0600 (docs/emulator.md, 'The request log')",
    )
    return parser


def build_env_parser() -> argparse.ArgumentParser:
    """The command line of ``ecs-emulator env``."""
    parser = argparse.ArgumentParser(
        prog="ecs-emulator env",
        description="Print the running emulator's endpoint, credentials and control token as export lines, "
        'for eval "$(python -m ecs_emulator env --port N)".',
    )
    parser.add_argument("--port", type=int, default=4566, help="the emulator's port on 127.0.0.1 (default 4566)")
    parser.add_argument("--env-file", type=Path, help="read this env file instead of the port's default one")
    return parser


def _answers(values: dict[str, str]) -> bool:
    """Whether an emulator answers at the file's endpoint with the file's control token."""
    request = urllib.request.Request(  # noqa: S310 - the emulator's own loopback URL
        values[creds.ENDPOINT_ENV].rstrip("/") + "/_emulator/health",
        headers={"Content-Type": "application/json", creds.CONTROL_TOKEN_HEADER: values[creds.CONTROL_TOKEN_ENV]},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return bool(json.loads(response.read()).get("ok"))
    except (OSError, ValueError):  # refused, reset, 403 (URLError/HTTPError are OSErrors)
        return False


def env_main(argv: list[str]) -> int:
    """``ecs-emulator env``: export lines on stdout; 2 when no emulator runs there."""
    args = build_env_parser().parse_args(argv)
    path = args.env_file or creds.default_env_file(args.port)
    try:
        values = creds.read_env_file(path)
    except FileNotFoundError:
        print(
            f"ecs-emulator env: no emulator runs on 127.0.0.1:{args.port} (no {path}); "
            f"start one with: python -m ecs_emulator --port {args.port}",
            file=sys.stderr,
        )
        return 2
    missing = [name for name in creds.ENV_FILE_NAMES if name not in values]
    if missing:
        print(f"ecs-emulator env: {path} lacks {', '.join(missing)}", file=sys.stderr)
        return 2
    if not _answers(values):
        print(
            f"ecs-emulator env: the emulator that wrote {path} does not answer at {values[creds.ENDPOINT_ENV]} "
            f"(stopped without removing it?); start one with: python -m ecs_emulator --port {args.port}",
            file=sys.stderr,
        )
        return 2
    sys.stdout.write(creds.export_lines({name: values[name] for name in creds.ENV_FILE_NAMES}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM; 2 when it cannot start. ``env``: see ``env_main``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["env"]:
        return env_main(argv[1:])
    args = build_parser().parse_args(argv)
    fixed_credentials, fixed_token = creds.fixed_from_environ(os.environ)
    try:
        principals = creds.principals_from_environ(os.environ)
    except ValueError as exc:
        print(f"ecs-emulator: {exc}", file=sys.stderr)
        return 2
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        emulator = Emulator(
            args.profile,
            port=args.port,
            runner=args.runner,
            region=args.region,
            validate_responses=args.validate_responses,
            stopped_task_retention=args.retention,
            time_scale=args.time_scale,
            credentials=(
                (fixed_credentials.access_key_id, fixed_credentials.secret_access_key) if fixed_credentials else None
            ),
            control_token=fixed_token,
            principals={name: (c.access_key_id, c.secret_access_key) for name, c in principals.items()},
            request_log=args.request_log,
        ).start()
    except EmulatorConfigError as exc:
        print(f"ecs-emulator: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ecs-emulator: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    env_file = args.env_file or creds.default_env_file(emulator.port)
    try:
        creds.write_env_file(env_file, emulator.env())
    except OSError as exc:
        emulator.stop()
        print(f"ecs-emulator: cannot write {env_file}: {exc.strerror}", file=sys.stderr)
        return 2
    port_flag = f" --port {emulator.port}"
    env_flag = f" --env-file {env_file}" if args.env_file else ""
    print(
        f"ECS emulator ready at {emulator.endpoint_url} "
        f"(profile {emulator.profile.name}, runner {emulator.runner.kind})\n"
        f"Credentials and control token: {env_file} (readable by you only)\n"
        f'Use them in a shell: eval "$(python -m ecs_emulator env{port_flag}{env_flag})"',
        flush=True,
    )
    # The handler only sets a flag: taking a lock (Event.set) inside a signal handler can deadlock
    # when the signal lands while the main thread holds that same lock.
    stop_requested: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stop_requested.append(signum))
    try:
        while not stop_requested:
            time.sleep(0.2)
    finally:
        with contextlib.suppress(FileNotFoundError):
            env_file.unlink()
        emulator.stop()
    return 0
