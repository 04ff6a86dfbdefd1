"""Who may call what: every URL rule × method × role × own/other organisation.

The matrix below is the authorisation spec, written as data (reliability.md §4.4; OWASP
WSTG-ATHZ-02/03, API1:2023 BOLA). Deny by default: a route added to the app without a row
here fails ``test_the_matrix_covers_every_route``.

Roles are anonymous (no token), admin (clearing house), tto (university A), licensee (an SME)
and auditor (an audit body). "own" targets objects of the caller's organisation (for anonymous
callers: university A's); "other" targets university B's. Each request is valid, so the status
reflects authorisation and not validation: allowed calls answer 2xx, a role that may not use
the route answers 403, another organisation's objects answer 404 (the same as a missing
object: no existence oracle) and anonymous calls 401. A refused call changes nothing: no row
and no audit event.

``NA``: the role's organisation cannot hold such an object (the clearing house and audit
bodies own no patents), so there is no "own" case to try.

Adding a route: add its row to MATRIX (the spec) and a builder of a valid request to REQUESTS;
list it in SCOPELESS if its request names no organisation's object.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.engine import Connection

from registry.accounts.models import Organisation, OrganisationKind
from registry.audit import checkpoints
from registry.audit.services import count_events
from registry.contracts.issuing import office
from registry.core.clock import today
from registry.licences.models import Licence
from registry.offers.models import Offer
from tests.api import access_clearing as ac
from tests.conftest import Api, TransactionalDatabase
from tests.factories import PASSWORD, Factory, make_application_number, make_uscc
from tests.factories import licences as licence_factories
from tests.factories import offers as offer_factories
from tests.factories.world import Member, World, build_world
from tests.web import access_pages as ap
from tests.web.pages import envelope_of

NA = None
ROLES = ("anonymous", "admin", "tto", "licensee", "auditor")
SCOPES = ("own", "other")

Cell = int | None
Pair = tuple[Cell, Cell]  # (own, other)


def row(anonymous: int, admin: Cell | Pair, tto: Cell | Pair, licensee: Cell | Pair,
        auditor: Cell | Pair) -> dict[str, Pair]:  # fmt: skip
    def pair(value: Cell | Pair) -> Pair:
        return value if isinstance(value, tuple) else (value, value)

    return {
        "anonymous": (anonymous, anonymous),
        "admin": pair(admin),
        "tto": pair(tto),
        "licensee": pair(licensee),
        "auditor": pair(auditor),
    }


def public(status: int) -> dict[str, Pair]:
    return row(status, status, status, status, status)


PATENT = "/api/v1/patents/<uuid:patent_id>"
ORGANISATION = "/api/v1/organisations/<uuid:organisation_id>"
TAKE_UP = "/api/v1/offers/<uuid:offer_id>/take-up"
OFFER = "/api/v1/offers/<uuid:offer_id>"
LICENCE = "/api/v1/licences/<uuid:licence_id>"
STATEMENT = "/api/v1/statements/<uuid:statement_id>"
RUN = "/api/v1/settlements/<uuid:run_id>"
PAYEE = RUN + "/payees/<payee_type>/<uuid:payee_id>"
AUDIT_SCOPE = "/api/v1/users/<uuid:user_id>/audit-scope"

# (method, rule) → expected status per role as (own organisation, other organisation).
MATRIX: dict[tuple[str, str], dict[str, Pair]] = {
    # Public: probes, the API description and its self-hosted docs, signing in.
    ("GET", "/healthz"): public(200),
    ("GET", "/readyz"): public(200),
    ("GET", "/api/v1/openapi.json"): public(200),
    ("GET", "/api/docs"): public(200),
    ("GET", "/api/docs/vendor/<path:filename>"): public(200),
    ("GET", "/api/docs/own/<path:filename>"): public(200),
    # Flask's default static route: the app ships no static folder, so it serves nothing.
    ("GET", "/static/<path:filename>"): public(404),
    ("POST", "/api/v1/tokens"): public(201),
    # Tokens
    ("DELETE", "/api/v1/tokens/current"): row(401, 204, 204, 204, 204),
    # Organisations: admins register them; everyone sees their own, admins/auditors all.
    ("GET", "/api/v1/organisations"): row(401, 200, 200, 200, 200),
    ("POST", "/api/v1/organisations"): row(401, 201, 403, 403, 403),
    ("GET", ORGANISATION): row(401, 200, (200, 404), (200, 404), 200),
    ("GET", ORGANISATION + "/users"): row(401, 200, (200, 404), (403, 404), 200),
    ("POST", ORGANISATION + "/users"): row(401, 201, (201, 404), (403, 404), 403),
    ("GET", ORGANISATION + "/reward-policy"): row(401, 200, (200, 404), (200, 404), 200),
    # The clearing house holds no patents, so it has no reward policy (a rule, 409).
    ("PUT", ORGANISATION + "/reward-policy"): row(401, (409, 200), (200, 404), (403, 404), 403),
    # An auditor's scope: admins read and set it; an auditor reads its own (the request names
    # the world's auditor, so for anyone else it is another user: 404, no existence oracle).
    ("GET", AUDIT_SCOPE): row(401, 200, 404, 404, 200),
    ("PUT", AUDIT_SCOPE): row(401, 200, 403, 403, 403),
    # Patents: TTO staff of an owner and admins change; auditors read all; licensees none.
    ("GET", "/api/v1/patents"): row(401, 200, 200, 403, 200),
    ("POST", "/api/v1/patents"): row(401, (NA, 201), (201, 403), 403, 403),
    # A TTO naming another owner in an import fails that row ("your organisation must remain
    # an owner"): refused, nothing imported, reported per row as for any invalid row.
    ("POST", "/api/v1/patents/import"): row(401, (NA, 200), (200, 422), 403, 403),
    ("GET", PATENT): row(401, (NA, 200), (200, 404), 404, (NA, 200)),
    ("PATCH", PATENT): row(401, (NA, 200), (200, 404), 404, (NA, 403)),
    ("PUT", PATENT + "/owners"): row(401, (NA, 200), (200, 404), 404, (NA, 403)),
    ("PUT", PATENT + "/inventors"): row(401, (NA, 200), (200, 404), 404, (NA, 403)),
    ("POST", PATENT + "/encumbrances"): row(401, (NA, 201), (201, 404), 404, (NA, 403)),
    ("DELETE", PATENT + "/encumbrances/<uuid:encumbrance_id>"): row(
        401, (NA, 200), (200, 404), 404, (NA, 403)
    ),
    # The audit log spans every organisation: the operator and auditors only.
    ("GET", "/api/v1/audit/events"): row(401, 200, 403, 403, 200),
    ("GET", "/api/v1/audit/verify"): row(401, 200, 403, 403, 200),
    # Offers: published offers and the gazette are public; a draft is seen by its owners'
    # TTOs, admins and auditors only (404 for others: "own" is a draft on the caller's
    # organisation's patent, "other" on university B's). Owners' TTOs and admins draft, edit
    # and publish; consents and withdrawal requests are each owner's own act (admins 403);
    # a published offer being public, others asking to withdraw it get 403, not 404.
    ("GET", "/api/v1/offers"): public(200),
    ("POST", "/api/v1/offers"): row(401, (NA, 201), (201, 422), 403, 403),
    ("GET", OFFER): row(404, (NA, 200), (200, 404), 404, (NA, 200)),
    ("PATCH", OFFER): row(401, (NA, 200), (200, 404), 404, (NA, 403)),
    ("GET", OFFER + "/eligibility"): row(401, (NA, 200), (200, 404), 404, (NA, 200)),
    ("POST", OFFER + "/consents"): row(401, (NA, 403), (201, 404), 404, (NA, 403)),
    ("POST", OFFER + "/publish"): row(401, (NA, 200), (200, 404), 404, (NA, 403)),
    ("POST", OFFER + "/withdraw"): row(401, (NA, 403), (200, 403), 403, (NA, 403)),
    ("GET", "/api/v1/gazette"): public(200),
    ("GET", "/api/v1/gazette.atom"): public(200),
    # Take-ups: an enterprise's licensee users only, on any published offer (offers are
    # public, so "other" is university B's offer); its own organisation owns no offered patent.
    ("POST", TAKE_UP): row(401, (NA, 403), 403, (NA, 201), (NA, 403)),
    # Licences: the licensee's users, TTO staff of the patent's owners, admins and auditors.
    ("GET", "/api/v1/licences"): row(401, 200, 200, 200, 200),
    ("GET", "/api/v1/licences/recordation-due"): row(401, 200, 200, 200, 200),
    ("GET", LICENCE): row(401, (NA, 200), (200, 404), (200, 404), (NA, 200)),
    # Only the licensee terminates; either party (and the operator) records with CNIPA.
    ("POST", LICENCE + "/terminate"): row(401, (NA, 403), (403, 404), (200, 404), (NA, 403)),
    ("PUT", LICENCE + "/recordation"): row(401, (NA, 200), (200, 404), (200, 404), (NA, 403)),
    # Contracts: seen by whoever sees the licence; anyone verifies a copy or fetches the CA.
    ("GET", LICENCE + "/contract.pdf"): row(401, (NA, 200), (200, 404), (200, 404), (NA, 200)),
    ("POST", "/api/v1/contracts/verify"): public(200),
    ("GET", "/api/v1/contracts/certificate.pem"): public(200),
    ("GET", LICENCE + "/recordation-pack"): row(401, (NA, 200), (200, 404), (200, 404), (NA, 200)),
    # A draft's specimen is seen as the draft is (published ones are public: test_contracts).
    ("GET", OFFER + "/specimen.pdf"): row(404, (NA, 200), (200, 404), 404, (NA, 200)),
    # Clearing (issue 5). Schedules, reports and statements are seen as their licence is;
    # only the licensee reports; payments by the licensee (its own) or an admin.
    ("GET", LICENCE + "/schedule"): row(401, (NA, 200), (200, 404), (200, 404), (NA, 200)),
    ("GET", LICENCE + "/reports"): row(401, (NA, 200), (200, 404), (200, 404), (NA, 200)),
    ("POST", LICENCE + "/reports"): row(401, (NA, 403), (403, 404), (201, 404), (NA, 403)),
    ("GET", "/api/v1/statements"): row(401, 200, 200, 200, 200),
    ("GET", STATEMENT): row(401, (NA, 200), (200, 404), (200, 404), (NA, 200)),
    ("GET", STATEMENT + ".csv"): row(401, (NA, 200), (200, 404), (200, 404), (NA, 200)),
    ("GET", STATEMENT + ".pdf"): row(401, (NA, 200), (200, 404), (200, 404), (NA, 200)),
    ("POST", "/api/v1/payments"): row(401, (NA, 201), 403, (201, 404), (NA, 403)),
    ("GET", "/api/v1/payments"): row(401, 200, 200, 200, 200),
    ("GET", "/api/v1/payments/<uuid:payment_id>"): row(
        401, (NA, 200), (200, 404), (200, 404), (NA, 200)
    ),
    # The clearing house's own chores: bank statements and the suspense list.
    ("POST", "/api/v1/bank-statements"): row(401, 200, 403, 403, 403),
    ("GET", "/api/v1/bank-lines"): row(401, 200, 403, 403, 200),
    ("POST", "/api/v1/bank-lines/<uuid:line_id>/match"): row(401, 200, 403, 403, 403),
    # Settlements: run and reversed by admins; read by admins, auditors and the payees' TTOs.
    ("POST", "/api/v1/settlements"): row(401, 201, 403, 403, 403),
    ("GET", "/api/v1/settlements"): row(401, 200, 200, 403, 200),
    ("GET", RUN): row(401, (NA, 200), (200, 404), 403, (NA, 200)),
    ("POST", RUN + "/reverse"): row(401, (NA, 201), 403, 403, (NA, 403)),
    ("GET", "/api/v1/payees/<payee_type>/<uuid:payee_id>/statements"): row(
        401, (NA, 200), (200, 404), 403, (NA, 200)
    ),
    ("GET", PAYEE): row(401, (NA, 200), (200, 404), 403, (NA, 200)),
    ("GET", PAYEE + ".csv"): row(401, (NA, 200), (200, 404), 403, (NA, 200)),
    ("GET", PAYEE + ".pdf"): row(401, (NA, 200), (200, 404), 403, (NA, 200)),
    ("GET", "/api/v1/ledger/trial-balance"): row(401, 200, 403, 403, 200),
    ("GET", "/api/v1/ledger/accounts/<code>/entries"): row(401, 200, 403, 403, 200),
    ("GET", "/api/v1/licensees/<uuid:organisation_id>/account"): row(
        401, (NA, 200), 403, (200, 404), (NA, 200)
    ),
    # The Merkle log (issue 6): proofs for admins and auditors; checkpoints public once issued.
    ("GET", "/api/v1/audit/tree-head"): row(401, 200, 403, 403, 200),
    ("GET", "/api/v1/audit/proof/inclusion"): row(401, 200, 403, 403, 200),
    ("GET", "/api/v1/audit/proof/consistency"): row(401, 200, 403, 403, 200),
    ("POST", "/api/v1/audit/checkpoints"): row(401, 201, 403, 403, 403),
    ("GET", "/api/v1/audit/checkpoints"): public(200),
    ("GET", "/api/v1/audit/checkpoints/latest"): public(200),
    ("GET", "/api/v1/audit/checkpoint-key"): public(200),
    # Exports: each register scoped as its own list endpoint (tests/api/test_exports.py tries
    # every register and role); patents, like GET /patents, are refused to licensees.
    ("GET", "/api/v1/exports/<register>.csv"): row(401, 200, 200, 403, 200),
    # Web pages (issue 7). Their credential is the session cookie: tests/web/access_pages.py
    # signs each role in through /login. Public pages answer everyone; a page that needs a user
    # sends anonymous visitors to /login (302 from a GET, 303 from a POST); offers, licences
    # and contracts are seen exactly as through the API. A successful form answers 303.
    ("GET", "/"): public(200),
    ("GET", "/assets/<path:filename>"): public(200),
    ("GET", "/offers"): public(200),
    ("GET", "/offers/<uuid:offer_id>"): row(404, (NA, 200), (200, 404), 404, (NA, 200)),
    ("GET", "/offers/<uuid:offer_id>/specimen.pdf"): row(
        404, (NA, 200), (200, 404), 404, (NA, 200)
    ),
    ("GET", "/offers/<uuid:offer_id>/take-up"): row(302, (NA, 403), 403, (NA, 200), (NA, 403)),
    ("POST", "/offers/<uuid:offer_id>/take-up"): row(303, (NA, 403), 403, (NA, 303), (NA, 403)),
    ("GET", "/gazette"): public(200),
    ("GET", "/verify"): public(200),
    ("POST", "/verify"): public(200),
    ("GET", "/login"): public(200),
    ("POST", "/login"): public(303),
    ("POST", "/logout"): public(303),
    ("GET", "/account/password"): row(302, 200, 200, 200, 200),
    ("POST", "/account/password"): row(303, 303, 303, 303, 303),
    ("GET", "/licences"): row(302, 200, 200, 200, 200),
    ("GET", "/licences/<uuid:licence_id>"): row(302, (NA, 200), (200, 404), (200, 404), (NA, 200)),
    ("GET", "/licences/<uuid:licence_id>/contract.pdf"): row(
        302, (NA, 200), (200, 404), (200, 404), (NA, 200)
    ),
    # A TTO's portfolio and the bulk import: patents are seen and imported as through the API.
    ("GET", "/patents"): row(302, 200, 200, 403, 200),
    ("GET", "/patents/<uuid:patent_id>"): row(302, (NA, 200), (200, 404), 404, (NA, 200)),
    ("GET", "/patents/import"): row(302, 200, 200, 403, 403),
    ("POST", "/patents/import"): row(303, (NA, 303), (303, 422), 403, 403),
}


# Building a valid request for each route ---------------------------------------------------------


@dataclass
class Call:
    world: World
    member: Member | None  # None: anonymous
    scope: str
    api: Api
    factory: Factory

    @property
    def caller(self) -> Member:
        """Whose organisation "own" means (anonymous callers borrow university A's)."""
        return self.member or self.world.tto

    @property
    def organisation(self) -> Organisation:
        if self.scope == "other":
            return self.world.other_university
        world = self.world
        return {
            world.clearing_house.id: world.clearing_house,
            world.university.id: world.university,
            world.enterprise.id: world.enterprise,
            world.audit_body.id: world.audit_body,
        }[self.caller.organisation_id]

    @property
    def patent_id(self) -> uuid.UUID:
        return self.world.patents[self.organisation.id].id

    @property
    def pledge_id(self) -> uuid.UUID:
        return self.world.pledges[self.patent_id].id

    def etag(self) -> str:
        response = self.api.as_(self.world.admin.token).get(f"/patents/{self.patent_id}")
        assert response.status_code == 200, response.json
        return str(response.headers["ETag"])


Request = tuple[str, dict[str, Any]]  # URL, keyword arguments for the test client

# Routes whose request names no organisation's object: one case per role is enough.
SCOPELESS = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/docs"),
        ("GET", "/api/docs/vendor/<path:filename>"),
        ("GET", "/api/docs/own/<path:filename>"),
        ("GET", "/static/<path:filename>"),
        ("POST", "/api/v1/tokens"),
        ("DELETE", "/api/v1/tokens/current"),
        ("GET", "/api/v1/organisations"),
        ("POST", "/api/v1/organisations"),
        ("GET", "/api/v1/audit/events"),
        ("GET", "/api/v1/audit/verify"),
        ("GET", "/api/v1/offers"),
        ("GET", "/api/v1/gazette"),
        ("GET", "/api/v1/gazette.atom"),
        ("POST", "/api/v1/contracts/verify"),
        ("GET", "/api/v1/contracts/certificate.pem"),
        ("POST", "/api/v1/bank-statements"),
        ("GET", "/api/v1/bank-lines"),
        ("POST", "/api/v1/bank-lines/<uuid:line_id>/match"),
        ("POST", "/api/v1/settlements"),
        ("GET", "/api/v1/settlements"),
        ("GET", "/api/v1/ledger/trial-balance"),
        ("GET", "/api/v1/ledger/accounts/<code>/entries"),
        ("GET", "/api/v1/audit/tree-head"),
        ("GET", "/api/v1/audit/proof/inclusion"),
        ("GET", "/api/v1/audit/proof/consistency"),
        ("POST", "/api/v1/audit/checkpoints"),
        ("GET", "/api/v1/audit/checkpoints"),
        ("GET", "/api/v1/audit/checkpoints/latest"),
        ("GET", "/api/v1/audit/checkpoint-key"),
        ("GET", "/api/v1/exports/<register>.csv"),
        ("GET", "/"),
        ("GET", "/assets/<path:filename>"),
        ("GET", "/offers"),
        ("GET", "/gazette"),
        ("GET", "/verify"),
        ("POST", "/verify"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("POST", "/logout"),
        ("GET", "/account/password"),
        ("POST", "/account/password"),
        ("GET", "/licences"),
        ("GET", AUDIT_SCOPE),
        ("PUT", AUDIT_SCOPE),
    }
)

