"""The API against its own description: schemathesis on ``/api/v1/openapi.json``, as each role.

Issue 6 item 7; reliability.md §5.1 and test T32. In process (no server): every operation of the
published description × every role (anonymous, licensee, tto, auditor, admin, each with a real
bearer token), schemathesis' examples, coverage and fuzzing phases, positive and negative data,
with a fixed seed (:data:`SEED`, printed with the counts at the end of the module) and at most
:data:`MAX_EXAMPLES` fuzzed cases per operation and role. Every response must pass:

- ``not_a_server_error``: no 5xx, whatever is sent;
- ``status_code_conformance``, ``content_type_conformance``, ``response_schema_conformance``,
  ``response_headers_conformance``: the answer is one the description declares, in its shape;
- ``negative_data_rejection`` and ``missing_required_header``: what the description calls
  invalid is refused (4xx);
- ``positive_data_acceptance``: what it calls valid is not refused as malformed. The registry
  validates more than JSON Schema can state — check characters, shares summing to 100, dates
  against a licence (422), a stale ``If-Match`` (412) — so those answers count as accepted
  (:data:`ACCEPTED`); the idempotent operations may also answer 400 to a key of too few
  different characters, which their ``Idempotency-Key`` description says;
- ``ignored_auth``: an operation the description says needs the bearer token, answered 2xx,
  is sent again without it and with a bad one, and must refuse both (401).

The schemathesis pytest plugin makes one test item per operation and role (``-k`` selects by
either, e.g. ``-k "tto and payments"``); ``schemathesis.pytest.from_fixture`` is not used, as it
fails on pytest 9.2 (it sets ``Function._nodeid``, which pytest 9.2 no longer has).

The database: one transaction for the whole module holds a small world (tests/factories/world.py
plus a licence with a statement, a payment, a settlement run, a draft and a published offer and a
checkpoint), rolled back at the end. Each case runs in a savepoint rolled back after it, so cases
are independent and reproducible from the seed alone: a ``DELETE /tokens/current`` revokes its
token for that case only, and a case that creates or changes something leaves nothing behind
for the next. Generated identifiers are pointed at that world's objects part of the time
(:func:`_aim`), so cases reach the code behind the 404.

Nothing is excluded. The PDF operations (a WeasyPrint render per hit, ~0.3-0.6 s) run fewer
fuzzed examples (:data:`PDF_EXAMPLES`): examples and coverage phases in full, fuzzing bounded.
``SCHEMATHESIS_SEED`` and ``SCHEMATHESIS_MAX_EXAMPLES`` in the environment change the seed and
the bound for a deeper local run.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine

from registry.app import create_app
from registry.audit import checkpoints
from registry.clearing.ledger import CASH
from registry.clearing.models import BankLine, PayeeType, Payment, Statement
from registry.core.db import WRITE_OPTION
from tests.api import access_clearing as ac
from tests.conftest import Api, TransactionalDatabase
from tests.factories import Factory
from tests.factories import offers as offer_factories
from tests.factories.world import World, build_world

SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20261126"))
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"))
PDF_EXAMPLES = max(1, MAX_EXAMPLES // 5)
ROLES = ("anonymous", "licensee", "tto", "auditor", "admin")
SPEC = "/api/v1/openapi.json"

# positive_data_acceptance: schemathesis' default (2xx, 401, 403, 404, 409, 429) plus the
# answers to schema-valid input that breaks a rule of the registry (DESIGN.md §3).
ACCEPTED = ["2XX", 401, 403, 404, 409, 412, 422, 429]
IDEMPOTENT = [
    "POST /api/v1/offers/{offer_id}/take-up",
    "POST /api/v1/payments",
    "POST /api/v1/settlements",
    "POST /api/v1/settlements/{run_id}/reverse",
    "POST /api/v1/licences/{licence_id}/reports",
]
PDF_PATH = r"\.pdf$"
CASE_SAVEPOINT = "contract_case"


def _published_description() -> dict[str, Any]:
    """The description as the app serves it, from a throwaway app: schemathesis needs it when
    the module is collected, before the suite's app and database exist."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "env": "testing",
                "database_url": f"sqlite:///{folder}/description.db",
                "instance_path": folder,
                "secret_key": "description-only-" + "x" * 32,
            }
        )
        description = app.test_client().get(SPEC).get_json()
    assert isinstance(description, dict)
    return description


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            # Real tokens are sent (below); the description's security is not fuzzed.
            "with-security-parameters": False,
        },
        # Stateful runs follow OpenAPI links, which the description has none of; the main flows
        # have their own stateful test (tests/api/test_main_flows_stateful.py).
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ACCEPTED},
            # 428 is RFC 6585's answer to a missing If-Match; a missing object is 404 first.
            "missing_required_header": {
                "expected-statuses": [400, 401, 403, 404, 406, 415, 422, 428]
            },
        },
        "operations": [
            {
                "include-name": IDEMPOTENT,
                "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, 400]}},
            },
            {
                "include-path-regex": PDF_PATH,
                "generation": {"max-examples": PDF_EXAMPLES},
            },
        ],
    }
)
schema = schemathesis.openapi.from_dict(_published_description(), config=CONFIG)


@dataclass
class _Call:
    """What tests/api/access_clearing.py's builders read of the access matrix's ``Call``."""

    world: World
    member: Any
    scope: str
    api: Api
    factory: Factory

    @property
    def organisation(self) -> Any:
        return self.world.university


@dataclass
class Known:
    world: World
    ids: dict[str, list[str]]  # by parameter or field name: identifiers that exist

    def token(self, role: str) -> str | None:
        return None if role == "anonymous" else str(getattr(self.world, role).token)


