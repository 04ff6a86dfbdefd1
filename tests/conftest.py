"""Test harness: a real database (SQLite by default, PostgreSQL with
``REGISTRY_TEST_DATABASE_URL``) migrated once with Alembic; each test runs inside a transaction
that is rolled back afterwards, while the code under test commits to savepoints as usual."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from registry.app import create_app
from registry.core.db import WRITE_OPTION, Database, make_engine
from registry.ops.migrations import alembic_config
from tests.factories import Factory

PG_ENV = "REGISTRY_TEST_DATABASE_URL"


def _reset_postgres(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Real argon2id, with the cheapest parameters: production's ~100 ms per hash is the point
    in production and only slowness in a suite that signs in hundreds of times.
    tests/unit/test_passwords.py checks the production parameters separately."""
    from argon2 import PasswordHasher, profiles

    from registry.accounts import passwords

    original = passwords._hasher, passwords._DUMMY_HASH
    passwords._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    passwords._DUMMY_HASH = passwords._hasher.hash("timing-equaliser-not-a-password")
    yield
    passwords._hasher, passwords._DUMMY_HASH = original


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get(PG_ENV)
    if url:
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'registry.db'}"


def migrate_fresh(url: str) -> Engine:
    """An engine on an empty database brought to the head revision by Alembic."""
    engine = make_engine(url, pool=False)
    if engine.dialect.name == "postgresql":
        _reset_postgres(engine)
    command.upgrade(alembic_config(url), "head")
    return engine


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = migrate_fresh(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


class TransactionalDatabase(Database):
    """Hands out sessions joined to one outer connection whose transaction the test rolls
    back; ``commit()`` in the code under test releases a savepoint instead."""

    def __init__(self, engine: Engine, connection: Connection) -> None:
        super().__init__(engine)
        self.connection = connection

    def session(self, *, write: bool) -> Session:
        return Session(
            bind=self.connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        session = self.session(write=True)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


@pytest.fixture(scope="session")
def app(engine: Engine, database_url: str, instance_path: Path) -> Flask:
    return create_app(
        {
            "env": "testing",
            "database_url": database_url,
            "instance_path": instance_path,
            "secret_key": "test-secret-" + "x" * 32,
            # The suite signs in hundreds of times from one address; tests/api/test_rate_limits.py
            # proves the limits on apps of its own.
            "ratelimit_tokens": "100000/minute",
            "ratelimit_tokens_per_account": "100000/minute",
            "ratelimit_verify": "100000/minute",
        },
        database=Database(engine),
    )


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    connection = engine.connect().execution_options(**{WRITE_OPTION: True})
    transaction = connection.begin()
    yield connection
    transaction.rollback()
    connection.close()


@pytest.fixture
def db(app: Flask, engine: Engine, connection: Connection) -> Iterator[TransactionalDatabase]:
    """The app's database for this test: everything it writes is rolled back afterwards."""
    original = app.extensions["registry.db"]
    database = TransactionalDatabase(engine, connection)
    app.extensions["registry.db"] = database
    yield database
    app.extensions["registry.db"] = original


@pytest.fixture
def session(db: TransactionalDatabase) -> Iterator[Session]:
    session = db.session(write=True)
    yield session
    session.close()


@pytest.fixture
def client(app: Flask, db: TransactionalDatabase) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def factory(session: Session, app: Flask) -> Factory:
    return Factory(session, app)


class Api:
    """A bearer-token client: ``api.get("/patents")`` → ``/api/v1/patents``."""

    def __init__(self, client: FlaskClient, token: str | None = None) -> None:
        self.client = client
        self.token = token

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        url = path if path.startswith(("/api/", "/healthz", "/readyz")) else "/api/v1" + path
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self._call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self._call("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self._call("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self._call("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self._call("DELETE", path, **kwargs)

    def as_(self, token: str | None) -> Api:
        return Api(self.client, token)


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)


def new_id() -> uuid.UUID:
    return uuid.uuid4()
