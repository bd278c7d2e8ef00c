"""The API tokens page: make a token (shown once), list with prefix and last use, revoke."""

from __future__ import annotations

import re

from app.models import ApiToken
from tests.factories import PASSWORD, make_user
from tests.security.conftest import sign_in, token


def _create(client, csrf, **form):
    return client.post("/account/tokens/", data={"csrf_token": csrf, "password": PASSWORD, **form})


def test_a_token_is_shown_once_and_works(client, session):
    user = make_user(session, "trainer", name="Tia Token")
    sign_in(client, user)
    csrf = token(client, "/account/tokens/")
    response = _create(client, csrf, name="my script", expires_in_days="30")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    secret = re.search(r'data-testid="token-secret">(gw_[A-Za-z0-9_-]+)<', page).group(1)
    # the list shows the prefix only; the whole token never again
    listing = client.get("/account/tokens/").get_data(as_text=True)
    assert secret not in listing and f"gw_{secret.split('_')[1]}_" in listing and "my script" in listing
    api = client.application.test_client()  # no cookie: the token alone
    assert api.get("/api/v1/projects", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    row = session.query(ApiToken).filter_by(user_id=user.id).one()
    assert row.expires_at is not None and not row.read_only


def test_bad_input_is_refused_with_the_field_and_nothing_is_made(client, session):
    user = make_user(session, "reviewer")
    sign_in(client, user)
    csrf = token(client, "/account/tokens/")
    for form, field in (({"name": ""}, "is required"), ({"name": "x" * 101}, "at most 100"),
                        ({"name": "ok", "expires_in_days": "0"}, "between 1 and"),
                        ({"name": "ok", "expires_in_days": "soon"}, "whole number"),
                        # digits str.isdigit() takes: superscripts (int() refuses them), other scripts'
                        ({"name": "ok", "expires_in_days": "1\u00b2"}, "whole number"),
                        ({"name": "ok", "expires_in_days": "\u2460"}, "whole number"),
                        ({"name": "ok", "expires_in_days": "\u0663"}, "whole number"),
                        ({"name": "ok", "expires_in_days": "+3"}, "whole number")):
        response = _create(client, csrf, **form)
        assert response.status_code == 422
        assert field in response.get_data(as_text=True)
    assert session.query(ApiToken).count() == 0


def test_revoking_ends_the_token_and_only_ones_own(client, session):
    from app.services import api_tokens

    owner = make_user(session, "admin")
    other = make_user(session, "admin")
    theirs = api_tokens.create(session, other, "theirs")
    mine = api_tokens.create(session, owner, "mine", read_only=True)
    sign_in(client, owner)
    csrf = token(client, "/account/tokens/")
    assert client.post(f"/account/tokens/{theirs.token.id}/revoke", data={"csrf_token": csrf}).status_code == 404
    response = client.post(f"/account/tokens/{mine.token.id}/revoke", data={"csrf_token": csrf})
    assert response.status_code == 303
    api = client.application.test_client()
    assert api.get("/api/v1/projects", headers={"Authorization": f"Bearer {mine.secret}"}).status_code == 401
    assert api.get("/api/v1/projects", headers={"Authorization": f"Bearer {theirs.secret}"}).status_code == 200
    listing = client.get("/account/tokens/").get_data(as_text=True)
    assert "revoked" in listing and "read-only" in listing


def test_a_token_needs_the_password_typed_again_and_wrong_ones_count_as_sign_in_attempts(app, client, session):
    """A token outlives signing out, so a copied session cookie alone must not make one: the password is
    asked again, and guesses meet the sign-in page's limit."""
    user = make_user(session, "trainer")
    sign_in(client, user)
    csrf = token(client, "/account/tokens/")
    for typed, says in (("", "type your password"), ("wrong password!", "is not your password"),
                        ("x" * 5000, "is not your password")):
        response = _create(client, csrf, name="stolen", password=typed)
        assert response.status_code == 422 and says in response.get_data(as_text=True), typed[:20]
    assert session.query(ApiToken).count() == 0
    # the two wrong ones above counted, the empty one did not; the right password clears the count
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit - 2 - 1):
        assert _create(client, csrf, name="stolen", password="another guess").status_code == 422
    assert _create(client, csrf, name="mine").status_code == 200  # one guess short of the limit
    for _ in range(limit):
        assert _create(client, csrf, name="stolen", password="another guess").status_code == 422
    refused = _create(client, csrf, name="stolen", password="another guess")
    assert refused.status_code == 429 and "Too many wrong passwords" in refused.get_data(as_text=True)
    assert _create(client, csrf, name="mine too").status_code == 429  # the right one waits too
    session.rollback()  # see what the requests committed
    assert session.query(ApiToken).count() == 1
