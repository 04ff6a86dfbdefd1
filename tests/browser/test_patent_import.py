"""A TTO imports patents through the page in a real browser: a CSV with two bad rows shows
both rows' errors and imports nothing; the corrected file imports both patents."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import TITLE, TTO_EMAIL, Site, sign_in
from tests.factories import make_application_number

HEADER = "application_number,patent_type,title,filing_date"


def choose(page: Page, csv: str) -> None:
    page.set_input_files(
        "#f-file",
        files=[{"name": "patents.csv", "mimeType": "text/csv", "buffer": csv.encode("utf-8")}],
    )


def test_a_tto_imports_a_csv_with_two_bad_rows_and_sees_both_errors(page: Page, site: Site) -> None:
    sign_in(page, site, TTO_EMAIL)
    page.get_by_role("link", name="专利", exact=True).click()
    expect(page.locator("h1")).to_have_text("专利")
    expect(page.locator("#patent-count")).to_have_text("共 1 项专利")
    expect(page.get_by_role("link", name=TITLE)).to_be_visible()
    page.get_by_role("link", name="从文件导入专利").click()
    expect(page.locator("h1")).to_have_text("导入专利")

    first, second = make_application_number(), make_application_number()
    bad = "\n".join(
        [
            HEADER,
            f"{first},invention,浏览器导入的第一项专利,2021-03-15",
            "CN-NOT-A-NUMBER,invention,号码错误的专利,2021-03-15",  # row 3
            f"{second},gadget,浏览器导入的第二项专利,2021-03-15",  # row 4
        ]
    )
    choose(page, bad + "\n")
    page.get_by_role("button", name="导入", exact=True).click()
    expect(page.locator(".error-summary")).to_contain_text("2 行有错误，未导入任何专利")
    errors = page.locator("#import-errors tr.row-error")
    expect(errors).to_have_count(2)
    expect(errors.nth(0).locator("td").nth(0)).to_have_text("3")
    expect(errors.nth(0).locator("td").nth(1)).to_have_text("application_number")
    expect(errors.nth(1).locator("td").nth(0)).to_have_text("4")
    expect(errors.nth(1).locator("td").nth(1)).to_have_text("patent_type")
    page.screenshot(path=str(site.shots / "patent-import-errors.png"), full_page=True)

    page.goto(site.url("/patents"))
    expect(page.locator("#patent-count")).to_have_text("共 1 项专利")  # nothing imported

    page.goto(site.url("/patents/import"))
    good = "\n".join(
        [
            HEADER,
            f"{first},invention,浏览器导入的第一项专利,2021-03-15",
            f"{second},invention,浏览器导入的第二项专利,2021-03-15",
        ]
    )
    choose(page, good + "\n")
    page.get_by_role("button", name="导入", exact=True).click()
    expect(page).to_have_url(site.url("/patents"))
    expect(page.locator(".flash")).to_contain_text("已从 patents.csv 导入 2 项专利")
    expect(page.locator("#patent-count")).to_have_text("共 3 项专利")
    page.get_by_role("link", name="浏览器导入的第二项专利").click()
    expect(page.locator("h1")).to_have_text("浏览器导入的第二项专利")
    expect(page.locator("#owners")).to_contain_text("华东理工大学")
