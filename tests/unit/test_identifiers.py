"""Tests for registry.core.identifiers: USCC (GB 32100-2015), application numbers, IPC symbols."""

from __future__ import annotations

import dataclasses
import datetime
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.core.identifiers import (
    USCC_ALPHABET,
    ApplicationNumber,
    IdentifierError,
    application_check_character,
    normalise_ipc,
    parse_application_number,
    uscc_check_character,
    validate_uscc,
)

# No example database (keeps the working tree clean) and no deadline (shared CI machines are slow).
PROPERTY = settings(database=None, deadline=None)

TODAY = datetime.date(2025, 6, 30)
DIGITS = "0123456789"
APPLICATION_CHECKS = "0123456789X"


# ---------------------------------------------------------------------------------------------
# USCC
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "check"),
    [
        # Hand check (see identifiers.py): weighted sum 1640, 1640 mod 31 = 28, 31 - 28 = 3.
        ("91350100M000100Y43", "3"),
        ("91110000100017643K", "K"),
        # Weighted sum 9+3+9+27+20+8+168+60+30+224 = 558 = 18 * 31, so 31 - 0 = 31, written "0".
        ("911100001000176180", "0"),
        # All zeros: sum 0, the same 31 -> "0" rule.
        ("000000000000000000", "0"),
    ],
)
def test_uscc_known_codes(code: str, check: str) -> None:
    assert uscc_check_character(code[:17]) == check
    assert validate_uscc(code) == code


def test_uscc_is_canonicalised() -> None:
    assert validate_uscc("  91350100m000100y43\n") == "91350100M000100Y43"
    assert validate_uscc("9135 0100 M000 100Y 43") == "91350100M000100Y43"
    # Full-width characters from a Chinese input method.
    assert validate_uscc("９１３５０１００Ｍ０００１００Ｙ４３") == "91350100M000100Y43"


def test_uscc_wrong_length() -> None:
    with pytest.raises(IdentifierError, match="18 characters, got 17") as info:
        validate_uscc("91350100M000100Y4")
    assert info.value.code == "wrong_length"
    assert "18 位" in info.value.message_zh


@pytest.mark.parametrize(
    ("code", "position", "char"),
    [
        ("91350100M000100I43", 16, "I"),
        ("O1350100M000100Y43", 1, "O"),
        ("91350100M000100Y4S", 18, "S"),
        ("9135010-M000100Y43", 8, "-"),
    ],
)
def test_uscc_invalid_character(code: str, position: int, char: str) -> None:
    with pytest.raises(IdentifierError, match=f"invalid character '{char}' at position {position}"):
        validate_uscc(code)


def test_uscc_wrong_check_names_expected() -> None:
    with pytest.raises(IdentifierError, match="expected '3'") as info:
        validate_uscc("91350100M000100Y44")
    assert info.value.code == "wrong_check_character"
    assert "应为 '3'" in info.value.message_zh


def test_uscc_check_character_needs_17_valid_characters() -> None:
    with pytest.raises(IdentifierError, match="expected 17 characters"):
        uscc_check_character("9135")
    with pytest.raises(IdentifierError, match="invalid character 'Z'"):
        uscc_check_character("91350100M000100Z4")


USCC17 = st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)


@PROPERTY
@given(USCC17)
def test_uscc_computed_check_validates_and_others_refused(first17: str) -> None:
    check = uscc_check_character(first17)
    assert check in USCC_ALPHABET
    assert validate_uscc(first17 + check) == first17 + check
    for other in USCC_ALPHABET:
        if other != check:
            with pytest.raises(IdentifierError, match=f"expected '{check}'"):
                validate_uscc(first17 + other)


@PROPERTY
@given(USCC17, st.integers(0, 16), st.sampled_from(USCC_ALPHABET))
def test_uscc_single_substitution_always_detected(
    first17: str, position: int, replacement: str
) -> None:
    # Weights are 3^i mod 31, all non-zero, and 31 is prime: a single changed character always
    # changes the weighted sum mod 31, hence the check character.
    if first17[position] == replacement:
        return
    changed = first17[:position] + replacement + first17[position + 1 :]
    with pytest.raises(IdentifierError, match="wrong check character"):
        validate_uscc(changed + uscc_check_character(first17))


