"""Time to render and sign one licence contract, against a bare WeasyPrint render of its HTML.

In one process, for ``--contracts`` contracts (royalty kinds, licensees and licensors varied),
after one untimed warm-up, each step is timed once per contract:

* **bare** — ``weasyprint.HTML(string=html).write_pdf()`` of the exact HTML the template
  produces (``render_html``), with the template's URL fetcher so its CSS loads: the floor;
* **render** — ``render_contract``: the same HTML as PDF/A-3b with fixed metadata and
  ``terms.json`` attached (byte-identical output, checked once);
* **sign** — ``sign_pdf`` alone (PAdES B-B certification, development key);
* **render + sign** — the two, per contract: what issuing a contract costs.

**Cold start** times fresh interpreters (``sys.executable -c``) from start to output: one imports
the registry, finds the font, loads the template, generates keys into an empty instance folder,
renders and signs the first contract; the other renders the same HTML, read from a file, with
bare WeasyPrint. Every signed PDF, the cold ones included, must pass ``verify_pdf`` against the
development CA, or the run fails. Results are printed and written to
``bench/results/contract-render-<date>.json`` (the Beijing date) with the machine's description.

    .venv/bin/python -m bench.contract_render [--contracts 20] [--cold-runs 5] [--no-write]
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from weasyprint import HTML

from registry.contracts.context import build_context
from registry.contracts.rendering import TEMPLATE_KEY, TEMPLATE_VERSION, render_contract
from registry.contracts.signing import SigningIdentity, development_identity, sign_pdf
from registry.core.pdf import TEMPLATES_ROOT, TemplateFetcher, TemplateInfo, render_html
from registry.offers.terms import TermsSchema, terms_document, terms_sha256

# The cold child imports this module, so its top-level imports are what a contract needs:
# bench.common (Alembic, SQLAlchemy) and the verifier are imported where used.

RESULTS = Path(__file__).parent / "results"
PROJECT = Path(__file__).resolve().parents[1]
NOTICE_DT = datetime(2026, 3, 1, 2, 3, 4, tzinfo=UTC)
T = TypeVar("T")

# (name, USCC, address, SME)
LICENSORS = (
    ("华东理工研究院", "12310000425001234X", "上海市徐汇区梅陇路130号", False),
    ("江南材料有限公司", "91320200MA1ABCDE2K", "江苏省无锡市太湖大道8号", True),
)
LICENSEES = (
    ("杭州青禾电池科技有限公司", "91330106MA2XYZ1234", "浙江省杭州市西湖区文三路90号", True),
    ("苏州恒远新能源股份有限公司", "91320500MA1QRST56X", "苏州工业园区星湖街328号", False),
    ("深圳启明储能有限公司", "91440300MA5FGHJK7L", "深圳市南山区科技园南路18号", True),
)
INSTALMENTS = [{"due_months": 0, "amount": "30000"}, {"due_months": 12, "amount": "60000"}]
ROYALTIES: tuple[dict[str, Any], ...] = (
    {"kind": "free"},
    {"kind": "lump_sum", "amount": "50000.00", "payment_due_days": 15},
    {"kind": "lump_sum", "amount": "90000", "instalments": INSTALMENTS, "late_interest_rate": "6"},
    {"kind": "running", "base": "net_sales", "rate": "3.50", "reporting_period": "monthly"},
    {"kind": "running", "base": "units", "unit_amount": "2.50"},
    {"kind": "entry_plus_running", "entry_fee": "10000", "base": "net_sales", "rate": "2.00"}
    | {"free_months": 6, "sme_discount": "20.00"},
)
TERMS = {"term_years": 5, "licensed_acts": ["sell", "make", "use"], "field_of_use": "动力电池"}
CONTACT = {"name": "王敏", "email": "tto@example.edu.cn", "phone": "+86 21 64250000"}
PATENT = {
    "title": "一种固态电池电解质膜的制备方法",
    "application_number": "202110123456.7",
    "patent_type": "invention",
    "filing_date": "2021-01-05",
    "grant_date": "2023-04-07",
    "expiry_date": "2041-01-04",
    "service_invention": True,
}
DATES = {
    "effective_date": "2026-03-01",
    "end_date": "2031-02-28",
    "recordation_due_date": "2026-06-01",
}
DECLARATION = {"gazette_number": "2026-000012", "announced_dt": "2026-02-01T01:00:00Z"}


def party(record: tuple[str, str, str, bool]) -> dict[str, Any]:
    return dict(zip(("name", "uscc", "address", "is_sme"), record, strict=True))


def contract_inputs(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The context and terms snapshot of the ``index``-th benchmark contract."""
    royalty = ROYALTIES[index % len(ROYALTIES)]
    terms = terms_document(TermsSchema().load({**TERMS, "royalty": royalty, "contact": CONTACT}))
    licence = DATES | {"reference": f"OL-2026-{index + 1:06d}", "terms": terms}
    licence |= {"terms_sha256": terms_sha256(terms), "notice_dt": NOTICE_DT.isoformat()}
    context = build_context(
        licence=licence,
        licensors=[party(record) for record in LICENSORS[: 1 + index % 2]],
        licensee=party(LICENSEES[index % len(LICENSEES)]),
        patent=dict(PATENT),
        declaration=dict(DECLARATION),
    )
    return context, terms


