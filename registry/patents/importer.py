"""Bulk import of patents from CSV or XLSX, through the same services as the API.

All or nothing: every row is validated (and, inside a savepoint, applied) so the report names
every bad row and column at once; any error rolls the whole file back. Rows are numbered as a
spreadsheet shows them: the header is row 1, the first patent row 2.

Columns (header names exactly; order free; unknown columns are an error):
``application_number, patent_type, title, title_en, abstract, ipc, filing_date, grant_date,
legal_status, annual_fees_paid_through, evaluation_report_number, evaluation_report_date,
evaluation_report_conclusion, owners, inventors``. ``ipc`` separates codes with ``;``;
``owners`` lists ``USCC:title_share:income_share[:basis]`` separated by ``;`` (default: the
importing TTO's organisation alone); ``inventors`` lists ``name:share`` separated by ``;``.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import marshmallow as ma
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation
from registry.core.actor import Actor
from registry.core.errors import FieldError, RegistryError, ValidationFailed
from registry.core.http import flatten_messages
from registry.patents import schemas, services

COLUMNS = (
    "application_number",
    "patent_type",
    "title",
    "title_en",
    "abstract",
    "ipc",
    "filing_date",
    "grant_date",
    "legal_status",
    "annual_fees_paid_through",
    "evaluation_report_number",
    "evaluation_report_date",
    "evaluation_report_conclusion",
    "owners",
    "inventors",
)
REQUIRED = frozenset({"application_number", "patent_type", "title", "filing_date"})
MAX_ROWS = 50_000
REPORT_FIELDS = {
    "number": "evaluation_report_number",
    "date": "evaluation_report_date",
    "conclusion": "evaluation_report_conclusion",
}
Progress = Callable[[int], object]


@dataclass
class ImportReport:
    dry_run: bool
    rows: int = 0
    patent_ids: list[uuid.UUID] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "rows": self.rows,
            "created": 0 if self.dry_run else len(self.patent_ids),
            "patent_ids": [] if self.dry_run else self.patent_ids,
        }


def _file_error(message: str) -> ValidationFailed:
    return ValidationFailed(message, [FieldError.of("file", message)])


def read_rows(filename: str, stream: IO[bytes]) -> list[dict[str, str]]:
    """Rows as dicts of stripped strings; refuses unknown or missing header columns."""
    data = stream.read()
    if filename.lower().endswith(".xlsx") or data[:4] == b"PK\x03\x04":
        header, rows = _xlsx_rows(data)
    else:
        header, rows = _csv_rows(data)
    header = [(name or "").strip() for name in header]
    unknown = [name for name in header if name and name not in COLUMNS]
    missing = sorted(REQUIRED - set(header))
    if unknown or missing:
        problems = ([f"unknown columns: {', '.join(unknown)}"] if unknown else []) + (
            [f"missing columns: {', '.join(missing)}"] if missing else []
        )
        raise _file_error("; ".join(problems) + f" (columns: {', '.join(COLUMNS)})")
    out = []
    for values in rows:
        row = {
            name: (value or "").strip() for name, value in zip(header, values, strict=False) if name
        }
        if any(row.values()):
            out.append(row)
        if len(out) > MAX_ROWS:
            raise _file_error(f"at most {MAX_ROWS} rows per file")
    return out


def _csv_rows(data: bytes) -> tuple[list[str], Iterator[list[str]]]:
    try:
        text = data.decode("utf-8-sig")  # Excel writes a BOM; accept it
    except UnicodeDecodeError as exc:
        raise _file_error(
            f"the CSV is not UTF-8 (byte {exc.start}); save it as 'CSV UTF-8'"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise _file_error("the file is empty") from None
    return header, reader


def _xlsx_rows(data: bytes) -> tuple[list[str], Iterator[list[str]]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as exc:
        raise _file_error(f"not a readable XLSX workbook: {exc}") from None
    rows = workbook.worksheets[0].iter_rows(values_only=True)
    try:
        header = [str(v) if v is not None else "" for v in next(rows)]
    except StopIteration:
        raise _file_error("the workbook is empty") from None
    return header, ([_cell(v) for v in row] for row in rows)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "date") and callable(value.date):  # Excel date cells come as datetime
        return str(value.date().isoformat())
    return str(value)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def _row_payload(row: dict[str, str]) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    report = {}
    for name in COLUMNS[:13]:
        value = row.get(name, "")
        if not value:
            continue
        if name == "ipc":
            payload["ipc"] = _split(value)
        elif name.startswith("evaluation_report_"):
            report[name.removeprefix("evaluation_report_")] = value
        else:
            payload[name] = value
    if report:
        payload["evaluation_report"] = report
    return payload


def _column_of(field_path: str) -> str:
    head, _, rest = field_path.partition(".")
    if head == "evaluation_report":
        return REPORT_FIELDS.get(rest.split(".")[0], "evaluation_report_number")
    if head in ("owners", "owner_organisation_id", "beneficiaries"):
        return "owners"
    return head if head in COLUMNS else "_row"


class _RowErrors(Exception):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors


class _Lookups:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.by_uscc: dict[str, uuid.UUID | None] = {}

    def organisation(self, uscc: str) -> uuid.UUID | None:
        if uscc not in self.by_uscc:
            self.by_uscc[uscc] = self.session.scalar(
                select(Organisation.id).where(Organisation.uscc == uscc.upper())
            )
        return self.by_uscc[uscc]


def _owners(value: str, lookups: _Lookups) -> list[dict[str, Any]]:
    owners = []
    for part in _split(value):
        bits = [b.strip() for b in part.split(":")]
        if len(bits) not in (3, 4):
            raise _RowErrors([("owners", f"{part!r}: write USCC:title_share:income_share")])
        org_id = lookups.organisation(bits[0])
        if org_id is None:
            raise _RowErrors([("owners", f"no registered organisation has USCC {bits[0]}")])
        owner = {"organisation_id": str(org_id), "title_share": bits[1], "income_share": bits[2]}
        if len(bits) == 4:
            owner["basis"] = bits[3]
        owners.append(owner)
    return owners


def _inventors(value: str) -> list[dict[str, Any]]:
    inventors = []
    for part in _split(value):
        name, sep, share = part.rpartition(":")
        if not sep or not name.strip():
            raise _RowErrors([("inventors", f"{part!r}: write name:share")])
        inventors.append({"name": name.strip(), "share": share.strip()})
    return inventors


def _load(schema: ma.Schema, payload: dict[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(payload)
    except ma.ValidationError as exc:
        raise _RowErrors(
            [(_column_of(e.field), "; ".join(e.messages)) for e in flatten_messages(exc.messages)]
        ) from None
    return loaded


def _import_row(
    session: Session, actor: Actor, row: dict[str, str], lookups: _Lookups
) -> uuid.UUID:
    patent_data = _load(schemas.PatentCreateSchema(), _row_payload(row))
    ownership = (
        _load(schemas.OwnershipSchema(), {"owners": _owners(row["owners"], lookups)})
        if row.get("owners")
        else None
    )
    inventors = (
        _load(schemas.InventorsSchema(), {"inventors": _inventors(row["inventors"])})
        if row.get("inventors")
        else None
    )
    if ownership and actor.is_admin:
        patent_data["owner_organisation_id"] = ownership["owners"][0]["organisation_id"]
    try:
        patent = services.create_patent(session, actor=actor, data=patent_data)
        if ownership:
            services.set_ownership(session, actor=actor, patent_id=patent.id, data=ownership)
        if inventors:
            services.set_inventors(
                session, actor=actor, patent_id=patent.id, inventors=inventors["inventors"]
            )
    except RegistryError as exc:
        errors = [(_column_of(e.field), "; ".join(e.messages)) for e in exc.errors]
        raise _RowErrors(errors or [("_row", exc.message)]) from None
    return patent.id


def import_rows(
    session: Session,
    *,
    actor: Actor,
    rows: list[dict[str, str]],
    dry_run: bool,
    progress: Progress | None = None,
) -> ImportReport:
    """Apply every row in one savepoint; raise :class:`ValidationFailed` listing each bad
    row's errors (field ``rows.<row>.<column>``), having changed nothing."""
    report = ImportReport(dry_run=dry_run, rows=len(rows))
    lookups = _Lookups(session)
    outer = session.begin_nested()
    for index, row in enumerate(rows):
        line = index + 2
        try:
            with session.begin_nested():
                report.patent_ids.append(_import_row(session, actor, row, lookups))
        except _RowErrors as exc:
            report.errors += [FieldError.of(f"rows.{line}.{col}", msg) for col, msg in exc.errors]
        if progress:
            progress(1)
    if report.errors or dry_run:
        outer.rollback()
    else:
        outer.commit()
    if report.errors:
        bad_rows = len({e.field.split(".")[1] for e in report.errors})
        raise ValidationFailed(
            f"{bad_rows} of {len(rows)} rows have errors; nothing was imported",
            report.errors,
        )
    return report


def import_file(
    session: Session,
    *,
    actor: Actor,
    filename: str,
    stream: IO[bytes],
    dry_run: bool,
    progress: Progress | None = None,
) -> ImportReport:
    services.require_registrar(actor)
    rows = read_rows(filename, stream)
    return import_rows(session, actor=actor, rows=rows, dry_run=dry_run, progress=progress)