# ---------------------------------------------------------------------------------------------
# Application numbers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits12", "check"),
    [("202110123456", "7"), ("200710308494", "X"), ("201310699744", "2")],
)
def test_application_check_vectors_from_law_md(digits12: str, check: str) -> None:
    assert application_check_character(digits12) == check
    parsed = parse_application_number(f"{digits12}.{check}", today=TODAY)
    assert parsed.canonical == f"{digits12}.{check}"


def test_application_number_fields_and_properties() -> None:
    parsed = parse_application_number("ZL2013106997442", today=TODAY)
    assert parsed == ApplicationNumber(year=2013, type_digit="1", serial="0699744", check="2")
    assert parsed.canonical == "201310699744.2"
    assert str(parsed) == "201310699744.2"
    assert parsed.digits12 == "201310699744"
    assert parsed.patent_number == "ZL201310699744.2"
    assert parsed.patent_type == "invention"
    assert not parsed.is_pct_national_phase
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.year = 2014  # type: ignore[misc]


@pytest.mark.parametrize(
    ("type_digit", "patent_type", "pct"),
    [
        ("1", "invention", False),
        ("2", "utility_model", False),
        ("3", "design", False),
        ("8", "invention", True),
        ("9", "utility_model", True),
    ],
)
def test_application_patent_type(type_digit: str, patent_type: str, pct: bool) -> None:
    digits12 = f"2020{type_digit}0001234"
    parsed = parse_application_number(digits12 + application_check_character(digits12), today=TODAY)
    assert parsed.patent_type == patent_type
    assert parsed.is_pct_national_phase is pct


@pytest.mark.parametrize(
    "spelling",
    [
        "202110123456.7",
        "2021101234567",
        "CN202110123456.7",
        "cn2021101234567",
        "ZL202110123456.7",
        "zl 202110123456.7",
        "ZL 2021 1 0123456.7",
        "  CN 202110123456 . 7 ",
        "２０２１１０１２３４５６．７",
    ],
)
def test_application_spellings(spelling: str) -> None:
    assert parse_application_number(spelling, today=TODAY).canonical == "202110123456.7"


def test_application_lowercase_x() -> None:
    assert parse_application_number("200710308494.x", today=TODAY).canonical == "200710308494.X"


def test_application_wrong_check_names_expected() -> None:
    with pytest.raises(IdentifierError, match="expected '7'") as info:
        parse_application_number("202110123456.8", today=TODAY)
    assert info.value.code == "wrong_check_character"
    assert "应为 '7'" in info.value.message_zh
    with pytest.raises(IdentifierError, match="expected 'X'"):
        parse_application_number("200710308494.0", today=TODAY)


@pytest.mark.parametrize("type_digit", ["0", "4", "5", "6", "7"])
def test_application_wrong_type_digit(type_digit: str) -> None:
    # Give it the right check character so the type digit is the only fault.
    digits12 = f"2021{type_digit}0123456"
    value = f"{digits12}.{application_check_character(digits12)}"
    with pytest.raises(IdentifierError, match=f"type digit '{type_digit}'") as info:
        parse_application_number(value, today=TODAY)
    assert info.value.code == "wrong_type_digit"


def test_application_year_before_2003() -> None:
    digits12 = "200210123456"
    with pytest.raises(IdentifierError, match="filing year 2002 is before 2003") as info:
        parse_application_number(digits12 + application_check_character(digits12), today=TODAY)
    assert info.value.code == "year_out_of_range"


def test_application_year_in_future() -> None:
    digits12 = "202610123456"
    value = digits12 + application_check_character(digits12)
    with pytest.raises(IdentifierError, match=r"filing year 2026 is in the future \(current year"):
        parse_application_number(value, today=TODAY)
    # The same number is fine once that year has come.
    assert parse_application_number(value, today=datetime.date(2026, 1, 1)).year == 2026


def test_application_default_today_uses_the_clock() -> None:
    assert parse_application_number("202110123456.7").year == 2021
    digits12 = "999910123456"
    with pytest.raises(IdentifierError, match="is in the future"):
        parse_application_number(digits12 + application_check_character(digits12))


