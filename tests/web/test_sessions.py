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


def test_a_sign_in_lasts_its_lifetime_from_the_sign_in_however_often_the_cookie_is_rewritten(app, client, session,
                                                                                             monkeypatch):
    """Every flash or CSRF token writes the cookie again with a new signed time; the sign-in's own time
    is what ends it, so a busy session is not extended past SESSION_LIFETIME_HOURS."""
    from app.web import access

    trainer = make_user(session, "trainer")
    lifetime = app.permanent_session_lifetime.total_seconds()
    start = time.time()
    login(client, trainer.email, PASSWORD)
    with client.session_transaction() as cookie:
        signed_in_at = cookie[access.SIGNED_IN_AT]
    assert start - 1 <= signed_in_at <= time.time()

    class At:  # the clock both the cookie's signature check and the sign-in check read
        now = time.time()

        @classmethod
        def time(cls):
            return cls.now

    import itsdangerous.timed

    for module in (sessions, access, itsdangerous.timed):  # checked, and signed, at the test's instant
        monkeypatch.setattr(module, "time", At)
    for step in range(4):  # a request every third of the lifetime, each writing the cookie anew
        At.now = signed_in_at + step * (lifetime - 10) / 3 + 1
        with client.session_transaction() as cookie:
            cookie["_flashes"] = [("info", f"step {step}")]  # a rewritten cookie, signed now
        assert client.get("/work/").status_code == 200, step
        with client.session_transaction() as cookie:
            assert cookie[access.SIGNED_IN_AT] == signed_in_at
    At.now = signed_in_at + lifetime + 1
    with client.session_transaction() as cookie:
        cookie["_flashes"] = [("info", "late")]
    assert client.get("/work/").status_code == 302  # over, though the cookie was signed a moment ago