def first_contract(instance: str, out: str) -> None:
    """The cold child's work: keys into an empty ``instance``, the first contract to ``out``."""
    context, terms = contract_inputs(0)
    pdf = render_contract(context, terms=terms, document_dt=NOTICE_DT)
    Path(out).write_bytes(sign_pdf(pdf, development_identity(Path(instance))).data)


def template() -> tuple[TemplateInfo, str]:
    info = TemplateInfo.load(TEMPLATE_KEY, TEMPLATE_VERSION)
    return info, (TEMPLATES_ROOT / info.folder / "template.html.j2").resolve().as_uri()


def bare_render(html: str, base_url: str, fetcher: TemplateFetcher) -> bytes:
    pdf: bytes = HTML(string=html, base_url=base_url, url_fetcher=fetcher).write_pdf()
    return pdf


def timed(work: Callable[[], T]) -> tuple[T, float]:
    gc.collect()  # untimed, so no step pays for the garbage of the one before
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
    }


def check_signed(data: bytes, identity: SigningIdentity, what: str) -> None:
    """A benchmark of broken output is worthless: every signed PDF must verify."""
    from registry.contracts.verification import verify_pdf

    verdict = verify_pdf(data, trust_roots=[identity.ca_certificate], known_hashes=lambda _: True)
    if not verdict.valid:
        raise SystemExit(f"{what}: the signed contract does not verify: {verdict.problems}")


def warm(count: int, identity: SigningIdentity) -> dict[str, Any]:
    info, base_url = template()
    fetcher = TemplateFetcher()
    context, terms = contract_inputs(0)  # the warm-up: fonts, template, caches
    bare_render(render_html(info, context), base_url, fetcher)
    reference = render_contract(context, terms=terms, document_dt=NOTICE_DT)
    sign_pdf(reference, identity)
    times: dict[str, list[float]] = {"bare": [], "render": [], "sign": [], "render_sign": []}
    sizes: dict[str, list[int]] = {"bare_weasyprint": [], "unsigned": [], "signed": []}
    for index in range(count):
        context, terms = contract_inputs(index)
        steps = {
            "bare": functools.partial(bare_render, render_html(info, context), base_url, fetcher),
            "render": functools.partial(
                render_contract, context, terms=terms, document_dt=NOTICE_DT
            ),
        }
        # Bare first for even contracts, ours first for odd: whatever going first costs is
        # shared equally.
        order = ["bare", "render"] if index % 2 == 0 else ["render", "bare"]
        out = {name: timed(steps[name]) for name in order}
        (bare, t_bare), (pdf, t_render) = out["bare"], out["render"]
        signed, t_sign = timed(functools.partial(sign_pdf, pdf, identity))
        if index == 0 and pdf != reference:
            raise SystemExit("render_contract gave different bytes for the same inputs")
        check_signed(signed.data, identity, f"contract {index}")
        for key, value in zip(times, (t_bare, t_render, t_sign, t_render + t_sign), strict=True):
            times[key].append(value)
        for key, size in zip(sizes, (len(bare), len(pdf), len(signed.data)), strict=True):
            sizes[key].append(size)
    bare_median = statistics.median(times["bare"])
    return {
        "contracts": count,
        "bare_weasyprint": summary(times["bare"]),
        "render_contract": summary(times["render"]),
        "sign_pdf": summary(times["sign"]),
        "render_and_sign": summary(times["render_sign"]),
        "render_over_bare": round(statistics.median(times["render"]) / bare_median, 2),
        "render_and_sign_over_bare": round(
            statistics.median(times["render_sign"]) / bare_median, 2
        ),
        "pdf_bytes": {
            key: {"median": int(statistics.median(values)), "max": max(values)}
            for key, values in sizes.items()
        },
    }


