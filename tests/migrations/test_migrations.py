"""Migrations: one head, dated files, models == migrations, and every step undoes cleanly.

Each test builds its schema from nothing in a database of its own (a SQLite file, and a fresh
PostgreSQL database when REGISTRY_TEST_DATABASE_URL is set), exactly as ``make run`` does on a
new machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from registry.app import create_app
from registry.audit.services import GENESIS_CHAIN
from registry.core.db import Base, make_engine
from registry.models import import_all_models
from registry.ops.migrations import MIGRATIONS_DIR, alembic_config
from tests.factories.databases import BACKENDS, empty_database

import_all_models()

FILE_NAME = re.compile(
    r"^(?P<date>\d{8})_(?P<time>\d{4})_(?P<rev>[0-9a-z]+)_(?P<slug>[a-z0-9_]+)\.py$"
)


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database(request.param, tmp_path, "migrations") as url:
        yield url


@pytest.fixture
def engine(fresh_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_url, pool=False)
    yield engine
    engine.dispose()


def config(url: str) -> Config:
    return alembic_config(url)


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config("sqlite://"))


def revisions_in_order() -> list[Script]:
    """Base first, head last."""
    return list(reversed(list(scripts().walk_revisions())))


def schema(connection: Connection) -> dict[str, Any]:
    """Everything a migration can create: tables, columns, keys, indexes, checks, triggers."""
    inspector = inspect(connection)
    tables: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        if table == "alembic_version":  # Alembic's own bookkeeping
            continue
        tables[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "uniques": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "checks": sorted(c["name"] or "" for c in inspector.get_check_constraints(table)),
        }
    return {"tables": tables, "triggers": triggers(connection), "functions": functions(connection)}


def triggers(connection: Connection) -> list[str]:
    if connection.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    return sorted(connection.exec_driver_sql(query).scalars())


def functions(connection: Connection) -> list[str]:
    if connection.dialect.name == "sqlite":
        return []
    return sorted(
        connection.exec_driver_sql(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public'"
        ).scalars()
    )


def model_diff(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


# The scripts ------------------------------------------------------------------------------------


def test_there_is_a_single_head() -> None:
    heads = scripts().get_heads()
    assert len(heads) == 1, f"several heads: {heads}; merge them"


def test_file_names_are_dated_and_sort_in_history_order() -> None:
    files = sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("*.py"))
    assert files, "no migrations"
    by_revision = {}
    for name in files:
        match = FILE_NAME.match(name)
        assert match, f"{name} is not YYYYMMDD_HHMM_<rev>_<slug>.py"
        stamp = datetime.strptime(match["date"] + match["time"], "%Y%m%d%H%M")  # noqa: DTZ007
        by_revision[match["rev"]] = (name, stamp)
    ordered = revisions_in_order()
    assert sorted(by_revision) == sorted(s.revision for s in ordered)
    # A directory listing reads in history order (STYLE.md §9).
    assert [by_revision[s.revision][0] for s in ordered] == files
    for script in ordered:
        name, stamp = by_revision[script.revision]
        assert script.path.endswith(name)
        source = Path(script.path).read_text(encoding="utf-8")
        created = re.search(r"Create Date: (\d{4}-\d\d-\d\d \d\d:\d\d)", source)
        assert created, f"{name} has no Create Date"
        assert datetime.strptime(created[1], "%Y-%m-%d %H:%M") == stamp, name  # noqa: DTZ007


def test_every_revision_has_a_real_downgrade() -> None:
    for script in revisions_in_order():
        source = Path(script.path).read_text(encoding="utf-8")
        body = source.split("def downgrade() -> None:", 1)[1]
        statements = [
            line.strip()
            for line in body.splitlines()
            if line.strip() and not line.strip().startswith(("#", '"""'))
        ]
        assert statements, f"{script.path} has an empty downgrade"
        assert statements != ["pass"], f"{script.path} cannot be undone"


# Against a database ------------------------------------------------------------------------------


def test_upgrade_from_empty_to_head(fresh_url: str, engine: Engine) -> None:
    with engine.connect() as connection:
        assert inspect(connection).get_table_names() == []

    command.upgrade(config(fresh_url), "head")

    assert current(engine) == scripts().get_current_head()
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        assert tables == {*Base.metadata.tables, "alembic_version"}
        head = connection.execute(text("SELECT id, size, chain_hash FROM audit_heads")).all()
        assert [tuple(row) for row in head] == [(1, 0, GENESIS_CHAIN)]
        guards = triggers(connection)
    if engine.dialect.name == "sqlite":
        assert {"audit_events_no_delete", "audit_events_no_update"} <= set(guards)
    else:
        assert {"audit_events_append_only", "audit_events_no_truncate"} <= set(guards)


def test_models_equal_migrations(fresh_url: str, engine: Engine) -> None:
    command.upgrade(config(fresh_url), "head")
    assert model_diff(engine) == []


def test_downgrade_to_base_and_up_again(fresh_url: str, engine: Engine) -> None:
    command.upgrade(config(fresh_url), "head")
    with engine.connect() as connection:
        at_head = schema(connection)

    command.downgrade(config(fresh_url), "base")

    assert current(engine) is None
    with engine.connect() as connection:
        left = schema(connection)
    assert left["tables"] == {}
    with engine.connect() as connection:
        assert inspect(connection).get_table_names() == ["alembic_version"]
    assert left["triggers"] == []
    assert left["functions"] == []

    command.upgrade(config(fresh_url), "head")
    with engine.connect() as connection:
        assert schema(connection) == at_head
    assert model_diff(engine) == []


def test_each_revision_downgrades_to_the_schema_before_it(fresh_url: str, engine: Engine) -> None:
    cfg = config(fresh_url)
    with engine.connect() as connection:
        snapshots = [schema(connection)]  # nothing yet
    ordered = revisions_in_order()
    for script in ordered:
        command.upgrade(cfg, script.revision)
        with engine.connect() as connection:
            snapshots.append(schema(connection))
    for index in range(len(ordered), 0, -1):
        command.downgrade(cfg, "-1")
        with engine.connect() as connection:
            assert schema(connection) == snapshots[index - 1], (
                f"downgrade of {ordered[index - 1].revision} does not undo its upgrade"
            )


def test_operator_commands_and_readiness(fresh_url: str, tmp_path: Path) -> None:
    """``flask db upgrade|current|downgrade`` act on the app's database; /readyz follows."""
    app = create_app(
        {
            "env": "testing",
            "database_url": fresh_url,
            "instance_path": tmp_path / "instance",
            "secret_key": "migrations-secret-" + "x" * 32,
        }
    )
    try:
        runner = app.test_cli_runner()
        client = app.test_client()
        head = scripts().get_current_head()
        assert head

        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        body = not_ready.get_json()
        assert body["checks"]["migrations"] == f"at nothing, head is {head}"

        upgraded = runner.invoke(args=["db", "upgrade"])
        assert upgraded.exit_code == 0, upgraded.output
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.json
        assert ready.json["status"] == "ready"
        assert set(ready.json["checks"].values()) == {"ok"}
        assert {"database", "migrations", "contract_font"} <= ready.json["checks"].keys()
        shown = runner.invoke(args=["db", "current"])
        assert shown.exit_code == 0, shown.output
        assert head in shown.output

        downgraded = runner.invoke(args=["db", "downgrade", "base"])
        assert downgraded.exit_code == 0, downgraded.output
        assert client.get("/readyz").status_code == 503
    finally:
        app.extensions["registry.db"].engine.dispose()
