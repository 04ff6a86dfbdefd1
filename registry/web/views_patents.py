"""A TTO's portfolio: its patents, a patent's page, and the bulk import.

Each page calls the service its API endpoint calls: the list ``visible_patents`` (an
organisation's own patents for its TTO, all for admins and auditors, 403 for licensees), the
patent ``get_patent`` (404 outside the caller's view, never an existence oracle), and the
import ``importer.import_file``, all or nothing as through ``POST /api/v1/patents/import``:
any bad row refuses the whole file, and the page lists every bad row's errors (row number as a
spreadsheet shows it, column, message). "Check only" is the API's ``dry_run=true``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_smorest.pagination import PaginationParameters
from werkzeug.datastructures import FileStorage

from registry.core.api import paginate
from registry.core.errors import RegistryError
from registry.core.http import get_session
from registry.patents import importer, services
from registry.web.blueprint import bp, login_required, render, signed_in
from registry.web.forms import Form
from registry.web.labels import translate
from registry.web.views_public import PAGE_SIZE, page_number, pages


@dataclass(frozen=True)
class RowError:
    """One line of the import's error report."""

    row: int | None  # the spreadsheet's row number; None for the file as a whole
    column: str
    message: str


def row_errors(error: RegistryError) -> list[RowError]:
    """The importer's field errors (``rows.<row>.<column>`` or ``file``) as report lines."""
    found = []
    for item in error.errors:
        parts = item.field.split(".", 2)
        message = " ".join(translate(m) for m in item.messages)
        if len(parts) == 3 and parts[0] == "rows" and parts[1].isdigit():
            found.append(RowError(int(parts[1]), parts[2], message))
        else:
            found.append(RowError(None, item.field, message))
    return found


@bp.get("/patents")
@login_required
def patents() -> Any:
    """The patents the user may see: a TTO's organisation's own (its portfolio)."""
    params = PaginationParameters(page_number(), PAGE_SIZE)
    statement = services.visible_patents(signed_in(), {})
    found = paginate(get_session(), statement, params)
    return render("patents.html", patents=found, paging=pages(params))


@bp.get("/patents/<uuid:patent_id>")
@login_required
def patent(patent_id: uuid.UUID) -> Any:
    found = services.get_patent(get_session(), actor=signed_in(), patent_id=patent_id)
    return render("patent.html", patent=found)


def _import_page(status: int, form: Form, **extra: Any) -> Any:
    context: dict[str, Any] = {"report": None, "errors": [], "dry_run": False}
    return render("patent_import.html", status, form=form, columns=importer.COLUMNS,
                  **(context | extra))  # fmt: skip


@bp.get("/patents/import")
@login_required
def patent_import_form() -> Any:
    services.require_registrar(signed_in())
    return _import_page(200, Form({}))


@bp.post("/patents/import")
@login_required
def patent_import() -> Any:
    actor = signed_in()
    services.require_registrar(actor)
    dry_run = request.form.get("dry_run") == "yes"
    form = Form({})
    upload: FileStorage | None = request.files.get("file")
    if upload is None or not upload.filename:
        form.add("file", _("Choose a CSV or XLSX file to import."))
        return _import_page(422, form, dry_run=dry_run)
    try:
        report = importer.import_file(
            get_session(),
            actor=actor,
            filename=upload.filename,
            stream=upload.stream,
            dry_run=dry_run,
        )
    except RegistryError as refused:
        if refused.status >= 500:
            raise
        errors = row_errors(refused)
        bad_rows = len({e.row for e in errors if e.row is not None})
        if bad_rows:
            form.problem = ngettext(
                "%(num)d row has errors; nothing was imported. "
                "Correct it and upload the file again.",
                "%(num)d rows have errors; nothing was imported. "
                "Correct them and upload the file again.",
                bad_rows,
            )
        for item in errors:
            if item.row is None:
                form.add("file", item.message)
        if not errors:
            form.problem = translate(refused.message)
        return _import_page(
            refused.status, form, errors=[e for e in errors if e.row is not None],
            dry_run=dry_run, filename=upload.filename,
        )  # fmt: skip
    if dry_run:
        return _import_page(200, form, report=report, dry_run=True, filename=upload.filename)
    flash(
        ngettext(
            "%(num)d patent imported from %(file)s.",
            "%(num)d patents imported from %(file)s.",
            len(report.patent_ids),
            file=upload.filename,
        )
    )
    return redirect(url_for("web.patents"), 303)