@pytest.mark.parametrize(
    ("value", "match", "code"),
    [
        ("20211012345.6", "12 digits before the check character, got 11", "wrong_length"),
        ("2021101234567.8", "12 digits before the check character, got 13", "wrong_length"),
        ("97101765.4", "pre-October-2003", "old_format"),
        ("95115608X", "pre-October-2003", "old_format"),
        ("", "not an application number", "bad_format"),
        ("CN", "not an application number", "bad_format"),
        ("US202110123456.7", "not an application number", "bad_format"),
        ("202110123456-7", "not an application number", "bad_format"),
        ("202110123456..7", "not an application number", "bad_format"),
        ("2021101234X6.7", "not an application number", "bad_format"),
        ("CN1234567A", "not an application number", "bad_format"),
        # Arabic-Indic digits survive NFKC and must not pass as digits.
        ("٢٠٢١١٠١٢٣٤٥٦.٧", "not an application number", "bad_format"),
    ],
)
def test_application_malformed(value: str, match: str, code: str) -> None:
    with pytest.raises(IdentifierError, match=match) as info:
        parse_application_number(value, today=TODAY)
    assert info.value.code == code
    assert info.value.message_zh


def test_application_dataclass_validates_on_construction() -> None:
    with pytest.raises(IdentifierError, match="expected '7'"):
        ApplicationNumber(year=2021, type_digit="1", serial="0123456", check="8")
    with pytest.raises(IdentifierError, match="serial number must be 7 digits"):
        ApplicationNumber(year=2021, type_digit="1", serial="123456", check="7")
    with pytest.raises(IdentifierError, match="type digit '4'"):
        ApplicationNumber(year=2021, type_digit="4", serial="0123456", check="7")
    with pytest.raises(IdentifierError, match="filing year 1999"):
        ApplicationNumber(year=1999, type_digit="1", serial="0123456", check="7")


def test_application_check_character_needs_12_digits() -> None:
    with pytest.raises(IdentifierError, match="expected 12 ASCII digits"):
        application_check_character("20211012345")
    with pytest.raises(IdentifierError, match="expected 12 ASCII digits"):
        application_check_character("20211012345X")


YEARS = st.integers(2003, TODAY.year).map(str)
TYPES = st.sampled_from("12389")
SERIALS = st.text(alphabet=DIGITS, min_size=7, max_size=7)
DIGITS12 = st.builds(lambda y, t, s: y + t + s, YEARS, TYPES, SERIALS)


@PROPERTY
@given(DIGITS12)
def test_application_computed_check_validates_and_others_refused(digits12: str) -> None:
    check = application_check_character(digits12)
    assert parse_application_number(f"{digits12}.{check}", today=TODAY).canonical == (
        f"{digits12}.{check}"
    )
    for other in APPLICATION_CHECKS:
        if other != check:
            with pytest.raises(IdentifierError, match=f"expected '{check}'"):
                parse_application_number(f"{digits12}.{other}", today=TODAY)


@PROPERTY
@given(DIGITS12, st.integers(0, 11), st.sampled_from(DIGITS))
def test_application_single_digit_substitution_never_collides(
    digits12: str, position: int, replacement: str
) -> None:
    # Documented property, asserted here: mod 11 is prime and every weight (2..9) is non-zero
    # mod 11, and a digit change is -9..9 (non-zero mod 11), so w * delta is never 0 mod 11. No
    # single-digit substitution in the 12 digits can keep the same check character.
    if digits12[position] == replacement:
        return
    changed = digits12[:position] + replacement + digits12[position + 1 :]
    original_check = application_check_character(digits12)
    assert application_check_character(changed) != original_check
    # parse refuses it too (maybe for another reason first, e.g. a now-invalid type digit).
    with pytest.raises(IdentifierError):
        parse_application_number(f"{changed}.{original_check}", today=TODAY)


@PROPERTY
@given(DIGITS12, st.integers(0, 10))
def test_application_adjacent_transposition_never_collides(digits12: str, position: int) -> None:
    # Also asserted: adjacent weights differ by 1 (or by 7 at the 9 -> 2 wrap), both non-zero mod
    # 11, so swapping two different adjacent digits always changes the check character.
    a, b = digits12[position], digits12[position + 1]
    if a == b:
        return
    swapped = digits12[:position] + b + a + digits12[position + 2 :]
    assert application_check_character(swapped) != application_check_character(digits12)