# POSTs that change nothing (a verification): no audit event is due.
QUERIES = frozenset({"/api/v1/contracts/verify", "/verify"})

ROLE_FOR_KIND = {
    OrganisationKind.CLEARING_HOUSE: "auditor",
    OrganisationKind.AUDIT_BODY: "auditor",
    OrganisationKind.UNIVERSITY: "tto",
    OrganisationKind.INSTITUTE: "tto",
    OrganisationKind.ENTERPRISE: "licensee",
}


def _import_file(call: Call) -> dict[str, Any]:
    header = "application_number,patent_type,title,filing_date"
    line = f"{make_application_number()},invention,批量导入的专利,2021-03-15"
    if call.scope == "other":
        header += ",owners"
        line += f",{call.organisation.uscc}:100:100"
    csv = f"{header}\n{line}\n".encode()
    return {"data": {"file": (io.BytesIO(csv), "patents.csv")}}


def _new_patent(call: Call) -> dict[str, Any]:
    data = call.factory.patent_data()
    if call.scope == "other":
        data["owner_organisation_id"] = str(call.organisation.id)
    return {"json": data}


def _offer(call: Call) -> Offer:
    """A published offer on the patent of the call's organisation (university A or B)."""
    world = call.world
    tto = world.tto if call.organisation.id == world.university.id else world.other_tto
    return licence_factories.published_offer(
        call.factory, tto.user, patent=world.patents[call.organisation.id], reuse=True
    )


