"""Royalty terms of an open-licence declaration: shape, consistency and canonical form.

Patent Law Art. 50(1) makes the declaration state the royalty's payment method and standard;
Civil Code Art. 846 lists the methods (a lump sum paid at once or by instalments, a running
royalty on output, sales or profit, or an entry fee plus a running royalty) and leaves "other
agreed methods" open, which covers a per-unit amount (reference/law.md A4). A use-first-pay-later
free period (先用后付, law.md §6.3) may wrap any paying kind.

Every amount is a decimal string in CNY and every rate a percent string: the terms are hashed
and the same terms must always give the same bytes (registry.core.canonical).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Final

import marshmallow as ma

from registry.core.api import Schema
from registry.core.errors import FieldError
from registry.core.fields import MoneyField, PercentField
from registry.core.money import format_money
from registry.core.shares import format_percent
from registry.offers.models import RoyaltyKind

# CNIPA notice 国知发运字〔2024〕19号 (reference/law.md §3.3 [S]): guide-rails, not limits.
GUIDE_FIXED_FEE: Final = Decimal("20000000.00")
GUIDE_RATE_NET_SALES: Final = Decimal("20.00")
GUIDE_RATE_PROFIT: Final = Decimal("40.00")
DEFAULT_PAYMENT_DUE_DAYS: Final = 30
MAX_FREE_MONTHS: Final = 240
MAX_STEP_YEAR: Final = 20  # an invention's whole term (PL Art. 42)


class RoyaltyBase(enum.StrEnum):
    """What a running royalty is computed on (CC Art. 846(1))."""

    NET_SALES = "net_sales"
    PROFIT = "profit"
    UNITS = "units"


class ReportingPeriod(enum.StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"  # the default (DESIGN.md §2)
    ANNUAL = "annual"


class StrictInteger(ma.fields.Integer):
    """A JSON integer: no strings, floats or booleans (``true`` is not 1 month)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ma.ValidationError("send a whole number")
        return int(super()._deserialize(value, attr, data, **kwargs))


class InstalmentSchema(Schema):
    due_months = StrictInteger(
        required=True,
        validate=ma.validate.Range(min=0, max=MAX_FREE_MONTHS),
        metadata={"description": "months after the licence takes effect; 0 = at take-up"},
    )
    amount = MoneyField(required=True)


class StepSchema(Schema):
    from_year = StrictInteger(
        required=True,
        validate=ma.validate.Range(min=1, max=MAX_STEP_YEAR),
        metadata={"description": "licence year from which this rate applies (1 = first)"},
    )
    rate = PercentField(required=True)


class RoyaltySchema(Schema):
    """The royalty standard. Which fields a kind takes is checked by :func:`check_royalty`."""

    kind = ma.fields.Enum(RoyaltyKind, by_value=True, required=True)
    amount = MoneyField(allow_none=True, metadata={"description": "lump sum"})
    instalments = ma.fields.List(
        ma.fields.Nested(InstalmentSchema),
        allow_none=True,
        validate=ma.validate.Length(min=1, max=60),
        metadata={"description": "lump sum paid in dated instalments; they sum to amount"},
    )
    entry_fee = MoneyField(allow_none=True)
    base = ma.fields.Enum(RoyaltyBase, by_value=True, allow_none=True)
    rate = PercentField(allow_none=True, metadata={"description": "percent of the base"})
    unit_amount = MoneyField(allow_none=True, metadata={"description": "CNY per unit"})
    steps = ma.fields.List(
        ma.fields.Nested(StepSchema),
        allow_none=True,
        validate=ma.validate.Length(min=2, max=MAX_STEP_YEAR),
        metadata={"description": "rates stepped by licence year, from year 1, no gaps"},
    )
    annual_minimum = MoneyField(allow_none=True)
    cap = MoneyField(allow_none=True, metadata={"description": "annual maximum royalty"})
    free_months = StrictInteger(
        allow_none=True,
        validate=ma.validate.Range(min=1, max=MAX_FREE_MONTHS),
        metadata={"description": "use first, pay later: months free from take-up"},
    )
    reporting_period = ma.fields.Enum(ReportingPeriod, by_value=True, allow_none=True)
    payment_due_days = StrictInteger(allow_none=True, validate=ma.validate.Range(min=1, max=365))
    late_interest_rate = PercentField(
        allow_none=True, metadata={"description": "percent a year on late payments"}
    )
    sme_discount = PercentField(
        allow_none=True, metadata={"description": "percent off for SMEs, the same for all"}
    )


