"""The audit log's Merkle tree over HTTP: tree heads, proofs and signed checkpoints.

Roots are recomputed here from the events ``GET /audit/events`` publishes — each leaf hash from
the event's own fields (tests/api/test_audit.py's independent ``leaf_of``), the tree by a
literal transcription of RFC 6962 §2.1 — so the service cannot agree with itself by mistake.
Proofs are checked with the RFC 9162 verifiers, themselves tested against the CT vectors in
tests/unit/test_merkle.py; checkpoint notes with the public key the service publishes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from registry.audit import checkpoints as checkpoint_service
from registry.audit import merkle, note, verify
from registry.audit import services as audit_services
from tests.api.test_audit import leaf_of
from tests.conftest import Api, TransactionalDatabase
from tests.factories import Factory
from tests.factories.world import World, build_world

EXTRA_EVENTS = 37  # with the world's own, enough for trees of several shapes


def rfc_mth(leaves: list[bytes]) -> bytes:
    """MTH over leaf hashes, RFC 6962 §2.1 word for word."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + rfc_mth(leaves[:k]) + rfc_mth(leaves[k:])).digest()


@pytest.fixture
def world(factory: Factory, session: Session) -> World:
    built = build_world(factory)
    for i in range(EXTRA_EVENTS):
        audit_services.record(
            session,
            actor=None,
            action="test.tick",
            subject_type="test",
            subject_id=str(i),
            payload={"i": i, "名": "测试"},
        )
    session.flush()
    return built


@pytest.fixture
def auditor(api: Api, world: World) -> Api:
    return api.as_(world.auditor.token)


@pytest.fixture
def admin(api: Api, world: World) -> Api:
    return api.as_(world.admin.token)


def events(reader: Api) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        response = reader.get("/audit/events", query_string={"page": page, "page_size": 100})
        assert response.status_code == 200, response.json
        out += response.json
        if "next_page" not in json.loads(response.headers["X-Pagination"]):
            return out
        page += 1


def published_leaves(reader: Api) -> list[bytes]:
    """Leaf hashes recomputed from each published event's content (not the stored hash)."""
    found = events(reader)
    assert [e["seq"] for e in found] == list(range(1, len(found) + 1))
    for event in found:
        assert leaf_of(event) == event["leaf_hash"]
    return [bytes.fromhex(leaf_of(event)) for event in found]


def assert_field_error(response: Any, field: str) -> None:
    assert response.status_code == 422, response.json
    assert response.json["code"] == "validation_error"
    assert [e["field"] for e in response.json["errors"]] == [field], response.json


# Tree heads -----------------------------------------------------------------------------------


def test_tree_heads_are_the_rfc_roots_of_the_published_events(auditor: Api) -> None:
    leaves = published_leaves(auditor)
    n = len(leaves)
    assert n > 40
    whole = auditor.get("/audit/tree-head")
    assert whole.status_code == 200
    assert whole.json == {"tree_size": n, "root_hash": rfc_mth(leaves).hex()}
    for size in (0, 1, 2, 3, 7, 8, 9, 16, 31, 32, 33, n - 1):
        response = auditor.get("/audit/tree-head", query_string={"size": size})
        assert response.json == {"tree_size": size, "root_hash": rfc_mth(leaves[:size]).hex()}
    assert auditor.get("/audit/tree-head", query_string={"size": 0}).json["root_hash"] == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize("size", ["-1", "abc", "1.5", "HUGE"])
def test_a_tree_head_past_the_log_or_malformed_names_size(auditor: Api, size: str) -> None:
    if size == "HUGE":
        size = str(published_leaves(auditor).__len__() + 1)
    assert_field_error(auditor.get("/audit/tree-head", query_string={"size": size}), "size")


# Inclusion proofs -----------------------------------------------------------------------------


def test_every_event_has_an_inclusion_proof_by_index_and_by_hash(auditor: Api) -> None:
    leaves = published_leaves(auditor)
    n = len(leaves)
    for size in (n, 33, 32, 5, 1):
        root = rfc_mth(leaves[:size])
        for index in range(size):
            response = auditor.get(
                "/audit/proof/inclusion", query_string={"leaf": index, "size": size}
            )
            assert response.status_code == 200, response.json
            body = response.json
            assert body["leaf_index"] == index
            assert body["tree_size"] == size
            assert body["leaf_hash"] == leaves[index].hex()
            assert body["root_hash"] == root.hex()
            proof = [bytes.fromhex(p) for p in body["proof"]]
            assert len(proof) <= merkle.proof_length_bound(size)
            assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
            assert all(p == p.lower() and len(p) == 64 for p in body["proof"])
    by_hash = auditor.get("/audit/proof/inclusion", query_string={"leaf": leaves[20].hex()})
    assert by_hash.status_code == 200
    assert (by_hash.json["leaf_index"], by_hash.json["tree_size"]) == (20, n)
    upper = auditor.get("/audit/proof/inclusion", query_string={"leaf": leaves[20].hex().upper()})
    assert upper.json == by_hash.json