@PROPERTY
@given(
    DIGITS12,
    st.sampled_from(["", "CN", "cn", "Cn", "ZL", "zl", "zL"]),
    st.sampled_from(["", " ", "  ", "\t"]),
    st.booleans(),
    st.booleans(),
)
def test_application_variants_share_canonical(
    digits12: str, prefix: str, space: str, dotted: bool, lower: bool
) -> None:
    check = application_check_character(digits12)
    canonical = f"{digits12}.{check}"
    shown_check = check.lower() if lower else check
    spelling = f"{prefix}{space}{digits12}{'.' if dotted else ''}{shown_check}"
    parsed = parse_application_number(spelling, today=TODAY)
    assert parsed.canonical == canonical
    assert parse_application_number(parsed.canonical, today=TODAY) == parsed
    assert parse_application_number(parsed.patent_number, today=TODAY) == parsed


# ---------------------------------------------------------------------------------------------
# IPC
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("H01M 10/052", "H01M 10/052"),
        ("A61K 31/00", "A61K 31/00"),
        ("G06F 16/3344", "G06F 16/3344"),
        ("H01M10/052", "H01M 10/052"),
        ("H01M    10/052", "H01M 10/052"),
        (" h01m 10 / 052 ", "H01M 10/052"),
        ("C07D 487/04", "C07D 487/04"),
        ("B01J 1/00", "B01J 1/00"),
        ("H04L 9/0643", "H04L 9/0643"),
        ("A01B 1234/123456", "A01B 1234/123456"),
        ("Ｈ０１Ｍ １０／０５２", "H01M 10/052"),
        # ST.8 padding is insignificant: main group left zeros, subgroup right zeros after 2.
        ("H01M 010/052", "H01M 10/052"),
        ("H01M 0010/0520", "H01M 10/052"),
        ("H01M 10/000", "H01M 10/00"),
        ("H01M 10/100", "H01M 10/10"),
    ],
)
def test_ipc_valid(value: str, canonical: str) -> None:
    assert normalise_ipc(value) == canonical


@pytest.mark.parametrize(
    "value",
    [
        "",
        "I01M 10/052",  # section must be A-H
        "H1M 10/052",  # class is two digits
        "H01 10/052",  # missing subclass letter
        "H011 10/052",  # subclass must be a letter
        "H01M 10/5",  # subgroup has at least two digits
        "H01M 12345/00",  # main group at most four digits
        "H01M 10/1234567",  # subgroup at most six digits
        "H01M 10-052",
        "H01M10052",
        "H01M",
        "H01M 10/052 (2010.01)",
        "H01M 10/052, H01M 4/00",
    ],
)
def test_ipc_malformed(value: str) -> None:
    with pytest.raises(IdentifierError, match="is not an IPC symbol") as info:
        normalise_ipc(value)
    assert info.value.code == "bad_format"
    assert "IPC 分类号" in info.value.message_zh


def test_ipc_main_group_zero() -> None:
    with pytest.raises(IdentifierError, match="main group 0"):
        normalise_ipc("H01M 0/05")


IPC_PARTS = st.tuples(
    st.sampled_from("ABCDEFGH"),
    st.text(alphabet=DIGITS, min_size=2, max_size=2),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    st.integers(1, 9999),
    st.text(alphabet=DIGITS, min_size=2, max_size=6),
)


@PROPERTY
@given(IPC_PARTS, st.sampled_from(["", " ", "   "]), st.booleans())
def test_ipc_normalisation_is_canonical_and_idempotent(
    parts: tuple[str, str, str, int, str], gap: str, lower: bool
) -> None:
    section, klass, subclass, main, sub = parts
    raw = f"{section}{klass}{subclass}{gap}{main}/{sub}"
    result = normalise_ipc(raw.lower() if lower else raw)
    expected_sub = sub[:2] + sub[2:].rstrip("0")
    assert result == f"{section}{klass}{subclass} {main}/{expected_sub}"
    assert normalise_ipc(result) == result


def test_identifier_error_pickles_with_all_fields() -> None:
    error = IdentifierError("bad", "坏", "wrong_length")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - round-tripping our own object
    assert (str(copy), copy.message_zh, copy.code) == ("bad", "坏", "wrong_length")
    assert isinstance(copy, ValueError)
