"""PDF rendering of bundled templates: sandboxed, offline, CJK-safe, PDF/A-3b, deterministic.

STYLE.md §8: a ``SandboxedEnvironment`` with ``StrictUndefined`` (a missing field refuses to
render), templates and assets only from ``contract_templates/`` (the URL fetcher raises on
anything else, so a template can never reach the network or the file system), a CJK font that
must be installed (never a PDF with empty boxes) and fixed metadata: the same template and
context give byte-identical bytes, so a contract's hash can be recomputed years later.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import jinja2
import weasyprint
from jinja2.sandbox import SandboxedEnvironment
from weasyprint import HTML, Attachment
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

TEMPLATES_ROOT: Final = Path(__file__).resolve().parents[2] / "contract_templates"
PDF_VARIANT: Final = "pdf/a-3b"
#: The output intent is the sRGB profile bundled in ``_base/`` (named in ``_base/base.css``):
#: WeasyPrint's own "srgb" intent leaves its ICC file open (a ResourceWarning on every render).
OUTPUT_INTENT: Final = "--srgb"
CJK_FONT_PACKAGE: Final = "fonts-noto-cjk"
#: The only files a template may load, by suffix, with the type WeasyPrint is told.
ASSET_TYPES: Final = {
    ".css": "text/css",
    ".icc": "application/vnd.iccprofile",
    ".otf": "font/otf",
    ".ttf": "font/ttf",
    ".ttc": "font/collection",
    ".woff2": "font/woff2",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


class RenderError(Exception):
    """A document could not be rendered; ``str()`` says why."""


class MissingFont(RenderError):
    """The template's CJK font is not installed: the PDF would show empty boxes."""


class FetchRefused(RenderError):
    """A template asked for a resource outside the bundled templates."""


@dataclass(frozen=True)
class TemplateInfo:
    """``template.toml`` of one template version."""

    key: str
    version: str
    title_zh: str
    title_en: str
    languages: tuple[str, ...]
    font_family: str
    folder: str  # relative to the templates root, e.g. "open_licence/1.0"

    @classmethod
    def load(cls, key: str, version: str, *, root: Path = TEMPLATES_ROOT) -> TemplateInfo:
        folder = f"{key}/{version}"
        path = root / folder / "template.toml"
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError as error:
            raise RenderError(f"no template {key} version {version} in {root}") from error
        if data.get("key") != key or data.get("version") != version:
            raise RenderError(f"{path} names key/version {data.get('key')}/{data.get('version')}")
        return cls(
            key=key,
            version=version,
            title_zh=data["title"]["zh"],
            title_en=data["title"]["en"],
            languages=tuple(data["languages"]),
            font_family=data["font_family"],
            folder=folder,
        )


@dataclass(frozen=True)
class EmbeddedFile:
    """A file attached inside the PDF (PDF/A-3 associated file)."""

    name: str
    data: bytes
    description: str
    relationship: str = "Data"


class TemplateFetcher(URLFetcher):
    """Serves ``file:`` URLs inside the templates root, and raises on every other URL.

    WeasyPrint is told to fail on fetch errors, so a refused URL stops the render instead of
    leaving a silent hole in the document."""

    def __init__(self, root: Path = TEMPLATES_ROOT) -> None:
        super().__init__(fail_on_errors=True, allowed_protocols=("file",))
        self.root = root.resolve()

    def resolve(self, url: str) -> Path:
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise FetchRefused(f"only bundled template files may be loaded, not {url!r}")
        path = Path(url2pathname(unquote(parts.path))).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise FetchRefused(f"{url!r} is not a file inside {self.root}")
        if path.suffix.lower() not in ASSET_TYPES:
            raise FetchRefused(f"{url!r}: templates may load only {sorted(ASSET_TYPES)}")
        return path

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        path = self.resolve(url)
        return URLFetcherResponse(
            path.as_uri(),
            body=path.read_bytes(),
            headers={"Content-Type": ASSET_TYPES[path.suffix.lower()]},
        )


