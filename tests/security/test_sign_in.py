"""Findings 7 and 10: nobody can lock another person out, and sessions can be ended for real."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.models import AuditEvent, User
from tests.conftest import build_app, csrf_token
from tests.factories import PASSWORD, make_user

from .conftest import sign_in, token


def _login(client, email, password, address=None):
    headers = {"X-Forwarded-For": address} if address else {}
    csrf = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf}, headers=headers)


def test_without_trusted_proxies_a_forwarded_header_is_ignored(app, session):
    victim = make_user(session, "trainer")
    attacker = app.test_client()
    for n in range(app.config["LOGIN_MAX_FAILURES"]):
        _login(attacker, victim.email, "wrong-password", address=f"10.0.0.{n}")
    # all of those came from one address (the client's own), whatever the header said
    assert _login(attacker, victim.email, PASSWORD, address="10.9.9.9").status_code == 429


def test_behind_a_trusted_proxy_an_attacker_cannot_lock_out_anyone(database_url, tmp_path, session):
    from app.db import get_db
    from app.models import Base

    app = build_app(database_url, tmp_path, TRUSTED_PROXIES=1)
    with app.app_context():
        Base.metadata.create_all(get_db().engine)
        factory = get_db().session_factory
    try:
        with factory() as s:
            victim = make_user(s, "trainer")
            bystander = make_user(s, "trainer")
        attacker = app.test_client()
        for _ in range(60):  # far past both the per-account and the per-address limits
            _login(attacker, victim.email, "wrong-password", address="203.0.113.66")
            _login(attacker, f"nobody{_}@example.test", "wrong-password", address="203.0.113.66")
        assert _login(attacker, victim.email, PASSWORD, address="203.0.113.66").status_code == 429
        # the victim and everyone else, from their own addresses behind the same proxy, sign in
        assert _login(app.test_client(), victim.email, PASSWORD, address="198.51.100.7").status_code == 302
        assert _login(app.test_client(), bystander.email, PASSWORD, address="198.51.100.8").status_code == 302
    finally:
        with app.app_context():
            Base.metadata.drop_all(get_db().engine)
            get_db().engine.dispose()


def test_an_attacker_on_the_same_address_cannot_lock_out_a_known_browser(app, session):
    """A shared office address: the victim's browser, which signed in before, still gets in."""
    victim = make_user(session, "trainer")
    browser = app.test_client()
    assert _login(browser, victim.email, PASSWORD).status_code == 302
    browser.post("/logout", data={"csrf_token": token(browser, "/work/")})
    attacker = app.test_client()
    for _ in range(app.config["LOGIN_MAX_FAILURES"] * 5):
        _login(attacker, victim.email, "wrong-password")
    assert _login(attacker, victim.email, PASSWORD).status_code == 429
    assert _login(browser, victim.email, PASSWORD).status_code == 302


def _cookie(client):
    return client.get_cookie("session").value


def _copy_into(client, value):
    client.set_cookie("session", value)


def test_a_cookie_copied_before_sign_out_stops_working(app, client, session):
    trainer = make_user(session, "trainer")
    sign_in(client, trainer)
    stolen = _cookie(client)
    client.post("/logout", data={"csrf_token": token(client, "/work/")})
    thief = app.test_client()
    _copy_into(thief, stolen)
    assert thief.get("/work/").status_code == 302


def test_password_change_needs_the_current_password_and_ends_other_sessions(app, client, session):
    trainer = make_user(session, "trainer")
    sign_in(client, trainer)
    other_device = app.test_client()
    sign_in(other_device, trainer)
    csrf = token(client, "/account/password")
    wrong = client.post("/account/password", data={"csrf_token": csrf, "current": "not-it-at-all",
                                                   "new": "a-brand-new-secret", "confirm": "a-brand-new-secret"})
    assert wrong.status_code == 422 and "current password" in wrong.get_data(as_text=True)
    weak = client.post("/account/password", data={"csrf_token": csrf, "current": PASSWORD, "new": "short",
                                                  "confirm": "short"})
    assert weak.status_code == 422
    ok = client.post("/account/password", data={"csrf_token": csrf, "current": PASSWORD,
                                                "new": "a-brand-new-secret", "confirm": "a-brand-new-secret"})
    assert ok.status_code in (302, 303)
    assert client.get("/work/").status_code == 200  # this browser stays signed in
    assert other_device.get("/work/").status_code == 302  # every other one is signed out
    assert _login(app.test_client(), trainer.email, "a-brand-new-secret").status_code == 302


