"""The client's pages: their projects' progress, budget burn, versions and quality, trainers by pseudonym
only; other projects are 404, other roles 403; they push items and build and download versions."""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urljoin, urlsplit

import orjson
from sqlalchemy import select

from app.db import get_db
from app.models import (
    Annotation,
    DatasetExport,
    Item,
    Project,
    ProjectMember,
    ProjectStats,
    User,
    UserRole,
)
from app.services import assignment as queue
from app.services import exporting
from app.services import projects as project_service
from app.services import review as review_service
from app.services.exporting.source import Pseudonyms
from app.services.stats import compute_project_stats
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_user


@dataclass
class ClientWorld:
    project: Project  # the client's project: answered by two trainers, with gold, figures and a version
    other: Project  # a project the client has nothing to do with
    client_user: User
    admin: User
    trainers: list[User]
    export_id: int


LABEL = [{"key": "label", "type": "label", "title": "Is it right?", "options": {"labels": ["yes", "no"]}}]


def _project(session, slug: str, budget_cents: int | None = None) -> Project:
    project = project_service.create_project(
        session, name=f"Project {slug}", slug=slug, status="active", overlap=2, gold_rate=1.0, questions=LABEL,
        instructions="Say whether the answer is right.", hourly_rate_cents=3600, budget_cents=budget_cents)
    for n in range(4):
        project_service.add_item(session, project, prompt=f"{slug} question {n}", responses=[f"Answer {n}"],
                                 external_id=f"{slug}-{n}")
    for n in range(2):
        item = project_service.add_item(session, project, prompt=f"{slug} gold {n}", responses=[f"Gold {n}"],
                                        external_id=f"{slug}-gold-{n}")
        item.is_gold, item.gold_answers = True, {"label": "yes"}
    session.commit()
    return project


def _work(session, trainer: User, project: Project, disagree: bool) -> None:
    """The trainer answers everything the queue gives them: gold first (gold rate 1), then work items."""
    while (a := queue.next_task(session, trainer.id, project)) is not None:
        label = "no" if disagree and a.item.external_id.endswith(("-1", "-2")) else "yes"
        queue.submit(session, a.id, trainer.id, {"label": label})


def make_client_world(app, session) -> ClientWorld:
    admin = make_user(session, "admin", name="Ignatius Adminsworth", email="ignatius@staff.example")
    trainers = [make_user(session, "trainer", name="Adaline Quillfeather", email="adaline.q@pii.example"),
                make_user(session, "trainer", name="Bodhrana Fenwickstrand", email="bodhrana.f@pii.example")]
    reviewer = make_user(session, "reviewer", name="Ravindra Reviewsmith", email="ravindra@staff.example")
    client_user = make_user(session, "client", name="Cleo Client", email="cleo@acme-ai.example")
    project = _project(session, "acme-labels", budget_cents=100_000)
    other = _project(session, "rival-labels")
    for p in (project, other):
        for trainer in trainers:
            project_service.add_member(session, p, trainer, "trainer")
        project_service.add_member(session, p, reviewer, "reviewer")
    project_service.add_member(session, project, client_user, "client")
    for p in (project, other):
        _work(session, trainers[0], p, disagree=False)
        _work(session, trainers[1], p, disagree=True)
        compute_project_stats(session, p)
    export = exporting.create_export(session, project, {"format": "raw", "exclude_gold": False}, admin.id)
    with app.app_context():
        exporting.run_export(get_db().session_factory, export.id, app.config["EXPORT_DIR"], app.config["SECRET_KEY"])
    session.commit()
    return ClientWorld(project, other, client_user, admin, trainers, export.id)


def people_but(session, *allowed: User) -> list[str]:
    """Every name and e-mail in the database except ``allowed``'s: what no client page may show."""
    keep = {u.id for u in allowed}
    return [text for user in session.scalars(select(User)) if user.id not in keep for text in (user.name, user.email)]


def trainer_identities(session) -> list[str]:
    """Every trainer's name and e-mail, from the database."""
    trainers = select(UserRole.user_id).where(UserRole.role == "trainer")
    return [text for user in session.scalars(select(User).where(User.id.in_(trainers)))
            for text in (user.name, user.email)]


def sign_in(client, user: User):
    response = login(client, user.email, PASSWORD)
    assert response.status_code == 302
    return client


