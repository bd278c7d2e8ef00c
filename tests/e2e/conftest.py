"""A live server thread with the demo data, and Playwright driving Debian's Chromium."""

from __future__ import annotations

import shutil
import threading

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from app.db import get_db
from app.models import Base
from app.services.demo import seed_demo
from tests.conftest import build_app

# Validation answers are 422 by design; Chromium logs every non-2xx fetch on the console.
EXPECTED_CONSOLE = ("Failed to load resource: the server responded with a status of 422",)


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


@pytest.fixture(scope="session")
def seeded_demo(tmp_path_factory):
    """The demo seeded once per test process into a SQLite file (it takes seconds); each test gets
    a copy of the file, so what one test changes no other sees."""
    folder = tmp_path_factory.mktemp("demo-template")
    app = build_app(f"sqlite:///{folder / 'demo.sqlite3'}", folder)
    with app.app_context():
        engine = get_db().engine
        Base.metadata.create_all(engine)
        session = get_db().session_factory()
        seed_demo(session)
        session.close()
        with engine.connect() as conn:  # everything into the main file before it is copied
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
    return folder / "demo.sqlite3"


@pytest.fixture
def live_app(tmp_path, seeded_demo):
    """The app on a copy of the seeded demo, served from a thread on a free port."""
    shutil.copyfile(seeded_demo, tmp_path / "e2e.sqlite3")
    app = build_app(f"sqlite:///{tmp_path / 'e2e.sqlite3'}", tmp_path)
    with app.app_context():
        engine = get_db().engine
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    app.config["LIVE_URL"] = f"http://127.0.0.1:{server.server_port}"
    yield app
    server.shutdown()
    thread.join(timeout=5)
    engine.dispose()


@pytest.fixture
def page(browser, live_app):
    context = browser.new_context(base_url=live_app.config["LIVE_URL"])
    page = context.new_page()
    errors = []
    # Printed with a failing test's output: every request the page made and its answer.
    page.on("response", lambda r: print(f"{r.status} {r.request.method} {r.url}"))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text)
        if msg.type == "error" and not msg.text.startswith(EXPECTED_CONSOLE)
        else None,
    )
    yield page
    context.close()
    # A CSP violation or a script error is a bug even when the test's steps passed.
    assert errors == [], f"browser reported errors: {errors}"


def sign_in(page, email: str) -> None:
    """Sign in through the login form with the demo password."""
    from app.services.demo import DEMO_PASSWORD

    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
