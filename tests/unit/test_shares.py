"""Tests for registry.core.shares: exact percentages and largest-remainder allocation."""

from __future__ import annotations

import itertools
import pickle
import random
import re
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.core.shares import (
    HUNDRED_PERCENT,
    ShareError,
    ShareTypeError,
    allocate,
    check_total,
    format_percent,
    hundredths_to_percent,
    parse_percent,
    percent_to_hundredths,
)

PROPERTY = settings(database=None, deadline=None)

# ---------------------------------------------------------------------------------------------
# parse_percent
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("33.34", "33.34"),
        ("100", "100.00"),
        ("100.00", "100.00"),
        ("0.5", "0.50"),
        (".5", "0.50"),
        ("0.01", "0.01"),
        (" 7.25 ", "7.25"),
        ("33.340", "33.34"),  # judged by value: the third decimal is zero
        (50, "50.00"),
        (100, "100.00"),
        (Decimal("12.5"), "12.50"),
        (Decimal("1E+1"), "10.00"),
    ],
)
def test_parse_percent_valid(value: str | int | Decimal, expected: str) -> None:
    result = parse_percent(value)
    assert result == Decimal(expected)
    assert str(result) == expected  # quantized to exactly two places


def test_parse_percent_zero_needs_flag() -> None:
    with pytest.raises(ShareError, match="greater than 0"):
        parse_percent("0")
    with pytest.raises(ShareError, match="greater than 0"):
        parse_percent(Decimal("0.00"))
    assert str(parse_percent("0", allow_zero=True)) == "0.00"
    assert str(parse_percent("-0", allow_zero=True)) == "0.00"  # no negative zero
    assert str(parse_percent(0, allow_zero=True)) == "0.00"


def test_parse_percent_refuses_float() -> None:
    with pytest.raises(ShareTypeError, match="floats are not exact") as info:
        parse_percent(33.34)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, ShareError)
    assert "浮点数" in info.value.message_zh


@pytest.mark.parametrize("value", [True, None, [50], Fraction(1, 2)])
def test_parse_percent_refuses_other_types(value: object) -> None:
    with pytest.raises(ShareTypeError, match="must be a decimal string, int or Decimal"):
        parse_percent(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("abc", "is not a decimal number"),
        ("", "is not a decimal number"),
        ("NaN", "is not a decimal number"),
        ("Infinity", "is not a decimal number"),
        ("1e2", "is not a decimal number"),
        ("1,000", "is not a decimal number"),
        ("50%", "is not a decimal number"),
        ("+50", "is not a decimal number"),
        ("٥٠", "is not a decimal number"),  # Arabic-Indic digits
        (Decimal("NaN"), "finite number"),
        (Decimal("sNaN"), "finite number"),
        (Decimal("Infinity"), "finite number"),
        (Decimal("-Infinity"), "finite number"),
        ("-1", "cannot be negative"),
        ("-0.01", "cannot be negative"),
        (-5, "cannot be negative"),
        ("100.01", "cannot exceed 100"),
        (101, "cannot exceed 100"),
        ("33.333", "at most 2 decimal places"),
        ("0.001", "at most 2 decimal places"),
        (Decimal("33.345"), "at most 2 decimal places"),
    ],
)
def test_parse_percent_rejections(value: str | int | Decimal, match: str) -> None:
    with pytest.raises(ShareError, match=match) as info:
        parse_percent(value)
    assert info.value.message_zh


@PROPERTY
@given(st.integers(1, 10_000))
def test_parse_percent_round_trips_with_hundredths(n: int) -> None:
    percent = hundredths_to_percent(n)
    text = format_percent(percent)
    assert parse_percent(text) == percent
    assert percent_to_hundredths(parse_percent(text)) == n
    assert percent_to_hundredths(parse_percent(percent)) == n
    assert str(parse_percent(text)) == text


# ---------------------------------------------------------------------------------------------
# hundredths and formatting
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "hundredths"),
    [
        (Decimal("33.34"), 3334),
        (Decimal("100"), 10_000),
        (Decimal("100.000"), 10_000),
        (Decimal("0.5"), 50),
        (Decimal("0"), 0),
        (Decimal("-0.05"), -5),
        (Decimal("123456789012345678901234567890.12"), 12345678901234567890123456789012),
    ],
)
def test_percent_to_hundredths(percent: Decimal, hundredths: int) -> None:
    assert percent_to_hundredths(percent) == hundredths
    assert hundredths_to_percent(hundredths) == percent


