"""Render a licence's contract: the template version, its context and the attached terms.

The unsigned PDF depends only on the arguments (registry.core.pdf is deterministic), so the
stored template key and version, the licence's terms snapshot and the context data give the
same bytes again: ``contracts rerender`` can recompute the recorded hash.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Final

from registry.core.canonical import canonical_json
from registry.core.pdf import TEMPLATES_ROOT, EmbeddedFile, RenderError, TemplateInfo, render_pdf
from registry.offers.terms import terms_sha256

TEMPLATE_KEY: Final = "open_licence"
TEMPLATE_VERSION: Final = "1.0"
TERMS_FILE: Final = "terms.json"


def terms_attachment(context: dict[str, Any], terms: dict[str, Any], info: TemplateInfo) -> bytes:
    """The machine-readable terms inside the PDF: the snapshot and what identifies it."""
    return canonical_json(
        {
            "licence_reference": context["contract"]["number"],
            "terms_sha256": context["contract"]["terms_sha256"],
            "terms": terms,
            "template": {"key": info.key, "version": info.version},
        }
    ).encode("utf-8")


def render_contract(
    context: dict[str, Any],
    *,
    terms: dict[str, Any],
    document_dt: datetime,
    key: str = TEMPLATE_KEY,
    version: str = TEMPLATE_VERSION,
    root: Path = TEMPLATES_ROOT,
) -> bytes:
    """The unsigned contract PDF (PDF/A-3b with ``terms.json`` attached).

    ``terms`` must be the snapshot whose SHA-256 the context states, so the attached JSON and
    the printed hash can never disagree; ``document_dt`` is the licence's notice time."""
    stated = context["contract"]["terms_sha256"]
    if terms_sha256(terms) != stated:
        raise RenderError(f"the terms given do not hash to the licence's terms_sha256 {stated}")
    info = TemplateInfo.load(key, version, root=root)
    attachment = EmbeddedFile(
        name=TERMS_FILE,
        data=terms_attachment(context, terms, info),
        description="Licence terms (machine-readable) / 许可条件（机器可读）",
    )
    return render_pdf(info, context, document_dt=document_dt, attachments=[attachment], root=root)