def test_an_inclusion_proof_outside_the_tree_names_the_parameter(auditor: Api) -> None:
    n = len(published_leaves(auditor))
    cases = [
        ({"leaf": n}, "leaf"),  # past the log
        ({"leaf": 5, "size": 5}, "leaf"),  # leaf 5 is the sixth: not in a tree of five
        ({"leaf": -1}, "leaf"),
        ({"leaf": "x"}, "leaf"),
        ({"leaf": "9" * 5000}, "leaf"),
        ({}, "leaf"),
        ({"leaf": 0, "size": 0}, "size"),
        ({"leaf": 0, "size": n + 1}, "size"),
        ({"leaf": 0, "size": -3}, "size"),
    ]
    for query, field in cases:
        assert_field_error(auditor.get("/audit/proof/inclusion", query_string=query), field)
    unknown = auditor.get("/audit/proof/inclusion", query_string={"leaf": "ab" * 32})
    assert unknown.status_code == 404
    assert unknown.json["code"] == "not_found"


# Consistency proofs ---------------------------------------------------------------------------


def test_consistency_proofs_between_any_two_sizes_verify(auditor: Api) -> None:
    leaves = published_leaves(auditor)
    n = len(leaves)
    sizes = [0, 1, 2, 3, 4, 7, 8, 13, 16, 17, 32, n - 1, n]
    for second in sizes:
        for first in (s for s in sizes if s <= second):
            response = auditor.get(
                "/audit/proof/consistency", query_string={"first": first, "second": second}
            )
            assert response.status_code == 200, response.json
            body = response.json
            roots = rfc_mth(leaves[:first]), rfc_mth(leaves[:second])
            assert (body["first"], body["second"]) == (first, second)
            assert (body["first_root"], body["second_root"]) == (roots[0].hex(), roots[1].hex())
            proof = [bytes.fromhex(p) for p in body["proof"]]
            assert merkle.verify_consistency(first, second, proof, *roots), (first, second)
            # And not against a different history.
            other = rfc_mth([*leaves[: first - 1], hashlib.sha256(b"forged").digest()])
            if first:
                assert not merkle.verify_consistency(first, second, proof, other, roots[1])
    default = auditor.get("/audit/proof/consistency", query_string={"first": 10})
    assert default.json["second"] == n


def test_a_consistency_proof_outside_the_log_names_the_parameter(auditor: Api) -> None:
    n = len(published_leaves(auditor))
    cases = [
        ({"first": 5, "second": 4}, "first"),  # time travel
        ({"first": n + 1}, "first"),
        ({"first": -1}, "first"),
        ({"second": 3}, "first"),
        ({"first": 1, "second": n + 1}, "second"),
        ({"first": 1, "second": "two"}, "second"),
    ]
    for query, field in cases:
        assert_field_error(auditor.get("/audit/proof/consistency", query_string=query), field)


def test_the_tree_is_read_like_the_events(api: Api, world: World) -> None:
    paths = (
        "/audit/tree-head",
        "/audit/proof/inclusion?leaf=0",
        "/audit/proof/consistency?first=1",
    )
    for path in paths:
        assert api.get(path).status_code == 401
        assert api.as_(world.tto.token).get(path).status_code == 403
        assert api.as_(world.licensee.token).get(path).status_code == 403
        assert api.as_(world.admin.token).get(path).status_code == 200
        assert api.as_(world.auditor.token).get(path).status_code == 200


def test_a_log_with_a_missing_event_proves_nothing(auditor: Api, db: TransactionalDatabase) -> None:
    connection = db.connection
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
    else:
        connection.exec_driver_sql(
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"
        )
    connection.exec_driver_sql("DELETE FROM audit_events WHERE seq = 3")
    response = auditor.get("/audit/tree-head")
    assert response.status_code == 409
    assert "broken" in response.json["message"]
    assert auditor.get("/audit/tree-head", query_string={"size": 2}).status_code == 200


