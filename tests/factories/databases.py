"""Empty databases of our own, for tests that need committed data or a schema from nothing.

SQLite: a file in the test's temp folder. PostgreSQL (only when REGISTRY_TEST_DATABASE_URL is
set): a new database ``registry_<purpose>_<random>`` created through the server's ``postgres``
database and dropped, with any sessions still on it, when the test ends. The shared test
database is never touched.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ENV = "REGISTRY_TEST_DATABASE_URL"
BACKENDS = ["sqlite", *(["postgresql"] if os.environ.get(PG_ENV) else [])]


@contextmanager
def empty_database(backend: str, folder: Path, purpose: str) -> Iterator[str]:
    """The URL of an empty database on ``backend`` ("sqlite" or "postgresql")."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'{purpose}.db'}"
        return
    base = make_url(os.environ[PG_ENV].replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"registry_{purpose}_{secrets.token_hex(6)}"
    server = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()