def test_the_client_sees_their_project_its_budget_and_its_versions(app, client, session):
    w = make_client_world(app, session)
    sign_in(client, w.client_user)
    landing = client.get("/")
    assert landing.status_code == 302 and landing.headers["Location"].endswith("/client/")
    index = client.get("/client/").get_data(as_text=True)
    assert "Project acme-labels" in index and "rival-labels" not in index
    assert 'href="/client/"' in index and ">My projects<" in index  # the nav link
    latest = session.get(DatasetExport, w.export_id)
    assert f">v{latest.version}</a>" in index  # the latest version, by the number its pages show
    page = client.get("/client/acme-labels")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'aria-label="Items complete"' in html and 'data-testid="throughput"' in html and "ETA" in html
    spent = project_service.progress(session, w.project)  # the same figures as the admin's page
    assert f"<strong>{spent['complete']}</strong> complete" in html
    assert 'data-testid="budget-burn"' in html and "of 1,000.00" in html
    assert 'data-testid="latest-version"' in html
    download = f"/admin/projects/acme-labels/exports/{w.export_id}/files/train.jsonl"
    assert f'href="{download}"' in html
    assert "/admin/projects/acme-labels/import" in html and "/client/acme-labels/quality" in html
    assert "Groundwork team" in html  # the admin built the version: no staff name either
    for text in people_but(session, w.client_user):
        assert text not in html


def test_the_quality_page_names_trainers_by_their_dataset_pseudonym_only(app, client, session):
    w = make_client_world(app, session)
    sign_in(client, w.client_user)
    response = client.get("/client/acme-labels/quality")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    pseudonym = Pseudonyms(app.config["SECRET_KEY"])
    assert html.count('data-testid="trainer-row"') == 2
    for trainer in w.trainers:
        assert pseudonym(trainer.id) in html
        assert f"/trainers/{trainer.id}" not in html  # no link to the admin's trainer page
    assert "Gold accuracy" in html and "4 gold answers in all" in html
    assert "α nominal" in html  # agreement per question
    assert "acme-labels-1" in html  # a low-agreement item, by its external id
    # The pseudonyms are the ones the dataset files carry.
    lines = client.get(f"/admin/projects/acme-labels/exports/{w.export_id}/files/train.jsonl").get_data().splitlines()
    assert {orjson.loads(line)["trainer"] for line in lines} == {pseudonym(t.id) for t in w.trainers}
    for text in people_but(session, w.client_user):
        assert text not in html
    by_name = client.get("/client/acme-labels/quality?sort=trainer&dir=asc").get_data(as_text=True)
    rows = re.findall(r'data-testid="trainer-row"><td><code>([^<]+)</code>', by_name)
    assert rows == sorted(pseudonym(t.id) for t in w.trainers)
    assert client.get("/client/acme-labels/quality?sort=name&dir=sideways").status_code == 200  # unknown: default
    assert 'data-testid="answers-since"' not in html  # the figures hold every answer


def test_the_quality_pages_say_how_many_answers_the_figures_do_not_hold_yet(app, client, session):
    w = make_client_world(app, session)
    computed_at = session.scalar(select(ProjectStats.computed_at).where(ProjectStats.project_id == w.project.id))
    newer = session.scalars(select(Annotation).where(Annotation.project_id == w.project.id)).all()[:3]
    for annotation in newer:
        annotation.submitted_at = computed_at + timedelta(seconds=5)
    session.commit()
    sign_in(client, w.client_user)
    html = client.get("/client/acme-labels/quality").get_data(as_text=True)
    assert 'data-testid="answers-since"' in html and "3 newer answers are not in these figures yet" in html
    admin = sign_in(app.test_client(), w.admin)
    html = admin.get("/admin/projects/acme-labels/quality").get_data(as_text=True)
    assert "3 newer answers are not in these figures yet" in html
    # verdicts given since are said too: the review counts and approval rates read them
    reviewer = make_user(session, "reviewer")
    review_service.record_verdict(session, newer[0].id, reviewer.id, "reject", "Wrong label")
    html = client.get("/client/acme-labels/quality").get_data(as_text=True)
    assert "3 newer answers and 1 newer verdict are not in these figures yet" in html


