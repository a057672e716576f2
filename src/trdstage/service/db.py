"""Database: the engine (SQLite pragmas for durability), sessions, and the schema check.

SQLite runs in WAL mode with `synchronous=FULL` (every commit is on disk before it returns,
which survives a killed process and an OS crash), foreign keys on, a busy timeout, and
`BEGIN IMMEDIATE` for every transaction (writers queue instead of failing mid-way), queued
on one lock per process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 10_000


class DatabaseBusy(RuntimeError):
    """No write slot within the busy timeout (answered 503 with Retry-After)."""


class SchemaError(RuntimeError):
    """The database schema is not the one this version of trdstage expects."""


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False,
                                              "timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    # One writer at a time inside this process, queued on a lock (fair, no polling) rather
    # than on SQLite's busy handler, which can starve a waiting thread under load. Taken at
    # BEGIN, given back when the connection returns to the pool (after COMMIT or ROLLBACK).
    writer = threading.Lock()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        info = conn.connection.info
        if not info.get("writer"):
            if not writer.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
                raise DatabaseBusy("the database is busy; try again")
            info["writer"] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except Exception:
            info.pop("writer", None)
            writer.release()
            raise

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        if record.info.pop("writer", False):
            writer.release()

    return engine


class Database:
    """The engine and a session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session; the caller commits. Anything uncommitted is rolled back at the end."""
        with self.sessions() as session:
            yield session

    def reachable(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # any failure means "not reachable" for /healthz
            return False
        return True

    def check_schema(self) -> None:
        """Raise SchemaError unless the database is at this version's migration head."""
        current, head, known = schema_state(self.engine)
        if current == head:
            return
        redacted = make_url(self.url).render_as_string(hide_password=True)
        if current is None:
            raise SchemaError(f"the database {redacted} has no trdstage schema (or an older "
                              "one): run `trdstage admin migrate` (with the same --config)")
        if current not in known:
            raise SchemaError(f"the database {redacted} has schema revision {current}, newer "
                              f"than this trdstage knows ({head}): upgrade trdstage")
        raise SchemaError(f"the database {redacted} is at schema revision {current}, this "
                          f"trdstage needs {head}: run `trdstage admin migrate`")

    def dispose(self) -> None:
        self.engine.dispose()


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("trdstage.service")
                                                 / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def schema_state(engine: Engine) -> tuple[str | None, str | None, set[str]]:
    """(current revision in the database, head of the shipped migrations, all known)."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(str(engine.url)))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    known = {rev.revision for rev in script.walk_revisions()}
    return current, script.get_current_head(), known


def migrate(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the database to `revision`; returns (before, after)."""
    from alembic import command

    db = Database(url)
    try:
        before, _, _ = schema_state(db.engine)
        cfg = _alembic_config(url)
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        after, _, _ = schema_state(db.engine)
    finally:
        db.dispose()
    return before, after
