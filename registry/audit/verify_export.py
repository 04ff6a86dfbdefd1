"""Offline verification of an export bundle (``flask --app wsgi export DIR``), for auditors.

    python -m registry.audit.verify export DIR [--kept kept.note] [--key checkpoint-key.txt]
    flask --app wsgi audit verify-export DIR [--kept kept.note] [--key checkpoint-key.txt]

Standard library and ``cryptography`` only, like :mod:`registry.audit.verify`. It checks, and
lists *every* problem it finds, each naming the file, line, row, event or licence:

1. ``checkpoint.txt`` is signed by the log's key (``--key``; else the bundle's own
   ``checkpoint-key.txt``, which proves nothing by itself: compare it with the key you hold);
2. every line of ``audit-events.jsonl``: its leaf hash recomputed from its fields, the sequence
   1, 2, 3 … without gap or repeat, the chain hash following from the event before;
3. the RFC 6962 root over all the events equals the checkpoint's root at its size, and the
   bundle holds no event the checkpoint does not cover;
4. with ``--kept``: that older checkpoint's signature, and that the bundle's log extends it
   (its first events have the kept root; a consistency proof computed from the events
   verifies; a kept checkpoint of the same size has the same root);
5. the last event covered is this bundle's ``export.created`` and records the SHA-256 of
   ``manifest.json``;
6. every file the manifest lists has its SHA-256, and no file was added;
7. every register row hashes as the manifest says (named by file, row and key);
8. every contract file's SHA-256 is the signed SHA-256 of its licence's ``contract.issued``
   event, that event is in the signed tree, and every such event has its file.

Exit status 0 when everything verifies, 1 naming each mismatch, 2 when the input is unusable.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from registry.audit import export_format as fmt
from registry.audit import merkle, note
from registry.audit import verify_files as files
from registry.audit.verify import (
    GENESIS_CHAIN,
    EventError,
    Report,
    _no_floats,
    canonical_event,
    read_verifier,
)
from registry.audit.verify_files import Bundle, Log


def verify_bundle(directory: Path, *, kept: str | None = None, key: str | None = None) -> Report:
    """Check the bundle in ``directory``; see the module for what is checked."""
    report = Report()
    bundle = Bundle(directory, report)
    checkpoint = _open_checkpoint(bundle, kept, key, report)
    events = bundle.raw(fmt.EVENTS)
    log = _read_events(events.decode("utf-8", "replace").split("\n"), report) if events else None
    tree = merkle.MerkleTree(log.leaves) if log else None
    signed = bool(checkpoint and log and tree and _check_root(checkpoint, log, tree, report))
    if kept is not None and checkpoint and tree:
        _check_kept(kept, key or bundle.raw(fmt.KEY, quiet=True), checkpoint, tree, report)
    raw_manifest = bundle.raw(fmt.MANIFEST)
    manifest = files.parse_manifest(raw_manifest, report)
    if checkpoint and log and tree:
        _check_export_event(checkpoint, log, tree, raw_manifest, signed, report)
    if manifest is not None:
        files.check_files(bundle, manifest, report)
        files.check_registers(bundle, manifest, report)
    if log and tree and checkpoint:
        files.check_contracts(bundle, log, tree, checkpoint, signed, report)
    return report


def _open_checkpoint(
    bundle: Bundle, kept: str | None, key: str | bytes | None, report: Report
) -> note.Checkpoint | None:
    raw = bundle.raw(fmt.CHECKPOINT)
    key_text = key if key is not None else bundle.raw(fmt.KEY)
    if key is None and key_text is not None:
        report.notes.append(
            f"the key was read from the bundle's {fmt.KEY}: it proves nothing by itself; "
            "compare it with the log's key you hold, or pass --key"
        )
    if raw is None or key_text is None:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        verifier = read_verifier(_text(key_text), text.split("\n", 1)[0] or None)
    except (note.NoteError, ValueError, KeyError) as exc:
        report.fail("key", f"cannot be read: {exc}")
        return None
    try:
        return note.open_checkpoint(text, verifier)
    except note.NoteError as exc:
        report.fail(fmt.CHECKPOINT, str(exc))
        return None


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _read_events(lines: Sequence[str], report: Report) -> Log:
    """Every event's leaf hash recomputed from its fields; each bad line named, none skipped."""
    log = Log()
    expected, previous = 1, GENESIS_CHAIN
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{fmt.EVENTS} line {number}"
        try:
            event = json.loads(raw, parse_float=_no_floats, parse_constant=_no_floats)
            if not isinstance(event, dict) or type(event.get("seq")) is not int:
                raise EventError("it is not an event with a whole-number seq")
            where += f" (event {event['seq']})"
            leaf = merkle.leaf_hash(canonical_event(event))
        except (EventError, ValueError, TypeError) as exc:
            report.fail(where, f"not a registry audit event: {exc}", line=number)
            log.leaves.append(merkle.leaf_hash(raw.encode("utf-8", "replace")))  # keeps places
            log.events.append(None)
            expected += 1
            continue
        seq = event["seq"]
        chain = hashlib.sha256(previous + leaf).digest()
        if seq != expected:
            report.fail(where, _sequence_problem(seq, expected), line=number, seq=seq)
        elif event.get("leaf_hash", leaf.hex()) != leaf.hex():
            message = "its content does not match its leaf hash: the event was changed"
            report.fail(where, message, line=number, seq=seq)
        elif event.get("chain_hash", chain.hex()) != chain.hex():
            message = f"its chain hash does not follow from event {seq - 1}"
            report.fail(where, message, line=number, seq=seq)
        stored = event.get("chain_hash")
        previous = bytes.fromhex(stored) if isinstance(stored, str) and _is_hash(stored) else chain
        expected = seq + 1
        log.leaves.append(leaf)
        log.events.append(event)
    report.notes.append(f"{len(log.leaves)} events read; every leaf hash recomputed")
    return log