def _licence_id(call: Call) -> uuid.UUID:
    """A licence of the call's organisation: held by the caller's enterprise (licensee), or on
    the organisation's patent (university A or B) held by another enterprise."""
    world = call.world
    if call.organisation.id == world.enterprise.id:
        offer = licence_factories.published_offer(
            call.factory, world.tto.user, patent=world.patents[world.university.id], reuse=True
        )
        holder = world.licensee.user
    else:
        offer = _offer(call)
        _, holder, _ = licence_factories.enterprise_licensee(call.factory)
    return licence_factories.take_up(call.factory, holder, offer).id


def _contract_upload(call: Call) -> dict[str, Any]:
    # Any caller checks the same genuine contract: the enterprise's own licence.
    holder = Call(call.world, call.world.licensee, "own", call.api, call.factory)
    licence = call.factory.session.get_one(Licence, _licence_id(holder))
    assert licence.contract is not None
    data = office(call.factory.app).store.get(licence.contract.signed_sha256)
    return {
        "data": {"file": (io.BytesIO(data), "contract.pdf")},
        "content_type": "multipart/form-data",
    }


def _offer_patent(call: Call) -> Any:
    """The call organisation's patent, or university B's for organisations that own none."""
    world = call.world
    return world.patents.get(call.organisation.id) or world.patents[world.other_university.id]


