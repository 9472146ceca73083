"""Engines and migrations for the event store: SQLite by default, PostgreSQL for shared use.

SQLite is made safe for several writer processes the only way that loses nothing:
WAL, a ``busy_timeout``, and write transactions that start with ``BEGIN IMMEDIATE``
(the write lock is taken up front, so a read-then-write transaction cannot be
overtaken between its read and its write). pysqlite's own transaction handling is
switched off and this module emits ``BEGIN`` itself. Read transactions use a plain
``BEGIN``, because an idle ``BEGIN IMMEDIATE`` would block every other writer.

Use :func:`write_transaction` for anything that writes and :func:`read_connection`
for reads; both work unchanged on PostgreSQL. The event store's append, the hottest
write, runs in a :class:`DriverWriter` transaction on the driver's own cursor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final, NamedTuple, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool

from workflows.errors import StoreError

MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS: Final = 10_000
# Execution option read by the SQLite ``begin`` hook; ignored by other databases.
_BEGIN_OPTION: Final = "govflow_sqlite_begin"
# Any constant: serialises concurrent ``migrate`` calls on one PostgreSQL database.
_MIGRATION_LOCK_ID: Final = 0x60F10
# libpq's sslmode values, weakest first (the order decides which of two settings is stricter).
SSL_MODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Shown in pg_stat_activity, so that a DBA can tell govflow's connections apart.
APPLICATION_NAME: Final = "govflow"

_T = TypeVar("_T")


def make_engine(
    url: str,
    *,
    pool_size: int | None = None,
    statement_timeout_ms: int | None = None,
    sslmode: str | None = None,
    sslrootcert: str | None = None,
    connect_timeout_seconds: int | None = None,
) -> Engine:
    """An engine for ``sqlite:///PATH`` or ``postgresql+psycopg://…``; connects lazily.

    The settings after ``pool_size`` apply to PostgreSQL only (see :func:`postgresql_connect_args`).
    Raises :class:`StoreError` for a URL that is malformed or names another database.
    """
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, pool_size)
    if backend == "postgresql":
        connect_args = postgresql_connect_args(
            parsed,
            statement_timeout_ms=statement_timeout_ms,
            sslmode=sslmode,
            sslrootcert=sslrootcert,
            connect_timeout_seconds=connect_timeout_seconds,
        )
        return _postgresql_engine(parsed, pool_size, connect_args)
    raise StoreError(f"unsupported database {safe_url(parsed)}: use sqlite:///PATH or postgresql+psycopg://HOST/NAME")


def postgresql_connect_args(
    url: URL,
    *,
    statement_timeout_ms: int | None = None,
    sslmode: str | None = None,
    sslrootcert: str | None = None,
    connect_timeout_seconds: int | None = None,
) -> dict[str, Any]:
    """The libpq parameters govflow adds to those of a PostgreSQL URL.

    A parameter written in the URL wins, except ``sslmode``: there the stricter of the
    URL's and the configured one applies, so that a configured default never weakens a
    URL's ``sslmode=require`` and a configured ``verify-full`` is never undone by a URL.
    ``0`` or None leaves a setting to libpq (for ``connect_timeout``: wait forever).
    """
    query = url.query
    args: dict[str, Any] = {}
    if "application_name" not in query:
        args["application_name"] = APPLICATION_NAME
    if connect_timeout_seconds and "connect_timeout" not in query:
        args["connect_timeout"] = int(connect_timeout_seconds)
    if sslrootcert and "sslrootcert" not in query:
        args["sslrootcert"] = sslrootcert
    if sslmode:
        if sslmode not in SSL_MODES:
            raise ValueError(f"sslmode must be one of {', '.join(SSL_MODES)}, not '{sslmode}'")
        in_url = str(query.get("sslmode") or "")
        if in_url in SSL_MODES:
            args["sslmode"] = max(in_url, sslmode, key=SSL_MODES.index)
        elif not in_url:
            args["sslmode"] = sslmode
        # else: an unknown mode in the URL goes to libpq untouched, and libpq names it in its error.
    if statement_timeout_ms:
        # Keep any server options the URL already carries (e.g. a search_path).
        server_options = [query.get("options"), f"-c statement_timeout={int(statement_timeout_ms)}"]
        args["options"] = " ".join(str(o) for o in server_options if o)
    return args


def safe_url(url: URL | Engine | str) -> str:
    """The URL as text with any password masked, fit for messages and logs.

    Masks the password of the URL's user part and any ``…password=`` query parameter
    (libpq also accepts ``?password=`` and ``?sslpassword=``).
    """
    if isinstance(url, Engine):
        url = url.url
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return "<malformed database URL>"
    secret = [key for key in url.query if "password" in key.lower()]
    if secret:
        url = url.update_query_dict(dict.fromkeys(secret, "***"))
    return url.render_as_string(hide_password=True)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a write transaction, committed on success, rolled back on error.

    On SQLite it starts with ``BEGIN IMMEDIATE``: it waits (up to the busy timeout) for
    other writers instead of failing later with "database is locked".
    """
    with engine.connect() as connection:
        connection.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        with connection.begin():
            yield connection