def _is_hash(value: object) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def _span(first: int, last: int) -> str:
    return f"event {first} is" if first == last else f"events {first} … {last} are"


def _sequence_problem(seq: int, expected: int) -> str:
    if seq > expected:
        gone = f"event {expected} was" if seq == expected + 1 else f"events {expected} … {seq - 1}"
        return f"expected event {expected}: {gone} removed"
    return f"expected event {expected}: event {seq} repeats or is out of order"


def _check_root(
    checkpoint: note.Checkpoint, log: Log, tree: merkle.MerkleTree, report: Report
) -> bool:
    size, held = checkpoint.size, len(log.leaves)
    if held > size:
        report.fail(
            fmt.EVENTS,
            f"holds {held} events but the checkpoint covers {size}: "
            f"{_span(size + 1, held)} vouched for by no signature",
        )
    if size > held:
        last = max((e["seq"] for e in log.events if e), default=0)
        missing = (
            f"{_span(last + 1, size)} missing (the log was truncated)"
            if last < size
            else f"{size - held} removed (named above)"
        )
        report.fail(
            fmt.CHECKPOINT, f"covers {size} events but {fmt.EVENTS} holds {held}: {missing}"
        )
        return False
    root = tree.root(size)
    if root != checkpoint.root_hash:
        report.fail(
            fmt.CHECKPOINT,
            f"its root {checkpoint.root_hash.hex()} is not the root {root.hex()} of the events "
            f"in {fmt.EVENTS}: one of events 1 … {size} was changed, removed, inserted or "
            "reordered (hashes and all)",
        )
        return False
    report.notes.append(f"checkpoint of {size} events: signature and RFC 6962 root verify")
    return True