def _draft_id(call: Call, *, consented: bool = False) -> uuid.UUID:
    return offer_factories.matrix_draft(call.factory, _offer_patent(call), consented=consented).id


def _published_id(call: Call) -> uuid.UUID:
    return offer_factories.matrix_published(call.factory, _offer_patent(call)).id


def _draft_edit(call: Call) -> Request:
    offer_id = _draft_id(call)
    etag = call.api.as_(call.world.admin.token).get(f"/api/v1/offers/{offer_id}").headers["ETag"]
    return f"/api/v1/offers/{offer_id}", {"json": {"term_years": 2}, "headers": {"If-Match": etag}}


def _consent(call: Call) -> Request:
    offer_id = _draft_id(call)
    admin = call.api.as_(call.world.admin.token)
    sha = admin.get(f"/api/v1/offers/{offer_id}").json["terms_sha256"]
    return f"/api/v1/offers/{offer_id}/consents", {"json": {"terms_sha256": sha}}


REQUESTS: dict[tuple[str, str], Callable[[Call], Request]] = {
    ("GET", "/healthz"): lambda c: ("/healthz", {}),
    ("GET", "/readyz"): lambda c: ("/readyz", {}),
    ("GET", "/api/v1/openapi.json"): lambda c: ("/api/v1/openapi.json", {}),
    ("GET", "/api/docs"): lambda c: ("/api/docs", {}),
    ("GET", "/api/docs/vendor/<path:filename>"): lambda c: (
        "/api/docs/vendor/swagger-ui-bundle.js",
        {},
    ),
    ("GET", "/api/docs/own/<path:filename>"): lambda c: ("/api/docs/own/init.js", {}),
    ("GET", "/static/<path:filename>"): lambda c: ("/static/registry.css", {}),
    ("POST", "/api/v1/tokens"): lambda c: (
        "/api/v1/tokens",
        {"json": {"email": c.caller.user.email, "password": PASSWORD}},
    ),
    ("DELETE", "/api/v1/tokens/current"): lambda c: ("/api/v1/tokens/current", {}),
    ("GET", "/api/v1/organisations"): lambda c: ("/api/v1/organisations", {}),
    ("POST", "/api/v1/organisations"): lambda c: (
        "/api/v1/organisations",
        {
            "json": {
                "name": "新注册的企业",
                "kind": "enterprise",
                "uscc": make_uscc(),
                "size": "micro",
                "is_sme": True,
            }
        },
    ),
    ("GET", ORGANISATION): lambda c: (f"/api/v1/organisations/{c.organisation.id}", {}),
    ("GET", ORGANISATION + "/users"): lambda c: (
        f"/api/v1/organisations/{c.organisation.id}/users",
        {},
    ),
    ("POST", ORGANISATION + "/users"): lambda c: (
        f"/api/v1/organisations/{c.organisation.id}/users",
        {
            "json": {
                "email": f"new-{uuid.uuid4().hex[:8]}@example.test",
                "name": "新用户",
                "role": ROLE_FOR_KIND[c.organisation.kind],
                "password": PASSWORD,
            }
        },
    ),
    ("GET", AUDIT_SCOPE): lambda c: (f"/api/v1/users/{c.world.auditor.user.id}/audit-scope", {}),
    ("PUT", AUDIT_SCOPE): lambda c: (
        f"/api/v1/users/{c.world.auditor.user.id}/audit-scope",
        {"json": {"all_organisations": True, "organisation_ids": [str(c.world.university.id)]}},
    ),
    ("GET", ORGANISATION + "/reward-policy"): lambda c: (
        f"/api/v1/organisations/{c.organisation.id}/reward-policy",
        {},
    ),
    ("PUT", ORGANISATION + "/reward-policy"): lambda c: (
        f"/api/v1/organisations/{c.organisation.id}/reward-policy",
        {"json": {"inventor_share": "50", "deductions": ["taxes"]}},
    ),
    ("GET", "/api/v1/patents"): lambda c: (
        "/api/v1/patents",
        {"query_string": {"organisation_id": str(c.organisation.id)}},
    ),
    ("POST", "/api/v1/patents"): lambda c: ("/api/v1/patents", _new_patent(c)),
    ("POST", "/api/v1/patents/import"): lambda c: ("/api/v1/patents/import", _import_file(c)),
    ("GET", PATENT): lambda c: (f"/api/v1/patents/{c.patent_id}", {}),
    ("PATCH", PATENT): lambda c: (
        f"/api/v1/patents/{c.patent_id}",
        {"json": {"title": "更正后的标题"}, "headers": {"If-Match": c.etag()}},
    ),
    ("PUT", PATENT + "/owners"): lambda c: (
        f"/api/v1/patents/{c.patent_id}/owners",
        {
            "json": {
                "owners": [
                    {
                        "organisation_id": str(c.organisation.id),
                        "title_share": "100",
                        "income_share": "100",
                    }
                ]
            }
        },
    ),
    ("PUT", PATENT + "/inventors"): lambda c: (
        f"/api/v1/patents/{c.patent_id}/inventors",
        {"json": {"inventors": [{"name": "张三", "share": "100"}]}},
    ),
    ("POST", PATENT + "/encumbrances"): lambda c: (
        f"/api/v1/patents/{c.patent_id}/encumbrances",
        {
            "json": {
                "kind": "dispute_suspension",
                "start_date": "2025-01-01",
                "reference": "(2025)京73民初1号",
            }
        },
    ),
    ("DELETE", PATENT + "/encumbrances/<uuid:encumbrance_id>"): lambda c: (
        f"/api/v1/patents/{c.patent_id}/encumbrances/{c.pledge_id}",
        {"query_string": {"reason": "质权消灭"}},
    ),
    ("GET", "/api/v1/audit/events"): lambda c: ("/api/v1/audit/events", {}),
    ("GET", "/api/v1/audit/verify"): lambda c: ("/api/v1/audit/verify", {}),
    ("GET", "/api/v1/offers"): lambda c: ("/api/v1/offers", {"query_string": {"q": "锂"}}),
    ("POST", "/api/v1/offers"): lambda c: (
        "/api/v1/offers",
        {"json": offer_factories.offer_body(_offer_patent(c).id)},
    ),
    ("GET", OFFER): lambda c: (f"/api/v1/offers/{_draft_id(c)}", {}),
    ("PATCH", OFFER): _draft_edit,
    ("GET", OFFER + "/eligibility"): lambda c: (f"/api/v1/offers/{_draft_id(c)}/eligibility", {}),
    ("POST", OFFER + "/consents"): _consent,
    ("POST", OFFER + "/publish"): lambda c: (
        f"/api/v1/offers/{_draft_id(c, consented=True)}/publish",
        {"json": {"attest_truthful": True}},
    ),
    ("POST", OFFER + "/withdraw"): lambda c: (
        f"/api/v1/offers/{_published_id(c)}/withdraw",
        {"json": {"reason": "专利技术已更新换代"}},
    ),
    ("GET", "/api/v1/gazette"): lambda c: ("/api/v1/gazette", {}),
    ("GET", "/api/v1/gazette.atom"): lambda c: ("/api/v1/gazette.atom", {}),
    ("POST", TAKE_UP): lambda c: (
        f"/api/v1/offers/{_offer(c).id}/take-up",
        {"json": licence_factories.notice()},
    ),
    ("GET", "/api/v1/licences"): lambda c: ("/api/v1/licences", {}),
    ("GET", "/api/v1/licences/recordation-due"): lambda c: ("/api/v1/licences/recordation-due", {}),
    ("GET", LICENCE): lambda c: (f"/api/v1/licences/{_licence_id(c)}", {}),
    ("POST", LICENCE + "/terminate"): lambda c: (
        f"/api/v1/licences/{_licence_id(c)}/terminate",
        {"json": {"reason": "产品线调整，不再实施该专利"}},
    ),
    ("PUT", LICENCE + "/recordation"): lambda c: (
        f"/api/v1/licences/{_licence_id(c)}/recordation",
        {"json": {"number": "X2026990000123", "date": today().isoformat(), "filed_by": "licensee"}},
    ),
    ("GET", LICENCE + "/contract.pdf"): lambda c: (
        f"/api/v1/licences/{_licence_id(c)}/contract.pdf",
        {},
    ),
    ("POST", "/api/v1/contracts/verify"): lambda c: (
        "/api/v1/contracts/verify",
        _contract_upload(c),
    ),
    ("GET", "/api/v1/contracts/certificate.pem"): lambda c: (
        "/api/v1/contracts/certificate.pem",
        {},
    ),
    ("GET", LICENCE + "/recordation-pack"): lambda c: (
        f"/api/v1/licences/{_licence_id(c)}/recordation-pack",
        {},
    ),
    ("GET", OFFER + "/specimen.pdf"): lambda c: (f"/api/v1/offers/{_draft_id(c)}/specimen.pdf", {}),
    ("GET", LICENCE + "/schedule"): lambda c: (
        f"/api/v1/licences/{ac.priced_licence(c).id}/schedule",
        {},
    ),
    ("GET", LICENCE + "/reports"): lambda c: (
        f"/api/v1/licences/{ac.priced_licence(c).id}/reports",
        {},
    ),
    ("POST", LICENCE + "/reports"): lambda c: _report(c),
    ("GET", "/api/v1/statements"): lambda c: ("/api/v1/statements", {}),
    ("GET", STATEMENT): lambda c: (f"/api/v1/statements/{ac.statement_id(c)}", {}),
    ("GET", STATEMENT + ".csv"): lambda c: (f"/api/v1/statements/{ac.statement_id(c)}.csv", {}),
    ("GET", STATEMENT + ".pdf"): lambda c: (f"/api/v1/statements/{ac.statement_id(c)}.pdf", {}),
    ("POST", "/api/v1/payments"): lambda c: (
        "/api/v1/payments",
        {
            "json": {
                "statement_id": str(ac.statement_id(c)),
                "amount": "10.00",
                "paid_date": today().isoformat(),
                "reference": "矩阵测试",
            }
        },
    ),
    ("GET", "/api/v1/payments"): lambda c: ("/api/v1/payments", {}),
    ("GET", "/api/v1/payments/<uuid:payment_id>"): lambda c: (
        f"/api/v1/payments/{ac.payment_id(c)}",
        {},
    ),
    ("POST", "/api/v1/bank-statements"): lambda c: (
        "/api/v1/bank-statements",
        ac.bank_file("unmatched receipt"),
    ),
    ("GET", "/api/v1/bank-lines"): lambda c: ("/api/v1/bank-lines", {}),
    ("POST", "/api/v1/bank-lines/<uuid:line_id>/match"): lambda c: ac.suspense_match(c),
    ("POST", "/api/v1/settlements"): lambda c: _settle(c),
    ("GET", "/api/v1/settlements"): lambda c: ("/api/v1/settlements", {}),
    ("GET", RUN): lambda c: (f"/api/v1/settlements/{ac.run_id(c)}", {}),
    ("POST", RUN + "/reverse"): lambda c: (f"/api/v1/settlements/{ac.run_id(c)}/reverse", {}),
    ("GET", "/api/v1/payees/<payee_type>/<uuid:payee_id>/statements"): lambda c: _payee_runs(c),
    ("GET", PAYEE): lambda c: (ac.payee_path(c), {}),
    ("GET", PAYEE + ".csv"): lambda c: (ac.payee_path(c, ".csv"), {}),
    ("GET", PAYEE + ".pdf"): lambda c: (ac.payee_path(c, ".pdf"), {}),
    ("GET", "/api/v1/ledger/trial-balance"): lambda c: ("/api/v1/ledger/trial-balance", {}),
    ("GET", "/api/v1/ledger/accounts/<code>/entries"): lambda c: _cash_entries(c),
    ("GET", "/api/v1/licensees/<uuid:organisation_id>/account"): lambda c: (
        f"/api/v1/licensees/{ac.licensee_id(c)}/account",
        {},
    ),
    ("GET", "/api/v1/audit/tree-head"): lambda c: ("/api/v1/audit/tree-head", {}),
    ("GET", "/api/v1/audit/proof/inclusion"): lambda c: (
        "/api/v1/audit/proof/inclusion",
        {"query_string": {"leaf": 0}},
    ),
    ("GET", "/api/v1/audit/proof/consistency"): lambda c: (
        "/api/v1/audit/proof/consistency",
        {"query_string": {"first": 1}},
    ),
    ("POST", "/api/v1/audit/checkpoints"): lambda c: ("/api/v1/audit/checkpoints", {}),
    ("GET", "/api/v1/audit/checkpoints"): lambda c: ("/api/v1/audit/checkpoints", {}),
    ("GET", "/api/v1/audit/checkpoints/latest"): lambda c: _latest_checkpoint(c),
    ("GET", "/api/v1/audit/checkpoint-key"): lambda c: ("/api/v1/audit/checkpoint-key", {}),
    ("GET", "/api/v1/exports/<register>.csv"): lambda c: ("/api/v1/exports/patents.csv", {}),
    ("GET", "/"): lambda c: ap.page(c, "/"),
    ("GET", "/assets/<path:filename>"): lambda c: ap.page(c, "/assets/registry.css"),
    ("GET", "/offers"): lambda c: ap.page(c, "/offers?q=锂"),
    ("GET", "/offers/<uuid:offer_id>"): lambda c: ap.page(c, f"/offers/{_draft_id(c)}"),
    ("GET", "/offers/<uuid:offer_id>/specimen.pdf"): lambda c: ap.page(
        c, f"/offers/{_draft_id(c)}/specimen.pdf"
    ),
    ("GET", "/offers/<uuid:offer_id>/take-up"): lambda c: ap.page(
        c, f"/offers/{_offer(c).id}/take-up"
    ),
    ("POST", "/offers/<uuid:offer_id>/take-up"): lambda c: _page_take_up(c),
    ("GET", "/gazette"): lambda c: ap.page(c, "/gazette"),
    ("GET", "/verify"): lambda c: ap.page(c, "/verify"),
    ("POST", "/verify"): lambda c: ap.form(
        c, "/verify", _contract_upload(c)["data"], content_type="multipart/form-data"
    ),
    ("GET", "/login"): lambda c: ap.page(c, "/login"),
    ("POST", "/login"): ap.sign_in_form,
    ("POST", "/logout"): lambda c: ap.form(c, "/logout", {}),
    ("GET", "/account/password"): lambda c: ap.page(c, "/account/password"),
    ("POST", "/account/password"): lambda c: ap.form(
        c,
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": "a new passphrase for the matrix",
            "confirm_password": "a new passphrase for the matrix",
        },
    ),
    ("GET", "/licences"): lambda c: ap.page(c, "/licences"),
    ("GET", "/licences/<uuid:licence_id>"): lambda c: ap.page(c, f"/licences/{_licence_id(c)}"),
    ("GET", "/patents"): lambda c: ap.page(c, "/patents"),
    ("GET", "/patents/<uuid:patent_id>"): lambda c: ap.page(c, f"/patents/{c.patent_id}"),
    ("GET", "/patents/import"): lambda c: ap.page(c, "/patents/import"),
    ("POST", "/patents/import"): lambda c: ap.form(
        c, "/patents/import", _import_file(c)["data"], content_type="multipart/form-data"
    ),
    ("GET", "/licences/<uuid:licence_id>/contract.pdf"): lambda c: ap.page(
        c, f"/licences/{_licence_id(c)}/contract.pdf"
    ),
}

