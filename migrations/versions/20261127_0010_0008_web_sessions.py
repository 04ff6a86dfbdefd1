"""web sessions: browser sign-ins, server-side and revocable (ASVS 5.0 V7; registry/web)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.core.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", registry.core.types.GUID(), nullable=False),
        sa.Column("user_id", registry.core.types.GUID(), nullable=False),
        sa.Column(
            "token_hash",
            sa.String(length=64),
            nullable=False,
            comment="sha256 hex of the session id in the browser's cookie",
        ),
        sa.Column(
            "created_dt",
            registry.core.types.UTCDateTime(timezone=True),
            nullable=False,
            comment="when the row was created",
        ),
        sa.Column(
            "last_seen_dt",
            registry.core.types.UTCDateTime(timezone=True),
            nullable=False,
            comment="last request (to the minute): the idle limit counts from here",
        ),
        sa.Column(
            "expires_dt",
            registry.core.types.UTCDateTime(timezone=True),
            nullable=False,
            comment="the absolute end, whatever the activity",
        ),
        sa.Column(
            "ended_dt",
            registry.core.types.UTCDateTime(timezone=True),
            nullable=True,
            comment="signed out or ended by the registry",
        ),
        sa.Column(
            "end_reason",
            sa.String(length=40),
            nullable=True,
            comment="signed_out, password_changed, replaced",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_web_sessions_user_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