@pytest.fixture(scope="module")
def module_db(app: Flask, engine: Engine) -> Iterator[TransactionalDatabase]:
    """tests/conftest.py's ``db``, for the whole module: one world for ~375 test items."""
    connection = engine.connect().execution_options(**{WRITE_OPTION: True})
    transaction = connection.begin()
    original = app.extensions["registry.db"]
    database = TransactionalDatabase(engine, connection)
    app.extensions["registry.db"] = database
    yield database
    app.extensions["registry.db"] = original
    transaction.rollback()
    connection.close()


@pytest.fixture(scope="module")
def known(app: Flask, module_db: TransactionalDatabase) -> Iterator[Known]:
    session = module_db.session(write=True)
    factory = Factory(session, app)
    world = build_world(factory)
    with app.app_context():
        call = _Call(world, world.tto, "own", Api(app.test_client()), factory)
        run_id = ac.run_id(call)  # a licence, its statement, a payment, a run that pays it
    draft = offer_factories.matrix_draft(factory, world.patents[world.university.id])
    published = offer_factories.matrix_published(factory, world.patents[world.other_university.id])
    checkpoints.issue(session, actor=None, signer_=checkpoints.signer(app))
    session.flush()
    organisations = [
        str(o.id)
        for o in (
            world.clearing_house,
            world.university,
            world.other_university,
            world.enterprise,
            world.audit_body,
        )
    ]
    members = (world.admin, world.tto, world.other_tto, world.licensee, world.auditor)
    statements = [str(s) for s in session.scalars(select(Statement.id))]
    ids = {
        "organisation_id": organisations,
        "owner_organisation_id": organisations,
        "payee_id": organisations,
        "payee_type": [str(t) for t in PayeeType],
        "user_id": [str(m.user.id) for m in members],
        "patent_id": [str(p.id) for p in world.patents.values()],
        "encumbrance_id": [str(e.id) for e in world.pledges.values()],
        "offer_id": [str(draft.id), str(published.id)],
        "licence_id": [str(s.licence_id) for s in session.scalars(select(Statement))],
        "statement_id": statements,
        "payment_id": [str(p) for p in session.scalars(select(Payment.id))],
        "line_id": [str(b) for b in session.scalars(select(BankLine.id))],
        "run_id": [str(run_id)],
        "code": [CASH],
    }
    session.commit()  # a savepoint of the module's transaction
    yield Known(world, ids)
    session.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "role" in metafunc.fixturenames:
        metafunc.parametrize("role", ROLES)


def _aim(container: Any, ids: dict[str, list[str]]) -> None:
    """Point some generated identifiers at objects that exist. The pick is a function of the
    generated value (CRC-32, not the salted ``hash``), so a case is reproducible from the seed;
    one value in ``len(pool) + 1`` keeps the generated one."""
    if not isinstance(container, dict):
        return
    for name, value in list(container.items()):
        pool = ids.get(name)
        if not pool or not isinstance(value, str) or not value:
            continue
        index = zlib.crc32(value.encode("utf-8", "surrogatepass")) % (len(pool) + 1)
        if index < len(pool):
            container[name] = pool[index]


# cases run, by role and operation: the closing note's figures (printed by test_every_operation…)
CASES: dict[str, dict[str, int]] = {role: {} for role in ROLES}


@schema.parametrize()
@hypothesis.settings(deadline=None, database=None)
def test_openapi_contract(
    case: Any, role: str, known: Known, module_db: TransactionalDatabase, app: Flask
) -> None:
    _aim(case.path_parameters, known.ids)
    _aim(case.query, known.ids)
    _aim(case.body, known.ids)
    token = known.token(role)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    label = case.operation.label
    CASES[role][label] = CASES[role].get(label, 0) + 1
    # The description was loaded before the suite's app existed: send there, and so do the
    # checks that send probes of their own (ignored_auth re-sends without the token).
    case.operation.app = case.operation.schema.app = app
    connection = module_db.connection
    connection.exec_driver_sql(f"SAVEPOINT {CASE_SAVEPOINT}")
    try:
        case.call_and_validate(headers=headers)
    except Exception as error:
        error.add_note(f"schemathesis seed {SEED}, role {role}: rerun with SCHEMATHESIS_SEED")
        raise
    finally:
        # ROLLBACK TO keeps the savepoint open on both databases (SQLAlchemy's nested
        # transaction stops there): released too, or ~20,000 cases nest ~20,000 deep and
        # PostgreSQL runs out of lock slots for their transaction ids.
        connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {CASE_SAVEPOINT}")
        connection.exec_driver_sql(f"RELEASE SAVEPOINT {CASE_SAVEPOINT}")


def test_every_operation_ran_for_every_role(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that tested nothing is a failure (schemathesis' exit code 2, reliability.md T32):
    every contract item of this session sent cases. Prints the figures for the closing note."""
    expected = {
        (item.callspec.params["role"], item.operation_label)
        for item in request.session.items
        if getattr(item, "originalname", "").startswith("test_openapi_contract[")
    }
    ran = {(role, label) for role, by_label in CASES.items() for label in by_label}
    assert expected, "no schemathesis item was collected"
    assert not expected - ran, f"no case ran for {sorted(expected - ran)}"
    operations = {label for _, label in expected}
    lines = [
        f"schemathesis {schemathesis.__version__}: seed {SEED}, at most {MAX_EXAMPLES} fuzzed "
        f"examples per operation and role ({PDF_EXAMPLES} for PDFs); {len(operations)} "
        f"operations of {SPEC}"
    ]
    for role in ROLES:
        counts = CASES[role]
        if counts:
            lines.append(f"  {role:<9} {len(counts):>3} operations {sum(counts.values()):>6} cases")
    total = sum(sum(c.values()) for c in CASES.values())
    lines.append(f"  {'total':<9} {len(expected):>3} op × role {total:>6} cases")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