def test_guesses_of_the_current_password_count_as_failed_sign_ins(app, client, session):
    """The password form is no oracle: every wrong current password counts on the sign-in counters
    (429 past the limit, the right one included), a right guess is not told apart by the new
    password's checks (they come first, on what was typed), and refusals made before the check cost
    nothing."""
    trainer = make_user(session, "trainer")
    sign_in(client, trainer)
    csrf = token(client, "/account/password")

    def change(current, new="a-brand-new-secret", confirm=None):
        return client.post("/account/password", data={"csrf_token": csrf, "current": current, "new": new,
                                                      "confirm": new if confirm is None else confirm})

    same = change(PASSWORD, new=PASSWORD)  # the new one equals what was typed as current, right or not
    guess = change("wrong-guess-1", new="wrong-guess-1")
    assert same.status_code == guess.status_code == 422
    assert "same as the current password" in same.get_data(as_text=True)
    assert "same as the current password" in guess.get_data(as_text=True)
    for _ in range(10):  # refused before the current password is checked: not counted
        assert change("whatever", confirm="different").status_code == 422
    limit = app.config["LOGIN_MAX_FAILURES"]
    for n in range(limit):
        assert change(f"wrong-guess-{n}").status_code == 422
    refused = change(PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert _login(app.test_client(), trainer.email, PASSWORD).status_code == 429  # one counter for both doors


def test_admin_signs_a_person_out_everywhere_and_suspends_them(app, client, session):
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    device = app.test_client()
    sign_in(device, trainer)
    sign_in(client, admin)
    csrf = token(client, f"/admin/people/{trainer.id}")
    assert client.post(f"/admin/people/{trainer.id}/sign-out", data={"csrf_token": csrf}).status_code in (302, 303)
    assert device.get("/work/").status_code == 302
    sign_in(device, trainer)
    assert client.post(f"/admin/people/{trainer.id}/status", data={"csrf_token": csrf, "status": "suspended"}
                       ).status_code in (302, 303)
    assert device.get("/work/").status_code == 302
    assert _login(app.test_client(), trainer.email, PASSWORD).status_code == 401
    actions = set(session.scalars(select(AuditEvent.action)))
    assert {"user.sign_out_everywhere", "user.status"} <= actions


def test_admin_cannot_suspend_themselves(client, session):
    admin = make_user(session, "admin")
    sign_in(client, admin)
    csrf = token(client, f"/admin/people/{admin.id}")
    response = client.post(f"/admin/people/{admin.id}/status", data={"csrf_token": csrf, "status": "suspended"})
    assert response.status_code == 422
    session.expire_all()
    assert session.get(User, admin.id).status == "active"


def test_a_one_time_reset_link_works_once(app, client, session):
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    device = app.test_client()
    sign_in(device, trainer)
    sign_in(client, admin)
    csrf = token(client, f"/admin/people/{trainer.id}")
    page = client.post(f"/admin/people/{trainer.id}/reset-link", data={"csrf_token": csrf}).get_data(as_text=True)
    link = re.search(r'(/reset/[A-Za-z0-9_\-]+)', page).group(1)
    assert "token_hash" not in page
    stranger = app.test_client()
    form = stranger.get(link)
    assert form.status_code == 200
    csrf2 = csrf_token(stranger, link)
    done = stranger.post(link, data={"csrf_token": csrf2, "new": "reset-by-the-link", "confirm": "reset-by-the-link"})
    assert done.status_code in (302, 303)
    assert device.get("/work/").status_code == 302  # the reset ended every old session
    assert stranger.get(link).status_code == 404  # used once
    assert _login(app.test_client(), trainer.email, "reset-by-the-link").status_code == 302
    assert app.test_client().get("/reset/not-a-real-token-at-all").status_code == 404


@pytest.mark.parametrize("ending", ["password change", "suspension", "sign out everywhere"])
def test_whatever_ends_access_spends_the_reset_links_not_used_yet(session, ending):
    """A reset link that leaked must not undo a password change, nor work again once a suspended
    account is reactivated: everything that ends sessions and tokens spends the links too."""
    from app.errors import NotFound
    from app.services import users as user_service

    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    link = user_service.issue_reset_link(session, trainer, admin.id)
    assert user_service.reset_for(session, link)[1].id == trainer.id
    if ending == "password change":
        user_service.change_password(session, trainer, PASSWORD, "a-brand-new-password", "a-brand-new-password")
    elif ending == "suspension":
        user_service.set_status(session, trainer, "suspended", admin.id)
        user_service.set_status(session, trainer, "active", admin.id)
    else:
        user_service.sign_out_everywhere(session, trainer, admin.id)
    with pytest.raises(NotFound):
        user_service.reset_for(session, link)


def test_an_admins_reset_link_is_made_only_on_the_server(app, client, session):
    """One admin must not take over another's account through a reset link (and with it the rules that
    need "another admin"): the people page refuses, the command line makes one."""
    from app.cli import users_reset_link
    from app.models import PasswordReset

    admin, other = make_user(session, "admin"), make_user(session, "admin")
    sign_in(client, admin)
    page = client.get(f"/admin/people/{other.id}").get_data(as_text=True)
    assert 'data-testid="admin-reset-note"' in page and f"/admin/people/{other.id}/reset-link" not in page
    csrf = token(client, f"/admin/people/{other.id}")
    refused = client.post(f"/admin/people/{other.id}/reset-link", data={"csrf_token": csrf}, follow_redirects=True)
    assert "made on the server" in refused.get_data(as_text=True) and "/reset/" not in refused.get_data(as_text=True)
    session.expire_all()
    assert session.scalar(select(PasswordReset.id).where(PasswordReset.user_id == other.id)) is None
    printed = app.test_cli_runner().invoke(users_reset_link, [other.email])
    assert printed.exit_code == 0 and "/reset/" in printed.output
    link = re.search(r"(/reset/[A-Za-z0-9_\-]+)", printed.output).group(1)
    assert app.test_client().get(link).status_code == 200
