"""Database-level guards that the ORM alone cannot give.

Append-only tables refuse UPDATE and DELETE in the database itself, so not even a bug or a
stray ``session.delete`` in the application can rewrite history (STYLE.md §4; reliability.md
§0 rule 2). Migrations call these; an operator with DDL rights can still drop the trigger, and
that is what the hash chain is for.
"""

from __future__ import annotations

from alembic.operations import Operations


def create_append_only_guard(op: Operations, table: str) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION registry_refuse_change() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'P0001'; "
            "END $$"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION registry_refuse_change()"
        )
        # TRUNCATE fires no row triggers; it needs its own statement-level guard.
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION registry_refuse_change()"
        )
    else:  # pragma: no cover - only the two supported databases exist
        raise NotImplementedError(dialect)


def drop_append_only_guard(op: Operations, table: str) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        # The shared function goes with the last guard that uses it (a downgrade to base
        # leaves nothing behind).
        op.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p "
            "ON p.oid = t.tgfoid WHERE p.proname = 'registry_refuse_change') "
            "THEN DROP FUNCTION IF EXISTS registry_refuse_change(); END IF; END $$"
        )
