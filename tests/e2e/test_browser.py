"""A real browser: headless Chromium, driven by Playwright, reads a task's log in the Airflow UI."""

from __future__ import annotations

import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import PASSWORD, USER, Stack
from tests.e2e.test_logs import log_with

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium package (make browser)")
    return path


@pytest.fixture
def page(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            yield pg
        finally:
            # Keep a picture of the last screen for whoever reads a failure.
            pg.screenshot(path=str(Path(request.config.rootpath) / ".pytest-browser-last.png"))
            browser.close()


def test_log_in_and_read_a_finished_tasks_log(stack: Stack, page: Any) -> None:
    run_id = stack.trigger("smoke")
    assert stack.wait_run("smoke", run_id) == "success"
    log_with(stack, "smoke", run_id, "hello", 1, "hello from an ECS task run by EcsExecutor")  # all in CloudWatch

    page.goto(stack.api_url + "/")
    page.get_by_label("Username").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)

    run = urllib.parse.quote(run_id, safe="")
    page.goto(f"{stack.api_url}/dags/smoke/runs/{run}/tasks/hello")
    page.get_by_text("Log message source details").first.wait_for(timeout=60_000)
    # Airflow 3.3 folds the runner's output into groups ("Post Execute"); 3.1 shows it flat.
    groups = page.get_by_text("Post Execute")
    if groups.count():
        groups.first.click()
    page.get_by_text("hello from an ECS task run by EcsExecutor").first.wait_for(timeout=30_000)
    # The source details name the ECS task and the CloudWatch stream the lines came from.
    page.get_by_text("Log message source details").first.click()
    page.get_by_text("CloudWatch Logs /ecs/airflow", exact=False).first.wait_for(timeout=30_000)
