"""Generate ``docs/configuration.md`` from the configuration model, so the two cannot drift.

``python -m airflow_ecs_executor.docs`` rewrites the file; a test fails when it is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow_ecs_executor.config import SECTION
from airflow_ecs_executor.provider import config_options

TARGET = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def render() -> str:
    """The Markdown reference of every ``[ecs_executor]`` option."""
    lines = [
        "# Configuration reference",
        "",
        f"Every option of the `[{SECTION}]` section of `airflow.cfg`. Each may also be set as an environment",
        f"variable `AIRFLOW__{SECTION.upper()}__<OPTION>`. This page is generated from the configuration model",
        "(`python -m airflow_ecs_executor.docs`); a test fails when it is out of date.",
        "",
        "Values parse as a person expects: `true`/`false`/`on`/`off` for booleans, `a, b` or a JSON list for",
        "lists, JSON for structured options. A bad value stops the scheduler at start with every problem listed.",
        "Names stay text: `cluster = 1` is the cluster named `1`.",
        "",
        "Airflow keeps everything after `=` on a line, a trailing `# comment` included: put comments on a line",
        "of their own (`endpoint_url` refuses a value with one). On Airflow 3.3,",
        f"`airflow config list --section {SECTION} --show-values --include-descriptions` shows the values in effect",
        "(without `--show-values` they print empty).",
        "",
        "| option | type | default | description |",
        "|---|---|---|---|",
    ]
    for name, option in config_options().items():
        default = option["default"]
        shown = f"`{default}`" if default not in (None, "") else "(required)" if name in _REQUIRED else "(unset)"
        lines.append(f"| `{name}` | {option['type']} | {shown} | {option['description']} |")
    return "\n".join(lines) + "\n"


_REQUIRED = frozenset({"cluster", "task_definition", "container_name"})


def main() -> int:
    """Write the reference page."""
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(render())
    sys.stdout.write(f"wrote {TARGET}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