# Checkpoints ----------------------------------------------------------------------------------


def verifier_of(api: Api) -> note.Verifier:
    response = api.get("/audit/checkpoint-key")
    assert response.status_code == 200
    body = response.json
    verifier = note.parse_vkey(body["vkey"])
    assert verifier.name == body["name"]
    assert base64.b64decode(body["public_key"]) == verifier.public_key
    assert body["key_hash"] == verifier.key_hash.hex()
    assert body["algorithm"] == "ed25519"
    assert body["pem"].startswith("-----BEGIN PUBLIC KEY-----")
    return verifier


def test_a_checkpoint_signs_the_log_and_is_itself_an_event(
    api: Api, admin: Api, auditor: Api, world: World
) -> None:
    assert api.get("/audit/checkpoints/latest").status_code == 404
    leaves = published_leaves(auditor)
    n = len(leaves)

    issued = admin.post("/audit/checkpoints")
    assert issued.status_code == 201, issued.json
    body = issued.json
    assert (body["size"], body["root_hash"]) == (n, rfc_mth(leaves).hex())

    # Anyone can fetch the note and check it with the published key.
    latest = api.get("/audit/checkpoints/latest")
    assert latest.status_code == 200
    assert latest.mimetype == "text/plain"
    assert latest.get_data(as_text=True) == body["note"]
    checkpoint = note.open_checkpoint(body["note"], verifier_of(api))
    assert (checkpoint.size, checkpoint.root_hash) == (n, rfc_mth(leaves))
    text, signature_lines = note.split(body["note"])
    assert text == f"{checkpoint.origin}\n{n}\n{base64.b64encode(rfc_mth(leaves)).decode()}\n"
    assert body["note"].split("\n")[4].startswith(f"\u2014 {checkpoint.origin} ")
    assert body["signature"] == signature_lines[0].encoded
    assert body["origin"] == checkpoint.origin

    # It is event n + 1, covered by the next checkpoint and not by its own.
    after = events(auditor)
    assert len(after) == n + 1
    own = after[-1]
    assert (own["action"], own["subject_type"]) == ("checkpoint.issued", "audit_checkpoint")
    assert own["payload"] == {"tree_size": n, "root_hash": body["root_hash"]}
    assert own["actor_id"] == str(world.admin.user.id)


def test_an_idle_log_gets_no_new_checkpoint(
    admin: Api, auditor: Api, api: Api, world: World, session: Session
) -> None:
    first = admin.post("/audit/checkpoints")
    assert first.status_code == 201
    count = len(events(auditor))
    again = admin.post("/audit/checkpoints")
    assert again.status_code == 200
    assert again.json == first.json
    assert len(events(auditor)) == count  # no event either

    audit_services.record(
        session, actor=None, action="test.tick", subject_type="test", subject_id="x"
    )
    session.flush()
    second = admin.post("/audit/checkpoints")
    assert second.status_code == 201
    assert second.json["size"] == first.json["size"] + 2  # its predecessor's event and ours

    history = api.get("/audit/checkpoints")
    assert history.status_code == 200
    assert [c["size"] for c in history.json] == [first.json["size"], second.json["size"]]
    assert json.loads(history.headers["X-Pagination"])["total"] == 2

    # The newer checkpoint proves consistent with the one kept, by the log's own proof.
    verifier = verifier_of(api)
    kept = note.open_checkpoint(first.json["note"], verifier)
    newer = note.open_checkpoint(
        api.get("/audit/checkpoints/latest").get_data(as_text=True), verifier
    )
    proof = auditor.get(
        "/audit/proof/consistency", query_string={"first": kept.size, "second": newer.size}
    ).json
    assert merkle.verify_consistency(
        kept.size,
        newer.size,
        [bytes.fromhex(p) for p in proof["proof"]],
        kept.root_hash,
        newer.root_hash,
    )


