"""The file side of an export bundle's verification: the manifest, every file it lists, every
register row, and every contract against its ``contract.issued`` event
(:mod:`registry.audit.verify_export` runs them). Standard library only.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from registry.audit import export_format as fmt
from registry.audit import merkle, note
from registry.audit.verify import Report


@dataclass
class Log:
    """The events by position (leaf index); ``None`` for a line that is not an event."""

    leaves: list[bytes] = field(default_factory=list)
    events: list[dict[str, Any] | None] = field(default_factory=list)


class Bundle:
    """The bundle's files, read once, by relative path; paths are checked before any read."""

    def __init__(self, directory: Path, report: Report) -> None:
        self.directory = directory
        self.report = report
        self._read: dict[str, bytes | None] = {}

    def raw(self, relative: str, *, quiet: bool = False) -> bytes | None:
        if relative not in self._read:
            self._read[relative] = self._load(relative, quiet=quiet)
        return self._read[relative]

    def _load(self, relative: str, *, quiet: bool) -> bytes | None:
        parts = PurePosixPath(relative).parts
        if not 1 <= len(parts) <= 2 or not all(fmt.SAFE_NAME.fullmatch(p) for p in parts):
            self.report.fail(relative, "is not a file name a bundle uses (refused, not read)")
            return None
        try:
            return self.directory.joinpath(*parts).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            if not quiet:
                self.report.fail(relative, "is missing from the bundle")
        except OSError as exc:
            self.report.fail(relative, f"cannot be read: {exc}")
        return None

    def present(self) -> list[str]:
        return sorted(
            path.relative_to(self.directory).as_posix()
            for path in self.directory.rglob("*")
            if path.is_file()
        )


def parse_manifest(raw: bytes | None, report: Report) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        manifest = json.loads(raw.decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != fmt.FORMAT:
            raise ValueError(f"it is not a {fmt.FORMAT} manifest")
        if not isinstance(manifest.get("files"), dict):
            raise ValueError("it lists no files")
    except (UnicodeDecodeError, ValueError) as exc:
        report.fail(fmt.MANIFEST, f"cannot be read: {exc}")
        return None
    return manifest


def check_files(bundle: Bundle, manifest: dict[str, Any], report: Report) -> None:
    listed: dict[str, Any] = manifest["files"]
    for path, entry in sorted(listed.items()):
        data = bundle.raw(path)
        wanted = entry.get("sha256") if isinstance(entry, dict) else None
        if data is not None and fmt.sha256(data) != wanted:
            message = f"its sha256 {fmt.sha256(data)} is not the manifest's {wanted}"
            report.fail(path, f"{message}: the file was changed")
    for path in bundle.present():
        if path not in listed and path not in fmt.UNLISTED:
            report.fail(path, "is not in the manifest: the file was added")
    report.notes.append(f"{len(listed)} files listed in the manifest checked")


def check_registers(bundle: Bundle, manifest: dict[str, Any], report: Report) -> None:
    for name, spec in sorted((manifest.get("registers") or {}).items()):
        try:
            path, key_name, columns = str(spec["file"]), str(spec["key"]), list(spec["columns"])
            at = columns.index(key_name)
            expected = [(str(key), str(digest)) for key, digest in spec["rows"]]
        except (KeyError, TypeError, ValueError) as exc:
            report.fail(fmt.MANIFEST, f"its entry for the register {name} cannot be read: {exc}")
            continue
        data = bundle.raw(path, quiet=True)
        if data is None:
            continue
        try:
            rows = fmt.read_csv(data)
        except (UnicodeDecodeError, csv.Error) as exc:
            report.fail(path, f"cannot be read as CSV: {exc}")
            continue
        if not rows or rows[0] != columns:
            report.fail(path, f"its header is not the manifest's columns {columns}")
        by_key = {key: (number, digest) for number, (key, digest) in enumerate(expected, 1)}
        seen: set[str] = set()
        for number, cells in enumerate(rows[1:], start=1):
            key = cells[at] if at < len(cells) else ""
            where = f"{path} row {number} ({key_name} {key})"
            if key in by_key and key not in seen:
                seen.add(key)
                if fmt.row_hash(cells) != by_key[key][1]:
                    report.fail(where, "was changed: its hash is not the manifest's")
                continue
            message = "is not in the manifest"
            if number <= len(expected):
                message += f" (the manifest has {key_name} {expected[number - 1][0]} here)"
            report.fail(where, f"{message}: the row was changed or added")
        for key, (number, _) in by_key.items():
            if key not in seen:
                where = f"{path} row {number} ({key_name} {key})"
                report.fail(where, "is missing: the manifest lists it (removed or re-keyed)")
        report.notes.append(f"{name}: {len(expected)} rows in the manifest checked")


def check_contracts(
    bundle: Bundle,
    log: Log,
    tree: merkle.MerkleTree,
    checkpoint: note.Checkpoint,
    signed: bool,
    report: Report,
) -> None:
    issued: dict[str, tuple[int, str, int]] = {}  # file → (seq, signed sha256, leaf index)
    for index, event in enumerate(log.events):
        if event is None or event.get("action") != fmt.CONTRACT_ACTION:
            continue
        payload = event.get("payload")
        reference, digest = (
            (payload.get("reference"), payload.get("signed_sha256"))
            if isinstance(payload, dict)
            else (None, None)
        )
        named = isinstance(reference, str) and fmt.SAFE_NAME.fullmatch(reference)
        if not named or not isinstance(digest, str):
            message = "names no licence number and signed sha256"
            report.fail(f"{fmt.EVENTS} event {event['seq']}", f"a contract.issued event {message}")
            continue
        issued[f"{fmt.CONTRACTS}/{reference}.pdf"] = (event["seq"], digest, index)
    verified = 0
    for path, (seq, digest, index) in sorted(issued.items()):
        item = f"{path} (licence {PurePosixPath(path).stem})"
        data = bundle.raw(path, quiet=True)
        if data is None:
            report.fail(item, f"is missing: contract.issued event {seq} records it ({digest})")
            continue
        if fmt.sha256(data) != digest:
            message = f"its sha256 {fmt.sha256(data)} is not the signed sha256 {digest}"
            report.fail(item, f"{message} of contract.issued event {seq}: it was changed")
            continue
        size = checkpoint.size
        proof = tree.inclusion_proof(index, size) if index < size <= len(tree.leaves) else []
        if signed and merkle.verify_inclusion(
            log.leaves[index], index, size, proof, checkpoint.root_hash
        ):
            verified += 1
    for path in bundle.present():
        if path.startswith(f"{fmt.CONTRACTS}/") and path not in issued:
            report.fail(path, "no contract.issued event in the log records this contract")
    report.notes.append(
        f"{verified} of {len(issued)} contracts: sha256 as signed, and their contract.issued "
        "event proved included in the signed tree"
    )
