"""Bulk import of patents from CSV or XLSX, through the same services as the API.

All or nothing: every row is checked by the rules of the API before anything is saved, so the
report names every bad row and column at once, and a file with any error changes nothing. Rows
are numbered as a spreadsheet shows them: the header is row 1, the first patent row 2 (blank rows
count too).

Columns (header names exactly; order free; unknown or repeated columns are an error):
``application_number, patent_type, title, title_en, abstract, ipc, filing_date, grant_date,
legal_status, annual_fees_paid_through, evaluation_report_number, evaluation_report_date,
evaluation_report_conclusion, owners, inventors``. ``ipc`` separates codes with ``;``;
``owners`` lists ``USCC:title_share:income_share[:basis[:clause_set]]`` separated by ``;``
(default: the importing TTO's organisation alone; an admin must fill it); ``inventors`` lists
``name:share`` separated by ``;``. Full-width ``；`` and ``：`` are read as ``;`` and ``:``.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import marshmallow as ma
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation
from registry.audit.services import batch as audit_batch
from registry.core.actor import Actor
from registry.core.errors import Duplicate, FieldError, RegistryError, ValidationFailed
from registry.core.http import flatten_messages
from registry.core.identifiers import IdentifierError, validate_uscc
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
PATENT_COLUMNS = COLUMNS[:13]
REQUIRED = frozenset({"application_number", "patent_type", "title", "filing_date"})
MAX_ROWS = 50_000
REPORT_FIELDS = {
    "number": "evaluation_report_number",
    "date": "evaluation_report_date",
    "conclusion": "evaluation_report_conclusion",
}
FULL_WIDTH = str.maketrans({"；": ";", "：": ":"})
# Loaded once: marshmallow schemas are reusable, and building one per row is a real cost.
PATENT_SCHEMA = schemas.PatentCreateSchema()
OWNERSHIP_SCHEMA = schemas.OwnershipSchema()
INVENTORS_SCHEMA = schemas.InventorsSchema()
Progress = Callable[[str, int], object]


class Row(dict[str, str]):
    """One data row, column → stripped text, knowing its spreadsheet row number."""

    def __init__(self, values: Mapping[str, str], line: int) -> None:
        super().__init__(values)
        self.line = line


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


def read_rows(filename: str, stream: IO[bytes]) -> list[Row]:
    """The file's non-blank data rows; refuses unreadable files, unknown, repeated or missing
    header columns and files without a patent row (422 naming ``file``)."""
    data = stream.read()
    if not data:
        raise _file_error("the file is empty")
    if filename.lower().endswith(".xlsx") or data[:4] == b"PK\x03\x04":
        records = _xlsx_records(data)
    else:
        records = _csv_records(data)
    header = [(name or "").strip() for name in records[0]]
    unknown = [name for name in header if name and name not in COLUMNS]
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    missing = sorted(REQUIRED - set(header))
    problems = (
        ([f"unknown columns: {', '.join(unknown)}"] if unknown else [])
        + ([f"repeated columns: {', '.join(repeated)}"] if repeated else [])
        + ([f"missing columns: {', '.join(missing)}"] if missing else [])
    )
    if problems:
        raise _file_error("; ".join(problems) + f" (columns: {', '.join(COLUMNS)})")
    rows = []
    for line, values in enumerate(records[1:], start=2):
        row = {name: value.strip() for name, value in zip(header, values, strict=False) if name}
        if any("\x00" in value for value in row.values()):  # no database column can hold it
            raise _file_error(f"row {line} contains NUL characters: not a text file")
        if any(row.values()):
            rows.append(Row(row, line))
    if not rows:
        raise _file_error("the file has a header but no patent rows")
    return rows


def _check_size(count: int) -> None:
    if count > MAX_ROWS + 1:
        raise _file_error(f"at most {MAX_ROWS} rows per file")


def _csv_records(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")  # Excel writes a BOM; accept it
    except UnicodeDecodeError as exc:
        raise _file_error(
            f"the CSV is not UTF-8 (byte {exc.start}); save it as 'CSV UTF-8'"
        ) from None
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for record in reader:
            records.append(record)
            _check_size(len(records))
    except csv.Error as exc:
        raise _file_error(f"unreadable CSV at row {len(records) + 1}: {exc}") from None
    if not records:
        raise _file_error("the file is empty")
    return records


def _xlsx_records(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    records: list[list[str]] = []
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            for values in workbook.worksheets[0].iter_rows(values_only=True):
                records.append([_cell(v) for v in values])
                _check_size(len(records))
        finally:
            workbook.close()
    except ValidationFailed:
        raise
    except Exception as exc:  # openpyxl reports a damaged file with many exception types
        raise _file_error(f"not a readable XLSX workbook ({type(exc).__name__}: {exc})") from None
    if not records:
        raise _file_error("the workbook is empty")
    return records


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "date") and callable(value.date):  # Excel date cells come as datetime
        return str(value.date().isoformat())
    return str(value)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.translate(FULL_WIDTH).split(";") if part.strip()]


def _row_payload(row: Mapping[str, str]) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    report = {}
    for name in PATENT_COLUMNS:
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
    if head in ("owners", "owner_organisation_id", "beneficiaries", "decision_rules"):
        return "owners"
    return head if head in COLUMNS else "_row"


Problems = list[tuple[str, str]]


class _RowErrors(Exception):
    def __init__(self, errors: Problems) -> None:
        self.errors = errors


class _Context:
    """What rows share: organisations by USCC, the numbers seen so far in the file."""

    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor
        self.by_uscc: dict[str, uuid.UUID | None] = {}
        self.first_line: dict[str, int] = {}
        self.organisations = services.Organisations(session)

    def organisation(self, uscc: str) -> uuid.UUID | None:
        if uscc not in self.by_uscc:
            self.by_uscc[uscc] = self.session.scalar(
                select(Organisation.id).where(Organisation.uscc == uscc)
            )
        return self.by_uscc[uscc]


def _owners(value: str, context: _Context, problems: Problems) -> list[dict[str, Any]]:
    owners = []
    for part in _split(value):
        bits = [b.strip() for b in part.split(":")]
        if not 3 <= len(bits) <= 5:
            problems.append(
                ("owners", f"{part!r}: write USCC:title_share:income_share[:basis[:clause_set]]")
            )
            continue
        try:
            uscc = validate_uscc(bits[0])
        except IdentifierError as exc:
            problems.append(("owners", f"{bits[0]}: {exc}"))
            continue
        org_id = context.organisation(uscc)
        if org_id is None:
            problems.append(("owners", f"no registered organisation has USCC {uscc}"))
            continue
        owner = {"organisation_id": str(org_id), "title_share": bits[1], "income_share": bits[2]}
        owner |= dict(zip(("basis", "clause_set"), bits[3:], strict=False))
        owners.append(owner)
    return owners


def _inventors(value: str, problems: Problems) -> list[dict[str, Any]]:
    inventors = []
    for part in _split(value):
        name, sep, share = part.rpartition(":")
        if not sep or not name.strip():
            problems.append(("inventors", f"{part!r}: write name:share"))
            continue
        inventors.append({"name": name.strip(), "share": share.strip()})
    return inventors


def _load(
    schema: ma.Schema, payload: dict[str, Any], problems: Problems
) -> tuple[dict[str, Any], bool]:
    """The loaded payload and True; or the part that loaded and False, the rest's errors
    added to ``problems``."""
    try:
        loaded: dict[str, Any] = schema.load(payload)
    except ma.ValidationError as exc:
        problems += [
            (_column_of(e.field), "; ".join(e.messages)) for e in flatten_messages(exc.messages)
        ]
        return (exc.valid_data if isinstance(exc.valid_data, dict) else {}), False
    return loaded, True


def _ownership(
    row: Mapping[str, str], context: _Context, problems: Problems
) -> dict[str, Any] | None:
    """The ``owners`` cell as :func:`services.set_ownership` takes it; None if empty or bad."""
    if not row.get("owners"):
        if context.actor.is_admin:
            problems.append(("owners", "name the owners: an admin imports for others"))
        return None
    found: Problems = []
    owners = _owners(row["owners"], context, found)
    if not owners and not found:
        found.append(("owners", "no owner given"))
    if found:
        problems += found
        return None
    ownership, ok = _load(OWNERSHIP_SCHEMA, {"owners": owners}, problems)
    return ownership if ok else None


def _inventor_list(row: Mapping[str, str], problems: Problems) -> list[dict[str, Any]] | None:
    """The ``inventors`` cell as :func:`services.set_inventors` takes it; None if empty or bad."""
    if not row.get("inventors"):
        return None
    found: Problems = []
    entries = _inventors(row["inventors"], found)
    if not entries and not found:
        found.append(("inventors", "no inventor given"))
    if found:
        problems += found
        return None
    loaded, ok = _load(INVENTORS_SCHEMA, {"inventors": entries}, problems)
    return loaded["inventors"] if ok else None


def _check_row(row: Mapping[str, str], line: int, context: _Context) -> services.NewPatent:
    """The row's registration checked by every rule of the API; :class:`_RowErrors` if not."""
    problems: Problems = []
    patent_data, _ = _load(PATENT_SCHEMA, _row_payload(row), problems)
    number = patent_data.get("application_number")
    if number:
        first = context.first_line.setdefault(number, line)
        if first != line:
            problems.append(("application_number", f"{number} is also on row {first}"))
    ownership = _ownership(row, context, problems)
    inventors = _inventor_list(row, problems)
    if problems:  # still check the owners and inventors that loaded, so the report is complete
        holders = services.holder_errors(context.organisations, context.actor, ownership, inventors)
        problems += [(_column_of(e.field), "; ".join(e.messages)) for e in holders]
        raise _RowErrors(problems)
    try:
        return services.check_new_patent(
            context.session,
            actor=context.actor,
            data=patent_data,
            ownership=ownership,
            inventors=inventors,
            organisations=context.organisations,
        )
    except RegistryError as exc:
        errors = [(_column_of(e.field), "; ".join(e.messages)) for e in exc.errors]
        raise _RowErrors(errors or [("_row", exc.message)]) from None