def test_percent_to_hundredths_is_exact() -> None:
    with pytest.raises(ShareError, match="not a whole number of hundredths"):
        percent_to_hundredths(Decimal("33.345"))
    with pytest.raises(ShareError, match="finite"):
        percent_to_hundredths(Decimal("NaN"))
    with pytest.raises(ShareTypeError, match="expected a Decimal"):
        percent_to_hundredths(33.34)  # type: ignore[arg-type]


def test_hundredths_to_percent() -> None:
    assert str(hundredths_to_percent(3334)) == "33.34"
    assert str(hundredths_to_percent(10_000)) == "100.00"
    assert str(hundredths_to_percent(5)) == "0.05"
    assert str(hundredths_to_percent(0)) == "0.00"
    assert str(hundredths_to_percent(-5)) == "-0.05"
    # 40 digits: beyond the default decimal precision of 28, still exact.
    big = 10**40 + 1
    assert percent_to_hundredths(hundredths_to_percent(big)) == big
    with pytest.raises(ShareTypeError, match="expected an int"):
        hundredths_to_percent(True)
    with pytest.raises(ShareTypeError, match="expected an int"):
        hundredths_to_percent(Decimal(5))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("percent", "text"),
    [
        (Decimal("33.34"), "33.34"),
        (Decimal("100"), "100.00"),
        (Decimal("0.5"), "0.50"),
        (Decimal("0"), "0.00"),
        (Decimal("-0"), "0.00"),
        (Decimal("1E+2"), "100.00"),
        (Decimal("7.250"), "7.25"),
        (Decimal("-1.5"), "-1.50"),
    ],
)
def test_format_percent(percent: Decimal, text: str) -> None:
    assert format_percent(percent) == text


def test_format_percent_does_not_round() -> None:
    with pytest.raises(ShareError, match="not a whole number of hundredths"):
        format_percent(Decimal("33.333"))


# ---------------------------------------------------------------------------------------------
# check_total
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shares",
    [
        ["100"],
        ["50", "50"],
        ["33.33", "33.33", "33.34"],
        ["0", "100"],
        ["99.99", "0.01"],
        ["33.330", "66.670"],
    ],
)
def test_check_total_accepts_exact_100(shares: list[str]) -> None:
    check_total([Decimal(s) for s in shares], what="title")


def test_hundred_percent_constant() -> None:
    assert Decimal("100.00") == HUNDRED_PERCENT
    assert str(HUNDRED_PERCENT) == "100.00"


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        (["33.33", "33.33", "33.33"], "title shares sum to 99.99, not 100"),
        (["50", "50.01"], "title shares sum to 100.01, not 100"),
        ([], "title shares sum to 0.00, not 100"),
        (["33.333", "66.666"], "title shares sum to 99.999, not 100"),
    ],
)
def test_check_total_states_actual_sum(shares: list[str], message: str) -> None:
    with pytest.raises(ShareError) as info:
        check_total([Decimal(s) for s in shares], what="title", what_zh="所有权")
    assert str(info.value) == message
    assert info.value.message_zh.startswith("所有权份额合计为")


def test_check_total_what_zh_defaults_to_what() -> None:
    with pytest.raises(ShareError, match=r"income shares sum to 90\.00, not 100") as info:
        check_total([Decimal(90)], what="income")
    assert info.value.message_zh == "income份额合计为 90.00%，应为 100%"


def test_check_total_refuses_negative_and_non_finite_shares() -> None:
    with pytest.raises(ShareError, match="inventor share #2 is -10"):
        check_total([Decimal(110), Decimal(-10)], what="inventor")
    with pytest.raises(ShareError, match="share #1 is NaN"):
        check_total([Decimal("NaN")], what="inventor")
    with pytest.raises(ShareTypeError, match="share #1 must be a Decimal, not float"):
        check_total([100.0], what="inventor")  # type: ignore[list-item]


@PROPERTY
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=20))
def test_check_total_matches_integer_sum(hundredths: list[int]) -> None:
    shares = [hundredths_to_percent(n) for n in hundredths]
    if sum(hundredths) == 10_000:
        check_total(shares, what="title")
    else:
        with pytest.raises(
            ShareError, match=re.escape(f"sum to {format_percent(sum(shares, Decimal(0)))},")
        ):
            check_total(shares, what="title")


