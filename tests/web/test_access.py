"""Every view declares who may call it (the full matrix of who gets what is tests/security/test_access_matrix)."""

from tests.conftest import login
from tests.factories import PASSWORD, make_label_project, make_user


def test_every_view_declares_its_access(app):
    undeclared = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        if not getattr(view, "access_roles", None):
            undeclared.append(rule.rule)
    assert undeclared == []


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