def test_a_verdict_brings_the_quality_figures_up_to_date(app, client, session, monkeypatch):
    """Review counts and approval rates read verdicts: figures older than the minimum interval are due
    again after one, and the reviewer's verdict starts their recompute (an in-process job here)."""
    from app.services import stats as stats_service
    from tests.conftest import csrf_token

    w = make_client_world(app, session)
    stats = session.scalar(select(ProjectStats).where(ProjectStats.project_id == w.project.id))
    before = dict(stats.figures["review"])
    monkeypatch.setattr(stats_service, "STATS_MIN_INTERVAL", timedelta(0))  # figures are never too fresh
    stats_service._computed_seen.clear()
    assert not stats_service.recompute_due(session, w.project)  # no new answer, no verdict
    session.rollback()
    target = session.scalars(select(Annotation).where(Annotation.project_id == w.project.id)
                             .order_by(Annotation.id)).first()
    reviewer = make_user(session, "reviewer")
    project_service.add_member(session, w.project, reviewer, "reviewer")
    sign_in(client, reviewer)
    url = f"/review/acme-labels/annotations/{target.id}/verdict"
    response = client.post(url, data={"csrf_token": csrf_token(client, "/review/acme-labels/queue"),
                                      "verdict": "reject", "comment": "Wrong label"})
    assert response.status_code == 302  # saved, back to the queue
    from tasks import stop_inline_jobs

    stop_inline_jobs(app)  # waits for the recompute the verdict started
    session.rollback()
    after = session.scalar(select(ProjectStats).where(ProjectStats.project_id == w.project.id))
    session.refresh(after)
    assert after.figures["review"]["rejected"] == before["rejected"] + 1
    assert stats_service.verdicts_behind(session, w.project, after) == 0


def test_no_page_a_client_can_reach_shows_a_trainer(app, client, session):
    """Follow every link from the client's start page (their pages, versions, downloads, imports): no
    trainer's name or e-mail anywhere, and no error."""
    w = make_client_world(app, session)
    sign_in(client, w.client_user)
    forbidden = trainer_identities(session)
    assert len(forbidden) == 4
    start = "/client/"
    queue_, seen, visited = [start], {start}, []
    while queue_:
        url = queue_.pop(0)
        response = client.get(url)
        assert response.status_code < 400, f"{url}: {response.status_code}"
        body = response.get_data(as_text=True)
        visited.append(url)
        for text in forbidden:
            assert text not in body, f"{url} shows {text!r}"
        if response.mimetype != "text/html":
            continue
        for href in re.findall(r'href="([^"#]+)"', body):
            target = urljoin(url, href.replace("&amp;", "&"))
            path = urlsplit(target).path
            if target in seen or not path.startswith(("/client", "/admin/projects/acme-labels", "/admin/imports")):
                continue
            seen.add(target)
            queue_.append(target)
    assert any("/quality" in u for u in visited) and any("/files/" in u for u in visited)
    assert any("/exports/" in u and "/files/" not in u for u in visited) and any(u.endswith("/import") for u in visited)


def test_other_projects_do_not_exist_for_a_client(app, client, session):
    w = make_client_world(app, session)
    sign_in(client, w.client_user)
    for url in ("/client/rival-labels", "/client/rival-labels/quality", "/client/nope",
                "/admin/projects/rival-labels/exports/", "/admin/projects/rival-labels/import",
                f"/admin/projects/rival-labels/exports/{w.export_id}",
                f"/admin/projects/rival-labels/exports/{w.export_id}/files/train.jsonl"):
        assert client.get(url).status_code == 404, url
    token = csrf_token(client, "/client/")
    assert client.post("/admin/projects/rival-labels/exports/", data={"csrf_token": token, "format": "raw"}
                       ).status_code == 404
    for url in ("/admin/", "/admin/people", "/admin/audit", "/admin/projects/acme-labels",
                "/admin/projects/acme-labels/quality", f"/admin/projects/acme-labels/trainers/{w.trainers[0].id}",
                "/admin/payroll", "/admin/recruiting/", "/work/", "/review/"):
        assert client.get(url).status_code in (403, 404), url


def test_a_client_whose_membership_is_paused_sees_nothing_of_it(app, client, session):
    w = make_client_world(app, session)
    member = session.scalar(select(ProjectMember).where(ProjectMember.user_id == w.client_user.id))
    project_service.set_member_status(session, member, "paused", actor_id=w.admin.id)
    sign_in(client, w.client_user)
    assert "Project acme-labels" not in client.get("/client/").get_data(as_text=True)
    assert client.get("/client/acme-labels").status_code == 404
    assert client.get("/admin/projects/acme-labels/exports/").status_code == 404


