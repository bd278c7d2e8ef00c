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
