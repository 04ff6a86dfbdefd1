"""The operator's export bundle verified offline, and every tampering named (issue 6 "done when").

A registry with take-ups (signed contracts), a royalty report, payments and a settlement is
exported with ``flask export DIR``; the offline verifier (``python -m registry.audit.verify
export``, standard library and ``cryptography`` only, run here with Flask and SQLAlchemy
blocked) passes it against a checkpoint kept before the last changes. Then each tampering, on a
fresh copy of the bundle, must make it fail and name the item: a row of every register, an
event's payload, a removed event, a contract byte, a removed contract, the manifest, the
checkpoint's signature and root, a kept checkpoint of a forked log, a later checkpoint that
rewrote the kept history, and more.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import User
from registry.audit import checkpoints, merkle, note, verify_export
from registry.audit import export_format as fmt
from registry.audit import services as audit_services
from registry.audit.models import AuditEvent
from registry.clearing import settlement
from registry.clearing.models import Statement
from registry.clearing.schedule import build_schedule
from registry.core import clock
from registry.licences.models import Licence
from tests.api import access_clearing as ac
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import clearing as cf
from tests.factories.world import World, build_world
from tests.unit.test_audit_verify_offline import BLOCKER

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Exported:
    bundle: Path
    kept: str  # a checkpoint issued before the last changes, as an auditor keeps it
    vkey: str  # the log's key as the auditor holds it (GET /audit/checkpoint-key)
    signer: checkpoints.CheckpointSigner
    world: World


def _statement_of(session: Session, licence: Licence) -> Statement:
    return session.scalars(
        select(Statement).where(Statement.licence_id == licence.id).order_by(Statement.number)
    ).first()  # type: ignore[return-value]


@dataclass
class Traded:
    lump: Licence  # the world's SME's licence on university A's patent
    running: Licence  # another SME's licence on university B's patent


def trade(factory: Factory, api: Api, world: World) -> Traded:
    """Take-ups (each with its signed contract), a royalty report, payments and a settlement."""
    session = factory.session
    admin = world.admin.user
    # The SME's lump-sum licence on university A's patent, paid in full.
    own = SimpleNamespace(world=world, factory=factory, organisation=world.enterprise)
    lump = ac.priced_licence(own)
    cf.pay(factory, admin, _statement_of(session, lump), 100_000)
    # Another SME's running-royalty licence on university B's patent, reported and paid.
    other = SimpleNamespace(world=world, factory=factory, organisation=world.other_university)
    running = ac.priced_licence(other, ac.RUNNING, days=200)
    schedule = build_schedule(
        running.terms,
        effective_date=running.effective_date,
        end_date=running.end_date,
        is_sme=False,
    )
    period = next(p for p in schedule.periods if p.period_end < clock.today())
    holder = api.as_(factory.token(session.get_one(User, running.licensee_user_id)))
    reported = holder.post(
        f"/licences/{running.id}/reports",
        json={
            "period_start": period.period_start.isoformat(),
            "period_end": period.period_end.isoformat(),
            "net_sales": "123456.78",
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert reported.status_code == 201, reported.json
    statement = session.get_one(Statement, uuid.UUID(reported.json["statement_id"]))
    cf.pay(factory, admin, statement, statement.amount_due)
    settlement.run_settlement(
        session,
        actor=factory.actor(admin),
        period_start=clock.today(),
        period_end=clock.today(),
        fee_rate=300,
        minimum_payout=0,
    )
    session.flush()
    return Traded(lump, running)


def export(app: Flask, target: Path) -> Any:
    return app.test_cli_runner().invoke(args=["export", str(target)])


@pytest.fixture
def exported(app: Flask, factory: Factory, api: Api, tmp_path: Path) -> Exported:
    world = build_world(factory)
    signer = checkpoints.signer(app)
    kept = checkpoints.issue(factory.session, actor=None, signer_=signer).checkpoint.note
    trade(factory, api, world)
    result = export(app, tmp_path / "bundle")
    assert result.exit_code == 0, result.output
    return Exported(tmp_path / "bundle", kept, signer.verifier.vkey, signer, world)


def check(bundle: Path, exported: Exported, kept: str | None = None) -> verify_export.Report:
    return verify_export.verify_bundle(bundle, kept=kept or exported.kept, key=exported.vkey)


# What the bundle holds and that it verifies --------------------------------------------------


def test_the_bundle_holds_everything_and_verifies(
    exported: Exported, session: Session, app: Flask
) -> None:
    bundle = exported.bundle
    names = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    registers = [f"registers/{n}.csv" for n in ("licences", "offers", "patents", "payee-lines")]
    assert set(registers) <= set(names)
    contracts = [n for n in names if n.startswith("contracts/")]
    licences = session.scalars(select(Licence.reference).order_by(Licence.reference)).all()
    assert contracts == [f"contracts/{ref}.pdf" for ref in licences]
    assert len(contracts) >= 2
    manifest = json.loads((bundle / fmt.MANIFEST).read_text())
    for name in ("patents", "offers", "licences", "statements", "payments", "settlements"):
        assert manifest["registers"][name]["rows"], name  # every register has rows to tamper
    assert manifest["registers"]["payee-lines"]["rows"]

    # The last event is the export, recording the manifest's hash; the checkpoint covers it.
    lines = (bundle / fmt.EVENTS).read_text().splitlines()
    last = json.loads(lines[-1])
    assert last["action"] == "export.created"
    assert last["payload"]["manifest_sha256"] == fmt.sha256((bundle / fmt.MANIFEST).read_bytes())
    checkpoint = note.open_checkpoint(
        (bundle / fmt.CHECKPOINT).read_text(), note.parse_vkey(exported.vkey)
    )
    assert checkpoint.size == last["seq"] == len(lines)
    stored = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.leaf_hash for e in stored[: len(lines)]] == [
        json.loads(x)["leaf_hash"] for x in lines
    ]
    assert stored[len(lines)].action == "checkpoint.issued"  # the checkpoint's own event, after
    # Journal transactions are leaves too (issue 6 §1).
    assert any(json.loads(x)["action"] == "journal.posted" for x in lines)

    report = check(bundle, exported)
    assert report.ok, report.problems
    assert any("consistency proof" in n for n in report.notes)
    assert any(f"{len(contracts)} of {len(contracts)} contracts" in n for n in report.notes)

    # The registers are the database's: the licence register names each contract's hash.
    rows = fmt.read_csv((bundle / "registers/licences.csv").read_bytes())
    assert (bundle / "registers/licences.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    header = rows[0]
    by_ref = {row[header.index("reference")]: row for row in rows[1:]}
    for ref in licences:
        pdf = (bundle / f"contracts/{ref}.pdf").read_bytes()
        assert by_ref[ref][header.index("contract_sha256")] == fmt.sha256(pdf)


def test_the_standalone_verifier_runs_without_flask(exported: Exported, tmp_path: Path) -> None:
    (tmp_path / "kept.txt").write_text(exported.kept, encoding="utf-8")
    (tmp_path / "key.txt").write_text(exported.vkey + "\n", encoding="utf-8")
    args = ["export", str(exported.bundle), "--kept", "kept.txt", "--key", "key.txt"]
    good = _standalone(tmp_path, args)
    assert good.returncode == 0, good.stderr
    assert "ok: checkpoint of" in good.stdout
    tampered = fresh_copy(exported.bundle, tmp_path / "tampered")
    flip_byte(next((tampered / "contracts").iterdir()))
    bad = _standalone(tmp_path, ["export", str(tampered), "--kept", "kept.txt", "--key", "key.txt"])
    assert bad.returncode == 1
    assert "MISMATCH contracts/" in bad.stderr
    missing = _standalone(tmp_path, ["export", str(tmp_path / "nowhere")])
    assert missing.returncode == 2


def _standalone(cwd: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", BLOCKER, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_flask_command_runs_the_same_checks(
    app: Flask, exported: Exported, tmp_path: Path
) -> None:
    (tmp_path / "kept.txt").write_text(exported.kept, encoding="utf-8")
    runner = app.test_cli_runner()
    args = ["audit", "verify-export", str(exported.bundle), "--kept", str(tmp_path / "kept.txt")]
    good = runner.invoke(args=args)
    assert good.exit_code == 0, good.output
    assert "ok: checkpoint of" in good.stdout
    tampered = fresh_copy(exported.bundle, tmp_path / "tampered")
    edit_manifest(tampered)
    bad = runner.invoke(args=["audit", "verify-export", str(tampered)])
    assert bad.exit_code == 1
    assert "MISMATCH manifest.json: its sha256" in bad.stderr


def test_the_target_must_be_new_or_empty(app: Flask, factory: Factory, tmp_path: Path) -> None:
    build_world(factory)
    target = tmp_path / "used"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    events = _events(factory.session)
    refused = export(app, target)
    assert refused.exit_code == 1
    assert "not an empty directory" in refused.output
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert _events(factory.session) == events  # nothing recorded
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(app, empty).exit_code == 0
    assert (empty / fmt.MANIFEST).is_file()


def _events(session: Session) -> int:
    return audit_services.count_events(session)


# Tampering: each on a fresh copy, each must fail naming the item ------------------------------


def fresh_copy(bundle: Path, target: Path) -> Path:
    shutil.copytree(bundle, target)
    return target


def flip_byte(path: Path, at: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def edit_manifest(bundle: Path) -> None:
    manifest = json.loads((bundle / fmt.MANIFEST).read_text())
    manifest["created_dt"] = "2020-01-01T00:00:00.000000Z"
    (bundle / fmt.MANIFEST).write_bytes(fmt.manifest_bytes(manifest))


# The cell each register tampering changes: a column that matters.
CHANGED_COLUMN = {
    "patents": "title",
    "offers": "upfront_amount",
    "licences": "status",
    "statements": "amount_due",
    "payments": "amount",
    "settlements": "status",
    "payee-lines": "amount",
}


def change_row(bundle: Path, register: str) -> str:
    """Change one cell of the register's first row; the item the verifier must name."""
    path = bundle / f"registers/{register}.csv"
    rows = fmt.read_csv(path.read_bytes())
    header, first = rows[0], rows[1]
    column = header.index(CHANGED_COLUMN[register])
    first[column] = first[column] + "0" if first[column] else "tampered"
    path.write_bytes(fmt.write_csv(header, rows[1:]))
    manifest = json.loads((bundle / fmt.MANIFEST).read_text())
    key = manifest["registers"][register]["key"]
    return f"registers/{register}.csv row 1 ({key} {first[header.index(key)]})"