def test_people_who_are_not_clients_get_403(app, client, session):
    w = make_client_world(app, session)
    for user in (w.trainers[0], w.admin):
        browser = sign_in(app.test_client(), user)
        for url in ("/client/", "/client/acme-labels", "/client/acme-labels/quality"):
            assert browser.get(url).status_code == 403, (user.name, url)


def test_a_client_pushes_items_and_builds_a_version(app, client, session):
    w = make_client_world(app, session)
    sign_in(client, w.client_user)
    token = csrf_token(client, "/admin/projects/acme-labels/import")
    lines = b"\n".join(orjson.dumps({"external_id": f"pushed-{n}", "prompt": f"New question {n}",
                                     "responses": [f"New answer {n}"]}) for n in range(3))
    response = client.post("/admin/projects/acme-labels/import", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(lines), "more.jsonl"), "csrf_token": token})
    assert response.status_code == 302
    status_url = response.headers["Location"]
    progress = _until_finished(client, status_url + "/progress")
    assert 'data-status="done"' in progress and 'href="/client/acme-labels"' in progress  # back to their page
    session.rollback()
    pushed = session.scalars(select(Item.external_id).where(Item.project_id == w.project.id,
                                                             Item.external_id.like("pushed-%"))).all()
    assert sorted(pushed) == ["pushed-0", "pushed-1", "pushed-2"]

    versions = client.get("/admin/projects/acme-labels/exports/").get_data(as_text=True)
    assert 'href="/client/acme-labels"' in versions and "Ignatius" not in versions
    response = client.post("/admin/projects/acme-labels/exports/",
                           data={"csrf_token": token, "format": "raw", "exclude_gold": "on"})
    assert response.status_code == 303
    url = response.headers["Location"]
    assert 'data-status="done"' in _until_finished(client, url + "/progress")
    detail = client.get(url).get_data(as_text=True)
    assert "by Cleo Client" in detail  # their own team's names are theirs to see
    body = client.get(url + "/files/train.jsonl").get_data(as_text=True)
    assert body and all(text not in body for text in trainer_identities(session))
    page = client.get("/client/acme-labels").get_data(as_text=True)
    latest = re.search(r'data-export-id="(\d+)" data-testid="latest-version"', page).group(1)
    assert url.endswith(f"/exports/{latest}")


def _until_finished(client, url: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = client.get(url, headers={"HX-Request": "true"})
        if response.status_code == 286:
            return response.get_data(as_text=True)
        time.sleep(0.05)
    raise AssertionError(f"{url} did not finish")


def test_an_admin_adds_a_client_member_from_the_project_page(app, client, session):
    w = make_client_world(app, session)
    newcomer = make_user(session, "client", name="Nia Newclient", email="nia@acme-ai.example")
    sign_in(client, w.admin)
    page = client.get("/admin/projects/rival-labels").get_data(as_text=True)
    assert '<option value="client">client</option>' in page
    token = csrf_token(client, "/admin/projects/rival-labels")
    response = client.post("/admin/projects/rival-labels/members", follow_redirects=True,
                           data={"email": newcomer.email, "role": "client", "csrf_token": token})
    assert "Nia Newclient is now a client on this project." in response.get_data(as_text=True)
    response = client.post("/admin/projects/rival-labels/members", follow_redirects=True,
                           data={"email": newcomer.email, "role": "client", "csrf_token": token})
    assert "Nia Newclient is already a client on this project; nothing changed." in response.get_data(as_text=True)
    # Only accounts holding the client role become clients.
    response = client.post("/admin/projects/rival-labels/members", follow_redirects=True,
                           data={"email": w.trainers[0].email, "role": "client", "csrf_token": token})
    assert "is not a client; give them the client role first" in response.get_data(as_text=True)
    theirs = sign_in(app.test_client(), newcomer)
    assert theirs.get("/client/rival-labels/quality").status_code == 200
    assert theirs.get("/client/acme-labels").status_code == 404


def test_a_project_without_figures_or_versions_says_so(app, client, session):
    client_user = make_user(session, "client")
    project = _project(session, "fresh-labels")
    project_service.add_member(session, project, client_user, "client")
    sign_in(client, client_user)
    assert 'data-testid="no-versions"' in client.get("/client/fresh-labels").get_data(as_text=True)
    assert "no budget set" in client.get("/client/fresh-labels").get_data(as_text=True)
    assert 'data-testid="no-quality"' in client.get("/client/fresh-labels/quality").get_data(as_text=True)
    assert "No finished dataset version yet." in client.get("/client/").get_data(as_text=True)
