"""Render a licence's contract: the template version, its context and the attached terms.

The unsigned PDF depends only on the arguments (registry.core.pdf is deterministic), so the
stored template key and version, the licence's terms snapshot and the context data give the
same bytes again: ``contracts rerender`` can recompute the recorded hash.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import weasyprint

from registry.core.canonical import canonical_json
from registry.core.pdf import TEMPLATES_ROOT, EmbeddedFile, RenderError, TemplateInfo, render_pdf
from registry.offers.terms import terms_sha256

TEMPLATE_KEY: Final = "open_licence"
TEMPLATE_VERSION: Final = "1.0"
TERMS_FILE: Final = "terms.json"
# Folders every template version shares; their files are part of its content hash.
SHARED_FOLDERS: Final = ("_base", "_fonts")


def template_sha256(key: str, version: str, *, root: Path = TEMPLATES_ROOT) -> str:
    """SHA-256 over the files a template version renders with (its folder and the shared
    ones), by relative path: a contract records it so that a rerender that no longer matches
    can tell an edited template from a changed font or engine."""
    digest = hashlib.sha256()
    for folder in (f"{key}/{version}", *SHARED_FOLDERS):
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@functools.cache
def renderer_fingerprint(font_family: str) -> dict[str, str | None]:
    """The rendering engine's version and the font file's path and SHA-256: besides the
    template, the only inputs of the unsigned bytes that live outside the record."""
    font_file = _font_file(font_family)
    return {
        "weasyprint": weasyprint.__version__,
        "font_family": font_family,
        "font_file": str(font_file) if font_file else None,
        "font_sha256": hashlib.sha256(font_file.read_bytes()).hexdigest() if font_file else None,
    }


def _font_file(family: str) -> Path | None:
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    found = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
        [fc_match, "-f", "%{file}", family], capture_output=True, text=True, check=False
    ).stdout.strip()
    return Path(found) if found and Path(found).is_file() else None


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
