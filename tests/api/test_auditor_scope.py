"""An auditor reads the organisations it was granted, and nothing else (issue 6 §4).

Two separate worlds: university A licensed its patent to SME A, university B to SME B; each
licence has a statement and a payment. An audit body's auditor granted university A sees A's
patent, licence, contract, statement and payment, and everything of B answers 404 (no
existence oracle) or is missing from lists. Scope changes are the admin's, audited, and take
effect on the auditor's next request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from registry.accounts.models import Organisation
from registry.clearing.models import Payment, Statement
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import clearing as cf
from tests.factories.offers import events


@dataclass
class Side:
    licensed: cf.Licensed
    statement: Statement
    payment: Payment


@dataclass
class Scene:
    a: Side
    b: Side
    audit_body: Organisation
    admin: Api
    auditor: Api
    auditor_id: uuid.UUID


def _side(factory: Factory) -> Side:
    licensed = cf.licensed_patent(factory)
    statement = cf.statement(factory, licensed.licence, 100_000)
    payment = cf.pay(factory, licensed.admin, statement, 40_000)
    return Side(licensed, statement, payment)


@pytest.fixture
def scene(factory: Factory, api: Api) -> Scene:
    a, b = _side(factory), _side(factory)
    audit_body = factory.organisation("audit_body", name="戊会计师事务所")
    auditor = factory.user(audit_body, "auditor", audits_all_organisations=False)
    admin = api.as_(factory.token(a.licensed.admin))
    scene = Scene(a, b, audit_body, admin, api.as_(factory.token(auditor)), auditor.id)
    grant(scene, a.licensed.owner.id)
    return scene


def grant(scene: Scene, *organisation_ids: uuid.UUID, everything: bool = False) -> None:
    response = scene.admin.put(
        f"/users/{scene.auditor_id}/audit-scope",
        json={
            "all_organisations": everything,
            "organisation_ids": [str(org) for org in organisation_ids],
        },
    )
    assert response.status_code == 200, response.get_json()


def _ids(response: object) -> set[str]:
    assert response.status_code == 200, response.get_json()  # type: ignore[attr-defined]
    return {item["id"] for item in response.get_json()}  # type: ignore[attr-defined]


def test_a_granted_organisation_is_readable_and_no_other(scene: Scene) -> None:
    auditor, a, b = scene.auditor, scene.a, scene.b
    # Single objects: A's answer, B's look missing.
    for side, expected in ((a, 200), (b, 404)):
        licensed = side.licensed
        assert auditor.get(f"/patents/{licensed.patent.id}").status_code == expected
        assert auditor.get(f"/licences/{licensed.licence.id}").status_code == expected
        assert auditor.get(f"/statements/{side.statement.id}").status_code == expected
        assert auditor.get(f"/payments/{side.payment.id}").status_code == expected
        assert auditor.get(f"/organisations/{licensed.owner.id}").status_code == expected
        account = f"/licensees/{licensed.licensee.id}/account"
        # SME A is not granted, but its licence on university A's patent is in scope.
        assert auditor.get(account).status_code == 404
    # Lists show A's only.
    assert _ids(auditor.get("/licences")) == {str(a.licensed.licence.id)}
    assert _ids(auditor.get("/patents")) == {str(a.licensed.patent.id)}
    assert _ids(auditor.get("/statements")) == {str(a.statement.id)}
    assert _ids(auditor.get("/payments")) == {str(a.payment.id)}
    assert _ids(auditor.get("/organisations")) == {
        str(scene.audit_body.id),
        str(a.licensed.owner.id),
    }
    # What spans every organisation is for auditors of every organisation.
    assert auditor.get("/ledger/trial-balance").status_code == 403
    assert auditor.get("/bank-lines").status_code == 403


def test_the_licensee_side_brings_its_licences_and_account(scene: Scene) -> None:
    grant(scene, scene.b.licensed.licensee.id)
    auditor, b = scene.auditor, scene.b
    assert _ids(auditor.get("/licences")) == {str(b.licensed.licence.id)}
    assert auditor.get(f"/licences/{b.licensed.licence.id}").status_code == 200
    assert auditor.get(f"/licences/{scene.a.licensed.licence.id}").status_code == 404
    assert auditor.get(f"/licensees/{b.licensed.licensee.id}/account").status_code == 200
    # The licensor's patent is not the licensee's: not in scope.
    assert auditor.get(f"/patents/{b.licensed.patent.id}").status_code == 404


def test_all_organisations_and_back(scene: Scene) -> None:
    grant(scene, everything=True)
    auditor = scene.auditor
    licences = _ids(auditor.get("/licences"))
    assert {str(scene.a.licensed.licence.id), str(scene.b.licensed.licence.id)} <= licences
    assert auditor.get("/ledger/trial-balance").status_code == 200
    grant(scene)  # nothing granted: only the audit body's own records, which are none
    assert _ids(auditor.get("/licences")) == set()
    assert auditor.get(f"/licences/{scene.a.licensed.licence.id}").status_code == 404


def test_scope_changes_are_the_admins_and_audited(scene: Scene, factory: Factory, api: Api) -> None:
    path = f"/users/{scene.auditor_id}/audit-scope"
    body = {"all_organisations": True, "organisation_ids": []}
    assert scene.auditor.put(path, json=body).status_code == 403
    tto = api.as_(factory.token(scene.a.licensed.tto))
    assert tto.put(path, json=body).status_code == 403
    assert tto.get(path).status_code == 404
    mine = scene.auditor.get(path).get_json()
    assert mine["organisation_ids"] == [str(scene.a.licensed.owner.id)]
    assert mine["all_organisations"] is False
    assert mine["own_organisation_id"] == str(scene.audit_body.id)
    changed = events(factory.session, "user.audit_scope_changed", scene.auditor_id)
    assert len(changed) == 1
    # An unknown organisation is refused, and nothing changes.
    unknown = str(uuid.uuid4())
    response = scene.admin.put(
        path, json={"all_organisations": False, "organisation_ids": [unknown]}
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "organisation_ids"
    assert scene.auditor.get(path).get_json() == mine
    # Only auditors have a scope.
    tto_path = f"/users/{scene.a.licensed.tto.id}/audit-scope"
    assert scene.admin.put(tto_path, json=body).status_code == 409


def test_each_contract_read_by_an_auditor_is_an_audit_event(scene: Scene, factory: Factory) -> None:
    licence = scene.a.licensed.licence
    before = len(events(factory.session, "contract.downloaded", licence.id))
    response = scene.auditor.get(f"/licences/{licence.id}/contract.pdf")
    assert response.status_code == 200
    assert response.data.startswith(b"%PDF-")
    downloaded = events(factory.session, "contract.downloaded", licence.id)
    assert len(downloaded) == before + 1
    assert downloaded[-1].actor_id == scene.auditor_id
    assert (
        scene.auditor.get(f"/licences/{scene.b.licensed.licence.id}/contract.pdf").status_code
        == 404
    )
