"""Task tags: StopTask deletes them; ECS's managed tags (ecs_emulator.tags)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import python_container, register_instance, wait_stopped


def setup(ecs: Any) -> None:
    ecs.create_cluster(clusterName="c")
    register_instance(ecs, "c")
    ecs.register_task_definition(
        family="fam", containerDefinitions=[python_container(code="import time; time.sleep(30)")]
    )


def test_stop_task_deletes_the_tasks_tags(ecs: Any) -> None:
    """ECS API model, StopTask: "Any tags associated with the task will be deleted"."""
    setup(ecs)
    arn = ecs.run_task(cluster="c", taskDefinition="fam", tags=[{"key": "dag_id", "value": "d"}])["tasks"][0]["taskArn"]
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "dag_id", "value": "d"}]
    ecs.stop_task(cluster="c", task=arn)
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == []
    task = wait_stopped(ecs, "c", arn)
    assert ecs.describe_tasks(cluster="c", tasks=[arn], include=["TAGS"])["tasks"][0]["tags"] == []
    assert task["stopCode"] == "UserInitiated"


def test_managed_tags_name_the_cluster(ecs: Any) -> None:
    """ECS API model, RunTask.enableECSManagedTags; Developer Guide "Tagging your resources": ECS adds
    aws:ecs:clusterName to the task (aws:ecs:serviceName only to tasks of a service)."""
    setup(ecs)
    tagged = ecs.run_task(cluster="c", taskDefinition="fam", enableECSManagedTags=True)["tasks"][0]
    assert {"key": "aws:ecs:clusterName", "value": "c"} in tagged["tags"]
    plain = ecs.run_task(cluster="c", taskDefinition="fam")["tasks"][0]
    assert plain["tags"] == []


def test_users_cannot_write_aws_tags_even_beside_managed_ones(ecs: Any) -> None:
    """ECS API model, Tag: the aws: prefix is reserved for AWS use."""
    setup(ecs)
    arn = ecs.run_task(cluster="c", taskDefinition="fam", enableECSManagedTags=True)["tasks"][0]["taskArn"]
    with pytest.raises(ClientError) as exc:
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "aws:ecs:clusterName", "value": "x"}])
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "data"}])
    keys = {t["key"] for t in ecs.list_tags_for_resource(resourceArn=arn)["tags"]}
    assert keys == {"aws:ecs:clusterName", "team"}
