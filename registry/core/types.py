"""Column types with one representation each for ids, instants, percentages, money and enums.

SQLite has no exact decimal type (its NUMERIC is a float in disguise), so exact quantities are
stored as integers of their smallest unit and exposed to Python as :class:`~decimal.Decimal`
(STYLE.md "Decisions already taken"): percentages in hundredths of a percent, money in fen.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Dialect, Enum, Integer, String, Uuid
from sqlalchemy.types import DateTime, TypeDecorator

HUNDRED = Decimal(100)


class GUID(TypeDecorator[uuid.UUID]):
    """UUID stored natively on PostgreSQL and as 32 hex characters on SQLite."""

    impl = Uuid
    cache_ok = True


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware instants, stored in UTC; naive datetimes are refused, never guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: instants must carry a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite hands back naive values; they were written in UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _ScaledDecimal(TypeDecorator[Decimal]):
    """A Decimal with a fixed number of places stored as an exact integer."""

    places = 2
    cache_ok = True
    impl: Any = Integer

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"{type(self).__name__} takes Decimal, not {type(value).__name__}")
        scaled = value.scaleb(self.places)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.places} decimal places")
        return int(scaled)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value).scaleb(-self.places).quantize(Decimal(1).scaleb(-self.places))


class Percent(_ScaledDecimal):
    """A percentage to two places ("33.34"), stored as hundredths of a percent (3334)."""

    impl = Integer
    cache_ok = True  # SQLAlchemy reads it from each class's own __dict__, not inherited


class Money(_ScaledDecimal):
    """An amount in CNY to the fen, stored as integer fen in a BIGINT (reliability.md §0 rule 2)."""

    impl = BigInteger
    cache_ok = True  # SQLAlchemy reads it from each class's own __dict__, not inherited


def str_enum(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """A StrEnum stored as text with a named CHECK constraint (STYLE.md §3)."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in enum_class),
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def short_string(length: int = 300) -> String:
    return String(length)
