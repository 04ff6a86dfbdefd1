"""What a royalty report, a licence year's minimum and a late payment cost, exact to the fen.

Inputs are a licence's terms snapshot (registry.offers.terms.terms_document: amounts are CNY
decimal strings, rates percent strings) and integer fen or units; outputs are integer fen
(reliability.md §0 rule 2). The methods are Civil Code Art. 846's (reference/law.md A4); what
each term means is what the contract says (registry.contracts.wording), which governs.

**Rounding.** Every amount is an exact fraction of the terms and figures, rounded once, half
up (away from zero, as registry.core.money.round_fen), to the fen: a report's royalty at the
end of its computation (rate x base, less the SME discount, limited by the cap), never per
step (10.5 fen less 10 % is 9.45, so 9 fen; rounding 10.5 to 11 first would give 10). The
breakdown a statement shows rounds gross and gross-less-discount the same way and takes the
discount and the cap reduction as differences, so its lines add up to the fen.

**SME discount.** The contract reduces "every royalty amount in this article" for an SME
licensee: the entry fee, the lump sum and its instalments, each period's running royalty, and
so the annual minimum and cap too, which are therefore compared with royalties after the
discount. The discounted cap and minimum are themselves amounts, rounded once.

**Licence years.** A running rate may rise or fall by year (CC Art. 846); the contract counts
licence years in twelve-month runs from the effective date, and the minimum and cap are per
licence year. When any of these matter the schedule (registry.clearing.schedule) cuts
reporting periods at each anniversary, so the licensee reports what it sold in each licence
year: nothing is pro-rated by days (which would assume even sales) or charged at the rate of
the year a period starts in. :func:`royalty_for_report` takes the licence year as given.

**Late interest.** Simple interest at the terms' annual rate on the overdue amount "from the
day after the due date until paid" (the contract's clause: an agreed way of computing the loss,
CC Art. 585, besides the arrears of CC Art. 873), actual/365: a day late costs 1/365 of the
annual rate, in leap years too (3.65 % a year is 0.01 % a day). No rate, no interest here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from registry.core.errors import FieldError, RuleViolation, ValidationFailed
from registry.core.money import MAX_AMOUNT, to_fen
from registry.offers.models import RoyaltyKind
from registry.offers.royalty import RoyaltyBase

MAX_FEN: Final = to_fen(MAX_AMOUNT)
MAX_UNITS: Final = 10**12
DAYS_IN_YEAR: Final = 365  # actual/365 fixed
RUNNING_KINDS: Final = frozenset({RoyaltyKind.RUNNING, RoyaltyKind.ENTRY_PLUS_RUNNING})


class ClearingInputError(ValidationFailed, ValueError):
    """A figure the arithmetic cannot take; ``field`` names it as the API does (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, [FieldError.of(field, message)])
        self.field = field

    def __reduce__(self) -> tuple[type[ClearingInputError], tuple[str, str]]:
        return (type(self), (self.field, self.message))


class NotReportable(RuleViolation, ValueError):
    """A royalty report on terms without a running royalty (free or lump sum): 409."""

    code = "not_reportable"


@dataclass(frozen=True)
class RoyaltyComputation:
    """One period's running royalty and how it was reached (all amounts in fen).

    ``gross - discount - cap_reduction == due``; ``due`` is ``exact_due`` rounded half up.
    """

    period_start: date
    period_end: date
    licence_year: int
    base: RoyaltyBase
    base_amount: int  # fen of net sales or profit, or units
    rate: Decimal | None  # percent of the base; None for a royalty per unit
    unit_amount: int | None  # fen per unit; None for a percent rate
    discount_rate: Decimal | None  # SME discount percent, when it applies
    cap: int | None  # the licence year's cap after any discount
    charged_in_year: int  # royalties already due in the licence year, before this report
    gross: int
    discount: int
    cap_reduction: int
    due: int
    exact_due: Fraction


def royalty_of(terms: dict[str, Any]) -> dict[str, Any]:
    """The royalty document inside a terms snapshot."""
    royalty = terms.get("royalty")
    if not isinstance(royalty, dict):
        raise ValueError("a terms snapshot holds its royalty document under 'royalty'")
    return royalty


