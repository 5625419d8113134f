"""Requests and responses checked against botocore's own service models.

Requests are checked with botocore's parameter validator, so a malformed request gets the error a
real client would see. Responses are checked strictly, member by member, against the operation's
output shape: a key the model does not know, a wrong type or a value outside an enum is reported.
A mismatch is a bug in the emulator.

Response checking is on wherever ``ECS_EMULATOR_VALIDATE_RESPONSES`` is set to 1 (and an
``Emulator`` is not told otherwise): the emulator's pytest plugin sets it for the whole test
session, so every emulator a test starts, in-process or as a child process, checks its answers.
Problems found are also appended, one JSON line per response, to the file named by
``ECS_EMULATOR_SHAPE_REPORT`` when it is set, which the plugin reads to fail the test (and the
session) that saw them.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

from ecs_emulator.errors import InvalidParameterException, SerializationException, UnknownOperationException

VALIDATE_ENV = "ECS_EMULATOR_VALIDATE_RESPONSES"
REPORT_ENV = "ECS_EMULATOR_SHAPE_REPORT"
_report_lock = threading.Lock()


def validation_default() -> bool:
    """Whether responses are checked when the caller does not say: ``ECS_EMULATOR_VALIDATE_RESPONSES=1``."""
    return os.environ.get(VALIDATE_ENV, "").strip().lower() in ("1", "true", "yes")


def report(api: str, problems: list[str]) -> None:
    """Append one response's shape problems to the ``ECS_EMULATOR_SHAPE_REPORT`` file, when one is named."""
    path = os.environ.get(REPORT_ENV)
    if not path or not problems:
        return
    line = json.dumps({"pid": os.getpid(), "api": api, "problems": problems}) + "\n"
    with _report_lock, open(path, "a", encoding="utf-8") as out:
        out.write(line)


@functools.cache
def service_model(name: str) -> ServiceModel:
    """The botocore model of one service (cached)."""
    return botocore.session.get_session().get_service_model(name)


@functools.cache
def operation(service: str, name: str) -> OperationModel:
    """The botocore model of one operation; UnknownOperationException when there is none."""
    try:
        return service_model(service).operation_model(name)
    except Exception:
        raise UnknownOperationException(f"Operation {name} is not supported.") from None


def check_request(service: str, name: str, params: Any) -> None:
    """Raise the AWS error a malformed request gets, or return None."""
    if not isinstance(params, dict):
        raise SerializationException("Start of structure or map found where not expected.")
    shape = operation(service, name).input_shape
    if shape is None:
        return
    report = ParamValidator().validate(_without_nulls(params), shape)
    if not report.has_errors():
        return
    text = report.generate_report()
    if "Invalid type" in text or "Unknown parameter" in text:
        raise SerializationException(text.replace("\n", " "))
    raise InvalidParameterException(text.replace("\n", " "))


def _without_nulls(value: Any) -> Any:
    """The JSON protocol treats a member set to null as absent."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def check_response(service: str, name: str, body: Any) -> list[str]:
    """Every way ``body`` departs from the operation's output shape; empty when it matches."""
    shape = operation(service, name).output_shape
    if shape is None:
        return [] if body in ({}, None) else ["the operation has no output but the body is not empty"]
    problems: list[str] = []
    _check(shape, body, name, problems)
    return problems


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        members = shape.members
        for key, item in value.items():
            if key not in members:
                problems.append(f"{path}.{key}: not a member of {shape.name}")
            else:
                _check(members[key], item, f"{path}.{key}", problems)
        for key in shape.required_members:
            if key not in value:
                problems.append(f"{path}.{key}: required by {shape.name} but absent")
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check(shape.member, item, f"{path}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check(shape.value, item, f"{path}[{key!r}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {type(value).__name__}")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.name}'s values")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: expected an integer, got {type(value).__name__}")
    elif kind in ("double", "float"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            problems.append(f"{path}: expected a number, got {type(value).__name__}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean, got {type(value).__name__}")
    elif kind == "timestamp":
        if not isinstance(value, int | float) or isinstance(value, bool):
            problems.append(f"{path}: expected epoch seconds, got {type(value).__name__}")
    elif kind == "blob" and not isinstance(value, str):
        problems.append(f"{path}: expected base64 text, got {type(value).__name__}")
