"""Human reference numbers that count up per year without gaps or duplicates.

Gazette numbers (``2026-000123``) and licence references (``OL-2026-000123``) come from one
row per (sequence, year), incremented with an upsert in the caller's transaction: the row lock
it takes serialises concurrent callers, and a rollback gives the number back.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.core.db import Base


class NumberSequence(Base):
    __tablename__ = "number_sequences"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(BigInteger, comment="the last number handed out")

    def __repr__(self) -> str:
        return f"<NumberSequence {self.name} {self.year}: {self.last}>"


def next_number(session: Session, name: str, year: int) -> int:
    """The next number of ``name`` in ``year`` (1, 2, 3, …) within this transaction."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(NumberSequence)
        .values(name=name, year=year, last=1)
        .on_conflict_do_update(
            index_elements=["name", "year"], set_={"last": NumberSequence.last + 1}
        )
        .returning(NumberSequence.last)
    )
    number: int = session.execute(statement).scalar_one()
    return number
