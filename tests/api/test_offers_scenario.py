"""Issue 3's "done when", end to end through the API only.

A new operator registers two universities and three SMEs; the first university declares an
open licence for a utility model it co-owns with the second; eligibility refuses it until the
evaluation report and the co-owner's consent are there; it is published, found by a Chinese
substring without logging in, taken up by two SMEs, withdrawn by both owners; a third take-up
is refused and the two licences are unchanged.
"""

from __future__ import annotations

from typing import Any

from registry.core.clock import today
from tests.conftest import Api
from tests.factories import PASSWORD, Factory, make_application_number, make_uscc
from tests.factories.offers import fast_admin, fees_paid_through, offer_body, royalty


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.json
    return response.json


def _failed(report: dict[str, Any]) -> list[str]:
    return [c["code"] for c in report["checks"] if c["severity"] == "hard" and not c["passed"]]


def test_declare_publish_find_take_up_withdraw(api: Api, factory: Factory) -> None:
    admin_user = fast_admin(factory)
    admin = api.as_(
        _ok(api.post("/tokens", json={"email": admin_user.email, "password": PASSWORD}), 201)[
            "token"
        ]
    )

    def organisation(name: str, kind: str) -> str:
        body: dict[str, Any] = {"name": name, "kind": kind, "uscc": make_uscc()}
        if kind == "enterprise":
            body |= {"size": "small", "is_sme": True}
        return str(_ok(admin.post("/organisations", json=body), 201)["id"])

    def member(organisation_id: str, role: str, email: str) -> Api:
        password = "a long pass phrase for " + email
        body = {"email": email, "name": "测试用户", "role": role, "password": password}
        _ok(admin.post(f"/organisations/{organisation_id}/users", json=body), 201)
        token = _ok(api.post("/tokens", json={"email": email, "password": password}), 201)
        return api.as_(token["token"])

    uni_a = organisation("甲理工大学", "university")
    uni_b = organisation("乙农业大学", "university")
    tto_a = member(uni_a, "tto", "tto@uni-a.example.cn")
    tto_b = member(uni_b, "tto", "tto@uni-b.example.cn")
    smes = [
        member(organisation(f"{name}科技有限公司", "enterprise"), "licensee", f"sme{i}@ex.cn")
        for i, name in enumerate(("东方", "南山", "西湖"))
    ]

    # A co-owned utility model, registered without its evaluation report.
    patent = _ok(
        tto_a.post(
            "/patents",
            json={
                "application_number": make_application_number(2022, "2"),
                "patent_type": "utility_model",
                "title": "一种锂电池隔膜及其制备方法",
                "filing_date": "2022-04-18",
                "grant_date": "2023-01-10",
                "annual_fees_paid_through": fees_paid_through(),
            },
        ),
        201,
    )
    owners = {
        "owners": [
            {"organisation_id": uni_a, "title_share": "60", "income_share": "60"},
            {"organisation_id": uni_b, "title_share": "40", "income_share": "40"},
        ]
    }
    _ok(tto_a.put(f"/patents/{patent['id']}/owners", json=owners))

    offer = _ok(
        tto_a.post(
            "/offers",
            json=offer_body(
                patent["id"],
                royalty=royalty("lump_sum", amount="20000"),
                term_years=3,
                licensed_acts=["make", "use", "sell"],
            ),
        ),
        201,
    )
    url = f"/offers/{offer['id']}"

    # Refused until the evaluation report (PL Art. 50) and the co-owner's consent (PL Art. 14).
    assert _failed(_ok(tto_a.get(f"{url}/eligibility"))) == ["E2", "E7", "E13"]
    refusal = tto_a.post(f"{url}/publish", json={"attest_truthful": True})
    assert refusal.status_code == 409
    assert {e["field"] for e in refusal.json["errors"]} == {"eligibility.E2", "eligibility.E7"}

    etag = tto_a.get(f"/patents/{patent['id']}").headers["ETag"]
    report = {"number": "PJ2023-778", "date": "2023-06-01", "conclusion": "no_defect"}
    _ok(
        tto_a.patch(
            f"/patents/{patent['id']}", json={"evaluation_report": report},
            headers={"If-Match": etag},
        )
    )  # fmt: skip
    assert _failed(_ok(tto_a.get(f"{url}/eligibility"))) == ["E7", "E13"]
    seen_by_b = _ok(tto_b.get(url))  # the co-owner reads the draft it is asked to approve
    _ok(tto_b.post(f"{url}/consents", json={"terms_sha256": seen_by_b["terms_sha256"]}), 201)
    eligibility = _ok(tto_a.get(f"{url}/eligibility"))
    assert eligibility["eligible"] is True

    published = _ok(tto_a.post(f"{url}/publish", json={"attest_truthful": True}))
    assert published["status"] == "published"
    assert published["gazette_number"].startswith(f"{today().year}-")

    # Anyone finds it by a Chinese substring, without logging in.
    found = _ok(api.get("/offers", query_string={"q": "锂电池"}))
    assert [o["id"] for o in found] == [offer["id"]]
    assert found[0]["patent"]["owners"][1]["name"] == "乙农业大学"

    notice = {
        "intended_use": "生产动力电池隔膜",
        "contact_name": "赵经理",
        "contact_phone": "0571-88880000",
        "contact_email": "zhao@sme.example.cn",
    }
    licences = [_ok(sme.post(f"{url}/take-up", json=notice), 201) for sme in smes[:2]]
    assert len({lic["reference"] for lic in licences}) == 2
    assert all(lic["terms_sha256"] == published["terms_sha256"] for lic in licences)
    assert _ok(api.get(url))["licence_count"] == 2

    # Withdrawal needs both owners (unanimity by default).
    first = _ok(tto_a.post(f"{url}/withdraw", json={"reason": "拟调整许可条件后重新声明"}))
    assert first["withdrawn"] is False
    assert [o["name"] for o in first["awaiting"]] == ["乙农业大学"]
    second = _ok(tto_b.post(f"{url}/withdraw", json={"reason": "同意撤回"}))
    assert second["withdrawn"] is True
    withdrawn = second["offer"]

    third = smes[2].post(f"{url}/take-up", json=notice)
    assert third.status_code == 409, third.json
    assert third.json["code"] == "offer_not_published"

    for sme, taken in zip(smes, licences, strict=False):
        now = _ok(sme.get(f"/licences/{taken['id']}"))
        assert now == taken  # a withdrawal never touches licences granted before it
        assert now["offer_version"] < withdrawn["withdrawn_version"]
    gazette = _ok(api.get("/gazette"))
    assert [e["kind"] for e in gazette] == ["withdrawal", "publication"]
