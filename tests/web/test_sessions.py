"""The session cookie is verified once per process and remembered: an altered cookie is still refused,
a remembered session still ends on time, and no request sees what another changed in its session."""

from __future__ import annotations

import time

from flask import request

from app.web import sessions
from tests.conftest import login
from tests.factories import PASSWORD, make_user


def _cookie(client) -> str:
    return client.get_cookie("session").value


def test_an_altered_cookie_is_refused_after_the_real_one_was_remembered(app, client, session):
    trainer = make_user(session, "trainer")
    assert login(client, trainer.email, PASSWORD).status_code == 302
    assert client.get("/work/").status_code == 200  # verified and remembered
    real = _cookie(client)

    def flip(at: int) -> str:
        return real[:at] + ("A" if real[at] != "A" else "B") + real[at + 1:]

    for forged in (flip(len(real) // 3), flip(len(real) - 10), real + "x"):  # the contents, the signature
        client.set_cookie("session", forged)
        assert client.get("/work/").status_code == 302, forged  # back to the sign-in page
    client.set_cookie("session", real)
    assert client.get("/work/").status_code == 200


def test_a_remembered_session_still_ends_when_its_lifetime_is_over(app, client, session, monkeypatch):
    trainer = make_user(session, "trainer")
    assert login(client, trainer.email, PASSWORD).status_code == 302
    assert client.get("/work/").status_code == 200  # the page put a CSRF token in the session: a new cookie
    assert client.get("/work/").status_code == 200  # that cookie, verified and remembered
    lifetime = app.permanent_session_lifetime.total_seconds()
    later = time.time() + lifetime + 60

    class Later:
        @staticmethod
        def time():
            return later

    monkeypatch.setattr(sessions, "time", Later)
    assert client.get("/work/").status_code == 302


def test_no_request_sees_what_another_changed_in_its_session(app, client, session):
    trainer = make_user(session, "trainer")
    assert login(client, trainer.email, PASSWORD).status_code == 302
    cookie = f"session={_cookie(client)}"
    interface = app.session_interface
    assert isinstance(interface, sessions.RememberingCookieSessionInterface)
    with app.test_request_context("/", headers={"Cookie": cookie}):
        first = interface.open_session(app, request)
        first.setdefault("_flashes", []).append(("info", "only mine"))
        first["extra"] = "only mine"
    with app.test_request_context("/", headers={"Cookie": cookie}):
        second = interface.open_session(app, request)
    assert "_flashes" not in second and "extra" not in second
    assert second["_user_id"] == first["_user_id"]


def test_a_new_secret_key_checks_every_cookie_again(app, client, session):
    trainer = make_user(session, "trainer")
    assert login(client, trainer.email, PASSWORD).status_code == 302
    assert client.get("/work/").status_code == 200
    app.secret_key = "another-secret-key-entirely"
    assert client.get("/work/").status_code == 302
