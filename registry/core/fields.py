"""marshmallow fields for the registry's exact and validated value types."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import marshmallow as ma

from registry.core.identifiers import (
    IdentifierError,
    normalise_ipc,
    parse_application_number,
    validate_uscc,
)
from registry.core.money import MoneyError, format_money, from_fen, parse_money, to_fen
from registry.core.shares import ShareError, format_percent, parse_percent


class PercentField(ma.fields.Field):
    """A percentage as a decimal string with at most two places ("33.34"); floats refused."""

    def __init__(self, *, allow_zero: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_zero = allow_zero
        self.metadata = {"type": "string", "example": "33.34", **self.metadata}

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_percent(Decimal(value))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ma.ValidationError('send the percentage as a decimal string such as "33.34"')
        try:
            return parse_percent(value, allow_zero=self.allow_zero)
        except (ShareError, InvalidOperation) as exc:
            raise ma.ValidationError(str(exc)) from None


class StrictBoolean(ma.fields.Boolean):
    """JSON ``true`` or ``false`` only, as the API description (``type: boolean``) says:
    marshmallow's Boolean also takes 1, "yes" and "on", and an attestation or a consent is never
    the string "yes". (Query strings keep marshmallow's Boolean: there "true" is text.)"""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ma.ValidationError("send true or false")
        return value


class UsccField(ma.fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return validate_uscc(text)
        except IdentifierError as exc:
            raise ma.ValidationError(str(exc)) from None


class IpcField(ma.fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalise_ipc(text)
        except IdentifierError as exc:
            raise ma.ValidationError(str(exc)) from None


class ApplicationNumberField(ma.fields.String):
    """A Chinese application number in any common spelling, loaded in its canonical form."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_application_number(text).canonical
        except IdentifierError as exc:
            raise ma.ValidationError(str(exc)) from None


class MoneyField(ma.fields.Field):
    """An amount in CNY as a decimal string with at most two places ("1234.50")."""

    def __init__(self, *, allow_zero: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_zero = allow_zero
        self.metadata = {"type": "string", "example": "1234.50", **self.metadata}

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_money(Decimal(value))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        try:
            return parse_money(value, allow_zero=self.allow_zero)
        except MoneyError as exc:
            raise ma.ValidationError(str(exc)) from None


class FenField(ma.fields.Field):
    """Money held as integer fen, shown and accepted as a decimal string with two places
    ("1234.50" ↔ 123450). The clearing house computes in fen only (reliability.md §0 rule 2)."""

    def __init__(self, *, allow_zero: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_zero = allow_zero
        self.metadata = {"type": "string", "example": "1234.50", **self.metadata}

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_money(from_fen(int(value)))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return to_fen(parse_money(value, allow_zero=self.allow_zero))
        except MoneyError as exc:
            raise ma.ValidationError(str(exc)) from None
