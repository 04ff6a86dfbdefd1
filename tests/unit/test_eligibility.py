"""Eligibility rules E1–E13 of reference/law.md A1, each passing and failing on its own.

The checks run on plain model objects (no database): a patent that passes everything, then one
thing changed at a time, so each test shows which fact a rule looks at.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from registry.accounts.models import Organisation
from registry.core.actor import Actor, Role
from registry.offers.eligibility import Context, Report, consent_outcome, evaluate
from registry.offers.models import ConsentPurpose, Offer, OfferConsent
from registry.offers.terms import TermsSchema, terms_document, terms_sha256
from registry.patents.models import (
    ConsentRule,
    Encumbrance,
    EncumbranceKind,
    EvaluationConclusion,
    LegalStatus,
    Patent,
    PatentOwner,
    PatentType,
)

TODAY = date(2026, 11, 26)
UNI_A, UNI_B = uuid.uuid4(), uuid.uuid4()
CODES = ["E1", "E2", "E2b", "E3", "E4", "E5", "E6", "E7", "E8", "E8b", "E9", "E10", "E11",
         "E12", "E13"]  # fmt: skip


def tto(organisation_id: uuid.UUID = UNI_A, role: Role = Role.TTO) -> Actor:
    return Actor(uuid.uuid4(), organisation_id, role, "someone@example.test")


def make_patent(**overrides: Any) -> Patent:
    values: dict[str, Any] = {
        "patent_type": PatentType.INVENTION,
        "application_number": "202110123456.X",
        "grant_date": date(2023, 2, 1),
        "expiry_date": date(2041, 3, 14),
        "legal_status": LegalStatus.VALID,
        "annual_fees_paid_through": date(2027, 3, 14),
        "consent_open_licence": ConsentRule.UNANIMOUS,
    }
    values.update(overrides)
    encumbrances = values.pop("encumbrances", [])
    patent = Patent(**values)
    patent.encumbrances = encumbrances
    return patent


def owner(organisation_id: uuid.UUID, name: str, title: str = "100") -> PatentOwner:
    return PatentOwner(
        organisation_id=organisation_id,
        organisation=Organisation(id=organisation_id, name=name),
        title_share=Decimal(title),
    )


def make_offer(**term_overrides: Any) -> Offer:
    data: dict[str, Any] = {
        "royalty": {"kind": "lump_sum", "amount": "50000"},
        "term_years": 3,
        "licensed_acts": ["make", "use", "sell"],
        "field_of_use": "锂离子电池负极材料",
        "contact": {"name": "李老师", "phone": "010-62780000"},
        "other_matters": "提供技术指导",
    }
    territory = term_overrides.pop("territory", None)
    data.update(term_overrides)
    values = TermsSchema().load({k: v for k, v in data.items() if v is not None})
    doc = terms_document(values)
    if territory:
        doc["territory"] = territory
    return Offer(
        terms=doc,
        terms_sha256=terms_sha256(doc),
        term_end_date=values.get("term_end_date"),
        consents=[],
    )


def encumbrance(kind: str, **overrides: Any) -> Encumbrance:
    values: dict[str, Any] = {
        "kind": EncumbranceKind(kind),
        "start_date": date(2025, 1, 1),
        "reference": f"{kind}-1",
        "released_dt": None,
    }
    values.update(overrides)
    return Encumbrance(**values)


def run(
    patent: Patent | None = None,
    offer: Offer | None = None,
    *,
    owners: list[PatentOwner] | None = None,
    declarant: Actor | None = None,
    attested: bool | None = True,
    consenting: set[uuid.UUID] | None = None,
) -> Report:
    return evaluate(
        Context(
            offer=offer or make_offer(),
            patent=patent or make_patent(),
            owners=[owner(UNI_A, "甲大学")] if owners is None else owners,
            today=TODAY,
            declarant=declarant or tto(),
            attested=attested,
            consenting=frozenset({UNI_A} if consenting is None else consenting),
        )
    )


def result(report: Report, code: str) -> Any:
    (check,) = [c for c in report.checks if c.code == code]
    return check


def failed(report: Report) -> set[str]:
    return {c.code for c in report.checks if not c.passed}


def test_the_baseline_passes_every_check_and_each_names_its_law() -> None:
    report = run()
    assert [c.code for c in report.checks] == CODES
    assert failed(report) == set()
    assert report.eligible
    for check in report.checks:
        assert check.severity in ("hard", "warning")
        assert "Art." in check.basis or "〔2024〕" in check.basis, check
        assert check.message_en
        assert check.message_zh
    warnings = {c.code for c in report.checks if c.severity == "warning"}
    assert warnings == {"E2b", "E8b", "E10"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"grant_date": None, "legal_status": LegalStatus.PENDING},  # grant not announced
        {"legal_status": LegalStatus.LAPSED_FEES},
        {"legal_status": LegalStatus.SURRENDERED},
        {"legal_status": LegalStatus.INVALIDATED},
        {"expiry_date": TODAY - timedelta(days=1)},
    ],
)
def test_e1_the_patent_must_be_granted_and_in_force(overrides: dict[str, Any]) -> None:
    report = run(make_patent(**overrides))
    assert "E1" in failed(report)
    assert not report.eligible


def test_e1_passes_on_the_last_day_of_the_term() -> None:
    offer = make_offer(term_years=None, term_end_date=(TODAY + timedelta(days=1)).isoformat())
    assert "E1" not in failed(run(make_patent(expiry_date=TODAY + timedelta(days=1)), offer))
    assert "E1" not in failed(run(make_patent(expiry_date=TODAY)))


@pytest.mark.parametrize("patent_type", [PatentType.UTILITY_MODEL, PatentType.DESIGN])
def test_e2_utility_models_and_designs_need_the_evaluation_report(
    patent_type: PatentType,
) -> None:
    offer = make_offer(licensed_acts=["make", "sell"])
    bare = run(make_patent(patent_type=patent_type), offer)
    assert failed(bare) == {"E2"}
    assert result(bare, "E2").severity == "hard"
    with_report = make_patent(
        patent_type=patent_type,
        evaluation_report_number="PJ2024-0001",
        evaluation_report_date=date(2024, 5, 1),
        evaluation_report_conclusion=EvaluationConclusion.NO_DEFECT,
    )
    assert failed(run(with_report, offer)) == set()
    number_only = make_patent(patent_type=patent_type, evaluation_report_number="PJ2024-0001")
    assert "E2" in failed(run(number_only, offer))


def test_e2b_a_report_finding_defects_is_a_warning_only() -> None:
    patent = make_patent(
        patent_type=PatentType.UTILITY_MODEL,
        evaluation_report_number="PJ2024-0002",
        evaluation_report_date=date(2024, 5, 1),
        evaluation_report_conclusion=EvaluationConclusion.DEFECTS_FOUND,
    )
    report = run(patent)
    assert failed(report) == {"E2b"}
    assert report.eligible
    assert [w.code for w in report.warnings] == ["E2b"]


@pytest.mark.parametrize("kind", ["exclusive_licence", "sole_licence"])
def test_e3_no_exclusive_or_sole_licence_in_force(kind: str) -> None:
    in_force = run(make_patent(encumbrances=[encumbrance(kind, reference="X-2025-1")]))
    assert failed(in_force) == {"E3"}
    assert "X-2025-1" in result(in_force, "E3").message_en
    ended = encumbrance(kind, end_date=TODAY - timedelta(days=1))
    released = encumbrance(kind, released_dt=datetime(2026, 1, 1, tzinfo=UTC))
    future = encumbrance(kind, start_date=TODAY + timedelta(days=1))
    assert failed(run(make_patent(encumbrances=[ended, released, future]))) == set()


@pytest.mark.parametrize("kind", ["dispute_suspension", "preservation_order"])
def test_e4_no_dispute_suspension_or_preservation_order(kind: str) -> None:
    assert failed(run(make_patent(encumbrances=[encumbrance(kind)]))) == {"E4"}
    released = encumbrance(kind, released_dt=datetime(2026, 1, 1, tzinfo=UTC))
    assert failed(run(make_patent(encumbrances=[released]))) == set()


@pytest.mark.parametrize(
    ("paid_through", "passes"),
    [
        (None, False),  # not recorded: the declarant must show the fees are paid
        (TODAY - timedelta(days=1), False),  # the late-payment window (IR Art. 115)
        (TODAY, True),
        (TODAY + timedelta(days=200), True),
    ],
)
def test_e5_annual_fees_must_be_paid(paid_through: date | None, passes: bool) -> None:
    report = run(make_patent(annual_fees_paid_through=paid_through))
    assert ("E5" not in failed(report)) is passes
    assert report.eligible is passes


def test_e6_a_pledge_needs_the_pledgee_s_consent() -> None:
    without = encumbrance("pledge", pledgee_consent=False, reference="质押-1")
    assert failed(run(make_patent(encumbrances=[without]))) == {"E6"}
    consenting = encumbrance("pledge", pledgee_consent=True)
    assert failed(run(make_patent(encumbrances=[consenting]))) == set()
    released = encumbrance(
        "pledge", pledgee_consent=False, released_dt=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert failed(run(make_patent(encumbrances=[released]))) == set()


CO_OWNERS = [owner(UNI_A, "甲大学", "60"), owner(UNI_B, "乙大学", "40")]


def test_e7_every_co_owner_consents_by_default() -> None:
    missing = run(owners=CO_OWNERS, consenting={UNI_A})
    assert failed(missing) == {"E7"}
    assert "乙大学" in result(missing, "E7").message_en
    assert "乙大学" in result(missing, "E7").message_zh
    assert failed(run(owners=CO_OWNERS, consenting={UNI_A, UNI_B})) == set()


@pytest.mark.parametrize(
    ("rule", "consenting", "satisfied"),
    [
        (ConsentRule.UNANIMOUS, {UNI_A}, False),
        (ConsentRule.UNANIMOUS, {UNI_A, UNI_B}, True),
        (ConsentRule.ANY_OWNER, {UNI_B}, True),
        (ConsentRule.ANY_OWNER, set(), False),
        (ConsentRule.MAJORITY_TITLE_SHARE, {UNI_A}, True),  # 60 %
        (ConsentRule.MAJORITY_TITLE_SHARE, {UNI_B}, False),  # 40 %
    ],
)
def test_e7_follows_the_owners_agreed_decision_rule(
    rule: ConsentRule, consenting: set[uuid.UUID], satisfied: bool
) -> None:
    patent = make_patent(consent_open_licence=rule)
    report = run(patent, owners=CO_OWNERS, consenting=consenting)
    assert ("E7" not in failed(report)) is satisfied
    assert consent_outcome(rule, CO_OWNERS, consenting)[0] is satisfied


def test_consent_outcome_halves_and_missing_owners() -> None:
    halves = [owner(UNI_A, "甲", "50"), owner(UNI_B, "乙", "50")]
    ok, missing = consent_outcome(ConsentRule.MAJORITY_TITLE_SHARE, halves, {UNI_A})
    assert not ok  # a majority is more than half
    assert [o.organisation_id for o in missing] == [UNI_B]
    assert consent_outcome(ConsentRule.ANY_OWNER, [], {UNI_A}) == (False, [])


def test_e7_counts_only_consents_to_the_current_terms() -> None:
    from registry.offers.eligibility import consenting_organisations

    offer = make_offer()
    offer.consents = [
        OfferConsent(organisation_id=UNI_B, purpose=ConsentPurpose.PUBLISH, terms_sha256="0" * 64),
        OfferConsent(
            organisation_id=UNI_A, purpose=ConsentPurpose.WITHDRAW, terms_sha256=offer.terms_sha256
        ),
    ]
    assert consenting_organisations(offer, purpose=ConsentPurpose.PUBLISH) == frozenset()
    assert consenting_organisations(
        offer, purpose=ConsentPurpose.PUBLISH, implied=UNI_A
    ) == frozenset({UNI_A})
    offer.consents.append(
        OfferConsent(
            organisation_id=UNI_B, purpose=ConsentPurpose.PUBLISH, terms_sha256=offer.terms_sha256
        )
    )
    assert consenting_organisations(offer, purpose=ConsentPurpose.PUBLISH) == {UNI_B}


def test_e8_the_declaration_states_what_ir_85_requires() -> None:
    assert "E8" in failed(run(owners=[], consenting=set()))
    # A fixed term that has shrunk below the free period no longer adds up.
    offer = make_offer(
        term_years=None,
        term_end_date=(TODAY + timedelta(days=400)).isoformat(),
        royalty={"kind": "lump_sum", "amount": "1", "free_months": 12},
    )
    assert failed(run(make_patent(), offer)) == set()
    offer.term_end_date = TODAY + timedelta(days=200)
    offer.terms = offer.terms | {"term_end_date": offer.term_end_date.isoformat()}
    report = run(make_patent(), offer)
    assert failed(report) == {"E8"}
    assert "royalty.free_months" in result(report, "E8").message_en


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("国内领先的最佳负极材料技术", ["最佳", "领先"]),
        ("独家技术，稳赚不赔", ["独家", "稳赚"]),
        ("The best, world-class anode", ["best", "world-class"]),
        ("锂离子电池负极材料；最高温度 60 ℃", []),
        ("Anode material for best-effort batteries", ["best"]),
    ],
)
def test_e8b_advertising_words_are_a_warning(text: str, found: list[str]) -> None:
    report = run(offer=make_offer(other_matters=text))
    check = result(report, "E8b")
    assert check.passed is (not found)
    assert check.severity == "warning"
    for word in found:
        assert word in check.message_en
    assert report.eligible


def test_e9_the_licence_term_ends_by_the_patent_s_expiry() -> None:
    near = make_patent(expiry_date=TODAY + timedelta(days=365 * 2))
    report = run(near, make_offer(term_years=3))
    assert failed(report) == {"E9"}
    assert result(report, "E9").severity == "hard"
    assert failed(run(near, make_offer(term_years=2))) == set()
    past_end = make_offer(term_years=None, term_end_date=(TODAY + timedelta(days=30)).isoformat())
    past_end.term_end_date = TODAY  # a draft whose fixed end has come
    past_end.terms = past_end.terms | {"term_end_date": TODAY.isoformat()}
    assert "E9" in failed(run(offer=past_end))


def test_e10_royalty_above_the_guide_rails_is_a_warning() -> None:
    high = make_offer(royalty={"kind": "running", "base": "net_sales", "rate": "25"})
    report = run(offer=high)
    assert failed(report) == {"E10"}
    assert report.eligible
    assert "25" in result(report, "E10").message_en


@pytest.mark.parametrize(
    "text",
    ["仅限本省企业申请", "只向合作单位许可", "Licensed only to companies in Jiangsu"],
)
def test_e11_an_open_licence_excludes_no_one(text: str) -> None:
    report = run(offer=make_offer(other_matters=text))
    assert failed(report) == {"E11"}
    assert not report.eligible


def test_e11_the_territory_is_mainland_china() -> None:
    assert failed(run(offer=make_offer(territory="hong_kong"))) == {"E11"}


@pytest.mark.parametrize(
    ("declarant", "passes"),
    [
        (tto(UNI_A), True),
        (tto(UNI_B), False),  # a TTO of another organisation
        (tto(uuid.uuid4(), Role.ADMIN), True),  # the clearing house as agent
        (tto(UNI_A, Role.AUDITOR), False),
        (tto(UNI_A, Role.LICENSEE), False),
    ],
)
def test_e12_the_declarant_is_the_patentee(declarant: Actor, passes: bool) -> None:
    report = run(declarant=declarant)
    assert ("E12" not in failed(report)) is passes


def test_e13_the_declarant_attests_and_a_read_reports_it_pending() -> None:
    refused = run(attested=False)
    assert failed(refused) == {"E13"}
    assert not refused.eligible
    read = run(attested=None)
    assert failed(read) == {"E13"}
    assert read.pending == ["E13"]
    assert read.eligible  # publishing with the attestation would pass
    assert read.as_dict()["eligible"] is True


def test_failures_are_all_reported_together() -> None:
    patent = make_patent(
        patent_type=PatentType.UTILITY_MODEL,
        annual_fees_paid_through=None,
        encumbrances=[encumbrance("preservation_order")],
    )
    report = run(patent, owners=CO_OWNERS, consenting={UNI_A}, attested=False)
    assert {c.code for c in report.failed_hard} == {"E2", "E4", "E5", "E7", "E13"}
