"""Acceptance 3: every page that shows item, answer, question or person data, rendered from a world
where all of those are attacks, has exactly the elements and attributes its benign twin has — and in
Chromium, no request fires that the page did not mean to make."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from app.db import get_db
from app.models import Base
from app.services import exporting
from tests.conftest import build_app, login
from tests.html import elements

from . import hostile


def _skeleton(html: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(tag, tuple(sorted(attrs))) for tag, attrs in elements(html)]


def _world_app(tmp_path, name, text):
    app = build_app(f"sqlite:///{tmp_path / (name + '.sqlite3')}", tmp_path / name)
    with app.app_context():
        Base.metadata.create_all(get_db().engine)
        session = get_db().session_factory()
        world = hostile.build(session, text)
        for project in (world.labels, world.pairs, world.ranks):
            hostile.open_task(session, world, project)
        export = exporting.create_export(session, world.labels, {"format": "raw"}, world.admin.id)
        session.commit()
        exporting.run_export(get_db().session_factory, export.id, app.config["EXPORT_DIR"], app.config["SECRET_KEY"])
        world.export_id = export.id
        session.close()
    return app, world


def _render_all(app, world) -> dict[str, str]:
    pages = {}
    clients = {}
    for who, path in hostile.pages(world):
        if who not in clients:
            clients[who] = app.test_client()
            assert login(clients[who], getattr(world, who).email, hostile.PASSWORD).status_code == 302
        response = clients[who].get(path)
        assert response.status_code == 200, (who, path, response.status_code)
        pages[f"{who} {path.split('?')[0]}"] = response.get_data(as_text=True)
    return pages


def test_hostile_data_adds_no_element_or_attribute_to_any_page(tmp_path):
    hostile_app, hostile_world = _world_app(tmp_path, "hostile", hostile.hostile)
    twin_app, twin_world = _world_app(tmp_path, "twin", hostile.benign)
    attacked, plain = _render_all(hostile_app, hostile_world), _render_all(twin_app, twin_world)
    assert attacked.keys() == plain.keys() and len(attacked) >= 30
    for page, html in attacked.items():
        assert hostile.PAYLOAD in html or "&#34;" in html or "&#39;" in html, f"{page} shows no hostile text"
        assert _skeleton(html) == _skeleton(plain[page]), f"{page}: the data added or removed markup"
        for tag, attrs in elements(html):
            assert "data-pwned" not in attrs and tag != "svg", f"{page}: injected <{tag} {attrs}>"
            assert not any(name.startswith("on") for name in attrs), f"{page}: event handler on <{tag}>"


@pytest.mark.browser
def test_in_chromium_hostile_pages_fire_no_request_of_their_own(tmp_path, browser):
    app, world = _world_app(tmp_path, "hostile", hostile.hostile)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        unexpected, problems = [], []
        for who in ("trainer", "reviewer", "admin"):
            context = browser.new_context(base_url=base)
            page = context.new_page()
            page.on("request", lambda r: unexpected.append(r.url) if not _expected(r, base) else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto("/login")
            page.get_by_label("E-mail").fill(getattr(world, who).email)
            page.get_by_label("Password").fill(hostile.PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state("networkidle")
            for path in sorted({p for w, p in hostile.pages(world) if w == who}):
                page.goto(path)
                page.wait_for_load_state("networkidle")
                page.mouse.move(200, 300)
                page.mouse.move(400, 500)
                assert page.evaluate("typeof window.pwn === 'undefined' && !document.querySelector('[data-pwned], svg')")
            context.close()
        assert unexpected == []
        assert problems == []
    finally:
        server.shutdown()
        thread.join(timeout=5)
        with app.app_context():
            get_db().engine.dispose()


def _expected(request, base: str) -> bool:
    """What our pages themselves fetch: pages, static files, the heartbeat and the sign-in post."""
    url = request.url
    if not url.startswith(base):
        return False
    path = urlsplit(url).path
    if "pwned" in path:
        return False
    if request.method == "GET":
        return True  # navigations this test makes, and /static/
    return path == "/login" or path.endswith("/heartbeat")
