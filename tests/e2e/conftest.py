"""Drive the ``govflow`` CLI as a user would: a simulated clock, on each database.

The ``cli`` fixture is parametrised over a SQLite file and a fresh PostgreSQL schema
(see ``postgres_url`` in ``tests/conftest.py``), so every end-to-end test runs on both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workflows.cli import main

# The first decision of the LIS walk: the chief executive's, under delegated authority.
DECIDE_APPROACH = (
    "decide", "selep-lis", "--gate", "approach-agreed", "--board", "secretariat", "--outcome", "approved",
    "--date", "2019-07-26", "--mode", "delegated", "--authority", "SB/2019/06/3",
)  # fmt: skip


def assert_one_clear_line(message: str, *secrets: str) -> None:
    """A failure a user can read: one line, no traceback, none of ``secrets``."""
    assert message.count("\n") <= 1 and message.strip(), message
    assert "Traceback" not in message, message
    assert not [secret for secret in secrets if secret in message], message


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """Runs ``govflow`` in-process (fast) or as a real process (``spawn``)."""

    def __init__(self, folder: Path, db: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.folder = folder
        self.db = db
        self._capsys = capsys

    def __call__(self, *args: str, now: str | None = None) -> Result:
        argv = ["--db", self.db, *args]
        if now:
            argv = ["--now", now, *argv]
        self._capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse usage errors
            code = int(stop.code or 0)
        captured = self._capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def spawn(self, *args: str, now: str | None = None) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "workflows.cli", "--db", self.db, *args]
        if now:
            argv[3:3] = ["--now", now]
        return subprocess.Popen(argv, cwd=self.folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder, and no ``GOVFLOW_*`` settings from the environment (bar the tests' own)."""
    for name in list(os.environ):
        if name.startswith("GOVFLOW_") and not name.startswith("GOVFLOW_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(params=DATABASES)
def cli(request: pytest.FixtureRequest, workdir: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI on an empty, initialised database: a SQLite file, then a PostgreSQL schema."""
    db: str = request.getfixturevalue(f"{request.param}_url")
    runner = Cli(workdir, db, capsys)
    assert runner("init").code == 0
    return runner


@pytest.fixture
def lis_started(cli: Cli) -> Cli:
    result = cli("start", "selep-lis-2019", "--instance", "selep-lis", now="2019-06-03T09:00")
    assert result.code == 0, result.err
    return cli