class DriverWriter:
    """Write transactions on the driver's own cursor, for the event store's append.

    The same transaction as :func:`write_transaction` (``BEGIN IMMEDIATE`` on SQLite;
    psycopg begins implicitly), without SQLAlchemy's ``Connection`` and, most of the
    time, without a pool checkout: one connection from the engine's pool is kept for
    appends. SQLAlchemy's per-transaction and per-statement bookkeeping, and the pool's
    checkout and reset, cost more than SQLite spends running an append. An append that
    finds the kept connection busy (another thread is appending) checks one out of the
    pool as usual, so threads never wait for each other here and at most one connection
    is held beyond the pool's own accounting.

    A connection an error left unusable (server restarted, connection lost) is dropped
    from the pool; :meth:`run` reports whether the failed attempt may simply be
    retried. The kept connection is closed when the engine is disposed.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._kept_lock = threading.Lock()  # held while a transaction uses the kept connection
        self._kept: _Held | None = None
        event.listen(engine, "engine_disposed", self._on_dispose)

    def run(self, work: Callable[[Any], _T]) -> _T:
        """``work(cursor)`` on a driver cursor inside a write transaction: committed when it
        returns (its answer is returned), rolled back when it raises.

        Statements use the driver's parameter style; driver errors propagate unwrapped,
        except a :class:`StaleConnection`: the kept connection, idle since an earlier
        transaction, turned out dead before anything was committed, so the caller may run
        the transaction again (the next attempt takes a fresh connection). A call, not a
        context manager: it is on the path of every append, and a generator-based context
        manager costs more than the Python of the statements it wraps.
        """
        kept = self._kept_lock.acquire(blocking=False)
        reused = kept and self._kept is not None
        try:
            pooled, driver, cursor = self._kept_connection() if kept else _held(self._engine.raw_connection())
            committing = False
            try:
                if self._sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                done = work(cursor)
                committing = True
                driver.commit()
                return done
            except BaseException as error:
                if not self._usable(driver):
                    self._drop(pooled, kept)
                    if reused and not committing and isinstance(error, self._engine.dialect.loaded_dbapi.Error):
                        # Nothing was committed: the server ends an open transaction with its connection.
                        raise StaleConnection(str(error)) from error
                else:
                    self._roll_back(pooled, driver, kept)
                raise
            finally:
                if not kept:
                    pooled.close()
        finally:
            if kept:
                self._kept_lock.release()

    def run_alone(self, sql: str, params: Sequence[Any]) -> bool:
        """PostgreSQL: run one statement as a transaction of its own (autocommit), on the kept connection.

        One round trip, where :meth:`run` takes one each for ``BEGIN``, every
        statement and ``COMMIT``. False when the kept connection is in use by another
        thread (nothing ran). Raises the driver's errors; a connection an error left
        unusable is dropped first. Such an error can come after the server committed, so
        the caller must find out whether the statement took effect.
        """
        if not self._kept_lock.acquire(blocking=False):
            return False
        try:
            pooled, driver, _ = self._kept_connection()
            try:
                driver.autocommit = True
                try:
                    driver.execute(sql, params)
                finally:
                    if self._usable(driver):
                        driver.autocommit = False
            except BaseException:
                if not self._usable(driver):
                    self._drop(pooled, kept=True)
                raise
            return True
        finally:
            self._kept_lock.release()

    def _kept_connection(self) -> _Held:
        """The connection kept for appends, made on first use (the caller holds ``_kept_lock``)."""
        if self._kept is None:
            self._kept = _held(self._engine.raw_connection())
        return self._kept

    def _drop(self, pooled: Any, kept: bool) -> None:
        if kept:
            self._kept = None
        with suppress(Exception):  # gone already
            pooled.invalidate()

    def _roll_back(self, pooled: Any, driver: Any, kept: bool) -> None:
        try:
            driver.rollback()
        except Exception:  # the first error is the one to report
            self._drop(pooled, kept)

    @staticmethod
    def _usable(driver: Any) -> bool:
        return not (getattr(driver, "broken", False) or getattr(driver, "closed", False))

    def _on_dispose(self, _engine: Engine) -> None:
        # The engine has replaced its pool already: close the connection, not check it in.
        kept, self._kept = self._kept, None
        if kept is not None:
            with suppress(Exception):  # gone already
                kept.pooled.invalidate()


class _Held(NamedTuple):
    """A pooled connection, its driver connection and a cursor on it, kept together: an
    append then makes neither the cursor nor SQLAlchemy's lookup of the driver again."""

    pooled: Any
    driver: Any
    cursor: Any


def _held(pooled: Any) -> _Held:
    driver = pooled.driver_connection
    return _Held(pooled, driver, driver.cursor())


