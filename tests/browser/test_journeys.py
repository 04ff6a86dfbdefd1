"""The journeys of issue 7 in a real browser: a visitor finds an offer by a Chinese substring;
an SME signs in, takes the licence through the confirmation step, downloads the contract and
has it verified; every page switches between Chinese and English; the pages fit a phone."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import TITLE, Site, sign_in


def shot(page: Page, site: Site, name: str) -> None:
    page.screenshot(path=str(site.shots / f"{name}.png"), full_page=True)


def test_a_visitor_finds_an_offer_by_a_chinese_substring(page: Page, site: Site) -> None:
    page.goto(site.url("/"))
    expect(page.locator("h1")).to_have_text("查找可以许可实施的专利")
    shot(page, site, "home")
    page.fill("input[name=q]", "负极")  # a substring from the middle of the title
    page.keyboard.press("Enter")
    expect(page.locator("#result-count")).to_have_text("找到 1 项开放许可")
    shot(page, site, "search")
    page.click(f"text={TITLE}")
    expect(page).to_have_url(site.url(f"/offers/{site.offer_id}"))
    expect(page.locator("h1")).to_have_text(TITLE)
    expect(page.locator("text=人民币50,000.00元").first).to_be_visible()
    shot(page, site, "offer")
    specimen = page.get_by_role("link", name="合同样本（PDF）")
    assert (specimen.get_attribute("href") or "").endswith(".pdf")


def test_an_sme_takes_the_licence_and_downloads_the_contract(page: Page, site: Site) -> None:
    page.goto(site.url("/login"))
    shot(page, site, "login")
    sign_in(page, site)
    page.goto(site.url(f"/offers/{site.offer_id}"))
    page.get_by_role("link", name="获得此许可").click()
    expect(page.locator(".steps")).to_contain_text("第 1 步")
    page.fill("#f-intended_use", "用于生产动力电池负极材料，年产能约500吨")
    page.fill("#f-contact_name", "王经理")
    page.fill("#f-contact_phone", "+86 21 5555-0100")
    page.fill("#f-notes", "请寄送技术资料")
    shot(page, site, "take-up")
    page.get_by_role("button", name="下一步：查看许可条件").click()
    expect(page.locator("h1")).to_have_text("确认许可条件")
    expect(page.locator(".clauses")).to_contain_text("人民币50,000.00元")
    shot(page, site, "take-up-confirm")
    page.get_by_role("button", name="确认获得许可").click()  # not ticked: the browser says so
    expect(page.locator("h1")).to_have_text("确认许可条件")
    page.check("#f-agree")
    page.get_by_role("button", name="确认获得许可").click()
    expect(page).to_have_url(re.compile(r"/licences/[0-9a-f-]{36}$"))
    expect(page.locator(".flash")).to_contain_text("已生效")
    shot(page, site, "licence")
    link = page.get_by_role("link", name="下载已签署的合同（PDF）")
    assert (link.get_attribute("href") or "").endswith("/contract.pdf")
    with page.expect_download() as download:
        link.click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith("-contract.pdf")
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")

    page.get_by_role("link", name="我的许可").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    shot(page, site, "licences")

    page.goto(site.url("/verify"))
    page.set_input_files("#f-file", str(path))
    page.get_by_role("button", name="核验合同").click()
    expect(page.locator("#verdict h2")).to_contain_text("真实有效")
    shot(page, site, "verify")


PAGES = {
    "/": ("查找可以许可实施的专利", "Find a patent to license"),
    "/offers?q=锂": ("检索开放许可", "Search the registry"),
    "/gazette": ("公告", "Gazette"),
    "/verify": ("合同核验", "Verify a contract"),
    "/login": ("登录", "Sign in"),
}
SIGNED_IN_PAGES = {
    "/licences": ("我的许可", "My licences"),
    "/account/password": ("修改密码", "Change your password"),
}


def test_the_language_switch_on_every_page(page: Page, site: Site) -> None:
    pages = {**PAGES, f"/offers/{site.offer_id}": (TITLE, TITLE)}
    sign_in_done = False
    for path, (chinese, english) in {**pages, **SIGNED_IN_PAGES}.items():
        if path in SIGNED_IN_PAGES and not sign_in_done:
            sign_in(page, site)
            sign_in_done = True
        page.goto(site.url(path))
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("h1")).to_have_text(chinese)
        page.click("#lang-switch")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("h1")).to_have_text(english)
        expect(page.locator("nav[aria-label=Main]")).to_contain_text("Gazette")
        if path == "/":
            shot(page, site, "home-en")
        page.click("#lang-switch")  # back to Chinese, remembered for the next page
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")


def test_an_offer_fits_a_phone_and_the_keyboard_reaches_everything(
    browser: Browser, site: Site
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(site.url(f"/offers/{site.offer_id}"))
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, "the offer page scrolls sideways on a phone"
        shot(page, site, "offer-phone")
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent")
        assert focused == "跳到主要内容"  # the skip link comes first
        page.keyboard.press("Enter")
        assert page.evaluate("location.hash") == "#main"
    finally:
        context.close()
