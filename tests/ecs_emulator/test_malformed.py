"""Malformed requests get the error a real ECS client would see; never a 500, never a dead server."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from ecs_emulator import Emulator
from tests.helpers import sign

TARGET = "AmazonEC2ContainerServiceV20141113."


def post(em: Emulator, target: str | None, body: bytes, auth: bool = True) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", em.port, timeout=10)
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target:
        headers["X-Amz-Target"] = target
    if auth:  # signed with the emulator's key, as an SDK signs: the request itself is what is wrong
        headers = sign(em, "POST", "/", body, headers, service="ecs")
    conn.request("POST", "/", body=body, headers=headers)
    response = conn.getresponse()
    payload = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, payload


@pytest.mark.parametrize(
    ("op", "body", "code"),
    [
        pytest.param("RunTask", b"{not json", "SerializationException", id="invalid-json"),
        pytest.param("RunTask", b"[1, 2]", "SerializationException", id="array-body"),
        pytest.param("RunTask", b'{"taskDefinition": 5}', "SerializationException", id="wrong-type"),
        pytest.param("RunTask", b'{"taskDefinition": "x", "bogus": 1}', "SerializationException", id="unknown-key"),
        pytest.param("RunTask", b"{}", "InvalidParameterException", id="missing-required"),
        pytest.param("RunTask", b'{"taskDefinition": "x", "count": "ten"}', "SerializationException", id="count-str"),
        pytest.param("DescribeTasks", b'{"tasks": "abc"}', "SerializationException", id="tasks-not-list"),
        pytest.param(
            "DescribeTasks",
            json.dumps({"tasks": ["t"] * 101}).encode(),
            "InvalidParameterException",
            id="describe-101",
        ),
        pytest.param("StopTask", b'{"task": null}', "InvalidParameterException", id="stop-null-task"),
        pytest.param("NoSuchOperation", b"{}", "UnknownOperationException", id="unknown-op"),
        pytest.param(
            "RegisterTaskDefinition",
            b'{"family": "f", "containerDefinitions": [{}]}',
            "ClientException",
            id="container-without-name",
        ),
        pytest.param(
            "TagResource",
            b'{"resourceArn": "garbage", "tags": []}',
            "InvalidParameterException",
            id="tag-bad-arn",
        ),
        pytest.param("ListTasks", b'{"maxResults": 1000}', "ClusterNotFoundException", id="list-no-cluster"),
    ],
)
def test_malformed_requests(emulator: Emulator, op: str, body: bytes, code: str) -> None:
    status, payload = post(emulator, TARGET + op, body)
    assert status == 400, payload
    assert payload["__type"] == code
    assert payload["message"]
    status, _ = post(emulator, TARGET + "ListClusters", b"{}")
    assert status == 200  # the server still answers


def test_unsigned_request_rejected(emulator: Emulator) -> None:
    status, payload = post(emulator, TARGET + "ListClusters", b"{}", auth=False)
    assert status == 403
    assert payload["__type"] == "MissingAuthenticationTokenException"


def test_unknown_service_target(emulator: Emulator) -> None:
    status, payload = post(emulator, "SomethingElse_2020.Foo", b"{}")
    assert status == 400
    assert payload["__type"] == "UnknownOperationException"


def test_many_garbage_bodies_never_500(emulator: Emulator) -> None:
    bodies = [
        b"",
        b"null",
        b"0",
        b'"s"',
        b"{}",
        b'{"cluster": {}}',
        b'{"tasks": [null]}',
        b'{"count": -1}',
        b'{"overrides": []}',
        b'{"tags": [{"key": 1}]}',
        '{"cluster": "\u00e9"}'.encode(),
        b"\xff\xfe",
    ]
    ops = [
        "RunTask",
        "DescribeTasks",
        "StopTask",
        "ListTasks",
        "RegisterTaskDefinition",
        "DescribeClusters",
        "CreateCluster",
        "DeregisterTaskDefinition",
        "ListTagsForResource",
        "DescribeTaskDefinition",
    ]
    for op in ops:
        for body in bodies:
            status, payload = post(emulator, TARGET + op, body)
            assert status < 500, (op, body, payload)
    assert emulator.counters()["api"].get("RunTask", {}).get("error.internal") is None
