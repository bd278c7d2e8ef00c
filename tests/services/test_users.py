import pytest

from app.errors import Conflict, ValidationError
from app.services import users as user_service
from tests.factories import make_user


def test_emails_are_lower_cased_and_unique(session):
    user = user_service.create_user(session, "  Dana@Example.TEST ", "Dana", "long-enough-pw", ["trainer"])
    session.commit()
    assert user.email == "dana@example.test"
    with pytest.raises(Conflict):
        user_service.create_user(session, "dana@example.test", "Dana 2", "long-enough-pw", ["trainer"])


def test_bad_account_input_reports_every_field(session):
    with pytest.raises(ValidationError) as err:
        user_service.create_user(session, "not-an-email", " ", "short", ["wizard"])
    assert set(err.value.errors) == {"email", "name", "password", "role"}


@pytest.mark.parametrize(("email", "name", "field"), [
    ("ok@example.test", "Admin \u202eevil\u202c", "name"),       # a direction override reorders what follows
    ("ok@example.test", "Two\nlines", "name"),
    ("ok@example.test", "Mallory\r=2+3", "name"),                # a CR ended CSV rows early
    ("ok@example.test", "Bell\x07\x1b[31m", "name"),
    ("ok@example.test", "Zero\u200bwidth", "name"),
    ("admin\u200b@groundwork.test", "Look Alike", "email"),       # looks exactly like admin@groundwork.test
    ("admin@groundwork.test\u200e", "Look Alike", "email"),
])
def test_names_and_emails_are_one_line_of_visible_text(session, email, name, field):
    with pytest.raises(ValidationError) as err:
        user_service.create_user(session, email, name, "long-enough-pw", ["trainer"])
    assert set(err.value.errors) == {field}


def test_passwords_are_argon2_hashed_and_checked(session):
    user = make_user(session, "reviewer", password="a-long-password")
    assert user.password_hash.startswith("$argon2")
    assert user_service.authenticate(session, user.email.upper(), "a-long-password").id == user.id
    assert user_service.authenticate(session, user.email, "wrong-password") is None
    assert user_service.authenticate(session, "nobody@example.test", "a-long-password") is None


def test_suspended_users_cannot_sign_in(session):
    user = make_user(session, "trainer", password="a-long-password")
    user.status = "suspended"
    session.commit()
    assert user_service.authenticate(session, user.email, "a-long-password") is None


def test_a_sign_in_hashes_outside_any_transaction(app, client, monkeypatch):
    """A sign-in's password hash takes tens of milliseconds; on SQLite a POST's transaction holds the
    write lock, so hashing inside it would queue every heartbeat and submit behind each sign-in. While
    the hash runs, another connection can take the write lock at once (and on PostgreSQL, no
    transaction of the request is open)."""
    import sqlite3

    from app.db import get_session
    from tests.conftest import login

    with app.app_context():
        session = app.extensions["groundwork_db"].session_factory()
        user = make_user(session, "trainer", password="a-long-password")
        email = user.email
        session.close()
    seen = []

    class LookingHasher(user_service.PasswordHasher):
        def verify(self, hashed, password):
            seen.append(get_session().in_transaction())
            url = app.config["DATABASE_URL"]
            if url.startswith("sqlite"):
                other = sqlite3.connect(url.split("sqlite:///", 1)[1], timeout=0, isolation_level=None)
                try:
                    other.execute("BEGIN IMMEDIATE")  # "database is locked" if the sign-in held it
                    other.execute("ROLLBACK")
                finally:
                    other.close()
            return super().verify(hashed, password)

    monkeypatch.setattr(user_service, "_hasher", LookingHasher(time_cost=1, memory_cost=1024, parallelism=1))
    assert login(client, email, "a-long-password").status_code == 302
    assert login(app.test_client(), "nobody@example.test", "a-long-password").status_code == 401
    assert seen == [False, False]