RUNNING_FIELDS = frozenset(
    {"base", "rate", "unit_amount", "steps", "annual_minimum", "cap", "reporting_period"}
)
PAYING_FIELDS = frozenset({"free_months", "payment_due_days", "late_interest_rate", "sme_discount"})
FIELDS_OF_KIND: Final[dict[RoyaltyKind, frozenset[str]]] = {
    RoyaltyKind.FREE: frozenset({"kind"}),
    RoyaltyKind.LUMP_SUM: frozenset({"kind", "amount", "instalments"}) | PAYING_FIELDS,
    RoyaltyKind.RUNNING: frozenset({"kind"}) | RUNNING_FIELDS | PAYING_FIELDS,
    RoyaltyKind.ENTRY_PLUS_RUNNING: frozenset({"kind", "entry_fee"})
    | RUNNING_FIELDS
    | PAYING_FIELDS,
}
RATE_BASES = frozenset({RoyaltyBase.NET_SALES, RoyaltyBase.PROFIT})


def _given(royalty: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in royalty.items() if value is not None}


def check_royalty(
    royalty: dict[str, Any], *, term_months: int | None, term_years: int | None
) -> list[FieldError]:
    """Every inconsistency of a loaded royalty (as :class:`RoyaltySchema` loads it).

    ``term_months`` is the longest licence term (None when unknown): a free period, an
    instalment or a step must fall inside it. Field paths start with ``royalty.``.
    """
    errors: list[FieldError] = []
    given = _given(royalty)
    kind = RoyaltyKind(given["kind"])

    def error(field: str, message: str) -> None:
        errors.append(FieldError.of(f"royalty.{field}", message))

    for name in sorted(given.keys() - FIELDS_OF_KIND[kind]):
        error(name, f"not part of a {kind.value} royalty")
    if kind is RoyaltyKind.LUMP_SUM:
        _check_lump_sum(given, term_months, error)
    if kind in (RoyaltyKind.RUNNING, RoyaltyKind.ENTRY_PLUS_RUNNING):
        _check_running(given, term_years, error)
    if kind is RoyaltyKind.ENTRY_PLUS_RUNNING and "entry_fee" not in given:
        error("entry_fee", "an entry fee plus running royalty needs the entry fee")
    free = given.get("free_months")
    if free is not None and term_months is not None and free >= term_months:
        error(
            "free_months",
            f"a free period of {free} months is not shorter than the licence term "
            f"({term_months} months): nothing would ever be paid",
        )
    return errors


def _check_lump_sum(given: dict[str, Any], term_months: int | None, error: Any) -> None:
    amount: Decimal | None = given.get("amount")
    if amount is None:
        error("amount", "a lump sum royalty needs the amount")
    instalments: list[dict[str, Any]] = given.get("instalments") or []
    if not instalments:
        return
    total = sum((i["amount"] for i in instalments), Decimal("0.00"))
    if amount is not None and total != amount:
        error(
            "instalments",
            f"the instalments sum to {format_money(total)}, not the lump sum "
            f"{format_money(amount)}",
        )
    previous = -1
    for index, instalment in enumerate(instalments):
        due = instalment["due_months"]
        if due <= previous:
            error(f"instalments.{index}.due_months", "instalments are listed in due order")
        previous = max(previous, due)
        if term_months is not None and due >= term_months:
            error(
                f"instalments.{index}.due_months",
                f"due {due} months after take-up, after the licence term ({term_months} months)",
            )


def _check_running(given: dict[str, Any], term_years: int | None, error: Any) -> None:
    base = given.get("base")
    if base is None:
        error("base", "a running royalty names its base: net_sales, profit or units")
        return
    base = RoyaltyBase(base)
    has_rate, has_steps = "rate" in given, "steps" in given
    if base is RoyaltyBase.UNITS:
        if "unit_amount" not in given:
            error("unit_amount", "a royalty on units needs the amount per unit")
        for name in ("rate", "steps"):
            if name in given:
                error(name, "a royalty on units is an amount per unit, not a percent rate")
    else:
        if "unit_amount" in given:
            error("unit_amount", f"a royalty on {base.value} is a percent rate, not per unit")
        if has_rate and has_steps:
            error("steps", "send a fixed rate or stepped rates, not both")
        elif not has_rate and not has_steps:
            error("rate", f"a royalty on {base.value} needs a rate (or steps)")
    if has_steps:
        _check_steps(given["steps"], term_years, error)
    minimum, cap = given.get("annual_minimum"), given.get("cap")
    if minimum is not None and cap is not None and cap < minimum:
        error("cap", f"the annual cap {format_money(cap)} is below the annual minimum")


