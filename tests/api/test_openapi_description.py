"""The API description says what the server does: one regression test, through the Flask
client, for each disagreement schemathesis found (tests/api/test_openapi_contract.py).

Responses are checked against the description the app serves with schemathesis'
``validate_response`` (status declared, body in the declared shape).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient

from registry.audit.schemas import MAX_SEQ
from registry.audit.services import count_events
from tests.conftest import Api, TransactionalDatabase
from tests.factories import Factory, make_uscc
from tests.factories.world import World, build_world

SPEC = "/api/v1/openapi.json"


@pytest.fixture(scope="module")
def described(app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi(SPEC, app)


@pytest.fixture(scope="module")
def description(app: Flask) -> dict[str, Any]:
    spec = app.test_client().get(SPEC).get_json()
    assert isinstance(spec, dict)
    return spec


@pytest.fixture
def world(factory: Factory) -> World:
    return build_world(factory)


def _events(db: TransactionalDatabase) -> int:
    with db.session(write=False) as session:
        return count_events(session)


def _parameters(description: dict[str, Any], path: str, method: str) -> list[str]:
    item = description["paths"][path]
    declared = item.get("parameters", []) + item[method].get("parameters", [])
    return [p["name"] for p in declared]


def test_errors_are_described_as_they_are_sent(
    described: Any, description: dict[str, Any], api: Api, world: World
) -> None:
    """The description declared flask-smorest's error schema (an integer ``code``, an ``errors``
    object): every 4xx contradicted it. It now declares the registry's envelope."""
    error = description["components"]["schemas"]["Error"]
    assert {name: p["type"] for name, p in error["properties"].items()} == {
        "code": "string",
        "status": "integer",
        "message": "string",
        "errors": "array",
    }
    patent = described["/api/v1/patents/{patent_id}"]["GET"]
    unknown = api.as_(world.tto.token).get(f"/patents/{uuid.uuid4()}")
    anonymous = api.get(f"/patents/{uuid.uuid4()}")
    assert (unknown.status_code, anonymous.status_code) == (404, 401)
    patent.validate_response(unknown)
    patent.validate_response(anonymous)
    invalid = api.as_(world.tto.token).post("/patents", json={"title": 42})
    assert invalid.status_code == 422
    assert invalid.json["errors"]
    described["/api/v1/patents"]["POST"].validate_response(invalid)


def test_the_pagination_header_is_described_as_json(
    description: dict[str, Any], api: Api, world: World
) -> None:
    """X-Pagination carries JSON; described with a ``schema`` it read as the "simple" style
    (``total,1,page,1``), which the real header never is."""
    header = description["components"]["headers"]["PAGINATION"]
    assert "schema" not in header
    assert header["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaginationMetadata"
    }
    listed = api.as_(world.tto.token).get("/patents")
    assert listed.status_code == 200
    metadata = json.loads(listed.headers["X-Pagination"])
    declared = description["components"]["schemas"]["PaginationMetadata"]["properties"]
    assert metadata["total"] == 1
    assert set(metadata) <= set(declared)


def test_an_audit_cursor_past_any_sequence_number_is_422_not_500(
    api: Api, world: World, db: TransactionalDatabase
) -> None:
    """``after_seq`` beyond a 64-bit integer could not be bound as a query parameter: a 500."""
    admin = api.as_(world.admin.token)
    for value in (MAX_SEQ + 1, 849266368986925842351259648):
        response = admin.get("/audit/events", query_string={"after_seq": value})
        assert response.status_code == 422, response.json
        assert [e["field"] for e in response.json["errors"]] == ["after_seq"]
    last = admin.get("/audit/events", query_string={"after_seq": MAX_SEQ})
    assert (last.status_code, last.json) == (200, [])


@pytest.mark.parametrize(
    "path", ["/api/v1/payments", "/api/v1/settlements", "/api/v1/licences/{licence_id}/reports"]
)
def test_idempotency_key_is_declared_on_the_write_not_on_the_list_beside_it(
    description: dict[str, Any], path: str
) -> None:
    """Declared on the path, the header was offered to its GET too, which ignores it."""
    assert "Idempotency-Key" in _parameters(description, path, "post")
    assert "Idempotency-Key" not in _parameters(description, path, "get")
    post = description["paths"][path]["post"]
    (header,) = (p for p in post["parameters"] if p["name"] == "Idempotency-Key")
    pattern = re.compile(header["schema"]["pattern"])
    assert pattern.search(str(uuid.uuid4()))
    assert pattern.search(f'"{uuid.uuid4()}"')
    assert not pattern.search("too short")


