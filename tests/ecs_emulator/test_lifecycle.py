"""The task lifecycle: AWS's order of statuses, and the aws-lifecycle profile's dwell times, scaled.

Source for the order: ECS API model, Task.lastStatus, and the Developer Guide's "Amazon ECS task
lifecycle" (PROVISIONING and DEPROVISIONING are the awsvpc ENI steps; tasks without an ENI skip them).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from ecs_emulator import Emulator, load_profile
from ecs_emulator.cli import build_parser
from ecs_emulator.profile import BUILTIN_PROFILES
from ecs_emulator.runners import SIM_DURATION_ENV
from tests.helpers import aws_client, python_container, register_instance

AWSVPC_ORDER = [
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
]
BRIDGE_ORDER = [s for s in AWSVPC_ORDER if s not in ("PROVISIONING", "DEPROVISIONING")]


def watch(
    ecs: Any, arn: str, timeout: float = 30.0, *, at_most: dict[str, float] | None = None
) -> list[tuple[str, float]]:
    """Every lastStatus DescribeTasks shows, with how long it was seen (polling every 10 ms).

    The time seen falls short of the status's real dwell by up to a poll at each end, more on a
    loaded machine. ``at_most`` gets the other bound: from the last poll that showed the status
    before to the first that showed the status after (never shorter than the real dwell).
    """
    # per status: (status, first poll sent, first poll answered, last poll sent, last poll answered)
    seen: list[tuple[str, float, float, float, float]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        asked = time.monotonic()
        status = ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]["lastStatus"]
        now = time.monotonic()
        if seen and seen[-1][0] == status:
            seen[-1] = (*seen[-1][:3], asked, now)
        else:
            seen.append((status, asked, now, asked, now))
        if status == "STOPPED":
            if at_most is not None:
                for before, (s, *_), after in zip(seen, seen[1:], seen[2:], strict=False):
                    at_most[s] = after[2] - before[3]  # first answer after it - last question before it
            return [(s, last - first) for s, _, first, _, last in seen]
        time.sleep(0.01)
    raise AssertionError(f"task did not stop within {timeout} s: {seen}")


def fargate_cluster(em: Emulator, container: dict[str, Any]) -> Any:
    """An ECS client, cluster "c" and Fargate task definition "fg" running ``container``."""
    ecs = aws_client("ecs", em)
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(
        family="fg",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[container],
    )
    return ecs


# Half of AWS's dwell times: every status stays at least 0.5 s, long enough for a DescribeTasks round
# trip on a loaded machine to see it (at 0.1 one of 0.1 s was missed when calls took that long).
TIME_SCALE = 0.5


@pytest.fixture
def scaled() -> Any:
    with Emulator("aws-lifecycle", time_scale=TIME_SCALE, validate_responses=True) as em:
        yield em
        assert em.shape_problems == []


def test_fargate_task_shows_every_status_in_order_at_scaled_aws_timings(scaled: Emulator) -> None:
    """ECS API model, Task.lastStatus; Developer Guide "Amazon ECS task lifecycle": an awsvpc task walks all
    eight statuses; scaled by TIME_SCALE each stays visible to DescribeTasks, STOPPING for over a second."""
    ecs = fargate_cluster(scaled, python_container(code="import time; time.sleep(1.0)"))
    network = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    arn = ecs.run_task(cluster="c", taskDefinition="fg", launchType="FARGATE", networkConfiguration=network)
    at_most: dict[str, float] = {}
    seen = watch(ecs, arn["tasks"][0]["taskArn"], timeout=90, at_most=at_most)
    assert [s for s, _ in seen] == AWSVPC_ORDER
    dwell = dict(seen)
    # Each status lasts at least its floor (>= 1 s unscaled), STOPPING several seconds on AWS (>= 3 s
    # unscaled). Judged by the bound that never falls short of the real dwell: polls that take 100 ms on
    # a loaded machine saw a STOPPING of 300 ms for 200 ms, and a PENDING in one poll.
    assert all(at_most[s] >= 1.0 * TIME_SCALE for s in AWSVPC_ORDER[1:-1]), (dwell, at_most)
    assert at_most["STOPPING"] >= 3.0 * TIME_SCALE, (dwell, at_most)


def test_ec2_bridge_task_skips_provisioning_and_deprovisioning(scaled: Emulator) -> None:
    """Developer Guide "Amazon ECS task lifecycle": PROVISIONING/DEPROVISIONING attach and release the
    awsvpc ENI; an EC2 bridge-mode task has none and goes PENDING -> ... -> STOPPING -> STOPPED."""
    ecs = aws_client("ecs", scaled)
    ecs.create_cluster(clusterName="c")
    register_instance(ecs, "c")
    ecs.register_task_definition(
        family="br", networkMode="bridge", containerDefinitions=[python_container(code="import time; time.sleep(1.0)")]
    )
    task = ecs.run_task(cluster="c", taskDefinition="br")["tasks"][0]
    assert task["lastStatus"] == "PENDING"
    assert [s for s, _ in watch(ecs, task["taskArn"], timeout=90)] == BRIDGE_ORDER


def test_ec2_awsvpc_task_has_the_eni_steps(emulator: Emulator, ecs: Any) -> None:
    """Developer Guide "Amazon ECS task lifecycle": an EC2 task in awsvpc mode has an ENI, so PROVISIONING."""
    ecs.create_cluster(clusterName="c")
    register_instance(ecs, "c")
    ecs.register_task_definition(
        family="vpc", networkMode="awsvpc", containerDefinitions=[python_container(code="import time; time.sleep(5)")]
    )
    network = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    task = ecs.run_task(cluster="c", taskDefinition="vpc", networkConfiguration=network)["tasks"][0]
    assert task["lastStatus"] == "PROVISIONING"
    ecs.stop_task(cluster="c", task=task["taskArn"])


def test_profile_scaled_multiplies_every_dwell_time() -> None:
    """Profile.scaled(factor): the interface tests use to run AWS's timings quickly."""
    profile = load_profile("aws-lifecycle")
    scaled = profile.scaled(0.1)
    for name in type(profile.lifecycle).model_fields:
        full, small = getattr(profile.lifecycle, name), getattr(scaled.lifecycle, name)
        assert small.median == pytest.approx(full.median * 0.1)
        assert small.p99 == pytest.approx(full.p99 * 0.1)
        assert small.floor == pytest.approx(full.floor * 0.1)
        assert full.floor >= 1.0  # every status stays observable: >= 100 ms at time_scale 0.1
    assert scaled.name == "aws-lifecycle" and scaled.throttling == {} and scaled.latency == {}
    assert profile.lifecycle.stopping.median >= 3  # several seconds in STOPPING, as on AWS
    with Emulator("aws-lifecycle", time_scale=0.5, runner="simulated") as em:
        assert em.profile.lifecycle == profile.scaled(0.5).lifecycle
    assert "aws-lifecycle" in BUILTIN_PROFILES


