from __future__ import annotations

import os

import pytest

from tests.helpers import aws_client

# Tests never reach AWS: fake credentials, and no shared config or credentials file is read.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

from ecs_emulator import Emulator


@pytest.fixture
def emulator(ecs_emulator_server: Emulator) -> Emulator:
    """The emulator's own pytest fixture (ecs_emulator.pytest_plugin): fast profile, shapes checked."""
    return ecs_emulator_server


@pytest.fixture
def ecs(emulator: Emulator):  # type: ignore[no-untyped-def]
    return aws_client("ecs", emulator)


@pytest.fixture
def logs(emulator: Emulator):  # type: ignore[no-untyped-def]
    return aws_client("logs", emulator)
