"""Validation and normalisation of the identifiers the registry keys records on.

Three identifier families are handled here, each with the rule it implements:

* **Unified Social Credit Code** (统一社会信用代码, USCC) of organisations, as laid down in
  GB 32100-2015 《法人和其他组织统一社会信用代码编码规则》: 18 characters drawn from a 31-character
  alphabet (the digits and the capital letters without I, O, Z, S, V), the 18th being a check
  character computed modulo 31 with weights 3^(i-1) mod 31, as the standard specifies.
* **Chinese patent application numbers** (专利申请号) in the CNIPA format in force since
  2003-10-01: ``YYYY`` filing year, one type digit, a seven-digit serial, a dot and a check
  character computed modulo 11 with weights 2-9, 2-5 (a remainder of 10 is written ``X``), as set
  out with its sources in ``reference/law.md`` section 8. The granted patent number is ``ZL`` +
  the application number (CNIPA numbering practice).
* **International Patent Classification** symbols (IPC, Strasbourg Agreement 1971; layout per
  WIPO Standard ST.8), e.g. ``H01M 10/052``.

Every function here is pure and uses the standard library only, so the same rules run in the web
layer, the importers and the migrations. Errors carry an English message and a Chinese one because
the registry's users file in both languages.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "USCC_ALPHABET",
    "ApplicationNumber",
    "IdentifierError",
    "PatentType",
    "application_check_character",
    "normalise_ipc",
    "parse_application_number",
    "uscc_check_character",
    "validate_uscc",
]


class IdentifierError(ValueError):
    """An identifier failed validation.

    ``str(error)`` is the English message; ``message_zh`` is the Chinese one. ``code`` is a short
    stable token (``wrong_length``, ``invalid_character``, ``wrong_check_character``, ...) so that
    API layers can map errors to fields without parsing prose.
    """

    def __init__(self, message: str, message_zh: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh
        self.code = code

    def __reduce__(self) -> tuple[type[IdentifierError], tuple[str, ...]]:
        # Exceptions pickle as type(*args) by default, and args holds only the English message;
        # rebuild with every field so the error survives multiprocessing and copy.
        return (type(self), (self.message, self.message_zh, self.code))


def _prepare(value: str) -> str:
    """Return ``value`` NFKC-normalised, upper-cased and with all whitespace removed.

    NFKC folds the full-width forms that Chinese input methods produce (``９１３５``, ``．``,
    ``／``) into ASCII, so a code copied from a Chinese document validates. Whitespace is dropped
    because printed codes are often grouped with spaces. The patterns below still insist on ASCII
    characters, so NFKC cannot let other scripts' digits through.
    """
    if not isinstance(value, str):
        raise IdentifierError(
            f"expected a string, got {type(value).__name__}",
            f"应为字符串，实际为 {type(value).__name__}",
            "wrong_type",
        )
    folded = unicodedata.normalize("NFKC", value).upper()
    return "".join(folded.split())


# ---------------------------------------------------------------------------------------------
# Unified Social Credit Code, GB 32100-2015
# ---------------------------------------------------------------------------------------------

#: The 31 code characters in value order (GB 32100-2015 table 1). I, O, Z, S and V are left out
#: because they are easily confused with 1, 0, 2, 5 and U when handwritten or read aloud.
USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE: Final = {ch: i for i, ch in enumerate(USCC_ALPHABET)}

#: Weights for positions 1-17: W_i = 3^(i-1) mod 31. Because 31 is prime and every weight is
#: non-zero mod 31, changing any single character always changes the check character.
_USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

_USCC_LENGTH: Final = 18


def _uscc_bad_character(value: str) -> tuple[int, str] | None:
    for position, ch in enumerate(value, start=1):
        if ch not in _USCC_VALUE:
            return position, ch
    return None


def uscc_check_character(first17: str) -> str:
    """Return the GB 32100-2015 check character for the first 17 characters of a USCC.

    C18 = 31 - (sum(value(C_i) * W_i) mod 31); a result of 31 is written as ``0``.

    Worked example (hand check of ``91350100M000100Y43``): the values are
    9,1,3,5,0,1,0,0,M=21,0,0,0,1,0,0,Y=30,4; the weighted sum is
    9+3+27+135+0+26+0+0+420+0+0+0+8+0+0+900+112 = 1640; 1640 mod 31 = 28; 31 - 28 = 3, so the
    check character is ``3``.
    """
    if len(first17) != len(_USCC_WEIGHTS):
        raise IdentifierError(
            f"expected 17 characters to compute a USCC check character, got {len(first17)}",
            f"计算统一社会信用代码校验码需要 17 位字符，实际为 {len(first17)} 位",
            "wrong_length",
        )
    bad = _uscc_bad_character(first17)
    if bad is not None:
        position, ch = bad
        raise IdentifierError(
            f"invalid character {ch!r} at position {position} of the unified social credit code",
            f"统一社会信用代码第 {position} 位字符 {ch!r} 无效",
            "invalid_character",
        )
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    check = 31 - total % 31
    # 31 is not a code value, the standard maps it to "0" (value 0, which the formula never
    # produces otherwise since 31 - r > 0).
    return USCC_ALPHABET[0] if check == 31 else USCC_ALPHABET[check]


def validate_uscc(value: str) -> str:
    """Validate an 18-character USCC and return its canonical (upper-case, unspaced) form.

    Positions 1 (registration authority) and 2 (organisation type) are only checked against the
    code alphabet: the code tables for them have been extended by later notices, and rejecting a
    genuine code for an unknown authority would be worse than accepting a well-formed one whose
    check character is right.
    """
    code = _prepare(value)
    if len(code) != _USCC_LENGTH:
        raise IdentifierError(
            f"a unified social credit code has {_USCC_LENGTH} characters, got {len(code)}",
            f"统一社会信用代码应为 {_USCC_LENGTH} 位，实际为 {len(code)} 位",
            "wrong_length",
        )
    bad = _uscc_bad_character(code)
    if bad is not None:
        position, ch = bad
        raise IdentifierError(
            f"invalid character {ch!r} at position {position} of the unified social credit code"
            " (allowed: digits and capital letters except I, O, Z, S, V)",
            f"统一社会信用代码第 {position} 位字符 {ch!r} 无效"
            "（只允许数字和除 I、O、Z、S、V 外的大写字母）",
            "invalid_character",
        )
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        raise IdentifierError(
            f"wrong check character {code[17]!r} in unified social credit code {code}:"
            f" expected {expected!r}",
            f"统一社会信用代码 {code} 的校验码 {code[17]!r} 错误，应为 {expected!r}",
            "wrong_check_character",
        )
    return code


# ---------------------------------------------------------------------------------------------
# Chinese patent application numbers, format since 2003-10-01 (law.md section 8)
# ---------------------------------------------------------------------------------------------

PatentType = Literal["invention", "utility_model", "design"]

#: Digit 5 of the number. 8 and 9 are PCT applications entering the Chinese national phase as an
#: invention or a utility model; they are those types for every legal purpose (term, evaluation
#: report), so they map to the same patent type.
_TYPE_BY_DIGIT: Final[dict[str, PatentType]] = {
    "1": "invention",
    "2": "utility_model",
    "3": "design",
    "8": "invention",
    "9": "utility_model",
}

#: Weights 2..9 then 2..5, applied left to right. They are all non-zero mod 11 and 11 is prime,
#: so every single-digit substitution changes the remainder (and so the check character).
_APPLICATION_WEIGHTS: Final = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)

#: The 12-digit format started on 2003-10-01; earlier numbers have 8 or 9 digits.
_FIRST_MODERN_YEAR: Final = 2003

#: CNIPA assigns filing dates in Beijing time, which has been a fixed UTC+8 with no daylight
#: saving since 1991, so a fixed offset is exact and needs no tz database.
_BEIJING: Final = datetime.timezone(datetime.timedelta(hours=8), "Asia/Shanghai")

# The digits are matched lazily so that, with no dot, the last character is taken as the check
# character ("2021101234567" -> "202110123456" + "7").
_APPLICATION_SHAPE: Final = re.compile(
    r"(?:CN|ZL)?(?P<digits>[0-9]+?)\.?(?P<check>[0-9X])", re.ASCII
)


def application_check_character(digits12: str) -> str:
    """Return the check character of a 12-digit application number.

    sum(d_i * W_i) mod 11 with weights 2,3,4,5,6,7,8,9,2,3,4,5; a remainder of 10 is ``X``, any
    other remainder is the digit itself (there is no "11 - r" step, unlike ISBN-10).
    E.g. ``202110123456`` -> 117 mod 11 = 7; ``200710308494`` -> 153 mod 11 = 10 -> ``X``.
    """
    if len(digits12) != len(_APPLICATION_WEIGHTS) or not (
        digits12.isascii() and digits12.isdigit()
    ):
        raise IdentifierError(
            f"expected 12 ASCII digits to compute an application-number check character,"
            f" got {digits12!r}",
            f"计算申请号校验位需要 12 位数字，实际为 {digits12!r}",
            "wrong_length",
        )
    remainder = sum(int(d) * w for d, w in zip(digits12, _APPLICATION_WEIGHTS, strict=True)) % 11
    return "X" if remainder == 10 else str(remainder)


@dataclass(frozen=True)
class ApplicationNumber:
    """A validated modern (post-2003-10-01) Chinese patent application number.

    Construction validates the shape and the check character, so an instance is always
    self-consistent; the "year not in the future" rule needs a clock and lives in
    :func:`parse_application_number`.
    """

    year: int
    type_digit: str
    serial: str
    check: str

    def __post_init__(self) -> None:
        if not _FIRST_MODERN_YEAR <= self.year <= 9999:
            raise IdentifierError(
                f"filing year {self.year} is outside the 12-digit application-number format"
                f" (used since {_FIRST_MODERN_YEAR})",
                f"申请年份 {self.year} 不属于 12 位申请号格式（自 {_FIRST_MODERN_YEAR} 年起使用）",
                "year_out_of_range",
            )
        if self.type_digit not in _TYPE_BY_DIGIT:
            raise IdentifierError(
                f"invalid patent type digit {self.type_digit!r} (expected 1, 2, 3, 8 or 9)",
                f"专利类型位 {self.type_digit!r} 无效（应为 1、2、3、8 或 9）",
                "wrong_type_digit",
            )
        if len(self.serial) != 7 or not (self.serial.isascii() and self.serial.isdigit()):
            raise IdentifierError(
                f"the serial number must be 7 digits, got {self.serial!r}",
                f"流水号应为 7 位数字，实际为 {self.serial!r}",
                "wrong_length",
            )
        expected = application_check_character(self.digits12)
        if self.check != expected:
            raise IdentifierError(
                f"wrong check character {self.check!r} in application number {self.digits12}:"
                f" expected {expected!r}",
                f"申请号 {self.digits12} 的校验位 {self.check!r} 错误，应为 {expected!r}",
                "wrong_check_character",
            )

    @property
    def digits12(self) -> str:
        """The twelve digits before the dot, e.g. ``202110123456``."""
        return f"{self.year:04d}{self.type_digit}{self.serial}"

    @property
    def canonical(self) -> str:
        """The form CNIPA prints, e.g. ``202110123456.7``."""
        return f"{self.digits12}.{self.check}"

    @property
    def patent_number(self) -> str:
        """The granted patent number, ``ZL`` + the application number."""
        return f"ZL{self.canonical}"

    @property
    def patent_type(self) -> PatentType:
        """``invention`` (1, 8), ``utility_model`` (2, 9) or ``design`` (3)."""
        return _TYPE_BY_DIGIT[self.type_digit]

    @property
    def is_pct_national_phase(self) -> bool:
        """True for type digits 8 and 9 (PCT applications entering the national phase)."""
        return self.type_digit in ("8", "9")

    def __str__(self) -> str:
        return self.canonical


def parse_application_number(
    value: str, *, today: datetime.date | None = None
) -> ApplicationNumber:
    """Parse and validate a modern Chinese patent application number.

    Accepted spellings of the same number: ``202110123456.7``, ``2021101234567``,
    ``CN202110123456.7``, ``ZL 202110123456.7``, ``zl2021 1012 3456.7`` (case-insensitive prefix,
    any whitespace, lower-case ``x``, full-width characters). ``today`` defaults to the current
    date in Beijing time and bounds the filing year from above, since a number cannot have been
    filed in a future year.
    """
    text = _prepare(value)
    match = _APPLICATION_SHAPE.fullmatch(text)
    if match is None:
        raise IdentifierError(
            f"{value!r} is not an application number of the form YYYYTNNNNNNN.C"
            " (optionally prefixed by CN or ZL)",
            f"{value!r} 不是 YYYYTNNNNNNN.C 形式的申请号（可带 CN 或 ZL 前缀）",
            "bad_format",
        )
    digits = match["digits"]
    check = match["check"]
    if len(digits) in (8, 9):
        # Pre-2003 numbers (YY + type + 5-digit serial, 1989-2003) have a different layout; the
        # registry only takes patents that can still be in force, which all have the new format.
        raise IdentifierError(
            f"{value!r} looks like a pre-October-2003 application number; only the 12-digit"
            " format (YYYYTNNNNNNN.C) is accepted",
            f"{value!r} 似为 2003 年 10 月前的旧申请号；只接受 12 位格式（YYYYTNNNNNNN.C）",
            "old_format",
        )
    if len(digits) != 12:
        raise IdentifierError(
            f"an application number has 12 digits before the check character, got"
            f" {len(digits)} in {value!r}",
            f"申请号校验位前应为 12 位数字，{value!r} 中为 {len(digits)} 位",
            "wrong_length",
        )
    year = int(digits[:4])
    if year < _FIRST_MODERN_YEAR:
        raise IdentifierError(
            f"filing year {year} is before {_FIRST_MODERN_YEAR}, when the 12-digit format began",
            f"申请年份 {year} 早于 12 位申请号格式启用的 {_FIRST_MODERN_YEAR} 年",
            "year_out_of_range",
        )
    current = today if today is not None else datetime.datetime.now(_BEIJING).date()
    if year > current.year:
        raise IdentifierError(
            f"filing year {year} is in the future (current year {current.year})",
            f"申请年份 {year} 晚于当前年份 {current.year}",
            "year_out_of_range",
        )
    # The dataclass checks the type digit, the serial and the check character.
    return ApplicationNumber(year=year, type_digit=digits[4], serial=digits[5:], check=check)


# ---------------------------------------------------------------------------------------------
# IPC symbols, Strasbourg Agreement / WIPO ST.8
# ---------------------------------------------------------------------------------------------

# Section A-H, two-digit class, subclass letter, main group (1-4 digits), "/", subgroup (2-6
# digits). Whitespace has already been removed by _prepare, so "H01M10/052", "H01M   10/052" and
# "H01M 10 / 052" all reach this pattern as "H01M10/052".
_IPC_SHAPE: Final = re.compile(
    r"(?P<subclass>[A-H][0-9]{2}[A-Z])(?P<main>[0-9]{1,4})/(?P<sub>[0-9]{2,6})", re.ASCII
)


def normalise_ipc(value: str) -> str:
    """Validate an IPC symbol and return it as ``H01M 10/052`` (one space, no padding).

    Two normalisations make equal symbols compare equal, both following ST.8, which pads the main
    group on the left and the subgroup on the right with zeros: leading zeros of the main group are
    dropped (``H01M 010/052`` -> ``H01M 10/052``) and trailing zeros of the subgroup beyond its
    first two digits are dropped (``10/0520`` -> ``10/052``; ``10/00`` stays, it is the main-group
    entry). A main group of zero does not exist and is refused.
    """
    text = _prepare(value)
    match = _IPC_SHAPE.fullmatch(text)
    if match is None:
        raise IdentifierError(
            f"{value!r} is not an IPC symbol of the form 'H01M 10/052'"
            " (section A-H, 2-digit class, subclass letter, 1-4 digit main group,"
            " '/', 2-6 digit subgroup)",
            f"{value!r} 不是形如 'H01M 10/052' 的 IPC 分类号"
            "（部 A-H、2 位大类、小类字母、1-4 位大组、'/'、2-6 位小组）",
            "bad_format",
        )
    main = match["main"].lstrip("0")
    if not main:
        raise IdentifierError(
            f"{value!r} has main group 0, which does not exist in the IPC",
            f"{value!r} 的大组号为 0，IPC 中不存在",
            "bad_format",
        )
    sub = match["sub"]
    sub = sub[:2] + sub[2:].rstrip("0")
    return f"{match['subclass']} {main}/{sub}"
