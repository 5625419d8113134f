"""``python -m ecs_emulator`` / ``ecs-emulator``: run the emulator until interrupted."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys
import time

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
    parser.add_argument("--validate-responses", action="store_true", help="check every response against botocore")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM; 2 when it cannot start."""
    args = build_parser().parse_args(argv)
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
        ).start()
    except EmulatorConfigError as exc:
        print(f"ecs-emulator: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ecs-emulator: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    print(
        f"ECS emulator ready at {emulator.endpoint_url} "
        f"(profile {emulator.profile.name}, runner {emulator.runner.kind})",
        flush=True,
    )
    # The handler only sets a flag: taking a lock (Event.set) inside a signal handler can deadlock
    # when the signal lands while the main thread holds that same lock.
    stop_requested: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stop_requested.append(signum))
    while not stop_requested:
        time.sleep(0.2)
    emulator.stop()
    return 0