def fen(amount: str) -> int:
    """A CNY decimal string of the terms as integer fen."""
    return to_fen(Decimal(amount))


def fraction_of_percent(percent: str | Decimal) -> Fraction:
    return Fraction(Decimal(percent)) / 100


def round_half_up(value: Fraction) -> int:
    """``value`` rounded to a whole number (of fen), halves away from zero."""
    whole, rest = divmod(abs(value.numerator), value.denominator)
    if 2 * rest >= value.denominator:
        whole += 1
    return whole if value >= 0 else -whole


def sme_factor(terms: dict[str, Any], *, is_sme: bool) -> Fraction:
    """What is left of each royalty amount after the SME discount (1 when none applies)."""
    discount = royalty_of(terms).get("sme_discount")
    if not is_sme or discount is None:
        return Fraction(1)
    return 1 - fraction_of_percent(discount)


def discounted(amount: int, terms: dict[str, Any], *, is_sme: bool) -> int:
    """A fixed royalty amount in fen (entry fee, lump sum, cap, minimum) after any discount."""
    return round_half_up(amount * sme_factor(terms, is_sme=is_sme))


def rate_for_year(terms: dict[str, Any], licence_year: int) -> Decimal:
    """The percent rate of a licence year: the fixed rate, or the last step begun by then."""
    royalty = royalty_of(terms)
    steps = royalty.get("steps")
    if not steps:
        return Decimal(royalty["rate"])
    begun = [step for step in steps if int(step["from_year"]) <= licence_year]
    if not begun:
        raise ValueError(f"the stepped rates set no rate for licence year {licence_year}")
    return Decimal(max(begun, key=lambda step: int(step["from_year"]))["rate"])


def annual_cap(terms: dict[str, Any], *, is_sme: bool) -> int | None:
    """The most a licence year's running royalties may total, after any discount."""
    cap = royalty_of(terms).get("cap")
    return None if cap is None else discounted(fen(cap), terms, is_sme=is_sme)


def royalty_for_report(
    terms: dict[str, Any],
    *,
    period_start: date,
    period_end: date,
    base_amount: int,
    licence_year: int,
    is_sme: bool,
    charged_in_year: int = 0,
) -> RoyaltyComputation:
    """The running royalty a report for one period owes.

    ``base_amount`` is fen of net sales or profit, or a count of units, as the terms' base
    needs; ``licence_year`` (1 = first) picks a stepped rate; ``charged_in_year`` is what the
    licence year's other reports already owe (after discount and cap; a corrected report's
    earlier version excluded), so the cap limits the year's total: whichever report crosses
    it is reduced, and later ones owe nothing.

    Raises :class:`NotReportable` for terms without a running royalty, and
    :class:`ClearingInputError` naming the field for a negative or implausible base
    (``net_sales``, ``profit`` or ``units``), a period ending before it starts or a licence
    year below 1.
    """
    royalty = royalty_of(terms)
    kind = RoyaltyKind(royalty["kind"])
    if kind not in RUNNING_KINDS:
        raise NotReportable(f"a {kind.value} licence has no running royalty to report")
    base = RoyaltyBase(royalty["base"])
    _check_report(base, base_amount, period_start, period_end, licence_year)
    _check_charged(charged_in_year)
    rate: Decimal | None = None
    unit_amount: int | None = None
    if base is RoyaltyBase.UNITS:
        unit_amount = fen(royalty["unit_amount"])
        gross_exact = Fraction(base_amount * unit_amount)
    else:
        rate = rate_for_year(terms, licence_year)
        gross_exact = base_amount * fraction_of_percent(rate)
    if gross_exact > MAX_FEN:
        raise ClearingInputError(base.value, f"the royalty would exceed {MAX_AMOUNT} CNY")
    factor = sme_factor(terms, is_sme=is_sme)
    net_exact = gross_exact * factor
    cap = annual_cap(terms, is_sme=is_sme)
    room = None if cap is None else Fraction(max(0, cap - charged_in_year))
    exact_due = net_exact if room is None else min(net_exact, room)
    gross, net, due = (round_half_up(x) for x in (gross_exact, net_exact, exact_due))
    return RoyaltyComputation(
        period_start=period_start,
        period_end=period_end,
        licence_year=licence_year,
        base=base,
        base_amount=base_amount,
        rate=rate,
        unit_amount=unit_amount,
        discount_rate=Decimal(royalty["sme_discount"]) if factor != 1 else None,
        cap=cap,
        charged_in_year=charged_in_year,
        gross=gross,
        discount=gross - net,
        cap_reduction=net - due,
        due=due,
        exact_due=exact_due,
    )


