"""SQLite faults: a read-only database and a full disk each end with one line, exit 5, nothing half-written.

The fault is made in a process of its own (spawned), which runs the CLI in-process:

- As root, that process first takes a mount namespace of its own, so the read-only
  bind mount or the 2 MiB tmpfs it mounts is seen by nobody else and vanishes with
  it, even if the test run is killed. (chmod would not do: root ignores permissions.)
- Otherwise the folder is made read-only with chmod, and the full disk is imitated by
  limiting the size of the files the process may write (RLIMIT_FSIZE). SQLite's
  ``max_page_count`` would not do: a row that fits in a page the file already has
  needs no new page.
"""

from __future__ import annotations

import ctypes
import errno
import io
import multiprocessing
import os
import resource
import shutil
import sqlite3
import subprocess
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DECIDE_APPROACH, Cli, assert_one_clear_line
from tests.log_checks import check_store
from workflows.cli import main
from workflows.database import make_engine

CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
DECIDED_AT = "2019-07-26T15:00"
TIMEOUT = 120.0


def _private_mounts() -> bool:
    """As root, give this process a mount namespace of its own: its mounts vanish with it."""
    if os.geteuid() != 0:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    # Without this, mounts made here could still propagate back to the shared namespace.
    return bool(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0)


def _mount(*argv: str) -> bool:
    return subprocess.run(["mount", *argv], capture_output=True).returncode == 0


def _govflow(db: Path, *args: str) -> tuple[int, str, str]:
    """Run one command in this process; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(["--db", f"sqlite:///{db}", "--now", DECIDED_AT, *args])
        except SystemExit as stop:
            code = int(stop.code or 0)
    return code, out.getvalue(), err.getvalue()


def _in_own_process(scenario: Any, *args: Any) -> Any:
    """Run ``scenario(*args)`` in a fresh, single-threaded process (unshare needs one)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(scenario, *args).result(TIMEOUT)


def _started(folder: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A SQLite database in ``folder`` holding the LIS, started under the key ``start``."""
    cli = Cli(folder.parent, f"sqlite:///{folder / 'govflow.db'}", capsys)
    assert cli("init").code == 0
    assert cli("start", "selep-lis-2019", "--instance", "selep-lis", "--key", "start", now="2019-06-03T09:00").code == 0
    return folder / "govflow.db"


# -- read-only ----------------------------------------------------------------------------------


def read_only_scenario(folder: str) -> dict[str, Any]:
    """Make ``folder`` read-only, then try to write and to read."""
    if _private_mounts():
        if not (_mount("--bind", folder, folder) and _mount("-o", "remount,bind,ro", folder)):
            return {"skip": "cannot bind-mount a folder read-only in a mount namespace of our own"}
    elif os.geteuid() == 0:
        return {"skip": "running as root without a mount namespace of our own, and chmod does not stop root"}
    else:
        for path in Path(folder).iterdir():
            path.chmod(0o444)
        Path(folder).chmod(0o555)  # the test gives the permissions back
    db = Path(folder) / "govflow.db"
    return {"results": [_govflow(db, *DECIDE_APPROACH, "--key", "approach"), _govflow(db, "history", "selep-lis")]}


def test_a_read_only_sqlite_database_ends_with_one_line_and_changes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = workdir / "data"
    folder.mkdir()
    database = _started(folder, capsys)
    before = database.read_bytes()

    try:
        outcome = _in_own_process(read_only_scenario, str(folder))
    finally:
        folder.chmod(0o755)
        for path in folder.iterdir():
            path.chmod(0o644)

    if "skip" in outcome:
        pytest.skip(outcome["skip"])
    for code, _, err in outcome["results"]:
        assert code == 5
        assert_one_clear_line(err)
        assert str(database) in err and "unable to open database file" in err
    assert database.read_bytes() == before


# -- full disk ----------------------------------------------------------------------------------


def _fill(folder: Path) -> Path:
    """Write a file until the disk is full; return it (delete it to free the space)."""
    filler = folder / "filler"
    # Unbuffered: a buffered file would fail once more, when closed, with what it still holds.
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
    return filler


def _no_room_to_grow() -> None:
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG instead of killing us.
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


def _lift_the_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def full_disk_scenario(folder: str) -> dict[str, Any]:
    """Decide on a full disk, free the space, send the same keyed command again.

    Returns both results, how the disk was filled, and where the database ended up
    (a tmpfs vanishes with this process, so its database is copied out first).
    """
    home = Path(folder)
    small = home / "small"
    small.mkdir()
    on_tmpfs = _private_mounts() and _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small))
    if on_tmpfs:
        shutil.copy(home / "govflow.db", small / "govflow.db")
    db = small / "govflow.db" if on_tmpfs else home / "govflow.db"
    # Hold the file open with an empty WAL: the command's reads then work and only its
    # write needs new space, so the failure comes in the middle of the append.
    holder = sqlite3.connect(db)
    try:
        holder.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if on_tmpfs:
            filler = _fill(small)
            failed = _govflow(db, *DECIDE_APPROACH, "--key", "approach")
            filler.unlink()
        else:
            _no_room_to_grow()
            failed = _govflow(db, *DECIDE_APPROACH, "--key", "approach")
            _lift_the_limit()
        retried = _govflow(db, *DECIDE_APPROACH, "--key", "approach", "--json")
    finally:
        holder.close()
    if on_tmpfs:
        shutil.copy(db, home / "after.db")
        db = home / "after.db"
    return {"disk": "tmpfs" if on_tmpfs else "file size limit", "failed": failed, "retried": retried, "db": str(db)}


def test_a_full_disk_ends_with_one_line_and_a_keyed_retry_records_once(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = workdir / "data"
    folder.mkdir()
    _started(folder, capsys)

    outcome = _in_own_process(full_disk_scenario, str(folder))

    code, _, err = outcome["failed"]
    assert code == 5, err
    assert_one_clear_line(err)
    if outcome["disk"] == "tmpfs":
        assert "database or disk is full; free some disk space" in err
    else:
        assert "disk I/O error" in err
    code, out, err = outcome["retried"]
    assert code == 0, err
    assert '"replayed": false' in out, "the failed attempt must not have been recorded"
    with closing(sqlite3.connect(outcome["db"])) as checking:
        assert checking.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    engine = make_engine(f"sqlite:///{outcome['db']}")
    try:
        streams, commands = check_store(engine)
    finally:
        engine.dispose()
    assert set(commands) == {"start", "approach"}
    assert sum(1 for e in streams["selep-lis"] if e.type == "DecisionRecorded") == 1