def _check_kept(
    kept_text: str,
    key: str | bytes | None,
    checkpoint: note.Checkpoint,
    tree: merkle.MerkleTree,
    report: Report,
) -> None:
    item = "kept checkpoint"
    try:
        verifier = read_verifier(_text(key or ""), kept_text.split("\n", 1)[0] or None)
        kept = note.open_checkpoint(kept_text, verifier)
    except (note.NoteError, ValueError, KeyError) as exc:
        report.fail(item, f"{exc} (is it a checkpoint of this log?)")
        return
    size, root = kept.size, kept.root_hash
    if size > checkpoint.size:
        message = f"covers {size} events, more than the bundle's checkpoint of {checkpoint.size}"
        report.fail(item, f"{message}: the log was truncated or rolled back since you kept it")
        return
    if size == checkpoint.size and root != checkpoint.root_hash:
        message = f"has another root for the same {size} events: two versions of the log"
        report.fail(fmt.CHECKPOINT, f"{message} (a split view)")
        return
    if size > len(tree.leaves) or tree.root(size) != root:
        report.fail(
            fmt.CHECKPOINT,
            f"is not consistent with the kept checkpoint of {size} events (root {root.hex()}): "
            f"the bundle's events 1 … {size} are not the ones it signed; the log was forked or "
            "rewritten after one of the two was issued",
        )
        return
    if checkpoint.size > len(tree.leaves):
        return  # the events are truncated (named above): no proof to compute
    proof = tree.consistency_proof(size, checkpoint.size)
    if merkle.verify_consistency(size, checkpoint.size, proof, root, checkpoint.root_hash):
        report.notes.append(
            f"kept checkpoint of {size} events: signature verifies, and the consistency proof "
            f"to {checkpoint.size} events (from the bundle's events) verifies"
        )


def _check_export_event(
    checkpoint: note.Checkpoint,
    log: Log,
    tree: merkle.MerkleTree,
    raw_manifest: bytes | None,
    signed: bool,
    report: Report,
) -> None:
    size = checkpoint.size
    event = next((e for e in reversed(log.events) if e and e.get("seq") == size), None)
    if event is None or event.get("action") != fmt.EXPORT_ACTION:
        report.fail(
            fmt.EVENTS,
            f"event {size}, the last the checkpoint covers, is not this bundle's "
            f"{fmt.EXPORT_ACTION} event: the manifest cannot be tied to the log",
        )
        return
    payload = event.get("payload")
    recorded = payload.get("manifest_sha256") if isinstance(payload, dict) else None
    if raw_manifest is not None and fmt.sha256(raw_manifest) != recorded:
        report.fail(
            fmt.MANIFEST,
            f"its sha256 {fmt.sha256(raw_manifest)} is not {recorded}, the one the "
            f"{fmt.EXPORT_ACTION} event (event {size}) records: the manifest was changed",
        )
    elif raw_manifest is not None and signed:
        proof = tree.inclusion_proof(size - 1, size)
        leaf = log.leaves[size - 1]
        if merkle.verify_inclusion(leaf, size - 1, size, proof, checkpoint.root_hash):
            report.notes.append(f"{fmt.MANIFEST}: its sha256 is recorded by event {size}, signed")


def render(report: Report) -> tuple[list[str], list[str]]:
    """The verdict as lines for standard output and standard error."""
    return [f"ok: {n}" for n in report.notes], [f"MISMATCH {p}" for p in report.problems]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m registry.audit.verify export",
        description="Verify an export bundle offline against a checkpoint you kept.",
    )
    parser.add_argument("directory", type=Path, help="the bundle (flask export DIR)")
    parser.add_argument("--kept", type=Path, help="an older checkpoint note you kept")
    parser.add_argument("--key", type=Path, help="the log's key (default: the bundle's)")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        print(f"cannot read the input: {args.directory} is not a directory", file=sys.stderr)
        return 2
    try:
        kept = args.kept.read_text(encoding="utf-8") if args.kept else None
        key = args.key.read_text(encoding="utf-8") if args.key else None
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read the input: {exc}", file=sys.stderr)
        return 2
    report = verify_bundle(args.directory, kept=kept, key=key)
    out, err = render(report)
    for line in out:
        print(line)
    for line in err:
        print(line, file=sys.stderr)
    return 0 if report.ok else 1
