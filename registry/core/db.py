"""Database plumbing: declarative base, engine set-up for SQLite and PostgreSQL, sessions.

Services receive a :class:`~sqlalchemy.orm.Session` explicitly and never commit; the request
(or CLI command) wrapper commits once (STYLE.md §5). On SQLite every write transaction opens
with ``BEGIN IMMEDIATE`` so a read-then-write can never be overtaken by another writer
(reliability.md §2.2–2.3: the driver's default deferred transactions gave 142 anomalies in 300
trials); reads keep deferred transactions so they never wait for a writer in WAL mode.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any

from sqlalchemy import MetaData, String, event
from sqlalchemy.engine import Engine, create_engine
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool

from registry.core.types import GUID, UTCDateTime

# One naming convention from the first migration (STYLE.md §2): constraint names are stable
# across databases, so migrations can drop and alter them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

WRITE_OPTION = "registry_write"
SQLITE_BUSY_TIMEOUT_MS = 10_000


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        uuid.UUID: GUID(),
        datetime: UTCDateTime(),
    }


uuid_pk = Annotated[uuid.UUID, mapped_column(primary_key=True, default=uuid.uuid4)]
created_dt = Annotated[datetime, mapped_column(nullable=False, comment="when the row was created")]
str_name = Annotated[str, mapped_column(String(300), nullable=False)]
opt_date = Annotated[date | None, mapped_column(nullable=True)]


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            # Binding legal and money records must survive a power loss (reliability.md §2.2).
            "PRAGMA synchronous=FULL",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = "IMMEDIATE" if connection.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, *, pool: bool = True) -> Engine:
    """Create the engine for ``url`` with the per-database settings this service relies on."""
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 10}}
        if not pool:
            kwargs["poolclass"] = NullPool
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs = {"pool_pre_ping": True}
    if not pool:
        kwargs["poolclass"] = NullPool
    return create_engine(url, **kwargs)


class Database:
    """The engine and two session factories: read (deferred) and write (immediate)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.read_sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self.write_sessions = sessionmaker(
            bind=engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self, *, write: bool) -> Session:
        return (self.write_sessions if write else self.read_sessions)()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write session that commits once on success and rolls back on any error (CLI use)."""
        session = self.session(write=True)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