def import_rows(
    session: Session,
    *,
    actor: Actor,
    rows: Sequence[Mapping[str, str]],
    dry_run: bool,
    progress: Progress | None = None,
) -> ImportReport:
    """Register every row's patent, or none: raise :class:`ValidationFailed` listing each bad
    row's errors (field ``rows.<row>.<column>``), having changed nothing.

    ``rows`` are :class:`Row` objects from :func:`read_rows` (or plain mappings, numbered
    from 2 in order). Every row is first checked by :func:`services.check_new_patent` — the
    rules of the API, owners and inventors included — and against the registered numbers and
    the file's other rows; only if all pass (and not ``dry_run``) are the patents added, in
    one flush, each recorded by its ``patent.created`` audit event. ``progress`` is called
    with ``("checking", 1)`` per row checked, then ``("saving", 1)`` per patent saved.
    """
    services.require_registrar(actor)
    report = ImportReport(dry_run=dry_run, rows=len(rows))
    context = _Context(session, actor)
    checked: list[tuple[int, services.NewPatent]] = []
    for index, row in enumerate(rows):
        line = getattr(row, "line", index + 2)
        try:
            checked.append((line, _check_row(row, line, context)))
        except _RowErrors as exc:
            report.errors += _dedupe(
                FieldError.of(f"rows.{line}.{col}", msg) for col, msg in exc.errors
            )
        if progress:
            progress("checking", 1)
    registered = services.registered_numbers(
        session, (new.application_number for _, new in checked)
    )
    report.errors += [
        FieldError.of(f"rows.{line}.application_number", "already registered")
        for line, new in checked
        if new.application_number in registered
    ]
    if report.errors:
        report.errors.sort(key=lambda e: int(e.field.split(".")[1]))
        bad_rows = len({e.field.split(".")[1] for e in report.errors})
        raise ValidationFailed(
            f"{bad_rows} of {len(rows)} rows have errors; nothing was imported",
            report.errors,
        )
    if not dry_run:
        report.patent_ids = _save(session, actor, [new for _, new in checked], progress)
    return report


