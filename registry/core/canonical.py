"""Canonical JSON: one byte sequence per value, so hashes over it are reproducible anywhere.

Keys sorted, no insignificant white space, UTF-8 (Chinese kept as characters), and only exact
types: Decimal, dates, UUIDs and enums become strings; floats are refused because their text
form is not exact (money and shares are never floats, DESIGN.md §3).
"""

from __future__ import annotations

import enum
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError("naive datetime in canonical JSON")
        return format_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def _refuse_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("floats have no exact canonical form; use Decimal or int")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_floats(item)


def format_instant(value: datetime) -> str:
    """UTC with microseconds and a ``Z``: the one text form of an instant in hashes."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    _refuse_floats(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def to_plain(value: Any) -> Any:
    """The value as JSON would carry it (round trip through canonical JSON)."""
    return json.loads(canonical_json(value))
