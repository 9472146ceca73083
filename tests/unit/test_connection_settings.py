"""Connection settings for shared use: what govflow adds to a PostgreSQL URL, and how secrets are hidden."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError

from workflows import config, database
from workflows.config import load_settings
from workflows.database import postgresql_connect_args, safe_url, store_error
from workflows.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
URL = "postgresql+psycopg://secretary:s3cret@db.example:5432/govflow"


def connect_args(url: str = URL, **settings: object) -> dict[str, object]:
    return postgresql_connect_args(make_url(url), **settings)  # type: ignore[arg-type]


def test_the_configured_settings_become_libpq_parameters() -> None:
    args = connect_args(sslmode="verify-full", sslrootcert="/etc/govflow/ca.pem", connect_timeout_seconds=7)

    assert args == {
        "application_name": "govflow",
        "sslmode": "verify-full",
        "sslrootcert": "/etc/govflow/ca.pem",
        "connect_timeout": 7,
    }


def test_zero_leaves_timeouts_to_libpq() -> None:
    assert connect_args(connect_timeout_seconds=0, statement_timeout_ms=0) == {"application_name": "govflow"}


def test_parameters_written_in_the_url_win() -> None:
    url = f"{URL}?connect_timeout=3&application_name=board-office&sslrootcert=/ca.pem"

    args = connect_args(url, connect_timeout_seconds=7, sslrootcert="/etc/govflow/ca.pem")

    assert args == {}  # SQLAlchemy passes the URL's own query parameters to libpq


@pytest.mark.parametrize(
    ("in_url", "configured", "used"),
    [
        (None, "prefer", "prefer"),
        ("require", "prefer", "require"),  # a configured default never weakens the URL
        ("disable", "verify-full", "verify-full"),  # nor does a URL undo the configured mode
        ("verify-ca", "require", "verify-ca"),
        ("sometimes", "prefer", None),  # left to libpq, which names the bad value
    ],
)
def test_of_two_ssl_modes_the_stricter_applies(in_url: str | None, configured: str, used: str | None) -> None:
    url = f"{URL}?sslmode={in_url}" if in_url else URL

    assert connect_args(url, sslmode=configured).get("sslmode") == used


def test_a_statement_timeout_keeps_the_urls_own_server_options() -> None:
    args = connect_args(f"{URL}?options=-csearch_path%3Dboard", statement_timeout_ms=5000)

    assert args["options"] == "-csearch_path=board -c statement_timeout=5000"


def test_passwords_are_masked_in_the_url_and_in_its_query() -> None:
    shown = safe_url(f"{URL}?sslpassword=key-pass&sslmode=require")

    assert "s3cret" not in shown and "key-pass" not in shown
    assert shown.startswith("postgresql+psycopg://secretary:***@db.example:5432/govflow?")
    assert "sslmode=require" in shown


def test_a_driver_message_that_quotes_the_password_is_masked_too() -> None:
    error = OperationalError("SELECT 1", {}, Exception("FATAL: role rejected with s3cret\nDETAIL: more"))

    message = str(store_error(make_url(URL), error, "list streams"))

    assert "s3cret" not in message and "\n" not in message
    assert message == (
        "cannot list streams in database postgresql+psycopg://secretary:***@db.example:5432/govflow: "
        "FATAL: role rejected with ***"
    )


def test_database_settings_come_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        cwd=tmp_path,
        environ={
            "GOVFLOW_DATABASE_SSLMODE": "verify-full",
            "GOVFLOW_DATABASE_SSLROOTCERT": "ca.pem",
            "GOVFLOW_DATABASE_CONNECT_TIMEOUT_SECONDS": "4",
            "GOVFLOW_DATABASE_POOL_SIZE": "20",
            "GOVFLOW_DATABASE_STATEMENT_TIMEOUT_MS": "30000",
        },
    )

    assert settings.values["database"] | {"url": ""} == {
        "url": "",
        "pool_size": 20,
        "statement_timeout_ms": 30000,
        "connect_timeout_seconds": 4,
        "sslmode": "verify-full",
        "sslrootcert": "ca.pem",
    }


@pytest.mark.parametrize("config_file", [None, str(ROOT / "config.toml")], ids=["built-in", "config.toml"])
def test_the_shipped_defaults_prefer_tls_and_give_up_connecting_after_ten_seconds(
    config_file: str | None, tmp_path: Path
) -> None:
    database_settings = load_settings(config_file, environ={}, cwd=tmp_path).values["database"]

    assert (database_settings["sslmode"], database_settings["connect_timeout_seconds"]) == ("prefer", 10)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GOVFLOW_DATABASE_SSLMODE", "on", "database.sslmode: 'on' is not one of libpq's modes"),
        ("GOVFLOW_DATABASE_CONNECT_TIMEOUT_SECONDS", "-1", "database.connect_timeout_seconds: must not be negative"),
        ("GOVFLOW_DATABASE_CONNECT_TIMEOUT_SECONDS", "soon", "expected a whole number, got 'soon'"),
    ],
)
def test_a_wrong_database_setting_is_named(name: str, value: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ={name: value}, cwd=tmp_path)


def test_configuration_and_engine_agree_on_the_ssl_modes() -> None:
    assert config.SSL_MODES == database.SSL_MODES


@pytest.mark.parametrize(("environ", "expected"), [({}, True), ({"GOVFLOW_SMTP_PIPELINING": "false"}, False)])
def test_smtp_pipelining_is_on_unless_turned_off(environ: dict[str, str], expected: bool, tmp_path: Path) -> None:
    from workflows.worker_cli import smtp_settings

    assert smtp_settings(load_settings(str(ROOT / "config.toml"), environ=environ, cwd=tmp_path)).pipelining is expected
