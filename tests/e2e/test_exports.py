"""An admin builds a dataset version in the browser, watches it finish and downloads it."""

import orjson
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser


def test_admin_exports_a_dataset_and_downloads_it(page):
    sign_in(page, "admin@groundwork.test")
    page.goto("/admin/projects/helpfulness-pairs")
    page.get_by_role("button", name="Exports").click()
    expect(page.get_by_test_id("no-exports")).to_be_visible()
    form = page.get_by_test_id("export-form")
    form.get_by_label("Format").select_option("trl-preference")
    form.get_by_label("Add margin").check()
    form.get_by_label("Test split (share of items)").fill("0.3")
    form.get_by_test_id("export-submit").click()

    progress = page.get_by_test_id("export-progress")
    expect(progress).to_have_attribute("data-status", "done", timeout=20_000)  # polled by htmx until done
    files = page.get_by_test_id("export-files")
    expect(files).to_contain_text("train.jsonl")
    expect(files).to_contain_text("test.jsonl")
    expect(page.get_by_test_id("dataset-card")).to_contain_text("Annotator pool")
    with page.expect_download() as info:
        files.get_by_role("link", name="train.jsonl").click()
    download = info.value
    assert download.suggested_filename.startswith("helpfulness-pairs-v") and download.suggested_filename.endswith(
        "trl-preference-train.jsonl")
    lines = [orjson.loads(x) for x in open(download.path(), "rb").read().splitlines()]
    assert lines and all(set(x) == {"prompt", "chosen", "rejected", "margin"} for x in lines)
    assert all(isinstance(x["margin"], float) for x in lines)

    page.get_by_role("link", name="Helpfulness pairs").click()
    history = page.get_by_test_id("export-history")
    expect(history).to_contain_text("trl-preference")
    expect(history.locator("tbody tr")).to_have_count(1)
