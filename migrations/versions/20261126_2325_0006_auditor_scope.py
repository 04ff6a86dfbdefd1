"""auditor scope: organisations granted to each auditor, or all of them

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 23:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.core.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column(
                "audits_all_organisations",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
                comment="auditors: every organisation is in scope (admin grant)",
            )
        )
    op.create_table(
        "auditor_grants",
        sa.Column("user_id", registry.core.types.GUID(), nullable=False),
        sa.Column("organisation_id", registry.core.types.GUID(), nullable=False),
        sa.Column("granted_by_id", registry.core.types.GUID(), nullable=False),
        sa.Column("granted_dt", registry.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["granted_by_id"], ["users.id"], name=op.f("fk_auditor_grants_granted_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_auditor_grants_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_auditor_grants_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "organisation_id", name=op.f("pk_auditor_grants")),
    )
    op.create_index(
        op.f("ix_auditor_grants_organisation_id"),
        "auditor_grants",
        ["organisation_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_auditor_grants_organisation_id"), table_name="auditor_grants")
    op.drop_table("auditor_grants")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("audits_all_organisations")
