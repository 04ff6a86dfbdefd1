"""T33 (reliability.md §8), the main flows: a Hypothesis state machine over the HTTP API.

Two universities' TTOs register patents (some co-owned, under each Art. 14 decision rule),
share them or take them back, draft and edit declarations, consent, publish and ask to withdraw
them; two enterprises' licensee users take them up (with and without an ``Idempotency-Key``,
replaying keys and reusing them wrongly, on drafts and withdrawn offers too), terminate licences
and record them with CNIPA; the deferred worker issues contracts; each university's TTO and each
enterprise try to act on what is not theirs; an auditor reads. A model
(tests/api/stateful_model.py) predicts every answer, and each write's audit events.

After every step the registry must agree with the model:

- every accepted take-up is exactly one licence; replays and refusals add none; licence
  references are unique; each licence's status, offer, holder, offer version, recordation and
  contract status are as predicted; never two live licences per (offer, enterprise);
- a withdrawn offer takes no new licence, and the licences taken before stand (each wrote an
  offer version below the withdrawal's); each offer's status, terms hash, licence count and
  withdrawal requests are as predicted;
- the public search (and a search by a word of the title) and the gazette show exactly the
  published offers, and exactly the publications and withdrawals that happened;
- each organisation's listings (patents, drafts, licences) hold exactly its own objects;
- the audit log verifies, holds exactly the events the accepted writes recorded (none for a
  refusal or a read), and each tree head is consistent with the one before (RFC 9162 §2.1.4.2:
  the log was only appended to).

Real HTTP through the Flask client on the real database (SQLite, or PostgreSQL with
REGISTRY_TEST_DATABASE_URL); each example runs in a savepoint rolled back afterwards, as
tests/unit/test_clearing_stateful.py does. Contracts are issued deferred
(REGISTRY_CONTRACT_ISSUE=deferred, set on this app's contract office for the test, since inline
rendering costs ~0.6 s per take-up); the ``issue_contract`` rule runs the deferred worker
(``flask contracts issue``) at most once per example instead. The seed is fixed and printed
(reliability.md §0 rule 10); REGISTRY_STATEFUL_SEED, REGISTRY_STATEFUL_EXAMPLES and
REGISTRY_STATEFUL_STEPS override it and the bounds. 40 examples of up to 12 steps (~460 steps):
Hypothesis turns a random half of the rules off per example (swarm testing), so more, shorter
examples cover the rules more evenly than fewer, longer ones; about 55 s on SQLite and 75 s on
PostgreSQL on an idle 2-core machine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
from flask import Flask
from hypothesis import HealthCheck, note, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from registry.audit import merkle
from registry.contracts.issuing import office
from registry.core import clock
from tests.api.stateful_model import (
    DECISION_RULES,
    ENTERPRISES,
    LICENSEES,
    MARKERS,
    ROYALTIES,
    UNIVERSITIES,
    KeyM,
    LicenceM,
    Model,
    OfferM,
    PatentM,
    is_draft,
    is_published,
    notice,
    offer_body,
    other,
    short,
)
from tests.conftest import Api, TransactionalDatabase
from tests.factories import Factory
from tests.factories.offers import fast_admin, fees_paid_through

SEED = int(os.environ.get("REGISTRY_STATEFUL_SEED", "20261127"))
EXAMPLES = int(os.environ.get("REGISTRY_STATEFUL_EXAMPLES", "40"))
STEPS = int(os.environ.get("REGISTRY_STATEFUL_STEPS", "12"))
#: Rendering and signing a contract is the one slow step (~0.6 s): at most this many a run.
CONTRACTS_PER_EXAMPLE = 1
STALE_ETAG = '"' + "0" * 32 + '"'
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Audit events of the features this machine drives; a take-up with an upfront amount also
#: brings the clearing's (its statement and its journal transaction), checked apart.
CORE_EVENTS = ("patent.", "offer.", "licence.", "contract.")

F = TypeVar("F", bound=Callable[..., Any])
#: A trespass: who, method, path, request keywords, the status and error code it must get.
Trespass = tuple[str, str, str, dict[str, Any], int, str]


def edit(body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """The keywords of a PATCH request."""
    return {"json": body, "headers": headers}


def counted(step: F) -> F:
    """Count each run of the step; the tally is printed at the end (what the run covered)."""

    @functools.wraps(step)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        self.steps[step.__name__] += 1
        return step(self, *args, **kwargs)

    return cast(F, run)


def test_main_flows_keep_the_registry_consistent(
    app: Flask,
    api: Api,
    db: TransactionalDatabase,
    factory: Factory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(office(app), "mode", "deferred")
    print(  # reliability.md §0 rule 10: a randomised test prints its seed
        f"main-flows state machine: seed={SEED} examples={EXAMPLES} steps={STEPS} "
        f"database={db.connection.dialect.name}"
    )

    # The cast, made once and kept across examples (what the examples do is rolled back).
    admin = fast_admin(factory)
    organisations = {u: factory.organisation("university", name=f"{u}大学") for u in UNIVERSITIES}
    organisations |= {e: factory.organisation("enterprise", name=f"{e}科技") for e in ENTERPRISES}
    users = {"admin": admin}
    users |= {f"tto:{u}": factory.user(organisations[u], "tto") for u in UNIVERSITIES}
    users |= {user: factory.user(organisations[org], "licensee") for user, org in LICENSEES.items()}
    # University A's audit office: it reads at least A's records, at most everyone's.
    users["auditor"] = factory.user(organisations["A"], "auditor")
    tokens = {who: factory.token(user) for who, user in users.items()}
    org_id = {key: str(organisation.id) for key, organisation in organisations.items()}
    auditor_id = str(users["auditor"].id)
    factory.session.flush()
    requests: Counter[str] = Counter()  # what the rules asked, by route and answer
    steps: Counter[str] = Counter()  # the steps run, by rule and invariant

    class MainFlows(RuleBasedStateMachine):
        # Plumbing -------------------------------------------------------------------------

        def __init__(self) -> None:
            super().__init__()
            self.steps = steps

        @initialize(
            share=st.sampled_from((40, 50, 60)),
            decision=st.sampled_from(DECISION_RULES),
            royalty=st.sampled_from(sorted(ROYALTIES)),
        )
        def begin(self, share: int, decision: str, royalty: str) -> None:
            """A's patent with a published offer, and a patent A and B co-own with a draft of
            B's, so that every example reaches take-ups and co-owners' consents early."""
            self.savepoint = db.connection.begin_nested()
            self.model = Model()
            self.contracts_issued = 0
            self.round = 0
            verdict = self.ok(self.call("admin", "GET", "/audit/verify", quiet=True))
            self.audit_size: int = verdict["size"]
            self.tree = self.tree_head()
            sole = self.new_patent("A", None, decision, MARKERS[0])
            self.publish_offer(self.new_offer(sole, "A", royalty, 3), "A")
            self.new_offer(self.new_patent("A", share, decision, MARKERS[1]), "B", royalty, 3)

        def teardown(self) -> None:
            self.savepoint.rollback()

        def call(self, who: str | None, method: str, path: str, *, quiet: bool = False,
                 **kwargs: Any) -> Any:  # fmt: skip
            """One request as ``who`` (None: anonymous); noted for Hypothesis' report."""
            response = api.as_(tokens[who] if who else None)._call(method, path, **kwargs)
            if not quiet:
                requests[f"{method} {UUID.sub('{id}', path)} {response.status_code}"] += 1
                note(
                    f"{who or 'anonymous'} {method} {path} → {response.status_code} "
                    f"{short(response.get_json(silent=True))}"
                )
            return response

        def ok(self, response: Any, status: int = 200) -> Any:
            assert response.status_code == status, (status, response.get_json(silent=True))
            return response.json

        def refused(self, response: Any, status: int, code: str) -> None:
            body = response.get_json(silent=True)
            assert response.status_code == status, (status, code, body)
            assert body["status"] == status, body  # the error envelope
            assert body["code"] == code, body

        def pages(self, who: str | None, path: str, **query: Any) -> list[Any]:
            """Every item of a list endpoint, page by page."""
            items: list[Any] = []
            page = 1
            while True:
                response = self.call(
                    who, "GET", path, quiet=True,
                    query_string={**query, "page": page, "page_size": 100},
                )  # fmt: skip
                items += self.ok(response)
                total = json.loads(response.headers.get("X-Pagination", "{}")).get("total", 0)
                if len(items) >= total or not response.json:
                    return items
                page += 1

        def appended(self) -> list[dict[str, Any]]:
            """The audit events appended since the last look, in sequence."""
            events = self.pages("admin", "/audit/events", after_seq=self.audit_size)
            seqs = [e["seq"] for e in events]
            assert seqs == list(range(self.audit_size + 1, self.audit_size + 1 + len(events)))
            self.audit_size += len(events)
            return events

        def expect_events(self, *expected: tuple[str, str], clearing: bool = False) -> None:
            """Exactly these (action, subject id) events were appended, in this order; with
            ``clearing``, the clearing's statement (and its journal) as well."""
            got = [(e["action"], e["subject_id"]) for e in self.appended()]
            assert [g for g in got if g[0].startswith(CORE_EVENTS)] == list(expected), got
            others = sorted({g[0] for g in got if not g[0].startswith(CORE_EVENTS)})
            assert others == (["journal.posted", "statement.issued"] if clearing else []), got

        def nothing_recorded(self) -> None:
            assert self.appended() == []

        def tree_head(self) -> dict[str, Any]:
            return dict(self.ok(self.call("admin", "GET", "/audit/tree-head", quiet=True)))

        def draw_owner(self, data: st.DataObject, patent: PatentM) -> str:
            return data.draw(st.sampled_from(list(patent.owners)), label="owner")

        # Patents ---------------------------------------------------------------------------

        @rule(
            owner=st.sampled_from(UNIVERSITIES),
            co_owned=st.booleans(),
            share=st.sampled_from((40, 50, 60)),
            decision=st.sampled_from(DECISION_RULES),
            marker=st.sampled_from(MARKERS),
        )
        @counted
        def create_patent(
            self, owner: str, co_owned: bool, share: int, decision: str, marker: str
        ) -> None:
            self.new_patent(owner, share if co_owned else None, decision, marker)

        def new_patent(self, owner: str, share: int | None, decision: str, marker: str) -> PatentM:
            """``owner``'s TTO registers a patent, co-owned with the other university (``owner``
            holding ``share`` per cent, under the open-licence ``decision`` rule) unless
            ``share`` is None."""
            data = factory.patent_data(
                title=f"一种{marker}相关的制备方法", annual_fees_paid_through=fees_paid_through()
            )
            created = self.ok(self.call(f"tto:{owner}", "POST", "/patents", json=data), 201)
            expected = [("patent.created", created["id"])]
            owners = {owner: 100}
            if share is not None:
                owners = {owner: share, other(owner): 100 - share}
                body = {
                    "owners": [
                        {"organisation_id": org_id[u], "title_share": str(s),
                         "income_share": str(s)}
                        for u, s in owners.items()
                    ],
                    "decision_rules": {"open_licence": decision},
                }  # fmt: skip
                path = f"/patents/{created['id']}/owners"
                shared = self.ok(self.call(f"tto:{owner}", "PUT", path, json=body))
                assert [o["organisation_id"] for o in shared["owners"]] == [
                    org_id[u] for u in owners
                ]
                expected.append(("patent.ownership_set", created["id"]))
            self.expect_events(*expected)
            rule_ = decision if share is not None else "unanimous"
            patent = PatentM(self.model.label("P"), created["id"], owners, rule_, marker)
            self.model.patents.append(patent)
            return patent

        @precondition(lambda self: self.model.patents)
        @rule(
            data=st.data(),
            co_owned=st.booleans(),
            share=st.sampled_from((40, 50, 60)),
            decision=st.sampled_from(DECISION_RULES),
        )
        @counted
        def set_owners(
            self, data: st.DataObject, co_owned: bool, share: int, decision: str
        ) -> None:
            """An owner's TTO shares the patent with the other university, or takes it back
            (keeping its own organisation, as it must): who sees the patent, its drafts and its
            licences, who consents and who withdraws follow the owners of the moment."""
            # Often a patent with a published offer: what matters for its withdrawal.
            offered = [o.patent for o in self.model.offers if is_published(o)]
            focus: bool = data.draw(st.booleans(), label="on an offered patent")
            patents = offered if offered and focus else self.model.patents
            patent = data.draw(st.sampled_from(patents), label="patent")
            by = self.draw_owner(data, patent)
            owners = {by: share, other(by): 100 - share} if co_owned else {by: 100}
            body = {
                "owners": [
                    {"organisation_id": org_id[u], "title_share": str(s), "income_share": str(s)}
                    for u, s in owners.items()
                ],
                "decision_rules": {"open_licence": decision},
            }
            path = f"/patents/{patent.id}/owners"
            shared = self.ok(self.call(f"tto:{by}", "PUT", path, json=body))
            assert [o["organisation_id"] for o in shared["owners"]] == [org_id[u] for u in owners]
            self.expect_events(("patent.ownership_set", patent.id))
            patent.owners = owners
            patent.rule = decision

        # Declarations ----------------------------------------------------------------------

        @precondition(lambda self: self.model.patents)
        @rule(data=st.data(), royalty=st.sampled_from(sorted(ROYALTIES)), term=st.integers(1, 5))
        @counted
        def draft_offer(self, data: st.DataObject, royalty: str, term: int) -> None:
            patent = data.draw(st.sampled_from(self.model.patents), label="patent")
            self.new_offer(patent, self.draw_owner(data, patent), royalty, term)

        def new_offer(self, patent: PatentM, by: str, royalty: str, term: int) -> OfferM:
            body = offer_body(patent.id, royalty, term)
            created = self.ok(self.call(f"tto:{by}", "POST", "/offers", json=body), 201)
            assert created["status"] == "draft"
            assert created["patent_id"] == patent.id
            self.expect_events(("offer.created", created["id"]))
            offer = OfferM(
                self.model.label("O"), created["id"], patent, royalty, created["terms_sha256"]
            )
            self.model.offers.append(offer)
            return offer

        @precondition(lambda self: any(map(is_draft, self.model.offers)))
        @rule(data=st.data(), term=st.integers(1, 5), stale=st.booleans())
        @counted
        def edit_draft(self, data: st.DataObject, term: int, stale: bool) -> None:
            """An edit needs the current ETag (412 when stale); consents given to the old terms
            no longer count (E7 asks for consent to the terms published)."""
            drafts = [o for o in self.model.offers if is_draft(o)]
            offer = data.draw(st.sampled_from(drafts), label="draft")
            by = self.draw_owner(data, offer.patent)
            path = f"/offers/{offer.id}"
            etag = STALE_ETAG if stale else self.call(f"tto:{by}", "GET", path).headers["ETag"]
            response = self.call(
                f"tto:{by}", "PATCH", path, json={"term_years": term}, headers={"If-Match": etag}
            )
            if stale:
                self.refused(response, 412, "precondition_failed")
                self.nothing_recorded()
                return
            edited = self.ok(response)
            assert edited["term_years"] == term
            if edited["terms_sha256"] == offer.terms_sha256:
                self.nothing_recorded()
                return
            self.expect_events(("offer.updated", offer.id))
            offer.terms_sha256 = edited["terms_sha256"]
            # Consents to other terms no longer count (those to these very terms, given before
            # an earlier edit, count again).
            assert set(edited["consented_by"]) == {org_id[u] for u in offer.consents}

        @precondition(lambda self: any(map(is_draft, self.model.offers)))
        @rule(data=st.data(), variant=st.sampled_from(("first", "again", "stale")))
        @counted
        def consent(self, data: st.DataObject, variant: str) -> None:
            """An owner consents to a draft's terms, sending their hash: ``first`` one that has
            not yet, ``again`` one that has (409), ``stale`` with a hash of other terms (409:
            it would consent to what will not be published)."""
            pairs = [(o, u) for o in self.model.offers if is_draft(o) for u in o.patent.owners]
            chosen = [(o, u) for o, u in pairs if (u in o.consents) is (variant == "again")]
            offer, by = data.draw(st.sampled_from(chosen or pairs), label="draft, owner")
            terms_sha256 = "0" * 64 if variant == "stale" else offer.terms_sha256
            response = self.call(
                f"tto:{by}",
                "POST",
                f"/offers/{offer.id}/consents",
                json={"terms_sha256": terms_sha256},
            )
            if variant == "stale":
                self.refused(response, 409, "terms_changed")
            elif by in offer.consents:
                self.refused(response, 409, "duplicate")
            else:
                self.ok(response, 201)
                self.expect_events(("offer.consented", offer.id))
                offer.consents.add(by)
                return
            self.nothing_recorded()

        @precondition(lambda self: self.model.offers)
        @rule(data=st.data(), any_offer=st.booleans())
        @counted
        def publish(self, data: st.DataObject, any_offer: bool) -> None:
            """An owner publishes a draft (``any_offer``: or whatever offer, refused unless a
            draft)."""
            drafts = [o for o in self.model.offers if is_draft(o)]
            offers = self.model.offers if any_offer or not drafts else drafts
            offer = data.draw(st.sampled_from(offers), label="offer")
            self.publish_offer(offer, self.draw_owner(data, offer.patent))

        def publish_offer(self, offer: OfferM, by: str) -> None:
            response = self.call(
                f"tto:{by}", "POST", f"/offers/{offer.id}/publish", json={"attest_truthful": True}
            )
            if offer.status != "draft":
                self.refused(response, 409, "invalid_transition")
            elif not offer.patent.satisfied(offer.consents | {by}):  # E7, PL Art. 14
                self.refused(response, 409, "not_eligible")
                assert {e["field"] for e in response.json["errors"]} == {"eligibility.E7"}
            elif self.model.published_on(offer.patent) is not None:
                self.refused(response, 409, "already_published")
            else:
                published = self.ok(response)
                assert published["status"] == "published"
                assert published["gazette_number"]
                self.expect_events(("offer.published", offer.id))
                offer.status = "published"
                offer.ever_published = True
                offer.consents.add(by)  # publishing is the publisher's own consent
                return
            self.nothing_recorded()

        @precondition(lambda self: self.model.offers)
        @rule(data=st.data(), any_offer=st.booleans())
        @counted
        def withdraw(self, data: st.DataObject, any_offer: bool) -> None:
            """An owner asks to withdraw a published offer (``any_offer``: or whatever offer,
            refused unless published); it is withdrawn once the owners asking decide under the
            patent's rule (PL Art. 14), and the licences taken stand (Art. 50(2))."""
            published = [o for o in self.model.offers if is_published(o)]
            offers = self.model.offers if any_offer or not published else published
            offer = data.draw(st.sampled_from(offers), label="offer")
            by = self.draw_owner(data, offer.patent)
            response = self.call(
                f"tto:{by}", "POST", f"/offers/{offer.id}/withdraw", json={"reason": "调整条件"}
            )
            if offer.status != "published":
                self.refused(response, 409, "invalid_transition")
                self.nothing_recorded()
                return
            if by in offer.asks and not offer.patent.satisfied(offer.asks):
                self.refused(response, 409, "duplicate")
                self.nothing_recorded()
                return
            # A request that suffices by now (the owners or their rule changed since it was
            # made) is completed by asking again (tests/api/test_main_flows_regressions.py).
            answer = self.ok(response)
            offer.asks.add(by)
            withdrawn = offer.patent.satisfied(offer.asks)
            assert answer["withdrawn"] is withdrawn
            awaiting = set() if withdrawn else set(offer.patent.owners) - offer.asks
            assert {o["organisation_id"] for o in answer["awaiting"]} == {
                org_id[u] for u in awaiting
            }
            if not withdrawn:
                self.expect_events(("offer.withdrawal_requested", offer.id))
                return
            self.expect_events(("offer.withdrawn", offer.id))
            assert answer["offer"]["licence_count"] == offer.licence_count
            offer.status = "withdrawn"
            offer.withdrawn_version = answer["offer"]["withdrawn_version"]

        # Take-ups --------------------------------------------------------------------------

        def take_up(self, offer: OfferM, user: str, key: str | None) -> None:
            """``user`` takes up ``offer``; the model says whether a licence is made."""
            holder = LICENSEES[user]
            body = notice(user)
            headers = {"Idempotency-Key": key} if key else {}
            response = self.call(
                user, "POST", f"/offers/{offer.id}/take-up", json=body, headers=headers
            )
            status, code = self.model.expected_take_up(offer, holder)
            if key:
                self.model.keys.append(
                    KeyM(user, key, offer, body, response.status_code, response.json)
                )
            if code is not None:
                self.refused(response, status, code)
                self.nothing_recorded()
                return
            taken = self.ok(response, 201)
            assert taken["offer_id"] == offer.id
            assert taken["licensee_id"] == org_id[holder]
            assert taken["terms_sha256"] == offer.terms_sha256
            assert taken["status"] == offer.initial_licence_status
            assert taken["contract"]["status"] == "pending"  # issued later (deferred)
            self.expect_events(("licence.taken_up", taken["id"]), clearing=offer.has_upfront)
            offer.licence_count += 1
            self.model.licences.append(
                LicenceM(
                    self.model.label("L"),
                    taken["id"],
                    offer,
                    holder,
                    taken["reference"],
                    taken["status"],
                    taken["offer_version"],
                )
            )

        def next_take_up(self) -> tuple[OfferM, str] | None:
            return next(
                (
                    (offer, user)
                    for offer in self.model.offers
                    if is_published(offer)
                    for user in sorted(LICENSEES)
                    if self.model.live_licence(offer, LICENSEES[user]) is None
                ),
                None,
            )

        # Hypothesis favours the first rules (fewest arguments first) when it makes its
        # simplest choices: a take-up without choices moves those examples forward.
        @precondition(lambda self: self.next_take_up() is not None)
        @rule()
        @counted
        def take_up_next(self) -> None:
            """The first enterprise without a licence on the first published offer takes one,
            sending a key."""
            found = self.next_take_up()
            assert found is not None
            self.take_up(*found, key=str(uuid.uuid4()))

        @precondition(lambda self: any(map(is_published, self.model.offers)))
        @rule(data=st.data(), user=st.sampled_from(sorted(LICENSEES)), keyed=st.booleans())
        @counted
        def take_up_published(self, data: st.DataObject, user: str, keyed: bool) -> None:
            published = [o for o in self.model.offers if is_published(o)]
            offer = data.draw(st.sampled_from(published), label="offer")
            self.take_up(offer, user, str(uuid.uuid4()) if keyed else None)

        @precondition(lambda self: self.model.offers)
        @rule(data=st.data(), user=st.sampled_from(sorted(LICENSEES)), keyed=st.booleans())
        @counted
        def take_up_any(self, data: st.DataObject, user: str, keyed: bool) -> None:
            """Drafts and withdrawn offers too: refused, and nothing changes."""
            offer = data.draw(st.sampled_from(self.model.offers), label="offer")
            self.take_up(offer, user, str(uuid.uuid4()) if keyed else None)

        @precondition(lambda self: self.model.keys)
        @rule(
            data=st.data(),
            variant=st.sampled_from(("replay", "other_body", "other_offer", "colleague")),
        )
        @counted
        def reuse_key(self, data: st.DataObject, variant: str) -> None:
            """A retry gets the stored answer (a refusal too, even if the offer has changed
            since) and changes nothing; the key with another request is refused (422); a
            colleague's key is a new request of theirs (keys are scoped to the user)."""
            key = data.draw(st.sampled_from(self.model.keys), label="key")
            if variant == "colleague":
                colleagues = [
                    u
                    for u in ENTERPRISES[LICENSEES[key.user]]
                    if u != key.user and not self.model.used(u, key.key)
                ]
                if colleagues:
                    self.take_up(key.offer, colleagues[0], key.key)
                    return
                variant = "replay"
            target, body = key.offer, key.notice
            if variant == "other_body":
                body = {**key.notice, "notes": "请再寄一份技术资料"}
            elif variant == "other_offer":
                target = data.draw(st.sampled_from(self.model.offers), label="other offer")
            response = self.call(
                key.user,
                "POST",
                f"/offers/{target.id}/take-up",
                json=body,
                headers={"Idempotency-Key": key.key},
            )
            if target is key.offer and body == key.notice:
                assert response.status_code == key.status, response.json
                assert response.json == key.body
                assert response.headers["Idempotent-Replayed"] == "true"
            else:
                self.refused(response, 422, "idempotency_key_reused")
            self.nothing_recorded()

        # Licences --------------------------------------------------------------------------

        @precondition(lambda self: self.model.licences)
        @rule(data=st.data())
        @counted
        def terminate(self, data: st.DataObject) -> None:
            licence = data.draw(st.sampled_from(self.model.licences), label="licence")
            user = data.draw(st.sampled_from(ENTERPRISES[licence.holder]), label="user")
            response = self.call(
                user, "POST", f"/licences/{licence.id}/terminate", json={"reason": "停止生产"}
            )
            if not licence.live:
                self.refused(response, 409, "invalid_transition")
                self.nothing_recorded()
                return
            assert self.ok(response)["status"] == "terminated"
            self.expect_events(("licence.terminated", licence.id))
            licence.status = "terminated"

        @precondition(lambda self: self.model.licences)
        @rule(
            data=st.data(),
            number=st.sampled_from(("X2026990000123", "X2026990000456")),
            by_licensor=st.booleans(),
        )
        @counted
        def record_with_cnipa(self, data: st.DataObject, number: str, by_licensor: bool) -> None:
            """Either party records the licence (IR Art. 87); the same values again change
            nothing and record nothing."""
            licence = data.draw(st.sampled_from(self.model.licences), label="licence")
            if by_licensor:
                who = "tto:" + self.draw_owner(data, licence.offer.patent)
            else:
                who = data.draw(st.sampled_from(ENTERPRISES[licence.holder]), label="user")
            body = {
                "number": number,
                "date": clock.today().isoformat(),
                "filed_by": "licensor" if by_licensor else "licensee",
            }
            path = f"/licences/{licence.id}/recordation"
            assert self.ok(self.call(who, "PUT", path, json=body))["recordation"] == body
            if licence.recordation == body:
                self.nothing_recorded()
            else:
                self.expect_events(("licence.recordation_set", licence.id))
                licence.recordation = body

        @precondition(
            lambda self: (
                self.contracts_issued < CONTRACTS_PER_EXAMPLE
                and any(x.contract == "pending" for x in self.model.licences)
            )
        )
        @rule()
        @counted
        def issue_contract(self) -> None:
            """The deferred worker issues the oldest pending contract; its holder downloads
            exactly the bytes whose SHA-256 the licence and the audit log name."""
            result = app.test_cli_runner().invoke(args=["contracts", "issue", "--limit", "1"])
            note(f"flask contracts issue --limit 1 → {result.exit_code} {result.output.strip()}")
            assert result.exit_code == 0, result.output
            self.contracts_issued += 1
            licence = next(x for x in self.model.licences if x.contract == "pending")
            (event,) = self.appended()
            assert (event["action"], event["subject_id"]) == ("contract.issued", licence.id)
            user = ENTERPRISES[licence.holder][0]
            seen = self.ok(self.call(user, "GET", f"/licences/{licence.id}"))["contract"]
            assert seen["status"] == "issued"
            assert seen["sha256"] == event["payload"]["signed_sha256"]
            pdf = self.call(user, "GET", f"/licences/{licence.id}/contract.pdf")
            assert pdf.status_code == 200
            assert hashlib.sha256(pdf.data).hexdigest() == seen["sha256"]
            self.expect_events(("contract.downloaded", licence.id))  # each one is recorded
            licence.contract = "issued"
            licence.contract_sha256 = seen["sha256"]

        # Trespassers -----------------------------------------------------------------------

        def trespasses(self) -> list[Trespass]:
            """What each university's TTO might try on objects it does not own, and each
            enterprise's user on licences it does not hold, with the answer each must get: 404
            for what they may not see (no existence oracle), 403 for a public offer they may
            not act on, 422 on ``patent_id`` for a declaration of another's patent."""
            tries: list[Trespass] = []
            any_version = {"If-Match": "*"}
            for university in UNIVERSITIES:
                tto = f"tto:{university}"
                mine = {
                    "organisation_id": org_id[university],
                    "title_share": "100",
                    "income_share": "100",
                }
                for patent in self.model.foreign_to(university):
                    path = f"/patents/{patent.id}"
                    declaration = offer_body(patent.id, "free", 3)
                    tries += [
                        (tto, "GET", path, {}, 404, "not_found"),
                        (tto, "PATCH", path, edit({"title": "改"}, any_version), 404, "not_found"),
                        (tto, "PUT", f"{path}/owners", {"json": {"owners": [mine]}}, 404,
                         "not_found"),
                        (tto, "POST", "/offers", {"json": declaration}, 422, "validation_error"),
                    ]  # fmt: skip
                for offer in self.model.offers:
                    if university in offer.patent.owners:
                        continue
                    path = f"/offers/{offer.id}"
                    answer = (404, "not_found") if is_draft(offer) else (403, "forbidden")
                    consent = {"json": {"terms_sha256": offer.terms_sha256}}
                    tries += [
                        (tto, "PATCH", path, edit({"term_years": 2}, any_version), *answer),
                        (tto, "GET", f"{path}/eligibility", {}, *answer),
                        (tto, "POST", f"{path}/consents", consent, *answer),
                        (tto, "POST", f"{path}/publish", {"json": {"attest_truthful": True}},
                         *answer),
                        (tto, "POST", f"{path}/withdraw", {"json": {"reason": "无权"}}, *answer),
                    ]  # fmt: skip
                    if is_draft(offer):
                        tries.append((tto, "GET", path, {}, 404, "not_found"))
                for licence in self.model.licences:
                    if university not in licence.offer.patent.owners:
                        tries += self.licence_trespasses(tto, licence)
            for licence in self.model.licences:
                for enterprise, members in ENTERPRISES.items():
                    if enterprise != licence.holder:
                        tries += self.licence_trespasses(members[0], licence)
            return tries

        def licence_trespasses(self, who: str, licence: LicenceM) -> list[Trespass]:
            path = f"/licences/{licence.id}"
            today = clock.today().isoformat()
            recordation = {"number": "X2026990000999", "date": today, "filed_by": "licensor"}
            return [
                (who, "GET", path, {}, 404, "not_found"),
                (who, "POST", f"{path}/terminate", {"json": {"reason": "无权"}}, 404, "not_found"),
                (who, "PUT", f"{path}/recordation", {"json": recordation}, 404, "not_found"),
                (who, "GET", f"{path}/contract.pdf", {}, 404, "not_found"),
            ]

        @precondition(lambda self: self.trespasses())
        @rule(data=st.data())
        @counted
        def trespass(self, data: st.DataObject) -> None:
            who, method, path, kwargs, status, code = data.draw(
                st.sampled_from(self.trespasses()), label="trespass"
            )
            response = self.call(who, method, path, **kwargs)
            self.refused(response, status, code)
            if status == 422:
                assert {e["field"] for e in response.json["errors"]} == {"patent_id"}
            self.nothing_recorded()

        # The auditor -----------------------------------------------------------------------

        @precondition(lambda self: self.model.licences)
        @rule(data=st.data(), drafts=st.booleans())
        @counted
        def auditor_reads(self, data: st.DataObject, drafts: bool) -> None:
            """A's audit office reads at least A's records and at most everyone's, may change
            nothing, and its reads record nothing but its own reading."""
            seen = {x["id"] for x in self.pages("auditor", "/licences")}
            ours = {x.id for x in self.model.licences if "A" in x.offer.patent.owners}
            assert ours <= seen <= {x.id for x in self.model.licences}, (ours, seen)
            patents = {p["id"] for p in self.pages("auditor", "/patents")}
            assert {p.id for p in self.model.owned_by("A")} <= patents
            assert patents <= {p.id for p in self.model.patents}
            if drafts:
                listed = {o["id"] for o in self.pages("auditor", "/offers", status="draft")}
                assert listed <= {o.id for o in self.model.offers if is_draft(o)}
            assert self.ok(self.call("auditor", "GET", "/audit/verify"))["ok"] is True
            licence = data.draw(st.sampled_from(self.model.licences), label="licence")
            path = f"/licences/{licence.id}"
            visible = licence.id in seen
            response = self.call("auditor", "GET", path)
            assert response.status_code == (200 if visible else 404), response.json
            write = self.call("auditor", "POST", f"{path}/terminate", json={"reason": "审计"})
            self.refused(write, *((403, "forbidden") if visible else (404, "not_found")))
            assert all(e["actor_id"] == auditor_id for e in self.appended())

        # Invariants ------------------------------------------------------------------------

        @invariant()
        @counted
        def licences_match_the_model(self) -> None:
            listed = self.pages("admin", "/licences")
            by_id = {x["id"]: x for x in listed}
            assert len(by_id) == len(listed) == len(self.model.licences), self.model.licences
            references = [x["reference"] for x in listed]
            assert len(set(references)) == len(references)
            live: set[tuple[str, str]] = set()
            for licence in self.model.licences:
                got = by_id[licence.id]
                assert got["reference"] == licence.reference
                assert got["status"] == licence.status, (licence, got["status"])
                assert got["offer_id"] == licence.offer.id
                assert got["licensee_id"] == org_id[licence.holder]
                assert got["offer_version"] == licence.offer_version
                assert got["recordation"] == licence.recordation
                assert got["contract"]["status"] == licence.contract
                assert got["contract"]["sha256"] == licence.contract_sha256
                if licence.offer.withdrawn_version is not None:
                    # It stands, taken before the withdrawal wrote the offer.
                    assert licence.offer_version < licence.offer.withdrawn_version
                if licence.live:
                    assert (licence.offer.id, licence.holder) not in live
                    live.add((licence.offer.id, licence.holder))

        @invariant()
        @counted
        def offers_and_gazette_match_the_model(self) -> None:
            public = {o["id"]: o for o in self.pages(None, "/offers")}
            assert set(public) == {o.id for o in self.model.offers if is_published(o)}
            withdrawn = {o["id"]: o for o in self.pages(None, "/offers", status="withdrawn")}
            assert set(withdrawn) == {o.id for o in self.model.offers if o.status == "withdrawn"}
            drafts = {o["id"]: o for o in self.pages("admin", "/offers", status="draft")}
            assert set(drafts) == {o.id for o in self.model.offers if is_draft(o)}
            listed = public | withdrawn | drafts
            for offer in self.model.offers:
                got = listed[offer.id]
                assert got["licence_count"] == offer.licence_count, offer
                assert got["terms_sha256"] == offer.terms_sha256, offer
                assert set(got["consented_by"]) == {org_id[u] for u in offer.consents}
                assert set(got["withdrawal_requested_by"]) == {org_id[u] for u in offer.asks}
            # A word of the title finds exactly the published offers on those patents (one
            # word per check, in turn).
            marker = MARKERS[self.round % len(MARKERS)]
            self.round += 1
            found = {o["id"] for o in self.pages(None, "/offers", q=marker)}
            assert found == {
                o.id for o in self.model.offers if is_published(o) and o.patent.marker == marker
            }
            gazette = self.pages(None, "/gazette")
            numbers = [e["number"] for e in gazette]
            assert len(set(numbers)) == len(numbers)
            assert sorted((e["kind"], e["offer_id"]) for e in gazette) == sorted(
                [("publication", o.id) for o in self.model.offers if o.ever_published]
                + [("withdrawal", o.id) for o in self.model.offers if o.status == "withdrawn"]
            )

        @invariant()
        @counted
        def each_organisation_sees_exactly_its_own(self) -> None:
            for university in UNIVERSITIES:
                tto = f"tto:{university}"
                patents = {p["id"] for p in self.pages(tto, "/patents")}
                assert patents == {p.id for p in self.model.owned_by(university)}
                drafts = {o["id"] for o in self.pages(tto, "/offers", status="draft")}
                assert drafts == {
                    o.id for o in self.model.offers if is_draft(o) and university in o.patent.owners
                }
                licences = {x["id"] for x in self.pages(tto, "/licences")}
                assert licences == {
                    x.id for x in self.model.licences if university in x.offer.patent.owners
                }
            for enterprise, members in ENTERPRISES.items():
                held = {x.id for x in self.model.licences if x.holder == enterprise}
                user = members[self.round % len(members)]  # each of its users, in turn
                assert {x["id"] for x in self.pages(user, "/licences")} == held

        @invariant()
        @counted
        def the_audit_log_verifies_and_only_grows(self) -> None:
            verdict = self.ok(self.call("admin", "GET", "/audit/verify", quiet=True))
            assert verdict["ok"] is True, verdict
            assert verdict["size"] == self.audit_size, (verdict, self.audit_size)
            # The tree now (the proof's second tree: the whole log) extends the one kept at
            # the last check: proved, not taken on trust.
            kept = self.tree
            query = {"first": kept["tree_size"]}
            proof = self.ok(
                self.call(
                    "admin", "GET", "/audit/proof/consistency", quiet=True, query_string=query
                )
            )
            assert proof["second"] == self.audit_size
            assert proof["first_root"] == kept["root_hash"]
            assert merkle.verify_consistency(
                kept["tree_size"],
                proof["second"],
                [bytes.fromhex(h) for h in proof["proof"]],
                bytes.fromhex(kept["root_hash"]),
                bytes.fromhex(proof["second_root"]),
            )
            self.tree = {"tree_size": proof["second"], "root_hash": proof["second_root"]}

    run_state_machine_as_test(
        seed(SEED)(MainFlows),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,  # the fixed seed, not a local example database, decides the run
            print_blob=True,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
    print("\n".join(f"{n:6d}  {what}" for what, n in sorted((steps + requests).items())))
