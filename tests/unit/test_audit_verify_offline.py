"""The offline verifier an auditor runs (``python -m registry.audit.verify``), signed checkpoint
notes and the checkpoint key (reliability.md §8 T15, first part).

Events are built with the service's own canonical form and hashes (registry.audit.services), in
the shape ``GET /audit/events`` publishes them, so a change to how the service hashes events
breaks these tests rather than the auditor's verification. Each tampering must be caught and
named: the line and event sequence number, or the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.audit import checkpoints, merkle, note, verify
from registry.audit import services as audit_services
from registry.config import ConfigError, load_settings

ORIGIN = "registry.test/audit"
KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"checkpoint test key").digest())
VKEY = note.Verifier(ORIGIN, note.raw_public_key(KEY.public_key())).vkey
ACTOR = uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")
ORG = uuid.UUID("0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9")
ROOT = Path(__file__).resolve().parents[2]


def build(n: int, *, salt: str = "") -> list[dict[str, Any]]:
    start = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    events = [
        {
            "seq": seq,
            "event_dt": (start + timedelta(seconds=seq, microseconds=seq * 7)).isoformat(),
            "actor_id": str(ACTOR) if seq % 3 else None,
            "actor_organisation_id": str(ORG) if seq % 3 else None,
            "action": "patent.updated" if seq % 2 else "licence.taken_up",
            "subject_type": "patent",
            "subject_id": str(uuid.UUID(int=seq)),
            "payload": {"title": ["旧标题", f"新标题{seq}{salt}"], "fee": "1200.00", "n": seq},
        }
        for seq in range(1, n + 1)
    ]
    return rehash(events)


def rehash(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Number the events by position and recompute every hash, as a forger with the database
    would (the service's own functions)."""
    chain = audit_services.GENESIS_CHAIN
    out = []
    for seq, event in enumerate(events, start=1):
        canonical = audit_services.canonical_event(
            seq=seq,
            event_dt=datetime.fromisoformat(event["event_dt"]),
            actor_id=uuid.UUID(event["actor_id"]) if event["actor_id"] else None,
            actor_organisation_id=(
                uuid.UUID(event["actor_organisation_id"])
                if event["actor_organisation_id"]
                else None
            ),
            action=event["action"],
            subject_type=event["subject_type"],
            subject_id=event["subject_id"],
            payload=event["payload"],
        )
        leaf = audit_services.leaf_hash(canonical)
        chain = audit_services.chain_hash(chain, leaf)
        out.append({**event, "seq": seq, "leaf_hash": leaf, "chain_hash": chain})
    return out


def lines(events: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(e, ensure_ascii=False) for e in events]


def checkpoint(
    events: list[dict[str, Any]], size: int, key: Ed25519PrivateKey = KEY, name: str = ORIGIN
) -> str:
    leaves = [bytes.fromhex(e["leaf_hash"]) for e in events]
    text = note.Checkpoint(name, size, merkle.tree_root(leaves, size)).text()
    return note.sign(text, name, key)


def run(events: list[str], kept: str, **kwargs: Any) -> verify.Report:
    return verify.verify(events=events, checkpoint=kept, key=kwargs.pop("key", VKEY), **kwargs)


def only_problem(report: verify.Report) -> verify.Problem:
    assert len(report.problems) >= 1, report.notes
    return report.problems[0]


@pytest.fixture(scope="module")
def log() -> list[dict[str, Any]]:
    return build(300)


# What verifies ---------------------------------------------------------------------------------


def test_a_genuine_log_verifies_against_its_checkpoints(log: list[dict[str, Any]]) -> None:
    report = run(lines(log), checkpoint(log, 250), older=checkpoint(log, 100))
    assert report.ok, report.problems
    assert "300 events: sequence, leaf and chain hashes verify" in report.notes
    assert "50 later events are not covered yet" in report.notes
    assert any("consistent" in n for n in report.notes)


