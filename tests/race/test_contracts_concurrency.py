"""Contracts issued inline by concurrent take-ups over real sockets (issue 4, item 4).

Several SMEs take up the same offer at the same moment on the real app under gunicorn, each
contract rendered, signed and stored inside its take-up. A take-up that meets a busy database
may answer 503 and is retried with its Idempotency-Key, as a client would. In the end every SME
holds exactly one licence with exactly one contract, every contract is a distinct file in the
blob store whose hash is on record, and the public verifier calls each one valid.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from registry.contracts.models import Contract
from registry.core.blobs import BlobStore
from registry.core.db import make_engine
from registry.licences.models import Licence
from tests.conftest import migrate_fresh
from tests.factories import licences as lf
from tests.factories.databases import BACKENDS, empty_database
from tests.race.harness import Seeded, gunicorn, request, seed

pytestmark = pytest.mark.concurrency

SMES = 6
RETRIES = 5


@dataclass
class Served:
    url: str
    seeded: Seeded
    port: int
    folder: Path


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp(f"contracts-{request.param}")
    with empty_database(request.param, folder, "contracts") as url:
        migrate_fresh(url).dispose()
        seeded = seed(url, folder, offers=1, licensees=SMES)
        with gunicorn(
            "tests.race.apps:correct()",
            url,
            folder,
            workers=2,
            threads=4,
            window_ms=0,
            settings={"REGISTRY_CONTRACT_ISSUE": "inline"},
        ) as port:
            yield Served(url, seeded, port, folder)


def _take_up(served: Served, token: str, barrier: threading.Barrier) -> tuple[int, Any]:
    key = str(uuid.uuid4())
    path = f"/api/v1/offers/{served.seeded.offer_ids[0]}/take-up"
    barrier.wait()
    for _ in range(RETRIES):
        status, body, _ = request(
            served.port, "POST", path, token, lf.notice(), {"Idempotency-Key": key}
        )
        if status != 503:
            break
    return status, body


def test_concurrent_take_ups_each_get_one_valid_contract(served: Served) -> None:
    barrier = threading.Barrier(SMES)
    answers: list[tuple[int, Any]] = [(0, None)] * SMES

    def run(index: int) -> None:
        answers[index] = _take_up(served, served.seeded.licensee_tokens[index], barrier)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(SMES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [status for status, _ in answers] == [201] * SMES, answers
    digests = [body["contract"]["sha256"] for _, body in answers]
    assert all(body["contract"]["status"] == "issued" for _, body in answers)
    assert len(set(digests)) == SMES

    engine = make_engine(served.url)
    try:
        with engine.connect() as connection:
            licences = connection.scalar(select(func.count()).select_from(Licence))
            recorded = set(connection.scalars(select(Contract.signed_sha256)))
    finally:
        engine.dispose()
    assert licences == SMES
    assert recorded == set(digests)

    store = BlobStore(served.folder / "instance" / "blobs")
    for digest in digests:
        data = store.get(digest)  # present, and its bytes still hash to its name
        assert hashlib.sha256(data).hexdigest() == digest
        verdict = _verify(served.port, data)
        assert verdict["valid"] is True, verdict


def _verify(port: int, data: bytes) -> dict[str, Any]:
    boundary = "contracts-race-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="contract.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(
            "POST",
            "/api/v1/contracts/verify",
            body=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        response = connection.getresponse()
        assert response.status == 200
        verdict: dict[str, Any] = json.loads(response.read())
        return verdict
    finally:
        connection.close()
