"""The model behind tests/api/test_main_flows_stateful.py: what the registry should hold after
each step of the main flows, and the rules that predict each answer.

Kept apart from the state machine so that the predictions read as a specification: who owns
what, when a declaration may be published or is withdrawn (PL Art. 14 decision rules), and what
a take-up yields (PL Art. 51(1)). Labels (P1, O2, L3) stand for ids in Hypothesis' printout.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

UNIVERSITIES = ("A", "B")
#: Enterprise → its licensee users (E1 has two: keys are scoped to the user, licences to
#: the organisation).
ENTERPRISES = {"E1": ("E1a", "E1b"), "E2": ("E2a",)}
LICENSEES = {user: org for org, users in ENTERPRISES.items() for user in users}
#: Words only in patent titles, so that a search for one finds exactly its patents' offers.
MARKERS = ("锂电池", "光伏组件", "石墨烯")
ROYALTIES: dict[str, dict[str, Any]] = {
    "free": {"kind": "free"},
    "lump_sum": {"kind": "lump_sum", "amount": "50000.00"},
    "running": {"kind": "running", "base": "net_sales", "rate": "3.5"},
}
DECISION_RULES = ("unanimous", "any_owner", "majority_title_share")
ALL_ACTS = ["make", "use", "offer_to_sell", "sell", "import"]
LIVE = frozenset({"pending_payment", "active", "suspended"})


def other(university: str) -> str:
    return "B" if university == "A" else "A"


@dataclass(eq=False)
class PatentM:
    label: str
    id: str
    owners: dict[str, int]  # university → title share (%), in the order registered
    rule: str  # the open-licence decision rule (PL Art. 14)
    marker: str

    def __repr__(self) -> str:
        shares = "/".join(f"{u}{s}" for u, s in self.owners.items())
        return f"{self.label}({shares},{self.rule})"

    def satisfied(self, agreeing: set[str]) -> bool:
        """Whether the owners in ``agreeing`` decide for the patent under its rule
        (registry.offers.eligibility.consent_outcome)."""
        present = [u for u in self.owners if u in agreeing]
        if self.rule == "any_owner":
            return bool(present)
        if self.rule == "majority_title_share":
            return sum(self.owners[u] for u in present) > 50
        return len(present) == len(self.owners)


@dataclass(eq=False)
class OfferM:
    label: str
    id: str
    patent: PatentM
    royalty: str
    terms_sha256: str
    status: str = "draft"
    # Consents to publish, by the hash of the terms consented to: a consent binds exact terms,
    # so an edit leaves it aside, and an edit back to those terms makes it count again.
    given: dict[str, set[str]] = field(default_factory=dict)
    asks: set[str] = field(default_factory=set)  # withdrawal requests
    licence_count: int = 0
    ever_published: bool = False
    withdrawn_version: int | None = None

    def __repr__(self) -> str:
        return f"{self.label}({self.patent.label},{self.status},{self.royalty})"

    @property
    def consents(self) -> set[str]:
        """The organisations consenting to the current terms (E7)."""
        return self.given.setdefault(self.terms_sha256, set())

    @property
    def has_upfront(self) -> bool:
        return self.royalty == "lump_sum"

    @property
    def initial_licence_status(self) -> str:
        # An upfront amount due makes a licence wait for payment (licences.initial_status),
        # and the clearing issues its statement at take-up.
        return "pending_payment" if self.has_upfront else "active"


def is_draft(offer: OfferM) -> bool:
    return offer.status == "draft"


def is_published(offer: OfferM) -> bool:
    return offer.status == "published"


@dataclass(eq=False)
class LicenceM:
    label: str
    id: str
    offer: OfferM
    holder: str  # enterprise
    reference: str
    status: str
    offer_version: int
    contract: str = "pending"
    contract_sha256: str | None = None
    recordation: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"{self.label}({self.offer.label},{self.holder},{self.status})"

    @property
    def live(self) -> bool:
        return self.status in LIVE


@dataclass(eq=False)
class KeyM:
    """An Idempotency-Key a licensee user sent, and the outcome the registry stored for it."""

    user: str
    key: str
    offer: OfferM
    notice: dict[str, Any]
    status: int
    body: Any

    def __repr__(self) -> str:
        return f"Key({self.user},{self.offer.label},{self.status})"


class Model:
    def __init__(self) -> None:
        self.patents: list[PatentM] = []
        self.offers: list[OfferM] = []
        self.licences: list[LicenceM] = []
        self.keys: list[KeyM] = []
        self._labels = itertools.count(1)

    def label(self, prefix: str) -> str:
        return f"{prefix}{next(self._labels)}"

    def owned_by(self, university: str) -> list[PatentM]:
        return [p for p in self.patents if university in p.owners]

    def foreign_to(self, university: str) -> list[PatentM]:
        return [p for p in self.patents if university not in p.owners]

    def published_on(self, patent: PatentM) -> OfferM | None:
        return next(
            (o for o in self.offers if o.patent is patent and o.status == "published"), None
        )

    def live_licence(self, offer: OfferM, holder: str) -> LicenceM | None:
        return next(
            (x for x in self.licences if x.offer is offer and x.holder == holder and x.live), None
        )

    def used(self, user: str, key: str) -> bool:
        return any(k.user == user and k.key == key for k in self.keys)

    def expected_take_up(self, offer: OfferM, holder: str) -> tuple[int, str | None]:
        """(status, error code) of a take-up by ``holder`` of ``offer`` (licences.take_up)."""
        if offer.status != "published":
            return 409, "offer_not_published"
        if self.live_licence(offer, holder) is not None:
            return 409, "already_licensed"
        return 201, None


def notice(user: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "intended_use": "用于生产相关产品，年产能约500吨",
        "contact_name": "王经理",
        "contact_phone": "+86 21 5555-0100",
        "contact_email": f"{user.lower()}@sme.example.cn",
    }
    body.update(overrides)
    return body


def offer_body(patent_id: str, royalty: str, term_years: int) -> dict[str, Any]:
    return {
        "patent_id": patent_id,
        "royalty": dict(ROYALTIES[royalty]),
        "term_years": term_years,
        "licensed_acts": ALL_ACTS,
        "field_of_use": "新材料产品的生产与销售",
        "contact": {"name": "李老师", "email": "tto@uni.example.cn", "phone": "010-62780000"},
        "other_matters": "提供为期三个月的技术指导",
    }


def short(body: Any) -> str:
    text = json.dumps(body, ensure_ascii=False, default=str)
    return text if len(text) <= 300 else text[:300] + "…"
