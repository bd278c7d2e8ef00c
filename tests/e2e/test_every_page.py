"""Acceptance 5: every demo role signs in and follows every link it can reach. No page answers 5xx,
none shows Python internals or template syntax, none is wider than the window, none logs a console
or CSP error, and axe-core finds no WCAG 2 A/AA violation on any of them."""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest

from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = (Path(__file__).parent / "vendor" / "axe-4.14.1.min.js").read_text()
AXE_RUN = """async () => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""
INTERNALS = re.compile(r"<built-in |<bound method |object at 0x[0-9a-f]+|Traceback \(most recent|\{\{|\{%|%\}|\}\}"
                       r"|jinja2\.|Undefined|sqlalchemy\.")
ROLES = ["admin@groundwork.test", "reviewer@groundwork.test", "trainer1@groundwork.test", "trainer2@groundwork.test",
         "applicant@groundwork.test", "bea.interviewing@groundwork.test", "client@groundwork.test"]
# An applicant's whole site is their application, their interview and their password.
FEWEST_PAGES = {"applicant@groundwork.test": 3, "bea.interviewing@groundwork.test": 4}
# Pages of one kind told apart only by an id (a candidate, a trainer, a version): this many of each.
SAME_KIND = 2
# The recruiting demo's second pilot and second interview are label projects built like the first
# ones: their pages are the same templates over the same kind of data.
ALIKE = re.compile(r"/(code-answers-pilot|software-interview)(/|$)")
# Pages of one kind are alike: a few of each are enough (sortable columns, later pages of a list).
MAX_PAGES = 120


def _key(url: str) -> str:
    """One visit per page and per kind of query (…?sort=a and …?sort=b are one page, twice)."""
    parts = urlsplit(url)
    names = sorted({p.split("=")[0] for p in parts.query.split("&") if p})
    return parts.path + ("?" + "&".join(names) if names else "")


def _kind(key: str) -> str:
    """/admin/recruiting/candidates/57 and …/58 are pages of one kind."""
    return re.sub(r"/[0-9]+(?=/|$|\?)", "/N", key)


# The admin reaches the most pages: two crawls side by side, recruiting and review apart from the rest.
RECRUITING = re.compile(r"^/(admin/recruiting|grading|review)(/|$)")
CRAWLS = [(email, None) for email in ROLES if email != "admin@groundwork.test"] + [
    ("admin@groundwork.test", "projects"), ("admin@groundwork.test", "recruiting")]


def _in_part(path: str, part: str | None) -> bool:
    if part is None:
        return True
    return bool(RECRUITING.match(path)) == (part == "recruiting")


@pytest.mark.parametrize(("email", "part"), CRAWLS)
def test_every_reachable_page_is_clean(page, live_app, email, part):
    base = live_app.config["LIVE_URL"]
    sign_in(page, email)
    page.wait_for_load_state("networkidle")
    if part == "recruiting":
        page.goto(base + "/admin/recruiting/")
    start = page.url
    queue, seen, visited, problems = deque([start]), {_key(start)}, [], []
    kinds: dict[str, int] = {}
    while queue and len(visited) < MAX_PAGES:
        url = queue.popleft()
        path = urlsplit(url).path
        response = page.request.get(url, max_redirects=0) if "/files/" in path or path.endswith((".csv", ".json")) else None
        if response is not None:  # a download: it must exist, not be read as a page
            if response.status >= 400:
                problems.append(f"{url}: {response.status}")
            continue
        answer = page.goto(url)
        page.wait_for_load_state("networkidle")
        visited.append(url)
        if answer is None or answer.status >= 500 or answer.status in (403, 404):
            problems.append(f"{url}: {answer.status if answer else 'no answer'}")
            continue
        html = page.content()
        if found := INTERNALS.search(page.inner_text("body")):
            problems.append(f"{url}: shows {found.group()!r}")
        wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        if wide > 1:  # the page itself scrolls sideways (a wide table scrolls in its own box)
            problems.append(f"{url}: {wide} px wider than the window")
        page.evaluate(AXE)
        for violation in page.evaluate(AXE_RUN):
            problems.append(f"{url}: axe {violation['id']} ({violation['impact']}): {violation['help']} "
                            f"at {violation['nodes']}")
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
            target = urldefrag(urljoin(url, href))[0]
            if not target.startswith(base) or _key(target) in seen or ALIKE.search(urlsplit(target).path) \
                    or not _in_part(urlsplit(target).path, part) \
                    or kinds.get(_kind(_key(target)), 0) >= SAME_KIND:
                continue
            seen.add(_key(target))
            kinds[_kind(_key(target))] = kinds.get(_kind(_key(target)), 0) + 1
            queue.append(target)
        assert html
    assert len(visited) >= FEWEST_PAGES.get(email, 5), visited
    assert problems == [], "\n".join(problems)