def _check_steps(steps: list[dict[str, Any]], term_years: int | None, error: Any) -> None:
    if steps[0]["from_year"] != 1:
        error(
            "steps.0.from_year",
            f"the schedule starts in year {steps[0]['from_year']}: years before it have no "
            "rate (a gap); the first step is from year 1",
        )
    for index in range(1, len(steps)):
        previous, current = steps[index - 1]["from_year"], steps[index]["from_year"]
        if current <= previous:
            error(
                f"steps.{index}.from_year",
                f"year {current} does not follow year {previous}: steps go up year by year",
            )
    last = steps[-1]["from_year"]
    if term_years is not None and last > term_years:
        error(
            f"steps.{len(steps) - 1}.from_year",
            f"a step from year {last} lies after the {term_years}-year licence term",
        )


def upfront_amount(royalty: dict[str, Any]) -> Decimal:
    """What falls due at take-up, before any discount or free period: the lump sum (or its
    instalments due at month 0) or the entry fee (PL Art. 51(1): the licence is obtained by
    paying as announced)."""
    kind = RoyaltyKind(royalty["kind"])
    if kind is RoyaltyKind.LUMP_SUM:
        instalments = royalty.get("instalments")
        if instalments:
            return sum(
                (Decimal(i["amount"]) for i in instalments if i["due_months"] == 0),
                Decimal("0.00"),
            )
        return Decimal(royalty["amount"])
    if kind is RoyaltyKind.ENTRY_PLUS_RUNNING:
        return Decimal(royalty["entry_fee"])
    return Decimal("0.00")


MONEY_FIELDS = frozenset({"amount", "entry_fee", "unit_amount", "annual_minimum", "cap"})
PERCENT_FIELDS = frozenset({"rate", "late_interest_rate", "sme_discount"})


def royalty_document(royalty: dict[str, Any]) -> dict[str, Any]:
    """The canonical JSON form of a checked royalty: exact strings, defaults filled in,
    fields a kind does not use left out."""
    given = _given(royalty)
    kind = RoyaltyKind(given["kind"])
    doc: dict[str, Any] = {"kind": kind.value}
    for name, value in given.items():
        if name == "kind":
            continue
        if name in MONEY_FIELDS:
            doc[name] = format_money(value)
        elif name in PERCENT_FIELDS:
            doc[name] = format_percent(value)
        elif name == "instalments":
            doc[name] = [
                {"due_months": i["due_months"], "amount": format_money(i["amount"])} for i in value
            ]
        elif name == "steps":
            doc[name] = [
                {"from_year": s["from_year"], "rate": format_percent(s["rate"])} for s in value
            ]
        elif isinstance(value, enum.Enum):
            doc[name] = value.value
        else:
            doc[name] = value
    if kind is not RoyaltyKind.FREE:
        doc.setdefault("payment_due_days", DEFAULT_PAYMENT_DUE_DAYS)
    if kind in (RoyaltyKind.RUNNING, RoyaltyKind.ENTRY_PLUS_RUNNING):
        doc.setdefault("reporting_period", ReportingPeriod.QUARTERLY.value)
    return doc


def rates(royalty: dict[str, Any]) -> Iterable[Decimal]:
    """Every percent rate a running royalty may charge (the fixed rate or each step)."""
    if royalty.get("rate") is not None:
        yield Decimal(royalty["rate"])
    for step in royalty.get("steps") or ():
        yield Decimal(step["rate"])


def guide_rail_excesses(royalty: dict[str, Any]) -> list[str]:
    """Where a royalty document exceeds the 2024 CNIPA guide-rails (a warning, E10)."""
    found = []
    for name in ("amount", "entry_fee"):
        value = royalty.get(name)
        if value is not None and Decimal(value) > GUIDE_FIXED_FEE:
            found.append(f"{name} {value} CNY exceeds RMB 20 million")
    base = royalty.get("base")
    limit = {
        RoyaltyBase.NET_SALES.value: GUIDE_RATE_NET_SALES,
        RoyaltyBase.PROFIT.value: GUIDE_RATE_PROFIT,
    }.get(base or "")
    if limit is not None:
        top = max(rates(royalty), default=Decimal(0))
        if top > limit:
            found.append(f"a rate of {top}% of {base} exceeds {limit}%")
    return found
