"""A licence's schedule: every amount it owes and every period it reports, from its terms.

Built from the licence's terms snapshot, effective date and end date (registry.licences), so
it can be recomputed at any time and always gives the same answer. Each rule is the contract's
(registry.contracts.wording, CC Art. 846 methods, reference/law.md A3-A4):

* **Entry fee, lump sum**: paid within ``payment_due_days`` after the licence takes effect
  (PL Art. 51(1): the licence is obtained by paying as announced).
* **Instalments** fall due ``due_months`` months after the licence takes effect (the same day
  of the month, or the month's last day) and are paid within ``payment_due_days`` after. All
  are listed even when a licence cut short by patent expiry ends first: the lump sum is the
  price agreed once (CC Art. 846, 一次总算).
* **Running royalty**: settled for "each calendar month / quarter / year" as the terms say
  (quarterly by default, DESIGN.md §2): the licensee reports and pays within
  ``payment_due_days`` after each period ends. The first period runs from the day royalties
  start to the end of its calendar period; the last is cut at the licence's end date (no
  licence outlives the patent, CC Art. 865). When the rate is stepped or there is an annual
  minimum or cap, periods are also cut at each licence-year anniversary (the contract: a
  licence year is each twelve months from the effective date), so no report mixes two
  licence years (see registry.clearing.royalties).
* **Use first, pay later** (law.md §6.3 and A3; the contract's free-period clause): the first
  ``free_months`` months from the effective date are free. (1) No running royalty accrues in
  them: they are one free period with nothing to report, and the first reporting period
  starts the day after. (2) An amount that would fall due within them (entry fee, lump sum,
  an instalment) is not reduced but paid within ``payment_due_days`` after the free period
  ends (the Sichuan guideline: the full fee once the trigger is met). (3) The annual minimum
  is pro-rated by day from the end of the free period. A free period longer than the licence
  ends with it.
* **Annual minimum**: after each licence year the licensee tops the year's running royalties
  up to the minimum, due with the year's last report. A licence year cut short by the end
  date has its minimum pro-rated by day, as the free period does.
* **SME discount** reduces every fixed amount; instalments share the discounted lump sum by
  largest remainder (registry.core.shares.allocate), so they add up to it to the fen.

Amounts are integer fen; an item's amount is None when it depends on a report.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from registry.clearing.royalties import (
    RUNNING_KINDS,
    ClearingInputError,
    annual_minimum,
    discounted,
    fen,
    royalty_of,
)
from registry.core.shares import allocate
from registry.offers.lifecycle import add_months, add_years
from registry.offers.models import RoyaltyKind
from registry.offers.royalty import DEFAULT_PAYMENT_DUE_DAYS, ReportingPeriod

ONE_DAY: Final = timedelta(days=1)
MONTHS_OF: Final = {
    ReportingPeriod.MONTHLY: 1,
    ReportingPeriod.QUARTERLY: 3,
    ReportingPeriod.ANNUAL: 12,
}


class ItemKind(enum.StrEnum):
    ENTRY_FEE = "entry_fee"
    LUMP_SUM = "lump_sum"
    INSTALMENT = "instalment"
    RUNNING_ROYALTY = "running_royalty"
    MINIMUM_TRUE_UP = "minimum_true_up"


KIND_ORDER: Final = {kind: position for position, kind in enumerate(ItemKind)}


@dataclass(frozen=True)
class Period:
    """A reporting period, or (``free``) the use-first-pay-later period with nothing due."""

    period_start: date
    period_end: date
    licence_year: int  # the year the period starts in (and lies in, when years matter)
    free: bool
    report_due_date: date | None  # None for the free period
    payment_due_date: date | None


@dataclass(frozen=True)
class DueItem:
    """One amount the licence owes. ``amount`` is fen after any SME discount, or None when a
    report decides it (running royalty) or the year's reports do (minimum true-up)."""

    kind: ItemKind
    due_date: date  # the last day to pay
    amount: int | None
    period_start: date | None = None  # running royalty: the period; true-up: the licence year
    period_end: date | None = None
    licence_year: int | None = None
    falls_due_date: date | None = None  # fixed amounts: the day owed, before the days to pay
    discount: int | None = None  # fen taken off a fixed amount for an SME
    minimum: int | None = None  # true-up: the year's minimum after pro-rating and discount
    number: int | None = None  # instalment: 1, 2, ...