# ---------------------------------------------------------------------------------------------
# allocate
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (-100, [1, 1, 1], [-34, -33, -33]),
        (0, [1, 2], [0, 0]),
        (2, [1, 3], [1, 1]),  # remainders tie (0.5, 0.5): lower index first
        (10, [0, 1], [0, 10]),
        (1, [1, 1, 1, 1], [1, 0, 0, 0]),
        (3, [1, 1, 1, 1], [1, 1, 1, 0]),
        (101, [5000, 5000], [51, 50]),
        (10_000, [3333, 3333, 3334], [3333, 3333, 3334]),
        (1, [3333, 3333, 3334], [0, 0, 1]),  # largest remainder wins over lower index
        (7, [7], [7]),
    ],
)
def test_allocate_vectors(total: int, weights: list[int], expected: list[int]) -> None:
    assert allocate(total, weights) == expected


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([], "empty or all zero"),
        ([0, 0], "empty or all zero"),
        ([3, -1], "weight #2 is negative"),
    ],
)
def test_allocate_rejects_bad_weights(weights: list[int], match: str) -> None:
    with pytest.raises(ShareError, match=match) as info:
        allocate(100, weights)
    assert info.value.message_zh


def test_allocate_rejects_non_int() -> None:
    with pytest.raises(ShareTypeError, match="weight #1 must be an int, got float"):
        allocate(100, [0.5, 0.5])  # type: ignore[list-item]
    with pytest.raises(ShareTypeError, match="weight #1 must be an int, got Decimal"):
        allocate(100, [Decimal(1)])  # type: ignore[list-item]
    with pytest.raises(ShareTypeError, match="must be an int"):
        allocate(1.5, [1])  # type: ignore[arg-type]
    with pytest.raises(ShareTypeError, match="must be an int"):
        allocate(True, [1])


def _assert_allocation_properties(total: int, weights: list[int], parts: list[int]) -> None:
    weight_sum = sum(weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total * weight, weight_sum)
        assert abs(part - exact) < 1
        if weight == 0:
            assert part == 0
        if total >= 0:
            assert part >= 0


def _boundary_is_tied(total: int, weights: list[int]) -> bool:
    """True if the last unit handed out had a rival with the same remainder (a tie-break)."""
    weight_sum = sum(weights)
    remainders = sorted(((abs(total) * w) % weight_sum for w in weights), reverse=True)
    leftover = abs(total) - sum(abs(total) * w // weight_sum for w in weights)
    if leftover in (0, len(weights)):
        return False
    return remainders[leftover - 1] == remainders[leftover]


@st.composite
def basis_point_shares(draw: st.DrawFn) -> list[int]:
    """1-50 shares in hundredths of a percent summing to 10000, zeros included (reliability T10)."""
    parties = draw(st.integers(1, 50))
    cuts = sorted(
        draw(st.lists(st.integers(0, 10_000), min_size=parties - 1, max_size=parties - 1))
    )
    bounds = [0, *cuts, 10_000]
    return [b - a for a, b in itertools.pairwise(bounds)]


@settings(database=None, deadline=None, max_examples=1000)
@given(st.integers(0, 10**12), basis_point_shares(), st.randoms(use_true_random=False))
def test_allocate_basis_point_shares(total: int, shares: list[int], rnd: random.Random) -> None:
    assert sum(shares) == 10_000
    parts = allocate(total, shares)
    _assert_allocation_properties(total, shares, parts)
    assert allocate(total, shares) == parts  # deterministic
    # Relabelling the parties permutes the parts, except where a tie-break decided a unit (then
    # the lower index after relabelling wins, which may be a different party).
    order = list(range(len(shares)))
    rnd.shuffle(order)
    relabelled = [shares[i] for i in order]
    permuted = allocate(total, relabelled)
    _assert_allocation_properties(total, relabelled, permuted)
    if not _boundary_is_tied(total, shares):
        assert permuted == [parts[i] for i in order]


@PROPERTY
@given(
    st.integers(-(10**15), 10**15),
    st.lists(st.integers(0, 10**6), min_size=1, max_size=30).filter(lambda ws: sum(ws) > 0),
)
def test_allocate_any_weights(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    _assert_allocation_properties(total, weights, parts)
    assert allocate(total, weights) == parts
    # A negative amount (refund, reversal) mirrors the positive split payee by payee.
    assert allocate(-total, weights) == [-p for p in parts]


@PROPERTY
@given(st.integers(0, 1000), st.integers(1, 50), st.integers(1, 10**6))
def test_allocate_equal_weights_favours_lower_indices(total: int, parties: int, w: int) -> None:
    parts = allocate(total, [w] * parties)
    base, extra = divmod(total, parties)
    assert parts == [base + 1] * extra + [base] * (parties - extra)


def test_share_errors_pickle_with_all_fields() -> None:
    for cls in (ShareError, ShareTypeError):
        copy = pickle.loads(pickle.dumps(cls("bad", "坏")))  # noqa: S301 - our own object
        assert type(copy) is cls
        assert (str(copy), copy.message_zh) == ("bad", "坏")
