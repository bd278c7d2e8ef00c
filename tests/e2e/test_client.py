"""Acceptance: the demo client signs in, opens their project's quality page, builds and downloads its
latest version in the browser, and meets no trainer's name or e-mail anywhere, nor a server error."""

from __future__ import annotations

import re

import orjson
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.db import get_db
from app.models import User, UserRole
from app.services.demo import CLIENT, SAFETY_SLUG
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser


def _trainer_identities(app) -> list[str]:
    """Every trainer's name and e-mail in the demo's database."""
    with app.app_context():
        session = get_db().session_factory()
        try:
            trainers = select(UserRole.user_id).where(UserRole.role == "trainer")
            return [text for user in session.scalars(select(User).where(User.id.in_(trainers)))
                    for text in (user.name, user.email)]
        finally:
            session.close()


def test_the_demo_client_reads_quality_and_downloads_the_latest_version_without_a_trainer_name(page, live_app):
    forbidden = _trainer_identities(live_app)
    assert "trainer2@groundwork.test" in forbidden and "Jonas Lindqvist" in forbidden
    answers: list[tuple[int, str]] = []
    page.on("response", lambda r: answers.append((r.status, r.url)))
    seen: list[str] = []

    def check_page() -> None:
        html = page.content()
        seen.append(page.url)
        for text in forbidden:
            assert text not in html, f"{page.url} shows {text!r}"

    sign_in(page, CLIENT)
    expect(page).to_have_url(re.compile(r"/client/$"))
    projects = page.get_by_test_id("client-project")
    expect(projects).to_have_count(2)
    check_page()

    projects.filter(has_text="Assistant safety triage").get_by_role("link", name="Assistant safety triage").click()
    expect(page).to_have_url(re.compile(rf"/client/{SAFETY_SLUG}$"))
    expect(page.get_by_test_id("budget-burn")).to_be_visible()
    check_page()

    page.get_by_role("button", name="Quality").click()
    expect(page).to_have_url(re.compile(rf"/client/{SAFETY_SLUG}/quality$"))
    rows = page.get_by_test_id("trainer-row")
    expect(rows.first).to_be_visible()
    pseudonyms = {rows.nth(n).locator("code").inner_text() for n in range(rows.count())}
    assert len(pseudonyms) >= 2 and all(p.startswith("annotator-") for p in pseudonyms)
    expect(page.get_by_test_id("question-figures")).to_contain_text("α nominal")
    check_page()

    # The demo under test has no version yet: the client builds one, as clients may.
    page.goto(f"/client/{SAFETY_SLUG}")
    page.get_by_role("button", name="Build a version").click()
    form = page.get_by_test_id("export-form")
    form.get_by_label("Format").select_option("raw")
    form.get_by_test_id("export-submit").click()
    expect(page.get_by_test_id("export-progress")).to_have_attribute("data-status", "done", timeout=30_000)
    check_page()

    page.goto(f"/client/{SAFETY_SLUG}")
    latest = page.get_by_test_id("latest-version")
    expect(latest).to_contain_text("raw")
    check_page()
    with page.expect_download() as info:
        latest.get_by_role("link", name="train.jsonl").click()
    download = info.value
    assert download.suggested_filename.startswith(f"{SAFETY_SLUG}-v") and download.suggested_filename.endswith(
        "raw-train.jsonl")
    data = open(download.path(), "rb").read()
    text = data.decode()
    for name in forbidden:
        assert name not in text, f"the downloaded file names {name!r}"
    lines = [orjson.loads(line) for line in data.splitlines()]
    assert lines and {line["trainer"] for line in lines} == pseudonyms  # the quality page's names, no others

    assert len(seen) >= 5
    assert [(status, url) for status, url in answers if status >= 500] == []


def test_the_api_reference_fits_the_window_and_renders_its_markdown(page, live_app):
    sign_in(page, "client@groundwork.test")
    page.goto(live_app.config["LIVE_URL"] + "/api/v1/")
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 1
    intro = page.locator("main .markdown").first
    assert "`" not in intro.inner_text() and intro.locator("code").count() >= 1
