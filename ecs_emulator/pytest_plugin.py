"""A pytest fixture that runs the emulator in-process on a free port (installed as a pytest plugin).

``ecs_emulator_server`` yields a started ``Emulator`` (profile ``fast``) whose every response is
checked against botocore's shapes; it fails the test when one did not match, and stops the
emulator (and every process it started) afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecs_emulator.emulator import Emulator


@pytest.fixture
def ecs_emulator_server() -> Iterator[Emulator]:
    """A started emulator on 127.0.0.1 and a free port; stopped after the test."""
    with Emulator("fast", validate_responses=True) as em:
        yield em
        assert em.shape_problems == [], em.shape_problems