def test_the_latest_checkpoint_as_json_when_asked(admin: Api, api: Api) -> None:
    issued = admin.post("/audit/checkpoints").json
    response = api.get("/audit/checkpoints/latest", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert {k: response.json[k] for k in ("origin", "size", "root_hash", "signature", "note")} == {
        k: issued[k] for k in ("origin", "size", "root_hash", "signature", "note")
    }
    assert "Accept" in response.headers["Vary"]
    browser = api.get("/audit/checkpoints/latest", headers={"Accept": "text/html,*/*;q=0.8"})
    assert browser.mimetype == "text/plain"


def test_only_admins_issue_checkpoints(api: Api, world: World) -> None:
    assert api.post("/audit/checkpoints").status_code == 401
    for member in (world.auditor, world.tto, world.licensee):
        assert api.as_(member.token).post("/audit/checkpoints").status_code == 403
    assert api.as_(world.admin.token).post("/audit/checkpoints").status_code == 201


def test_the_checkpoint_note_fails_with_another_key_or_an_edit(admin: Api, api: Api) -> None:
    signed = admin.post("/audit/checkpoints").json["note"]
    verifier = verifier_of(api)
    note.open_checkpoint(signed, verifier)

    stranger = Ed25519PrivateKey.generate()
    impostor = note.Verifier(verifier.name, note.raw_public_key(stranger.public_key()))
    with pytest.raises(note.NoteError, match="another key"):
        note.open_checkpoint(signed, impostor)
    renamed = note.Verifier("someone-else", verifier.public_key)
    with pytest.raises(note.NoteError, match="no signature by someone-else"):
        note.open_checkpoint(signed, renamed)

    origin, size, root, *rest = signed.split("\n")
    bigger = "\n".join([origin, str(int(size) + 1), root, *rest])
    other_root = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    rerooted = "\n".join([origin, size, other_root, *rest])
    for edited in (bigger, rerooted):
        with pytest.raises(note.NoteError, match="does not verify"):
            note.open_checkpoint(edited, verifier)
    # A note re-signed by another key under the log's name is refused too.
    forged = note.sign(f"{origin}\n{size}\n{other_root}\n", verifier.name, stranger)
    with pytest.raises(note.NoteError, match="another key"):
        note.open_checkpoint(forged, verifier)


def test_checkpoints_are_append_only(admin: Api, db: TransactionalDatabase) -> None:
    assert admin.post("/audit/checkpoints").status_code == 201
    connection = db.connection
    for statement in (
        "UPDATE audit_checkpoints SET tree_size = tree_size + 1",
        "DELETE FROM audit_checkpoints",
    ):
        savepoint = connection.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            connection.exec_driver_sql(statement)
        savepoint.rollback()


def test_the_cli_issues_a_checkpoint_and_prints_its_note(
    app: Flask, api: Api, auditor: Api
) -> None:
    n = len(published_leaves(auditor))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "checkpoint"])
    assert result.exit_code == 0, result.output
    assert f"issued a checkpoint of {n} events" in result.stderr
    checkpoint = note.open_checkpoint(result.stdout, verifier_of(api))
    assert checkpoint.size == n
    assert api.get("/audit/checkpoints/latest").get_data(as_text=True) == result.stdout
    again = runner.invoke(args=["audit", "checkpoint"])
    assert again.exit_code == 0
    assert "unchanged" in again.stderr
    assert again.stdout == result.stdout


def test_the_generated_key_is_private_to_the_instance(app: Flask, api: Api) -> None:
    verifier_of(api)  # loads (or generates) the key
    signer = checkpoint_service.signer(app)
    path = signer.instance_path / checkpoint_service.KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert checkpoint_service.load_key(path).public_key().public_bytes_raw() == (
        signer.verifier.public_key
    )


def test_an_auditor_verifies_what_they_downloaded_offline(
    api: Api, admin: Api, auditor: Api, session: Session
) -> None:
    kept = admin.post("/audit/checkpoints").json
    for i in range(5):
        audit_services.record(
            session, actor=None, action="test.tick", subject_type="test", subject_id=f"late-{i}"
        )
    session.flush()
    newer = admin.post("/audit/checkpoints").json
    downloaded = [json.dumps(e, ensure_ascii=False) for e in events(auditor)]
    key = api.get("/audit/checkpoint-key").get_data(as_text=True)
    proof = auditor.get(
        "/audit/proof/consistency", query_string={"first": kept["size"], "second": newer["size"]}
    ).json
    report = verify.verify(
        events=downloaded,
        checkpoint=newer["note"],
        key=key,
        older=kept["note"],
        consistency_proof=proof,
    )
    assert report.ok, report.problems
    assert "the consistency proof between the checkpoints verifies" in report.notes

    changed = list(downloaded)
    changed[3] = changed[3].replace('"payload": {', '"payload": {"added": 1, ', 1)
    assert changed[3] != downloaded[3]
    problem = verify.verify(events=changed, checkpoint=newer["note"], key=key).problems[0]
    assert (problem.line, problem.seq) == (4, 4)