def load_events(bundle: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (bundle / fmt.EVENTS).read_text().splitlines()]


def save_events(bundle: Path, events: list[dict[str, Any]]) -> None:
    text = "".join(fmt.event_line(event) + "\n" for event in events)
    (bundle / fmt.EVENTS).write_text(text, encoding="utf-8")


def rehash(events: list[dict[str, Any]]) -> list[bytes]:
    """Recompute every leaf and chain hash, as a forger holding the database would."""
    chain = verify_export.GENESIS_CHAIN
    leaves = []
    for event in events:
        leaf = merkle.leaf_hash(verify_export.canonical_event(event))
        chain = hashlib.sha256(chain + leaf).digest()
        event["leaf_hash"], event["chain_hash"] = leaf.hex(), chain.hex()
        leaves.append(leaf)
    return leaves


def sign(signer: Any, size: int, root: bytes, key: Any = None) -> str:
    text = note.Checkpoint(signer.origin, size, root).text()
    return note.sign(text, signer.origin, key or signer.key)


def first_index(events: list[dict[str, Any]], action: str) -> int:
    return next(i for i, e in enumerate(events) if e["action"] == action)


Expect = tuple[str, str, str | None]  # item, part of the message, kept checkpoint (default)
Tamper = Callable[[Path, Exported], Expect]


