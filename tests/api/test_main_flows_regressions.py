"""Regressions found while modelling the main flows (tests/api/test_main_flows_stateful.py).

A withdrawal request that did not suffice when it was made (the co-owners' decision rule wanted
more owners) must be completable once it does suffice — after the owners or the decision rule
changed — by the owner that asked. Before the fix, asking again answered 409 "already asked"
and the offer could never be withdrawn: the other organisation was no longer an owner (403),
and admins do not withdraw (PL Art. 14, 50(2); law.md A2).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.factories import Factory
from tests.factories import licences as lf
from tests.factories.offers import fast_admin


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.json
    return response.json


def _owners(*shares: tuple[str, int], rule: str = "unanimous") -> dict[str, Any]:
    return {
        "owners": [
            {"organisation_id": org, "title_share": str(share), "income_share": str(share)}
            for org, share in shares
        ],
        "decision_rules": {"open_licence": rule},
    }


@pytest.mark.parametrize("change", ["sole_owner", "any_owner_rule"])
def test_a_withdrawal_request_that_now_suffices_can_be_completed(
    api: Api, factory: Factory, change: str
) -> None:
    fast_admin(factory)
    uni_a, uni_b = factory.organisation("university"), factory.organisation("university")
    tto_a, tto_b = factory.user(uni_a, "tto"), factory.user(uni_b, "tto")
    a, b = api.as_(factory.token(tto_a)), api.as_(factory.token(tto_b))
    _, _, sme_token = lf.enterprise_licensee(factory)
    sme = api.as_(sme_token)
    offer = lf.published_offer(factory, tto_a)
    patent = f"/patents/{offer.patent_id}"
    url = f"/offers/{offer.id}"
    # Co-owned, unanimity for the open licence: A's request alone does not withdraw.
    _ok(a.put(f"{patent}/owners", json=_owners((str(uni_a.id), 60), (str(uni_b.id), 40))))
    first = _ok(a.post(f"{url}/withdraw", json={"reason": "拟调整许可条件"}))
    assert first["withdrawn"] is False
    assert [o["organisation_id"] for o in first["awaiting"]] == [str(uni_b.id)]
    _ok(sme.post(f"{url}/take-up", json=lf.notice()), 201)  # still published: taken up
    if change == "sole_owner":  # B's share goes back to A: A alone decides now
        _ok(a.put(f"{patent}/owners", json=_owners((str(uni_a.id), 100))))
        refused = b.post(f"{url}/withdraw", json={"reason": "同意撤回"})
        assert refused.status_code == 403, refused.json  # B is no longer an owner
    else:  # the co-owners agree that any owner decides
        rule = _owners((str(uni_a.id), 60), (str(uni_b.id), 40), rule="any_owner")
        _ok(a.put(f"{patent}/owners", json=rule))

    done = _ok(a.post(f"{url}/withdraw", json={"reason": "拟调整许可条件"}))

    assert done["withdrawn"] is True
    assert done["awaiting"] == []
    assert done["offer"]["status"] == "withdrawn"
    assert done["offer"]["licence_count"] == 1  # the licence taken stands (PL Art. 50(2))
    late = sme.post(f"{url}/take-up", json=lf.notice())
    assert late.status_code == 409
    gazette = _ok(api.get("/gazette"))
    assert [e["kind"] for e in gazette if e["offer_id"] == str(offer.id)] == [
        "withdrawal",
        "publication",
    ]
    # Asking once more is the duplicate it always was: the offer is withdrawn already.
    again = a.post(f"{url}/withdraw", json={"reason": "拟调整许可条件"})
    assert again.status_code == 409
    assert again.json["code"] == "invalid_transition"


def test_asking_again_before_it_suffices_is_still_a_duplicate(api: Api, factory: Factory) -> None:
    admin = api.as_(factory.token(fast_admin(factory)))
    uni_a, uni_b = factory.organisation("university"), factory.organisation("university")
    tto_a = factory.user(uni_a, "tto")
    a = api.as_(factory.token(tto_a))
    offer = lf.published_offer(factory, tto_a)
    _ok(
        a.put(
            f"/patents/{offer.patent_id}/owners",
            json=_owners((str(uni_a.id), 60), (str(uni_b.id), 40)),
        )
    )
    _ok(a.post(f"/offers/{offer.id}/withdraw", json={"reason": "拟调整许可条件"}))
    events = _ok(admin.get("/audit/verify"))["size"]
    again = a.post(f"/offers/{offer.id}/withdraw", json={"reason": "拟调整许可条件"})
    assert again.status_code == 409
    assert again.json["code"] == "duplicate"
    assert _ok(admin.get("/audit/verify"))["size"] == events
    assert _ok(api.get(f"/offers/{offer.id}"))["status"] == "published"