def test_cli_accepts_time_scale() -> None:
    """``ecs-emulator --profile aws-lifecycle --time-scale 0.1``."""
    args = build_parser().parse_args(["--profile", "aws-lifecycle", "--time-scale", "0.1"])
    assert args.time_scale == 0.1


def _lifecycle_draws(*, spaced: bool, seed: int) -> list[list[float]]:
    """Each task's lifecycle dwell times, in launch order, for five Fargate tasks of a seeded profile.

    ``spaced`` launches them 0.3 s apart (each walks part of its lifecycle before the next starts),
    else all at once: the transitions of the tasks interleave differently.
    """
    profile = load_profile("aws").model_copy(update={"seed": seed, "runner": "simulated"})
    draws: dict[str, list[float]] = {}
    with Emulator(profile, time_scale=0.01) as em:
        after = em.ecs.lifecycle._after

        def noted(delay: float, task: Any, step: Any) -> None:  # a spy: records, then does the real thing
            draws.setdefault(task.task_id, []).append(delay)
            after(delay, task, step)

        em.ecs.lifecycle._after = noted  # type: ignore[method-assign]
        ecs = fargate_cluster(em, {**python_container(), "environment": [{"name": SIM_DURATION_ENV, "value": "0.2"}]})
        network = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
        arns = []
        for _ in range(5):
            run = ecs.run_task(cluster="c", taskDefinition="fg", launchType="FARGATE", networkConfiguration=network)
            arns.append(run["tasks"][0]["taskArn"])
            if spaced:
                time.sleep(0.3)
        deadline = time.monotonic() + 60
        while any(t["lastStatus"] != "STOPPED" for t in ecs.describe_tasks(cluster="c", tasks=arns)["tasks"]):
            assert time.monotonic() < deadline, "tasks did not stop within 60 s"
            time.sleep(0.05)
    return [draws[arn.rsplit("/", 1)[-1]] for arn in arns]


def test_a_seeded_profile_gives_the_nth_task_the_same_lifecycle_however_calls_interleave() -> None:
    """Benchmarks run two executors on one seeded profile and compare them: the n-th task each starts
    must live the same lifecycle, whatever the order of the API calls and transitions around it."""
    together = _lifecycle_draws(spaced=False, seed=11)
    assert [len(d) for d in together] == [
        6
    ] * 5  # provisioning, pending, activating, deactivating, stopping, deprovisioning
    assert len({tuple(d) for d in together}) == 5  # each task draws its own
    assert _lifecycle_draws(spaced=True, seed=11) == together
    assert _lifecycle_draws(spaced=False, seed=12) != together
