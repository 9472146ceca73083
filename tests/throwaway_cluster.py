"""A PostgreSQL cluster of a test's own, for tests that stop, restart or reconfigure the server.

The suite's shared server (``GOVFLOW_TEST_POSTGRES_URL``) must never be restarted under
other tests, so a fault test starts its own with ``scripts/pg-cluster`` in a fresh
folder: under ``$GOVFLOW_TEST_CLUSTERS`` when set (``.ci/run`` sets it, and stops what
is left there even if pytest is killed), else under the system's temporary folder.
Without the PostgreSQL binaries the test is skipped, except in CI, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url

ROOT = Path(__file__).resolve().parents[1]
PG_CLUSTER = ROOT / "scripts" / "pg-cluster"
PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
CLUSTERS_ENV = "GOVFLOW_TEST_CLUSTERS"


def _as_postgres(*argv: str) -> list[str]:
    """initdb and postgres refuse to run as root: run the server's tools as its user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


class Cluster:
    """A running throwaway cluster; :meth:`stop` and :meth:`start` keep its port (and so its URLs)."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder = folder
        self.admin_url = url
        self.port = int(make_url(url).port or 5432)

    def _pg_ctl(self, *args: str) -> None:
        command = _as_postgres(str(PGBIN / "pg_ctl"), "-D", str(self.folder / "data"), "-w", "-t", "60", *args)
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=90)

    def stop(self) -> None:
        """Stop the server fast: open sessions are terminated, their transactions rolled back."""
        self._pg_ctl("stop", "-m", "fast")

    def start(self) -> None:
        """Start the server on its old port; a no-op when it is running."""
        running = subprocess.run(
            _as_postgres(str(PGBIN / "pg_ctl"), "-D", str(self.folder / "data"), "status"), capture_output=True
        )
        if running.returncode != 0:
            self._pg_ctl("start", "-l", str(self.folder / "log"), "-o", f"-p {self.port}")

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast", "-l", str(self.folder / "log"), "-o", f"-p {self.port}")

    def sql(self, *statements: str) -> None:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                for statement in statements:
                    connection.exec_driver_sql(statement)
        finally:
            engine.dispose()

    def new_database(self, *, user: str = "postgres", password: str | None = None) -> str:
        """An empty database of its own; its URL, with ``user`` and ``password`` in it."""
        name = f"govflow_{uuid.uuid4().hex[:12]}"
        self.sql(f'CREATE DATABASE "{name}" OWNER "{user}"')
        url = make_url(self.admin_url).set(database=name, username=user, password=password)
        return url.render_as_string(hide_password=False)

    def add_login(self, user: str, password: str) -> None:
        """A role that must give its password (SCRAM), whereas every other role is trusted."""
        self.sql(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
        hba = self.folder / "data" / "pg_hba.conf"
        rules = hba.read_text(encoding="utf-8")
        # The first matching line wins: put the password rule before initdb's "trust" lines.
        hba.write_text(f"host all {user} 127.0.0.1/32 scram-sha-256\n{rules}", encoding="utf-8")
        self._pg_ctl("reload")


def start_cluster() -> Cluster:
    """Start a throwaway cluster (see the module docstring); skip or fail without PostgreSQL."""
    if not (PGBIN / "pg_ctl").is_file():
        message = f"no PostgreSQL server binaries in {PGBIN} (set PGBIN)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    base = os.environ.get(CLUSTERS_ENV) or None
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="govflow-test-pg-", dir=base))
    started = subprocess.run([str(PG_CLUSTER), "start", str(folder)], capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"could not start a throwaway PostgreSQL cluster: {started.stderr.strip()}")
    return Cluster(folder, started.stdout.strip())


def discard_cluster(cluster: Cluster) -> None:
    subprocess.run([str(PG_CLUSTER), "stop", str(cluster.folder)], capture_output=True, timeout=120)
    shutil.rmtree(cluster.folder, ignore_errors=True)