def run_child(code: str) -> float:
    """Seconds from starting a fresh interpreter to ``code``'s output on disk: the child ends
    with ``os._exit``, as interpreter teardown (about 0.6 s after the contract code, 0.2 s
    after WeasyPrint alone) is not part of getting the first contract."""
    start = time.perf_counter()
    command = [sys.executable, "-c", f"{code}; import os; os._exit(0)"]
    subprocess.run(command, cwd=PROJECT, check=True)  # noqa: S603
    return time.perf_counter() - start


def cold(runs: int) -> dict[str, Any]:
    info, base_url = template()
    contract: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-contract-") as scratch:
        folder = Path(scratch)
        context, terms = contract_inputs(0)
        html = render_html(info, context)
        (source := folder / "contract.html").write_text(html, encoding="utf-8")
        # What the children must produce: the same bytes as in this process.
        unsigned = render_contract(context, terms=terms, document_dt=NOTICE_DT)
        expected_bare = bare_render(html, base_url, TemplateFetcher())
        for run in range(runs):
            instance, out, bare_out = (folder / f"{name}-{run}" for name in ("i", "c", "b"))
            contract.append(
                run_child(
                    "from bench.contract_render import first_contract; "
                    f"first_contract({str(instance)!r}, {str(out)!r})"
                )
            )
            signed = out.read_bytes()
            check_signed(signed, development_identity(instance), f"cold run {run}")
            if not signed.startswith(unsigned):  # the signature is an incremental update
                raise SystemExit(f"cold run {run}: the contract differs from this process's")
            bare.append(
                run_child(
                    f"from weasyprint import HTML; HTML(filename={str(source)!r}, "
                    f"base_url={base_url!r}).write_pdf({str(bare_out)!r})"
                )
            )
            if bare_out.read_bytes() != expected_bare:
                raise SystemExit(f"cold run {run}: the bare render differs from this process's")
    return {
        "runs": runs,
        "signed_contract_seconds": round(statistics.median(contract), 3),
        "bare_weasyprint_seconds": round(statistics.median(bare), 3),
        "contract_over_bare": round(statistics.median(contract) / statistics.median(bare), 2),
        "all_signed_contract_seconds": [round(x, 3) for x in contract],
        "all_bare_weasyprint_seconds": [round(x, 3) for x in bare],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from bench.common import machine_description
    from registry.core.clock import today

    parser = argparse.ArgumentParser(prog="python -m bench.contract_render", description=__doc__)
    parser.add_argument("--contracts", type=int, default=20)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")
    args = parser.parse_args(argv)
    if min(args.contracts, args.cold_runs) < 1:
        parser.error("every count must be at least 1")

    # Alembic's logging set-up (earlier benchmarks in bench.run) would print every layout step.
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
    day = today()
    report: dict[str, Any] = {
        "benchmark": "contract render and sign",
        "date": day.isoformat(),
        "machine": machine_description(),
    }
    print(f"[contract] {args.contracts} contracts: bare, render, sign …", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-signing-") as instance:
        report["warm"] = warm(args.contracts, development_identity(Path(instance)))
    print("[contract] " + json.dumps(report["warm"]), flush=True)
    print(f"[contract] cold start, {args.cold_runs} fresh interpreter(s) each …", flush=True)
    report["cold_start"] = cold(args.cold_runs)
    print("[contract] " + json.dumps(report["cold_start"]), flush=True)
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"contract-render-{day.isoformat()}.json"
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"written to {path}")
    return report


if __name__ == "__main__":
    main()