ERROR_CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}


def _report(call: Call) -> Request:
    built = ac.report_request(call)
    return built["url"], {"json": built["json"]}


def _settle(call: Call) -> Request:
    ac.payment_id(call)  # something to settle today
    day = today().isoformat()
    return "/api/v1/settlements", {"json": {"period_start": day, "period_end": day}}


def _cash_entries(call: Call) -> Request:
    ac.payment_id(call)  # money received: the cash account has entries
    return "/api/v1/ledger/accounts/cash/entries", {}


def _latest_checkpoint(call: Call) -> Request:
    checkpoints.issue(
        call.factory.session, actor=None, signer_=checkpoints.signer(call.factory.app)
    )
    return "/api/v1/audit/checkpoints/latest", {}


def _page_take_up(call: Call) -> Request:
    offer = _offer(call)
    confirmation = {
        **licence_factories.notice(),
        "step": "confirm",
        "agree": "yes",
        "terms_sha256": offer.terms_sha256,
        "idempotency_key": str(uuid.uuid4()),
    }
    return ap.form(call, f"/offers/{offer.id}/take-up", confirmation)


def _payee_runs(call: Call) -> Request:
    ac.run_id(call)
    return f"/api/v1/payees/organisation/{call.organisation.id}/statements", {}


def app_routes(app: Flask) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }


