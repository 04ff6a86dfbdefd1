"""A confirmation sent twice at once (a double click, two tabs) makes one licence, and both
answers lead to it: the form's idempotency key, on the run's own database (on PostgreSQL the
second request waits for the first and then reads its outcome)."""

from __future__ import annotations

import http.client
import threading
from urllib.parse import urlencode, urlsplit

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import OTHER_SME_EMAIL, Site, sign_in


def test_a_confirmation_sent_twice_at_once_makes_one_licence(
    context: BrowserContext, page: Page, site: Site
) -> None:
    sign_in(page, site, OTHER_SME_EMAIL)
    page.goto(site.url(f"/offers/{site.offer_id}/take-up"))
    page.fill("#f-intended_use", "用于储能电池负极材料的小批量试产")
    page.fill("#f-contact_name", "赵经理")
    page.fill("#f-contact_phone", "010-8888-0000")
    page.get_by_role("button", name="下一步：查看许可条件").click()
    expect(page.locator("h1")).to_have_text("确认许可条件")
    fields = page.eval_on_selector_all(
        "form input[type=hidden]", "inputs => inputs.map(i => [i.name, i.value])"
    )
    body = urlencode([*map(tuple, fields), ("agree", "yes"), ("step", "confirm")])
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
    address = urlsplit(site.base)
    path = f"/offers/{site.offer_id}/take-up"
    start = threading.Barrier(2)
    answers: list[tuple[int, str | None]] = []

    def send() -> None:
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
        start.wait()
        connection.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
        )
        response = connection.getresponse()
        response.read()
        answers.append((response.status, response.getheader("Location")))
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [303, 303], answers
    assert answers[0][1] == answers[1][1]
    page.goto(site.url("/licences"))
    expect(page.locator("tbody tr")).to_have_count(1)