@dataclass(frozen=True)
class Schedule:
    items: tuple[DueItem, ...]
    periods: tuple[Period, ...]
    free_until: date | None  # last day of a use-first-pay-later free period


def licence_year_of(effective_date: date, day: date) -> int:
    """The licence year (1 = first) ``day`` falls in: twelve-month runs from the effective
    date, counted as registry.offers.lifecycle.term_end counts a term (29 February → 28th)."""
    years = day.year - effective_date.year
    if add_years(effective_date, years) > day:
        years -= 1
    return years + 1


def licence_year_bounds(effective_date: date, year: int) -> tuple[date, date]:
    """First and last day of licence year ``year``, before any cut at the licence's end."""
    return add_years(effective_date, year - 1), add_years(effective_date, year) - ONE_DAY


def calendar_period_end(day: date, reporting: ReportingPeriod) -> date:
    """Last day of the calendar month, quarter or year that ``day`` is in."""
    months = MONTHS_OF[reporting]
    first_month = (day.month - 1) // months * months + 1
    return add_months(date(day.year, first_month, 1), months) - ONE_DAY


def years_matter(royalty: dict[str, Any]) -> bool:
    """Whether the royalty depends on the licence year: stepped rates, a minimum or a cap."""
    return any(royalty.get(name) for name in ("steps", "annual_minimum", "cap"))


def free_until(royalty: dict[str, Any], effective_date: date, end_date: date) -> date | None:
    """Last day of the use-first-pay-later free period, never after the licence's end."""
    months = royalty.get("free_months")
    if months is None:
        return None
    return min(add_months(effective_date, int(months)) - ONE_DAY, end_date)


def build_schedule(
    terms: dict[str, Any], *, effective_date: date, end_date: date, is_sme: bool
) -> Schedule:
    """Every amount a licence on ``terms`` owes and every period it reports, in due order.

    Free terms owe nothing; only running royalties have periods, and they tile
    ``[effective_date, end_date]`` without gap or overlap. Raises
    :class:`~registry.clearing.royalties.ClearingInputError` (``end_date``) when the licence
    ends before it takes effect.
    """
    if end_date < effective_date:
        raise ClearingInputError("end_date", "the licence ends before it takes effect")
    royalty = royalty_of(terms)
    kind = RoyaltyKind(royalty["kind"])
    if kind is RoyaltyKind.FREE:
        return Schedule(items=(), periods=(), free_until=None)
    due_days = timedelta(days=int(royalty.get("payment_due_days") or DEFAULT_PAYMENT_DUE_DAYS))
    last_free = free_until(royalty, effective_date, end_date)
    items = _fixed_items(terms, effective_date, last_free, due_days, is_sme=is_sme)
    periods: list[Period] = []
    if kind in RUNNING_KINDS:
        periods = _periods(royalty, effective_date, end_date, last_free, due_days)
        items += [
            DueItem(
                kind=ItemKind.RUNNING_ROYALTY,
                due_date=period.payment_due_date,
                amount=None,
                period_start=period.period_start,
                period_end=period.period_end,
                licence_year=period.licence_year,
            )
            for period in periods
            if period.payment_due_date is not None
        ]
        items += _true_ups(terms, effective_date, end_date, last_free, due_days, is_sme=is_sme)
    items.sort(key=lambda i: (i.due_date, KIND_ORDER[i.kind], i.period_start or date.min))
    return Schedule(items=tuple(items), periods=tuple(periods), free_until=last_free)