@functools.cache
def installed_cjk_families() -> frozenset[str]:
    """Font families fontconfig knows that cover Chinese (``fc-list :lang=zh``)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        raise MissingFont(
            f"fc-list (fontconfig) is not installed, so no CJK font can be found: install "
            f"the Debian packages fontconfig and {CJK_FONT_PACKAGE}"
        )
    listing = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
        [fc_list, ":lang=zh", "family"], capture_output=True, text=True, check=True
    ).stdout
    return frozenset(
        name.strip() for line in listing.splitlines() for name in line.split(",") if name.strip()
    )


def require_cjk_font(family: str) -> None:
    """Raise :class:`MissingFont` unless ``family`` is an installed CJK font."""
    found = installed_cjk_families()
    if family not in found:
        others = ", ".join(sorted(found)) or "none"
        raise MissingFont(
            f"the contract font {family!r} is not installed (CJK fonts found: {others}): "
            f"install the Debian package {CJK_FONT_PACKAGE} (scripts/ensure-system-packages.sh)"
        )


@functools.cache
def environment(root: Path = TEMPLATES_ROOT) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(root),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_html(
    info: TemplateInfo, context: Mapping[str, Any], *, root: Path = TEMPLATES_ROOT
) -> str:
    """The template's HTML; a missing field or an unsafe expression raises :class:`RenderError`."""
    try:
        template = environment(root).get_template(f"{info.folder}/template.html.j2")
        return template.render(template=_template_values(info), **context)
    except jinja2.TemplateError as error:  # undefined, unsafe (sandbox), syntax, not found
        raise RenderError(f"{info.key} {info.version}: {error.message}") from error


def _template_values(info: TemplateInfo) -> dict[str, Any]:
    return {
        "key": info.key,
        "version": info.version,
        "title_zh": info.title_zh,
        "title_en": info.title_en,
        "languages": list(info.languages),
        "font_family": info.font_family,
        "engine": f"WeasyPrint {weasyprint.__version__}",
    }


def w3c_date(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("the document time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_pdf(
    info: TemplateInfo,
    context: Mapping[str, Any],
    *,
    document_dt: datetime,
    attachments: Sequence[EmbeddedFile] = (),
    root: Path = TEMPLATES_ROOT,
) -> bytes:
    """Render ``context`` with the template as PDF/A-3b bytes.

    ``document_dt`` is the document's creation and modification time in its metadata (the
    licence's date, never the clock): with it, every input of the bytes is an argument."""
    require_cjk_font(info.font_family)
    source = render_html(info, context, root=root)
    fetcher = TemplateFetcher(root)
    stamp = w3c_date(document_dt)
    files = [
        Attachment(
            string=item.data,
            name=item.name,
            description=item.description,
            created=document_dt.astimezone(UTC),
            modified=document_dt.astimezone(UTC),
            relationship=item.relationship,
            url_fetcher=fetcher,
        )
        for item in attachments
    ]
    identity = hashlib.sha256(
        "\n".join([info.key, info.version, source, *(f.name for f in attachments)]).encode()
    ).hexdigest()[:32]
    base_url = (root / info.folder / "template.html.j2").resolve().as_uri()
    try:
        document = HTML(string=source, base_url=base_url, url_fetcher=fetcher).render(
            pdf_variant=PDF_VARIANT, output_intent=OUTPUT_INTENT
        )
        document.metadata.created = stamp
        document.metadata.modified = stamp
        pdf: bytes = document.write_pdf(
            pdf_variant=PDF_VARIANT,
            output_intent=OUTPUT_INTENT,
            pdf_identifier=identity.encode(),
            attachments=files,
        )
    except FatalURLFetchingError as error:
        cause = error.__cause__
        raise FetchRefused(str(cause) if cause else str(error)) from error
    return pdf
