"""AWS-shaped errors that the emulator returns.

Each error carries the ``__type`` code and HTTP status that the real service sends, so botocore
raises the same ``ClientError`` subclass against the emulator as against AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AwsError(Exception):
    """An error response in the AWS JSON protocol."""

    code: str = "ClientException"
    status: int = 400

    def __init__(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message, **self.extra}


class ClientException(AwsError):
    code = "ClientException"


class InvalidParameterException(AwsError):
    code = "InvalidParameterException"


class AccessDeniedException(AwsError):
    code = "AccessDeniedException"


class ClusterNotFoundException(AwsError):
    code = "ClusterNotFoundException"


class ClusterContainsTasksException(AwsError):
    code = "ClusterContainsTasksException"


class ClusterContainsContainerInstancesException(AwsError):
    code = "ClusterContainsContainerInstancesException"


class ConflictException(AwsError):
    code = "ConflictException"


class PlatformUnknownException(AwsError):
    code = "PlatformUnknownException"


class ResourceNotFoundException(AwsError):
    code = "ResourceNotFoundException"


class ResourceAlreadyExistsException(AwsError):
    code = "ResourceAlreadyExistsException"


class ServerException(AwsError):
    code = "ServerException"
    status = 500


class ServiceUnavailableException(AwsError):
    code = "ServiceUnavailableException"
    status = 503


class ThrottlingException(AwsError):
    code = "ThrottlingException"

    def __init__(self, message: str = "Rate exceeded") -> None:
        super().__init__(message)


class SerializationException(AwsError):
    code = "SerializationException"


class UnknownOperationException(AwsError):
    code = "UnknownOperationException"


class MissingAuthenticationToken(AwsError):
    code = "MissingAuthenticationTokenException"
    status = 403


class EmulatorConfigError(Exception):
    """The emulator was started with settings it cannot honour (bad profile, no Docker engine)."""
