"""Configuration: ``config.toml`` with ``GOVFLOW_<SECTION>_<KEY>`` overrides.

Where the file comes from: ``--config FILE``, else ``$GOVFLOW_CONFIG``, else
``config.toml`` in the working folder if there is one, else the built-in defaults
(the same values as the shipped ``config.toml``). A key or value that is wrong
fails at start with a message naming it; nothing is read at import time.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workflows.errors import ConfigError

ENV_PREFIX = "GOVFLOW_"
# libpq's sslmode values (as workflows.database.SSL_MODES; not imported, to keep start-up light).
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# section -> key -> default; the default's type is the key's type.
DEFAULTS: dict[str, dict[str, Any]] = {
    "database": {
        "url": "sqlite:///govflow.db",
        "pool_size": 5,
        "statement_timeout_ms": 0,
        "connect_timeout_seconds": 10,
        "sslmode": "prefer",
        "sslrootcert": "",
    },
    "workflow": {"timezone": "Europe/London", "definitions": []},
    "smtp": {
        "host": "127.0.0.1",
        "port": 8025,
        "from": "govflow@selep.example",
        "username": "",
        "password": "",
        "starttls": False,
        "timeout_seconds": 30,
        "pipelining": True,
    },
    "audit": {"signing_key": "govflow-signing.key"},
    "worker": {
        "send_hour": 9,
        "safety_interval_seconds": 300,
        "retry_attempts": 4,
        "retry_backoff_seconds": 30,
        "batch_size": 200,
    },
}


@dataclass(frozen=True)
class Settings:
    """The validated configuration."""

    values: dict[str, dict[str, Any]]
    source: str
    base_dir: Path = field(default_factory=Path.cwd)

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    @property
    def database_url(self) -> str:
        return str(self.values["database"]["url"])

    @property
    def timezone(self) -> str:
        return str(self.values["workflow"]["timezone"])

    @property
    def definition_dirs(self) -> list[Path]:
        return [(self.base_dir / p) for p in self.values["workflow"]["definitions"]]


def _coerce(name: str, default: Any, value: Any, *, from_env: bool) -> Any:
    """Check ``value`` has the type of ``default``; environment strings are converted."""
    kind = type(default)
    if from_env:
        text = str(value)
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ConfigError(f"{name}: expected true or false, got '{text}'")
        if kind is int:
            try:
                return int(text)
            except ValueError:
                raise ConfigError(f"{name}: expected a whole number, got '{text}'") from None
        if kind is list:
            return [part for part in text.split(os.pathsep) if part]
        return text
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _validate(values: dict[str, dict[str, Any]]) -> None:
    try:
        ZoneInfo(values["workflow"]["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"workflow.timezone: unknown timezone '{values['workflow']['timezone']}'") from None
    for key in ("pool_size", "statement_timeout_ms", "connect_timeout_seconds"):
        if values["database"][key] < 0:
            raise ConfigError(f"database.{key}: must not be negative")
    if values["database"]["sslmode"] not in SSL_MODES:
        raise ConfigError(
            f"database.sslmode: '{values['database']['sslmode']}' is not one of libpq's modes ({', '.join(SSL_MODES)})"
        )
    if not 0 < values["smtp"]["port"] < 65536:
        raise ConfigError(f"smtp.port: {values['smtp']['port']} is not a port number")
    if not values["database"]["url"]:
        raise ConfigError("database.url: must not be empty")


def load_settings(
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Read, override and validate the configuration; raises :class:`ConfigError`."""
    env = os.environ if environ is None else environ
    here = cwd or Path.cwd()
    chosen = config_file or env.get(f"{ENV_PREFIX}CONFIG")
    path: Path | None = Path(chosen) if chosen else (here / "config.toml")
    if chosen is None and path is not None and not path.is_file():
        path = None
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: {error}") from None
    values = {section: dict(keys) for section, keys in DEFAULTS.items()}
    for section, keys in raw.items():
        if section not in DEFAULTS:
            raise ConfigError(f"{path}: unknown section [{section}]")
        if not isinstance(keys, dict):
            raise ConfigError(f"{path}: {section} must be a table")
        for key, value in keys.items():
            if key not in DEFAULTS[section]:
                raise ConfigError(f"{path}: unknown key {section}.{key}")
            values[section][key] = _coerce(f"{section}.{key}", DEFAULTS[section][key], value, from_env=False)
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if section not in DEFAULTS:
            continue  # GOVFLOW_CONFIG and variables of other tools
        if key not in DEFAULTS[section]:
            raise ConfigError(f"{name}: unknown setting {section}.{key}")
        values[section][key] = _coerce(name, DEFAULTS[section][key], value, from_env=True)
    _validate(values)
    base = path.parent if path is not None else here
    return Settings(values=values, source=str(path) if path else "built-in defaults", base_dir=base)
