"""The README.txt of an export bundle: what is in it and how an auditor verifies it."""

from __future__ import annotations

from registry.audit import export_format as fmt
from registry.exports.registers import REGISTERS


def readme(origin: str) -> str:
    names = ", ".join(REGISTERS)
    return f"""Open Licence Registry — export bundle of the log {origin}
开放许可登记系统 — 导出包

What is here
  {fmt.EVENTS}  every audit event up to this export, one JSON object a line
  {fmt.REGISTERS}/*.csv       the registers ({names}); UTF-8 with BOM,
                        a header row, money as 1234.50, times in UTC
  {fmt.CONTRACTS}/*.pdf       every signed contract, named by its licence number
  {fmt.MANIFEST}         the SHA-256 of every file, and of every register row with its key
  {fmt.CHECKPOINT}        the log's signed checkpoint (C2SP signed note) covering the
                        {fmt.EXPORT_ACTION} event that records the manifest's SHA-256
  {fmt.KEY}    the key that signed it, as a verifier key

How to verify (standard library and the `cryptography` package only; no database):

  python -m registry.audit.verify export THIS_DIRECTORY \\
      --kept A_CHECKPOINT_YOU_KEPT.txt --key THE_LOG_KEY_YOU_HOLD.txt

It recomputes every event's leaf hash and the RFC 6962 root, checks the checkpoint's
signature, that the log still extends the checkpoint you kept earlier (fetch one from
GET /api/v1/audit/checkpoints/latest and keep it), every file and register row against the
manifest, and every contract against the signed SHA-256 its contract.issued event records.
It names every item that does not match and exits non-zero.

The key in {fmt.KEY} proves nothing by itself: anyone rewriting this bundle would
sign it with a key of their own. Compare it with the key you obtained from the registry
(GET /api/v1/audit/checkpoint-key) or pass that key with --key.
"""