def _row(register: str) -> Tamper:
    return lambda bundle, _: (change_row(bundle, register), "was changed", None)


def _payload(bundle: Path, _: Exported) -> Expect:
    events = load_events(bundle)
    at = first_index(events, "journal.posted")
    events[at]["payload"]["entries"][0][1] += 1  # one fen more in the books
    save_events(bundle, events)
    seq = events[at]["seq"]
    return f"audit-events.jsonl line {at + 1} (event {seq})", "does not match its leaf hash", None


def _removed_event(bundle: Path, _: Exported) -> Expect:
    events = load_events(bundle)
    at = first_index(events, "payment.recorded")
    gone = events.pop(at)["seq"]
    save_events(bundle, events)
    return f"audit-events.jsonl line {at + 1} (event {gone + 1})", f"event {gone} was removed", None


def _inserted_event(bundle: Path, _: Exported) -> Expect:
    events = load_events(bundle)
    at = first_index(events, "statement.issued")
    forged = {**events[at], "payload": {**events[at]["payload"], "forged": True}}
    forged["leaf_hash"] = merkle.leaf_hash(verify_export.canonical_event(forged)).hex()
    events.insert(at + 1, forged)
    save_events(bundle, events)
    seq = forged["seq"]
    return f"audit-events.jsonl line {at + 2} (event {seq})", "repeats or is out of order", None