def _save(
    session: Session,
    actor: Actor,
    checked: list[services.NewPatent],
    progress: Progress | None,
) -> list[uuid.UUID]:
    stamp = services.now()
    patents = [services.add_new_patent(session, new, stamp) for new in checked]
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a concurrent registration took one of the numbers meanwhile
        raise Duplicate(
            "an application number in the file was registered meanwhile; nothing was imported",
            [FieldError.of("file", "an application number was registered meanwhile")],
        ) from None
    # One lock of the audit head and one batched INSERT for all the file's events.
    with audit_batch(session):
        for patent, new in zip(patents, checked, strict=True):
            services.record_new_patent(session, actor=actor, patent=patent, new=new)
            if progress:
                progress("saving", 1)
    return [patent.id for patent in patents]


def _dedupe(errors: Iterable[FieldError]) -> list[FieldError]:
    return list(dict.fromkeys(errors))


def import_file(
    session: Session,
    *,
    actor: Actor,
    filename: str,
    stream: IO[bytes],
    dry_run: bool,
    progress: Progress | None = None,
) -> ImportReport:
    """Read and import one uploaded file (see the module docstring for its columns)."""
    services.require_registrar(actor)
    rows = read_rows(filename, stream)
    return import_rows(session, actor=actor, rows=rows, dry_run=dry_run, progress=progress)