class StaleConnection(Exception):
    """A held connection was found dead before the transaction committed: retry it."""


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for reads: one (deferred) transaction, rolled back when done."""
    with engine.connect() as connection:
        yield connection


def store_error(engine: Engine | URL, error: DBAPIError, doing: str) -> StoreError:
    """Translate a driver error into a one-line :class:`StoreError` (no SQL, no password)."""
    reason = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else type(error.orig).__name__
    url = engine.url if isinstance(engine, Engine) else engine
    for secret in (url.password, *(v for k, v in url.query.items() if "password" in k.lower())):
        # libpq does not echo passwords, but a message must not depend on that.
        if secret and isinstance(secret, str):
            reason = reason.replace(secret, "***")
    lowered = reason.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        hint = "; check the user name and password"
    elif "ssl" in lowered:
        hint = "; check database.sslmode and database.sslrootcert"
    elif any(lost in lowered for lost in _CONNECTION_LOST):
        # The commit may or may not have reached the server: only a keyed retry is safe.
        hint = "; the connection was lost (did the server restart?): retry with the same --key"
    elif any(down in lowered for down in _CANNOT_CONNECT):
        hint = "; is the server running and reachable?"
    elif "locked" in lowered or "busy" in lowered:
        hint = "; another process holds it, retry"
    elif "readonly" in lowered or "read-only" in lowered:
        hint = "; check the file's permissions"
    elif "disk" in lowered and "full" in lowered:
        hint = "; free some disk space"
    elif "disk i/o error" in lowered:
        hint = "; is the disk full, read-only or failing?"
    elif "unable to open database file" in lowered:
        # WAL mode: even a reader creates the -wal and -shm files beside the database.
        hint = "; check that its folder exists and is writable"
    elif "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        hint = "; is the database migrated?"
    else:
        hint = ""
    return StoreError(f"cannot {doing} in database {safe_url(engine)}: {reason}{hint}")


# Driver messages (first lines, lower case) of a connection that was never made, or was lost.
_CANNOT_CONNECT: Final = ("connection refused", "could not connect", "connection failed", "timeout expired")
_CONNECTION_LOST: Final = (
    "terminating connection",
    "server closed the connection",
    "consuming input failed",
    "connection is lost",
    "the connection is closed",
    "server conn crashed",
)


def migrate(url_or_engine: str | Engine) -> str | None:
    """Bring the database to the newest schema (``alembic upgrade head``); a no-op when current.

    Returns the revision the database is now at. Safe to run from several processes at
    once: the upgrade runs in one transaction that holds the write lock (SQLite) or an
    advisory lock (PostgreSQL). For a SQLite file, its folder is created.
    """
    return _run_alembic(url_or_engine, "upgrade", "head")


def downgrade(url_or_engine: str | Engine, revision: str = "base") -> str | None:
    """Take the schema back to ``revision`` (``base``: no tables); returns the revision now current."""
    return _run_alembic(url_or_engine, "downgrade", revision)


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    try:
        with read_connection(engine) as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as error:
        raise store_error(engine, error, "read the schema revision") from error


def head_revision() -> str:
    """The newest revision this code knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:
        raise StoreError(f"no migrations found in {MIGRATIONS}")
    return head


def _run_alembic(url_or_engine: str | Engine, action: str, revision: str) -> str | None:
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.util import CommandError

    owned = isinstance(url_or_engine, str)
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    _create_sqlite_folder(engine.url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with write_transaction(engine) as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            config.attributes["connection"] = connection
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as error:
        raise store_error(engine, error, f"migrate ({action} to {revision})") from error
    except CommandError as error:
        # E.g. the database was migrated by a newer govflow whose revision this code lacks.
        raise StoreError(f"cannot migrate database {safe_url(engine)}: {error}") from error
    finally:
        if owned:
            engine.dispose()


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise StoreError("malformed database URL: expected sqlite:///PATH or postgresql+psycopg://…") from None


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _create_sqlite_folder(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and not _is_memory(url) and url.database:
        folder = Path(url.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create the folder {folder} for the database: {error.strerror}") from None


def _sqlite_engine(url: URL, pool_size: int | None) -> Engine:
    options: dict[str, Any] = {}
    if _is_memory(url):
        # One shared connection, or every checkout would see its own empty database.
        options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif pool_size is not None:
        options["pool_size"] = pool_size
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite (it would BEGIN lazily, and only
        # before DML); the ``begin`` hook below emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL itself needs a moment of exclusive access.
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            # A new database gets 2 KiB pages (an existing one keeps its own): a durable commit
            # writes each page it touched to the WAL, and an append touches about five, each
            # holding a few of the log's rows. Measured: decisions 3% faster on disk than with
            # the default 4 KiB (1 KiB pages cost more CPU than they save in writes).
            cursor.execute("PRAGMA page_size=2048")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))

    return engine


def _postgresql_engine(url: URL, pool_size: int | None, connect_args: dict[str, Any]) -> Engine:
    # pre_ping: a connection the server dropped (restart, failover) is replaced at checkout
    # instead of failing the next command.
    options: dict[str, Any] = {"pool_pre_ping": True, "connect_args": connect_args}
    if pool_size is not None:
        options["pool_size"] = pool_size
    try:
        return create_engine(url, **options)
    except ModuleNotFoundError as error:
        raise StoreError(f"cannot use {safe_url(url)}: the driver is not installed ({error.name})") from None