def _truncated(bundle: Path, _: Exported) -> Expect:
    events = load_events(bundle)
    save_events(bundle, events[:-1])
    return "checkpoint.txt", f"event {len(events)} is missing (the log was truncated)", None


def _contract(bundle: Path) -> tuple[Path, str]:
    path = sorted((bundle / "contracts").iterdir())[0]
    return path, f"contracts/{path.name} (licence {path.stem})"


def _contract_byte(bundle: Path, _: Exported) -> Expect:
    path, item = _contract(bundle)
    flip_byte(path)
    return item, "is not the signed sha256", None


def _contract_removed(bundle: Path, _: Exported) -> Expect:
    path, item = _contract(bundle)
    path.unlink()
    return item, "is missing: contract.issued event", None


def _contract_added(bundle: Path, _: Exported) -> Expect:
    path, _ = _contract(bundle)
    shutil.copy(path, bundle / "contracts/OL-2099-999999.pdf")
    return "contracts/OL-2099-999999.pdf", "no contract.issued event", None


def _row_removed(bundle: Path, _: Exported) -> Expect:
    path = bundle / "registers/statements.csv"
    rows = fmt.read_csv(path.read_bytes())
    path.write_bytes(fmt.write_csv(rows[0], rows[2:]))
    number = rows[1][rows[0].index("number")]
    return f"registers/statements.csv row 1 (number {number})", "is missing", None


def _manifest(bundle: Path, _: Exported) -> Expect:
    edit_manifest(bundle)
    return "manifest.json", "is not", None


def _manifest_and_its_event(bundle: Path, exported: Exported) -> Expect:
    """The manifest edited, and the export event rewritten to its new hash (hashes and all)."""
    edit_manifest(bundle)
    events = load_events(bundle)
    events[-1]["payload"]["manifest_sha256"] = fmt.sha256((bundle / fmt.MANIFEST).read_bytes())
    rehash(events)
    save_events(bundle, events)
    return "checkpoint.txt", "is not the root", None


def _signature(bundle: Path, _: Exported) -> Expect:
    text, lines = note.split((bundle / fmt.CHECKPOINT).read_text())
    signature = bytearray(lines[0].signature)
    signature[10] ^= 0x01
    encoded = base64.b64encode(lines[0].key_hash + bytes(signature)).decode()
    (bundle / fmt.CHECKPOINT).write_text(
        f"{text}\n{note.SIGNATURE_PREFIX}{lines[0].name} {encoded}\n"
    )
    return "checkpoint.txt", "does not verify", None