def test_a_key_the_description_allows_but_the_server_refuses_is_the_documented_400(
    description: dict[str, Any], api: Api, world: World
) -> None:
    """A key of too few different characters fits the pattern; the description says it gets
    400, and it does."""
    post = description["paths"]["/api/v1/payments"]["post"]
    (header,) = (p for p in post["parameters"] if p["name"] == "Idempotency-Key")
    assert "answers 400" in header["description"]
    guessable = "0" * 16
    assert re.search(header["schema"]["pattern"], guessable)
    response = api.as_(world.licensee.token).post(
        "/payments", json={}, headers={"Idempotency-Key": guessable}
    )
    assert response.status_code == 400
    assert response.json["code"] == "invalid_idempotency_key"


@pytest.mark.parametrize("value", [0, 1, "true", "yes"])
def test_booleans_in_bodies_are_json_true_or_false(
    api: Api, world: World, db: TransactionalDatabase, value: Any
) -> None:
    """The description says ``boolean``; marshmallow's Boolean also took 0, 1, "yes": a pledgee's
    consent or an SME declaration sent as 1 was accepted. Refused now, and nothing changes."""
    admin = api.as_(world.admin.token)
    tto = api.as_(world.tto.token)
    patent_id = world.patents[world.university.id].id
    before = _events(db)
    calls = [
        admin.post(
            "/organisations",
            json={"name": "某某科技", "kind": "enterprise", "uscc": make_uscc(), "is_sme": value},
        ),
        tto.post(
            f"/patents/{patent_id}/encumbrances",
            json={
                "kind": "pledge",
                "start_date": "2025-01-01",
                "reference": "质押登记-1",
                "pledgee_consent": value,
            },
        ),
        admin.put(
            f"/users/{world.auditor.user.id}/audit-scope",
            json={"all_organisations": value, "organisation_ids": []},
        ),
    ]
    for response, field in zip(
        calls, ("is_sme", "pledgee_consent", "all_organisations"), strict=True
    ):
        assert response.status_code == 422, response.json
        assert field in {e["field"] for e in response.json["errors"]}
    assert _events(db) == before


def test_an_encumbrance_in_force_is_described_with_its_nulls(
    described: Any, api: Api, world: World
) -> None:
    """``released_dt`` and ``release_reason`` are null until a release: the description said
    plain strings."""
    patent_id = world.patents[world.university.id].id
    response = api.as_(world.tto.token).get(f"/patents/{patent_id}")
    assert response.status_code == 200
    (pledge,) = response.json["encumbrances"]
    assert (pledge["released_dt"], pledge["release_reason"]) == (None, None)
    described["/api/v1/patents/{patent_id}"]["GET"].validate_response(response)


@pytest.mark.parametrize("path", ["/api/v1/patents/{patent_id}", "/api/v1/offers/{offer_id}"])
def test_edits_declare_the_if_match_they_require(description: dict[str, Any], path: str) -> None:
    patch = description["paths"][path]["patch"]
    (if_match,) = (p for p in patch["parameters"] if p["name"] == "If-Match")
    assert if_match["in"] == "header"
    assert if_match["required"] is True
    assert if_match["schema"]["minLength"] == 1
    assert patch["requestBody"]["required"] is False


def test_an_empty_if_match_is_no_precondition(api: Api, world: World) -> None:
    patent_id = world.patents[world.university.id].id
    response = api.as_(world.tto.token).patch(
        f"/patents/{patent_id}", json={"title": "新的标题"}, headers={"If-Match": ""}
    )
    assert response.status_code == 428
    assert response.json["code"] == "precondition_required"


def test_an_edit_without_a_body_changes_nothing(
    api: Api, world: World, db: TransactionalDatabase
) -> None:
    """The description called the body required; the server reads a missing one as no change
    (and so answers a stale ETag with 412). The description now says optional."""
    tto = api.as_(world.tto.token)
    patent_id = world.patents[world.university.id].id
    read = tto.get(f"/patents/{patent_id}")
    before = _events(db)
    response = tto.patch(f"/patents/{patent_id}", headers={"If-Match": read.headers["ETag"]})
    assert response.status_code == 200, response.json
    assert response.json == read.json
    assert response.headers["ETag"] == read.headers["ETag"]
    assert _events(db) == before


def _handler(app: Flask, path: str, method: str) -> Any:
    filled = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
    endpoint, _ = app.url_map.bind("localhost").match(filled, method=method.upper())
    view = app.view_functions[endpoint]
    return getattr(view.view_class, method)


def test_the_description_says_which_operations_need_a_token(
    app: Flask, description: dict[str, Any], client: FlaskClient
) -> None:
    """Every operation needs the bearer token (the default requirement) unless its handler is
    ``@public``, which the description marks as token-optional; anonymous calls agree."""
    assert description["security"] == [{"bearer": []}]
    optional = [{}, {"bearer": []}]
    public = 0
    for path, item in description["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            is_public = getattr(_handler(app, path, method), "_registry_public", False)
            assert operation.get("security") == (optional if is_public else None), (method, path)
            public += is_public
            if not is_public:
                filled = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
                anonymous = client.open(filled, method=method.upper())
                assert anonymous.status_code == 401, (method, path, anonymous.json)
    assert public >= 10
