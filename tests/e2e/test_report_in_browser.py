"""report.html in a real browser: headless Chromium (Debian's) draws the timeline, without errors.

Needs ``chromium`` and ``chromedriver`` (Debian packages; ``.ci/run`` installs them).
Without them the test is skipped on a developer machine and fails in CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflows.cli import main

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        reason = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    assert main(["demo", "--out", str(out), "--fast"]) == 0
    return out / "report.html"


def test_the_timeline_draws_one_row_with_a_bar_per_phase_and_no_console_error(browser: Any, report: Path) -> None:
    browser.get(report.as_uri())
    rows = browser.execute_script(
        """
        return Array.from(document.querySelectorAll('svg#timeline g.phase')).map(g => ({
            phase: g.dataset.phase,
            planned: Array.from(g.querySelectorAll('rect.planned')).map(r => r.getBBox().width),
            actual: Array.from(g.querySelectorAll('rect.actual')).map(r => r.getBBox().width),
        }));
        """
    )
    assert [row["phase"] for row in rows] == [
        "scoping", "evidence", "drafting", "sign-off", "co-design", "negotiation", "agreed",
    ]  # fmt: skip
    for row in rows[:-1]:  # every phase but the terminal one has a planned window and was entered
        assert row["planned"] and all(width > 0 for width in row["planned"]), row
        assert row["actual"] and all(width > 0 for width in row["actual"]), row
    size = browser.execute_script(
        "const b = document.querySelector('svg#timeline').getBoundingClientRect(); return [b.width, b.height];"
    )
    assert size[0] > 600 and size[1] > 150
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
