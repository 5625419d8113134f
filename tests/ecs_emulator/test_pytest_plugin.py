"""The pytest plugin: every emulator under pytest checks its responses, and a mismatch fails the test."""

from __future__ import annotations

import pytest

from ecs_emulator import Emulator
from ecs_emulator.cli import build_parser
from ecs_emulator.shapes import REPORT_ENV, VALIDATE_ENV

pytest_plugins = ["pytester"]

BAD_RESPONSE_TEST = """
import boto3
from ecs_emulator import Emulator

def test_a_response_off_its_shape():
    with Emulator("fast") as em:  # no validate_responses: the plugin's default applies
        em.logs.handlers["DescribeLogGroups"] = lambda req: {"logGroups": [{"notAMember": 1}]}
        logs = boto3.client("logs", **em.client_kwargs())
        logs.describe_log_groups()

def test_a_clean_one():
    with Emulator("fast") as em:
        boto3.client("logs", **em.client_kwargs()).describe_log_groups()
"""


def test_every_emulator_under_pytest_checks_its_responses() -> None:
    with Emulator("fast") as em:
        assert em.validate_responses is True
    assert build_parser().parse_args([]).validate_responses is None  # the CLI leaves it to the environment
    assert build_parser().parse_args(["--no-validate-responses"]).validate_responses is False


def test_a_response_off_its_shape_fails_the_test_that_saw_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The inner session is a new process with its own report file, as any test session starts.
    monkeypatch.delenv(REPORT_ENV)
    monkeypatch.delenv(VALIDATE_ENV)
    pytester.makepyfile(test_inner=BAD_RESPONSE_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*emulator responses did not match botocore's output shapes*",
            "*DescribeLogGroups: DescribeLogGroups.logGroups[[]0[]].notAMember: not a member of LogGroup*",
        ]
    )
