"""The API's common ground: tokens, the error shape, pagination, rate limits, the document."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import ApiToken, AuditEvent, utcnow
from app.services import api_tokens
from app.services import users as user_service
from tests.conftest import build_app

from .conftest import Api, token_for


def test_no_token_is_401_with_the_error_shape(api):
    response = api.get("/api/v1/projects", as_="anonymous")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.get_json()
    assert body["error"]["code"] == "unauthorized" and body["error"]["message"] and body["error"]["details"] == {}


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer gw_ABCDEFGH_" + "x" * 43, "Basic abc", "Bearer"])
def test_a_token_that_is_not_one_is_401(client, api_world, header):
    response = client.get("/api/v1/projects", headers={"Authorization": header})
    assert response.status_code == 401


def test_revoked_and_expired_tokens_are_401(api, api_world, session):
    world = api_world.world
    revoked = api_tokens.create(session, world.admin, "soon revoked")
    assert api.client.get("/api/v1/projects", headers={"Authorization": f"Bearer {revoked.secret}"}).status_code == 200
    api_tokens.revoke(session, world.admin.id, revoked.token.id)
    assert api.client.get("/api/v1/projects", headers={"Authorization": f"Bearer {revoked.secret}"}).status_code == 401
    expired = api_tokens.create(session, world.admin, "expired", expires_in_days=1)
    session.get(ApiToken, expired.token.id).expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert api.client.get("/api/v1/projects", headers={"Authorization": f"Bearer {expired.secret}"}).status_code == 401


def test_a_suspended_account_token_is_401(api, api_world, session):
    api_world.world.trainer.status = "suspended"
    session.commit()
    assert api.get("/api/v1/projects", as_="trainer").status_code == 401


@pytest.mark.parametrize("ending", ["password change", "password reset", "sign out everywhere", "suspension"])
def test_what_ends_someones_sessions_for_cause_revokes_their_tokens(api, api_world, session, ending):
    """A token made from a copied cookie must not outlive what ended the cookie, and a suspended
    account's tokens do not come back with the account."""
    world = api_world.world
    trainer, admin = world.trainer, world.admin
    assert api.get("/api/v1/projects", as_="trainer").status_code == 200
    if ending == "password change":
        trainer.password_hash = user_service.hash_password("old password 123")
        session.commit()
        user_service.change_password(session, trainer, "old password 123", "new password 456", "new password 456")
    elif ending == "password reset":
        link = user_service.issue_reset_link(session, trainer, admin.id)
        user_service.reset_password(session, link, "new password 456", "new password 456")
    elif ending == "sign out everywhere":
        user_service.sign_out_everywhere(session, trainer, admin.id)
    else:
        user_service.set_status(session, trainer, "suspended", admin.id)
        user_service.set_status(session, trainer, "active", admin.id)
    assert api.get("/api/v1/projects", as_="trainer").status_code == 401
    assert all(t.revoked_at is not None for t in api_tokens.tokens_of(session, trainer.id))
    assert api.get("/api/v1/projects", as_="admin").status_code == 200  # nobody else's
    assert session.scalar(select(AuditEvent.data).where(AuditEvent.action == "api_token.revoke_all"))["tokens"] == 1
    session.rollback()  # end this read before writing (the requests wrote meanwhile)
    fresh = token_for(session, trainer, "after")
    assert api.client.get("/api/v1/projects", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_signing_out_of_one_browser_keeps_the_tokens(api, api_world, session):
    user_service.sign_out(session, api_world.world.trainer)
    assert api.get("/api/v1/projects", as_="trainer").status_code == 200


def test_the_database_holds_no_token_in_clear(api_world, session):
    rows = session.query(ApiToken).all()
    assert rows
    secrets = set(api_world.tokens.values())
    for row in rows:
        stored = " ".join(str(getattr(row, c.name)) for c in ApiToken.__table__.columns)
        # gw_ + an 8-character prefix + _ + the secret part (which may itself hold "_")
        assert not any(secret in stored or secret[12:] in stored for secret in secrets)
        assert len(row.token_hash) == 64 and row.prefix in {s[3:11] for s in secrets}


def test_last_used_is_recorded(api, api_world, session):
    assert api.get("/api/v1/projects", as_="trainer").status_code == 200
    session.expire_all()
    row = session.query(ApiToken).filter_by(user_id=api_world.world.trainer.id).one()
    assert row.last_used_at is not None


def test_a_read_only_token_cannot_write(api):
    body = {"name": "From a read-only token", "questions": [{"key": "ok", "type": "label", "title": "OK?",
                                                             "options": {"labels": ["yes", "no"]}}]}
    response = api.post("/api/v1/projects", as_="admin_ro", json=body)
    assert response.status_code == 403
    assert "read-only" in response.get_json()["error"]["message"]
    assert api.get("/api/v1/projects", as_="admin_ro").status_code == 200


def test_a_trainer_token_gets_403_on_admin_endpoints(api):
    response = api.post("/api/v1/projects", as_="trainer", json={"name": "x", "questions": []})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_validation_errors_name_every_field(api):
    response = api.post("/api/v1/projects", json={"name": "", "questions": [], "overlap": 0, "surprise": 1})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid"
    assert {"name", "questions", "overlap", "surprise"} <= set(error["details"])


def test_service_errors_come_back_with_their_fields(api):
    body = {"name": "Bad question", "questions": [{"key": "q", "type": "label", "title": "Q", "options": {}}]}
    response = api.post("/api/v1/projects", json=body)
    assert response.status_code == 422
    assert any(k.startswith("questions[1]") for k in response.get_json()["error"]["details"])


def test_projects_are_paged_by_cursor(api, api_world, session):
    from tests.factories import make_label_project

    for i in range(5):
        make_label_project(session, items=1, slug=f"paged-{i}")
    seen, cursor = [], None
    while True:
        url = "/api/v1/projects?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(url).get_json()
        assert len(body["data"]) <= 2
        seen += [p["slug"] for p in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 8  # alpha, beta, assess and the five
    assert api.get("/api/v1/projects?cursor=not-a-cursor").status_code == 422


def test_each_role_lists_only_its_projects(api):
    def slugs(as_):
        return {p["slug"] for p in api.get("/api/v1/projects", as_=as_).get_json()["data"]}

    assert slugs("admin") == {"alpha", "beta", "assess"}
    assert slugs("trainer") == {"alpha"}
    assert slugs("outsider") == {"beta"}
    assert slugs("client") == {"alpha"}
    assert slugs("reviewer") == {"alpha"}
    assert slugs("stranger") == slugs("applicant") == set()


@pytest.mark.parametrize("change", [{"overlap": "3"}, {"overlap": 3.0}, {"gold_rate": "1e-1"},
                                    {"show_model_names": "yes"}, {"show_model_names": 1}, {"overlap": True}])
def test_a_body_takes_each_value_as_its_json_type(api, change):
    """A number sent as text, a whole number as a float, a boolean as a word or a number: 422, nothing
    changed (the schema declares the types; coercing them hid client bugs)."""
    before = api.get("/api/v1/projects/alpha").get_json()["settings"]
    response = api.patch("/api/v1/projects/alpha", json=change)
    assert response.status_code == 422, response.get_json()
    assert api.get("/api/v1/projects/alpha").get_json()["settings"] == before
    (name, _value), = change.items()
    typed = {"overlap": 3, "gold_rate": 0.1, "show_model_names": True}[name]
    assert api.patch("/api/v1/projects/alpha", json={name: typed}).status_code == 200  # the same, typed


@pytest.mark.parametrize("limit", ["+5", " 5", "5.0", "\u0665", "1e1"])
def test_a_query_number_is_ascii_digits(api, limit):
    assert api.get("/api/v1/projects", query_string={"limit": limit}).status_code == 422
    assert api.get("/api/v1/projects", query_string={"limit": "5"}).status_code == 200


def test_project_wide_progress_is_not_a_trainers(api):
    """Progress counts move for work items only: around a claim they would point a trainer at gold."""
    assert api.get("/api/v1/projects/alpha", as_="trainer").get_json()["progress"] is None
    for caller in ("admin", "client", "reviewer"):
        response = api.get("/api/v1/projects/alpha", as_=caller)
        if response.status_code == 200:
            assert response.get_json()["progress"]["total"] >= 0, caller
    assert api.get("/api/v1/projects/alpha", as_="admin").get_json()["progress"] is not None


def test_a_client_sees_budget_but_not_settings_and_others_see_neither(api):
    client = api.get("/api/v1/projects/alpha", as_="client").get_json()
    assert client["budget"] is not None and client["settings"] is None
    trainer = api.get("/api/v1/projects/alpha", as_="trainer").get_json()
    assert trainer["budget"] is None and trainer["settings"] is None
    assert api.get("/api/v1/projects/beta", as_="client").status_code == 404
    assert api.get("/api/v1/projects/beta", as_="trainer").status_code == 404


def test_admin_creates_and_updates_a_project(api):
    body = {"name": "Made over HTTP", "status": "active", "overlap": 2,
            "questions": [{"key": "ok", "type": "label", "title": "OK?", "options": {"labels": ["yes", "no"]}}]}
    created = api.post("/api/v1/projects", json=body)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["slug"] == "made-over-http"
    assert api.post("/api/v1/projects", json=body).status_code == 422  # the slug is taken
    updated = api.patch("/api/v1/projects/made-over-http", json={"status": "paused", "overlap": 3})
    assert updated.status_code == 200
    assert updated.get_json()["status"] == "paused" and updated.get_json()["settings"]["overlap"] == 3


def test_rate_limit_answers_429_with_retry_after(tmp_path, session_factory_app=None):
    app = build_app(f"sqlite:///{tmp_path / 'limits.sqlite3'}", tmp_path, API_RATE_LIMIT="3 per minute")
    with app.app_context():
        from app.db import get_db
        from app.models import Base

        Base.metadata.create_all(get_db().engine)
    client = app.test_client()
    statuses = [client.get("/api/v1/projects").status_code for _ in range(5)]
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]
    response = client.get("/api/v1/projects")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.get_json()["error"]["code"] == "rate_limited"


def test_made_up_tokens_share_their_addresss_limit(tmp_path, session):
    """A well-formed token gets its own allowance only if it is real: each refused one counts against
    the address, so a client cannot mint a fresh allowance per request. A real token keeps its own."""
    app = build_app(f"sqlite:///{tmp_path / 'limits.sqlite3'}", tmp_path, API_RATE_LIMIT="3 per minute")
    with app.app_context():
        from app.db import get_db
        from app.models import Base

        Base.metadata.create_all(get_db().engine)
    client = app.test_client()
    made_up = [f"gw_{n:08d}_" + "x" * 43 for n in range(5)]
    statuses = [client.get("/api/v1/projects", headers={"Authorization": f"Bearer {t}"}).status_code for t in made_up]
    assert statuses == [401, 401, 401, 429, 429]
    assert client.get("/api/v1/projects").status_code == 429  # the address has spent its allowance


def test_one_persons_tokens_share_one_allowance(tmp_path):
    """Making more tokens buys no more requests: past each token's first request, they all count as
    their owner."""
    app = build_app(f"sqlite:///{tmp_path / 'limits.sqlite3'}", tmp_path, API_RATE_LIMIT="4 per minute")
    with app.app_context():
        from app.db import get_db
        from app.models import Base
        from app.services import api_tokens
        from tests.factories import make_user

        Base.metadata.create_all(get_db().engine)
        session = get_db().session_factory()
        owner, other = make_user(session, "trainer"), make_user(session, "trainer")
        mine = [api_tokens.create(session, owner, f"token {n}").secret for n in range(3)]
        theirs = api_tokens.create(session, other, "theirs").secret
        session.close()
    client = app.test_client()

    def call(secret):
        return client.get("/api/v1/projects", headers={"Authorization": f"Bearer {secret}"}).status_code

    assert [call(secret) for secret in mine] == [200, 200, 200]  # each one's first request: on its own
    assert [call(mine[0]), call(mine[1]), call(mine[2]), call(mine[0])] == [200, 200, 200, 200]
    assert [call(mine[1]), call(mine[2])] == [429, 429]  # four a minute for the person, over three tokens
    assert call(theirs) == 200  # someone else's allowance is their own


def test_the_limit_is_the_apis_alone(tmp_path):
    """Pages share nothing with the API's limit and never reach the limiter's storage; the API is
    still limited after many pages."""
    app = build_app(f"sqlite:///{tmp_path / 'limits.sqlite3'}", tmp_path, API_RATE_LIMIT="2 per minute")
    with app.app_context():
        from app.db import get_db
        from app.models import Base

        Base.metadata.create_all(get_db().engine)
    limiter = app.extensions["api_limiter"]
    looked_up, manager = [], limiter.limit_manager
    real = manager.resolve_limits
    manager.resolve_limits = lambda *a, **k: looked_up.append(a[1]) or real(*a, **k)
    client = app.test_client()
    assert all(client.get("/login").status_code == 200 for _ in range(5))
    assert looked_up == []  # not even looked up for a page
    statuses = [client.get("/api/v1/projects").status_code for _ in range(3)]
    assert statuses == [401, 401, 429] and looked_up


def test_the_document_is_openapi_3_1_and_public(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1")
    assert "/api/v1/projects" in doc["paths"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_reference_page_renders_without_script_or_cdn(client):
    response = client.get("/api/v1/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "GET /api/v1/projects" in page
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_api_ignores_session_cookies(client, api_world):
    from tests.security.conftest import sign_in

    sign_in(client, api_world.world.admin)
    assert client.get("/api/v1/projects").status_code == 401
    assert Api  # the helper is what the other tests use
    assert token_for


@pytest.mark.redis
def test_with_redis_the_limit_holds_across_workers(tmp_path, redis_prefix, redis_conn):
    """Two app instances (two gunicorn workers) share one Redis: the limit counts both."""
    from tests.conftest import REDIS_URL

    apps = [build_app(f"sqlite:///{tmp_path / f'w{i}.sqlite3'}", tmp_path, REDIS_URL=REDIS_URL,
                      REDIS_PREFIX=redis_prefix, API_RATE_LIMIT="4 per minute") for i in range(2)]
    clients = [a.test_client() for a in apps]
    statuses = [clients[i % 2].get("/api/v1/projects").status_code for i in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]
    assert any(redis_prefix.encode() in key for key in redis_conn.scan_iter(match=f"*{redis_prefix}*"))


def test_a_token_follows_its_users_roles_as_they_change(api, api_world, session):
    from app.models import UserRole

    admin = api_world.world.admin
    assert api.get("/api/v1/projects/beta").status_code == 200
    session.query(UserRole).filter_by(user_id=admin.id, role="admin").delete()
    session.add(UserRole(user_id=admin.id, role="reviewer"))
    session.commit()
    assert api.get("/api/v1/projects/beta").status_code == 404
    assert api.post("/api/v1/projects", json={}).status_code == 403


def test_errors_outside_any_view_keep_the_shape(api, client):
    wrong_method = api.request("DELETE", "/api/v1/projects")
    assert wrong_method.status_code == 405 and wrong_method.get_json()["error"]["code"] == "method_not_allowed"
    broken = api.post("/api/v1/projects", data=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.get_json()["error"]["code"] == "bad_request"
    nul = api.post("/api/v1/projects", json={"name": "a\x00b"})
    assert nul.status_code == 400 and "NUL character" in nul.get_json()["error"]["message"]


def test_a_body_that_is_not_json_is_415(api):
    response = api.post("/api/v1/projects", data={"name": "x"})
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_every_model_of_the_document_has_one_name():
    """The document names models by class name: two areas defining one name would share a schema."""
    import importlib
    import inspect
    import pkgutil

    from pydantic import BaseModel

    import app.web.api as package

    seen: dict[str, str] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"app.web.api.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__:
                assert name not in seen, f"{name} is defined in {seen[name]} and {module.__name__}"
                seen[name] = module.__name__
    assert len(seen) > 20


def test_with_redis_unreachable_the_limit_still_holds(tmp_path):
    """Redis away (a port nobody listens on): the API counts in this process's memory, never unlimited."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    app = build_app(f"sqlite:///{tmp_path / 'limits.sqlite3'}", tmp_path, REDIS_URL=f"redis://127.0.0.1:{closed_port}/0",
                    API_RATE_LIMIT="3 per minute")
    client = app.test_client()
    statuses = [client.get("/api/v1/projects").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