def _root(bundle: Path, _: Exported) -> Expect:
    signed = (bundle / fmt.CHECKPOINT).read_text().split("\n")
    signed[2] = base64.b64encode(bytes(32)).decode()
    (bundle / fmt.CHECKPOINT).write_text("\n".join(signed))
    return "checkpoint.txt", "does not verify", None


def _forked_kept(bundle: Path, exported: Exported) -> Expect:
    """A kept checkpoint, validly signed, of a log that forked from this one."""
    kept = note.open_checkpoint(exported.kept, exported.signer.verifier)
    events = load_events(bundle)[: kept.size]
    events[3]["subject_id"] = "forked"
    forked = sign(exported.signer, kept.size, merkle.tree_root(rehash(events)))
    return "checkpoint.txt", "is not consistent with the kept checkpoint", forked


def _rewritten_after_kept(bundle: Path, exported: Exported) -> Expect:
    """The operator rewrote an event the kept checkpoint covers and signed a new checkpoint
    over the rewritten log: it verifies on its own, but not against the kept checkpoint."""
    events = load_events(bundle)
    events[1]["payload"]["rewritten"] = True
    leaves = rehash(events)
    save_events(bundle, events)
    (bundle / fmt.CHECKPOINT).write_text(
        sign(exported.signer, len(events), merkle.tree_root(leaves))
    )
    alone = verify_export.verify_bundle(bundle, key=exported.vkey)
    assert alone.ok, alone.problems  # the negative control: only the kept checkpoint catches it
    return "checkpoint.txt", "is not consistent with the kept checkpoint", None


def _other_key(bundle: Path, exported: Exported) -> Expect:
    """The whole bundle re-signed by someone else's key (its key file replaced too)."""
    stranger = Ed25519PrivateKey.generate()
    events = load_events(bundle)
    (bundle / fmt.CHECKPOINT).write_text(
        sign(exported.signer, len(events), merkle.tree_root(rehash(events)), key=stranger)
    )
    verifier = note.Verifier(exported.signer.origin, note.raw_public_key(stranger.public_key()))
    (bundle / fmt.KEY).write_text(verifier.vkey + "\n")
    return "checkpoint.txt", "made with another key", None


TAMPERINGS: dict[str, Tamper] = {
    **{f"a row of {name}": _row(name) for name in CHANGED_COLUMN},
    "an event's payload": _payload,
    "an event removed": _removed_event,
    "an event inserted": _inserted_event,
    "the last event removed (truncation)": _truncated,
    "a contract byte": _contract_byte,
    "a contract removed": _contract_removed,
    "a contract added": _contract_added,
    "a register row removed": _row_removed,
    "the manifest edited": _manifest,
    "the manifest and its export event rewritten": _manifest_and_its_event,
    "the checkpoint's signature": _signature,
    "the checkpoint's root": _root,
    "a kept checkpoint of a forked log": _forked_kept,
    "a later checkpoint over a rewritten history": _rewritten_after_kept,
    "the bundle re-signed with another key": _other_key,
}


def test_every_tampering_fails_and_names_the_item(exported: Exported, tmp_path: Path) -> None:
    assert len(TAMPERINGS) == 22
    missed: list[str] = []
    for number, (name, tamper) in enumerate(TAMPERINGS.items()):
        copy = fresh_copy(exported.bundle, tmp_path / f"case-{number}")
        item, message, kept = tamper(copy, exported)
        report = check(copy, exported, kept)
        named = [p for p in report.problems if p.item == item and message in p.message]
        if report.ok or not named:
            missed.append(f"{name}: wanted {item!r} '…{message}…', got {report.problems}")
    assert not missed, "\n".join(missed)
