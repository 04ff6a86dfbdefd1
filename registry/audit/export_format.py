"""The layout of an export bundle, shared by the registry that writes it and the offline verifier
that reads it (so standard library only, like :mod:`registry.audit.verify`).

A bundle (``flask --app wsgi export DIR``) is one directory::

    README.txt              what the bundle is and how to verify it
    audit-events.jsonl      every audit event the checkpoint covers, one JSON object a line
    registers/<name>.csv    the registers (UTF-8 with BOM, a header row, money as "1234.50")
    contracts/<licence>.pdf every issued contract, as signed, named by the licence number
    manifest.json           each file's SHA-256; each register row's key and SHA-256
    checkpoint.txt          the log's signed checkpoint, covering the export.created event
    checkpoint-key.txt      the checkpoint key as a verifier key (compare it with yours)

The chain of trust: the signed checkpoint fixes the Merkle root of the events; the events fix
each contract's signed SHA-256 (``contract.issued``) and the manifest's SHA-256
(``export.created``, the last event covered); the manifest fixes every other file and row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Sequence
from typing import Any, Final

FORMAT: Final = "open-licence-registry-export/1"
README: Final = "README.txt"
EVENTS: Final = "audit-events.jsonl"
MANIFEST: Final = "manifest.json"
CHECKPOINT: Final = "checkpoint.txt"
KEY: Final = "checkpoint-key.txt"
REGISTERS: Final = "registers"
CONTRACTS: Final = "contracts"
# Files the manifest cannot list: it is hashed into the export event, the events and the
# checkpoint are verified through the Merkle tree, and the key is the auditor's to check.
UNLISTED: Final = frozenset({MANIFEST, EVENTS, CHECKPOINT, KEY})

EXPORT_ACTION: Final = "export.created"
CONTRACT_ACTION: Final = "contract.issued"
# Licence numbers (OL-2026-000123) name contract files; anything else is refused as a name.
SAFE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

BOM: Final = "\ufeff"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def row_hash(cells: Sequence[str]) -> str:
    """SHA-256 of a register row: the JSON array of its cells as text, compact, UTF-8.

    Hashing the parsed cells (not the CSV bytes) makes the hash independent of quoting and
    line ends, so any CSV reader gets the same cells and the same hash.
    """
    text = json.dumps(list(cells), ensure_ascii=False, separators=(",", ":"))
    return sha256(text.encode("utf-8"))


def write_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    """RFC 4180 CSV (CRLF line ends), UTF-8 with a byte-order mark so spreadsheets show the
    Chinese."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return (BOM + buffer.getvalue()).encode("utf-8")


def read_csv(data: bytes) -> list[list[str]]:
    """The rows of a register file, header first (raises ``UnicodeDecodeError`` or
    ``csv.Error`` on a file that is not one)."""
    text = data.decode("utf-8")
    if text.startswith(BOM):
        text = text[len(BOM) :]
    return [list(row) for row in csv.reader(io.StringIO(text, newline=""), strict=True)]


def event_line(event: dict[str, Any]) -> str:
    """One line of ``audit-events.jsonl``: the fields the leaf hash is computed from (``time``
    in UTC with microseconds and ``Z``), then the hashes the registry stored."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
