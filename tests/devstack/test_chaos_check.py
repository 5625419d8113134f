"""The chaos check's reading of the scheduler logs: which tries the executor failed on purpose."""

from __future__ import annotations

from devstack.chaos import _gave_up

LOGS = """\
[2026-11-28T13:40:01Z] {executor.py:380} WARNING - chaos/work/manual__1/6/2 failed: Fargate had no capacity \
(RESOURCE:FARGATE); gave up after 38 launch attempt(s)
[2026-11-28T13:41:07Z] {executor.py:380} WARNING - chaos/work/manual__1/3/1 failed: the task failed to start \
(ResourceInitializationError); gave up after 1 launch attempt(s) (adopted task: its workload cannot be launched again)
[2026-11-28T13:42:00Z] {executor.py:380} WARNING - chaos/work/manual__1/9/1 failed: exit code 1
"""


def test_a_try_the_executor_gave_up_on_is_told_apart_from_a_try_lost() -> None:
    assert _gave_up(LOGS, "chaos/work/manual__1/6/2")  # launch attempts spent
    assert _gave_up(LOGS, "chaos/work/manual__1/3/1")  # adopted, failed to start: cannot be launched again
    assert not _gave_up(LOGS, "chaos/work/manual__1/9/1")  # failed for another reason
    assert not _gave_up(LOGS, "chaos/work/manual__1/6/1")  # another try of the same task instance
    assert not _gave_up(LOGS, "chaos/work/manual__1/3/12")  # no prefix match on try numbers
