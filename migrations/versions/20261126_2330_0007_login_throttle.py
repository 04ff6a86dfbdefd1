"""login throttle: failed sign-ins and the back-off lock on each user (ASVS 5.0 6.3.1)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.core.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column(
                "failed_logins",
                sa.Integer(),
                nullable=False,
                server_default="0",
                comment="failed sign-ins since the last success",
            )
        )
        batch.add_column(
            sa.Column(
                "locked_until_dt",
                registry.core.types.UTCDateTime(timezone=True),
                nullable=True,
                comment="sign-in refused until then (back-off after repeated failures)",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locked_until_dt")
        batch.drop_column("failed_logins")