def test_the_key_is_taken_in_every_published_form(log: list[dict[str, Any]]) -> None:
    pem = (
        KEY.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    served = json.dumps({"name": ORIGIN, "vkey": VKEY, "pem": pem})
    for key in (VKEY, VKEY + "\n", pem, served):
        assert run(lines(log), checkpoint(log, 300), key=key).ok


def test_events_without_their_hashes_still_verify_by_the_root(log: list[dict[str, Any]]) -> None:
    bare = [{k: v for k, v in e.items() if k not in {"leaf_hash", "chain_hash"}} for e in log]
    assert run(lines(bare), checkpoint(log, 300)).ok


# Tampering with the events: the first bad line is named -----------------------------------------


def test_a_changed_payload_byte_names_the_event(log: list[dict[str, Any]]) -> None:
    text = lines(log)
    text[41] = text[41].replace("新标题42", "新标题43")
    problem = only_problem(run(text, checkpoint(log, 300)))
    assert (problem.line, problem.seq) == (42, 42)
    assert "does not match its leaf hash" in problem.message
    assert str(problem).startswith("line 42 (event 42):")


def test_a_deleted_event_is_named(log: list[dict[str, Any]]) -> None:
    text = lines(log)
    del text[99]
    problem = only_problem(run(text, checkpoint(log, 300)))
    assert (problem.line, problem.seq) == (100, 101)
    assert "event 100 was removed" in problem.message


def test_swapped_events_are_named(log: list[dict[str, Any]]) -> None:
    text = lines(log)
    text[10], text[11] = text[11], text[10]
    problem = only_problem(run(text, checkpoint(log, 300)))
    assert (problem.line, problem.seq) == (11, 12)
    assert "expected event 11" in problem.message


def test_an_inserted_event_is_named(log: list[dict[str, Any]]) -> None:
    forged = rehash([*log[:60], {**log[60], "payload": {"forged": True}}])[-1]
    text = lines(log)
    text.insert(60, json.dumps(forged))  # a well-hashed event 61, before the real one
    problem = only_problem(run(text, checkpoint(log, 300)))
    assert (problem.line, problem.seq) == (62, 61)
    assert "repeats event 61 of line 61: an event was inserted" in problem.message


def test_a_malformed_line_is_named(log: list[dict[str, Any]]) -> None:
    text = lines(log)
    for bad in ("{not json", '{"seq": 5.0}', "[]", json.dumps({**log[4], "payload": {"x": 1.5}})):
        text[4] = bad
        problem = only_problem(run(text, checkpoint(log, 300)))
        assert problem.line == 5
        assert "not a registry audit event" in problem.message


def test_a_log_rewritten_hashes_and_all_fails_against_the_kept_checkpoint(
    log: list[dict[str, Any]],
) -> None:
    kept = checkpoint(log, 300)
    edited = rehash([*log[:149], {**log[149], "payload": {"title": "篡改"}}, *log[150:]])
    problem = only_problem(run(lines(edited), kept))
    assert problem.item == "checkpoint"
    assert "one of events 1 … 300 was changed" in problem.message
    # Holding an older checkpoint too narrows it down to the events after it.
    narrowed = run(lines(edited), kept, older=checkpoint(log, 120))
    assert [p.item for p in narrowed.problems] == ["checkpoint"]
    assert "one of events 121 … 300" in narrowed.problems[0].message


def test_a_truncated_log_fails_against_the_kept_checkpoint(log: list[dict[str, Any]]) -> None:
    problem = only_problem(run(lines(log[:280]), checkpoint(log, 300)))
    assert problem.item == "checkpoint"
    assert "events 281 … 300 are missing" in problem.message


def test_a_rewritten_log_without_a_checkpoint_from_before_is_undetectable() -> None:
    """The negative control of T15: a wholesale rewrite verifies against its own checkpoint;
    only a checkpoint kept from before catches it."""
    rewritten = build(300, salt="′")
    assert run(lines(rewritten), checkpoint(rewritten, 300)).ok


def test_random_single_tamperings_are_all_caught_at_the_right_line() -> None:
    rng = random.Random(15)  # noqa: S311 - seeded test data, no secrets
    events = build(1000)
    genuine = lines(events)
    kept = checkpoint(events, 1000)
    counts = dict.fromkeys(("modify", "delete", "swap", "insert"), 0)
    for _ in range(200):
        kind = rng.choice(list(counts))
        at = rng.randrange(1, 999)
        text = list(genuine)
        if kind == "modify":
            text[at] = text[at].replace('"n": ', '"n": 1', 1)
            expected = (at + 1, at + 1)
        elif kind == "delete":
            del text[at]
            expected = (at + 1, at + 2)
        elif kind == "swap":
            text[at], text[at + 1] = text[at + 1], text[at]
            expected = (at + 1, at + 2)
        else:
            forged = rehash([*events[:at], {**events[at], "subject_id": "forged"}])[-1]
            text.insert(at, json.dumps(forged))
            expected = (at + 2, at + 1)
        report = run(text, kept)
        assert not report.ok, (kind, at)
        assert (report.problems[0].line, report.problems[0].seq) == expected, (kind, at)
        counts[kind] += 1
    assert min(counts.values()) > 30


# Two checkpoints ----------------------------------------------------------------------------


def test_a_newer_checkpoint_inconsistent_with_the_kept_one_is_named(
    log: list[dict[str, Any]],
) -> None:
    kept = checkpoint(log, 100)
    rewritten = rehash([*log[:49], {**log[49], "action": "licence.terminated"}, *log[50:]])
    newer = checkpoint(rewritten, 200)  # the operator signs the rewritten history
    report = run(lines(rewritten), newer, older=kept)
    assert [p.item for p in report.problems] == ["older checkpoint", "checkpoint"]
    assert "is not consistent with the older checkpoint of 100 events" in str(report.problems[1])

    # With the log's consistency proof (from the rewritten tree) instead of the events alone.
    proof = merkle.consistency_proof([bytes.fromhex(e["leaf_hash"]) for e in rewritten], 100, 200)
    served = {"first": 100, "second": 200, "proof": [p.hex() for p in proof]}
    report = run(lines(rewritten), newer, older=kept, consistency_proof=served)
    assert "the consistency proof fails" in str(report.problems[-1])
    genuine = merkle.consistency_proof([bytes.fromhex(e["leaf_hash"]) for e in log], 100, 200)
    served = {"first": 100, "second": 200, "proof": [p.hex() for p in genuine]}
    good = run(lines(log), checkpoint(log, 200), older=kept, consistency_proof=served)
    assert good.ok, good.problems


def test_a_split_view_and_time_travel_are_flagged(log: list[dict[str, Any]]) -> None:
    other = rehash([*log[:9], {**log[9], "subject_id": "x"}, *log[10:]])
    split = run(lines(log), checkpoint(log, 100), older=checkpoint(other, 100))
    assert "split view" in str(only_problem(split))
    backwards = run(lines(log), checkpoint(log, 100), older=checkpoint(log, 200))
    assert "fewer than the older 200" in str(only_problem(backwards))


def test_a_checkpoint_with_a_wrong_key_or_an_edit_is_rejected(log: list[dict[str, Any]]) -> None:
    stranger = Ed25519PrivateKey.generate()
    forged = run(lines(log), checkpoint(log, 300, key=stranger))
    assert only_problem(forged).item == "checkpoint"
    assert "another key" in only_problem(forged).message
    signed = checkpoint(log, 300)
    resized = signed.replace(f"{ORIGIN}\n300\n", f"{ORIGIN}\n299\n", 1)
    assert "does not verify" in only_problem(run(lines(log), resized)).message
    unsigned = signed.split("\n\n")[0] + "\n"
    assert only_problem(run(lines(log), unsigned)).item == "checkpoint"
    bad_key = run(lines(log), signed, key="registry.test/audit+00000000+AAAA")
    assert only_problem(bad_key).item == "key"


# The command line, with nothing but the standard library and cryptography -----------------------

BLOCKER = """
import runpy, sys
BLOCKED = ("flask", "sqlalchemy", "werkzeug", "marshmallow", "alembic", "pyhanko", "jinja2")
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"the offline verifier imported {name}")
sys.meta_path.insert(0, Block())
sys.argv = ["verify", *sys.argv[1:]]
runpy.run_module("registry.audit.verify", run_name="__main__")
"""


def cli(
    tmp_path: Path, events: list[str], kept: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "events.jsonl").write_text("\n".join(events) + "\n", encoding="utf-8")
    (tmp_path / "kept.note").write_text(kept, encoding="utf-8")
    (tmp_path / "key.txt").write_text(VKEY + "\n", encoding="utf-8")
    args = ["--events", "events.jsonl", "--checkpoint", "kept.note", "--key", "key.txt", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", BLOCKER, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_command_runs_without_flask_or_sqlalchemy(
    tmp_path: Path, log: list[dict[str, Any]]
) -> None:
    (tmp_path / "older.note").write_text(checkpoint(log, 100), encoding="utf-8")
    good = cli(tmp_path, lines(log), checkpoint(log, 300), "--older", "older.note")
    assert good.returncode == 0, good.stderr
    assert "ok: checkpoint of 300 events: signature and root verify" in good.stdout
    text = lines(log)
    text[6] = text[6].replace("新标题7", "新标题8")
    bad = cli(tmp_path, text, checkpoint(log, 300))
    assert bad.returncode == 1
    assert "MISMATCH line 7 (event 7): its content does not match its leaf hash" in bad.stderr
    missing = cli(tmp_path, lines(log), checkpoint(log, 300), "--older", "nowhere.note")
    assert missing.returncode == 2
    assert "cannot read the input" in missing.stderr


# Notes, keys and settings -------------------------------------------------------------------


def test_verifier_keys_round_trip_and_refuse_damage() -> None:
    verifier = note.parse_vkey(VKEY)
    assert verifier.vkey == VKEY
    name, key_hash, material = VKEY.split("+")
    for broken in (
        f"{name}+{'0' * 8}+{material}",  # hash does not match
        f"other+{key_hash}+{material}",
        f"{name}+{key_hash}",
        f"{name}+{key_hash}+!!!",
        f"{name} x+{key_hash}+{material}",
    ):
        with pytest.raises(note.NoteError):
            note.parse_vkey(broken)


def test_a_key_whose_base64_holds_a_plus_sign_is_read_whole() -> None:
    seeds = (bytes([i]) * 32 for i in range(256))
    keys = (Ed25519PrivateKey.from_private_bytes(seed) for seed in seeds)
    key = next(
        k
        for k in keys
        if "+" in note.Verifier(ORIGIN, note.raw_public_key(k.public_key())).vkey.split("+", 2)[2]
    )
    verifier = note.Verifier(ORIGIN, note.raw_public_key(key.public_key()))
    assert note.parse_vkey(verifier.vkey) == verifier
    signed = note.sign(note.Checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT).text(), ORIGIN, key)
    assert note.open_checkpoint(signed, note.parse_vkey(verifier.vkey)).size == 0


