"""Offline verification of the audit log against a kept checkpoint, for auditors.

    python -m registry.audit.verify --events audit-events.jsonl --checkpoint kept.note \\
        --key checkpoint-key.txt [--older older.note [--consistency-proof proof.json]]
    python -m registry.audit.verify export DIR [--kept kept.note] [--key checkpoint-key.txt]

The second form checks a whole export bundle (``flask --app wsgi export DIR``): see
:mod:`registry.audit.verify_export`.

Needs the standard library and ``cryptography`` only — no Flask, no SQLAlchemy, no database —
so an auditor can run it on their own machine over what they downloaded. It checks:

1. the checkpoint note's signature against the log's public key (a verifier key
   ``name+hash+key``, an Ed25519 public key PEM, or the JSON of ``GET /audit/checkpoint-key``);
2. every event in the JSON Lines file (one event per line, as ``GET /audit/events`` shows them,
   in sequence order): the sequence runs 1, 2, 3 … without gap or repeat, each event's leaf hash
   recomputed from its content — SHA-256(0x00 ‖ canonical JSON of seq, time, actor,
   actor_organisation, action, subject_type, subject_id, payload), as registry.audit.services
   writes it — equals the one it carries, and its chain hash follows from the previous one;
3. the RFC 6962 root over the first *size* leaves equals the checkpoint's root;
4. with ``--older``: that checkpoint's signature, that it is not newer than the other, and that
   both are heads of the same log — from the events themselves (both roots recomputed) or, with
   ``--consistency-proof``, from the proof ``GET /audit/proof/consistency`` served.

It names what does not match (the first bad line and event sequence number, or the checkpoint)
and exits 1; 0 when everything verifies. A log truncated or rewritten wholesale, hashes and all,
verifies against nothing but a checkpoint kept from before: keep them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from registry.audit import merkle, note

GENESIS_CHAIN = bytes(32)


@dataclass(frozen=True)
class Problem:
    item: str  # "line 7 (event 7)", "checkpoint", "older checkpoint", "key", "events"
    message: str
    line: int | None = None
    seq: int | None = None

    def __str__(self) -> str:
        return f"{self.item}: {self.message}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(
        self, item: str, message: str, *, line: int | None = None, seq: int | None = None
    ) -> None:
        self.problems.append(Problem(item, message, line, seq))


class EventError(ValueError):
    """One line of the events file is not an event as the registry writes them."""


def _no_floats(text: str) -> Any:
    raise EventError(f"the number {text} is not an integer: the registry writes no others")


def canonical_event(event: dict[str, Any]) -> bytes:
    """The bytes the registry hashes for an event (registry.audit.services.canonical_event)."""
    try:
        moment = datetime.fromisoformat(str(event.get("event_dt", event.get("time"))))
    except ValueError as exc:
        raise EventError(f"its time cannot be read: {exc}") from None
    if moment.tzinfo is None:
        raise EventError("its time has no zone")
    try:
        document = {
            "seq": event["seq"],
            "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            # As GET /audit/events names them, or as an export bundle does (the hashed names).
            "actor": event["actor_id"] if "actor_id" in event else event["actor"],
            "actor_organisation": event["actor_organisation_id"]
            if "actor_organisation_id" in event
            else event["actor_organisation"],
            "action": event["action"],
            "subject_type": event["subject_type"],
            "subject_id": event["subject_id"],
            "payload": event["payload"],
        }
    except KeyError as exc:
        raise EventError(f"it has no {exc.args[0]} field") from None
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def read_verifier(text: str, origin: str | None) -> note.Verifier:
    """A verifier key, an Ed25519 public key PEM (named after ``origin``), or the JSON of
    ``GET /audit/checkpoint-key``."""
    stripped = text.strip()
    if stripped.startswith("{"):
        stripped = str(json.loads(stripped)["vkey"])
    if not stripped.startswith("-----BEGIN"):
        return note.parse_vkey(stripped)
    key = load_pem_public_key(stripped.encode("ascii"))
    if not isinstance(key, Ed25519PublicKey):
        raise note.NoteError("the public key is not an Ed25519 key")
    if origin is None:
        raise note.NoteError("a PEM key has no name: the checkpoint names none either")
    return note.Verifier(origin, note.raw_public_key(key))


def _origin_of(signed: str) -> str | None:
    first = signed.split("\n", 1)[0]
    return first or None


def read_leaves(lines: Sequence[str], report: Report) -> list[bytes] | None:
    """Leaf hashes of the events, in order; ``None`` after naming the first bad line.

    Blank lines are skipped but counted, so line numbers are the file's.
    """
    leaves: list[bytes] = []
    chain = GENESIS_CHAIN
    seen: dict[int, int] = {}  # seq → line
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        expected = len(leaves) + 1
        where = f"line {number}"
        try:
            event = json.loads(raw, parse_float=_no_floats, parse_constant=_no_floats)
            if not isinstance(event, dict) or type(event.get("seq")) is not int:
                raise EventError("it is not an event with a whole-number seq")
            seq = event["seq"]
            where = f"line {number} (event {seq})"
            leaf = merkle.leaf_hash(canonical_event(event))
        except (EventError, ValueError, TypeError) as exc:
            report.fail(where, f"not a registry audit event: {exc}", line=number)
            return None
        if seq != expected:
            if seq in seen:
                message = f"repeats event {seq} of line {seen[seq]}: an event was inserted"
            elif seq > expected:
                message = f"expected event {expected}: event {expected} was removed or moved"
            else:
                message = f"expected event {expected}: events are out of order"
            report.fail(where, message, line=number, seq=seq)
            return None
        seen[seq] = number
        if "leaf_hash" in event and event["leaf_hash"] != leaf.hex():
            message = "its content does not match its leaf hash: the event was changed"
            report.fail(where, message, line=number, seq=seq)
            return None
        chain = hashlib.sha256(chain + leaf).digest()
        if "chain_hash" in event and event["chain_hash"] != chain.hex():
            message = f"its chain hash does not follow from event {seq - 1}"
            report.fail(where, message, line=number, seq=seq)
            return None
        leaves.append(leaf)
    return leaves


def _covers(
    leaves: list[bytes], checkpoint: note.Checkpoint, label: str, report: Report, *, after: int = 0
) -> bool:
    """The events' root at the checkpoint's size is the checkpoint's root. ``after``: events
    1 … after are known good (they match an older checkpoint), which narrows the message."""
    if checkpoint.size > len(leaves):
        report.fail(
            label,
            f"covers {checkpoint.size} events but the file holds {len(leaves)}: events "
            f"{len(leaves) + 1} … {checkpoint.size} are missing (the log was truncated)",
        )
        return False
    root = merkle.tree_root(leaves, checkpoint.size)
    if root != checkpoint.root_hash:
        report.fail(
            label,
            f"its root {checkpoint.root_hash.hex()} is not the root {root.hex()} of the events: "
            f"one of events {after + 1} … {checkpoint.size} was changed, removed, inserted or "
            "reordered (hashes and all)",
        )
        return False
    return True


def verify(
    *,
    events: Sequence[str],
    checkpoint: str,
    key: str,
    older: str | None = None,
    consistency_proof: dict[str, Any] | None = None,
) -> Report:
    """Check ``events`` (JSON Lines) against the signed ``checkpoint`` note; see the module."""
    report = Report()
    try:
        verifier = read_verifier(key, _origin_of(checkpoint))
    except (note.NoteError, ValueError, KeyError) as exc:
        report.fail("key", f"cannot be read: {exc}")
        return report
    opened: dict[str, note.Checkpoint] = {}
    for label, text in (("checkpoint", checkpoint), ("older checkpoint", older)):
        if text is None:
            continue
        try:
            opened[label] = note.open_checkpoint(text, verifier)
        except note.NoteError as exc:
            report.fail(label, str(exc))
    newer, kept = opened.get("checkpoint"), opened.get("older checkpoint")
    if newer and kept and not _ordered(kept, newer, report):
        return report
    leaves = read_leaves(events, report)
    if leaves is None:
        return report
    report.notes.append(f"{len(leaves)} events: sequence, leaf and chain hashes verify")
    kept_ok = kept is not None and _covers(leaves, kept, "older checkpoint", report)
    if kept_ok and kept:
        report.notes.append(f"older checkpoint of {kept.size} events: signature and root verify")
    after = kept.size if kept_ok and kept else 0
    newer_ok = newer is not None and _covers(leaves, newer, "checkpoint", report, after=after)
    if newer_ok and newer:
        report.notes.append(f"checkpoint of {newer.size} events: signature and root verify")
        if len(leaves) > newer.size:
            report.notes.append(f"{len(leaves) - newer.size} later events are not covered yet")
    if newer and kept:
        if consistency_proof is not None:
            _check_proof(kept, newer, consistency_proof, report)
        elif newer_ok and not kept_ok:
            report.fail(
                "checkpoint",
                f"is not consistent with the older checkpoint of {kept.size} events: the "
                f"events it covers rewrite some of events 1 … {kept.size}",
            )
        elif newer_ok and kept_ok:
            report.notes.append("the checkpoints are consistent: one log, the older its prefix")
    return report


def _ordered(kept: note.Checkpoint, newer: note.Checkpoint, report: Report) -> bool:
    if newer.size < kept.size:
        report.fail("checkpoint", f"covers {newer.size} events, fewer than the older {kept.size}")
        return False
    if newer.size == kept.size and newer.root_hash != kept.root_hash:
        report.fail("checkpoint", f"two roots for the same {kept.size} events: a split view")
        return False
    return True


def _check_proof(
    kept: note.Checkpoint, newer: note.Checkpoint, proof: dict[str, Any], report: Report
) -> None:
    try:
        path = [bytes.fromhex(node) for node in proof["proof"]]
        sizes = (int(proof.get("first", kept.size)), int(proof.get("second", newer.size)))
    except (KeyError, TypeError, ValueError) as exc:
        report.fail("consistency proof", f"cannot be read: {exc}")
        return
    if sizes != (kept.size, newer.size):
        report.fail("consistency proof", f"is for sizes {sizes}, not the checkpoints'")
    elif merkle.verify_consistency(kept.size, newer.size, path, kept.root_hash, newer.root_hash):
        report.notes.append("the consistency proof between the checkpoints verifies")
    else:
        report.fail(
            "checkpoint",
            f"is not consistent with the older checkpoint of {kept.size} events: "
            "the consistency proof fails (the log was rewritten)",
        )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["export"]:  # python -m registry.audit.verify export DIR …
        from registry.audit import verify_export

        return verify_export.main(arguments[1:])
    parser = argparse.ArgumentParser(
        prog="python -m registry.audit.verify", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--events", type=Path, required=True, help="audit events, JSON Lines")
    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint note")
    parser.add_argument("--key", type=Path, required=True, help="the log's public key")
    parser.add_argument("--older", type=Path, help="an older checkpoint note you kept")
    parser.add_argument("--consistency-proof", type=Path, help="JSON from /audit/proof/consistency")
    args = parser.parse_args(arguments)
    try:
        report = verify(
            events=args.events.read_text(encoding="utf-8").split("\n"),
            checkpoint=args.checkpoint.read_text(encoding="utf-8"),
            key=args.key.read_text(encoding="utf-8"),
            older=args.older.read_text(encoding="utf-8") if args.older else None,
            consistency_proof=json.loads(args.consistency_proof.read_text(encoding="utf-8"))
            if args.consistency_proof
            else None,
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"cannot read the input: {exc}", file=sys.stderr)
        return 2
    for line in report.notes:
        print(f"ok: {line}")
    for problem in report.problems:
        print(f"MISMATCH {problem}", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
