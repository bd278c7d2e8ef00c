import re
import threading

from sqlalchemy import event, func, select

from app.models import Annotation, Domain, UserRole
from app.services.stats import compute_project_stats
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_applicant, make_label_project, make_user
from tests.html import assert_inert

HOSTILE_PROMPT = (
    "Is this fine? <script>window.pwned = 1</script> <img src=x onerror=\"window.pwned = 2\"> "
    "[click](javascript:window.pwned=3)"
)


def _signed_in_trainer(client, session, **project_kwargs):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, trainers=[trainer], **project_kwargs)
    login(client, trainer.email, PASSWORD)
    return trainer, project


def _submit_url(page: str) -> str:
    return re.search(r'hx-post="(/work/[^"]+/submit)"', page).group(1)


def test_trainer_sees_their_projects(client, session):
    _trainer, project = _signed_in_trainer(client, session)
    page = client.get("/work/").get_data(as_text=True)
    assert project.name in page and "0 tasks done by you here" in page


def test_a_project_with_nothing_to_do_says_so_instead_of_offering_to_start(client, session):
    """My work offers "Start working" only where items still want answers: a project without items,
    or whose items all have their answers, says which."""
    from app.services import assignment as queue

    trainer, project = _signed_in_trainer(client, session, items=1, slug="one-item")
    make_label_project(session, items=0, trainers=[trainer], slug="no-items")
    cards = client.get("/work/").get_data(as_text=True).split('<article class="card">')[1:]
    card = {slug: next(c for c in cards if f"/work/{slug}" in c) for slug in ("one-item", "no-items")}
    assert "Start working" in card["one-item"] and "No items yet" in card["no-items"]
    assert "Start working" not in card["no-items"]
    task = queue.next_task(session, trainer.id, project)
    queue.submit(session, task.id, trainer.id, {"label": "yes"})
    page = client.get("/work/").get_data(as_text=True)
    done_card = next(c for c in page.split('<article class="card">')[1:] if "/work/one-item" in c)
    assert "Every item has all its answers" in done_card and "Start working" not in done_card


def test_my_latest_tasks_show_open_lapsed_skipped_and_submitted_work(client, session):
    """My work lists the trainer's latest tasks in the states a lease goes through, newest first,
    without telling gold from work."""
    from datetime import timedelta

    from app.models import utcnow
    from app.services import assignment as queue

    trainer, project = _signed_in_trainer(client, session, items=4, slug="states")
    now = utcnow()
    done = queue.next_task(session, trainer.id, project, now=now - timedelta(hours=5))
    queue.submit(session, done.id, trainer.id, {"label": "yes"}, now=now - timedelta(hours=5))
    skipped = queue.next_task(session, trainer.id, project, now=now - timedelta(hours=4))
    queue.skip(session, skipped.id, trainer.id, "outside what I know", now=now - timedelta(hours=4))
    queue.next_task(session, trainer.id, project, now=now - timedelta(hours=3))  # left: its lease lapsed
    page = client.get("/work/").get_data(as_text=True)
    assert re.findall(r'data-state="(\w+)"', page) == ["lapsed", "skipped", "submitted"]
    assert re.search(r"skipped at \d\d:\d\d: outside what I know", page) and "it went back to the queue" in page
    assert re.search(r"submitted at \d\d:\d\d", page)
    opened = re.findall(r"<td>(\d{4}-\d\d-\d\d \d\d:\d\d)</td>\s*</tr>", page)
    assert opened == sorted(opened, reverse=True) and len(opened) == 3  # the order the list is in
    client.get("/work/states")  # opening the project holds a task again
    page = client.get("/work/").get_data(as_text=True)
    assert re.findall(r'data-state="(\w+)"', page)[0] == "open" and "held until" in page
    assert "is_gold" not in page and "data-item" not in page


def test_my_application_is_linked_only_for_a_trainer_who_applied(app, client, session):
    _trainer, _project = _signed_in_trainer(client, session)
    assert "/candidate" not in client.get("/work/").get_data(as_text=True)  # added directly: no application
    session.add(Domain(slug="medicine", name="Medicine"))
    session.commit()
    applicant = make_applicant(session)
    applicant.role_rows.append(UserRole(role="trainer"))
    session.commit()
    other = app.test_client()
    login(other, applicant.email, PASSWORD)
    assert 'href="/candidate"' in other.get("/work/").get_data(as_text=True)


def test_submit_over_htmx_returns_the_next_task_as_a_fragment(client, session):
    _trainer, project = _signed_in_trainer(client, session, items=3)
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    assert 'Prompt number 1' in page
    token = csrf_token(client, f"/work/{project.slug}")
    response = client.post(
        _submit_url(page), data={"answer.label": "yes", "csrf_token": token}, headers={"HX-Request": "true"}
    )
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in fragment and "Prompt number 2" in fragment
    assert "1 done this session" in fragment
    assert session.scalar(select(Annotation.answers)) == {"label": "yes"}