def _pay_by(falls_due: date, last_free: date | None, due_days: timedelta) -> date:
    """The last day to pay an amount owed on ``falls_due``: within the days to pay after it,
    or after the free period when it falls due within it."""
    if last_free is not None and falls_due <= last_free:
        falls_due = last_free
    return falls_due + due_days


def _fixed_items(
    terms: dict[str, Any],
    effective_date: date,
    last_free: date | None,
    due_days: timedelta,
    *,
    is_sme: bool,
) -> list[DueItem]:
    royalty = royalty_of(terms)
    kind = RoyaltyKind(royalty["kind"])
    parts: list[dict[str, Any]] = royalty.get("instalments") or []
    if kind is RoyaltyKind.ENTRY_PLUS_RUNNING:
        item_kind, parts = ItemKind.ENTRY_FEE, [{"due_months": 0, "amount": royalty["entry_fee"]}]
    elif kind is RoyaltyKind.LUMP_SUM and not parts:
        item_kind, parts = ItemKind.LUMP_SUM, [{"due_months": 0, "amount": royalty["amount"]}]
    elif kind is RoyaltyKind.LUMP_SUM:
        item_kind = ItemKind.INSTALMENT
    else:
        return []
    fulls = [fen(part["amount"]) for part in parts]
    amounts = allocate(discounted(sum(fulls), terms, is_sme=is_sme), fulls)
    items = []
    for index, (part, full, amount) in enumerate(zip(parts, fulls, amounts, strict=True)):
        falls_due = add_months(effective_date, int(part["due_months"]))
        items.append(
            DueItem(
                kind=item_kind,
                due_date=_pay_by(falls_due, last_free, due_days),
                amount=amount,
                falls_due_date=falls_due,
                discount=full - amount,
                number=index + 1 if item_kind is ItemKind.INSTALMENT else None,
            )
        )
    return items


def _periods(
    royalty: dict[str, Any],
    effective_date: date,
    end_date: date,
    last_free: date | None,
    due_days: timedelta,
) -> list[Period]:
    periods = []
    start = effective_date
    if last_free is not None:
        periods.append(Period(effective_date, last_free, 1, True, None, None))
        start = last_free + ONE_DAY
    reporting = ReportingPeriod(royalty.get("reporting_period") or ReportingPeriod.QUARTERLY)
    split = years_matter(royalty)
    while start <= end_date:
        year = licence_year_of(effective_date, start)
        stop = min(calendar_period_end(start, reporting), end_date)
        if split:
            stop = min(stop, licence_year_bounds(effective_date, year)[1])
        periods.append(Period(start, stop, year, False, stop + due_days, stop + due_days))
        start = stop + ONE_DAY
    return periods


def _true_ups(
    terms: dict[str, Any],
    effective_date: date,
    end_date: date,
    last_free: date | None,
    due_days: timedelta,
    *,
    is_sme: bool,
) -> list[DueItem]:
    if royalty_of(terms).get("annual_minimum") is None:
        return []
    items = []
    for year in range(1, licence_year_of(effective_date, end_date) + 1):
        first, last = licence_year_bounds(effective_date, year)
        year_days = (last - first).days + 1
        last = min(last, end_date)
        payable_from = first if last_free is None else max(first, last_free + ONE_DAY)
        payable_days = max(0, (last - payable_from).days + 1)
        minimum = annual_minimum(
            terms, is_sme=is_sme, payable_days=payable_days, year_days=year_days
        )
        if minimum == 0:  # the whole year was free: there is nothing to top up
            continue
        items.append(
            DueItem(
                kind=ItemKind.MINIMUM_TRUE_UP,
                due_date=last + due_days,
                amount=None,
                period_start=first,
                period_end=last,
                licence_year=year,
                minimum=minimum,
            )
        )
    return items
