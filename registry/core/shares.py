"""Exact percentage and money-split arithmetic for ownership, income and inventor shares.

What it implements:

* Co-owners' title shares and income shares, and inventors' contribution shares, must each sum to
  exactly 100 % (co-ownership under Patent Law Art. 14; the income split follows the owners'
  agreement and may differ from title, see ``reference/law.md`` A5 and DESIGN.md section 2).
  Shares are entered with at most two decimals and stored as integer hundredths of a percent
  (10000 == 100 %) so that the database, JSON and hashing never see a binary float.
* Splitting an amount of money (in fen, the smallest unit of the renminbi under the People's Bank
  of China Law Art. 17) in proportion to shares uses the **largest-remainder method** (Hamilton's
  method): every payee gets the floor of its exact pro-rata amount, and the fen left over go one
  each to the largest remainders, ties to the lower index. The parts always add up to the amount
  to the fen, which a balanced double-entry journal (DESIGN.md section 2, clearing) requires.

Floats are refused everywhere: 0.1 + 0.2 != 0.3 in binary floating point, and a legal record of
who owns what must not depend on rounding noise. Arithmetic is done on ``int``/``Fraction`` or with
context-free ``Decimal`` operations, so a caller changing the thread's decimal context cannot alter
the results.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Final

__all__ = [
    "HUNDRED_PERCENT",
    "ShareError",
    "ShareTypeError",
    "allocate",
    "check_total",
    "format_percent",
    "hundredths_to_percent",
    "parse_percent",
    "percent_to_hundredths",
]

#: 100 % as a Decimal with two places, the value every share list must sum to.
HUNDRED_PERCENT: Final = Decimal("100.00")


class ShareError(ValueError):
    """A share or split is invalid. ``str(error)`` is English, ``message_zh`` Chinese."""

    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh

    def __reduce__(self) -> tuple[type[ShareError], tuple[str, ...]]:
        # Exceptions pickle as type(*args) by default, and args holds only the English message;
        # rebuild with every field so the error survives multiprocessing and copy.
        return (type(self), (self.message, self.message_zh))


class ShareTypeError(ShareError, TypeError):
    """A value of the wrong type (notably a float) was given where an exact number is needed.

    It is both a :class:`ShareError` (so callers catching share problems see it) and a
    :class:`TypeError` (because that is what it is).
    """


# Plain decimal notation only: no exponent ("1e2"), no sign other than an explicit minus (so that
# negatives get their own message), no "NaN"/"Infinity", no thousands separators.
_DECIMAL_TEXT: Final = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


def _as_fraction(value: Decimal) -> Fraction:
    """Exact rational value of a finite Decimal (Fraction(Decimal) never rounds)."""
    return Fraction(value)


def _fraction_to_decimal_text(value: Fraction) -> str:
    """Render an exact rational for a message: two decimals if that is exact, else more."""
    if (value * 100).denominator == 1:
        return format_percent(hundredths_to_percent(int(value * 100)))
    # Only reachable when a caller passed shares with more than two decimals. A sum of Decimals
    # is a terminating decimal, so find its exact number of places and show all of them, so that
    # the reader can see why the total is not 100 (no float, which could print "100.0").
    places = 2
    while (value * 10**places).denominator != 1:
        places += 1
    scaled = int(value * 10**places)
    digits = tuple(int(c) for c in str(abs(scaled)))
    return str(Decimal((1 if scaled < 0 else 0, digits, -places)))


def parse_percent(value: str | int | Decimal, *, allow_zero: bool = False) -> Decimal:
    """Parse a percentage share, 0 < x <= 100 with at most two decimals, exactly.

    Accepts ``"33.34"``, ``"100"``, ``"0.5"``, ``50`` or ``Decimal("12.5")`` and returns the value
    quantized to 0.01 (``Decimal("0.50")``). Zero is allowed only with ``allow_zero=True`` (e.g. an
    owner who keeps title but has transferred all income rights). "At most two decimals" is judged
    on the value, so ``"33.340"`` is accepted as 33.34 while ``"33.345"`` is refused rather than
    rounded: rounding a share would silently move ownership.

    Raises :class:`ShareTypeError` for floats, bools and other types, and :class:`ShareError` for
    non-numeric text, NaN/Infinity, negatives, zero (unless allowed), more than 100 or more than
    two decimals.
    """
    number: Decimal
    if isinstance(value, bool):
        # bool is an int subclass; True meaning "1 %" would be a bug, not an intent.
        raise ShareTypeError(
            "a percentage must be a decimal string, int or Decimal, not bool",
            "百分比应为十进制字符串、整数或 Decimal，不能是布尔值",
        )
    if isinstance(value, float):
        raise ShareTypeError(
            f"floats are not exact; pass the percentage {value!r} as a string or Decimal",
            f"浮点数不精确；请以字符串或 Decimal 传入百分比 {value!r}",
        )
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text):
            raise ShareError(
                f"{value!r} is not a decimal number (expected e.g. '33.34')",
                f"{value!r} 不是十进制数（应形如 '33.34'）",
            )
        number = Decimal(text)
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    else:
        raise ShareTypeError(
            f"a percentage must be a decimal string, int or Decimal, not {type(value).__name__}",
            f"百分比应为十进制字符串、整数或 Decimal，不能是 {type(value).__name__}",
        )
    if not number.is_finite():
        raise ShareError(
            f"a percentage must be a finite number, got {value!r}",
            f"百分比必须是有限数值，实际为 {value!r}",
        )
    exact = _as_fraction(number)
    if exact < 0:
        raise ShareError(
            f"a percentage cannot be negative, got {value!r}",
            f"百分比不能为负数，实际为 {value!r}",
        )
    if exact == 0 and not allow_zero:
        raise ShareError(
            "a share must be greater than 0",
            "份额必须大于 0",
        )
    if exact > 100:
        raise ShareError(
            f"a percentage cannot exceed 100, got {value!r}",
            f"百分比不能超过 100，实际为 {value!r}",
        )
    if (exact * 100).denominator != 1:
        raise ShareError(
            f"a percentage may have at most 2 decimal places, got {value!r}",
            f"百分比最多保留 2 位小数，实际为 {value!r}",
        )
    # Rebuilding from the integer hundredths normalises "-0", "0.5" and "33.340" to 0.00, 0.50
    # and 33.34 without going through the (mutable, thread-local) decimal context.
    return hundredths_to_percent(int(exact * 100))


def check_total(shares: Sequence[Decimal], *, what: str, what_zh: str | None = None) -> None:
    """Raise :class:`ShareError` unless ``shares`` sum to exactly 100.00.

    ``what`` names the kind of share in the message ("title", "income", "inventor"), e.g.
    ``title shares sum to 99.99, not 100``. ``what_zh`` is its Chinese name for ``message_zh``
    (defaults to ``what``). Each share must be a finite, non-negative Decimal: a negative share
    could otherwise hide an over-allocation (110 + -10 == 100). The sum is computed exactly with
    fractions, so no rounding can make a wrong total look right.
    """
    label_zh = what_zh if what_zh is not None else what
    total = Fraction(0)
    for index, share in enumerate(shares):
        if not isinstance(share, Decimal):
            raise ShareTypeError(
                f"{what} share #{index + 1} must be a Decimal, not {type(share).__name__}",
                f"{label_zh}份额第 {index + 1} 项应为 Decimal，不能是 {type(share).__name__}",
            )
        if not share.is_finite() or share < 0:
            raise ShareError(
                f"{what} share #{index + 1} is {share}, which is not a non-negative number",
                f"{label_zh}份额第 {index + 1} 项为 {share}，不是非负数",
            )
        total += _as_fraction(share)
    if total != 100:
        shown = _fraction_to_decimal_text(total)
        raise ShareError(
            f"{what} shares sum to {shown}, not 100",
            f"{label_zh}份额合计为 {shown}%，应为 100%",
        )


def percent_to_hundredths(d: Decimal) -> int:
    """Return a percentage as integer hundredths of a percent (``Decimal("33.34")`` -> 3334).

    Exact: raises :class:`ShareError` if ``d`` has a non-zero third decimal, instead of rounding.
    No range check is made here (sums and differences of shares may leave 0..100); use
    :func:`parse_percent` to validate user input.
    """
    if not isinstance(d, Decimal):
        raise ShareTypeError(
            f"expected a Decimal percentage, got {type(d).__name__}",
            f"百分比应为 Decimal，实际为 {type(d).__name__}",
        )
    if not d.is_finite():
        raise ShareError(
            f"a percentage must be a finite number, got {d}",
            f"百分比必须是有限数值，实际为 {d}",
        )
    scaled = _as_fraction(d) * 100
    if scaled.denominator != 1:
        raise ShareError(
            f"{d} is not a whole number of hundredths of a percent",
            f"{d} 不是 0.01% 的整数倍",
        )
    return int(scaled)


def hundredths_to_percent(n: int) -> Decimal:
    """Return integer hundredths of a percent as a two-place Decimal (3334 -> ``Decimal("33.34")``).

    Built from the digit tuple, which is exact for any size of integer and independent of the
    decimal context's precision.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise ShareTypeError(
            f"expected an int number of hundredths, got {type(n).__name__}",
            f"应为整数（0.01% 的个数），实际为 {type(n).__name__}",
        )
    sign = 1 if n < 0 else 0
    digits = tuple(int(c) for c in str(abs(n)))
    return Decimal((sign, digits, -2))


