"""A licence's schedule of amounts due and reporting periods (registry.clearing.schedule).

Worked examples spell out the dates by hand; the property tests check that reporting periods
tile the licence term without gap or overlap, never mix calendar periods or (when it matters)
licence years, and that fixed amounts add up to what the terms declare, discount included.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.clearing.royalties import ClearingInputError, discounted, fen
from registry.clearing.schedule import (
    DueItem,
    ItemKind,
    Period,
    Schedule,
    build_schedule,
    calendar_period_end,
    licence_year_bounds,
    licence_year_of,
)
from registry.offers.lifecycle import add_years, term_end
from registry.offers.royalty import ReportingPeriod, RoyaltySchema, royalty_document

PROPERTY = settings(database=None, deadline=None, max_examples=300)
D = date.fromisoformat


def terms(**royalty: Any) -> dict[str, Any]:
    return {"royalty": royalty_document(RoyaltySchema().load(royalty)), "term_years": 3}


def schedule(t: dict[str, Any], start: str, end: str, *, sme: bool = False) -> Schedule:
    return build_schedule(t, effective_date=D(start), end_date=D(end), is_sme=sme)


def spans(periods: tuple[Period, ...]) -> list[tuple[str, str]]:
    return [(p.period_start.isoformat(), p.period_end.isoformat()) for p in periods]


def of_kind(s: Schedule, kind: ItemKind) -> list[DueItem]:
    return [item for item in s.items if item.kind is kind]


NET_3 = {"kind": "running", "base": "net_sales", "rate": "3"}


# --- worked examples -------------------------------------------------------------------------


def test_quarterly_periods_follow_calendar_quarters_from_the_effective_date() -> None:
    # Taken on 15 February 2026 for three years: the first period is the rest of Q1, then
    # whole quarters, the last cut at the end date 14 February 2029. A fixed rate with no
    # minimum or cap does not depend on the licence year, so quarters are not cut at the
    # anniversaries: 13 periods.
    s = schedule(terms(**NET_3), "2026-02-15", "2029-02-14")
    assert len(s.periods) == 13
    assert spans(s.periods)[:3] == [
        ("2026-02-15", "2026-03-31"),
        ("2026-04-01", "2026-06-30"),
        ("2026-07-01", "2026-09-30"),
    ]
    assert spans(s.periods)[4] == ("2027-01-01", "2027-03-31")  # straddles 15 Feb: no matter
    assert spans(s.periods)[-1] == ("2029-01-01", "2029-02-14")
    first = s.periods[0]
    # report and pay within 30 days after the period ends: 31 March + 30 days = 30 April
    assert (first.report_due_date, first.payment_due_date) == (D("2026-04-30"), D("2026-04-30"))
    assert s.periods[-1].payment_due_date == D("2029-03-16")  # 14 Feb + 30 days
    assert not any(p.free for p in s.periods)
    assert s.free_until is None
    royalties = of_kind(s, ItemKind.RUNNING_ROYALTY)
    assert [(i.period_start, i.period_end) for i in royalties] == [
        (p.period_start, p.period_end) for p in s.periods
    ]
    assert all(i.amount is None for i in royalties)  # the reports decide them
    assert of_kind(s, ItemKind.MINIMUM_TRUE_UP) == []


def test_an_annual_minimum_cuts_periods_at_each_anniversary_and_adds_true_ups() -> None:
    t = terms(**NET_3, annual_minimum="10000", payment_due_days=15)
    s = schedule(t, "2026-02-15", "2029-02-14")
    assert ("2027-01-01", "2027-02-14") in spans(s.periods)
    assert ("2027-02-15", "2027-03-31") in spans(s.periods)
    assert [p.licence_year for p in s.periods if p.period_start.year == 2027] == [1, 2, 2, 2, 2]
    true_ups = of_kind(s, ItemKind.MINIMUM_TRUE_UP)
    # One per licence year, due with the year's last report: 14 Feb 2027 + 15 days = 1 March.
    assert [(i.licence_year, i.period_start, i.period_end, i.due_date) for i in true_ups] == [
        (1, D("2026-02-15"), D("2027-02-14"), D("2027-03-01")),
        (2, D("2027-02-15"), D("2028-02-14"), D("2028-02-29")),  # 2028 is a leap year
        (3, D("2028-02-15"), D("2029-02-14"), D("2029-03-01")),
    ]
    assert all(i.minimum == 1_000_000 and i.amount is None for i in true_ups)
    # The true-up comes after the year's last royalty on the same day.
    kinds = [i.kind for i in s.items if i.due_date == D("2027-03-01")]
    assert kinds == [ItemKind.RUNNING_ROYALTY, ItemKind.MINIMUM_TRUE_UP]


def test_use_first_pay_later_shifts_the_first_period_and_the_entry_fee() -> None:
    t = terms(
        kind="entry_plus_running",
        entry_fee="20000",
        **{k: v for k, v in NET_3.items() if k != "kind"},
        annual_minimum="10000",
        free_months=6,
    )
    s = schedule(t, "2026-02-15", "2029-02-14")
    # Six free months: 15 February to 14 August 2026, one free period with nothing to report.
    assert s.free_until == D("2026-08-14")
    assert s.periods[0] == Period(D("2026-02-15"), D("2026-08-14"), 1, True, None, None)
    assert spans(s.periods)[1] == ("2026-08-15", "2026-09-30")
    # The entry fee fell due at take-up, inside the free period: it is paid within 30 days
    # after the period ends (14 August + 30 days = 13 September), not reduced.
    fee = of_kind(s, ItemKind.ENTRY_FEE)
    assert fee == [
        DueItem(
            kind=ItemKind.ENTRY_FEE,
            due_date=D("2026-09-13"),
            amount=2_000_000,
            falls_due_date=D("2026-02-15"),
            discount=0,
        )
    ]
    assert s.items[0] == fee[0]
    # No royalty item for the free period; the first is for 15 August - 30 September.
    assert of_kind(s, ItemKind.RUNNING_ROYALTY)[0].period_start == D("2026-08-15")
    # The year-1 minimum is pro-rated from the end of the free period: 184 of 365 days,
    # 1,000,000 x 184 / 365 = 504,109.59 fen, half up 504,110.
    assert [i.minimum for i in of_kind(s, ItemKind.MINIMUM_TRUE_UP)] == [
        504_110,
        1_000_000,
        1_000_000,
    ]


def test_instalments_fall_due_by_calendar_month() -> None:
    t = terms(
        kind="lump_sum",
        amount="90000",
        instalments=[
            {"due_months": 0, "amount": "30000"},
            {"due_months": 1, "amount": "30000"},
            {"due_months": 13, "amount": "30000"},
        ],
    )
    s = schedule(t, "2026-01-31", "2029-01-30")
    assert s.periods == ()
    # 31 January + 1 month is 28 February (no 31st); + 13 months is 28 February 2027; each
    # is paid within 30 days: 2 March 2026, 30 March 2026, 30 March 2027.
    assert [(i.number, i.falls_due_date, i.due_date, i.amount) for i in s.items] == [
        (1, D("2026-01-31"), D("2026-03-02"), 3_000_000),
        (2, D("2026-02-28"), D("2026-03-30"), 3_000_000),
        (3, D("2027-02-28"), D("2027-03-30"), 3_000_000),
    ]


def test_sme_instalments_share_the_discounted_lump_sum_to_the_fen() -> None:
    t = terms(
        kind="lump_sum",
        amount="300.03",
        instalments=[{"due_months": m, "amount": "100.01"} for m in (0, 6, 12)],
        sme_discount="33.33",
    )
    # 30,003 fen less 33.33 % = 20,003.0001, half up 20,003. Split by largest remainder in
    # thirds: 6,667.67 each, so 6,667 + 6,667 + 6,667 = 20,001 and the 2 fen left go to the
    # first two. Discounting each instalment alone (6,667.67 -> 6,668) would charge 20,004.
    s = schedule(t, "2026-01-01", "2028-12-31", sme=True)
    assert [i.amount for i in s.items] == [6_668, 6_668, 6_667]
    assert [i.discount for i in s.items] == [3_333, 3_333, 3_334]
    # A licensee that is not an SME pays the instalments as declared.
    full = schedule(t, "2026-01-01", "2028-12-31", sme=False)
    assert [(i.amount, i.discount) for i in full.items] == [(10_001, 0)] * 3


def test_a_free_period_defers_instalments_falling_due_within_it() -> None:
    t = terms(
        kind="lump_sum",
        amount="60000",
        instalments=[{"due_months": m, "amount": "20000"} for m in (0, 3, 9)],
        free_months=6,
    )
    s = schedule(t, "2026-01-01", "2028-12-31")
    # Free until 30 June: the first two instalments are paid by 30 June + 30 days; the third
    # falls due on 1 October, after the free period, and is paid by 31 October.
    assert s.free_until == D("2026-06-30")
    assert [(i.falls_due_date, i.due_date) for i in s.items] == [
        (D("2026-01-01"), D("2026-07-30")),
        (D("2026-04-01"), D("2026-07-30")),
        (D("2026-10-01"), D("2026-10-31")),
    ]
    assert s.periods == ()  # a lump sum reports nothing


def test_a_single_lump_sum_with_an_sme_discount() -> None:
    t = terms(kind="lump_sum", amount="50000", sme_discount="20", payment_due_days=10)
    s = schedule(t, "2026-03-01", "2027-02-28", sme=True)
    # 50,000.00 less 20 % = 40,000.00, due 10 days after take-up.
    assert s.items == (
        DueItem(
            kind=ItemKind.LUMP_SUM,
            due_date=D("2026-03-11"),
            amount=4_000_000,
            falls_due_date=D("2026-03-01"),
            discount=1_000_000,
        ),
    )


def test_a_licence_cut_short_by_patent_expiry() -> None:
    t = terms(**NET_3, annual_minimum="12000")
    # Taken on 15 February 2026, the patent expires on 20 May 2027: the last period is
    # 1 April - 20 May 2027 and licence year 2 has 95 of its 365 days, so its minimum is
    # 1,200,000 x 95 / 365 = 312,328.77 fen, half up 312,329.
    s = schedule(t, "2026-02-15", "2027-05-20")
    assert spans(s.periods)[-1] == ("2027-04-01", "2027-05-20")
    assert s.periods[-1].payment_due_date == D("2027-06-19")
    true_ups = of_kind(s, ItemKind.MINIMUM_TRUE_UP)
    assert [(i.period_end, i.minimum, i.due_date) for i in true_ups] == [
        (D("2027-02-14"), 1_200_000, D("2027-03-16")),
        (D("2027-05-20"), 312_329, D("2027-06-19")),
    ]


def test_a_free_period_longer_than_the_licence_ends_with_it() -> None:
    t = terms(
        kind="entry_plus_running",
        entry_fee="1000",
        base="units",
        unit_amount="2",
        annual_minimum="500",
        free_months=6,
    )
    s = schedule(t, "2026-01-01", "2026-03-31")
    assert s.free_until == D("2026-03-31")
    assert s.periods == (Period(D("2026-01-01"), D("2026-03-31"), 1, True, None, None),)
    # Only the entry fee remains, paid within 30 days after the (shortened) free period; no
    # royalty and no minimum accrue.
    assert [(i.kind, i.due_date) for i in s.items] == [(ItemKind.ENTRY_FEE, D("2026-04-30"))]


def test_leap_day_licence_years_with_annual_reporting() -> None:
    t = terms(**NET_3, cap="5000", reporting_period="annual")
    effective = D("2028-02-29")
    end = term_end({"term_years": 2}, effective)
    assert end == D("2030-02-27")  # 29 Feb + 2 years is 28 Feb 2030; the term ends the day before
    s = build_schedule(t, effective_date=effective, end_date=end, is_sme=False)
    # Licence year 1 runs 29 Feb 2028 - 27 Feb 2029 (365 days); year 2 from 28 Feb 2029.
    assert spans(s.periods) == [
        ("2028-02-29", "2028-12-31"),
        ("2029-01-01", "2029-02-27"),
        ("2029-02-28", "2029-12-31"),
        ("2030-01-01", "2030-02-27"),
    ]
    assert [p.licence_year for p in s.periods] == [1, 1, 2, 2]


def test_monthly_reporting() -> None:
    t = terms(**NET_3, reporting_period="monthly")
    s = schedule(t, "2026-01-20", "2026-04-10")
    assert spans(s.periods) == [
        ("2026-01-20", "2026-01-31"),
        ("2026-02-01", "2026-02-28"),
        ("2026-03-01", "2026-03-31"),
        ("2026-04-01", "2026-04-10"),
    ]


def test_free_terms_owe_nothing() -> None:
    assert schedule(terms(kind="free"), "2026-01-01", "2030-12-31") == Schedule((), (), None)


def test_a_licence_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ClearingInputError) as caught:
        schedule(terms(**NET_3), "2026-05-01", "2026-04-30")
    assert caught.value.field == "end_date"
    assert caught.value.status == 422


def test_licence_years() -> None:
    effective = D("2028-02-29")
    assert licence_year_of(effective, effective) == 1
    assert licence_year_of(effective, D("2029-02-27")) == 1
    assert licence_year_of(effective, D("2029-02-28")) == 2
    assert licence_year_of(effective, D("2032-02-28")) == 4
    assert licence_year_of(effective, D("2032-02-29")) == 5
    assert licence_year_bounds(effective, 1) == (D("2028-02-29"), D("2029-02-27"))
    assert licence_year_bounds(effective, 4) == (D("2031-02-28"), D("2032-02-28"))


@pytest.mark.parametrize(
    ("day", "reporting", "end"),
    [
        ("2026-02-15", "monthly", "2026-02-28"),
        ("2028-02-01", "monthly", "2028-02-29"),
        ("2026-05-31", "quarterly", "2026-06-30"),
        ("2026-10-01", "quarterly", "2026-12-31"),
        ("2026-01-01", "annual", "2026-12-31"),
    ],
)
def test_calendar_period_ends(day: str, reporting: str, end: str) -> None:
    assert calendar_period_end(D(day), ReportingPeriod(reporting)) == D(end)


# --- properties ------------------------------------------------------------------------------


@st.composite
def licences(draw: st.DrawFn) -> tuple[dict[str, Any], date, date, bool]:
    royalty: dict[str, Any] = {
        "kind": draw(st.sampled_from(["running", "entry_plus_running"])),
        "base": "net_sales",
        "reporting_period": draw(st.sampled_from(list(ReportingPeriod))).value,
        "payment_due_days": draw(st.integers(min_value=1, max_value=365)),
    }
    if royalty["kind"] == "entry_plus_running":
        royalty["entry_fee"] = f"{draw(st.integers(min_value=1, max_value=10**8))}.07"
    if draw(st.booleans()):
        royalty["steps"] = [{"from_year": 1, "rate": "2"}, {"from_year": 3, "rate": "4"}]
    else:
        royalty["rate"] = "3"
    if draw(st.booleans()):
        # at least 1,000 CNY, so that even one payable day leaves a minimum above 0 fen
        royalty["annual_minimum"] = f"{draw(st.integers(min_value=1000, max_value=10**6))}.33"
    if draw(st.booleans()):
        royalty["free_months"] = draw(st.integers(min_value=1, max_value=60))
    if draw(st.booleans()):
        royalty["sme_discount"] = "12.34"
    effective = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31)))
    end = effective + timedelta(days=draw(st.integers(min_value=0, max_value=20 * 366)))
    return terms(**royalty), effective, end, draw(st.booleans())


@PROPERTY
@given(licences())
def test_periods_tile_the_licence_term(licence: tuple[dict[str, Any], date, date, bool]) -> None:
    t, effective, end, sme = licence
    royalty = t["royalty"]
    s = build_schedule(t, effective_date=effective, end_date=end, is_sme=sme)
    periods = s.periods
    assert periods[0].period_start == effective
    assert periods[-1].period_end == end
    for before, after in itertools.pairwise(periods):
        assert after.period_start == before.period_end + timedelta(days=1)
    due = timedelta(days=royalty["payment_due_days"])
    years_matter = "steps" in royalty or "annual_minimum" in royalty
    reporting = ReportingPeriod(royalty["reporting_period"])
    for index, period in enumerate(periods):
        assert period.period_start <= period.period_end
        assert period.licence_year == licence_year_of(effective, period.period_start)
        if period.free:  # only ever the first, and only with a free period
            assert index == 0
            assert s.free_until == period.period_end
            assert period.payment_due_date is None
            continue
        assert period.period_end <= calendar_period_end(period.period_start, reporting)
        if years_matter:
            assert licence_year_of(effective, period.period_end) == period.licence_year
        assert period.report_due_date == period.payment_due_date == period.period_end + due
    royalties = [i for i in s.items if i.kind is ItemKind.RUNNING_ROYALTY]
    assert [(i.period_start, i.period_end) for i in royalties] == [
        (p.period_start, p.period_end) for p in periods if not p.free
    ]
    assert [i.due_date for i in s.items] == sorted(i.due_date for i in s.items)


@PROPERTY
@given(licences())
def test_each_payable_licence_year_gets_one_true_up_after_its_last_period(
    licence: tuple[dict[str, Any], date, date, bool],
) -> None:
    t, effective, end, sme = licence
    s = build_schedule(t, effective_date=effective, end_date=end, is_sme=sme)
    true_ups = [i for i in s.items if i.kind is ItemKind.MINIMUM_TRUE_UP]
    if "annual_minimum" not in t["royalty"]:
        assert true_ups == []
        return
    payable_years = sorted({p.licence_year for p in s.periods if not p.free})
    assert [i.licence_year for i in true_ups] == payable_years
    for item in true_ups:
        assert item.minimum is not None
        last = max(
            (p for p in s.periods if p.licence_year == item.licence_year and not p.free),
            key=lambda p: p.period_end,
        )
        assert item.period_end == last.period_end
        assert item.due_date == last.payment_due_date
        full = discounted(fen(t["royalty"]["annual_minimum"]), t, is_sme=sme)
        assert 0 < item.minimum <= full


@PROPERTY
@given(
    st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=12),
    st.one_of(st.none(), st.integers(min_value=1, max_value=10_000)),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31)),
)
def test_instalments_add_up_to_the_discounted_lump_sum(
    amounts: list[int], discount: int | None, effective: date
) -> None:
    royalty: dict[str, Any] = {
        "kind": "lump_sum",
        "amount": f"{sum(amounts) // 100}.{sum(amounts) % 100:02d}",
        "instalments": [
            {"due_months": 2 * m, "amount": f"{a // 100}.{a % 100:02d}"}
            for m, a in enumerate(amounts)
        ],
    }
    if discount is not None:
        royalty["sme_discount"] = f"{discount // 100}.{discount % 100:02d}"
    t = terms(**royalty)
    s = build_schedule(t, effective_date=effective, end_date=add_years(effective, 3), is_sme=True)
    parts = [i.amount or 0 for i in s.items]
    assert sum(parts) == discounted(sum(amounts), t, is_sme=True)
    assert [p + (i.discount or 0) for p, i in zip(parts, s.items, strict=True)] == amounts
    assert all(0 <= (i.discount or 0) <= a for i, a in zip(s.items, amounts, strict=True))
