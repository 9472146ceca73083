"""Connection settings reach the server: pool, timeouts, TLS mode; failures are one line, exit 5."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from workflows.bootstrap import Options, build_engine, close_engines
from workflows.cli import main
from workflows.config import load_settings


@pytest.fixture
def no_govflow_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("GOVFLOW_") and not name.startswith("GOVFLOW_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield
    close_engines()


@pytest.mark.postgres
@pytest.mark.usefixtures("no_govflow_environment")
def test_every_connection_carries_the_configured_settings(postgres_url: str, tmp_path: Path) -> None:
    environ = {
        "GOVFLOW_DATABASE_URL": postgres_url,
        "GOVFLOW_DATABASE_POOL_SIZE": "3",
        "GOVFLOW_DATABASE_STATEMENT_TIMEOUT_MS": "1234",
        "GOVFLOW_DATABASE_CONNECT_TIMEOUT_SECONDS": "7",
        "GOVFLOW_DATABASE_SSLMODE": "disable",  # the test server has no TLS
    }
    engine = build_engine(Options(), load_settings(environ=environ, cwd=tmp_path))

    with engine.connect() as connection:
        shown = {
            name: connection.exec_driver_sql(f"SHOW {name}").scalar()
            for name in ("statement_timeout", "application_name", "search_path")
        }
        parameters = connection.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]

    assert shown == {
        "statement_timeout": "1234ms",
        "application_name": "govflow",
        "search_path": postgres_url.rsplit("search_path%3D", 1)[-1],  # the URL's own options survive
    }
    assert (parameters["sslmode"], parameters["connect_timeout"]) == ("disable", "7")
    assert engine.pool.size() == 3  # type: ignore[attr-defined]


@pytest.mark.postgres
@pytest.mark.usefixtures("no_govflow_environment")
@pytest.mark.parametrize(
    ("configured", "in_url"), [("require", ""), ("disable", "&sslmode=require")], ids=["configured", "in-the-url"]
)
def test_a_required_tls_connection_to_a_server_without_tls_fails_with_one_line(
    postgres_url: str, configured: str, in_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOVFLOW_DATABASE_SSLMODE", configured)

    code = main(["--db", postgres_url + in_url, "init"])

    err = capsys.readouterr().err
    assert code == 5
    assert err.count("\n") == 1 and "SSL was required" in err and "check database.sslmode" in err


@pytest.mark.usefixtures("no_govflow_environment")
def test_a_server_that_never_answers_is_given_up_after_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOVFLOW_DATABASE_CONNECT_TIMEOUT_SECONDS", "2")
    with socket.socket() as silent:
        # The kernel completes the TCP handshake from the backlog; nobody ever answers.
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"postgresql+psycopg://secretary:pw-77@127.0.0.1:{silent.getsockname()[1]}/govflow"
        began = time.perf_counter()
        code = main(["--db", url, "list"])
        waited = time.perf_counter() - began

    err = capsys.readouterr().err
    assert code == 5 and waited < 15
    assert err.count("\n") == 1 and "timeout expired" in err and "pw-77" not in err