def format_percent(d: Decimal) -> str:
    """Format a percentage with exactly two decimals: ``Decimal("33.34")`` -> ``"33.34"``.

    ``Decimal("100")`` gives ``"100.00"`` and ``Decimal("0.5")`` gives ``"0.50"``. A value with a
    non-zero third decimal raises :class:`ShareError` rather than being rounded for display: a
    shown share that differs from the stored one would misstate who owns what.
    """
    n = percent_to_hundredths(d)
    sign = "-" if n < 0 else ""
    whole, frac = divmod(abs(n), 100)
    return f"{sign}{whole}.{frac:02d}"


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split the integer ``total`` (e.g. fen) in proportion to ``weights`` by largest remainder.

    Guarantees:

    * ``sum(result) == total`` exactly;
    * each part differs from its exact pro-rata value ``total * w_i / sum(weights)`` by less
      than 1 (it is that value rounded down or up);
    * a zero weight always gets 0;
    * deterministic: parts with equal remainders are rounded up in order of lower index first,
      so the same inputs always give the same split (needed for reproducible settlement runs).

    ``total`` may be 0 (all parts 0). A **negative total** (a refund or a reversing entry) is
    allocated as ``-allocate(-total, weights)``: the magnitudes are split exactly as the original
    positive amount would be, so a reversal cancels the original split payee by payee.

    ``weights`` must be non-negative ints with a positive sum, else :class:`ShareError`
    (:class:`ShareTypeError` for non-int values such as floats or Decimals). Weights are typically
    shares in hundredths of a percent (:func:`percent_to_hundredths`); they need not sum to 10000.
    """
    if isinstance(total, bool) or not isinstance(total, int):
        raise ShareTypeError(
            f"the amount to allocate must be an int (e.g. fen), got {type(total).__name__}",
            f"待分配金额应为整数（如以分为单位），实际为 {type(total).__name__}",
        )
    for index, weight in enumerate(weights):
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise ShareTypeError(
                f"weight #{index + 1} must be an int, got {type(weight).__name__}",
                f"第 {index + 1} 个权重应为整数，实际为 {type(weight).__name__}",
            )
        if weight < 0:
            raise ShareError(
                f"weight #{index + 1} is negative ({weight})",
                f"第 {index + 1} 个权重为负数（{weight}）",
            )
    weight_sum = sum(weights)
    if weight_sum <= 0:
        raise ShareError(
            "cannot allocate: the weights are empty or all zero",
            "无法分配：权重为空或全部为 0",
        )
    if total < 0:
        return [-part for part in allocate(-total, weights)]

    # Integer floor division gives the exact floor of total * w / W and its remainder; no
    # fractions or decimals are needed.
    floors: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        quotient, remainder = divmod(total * weight, weight_sum)
        floors.append(quotient)
        remainders.append(remainder)
    leftover = total - sum(floors)
    # 0 <= leftover < len(weights) because each remainder is < weight_sum and the remainders sum
    # to leftover * weight_sum. For the same reason the `leftover` largest remainders are all
    # positive, so a zero weight never receives a unit.
    order = sorted(range(len(floors)), key=lambda i: (-remainders[i], i))
    for i in order[:leftover]:
        floors[i] += 1
    return floors
