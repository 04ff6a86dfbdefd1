"""Royalty terms and the terms document (registry.offers.royalty, .terms, .lifecycle).

The royalty kinds are Civil Code Art. 846's (lump sum, by instalments, running on sales,
profit or units, entry fee plus running) with a use-first-pay-later free period; every
inconsistency named in issue 3 ("terms that do not add up") is refused with its field.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import marshmallow as ma
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.core.canonical import canonical_json
from registry.offers.lifecycle import add_months, add_years, offer_end_date, term_end
from registry.offers.models import Offer
from registry.offers.royalty import (
    RoyaltySchema,
    check_royalty,
    guide_rail_excesses,
    royalty_document,
    upfront_amount,
)
from registry.offers.terms import (
    TermsSchema,
    check_terms,
    load_document,
    months_between,
    term_months,
    terms_document,
    terms_sha256,
)
from registry.patents.models import LegalStatus, Patent, PatentType

PROPERTY = settings(database=None, deadline=None, max_examples=200)
TODAY = date(2026, 11, 26)


def load(**royalty: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = RoyaltySchema().load(royalty)
    return loaded


def fields(errors: list[Any]) -> set[str]:
    return {e.field for e in errors}


def check(term_months: int | None = 36, term_years: int | None = 3, **royalty: Any) -> set[str]:
    return fields(check_royalty(load(**royalty), term_months=term_months, term_years=term_years))


# --- shape (marshmallow) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("royalty", "field"),
    [
        ({"kind": "running", "base": "net_sales", "rate": "100.01"}, "rate"),  # over 100 %
        ({"kind": "running", "base": "net_sales", "rate": "-1"}, "rate"),
        ({"kind": "running", "base": "net_sales", "rate": 3.5}, "rate"),  # a float
        ({"kind": "running", "base": "net_sales", "rate": "3.555"}, "rate"),
        ({"kind": "lump_sum", "amount": 5000.0}, "amount"),  # floats are never money
        ({"kind": "lump_sum", "amount": "-5"}, "amount"),
        ({"kind": "lump_sum", "amount": "0"}, "amount"),
        ({"kind": "lump_sum", "amount": "1.005"}, "amount"),
        ({"kind": "lump_sum", "amount": "abc"}, "amount"),
        ({"kind": "lump_sum", "amount": "1", "free_months": True}, "free_months"),
        ({"kind": "lump_sum", "amount": "1", "free_months": "6"}, "free_months"),
        ({"kind": "lump_sum", "amount": "1", "free_months": 6.0}, "free_months"),
        ({"kind": "lump_sum", "amount": "1", "free_months": 0}, "free_months"),
        ({"kind": "lump_sum", "amount": "1", "payment_due_days": 0}, "payment_due_days"),
        ({"kind": "lump_sum", "amount": "1", "sme_discount": "0"}, "sme_discount"),
        ({"kind": "lump_sum", "amount": "1", "instalments": []}, "instalments"),
        ({"kind": "lump_sum", "amount": "1", "instalments": [{"amount": "1"}]}, "instalments"),
        ({"kind": "royalty_free"}, "kind"),
        ({"amount": "1"}, "kind"),
        ({"kind": "free", "colour": "red"}, "colour"),  # unknown fields are refused
        ({"kind": "running", "base": "revenue", "rate": "1"}, "base"),
        ({"kind": "running", "base": "units", "reporting_period": "weekly"}, "reporting_period"),
        (
            {"kind": "running", "base": "net_sales", "steps": [{"from_year": 1, "rate": "1"}]},
            "steps",
        ),
    ],
)
def test_the_schema_refuses_malformed_royalties(royalty: dict[str, Any], field: str) -> None:
    with pytest.raises(ma.ValidationError) as caught:
        RoyaltySchema().load(royalty)
    assert field in caught.value.messages, caught.value.messages


# --- consistency -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "royalty",
    [
        {"kind": "free"},
        {"kind": "lump_sum", "amount": "50000"},
        {
            "kind": "lump_sum",
            "amount": "90000.00",
            "instalments": [
                {"due_months": 0, "amount": "30000"},
                {"due_months": 12, "amount": "30000"},
                {"due_months": 24, "amount": "30000.00"},
            ],
        },
        {"kind": "running", "base": "net_sales", "rate": "3", "annual_minimum": "1000"},
        {"kind": "running", "base": "profit", "rate": "10", "cap": "500000"},
        {"kind": "running", "base": "units", "unit_amount": "1.50", "reporting_period": "annual"},
        {
            "kind": "running",
            "base": "net_sales",
            "steps": [{"from_year": 1, "rate": "1"}, {"from_year": 2, "rate": "2"}],
            "annual_minimum": "100",
            "cap": "100",
        },
        {
            "kind": "entry_plus_running",
            "entry_fee": "20000",
            "base": "net_sales",
            "rate": "2",
            "free_months": 12,
            "sme_discount": "30",
            "late_interest_rate": "3.65",
            "payment_due_days": 15,
        },
    ],
)
def test_consistent_royalties_pass(royalty: dict[str, Any]) -> None:
    assert check(**royalty) == set()


@pytest.mark.parametrize(
    ("royalty", "expected"),
    [
        # instalments not summing to the lump sum
        (
            {
                "kind": "lump_sum",
                "amount": "90000",
                "instalments": [
                    {"due_months": 0, "amount": "30000"},
                    {"due_months": 12, "amount": "30000"},
                ],
            },
            {"royalty.instalments"},
        ),
        # instalments out of order, and one due after the 36-month term
        (
            {
                "kind": "lump_sum",
                "amount": "2",
                "instalments": [
                    {"due_months": 12, "amount": "1"},
                    {"due_months": 12, "amount": "1"},
                ],
            },
            {"royalty.instalments.1.due_months"},
        ),
        (
            {
                "kind": "lump_sum",
                "amount": "2",
                "instalments": [
                    {"due_months": 0, "amount": "1"},
                    {"due_months": 36, "amount": "1"},
                ],
            },
            {"royalty.instalments.1.due_months"},
        ),
        ({"kind": "lump_sum"}, {"royalty.amount"}),
        # a stepped schedule with a gap before its first step, and one going backwards
        (
            {
                "kind": "running",
                "base": "net_sales",
                "steps": [{"from_year": 2, "rate": "1"}, {"from_year": 3, "rate": "2"}],
            },
            {"royalty.steps.0.from_year"},
        ),
        (
            {
                "kind": "running",
                "base": "net_sales",
                "steps": [
                    {"from_year": 1, "rate": "1"},
                    {"from_year": 3, "rate": "2"},
                    {"from_year": 2, "rate": "3"},
                ],
            },
            {"royalty.steps.2.from_year"},
        ),
        # a step that starts after the 3-year term
        (
            {
                "kind": "running",
                "base": "net_sales",
                "steps": [{"from_year": 1, "rate": "1"}, {"from_year": 4, "rate": "2"}],
            },
            {"royalty.steps.1.from_year"},
        ),
        # a free period longer than (or as long as) the term
        ({"kind": "lump_sum", "amount": "1", "free_months": 36}, {"royalty.free_months"}),
        ({"kind": "lump_sum", "amount": "1", "free_months": 48}, {"royalty.free_months"}),
        # fields another kind uses
        ({"kind": "free", "amount": "100"}, {"royalty.amount"}),
        ({"kind": "free", "free_months": 6}, {"royalty.free_months"}),
        ({"kind": "lump_sum", "amount": "1", "rate": "5"}, {"royalty.rate"}),
        (
            {"kind": "lump_sum", "amount": "1", "reporting_period": "monthly"},
            {"royalty.reporting_period"},
        ),
        ({"kind": "running", "base": "net_sales", "rate": "1", "amount": "1"}, {"royalty.amount"}),
        (
            {"kind": "running", "base": "net_sales", "rate": "1", "entry_fee": "1"},
            {"royalty.entry_fee"},
        ),
        # running royalties need a base and a rate, or an amount per unit
        ({"kind": "running", "rate": "1"}, {"royalty.base"}),
        ({"kind": "running", "base": "profit"}, {"royalty.rate"}),
        (
            {
                "kind": "running",
                "base": "profit",
                "rate": "1",
                "steps": [{"from_year": 1, "rate": "1"}, {"from_year": 2, "rate": "2"}],
            },
            {"royalty.steps"},
        ),
        ({"kind": "running", "base": "units"}, {"royalty.unit_amount"}),
        ({"kind": "running", "base": "units", "unit_amount": "1", "rate": "2"}, {"royalty.rate"}),
        (
            {"kind": "running", "base": "net_sales", "unit_amount": "1"},
            {
                "royalty.unit_amount",
                "royalty.rate",
            },
        ),
        (
            {
                "kind": "running",
                "base": "net_sales",
                "rate": "1",
                "annual_minimum": "10",
                "cap": "9",
            },
            {"royalty.cap"},
        ),
        ({"kind": "entry_plus_running", "base": "net_sales", "rate": "1"}, {"royalty.entry_fee"}),
    ],
)
def test_inconsistent_royalties_name_every_field_at_fault(
    royalty: dict[str, Any], expected: set[str]
) -> None:
    assert check(**royalty) == expected


def test_all_violations_are_reported_at_once() -> None:
    found = check(
        kind="entry_plus_running",
        base="units",
        rate="1",
        free_months=40,
        amount="5",
    )
    assert found == {
        "royalty.amount",
        "royalty.entry_fee",
        "royalty.unit_amount",
        "royalty.rate",
        "royalty.free_months",
    }


def test_without_a_known_term_only_the_term_free_rules_apply() -> None:
    unknown = {"term_months": None, "term_years": None}
    assert not check(**unknown, kind="lump_sum", amount="1", free_months=240)
    assert check(**unknown, kind="lump_sum", free_months=240) == {"royalty.amount"}


# --- canonical form, upfront amount, guide-rails ---------------------------------------------


def test_the_document_is_exact_strings_with_defaults_and_nothing_unused() -> None:
    doc = royalty_document(
        load(kind="running", base="net_sales", rate="3.5", annual_minimum="1000", cap=None)
    )
    assert doc == {
        "kind": "running",
        "base": "net_sales",
        "rate": "3.50",
        "annual_minimum": "1000.00",
        "reporting_period": "quarterly",  # DESIGN.md §2: quarterly by default
        "payment_due_days": 30,
    }
    assert royalty_document(load(kind="free")) == {"kind": "free"}
    lump = royalty_document(
        load(kind="lump_sum", amount="3", instalments=[{"due_months": 0, "amount": "3"}])
    )
    assert lump["instalments"] == [{"due_months": 0, "amount": "3.00"}]
    assert "reporting_period" not in lump


@pytest.mark.parametrize(
    ("royalty", "upfront"),
    [
        ({"kind": "free"}, "0.00"),
        ({"kind": "lump_sum", "amount": "50000"}, "50000.00"),
        (
            {
                "kind": "lump_sum",
                "amount": "30",
                "instalments": [
                    {"due_months": 0, "amount": "10"},
                    {"due_months": 6, "amount": "20"},
                ],
            },
            "10.00",
        ),
        (
            {
                "kind": "lump_sum",
                "amount": "30",
                "instalments": [{"due_months": 6, "amount": "30"}],
            },
            "0.00",
        ),
        ({"kind": "running", "base": "units", "unit_amount": "2"}, "0.00"),
        (
            {"kind": "entry_plus_running", "entry_fee": "8000", "base": "profit", "rate": "5"},
            "8000.00",
        ),
    ],
)
def test_upfront_is_what_falls_due_at_take_up(royalty: dict[str, Any], upfront: str) -> None:
    assert upfront_amount(royalty_document(load(**royalty))) == Decimal(upfront)


@pytest.mark.parametrize(
    ("royalty", "warned"),
    [
        ({"kind": "lump_sum", "amount": "20000000"}, False),
        ({"kind": "lump_sum", "amount": "20000000.01"}, True),
        (
            {
                "kind": "entry_plus_running",
                "entry_fee": "25000000",
                "base": "units",
                "unit_amount": "1",
            },
            True,
        ),
        ({"kind": "running", "base": "net_sales", "rate": "20"}, False),
        ({"kind": "running", "base": "net_sales", "rate": "20.01"}, True),
        ({"kind": "running", "base": "profit", "rate": "40"}, False),
        ({"kind": "running", "base": "profit", "rate": "40.01"}, True),
        (
            {
                "kind": "running",
                "base": "net_sales",
                "steps": [{"from_year": 1, "rate": "5"}, {"from_year": 2, "rate": "25"}],
            },
            True,
        ),
        ({"kind": "running", "base": "units", "unit_amount": "9999"}, False),
    ],
)
def test_guide_rails_of_2024(royalty: dict[str, Any], warned: bool) -> None:
    assert bool(guide_rail_excesses(royalty_document(load(**royalty)))) is warned


amounts = st.integers(min_value=1, max_value=10**9).map(lambda fen: Decimal(fen).scaleb(-2))


@PROPERTY
@given(st.lists(amounts, min_size=1, max_size=12), st.integers(min_value=0, max_value=5))
def test_instalments_summing_to_the_amount_pass_and_round_trip(
    parts: list[Decimal], first_due: int
) -> None:
    royalty = {
        "kind": "lump_sum",
        "amount": str(sum(parts)),
        "instalments": [
            {"due_months": first_due + 3 * i, "amount": str(part)} for i, part in enumerate(parts)
        ],
    }
    loaded = load(**royalty)
    assert not check_royalty(loaded, term_months=None, term_years=None)
    doc = royalty_document(loaded)
    assert royalty_document(load(**doc)) == doc  # the canonical form is a fixed point
    off_by_a_fen = dict(royalty, amount=str(sum(parts) + Decimal("0.01")))
    assert fields(check_royalty(load(**off_by_a_fen), term_months=None, term_years=None)) == {
        "royalty.instalments"
    }


# --- the terms document ----------------------------------------------------------------------


def patent(expiry: date = date(2041, 3, 14), patent_type: str = "invention") -> Patent:
    return Patent(
        patent_type=PatentType(patent_type),
        expiry_date=expiry,
        legal_status=LegalStatus.VALID,
    )


def terms(**overrides: Any) -> dict[str, Any]:
    data = {
        "royalty": {"kind": "lump_sum", "amount": "100"},
        "term_years": 3,
        "licensed_acts": ["make", "sell"],
        "contact": {"name": "李老师", "email": "tto@uni.example.cn"},
    }
    data.update(overrides)
    loaded: dict[str, Any] = TermsSchema().load({k: v for k, v in data.items() if v is not None})
    return loaded


def term_errors(values: dict[str, Any], **kwargs: Any) -> set[str]:
    return fields(check_terms(values, patent=patent(**kwargs), today=TODAY))


def test_the_terms_hash_is_of_the_canonical_document() -> None:
    a = terms_document(terms(licensed_acts=["sell", "make"]))
    b = terms_document(terms(licensed_acts=["make", "sell"]))
    assert a == b  # the order acts are sent in does not change the terms
    assert a["licensed_acts"] == ["make", "sell"]  # Patent Law Art. 11's order
    assert a["territory"] == "mainland_china"
    import hashlib

    assert terms_sha256(a) == hashlib.sha256(canonical_json(a).encode()).hexdigest()
    assert terms_sha256(terms_document(terms(term_years=4))) != terms_sha256(a)
    assert load_document(a) == terms(licensed_acts=["make", "sell"]) | {
        "royalty": load(kind="lump_sum", amount="100", payment_due_days=30),
        "field_of_use": None,
        "other_matters": None,
        "contact": {"name": "李老师", "email": "tto@uni.example.cn", "phone": None},
    }


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, set()),
        ({"term_years": None, "term_end_date": "2030-01-01"}, set()),
        ({"term_end_date": "2030-01-01"}, {"term_end_date"}),  # both
        ({"term_years": None}, {"term_years"}),  # neither
        ({"term_years": None, "term_end_date": TODAY.isoformat()}, {"term_end_date"}),
        ({"term_years": None, "term_end_date": "2041-03-15"}, {"term_end_date"}),  # past expiry
        ({"term_years": 15}, {"term_years"}),  # 2026-11-26 + 15 y runs past 2041-03-14
        ({"term_years": 14}, set()),
        ({"licensed_acts": ["make", "make"]}, {"licensed_acts"}),
        ({"contact": {"name": "李老师"}}, {"contact"}),
        (
            {"royalty": {"kind": "lump_sum", "amount": "1", "free_months": 36}},
            {"royalty.free_months"},
        ),
    ],
)
def test_terms_rules(overrides: dict[str, Any], expected: set[str]) -> None:
    assert term_errors(terms(**overrides)) == expected


def test_a_design_patent_licenses_no_use() -> None:
    values = terms(licensed_acts=["make", "use", "sell"])
    assert term_errors(values, patent_type="design") == {"licensed_acts"}
    assert term_errors(values, patent_type="utility_model") == set()


def test_a_fixed_end_bounds_the_free_period_from_today() -> None:
    def with_free(months: int, end: str) -> dict[str, Any]:
        return terms(
            term_years=None,
            term_end_date=end,
            royalty={"kind": "lump_sum", "amount": "1", "free_months": months},
        )

    # 2026-11-26 to 2027-11-25 inclusive is twelve whole months; one day less is eleven.
    assert term_months(with_free(1, "2027-11-25"), TODAY) == 12
    assert term_months(with_free(1, "2027-11-24"), TODAY) == 11
    assert term_errors(with_free(12, "2027-11-25")) == {"royalty.free_months"}
    assert term_errors(with_free(11, "2027-11-25")) == set()
    assert term_errors(with_free(11, "2027-11-24")) == {"royalty.free_months"}


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        (date(2026, 1, 31), date(2026, 2, 28), 0),
        (date(2026, 1, 1), date(2026, 1, 31), 0),
        (date(2026, 1, 1), date(2026, 2, 1), 1),
        (date(2026, 1, 15), date(2027, 1, 14), 12),  # the whole year up to the eve
        (date(2026, 1, 15), date(2027, 1, 13), 11),
        (date(2026, 5, 1), date(2026, 4, 1), 0),
    ],
)
def test_months_between(start: date, end: date, months: int) -> None:
    assert months_between(start, end) == months


# --- licence end dates (for take-ups) --------------------------------------------------------


def test_calendar_arithmetic() -> None:
    assert add_years(date(2024, 2, 29), 1) == date(2025, 2, 28)
    assert add_years(date(2024, 2, 29), 4) == date(2028, 2, 29)
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 26), 3) == date(2027, 2, 26)
    assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)


def offer(expiry: date, **doc: Any) -> Offer:
    end = doc.get("term_end_date")
    return Offer(
        terms=doc,
        patent=patent(expiry),
        term_end_date=date.fromisoformat(end) if end else None,
    )


def test_a_licence_ends_at_its_term_or_the_patent_s_expiry_whichever_is_first() -> None:
    # Term in years counts from each take-up and includes the first day (CC Art. 865).
    assert term_end({"term_years": 3}, date(2026, 1, 15)) == date(2029, 1, 14)
    assert offer_end_date(offer(date(2041, 3, 14), term_years=3), date(2026, 1, 15)) == date(
        2029, 1, 14
    )
    # ...but never past the patent (PL Art. 42).
    assert offer_end_date(offer(date(2027, 6, 30), term_years=3), date(2026, 1, 15)) == date(
        2027, 6, 30
    )
    fixed = offer(date(2041, 3, 14), term_end_date="2030-12-31")
    assert offer_end_date(fixed, date(2026, 1, 15)) == date(2030, 12, 31)
    assert offer_end_date(fixed, date(2029, 5, 1)) == date(2030, 12, 31)
