"""Walk every route for every role: each view declares who may call it, and the answers agree."""

import pytest
from flask import url_for

from tests.conftest import login
from tests.factories import PASSWORD, make_label_project, make_user

ROLES = ["anonymous", "applicant", "trainer", "reviewer", "admin"]


def test_every_view_declares_its_access(app):
    undeclared = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        if not getattr(view, "access_roles", None):
            undeclared.append(rule.rule)
    assert undeclared == []


def _expected(roles_allowed, role):
    if roles_allowed == ("public",):
        return "ok"
    if role == "anonymous":
        return "login"
    if roles_allowed == ("signed-in",) or role in roles_allowed:
        return "ok"
    return "forbidden"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_its_routes_declare(app, client, session, role):
    project = make_label_project(session, items=2, slug="walk")
    if role != "anonymous":
        user = make_user(session, role)
        if role in ("trainer", "applicant"):
            from app.services.projects import add_member

            add_member(session, project, user, "trainer")
            session.commit()
        assert login(client, user.email, PASSWORD).status_code == 302
    values = {"slug": "walk", "assignment_id": 999999, "import_id": 999999, "member_id": 999999,
              "annotation_id": 999999, "user_id": 999999, "export_id": 999999, "name": "train.jsonl"}
    routes = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint != "static" and "GET" in rule.methods:
                routes.append((rule, url_for(rule.endpoint, **{k: values[k] for k in rule.arguments})))
    assert len(routes) >= 10
    for rule, url in routes:
        response = client.get(url)
        expected = _expected(app.view_functions[rule.endpoint].access_roles, role)
        where = f"{role} GET {url}"
        if expected == "login":
            assert response.status_code == 302 and "/login" in response.headers["Location"], where
        elif expected == "forbidden":
            assert response.status_code == 403, where
        else:
            assert response.status_code in (200, 301, 302, 404), where
            assert response.status_code != 500, where


def test_trainer_requesting_an_admin_page_gets_403(client, session):
    trainer = make_user(session, "trainer")
    login(client, trainer.email, PASSWORD)
    response = client.get("/admin/")
    assert response.status_code == 403
    assert "does not have access" in response.get_data(as_text=True)


def test_anonymous_workspace_request_redirects_to_login(client, session):
    make_label_project(session, slug="private")
    response = client.get("/work/private")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/work/private")


def test_trainer_cannot_open_a_project_they_are_not_on(client, session):
    trainer = make_user(session, "trainer")
    make_label_project(session, slug="elsewhere")
    login(client, trainer.email, PASSWORD)
    assert client.get("/work/elsewhere").status_code == 404


def test_htmx_request_after_sign_out_is_sent_to_login(client, session):
    make_label_project(session, slug="p")
    response = client.get("/work/p/task", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_htmx_errors_come_back_as_a_fragment_for_the_flash_area(client, session):
    trainer = make_user(session, "trainer")
    login(client, trainer.email, PASSWORD)
    response = client.get("/admin/", headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert response.headers["HX-Retarget"] == "#flash"
    body = response.get_data(as_text=True)
    assert "<html" not in body and 'role="alert"' in body