def test_the_matrix_covers_every_route(app: Flask) -> None:
    routes = app_routes(app)
    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert not missing, f"routes without an authorisation row: {missing}"
    assert not stale, f"rows for routes that no longer exist: {stale}"
    assert set(REQUESTS) == set(MATRIX)
    for key, cells in MATRIX.items():
        assert set(cells) == set(ROLES), key
        if key in SCOPELESS:
            assert all(own == other for own, other in cells.values()), key


def _events(db: TransactionalDatabase) -> int:
    with db.session(write=False) as session:
        return count_events(session)


def _member(world: World, role: str) -> Member | None:
    return None if role == "anonymous" else getattr(world, role)


def _by_rule(key: tuple[str, str]) -> tuple[str, str]:
    return key[1], key[0]


ROUTES: list[tuple[str, str]] = sorted(MATRIX, key=_by_rule)


@pytest.mark.parametrize(("method", "rule"), ROUTES)
def test_access(
    method: str,
    rule: str,
    api: Api,
    factory: Factory,
    db: TransactionalDatabase,
) -> None:
    """Every role × scope of one route; each call in a savepoint rolled back afterwards."""
    world = build_world(factory)
    connection: Connection = db.connection
    wrong: list[str] = []
    tried = 0
    for role in ROLES:
        for scope, expected in zip(SCOPES, MATRIX[method, rule][role], strict=True):
            if expected is NA or (scope == "other" and (method, rule) in SCOPELESS):
                continue
            tried += 1
            member = _member(world, role)
            call = Call(world, member, scope, api, factory)
            savepoint = connection.begin_nested()
            try:
                url, kwargs = REQUESTS[method, rule](call)
                events = _events(db)
                browser = kwargs.pop("page_client", None)  # a page: the session is the credential
                if browser is not None:
                    response = browser.open(url, method=method, **kwargs)
                else:
                    response = api.as_(member.token if member else None)._call(
                        method, url, **kwargs
                    )
                status = response.status_code
                body = response.get_json(silent=True) or envelope_of(response)
                response.close()
                after = _events(db)
            finally:
                savepoint.rollback()
            where = f"{role}/{scope}"
            if status != expected:
                wrong.append(f"{where}: expected {expected}, got {status} {str(body)[:300]}")
                continue
            if status in ERROR_CODES:
                if not (body and body.get("code") == ERROR_CODES[status]):
                    wrong.append(f"{where}: {status} without the error envelope: {body}")
                if after != events:
                    wrong.append(f"{where}: refused, yet {after - events} audit events appended")
            elif method != "GET" and status < 300 and after <= events and rule not in QUERIES:
                wrong.append(f"{where}: {method} succeeded without an audit event")
    assert tried
    assert not wrong, f"{method} {rule}:\n" + "\n".join(wrong)


