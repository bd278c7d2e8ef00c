import pytest
from sqlalchemy import func, select

from app.models import User
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_user


def test_sign_in_and_out(client, session):
    trainer = make_user(session, "trainer")
    response = login(client, trainer.email, PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/work/").status_code == 200
    token = csrf_token(client, "/work/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert client.get("/work/").status_code == 302


def test_wrong_password_says_so_without_naming_which_part(client, session):
    trainer = make_user(session, "trainer")
    response = login(client, trainer.email, "not-the-password")
    assert response.status_code == 401
    assert "do not match an active account" in response.get_data(as_text=True)


def test_repeated_wrong_passwords_get_429(app, client, session):
    trainer = make_user(session, "trainer")
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        assert login(client, trainer.email, "wrong-password!").status_code == 401
    response = login(client, trainer.email, PASSWORD)  # even the right password waits now
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in response.get_data(as_text=True)


def test_post_without_csrf_token_is_refused_and_changes_nothing(client, session):
    trainer = make_user(session, "trainer")
    before = session.scalar(select(User.last_login_at).where(User.id == trainer.id))
    response = client.post("/login", data={"email": trainer.email, "password": PASSWORD})
    assert response.status_code == 400
    session.expire_all()
    assert session.scalar(select(User.last_login_at).where(User.id == trainer.id)) == before
    assert client.get("/work/").status_code == 302  # still signed out


def test_session_cookie_is_httponly_and_samesite(client, session):
    trainer = make_user(session, "trainer")
    response = login(client, trainer.email, PASSWORD)
    cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_never_redirects_off_site(client, session):
    trainer = make_user(session, "trainer")
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": trainer.email, "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"}
    )
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/work/\nx", "/\r\n//evil.example", "/work/\tx", "/x\x7f", "/" + "a" * 2001])
def test_a_next_path_with_a_control_character_or_too_long_goes_home(client, session, target):
    """urlsplit drops tabs and line breaks before looking, and a line break cannot be a header: such a
    path (or one longer than any of ours) is dropped, signed in or not, and never an error."""
    trainer = make_user(session, "trainer")
    page = client.get("/login", query_string={"next": target})
    assert page.status_code == 200 and 'name="next" value=""' in page.get_data(as_text=True)
    token = csrf_token(client)
    response = client.post("/login", data={"email": trainer.email, "password": PASSWORD, "csrf_token": token,
                                           "next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    again = client.get("/login", query_string={"next": target})  # signed in now
    assert again.status_code == 302 and again.headers["Location"] == "/"
    assert client.get("/login", query_string={"next": "/work/"}).headers["Location"] == "/work/"


def test_pages_carry_a_strict_content_security_policy(client):
    policy = client.get("/login").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_users_count_is_untouched_by_failed_logins(client, session):
    make_user(session, "trainer")
    login(client, "ghost@example.test", "whatever-password")
    assert session.scalar(select(func.count(User.id))) == 1
