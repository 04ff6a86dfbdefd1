from tests.conftest import Api
from tests.factories import PASSWORD, Factory


def test_token_org_patent_flow(api: Api, factory: Factory) -> None:
    admin = factory.admin()
    response = api.post("/tokens", json={"email": admin.email, "password": PASSWORD})
    assert response.status_code == 201, response.json
    admin_api = api.as_(response.json["token"])
    org = admin_api.post(
        "/organisations",
        json={
            "name": "清华大学",
            "kind": "university",
            "uscc": "12100000400000624D",
        },
    )
    assert org.status_code in (201, 422), org.json
    print(org.json)
