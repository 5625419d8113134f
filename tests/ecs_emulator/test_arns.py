"""Task references of another cluster, account or Region (ecs_emulator.arns)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import python_container, register_instance

SLEEP = "import time; time.sleep(30)"


@pytest.fixture
def running(ecs: Any) -> str:
    """A task in cluster "c"; cluster "other" exists too."""
    for name in ("c", "other"):
        ecs.create_cluster(clusterName=name)
    register_instance(ecs, "c")
    ecs.register_task_definition(family="fam", containerDefinitions=[python_container(code=SLEEP)])
    return str(ecs.run_task(cluster="c", taskDefinition="fam")["tasks"][0]["taskArn"])


def foreign(arn: str, *, cluster: str | None = None, account: str | None = None, region: str | None = None) -> str:
    prefix, resource = arn.rsplit(":", 1)
    parts = prefix.split(":")
    if account:
        parts[4] = account
    if region:
        parts[3] = region
    _, old_cluster, task_id = resource.split("/")
    return ":".join(parts) + f":task/{cluster or old_cluster}/{task_id}"


def rejected(call: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call()
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"
    return str(exc.value.response["Error"]["Message"])


def test_describe_tasks_with_an_arn_of_another_cluster_fails_the_whole_call(ecs: Any, running: str) -> None:
    """API_DescribeTasks.html (InvalidParameterException): AWS answers "Invalid identifier: Identifier is for
    cluster X. Your cluster is Y" for the whole call, not a MISSING entry for that ARN."""
    message = rejected(lambda: ecs.describe_tasks(cluster="other", tasks=[running]))
    assert message == "Invalid identifier: Identifier is for cluster c. Your cluster is other"
    # One foreign ARN among good ones still fails everything.
    message = rejected(lambda: ecs.describe_tasks(cluster="c", tasks=[running, foreign(running, cluster="other")]))
    assert "Identifier is for cluster other. Your cluster is c" in message


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        pytest.param({"account": "210987654321"}, "account_id 210987654321", id="other-account"),
        pytest.param({"region": "eu-west-1"}, "region eu-west-1", id="other-region"),
    ],
)
def test_describe_tasks_with_an_arn_of_another_account_or_region_fails(
    ecs: Any, running: str, change: dict[str, str], needle: str
) -> None:
    """API_DescribeTasks.html (InvalidParameterException): an identifier of another account fails the call;
    a Region that is not the endpoint's is refused the same way (stricter than a MISSING entry)."""
    assert needle in rejected(lambda: ecs.describe_tasks(cluster="c", tasks=[foreign(running, **change)]))


def test_stop_task_with_an_arn_of_another_cluster_fails(ecs: Any, running: str) -> None:
    """API_StopTask.html (InvalidParameterException): the task must be of the cluster named in the call."""
    assert "Identifier is for cluster c" in rejected(lambda: ecs.stop_task(cluster="other", task=running))
    assert ecs.describe_tasks(cluster="c", tasks=[running])["tasks"][0]["desiredStatus"] == "RUNNING"


def test_unknown_id_in_the_right_cluster_is_still_missing(ecs: Any, running: str) -> None:
    """ECS API model, Failure.reason: an unknown task of the cluster is a MISSING entry."""
    absent = running.rsplit("/", 1)[0] + "/" + "0" * 32
    assert ecs.describe_tasks(cluster="c", tasks=[absent])["failures"] == [{"arn": absent, "reason": "MISSING"}]
