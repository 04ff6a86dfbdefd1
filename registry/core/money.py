"""Money in CNY, exact to the fen.

Amounts travel as decimal strings (``"1234.50"``) and are held as :class:`~decimal.Decimal`
in Python and as integer fen in the database (reliability.md §0 rule 2). Floats are refused:
a royalty must never depend on binary rounding.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

CURRENCY: Final = "CNY"
FEN: Final = Decimal("0.01")
#: A ceiling well above any licence fee (the 2024 guide-rail is RMB 20 m) that still fits
#: comfortably in a BIGINT of fen.
MAX_AMOUNT: Final = Decimal("1000000000000.00")
_PATTERN = re.compile(r"^\d{1,13}(\.\d{1,2})?$")


class MoneyError(ValueError):
    """An amount that is not a valid CNY amount; ``str()`` says why."""


def parse_money(value: object, *, allow_zero: bool = False) -> Decimal:
    """A non-negative amount with at most two decimals, as a Decimal quantised to the fen."""
    if isinstance(value, bool | float):
        raise MoneyError('send amounts as decimal strings such as "1234.50", not numbers')
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, Decimal):
        value = format(value, "f")
    if not isinstance(value, str) or not _PATTERN.match(value.strip()):
        raise MoneyError('an amount is a decimal string with at most two decimals, e.g. "1234.50"')
    amount = Decimal(value.strip()).quantize(FEN)
    if amount > MAX_AMOUNT:
        raise MoneyError(f"amounts above {MAX_AMOUNT} are refused")
    if amount == 0 and not allow_zero:
        raise MoneyError("the amount must be greater than zero")
    return amount


def to_fen(amount: Decimal) -> int:
    scaled = amount.scaleb(2)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} is not a whole number of fen")
    return int(scaled)


def from_fen(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2).quantize(FEN)


def round_fen(value: Decimal) -> Decimal:
    """Round a computed amount to the fen, half up (the rounding rule of every royalty)."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def format_money(amount: Decimal) -> str:
    return format(amount.quantize(FEN), "f")
