"""Reading a bank-statement file: CSV rows into receipts, all or nothing, and their
fingerprints (registry.clearing.bank imports them).

**The file** (``POST /api/v1/bank-statements``, multipart field ``file``): CSV, UTF-8 with or
without a byte-order mark, a header row naming the columns (any order; unknown or repeated
columns are an error), then one receipt per row — see ``samples/bank-statement-sample.csv``:

================ ======== =================================================================
column           required value
================ ======== =================================================================
``date``         yes      value date, ``YYYY-MM-DD``, not after today
``amount``       yes      the amount received in CNY, ``1234.50`` or ``1,234.50`` (positive:
                          export receipts only — debits such as payouts are no payments)
``reference``    yes      the payment reference (附言) as the bank shows it; may be empty
``counterparty`` no       the payer's name or account
================ ======== =================================================================

All or nothing: a file with any malformed row changes nothing and answers 422 naming every bad
row and column (``rows.<row>.<column>``, rows numbered as a spreadsheet shows them, header 1).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Final

from registry.core.errors import FieldError, ValidationFailed
from registry.core.money import MoneyError, parse_money, to_fen

COLUMNS: Final = ("date", "amount", "reference", "counterparty")
REQUIRED: Final = frozenset({"date", "amount", "reference"})
MAX_ROWS: Final = 20_000
GROUPED: Final = re.compile(r"\d{1,3}(,\d{3})+(\.\d{1,2})?")


@dataclass(frozen=True)
class Receipt:
    line: int
    value_date: date
    amount: int
    reference: str
    counterparty: str | None


def _file_error(message: str) -> ValidationFailed:
    return ValidationFailed(message, [FieldError.of("file", message)])


def read_receipts(data: bytes, today: date) -> list[Receipt]:
    """The file's receipts; 422 for an unreadable file or any malformed row (module doc)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(f"the CSV is not UTF-8 (byte {exc.start})") from None
    if "\x00" in text:
        raise _file_error("the file contains NUL characters: not a text file")
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise _file_error(f"unreadable CSV: {exc}") from None
    if not records:
        raise _file_error("the file is empty")
    if len(records) > MAX_ROWS + 1:
        raise _file_error(f"at most {MAX_ROWS} rows per file")
    header = [name.strip().lower() for name in records[0]]
    unknown = [name for name in header if name not in COLUMNS]
    repeated = sorted({name for name in header if header.count(name) > 1})
    missing = sorted(REQUIRED - set(header))
    problems = (
        ([f"unknown columns: {', '.join(unknown)}"] if unknown else [])
        + ([f"repeated columns: {', '.join(repeated)}"] if repeated else [])
        + ([f"missing columns: {', '.join(missing)}"] if missing else [])
    )
    if problems:
        raise _file_error("; ".join(problems) + f" (columns: {', '.join(COLUMNS)})")
    receipts: list[Receipt] = []
    errors: list[FieldError] = []
    for line, values in enumerate(records[1:], start=2):
        if not any(value.strip() for value in values):
            continue
        if len(values) > len(header):
            errors.append(FieldError.of(f"rows.{line}", "more values than columns"))
            continue
        row = {name: value.strip() for name, value in zip(header, values, strict=False)}
        receipt = _receipt(row, line, today, errors)
        if receipt is not None:
            receipts.append(receipt)
    if errors:
        bad = len({error.field.split(".")[1] for error in errors})
        raise ValidationFailed(f"{bad} rows have errors; nothing was imported", errors)
    if not receipts:
        raise _file_error("the file has a header but no receipts")
    return receipts


def _receipt(
    row: dict[str, str], line: int, today: date, errors: list[FieldError]
) -> Receipt | None:
    found = len(errors)
    value_date: date | None = None
    try:
        value_date = date.fromisoformat(row.get("date", ""))
        if len(row["date"]) != 10:
            raise ValueError
        if value_date > today:
            errors.append(FieldError.of(f"rows.{line}.date", f"is after today ({today})"))
    except ValueError:
        errors.append(FieldError.of(f"rows.{line}.date", "a date as YYYY-MM-DD"))
    amount = 0
    try:
        text = row.get("amount", "")
        if GROUPED.fullmatch(text):  # "10,000.00": thousands separators as banks print them
            text = text.replace(",", "")
        amount = to_fen(parse_money(text))
        if amount == 0:
            errors.append(FieldError.of(f"rows.{line}.amount", "must be positive"))
    except MoneyError as exc:
        errors.append(FieldError.of(f"rows.{line}.amount", str(exc)))
    reference = row.get("reference", "")
    if len(reference) > 1000:
        errors.append(FieldError.of(f"rows.{line}.reference", "at most 1000 characters"))
    counterparty = row.get("counterparty") or None
    if counterparty is not None and len(counterparty) > 300:
        errors.append(FieldError.of(f"rows.{line}.counterparty", "at most 300 characters"))
    if len(errors) > found or value_date is None:
        return None
    return Receipt(line, value_date, amount, reference, counterparty)


def fingerprints(receipts: list[Receipt]) -> list[str]:
    """Each receipt's fingerprint: its content and its occurrence among equal receipts."""
    seen: Counter[tuple[str, int, str, str]] = Counter()
    result = []
    for receipt in receipts:
        key = (
            receipt.value_date.isoformat(),
            receipt.amount,
            receipt.reference,
            receipt.counterparty or "",
        )
        seen[key] += 1
        text = "\x1f".join([*map(str, key), str(seen[key])])
        result.append(hashlib.sha256(text.encode("utf-8")).hexdigest())
    return result