@pytest.mark.parametrize(
    "text",
    [
        "origin\n012\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",  # leading zero
        "origin\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "origin\n12\nAAAA\n",  # not 32 bytes
        "origin\n12\n" + "A" * 43 + "#\n",
        "origin\n12\n",
        "origin\n12\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # no final newline
        "two words\n12\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(note.NoteError):
        note.parse_checkpoint(text)


def test_other_signatures_on_a_note_are_kept_and_ignored(log: list[dict[str, Any]]) -> None:
    signed = checkpoint(log, 10)
    witness = Ed25519PrivateKey.generate()
    text = signed.split("\n\n")[0] + "\n"
    cosigned = signed + note.sign(text, "witness.example", witness).split("\n\n")[1]
    assert note.open_checkpoint(cosigned, note.parse_vkey(VKEY)).size == 10


def test_the_configured_key_is_used_and_must_be_ed25519(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "checkpoint.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signer = checkpoints.CheckpointSigner(ORIGIN, tmp_path / "instance", str(path))
    assert signer.verifier.public_key == note.raw_public_key(key.public_key())
    assert not (tmp_path / "instance").exists()  # nothing generated
    ec = generate_private_key(SECP256R1())
    path.write_bytes(
        ec.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(checkpoints.CheckpointKeyError, match="not an Ed25519 key"):
        checkpoints.load_key(path)
    with pytest.raises(checkpoints.CheckpointKeyError, match="cannot load"):
        checkpoints.load_key(tmp_path / "absent.pem")


def test_processes_starting_together_share_one_generated_key(tmp_path: Path) -> None:
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        keys.append(note.raw_public_key(checkpoints.development_key(tmp_path).public_key()))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8
    assert len(set(keys)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoints.KEY_FILE]  # no leftovers


@pytest.mark.parametrize("origin", ["", "two words", "a+b"])
def test_an_origin_that_cannot_name_a_key_is_refused_at_start(origin: str, tmp_path: Path) -> None:
    environ = {"REGISTRY_CHECKPOINT_ORIGIN": origin, "REGISTRY_INSTANCE_PATH": str(tmp_path)}
    with pytest.raises(ConfigError, match="REGISTRY_CHECKPOINT_ORIGIN"):
        load_settings(environ)


def test_settings_name_the_checkpoint_key_and_origin(tmp_path: Path) -> None:
    environ = {
        "REGISTRY_CHECKPOINT_KEY": "/etc/registry/checkpoint.pem",
        "REGISTRY_CHECKPOINT_ORIGIN": "registry.example.cn/audit",
        "REGISTRY_INSTANCE_PATH": str(tmp_path),
    }
    settings = load_settings(environ)
    assert settings.checkpoint_key == "/etc/registry/checkpoint.pem"
    assert settings.checkpoint_origin == "registry.example.cn/audit"