def test_missing_answer_rerenders_the_task_with_an_inline_error(client, session):
    _trainer, project = _signed_in_trainer(client, session)
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    token = csrf_token(client, f"/work/{project.slug}")
    response = client.post(_submit_url(page), data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "choose a label" in body and 'Prompt number 1' in body
    assert session.scalar(select(func.count(Annotation.id))) == 0


def test_double_submit_stores_one_annotation(client, session):
    _trainer, project = _signed_in_trainer(client, session, items=3)
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    token = csrf_token(client, f"/work/{project.slug}")
    url = _submit_url(page)
    for _ in range(2):
        response = client.post(url, data={"answer.label": "no", "csrf_token": token}, headers={"HX-Request": "true"})
        assert response.status_code == 200 and "Prompt number 2" in response.get_data(as_text=True)
    assert session.scalar(select(func.count(Annotation.id))) == 1


def test_a_submit_reads_nothing_before_its_door(client, session):
    """The project, the membership, the task, the item and the questions come from the one door's
    locking read and the questions it locks: before it, only the signed-in user is read."""
    _trainer, project = _signed_in_trainer(client, session, items=3)
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    token = csrf_token(client, f"/work/{project.slug}")
    seen: list[str] = []

    request_thread = threading.get_ident()  # the test client runs the request here; jobs run on their own

    def executed(_conn, _cursor, statement, *_args):
        if threading.get_ident() == request_thread:
            seen.append(" ".join(statement.split()))

    engine = session.get_bind()
    event.listen(engine, "after_cursor_execute", executed)
    try:
        response = client.post(_submit_url(page), data={"answer.label": "yes", "csrf_token": token},
                               headers={"HX-Request": "true"})
    finally:
        event.remove(engine, "after_cursor_execute", executed)
    assert response.status_code == 200 and "Prompt number 2" in response.get_data(as_text=True)
    door = next(i for i, s in enumerate(seen) if "FROM project_members JOIN assignments" in s)
    before = [s for s in seen[:door] if s.startswith("SELECT")]
    assert len(before) == 1 and "FROM users" in before[0], "\n".join(seen[:door])
    # The project row is read by the door only (a completing answer may still lock it: ``SELECT projects.id``).
    assert not any(s.startswith("SELECT projects.id, projects.name") for s in seen), "\n".join(seen)


def _transactions(session, call) -> list[list[str]]:
    """The statements ``call`` ran, grouped by transaction: a group ends at each commit or rollback."""
    engine = session.get_bind()
    groups: list[list[str]] = [[]]

    request_thread = threading.get_ident()  # the test client runs the request here; jobs run on their own

    def ended(_conn):
        if threading.get_ident() == request_thread:
            groups.append([])

    def executed(_conn, _cursor, statement, *_args):
        if threading.get_ident() == request_thread:
            groups[-1].append(" ".join(statement.split()))

    listeners = (("commit", ended), ("rollback", ended), ("after_cursor_execute", executed))
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        call()
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)
    return [g for g in groups if g]


