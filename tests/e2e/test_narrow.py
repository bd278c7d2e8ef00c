"""On a phone (390 px wide) no page scrolls sideways as a whole: a wide table or code block scrolls
inside its own box, buttons and categories wrap. The pages here are the widest ones of each role."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser

PAGES = {
    "trainer1@groundwork.test": ["/work/earnings", "/work/response-critique", "/account/tokens/"],
    "admin@groundwork.test": ["/admin/payroll", "/admin/projects/safety-triage", "/admin/projects/safety-triage/exports/",
                              "a new version of safety-triage"],
    "client@groundwork.test": ["/admin/projects/safety-triage/exports/"],
}


@pytest.mark.parametrize("email", list(PAGES))
def test_no_page_is_wider_than_a_phone(browser, live_app, email):
    base = live_app.config["LIVE_URL"]
    context = browser.new_context(base_url=base, viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, email)
    problems = []
    for path in PAGES[email]:
        if path == "a new version of safety-triage":  # its page shows the manifest, a wide code block
            page.goto("/admin/projects/safety-triage/exports/")
            page.locator("select[name=format]").select_option("raw")
            page.get_by_test_id("export-submit").click()
            page.locator("[data-status=done]").first.wait_for(timeout=60_000)
            path = page.url.removeprefix(base)
        answer = page.goto(path)
        page.wait_for_load_state("networkidle")
        assert answer is not None and answer.status == 200, path
        wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        if wide > 1:
            problems.append(f"{path}: {wide} px wider than the window")
    context.close()
    assert problems == []
