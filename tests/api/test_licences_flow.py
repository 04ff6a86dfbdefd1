"""The issue's "done when", through the HTTP API only: a co-owned utility model is declared,
refused until its evaluation report and the second owner's consent are there, published,
found anonymously by a Chinese substring, taken up by two SMEs, withdrawn by both owners; a
third take-up is refused and the two licences stand unchanged (PL Arts. 14, 50, 51)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from registry.core.clock import today
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import licences as lf


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.json
    return response.json


def test_declare_publish_take_up_withdraw(api: Api, factory: Factory) -> None:
    university_a = factory.organisation("university", name="甲大学")
    university_b = factory.organisation("university", name="乙大学")
    tto_a = api.as_(factory.token(factory.user(university_a, "tto")))
    tto_b = api.as_(factory.token(factory.user(university_b, "tto")))
    smes = [api.as_(lf.enterprise_licensee(factory)[2]) for _ in range(3)]

    # A utility model co-owned half and half, fees paid, no evaluation report yet.
    patent = _ok(
        tto_a.post(
            "/patents",
            json=factory.patent_data(
                patent_type="utility_model",
                title="一种锂电池隔膜及其制备方法",
                annual_fees_paid_through=(today() + timedelta(days=200)).isoformat(),
            ),
        ),
        201,
    )
    owners = [
        {"organisation_id": str(org.id), "title_share": "50", "income_share": "50"}
        for org in (university_a, university_b)
    ]
    _ok(tto_a.put(f"/patents/{patent['id']}/owners", json={"owners": owners}))

    offer = _ok(
        tto_a.post(
            "/offers",
            json={
                "patent_id": patent["id"],
                **lf.terms({"kind": "running", "base": "net_sales", "rate": "3"}),
            },
        ),
        201,
    )
    path = f"/offers/{offer['id']}"

    # Refused until the evaluation report and university B's consent are there.
    report = _ok(tto_a.get(f"{path}/eligibility"))
    failed = {c["code"] for c in report["checks"] if not c["passed"] and c["severity"] == "hard"}
    assert {"E2", "E7"} <= failed
    assert report["eligible"] is False
    refused = tto_a.post(f"{path}/publish", json={"attest_truthful": True})
    assert refused.status_code == 409
    assert {"eligibility.E2", "eligibility.E7"} <= {e["field"] for e in refused.json["errors"]}

    etag = tto_a.get(f"/patents/{patent['id']}").headers["ETag"]
    _ok(
        tto_a.patch(
            f"/patents/{patent['id']}",
            json={
                "evaluation_report": {
                    "number": "PJ2026000123",
                    "date": (today() - timedelta(days=10)).isoformat(),
                    "conclusion": "no_defect",
                }
            },
            headers={"If-Match": etag},
        )
    )
    _ok(tto_b.post(f"{path}/consents", json={"terms_sha256": offer["terms_sha256"]}), 201)
    assert _ok(tto_a.get(f"{path}/eligibility"))["eligible"] is True
    published = _ok(tto_a.post(f"{path}/publish", json={"attest_truthful": True}))
    assert published["status"] == "published"
    assert published["gazette_number"].startswith(f"{today().year}-")

    # Found by a Chinese substring without signing in.
    found = _ok(api.get("/offers", query_string={"q": "锂电池"}))
    assert offer["id"] in {item["id"] for item in found}

    # Two SMEs take it up.
    licences = [_ok(sme.post(f"{path}/take-up", json=lf.notice()), 201) for sme in smes[:2]]
    assert len({licence["reference"] for licence in licences}) == 2
    assert all(licence["status"] == "active" for licence in licences)

    # Withdrawn only when both owners have asked.
    first = _ok(tto_a.post(f"{path}/withdraw", json={"reason": "甲方调整许可策略"}))
    assert first["withdrawn"] is False
    assert [o["organisation_id"] for o in first["awaiting"]] == [str(university_b.id)]
    second = _ok(tto_b.post(f"{path}/withdraw", json={"reason": "乙方同意撤回"}))
    assert second["withdrawn"] is True
    withdrawn = second["offer"]
    assert withdrawn["status"] == "withdrawn"
    assert withdrawn["licence_count"] == 2

    third = smes[2].post(f"{path}/take-up", json=lf.notice())
    assert third.status_code == 409
    assert third.json["code"] == "offer_not_published"

    # The two licences are unchanged and were taken before the withdrawal.
    for sme, licence in zip(smes[:2], licences, strict=True):
        assert _ok(sme.get(f"/licences/{licence['id']}")) == licence
        assert licence["offer_version"] < withdrawn["withdrawn_version"]
    listed = _ok(tto_a.get("/licences", query_string={"offer_id": offer["id"]}))
    assert {item["id"] for item in listed} == {licence["id"] for licence in licences}