def test_the_task_screen_is_read_in_the_claims_own_transaction(client, session):
    """After a submit, the next task's item and the sitting's count come with its claim, before the
    claim commits: no transaction of their own afterwards. A workspace load reads the questions there too."""
    _trainer, project = _signed_in_trainer(client, session, items=4)
    compute_project_stats(session, project)  # fresh figures: no statistics job is due after these submits
    session.commit()
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    token = csrf_token(client, f"/work/{project.slug}")
    # The first submit after a computation asks once for a later look at the figures (its hand-over ends
    # the transaction); the next ones ask nothing.
    page = client.post(_submit_url(page), data={"answer.label": "yes", "csrf_token": token},
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    responses = []
    groups = _transactions(session, lambda: responses.append(client.post(
        _submit_url(page), data={"answer.label": "yes", "csrf_token": token}, headers={"HX-Request": "true"})))
    fragment = responses[0].get_data(as_text=True)
    assert "Prompt number 3" in fragment and "2 done this session" in fragment
    submit = next(i for i, g in enumerate(groups) if any(s.startswith("INSERT INTO annotations") for s in g))
    assert len(groups) == submit + 2, groups  # the submit, then the claim with all its screen shows
    claim = groups[-1]
    assert any(s.startswith("INSERT INTO assignments") for s in claim)
    assert any("project_members.sitting_tasks" in s for s in claim)
    assert any(s.startswith("SELECT items.id, items.project_id, items.external_id, items.context") for s in claim)

    groups = _transactions(session, lambda: responses.append(client.get(f"/work/{project.slug}")))
    assert "Prompt number 3" in responses[1].get_data(as_text=True)
    claim = groups[-1]  # the held task shown again: membership, task, item and questions in one transaction
    assert any("project_members.sitting_tasks" in s for s in claim)
    assert any(s.startswith("SELECT items.id, items.project_id, items.external_id, items.context") for s in claim)
    assert any("FROM questions" in s for s in claim), groups


def test_a_submit_of_a_skipped_task_says_so_and_shows_the_next_task(client, session):
    _trainer, project = _signed_in_trainer(client, session, items=3)
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    token = csrf_token(client, f"/work/{project.slug}")
    submit_url, htmx = _submit_url(page), {"HX-Request": "true"}
    skipped = client.post(submit_url.replace("/submit", "/skip"), data={"reason": "unclear", "csrf_token": token},
                          headers=htmx)
    assert skipped.status_code == 200 and "Prompt number 2" in skipped.get_data(as_text=True)
    response = client.post(submit_url, data={"answer.label": "yes", "csrf_token": token}, headers=htmx)
    body = response.get_data(as_text=True)
    assert response.status_code == 409 and "skipped and cannot be submitted" in body and "Prompt number 2" in body
    assert session.scalar(select(func.count(Annotation.id))) == 0


def test_a_submit_through_another_project_or_while_paused_stores_nothing(client, session):
    from app.models import ProjectMember

    trainer, project = _signed_in_trainer(client, session)
    other = make_label_project(session, trainers=[trainer])
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    token = csrf_token(client, f"/work/{project.slug}")
    url = _submit_url(page)
    data, htmx = {"answer.label": "yes", "csrf_token": token}, {"HX-Request": "true"}
    assert client.post(url.replace(project.slug, other.slug), data=data, headers=htmx).status_code == 404
    assert client.post(url.replace(project.slug, "no-such-project"), data=data, headers=htmx).status_code == 404
    member = session.scalar(select(ProjectMember).where(ProjectMember.user_id == trainer.id,
                                                        ProjectMember.project_id == project.id))
    member.status = "paused"
    session.commit()
    response = client.post(url, data=data, headers=htmx)
    assert response.status_code == 403 and "You are paused in this project" in response.get_data(as_text=True)
    assert session.scalar(select(func.count(Annotation.id))) == 0


def test_submit_without_csrf_changes_nothing(client, session):
    _trainer, project = _signed_in_trainer(client, session)
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    response = client.post(_submit_url(page), data={"answer.label": "yes"})
    assert response.status_code == 400
    assert session.scalar(select(func.count(Annotation.id))) == 0


def test_empty_queue_says_so(client, session):
    _trainer, project = _signed_in_trainer(client, session, items=0)
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    assert 'data-testid="queue-empty"' in page and "Nothing left for you here" in page


def test_hostile_item_text_is_rendered_inert(client, session):
    _trainer, project = _signed_in_trainer(client, session, items=1, prompts=[HOSTILE_PROMPT])
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    assert_inert(page)
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page


def test_a_paused_trainer_is_told_so_and_gets_no_task(client, session):
    from app.models import ProjectMember

    trainer, project = _signed_in_trainer(client, session)
    member = session.scalar(select(ProjectMember).where(ProjectMember.user_id == trainer.id))
    member.status, member.flagged_reason = "paused", "gold accuracy 0% over the last 3 gold answers (minimum 60%)"
    session.commit()
    response = client.get(f"/work/{project.slug}")
    body = response.get_data(as_text=True)
    assert response.status_code == 403 and "You are paused in this project" in body
    assert "gold" not in body  # the admins' reason would say which items were gold
    assert "paused in this project; an admin can reinstate you" in client.get("/work/").get_data(as_text=True)


def test_the_item_and_its_questions_name_each_response_alike(client, session):
    """An item with one response and one with two: the conversation, the span widget and the reading of a
    stored answer call each response by one name (no "assistant" above a question that says "Response A")."""
    from app.services import projects as project_service

    trainer = make_user(session, "trainer")
    project = project_service.create_project(
        session, name="Spans", slug="spans", status="active", instructions="Mark them.",
        questions=[{"key": "spans", "type": "span", "title": "Mark errors", "required": False,
                    "options": {"labels": ["wrong", "unsafe"]}}])
    project_service.add_member(session, project, trainer, "trainer")
    project_service.add_item(session, project, prompt="One", responses=["Only answer"], external_id="one")
    session.commit()
    login(client, trainer.email, PASSWORD)
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    names = re.findall(r'<div class="turn-role">(\w[\w ]*?)\s*</div>', page)
    assert names == ["user", "Response"], names
    assert re.findall(r"<strong>(Response[\w ]*)</strong>", page) == ["Response"]
    assert 'aria-label="Text of response"' in page
    project_service.add_item(session, project, prompt="Two", responses=["First", "Second"], external_id="two")
    session.commit()
    token = csrf_token(client, f"/work/{project.slug}")
    page = client.post(_submit_url(page), data={"answer.spans": "[]", "csrf_token": token},
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    assert re.findall(r"<div class=\"turn-role\">(\w[\w ]*?)\s*</div>", page) == ["user", "Response A", "Response B"]
    assert re.findall(r"<strong>(Response[\w ]*)</strong>", page) == ["Response A", "Response B"]