def test_a_dead_token_is_anonymous_everywhere(
    api: Api, factory: Factory, db: TransactionalDatabase
) -> None:
    """A revoked token opens nothing that an absent one would not."""
    world = build_world(factory)
    token = factory.token(world.admin.user)
    assert api.as_(token).delete("/tokens/current").status_code == 204
    for (method, rule), cells in sorted(MATRIX.items()):
        if cells["anonymous"][0] != 401:
            continue
        call = Call(world, world.admin, "other", api, factory)
        url, kwargs = REQUESTS[method, rule](call)
        kwargs.pop("headers", None)
        response = api.as_(token)._call(method, url, **kwargs)
        assert response.status_code == 401, (method, rule, response.json)
        assert response.json["code"] == "unauthenticated"


def test_other_organisations_objects_look_missing(api: Api, factory: Factory) -> None:
    """A TTO probing university B's ids gets exactly what a random id gets."""
    world = build_world(factory)
    tto = api.as_(world.tto.token)
    other_patent = world.patents[world.other_university.id].id
    probes = [
        ("GET", f"/patents/{other_patent}", f"/patents/{uuid.uuid4()}", {}),
        (
            "PUT",
            f"/patents/{other_patent}/inventors",
            f"/patents/{uuid.uuid4()}/inventors",
            {"json": {"inventors": [{"name": "张三", "share": "100"}]}},
        ),
        (
            "GET",
            f"/organisations/{world.other_university.id}",
            f"/organisations/{uuid.uuid4()}",
            {},
        ),
        (
            "GET",
            f"/organisations/{world.other_university.id}/users",
            f"/organisations/{uuid.uuid4()}/users",
            {},
        ),
    ]
    for method, real, missing, kwargs in probes:
        seen = tto._call(method, real, **kwargs)
        unseen = tto._call(method, missing, **kwargs)
        assert (seen.status_code, seen.json) == (unseen.status_code, unseen.json), real


def test_lists_show_only_what_the_caller_may_see(api: Api, factory: Factory) -> None:
    world = build_world(factory)
    tto = api.as_(world.tto.token)

    organisations = tto.get("/organisations")
    assert [o["id"] for o in organisations.json] == [str(world.university.id)]
    patents = tto.get("/patents")
    assert [p["id"] for p in patents.json] == [str(world.patents[world.university.id].id)]
    asked_for_other = tto.get(
        "/patents", query_string={"organisation_id": str(world.other_university.id)}
    )
    assert asked_for_other.status_code == 200
    assert asked_for_other.json == []

    licensee = api.as_(world.licensee.token).get("/organisations")
    assert [o["id"] for o in licensee.json] == [str(world.enterprise.id)]

    everything = {str(p.id) for p in world.patents.values()}
    for member in (world.admin, world.auditor):
        listed = api.as_(member.token).get("/patents", query_string={"page_size": 100})
        assert everything <= {p["id"] for p in listed.json}
        orgs = api.as_(member.token).get("/organisations", query_string={"page_size": 100})
        assert {str(world.university.id), str(world.other_university.id)} <= {
            o["id"] for o in orgs.json
        }