def _check_report(base: RoyaltyBase, base_amount: int, start: date, end: date, year: int) -> None:
    what = base.value.replace("_", " ")
    if isinstance(base_amount, bool) or not isinstance(base_amount, int):
        unit = "units" if base is RoyaltyBase.UNITS else "fen"
        raise ClearingInputError(base.value, f"{what} is a whole number of {unit}")
    if base_amount < 0:
        loss = " (a loss owes nothing: report 0)" if base is RoyaltyBase.PROFIT else ""
        raise ClearingInputError(base.value, f"{what} cannot be negative{loss}")
    limit = MAX_UNITS if base is RoyaltyBase.UNITS else MAX_FEN
    if base_amount > limit:
        raise ClearingInputError(base.value, f"{what} of {base_amount} is implausibly large")
    if end < start:
        raise ClearingInputError("period_end", "the period ends before it starts")
    if year < 1:
        raise ClearingInputError("licence_year", "licence years count from 1")


def _check_charged(charged_in_year: int) -> None:
    if charged_in_year < 0:
        raise ValueError("royalties already charged in a licence year cannot be negative")


def annual_minimum(
    terms: dict[str, Any],
    *,
    is_sme: bool,
    payable_days: int | None = None,
    year_days: int | None = None,
) -> int:
    """A licence year's minimum running royalty in fen, 0 when the terms set none.

    It accrues by the day over the ``payable_days`` of the year's ``year_days`` in which
    royalties can accrue (both omitted: the whole year): the contract pro-rates it from the end
    of a free period, and the schedule does the same for a last year cut short by the licence's
    end, after which nothing can accrue (CC Art. 865). Discounted for an SME, rounded once.
    """
    minimum = royalty_of(terms).get("annual_minimum")
    if minimum is None:
        return 0
    share = Fraction(1)
    if payable_days is not None or year_days is not None:
        if payable_days is None or year_days is None:
            raise ValueError("give both payable_days and year_days, or neither")
        if year_days <= 0 or not 0 <= payable_days <= year_days:
            raise ValueError(f"{payable_days} payable days do not fit a {year_days}-day year")
        share = Fraction(payable_days, year_days)
    return round_half_up(fen(minimum) * sme_factor(terms, is_sme=is_sme) * share)


def annual_minimum_true_up(
    terms: dict[str, Any],
    charged_in_year: int,
    *,
    is_sme: bool,
    payable_days: int | None = None,
    year_days: int | None = None,
) -> int:
    """What the licensee pays after a licence year so that the year reaches its minimum:
    the minimum less the running royalties due for the year, never below 0 (the contract's
    annual-minimum clause). ``payable_days``/``year_days`` as for :func:`annual_minimum`."""
    _check_charged(charged_in_year)
    minimum = annual_minimum(terms, is_sme=is_sme, payable_days=payable_days, year_days=year_days)
    return max(0, minimum - charged_in_year)


def days_late(due_date: date, paid_date: date) -> int:
    """Days of late interest: from the day after the due date to the day paid, inclusive."""
    return max(0, (paid_date - due_date).days)


def late_interest(amount: int, days: int, terms: dict[str, Any]) -> int:
    """Simple interest in fen on ``amount`` fen overdue for ``days`` days (actual/365).

    0 when the terms set no late-interest rate. Raises :class:`ClearingInputError` for a
    negative amount (``amount``) or day count (``paid_date``: paid before it fell due).
    """
    if amount < 0:
        raise ClearingInputError("amount", "an overdue amount cannot be negative")
    if days < 0:
        raise ClearingInputError("paid_date", "a negative number of days late")
    rate = royalty_of(terms).get("late_interest_rate")
    if rate is None:
        return 0
    return round_half_up(amount * fraction_of_percent(rate) * days / DAYS_IN_YEAR)
