import re

from sqlalchemy import func, select

from app.models import Annotation
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_label_project, make_user
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
    _trainer, project = _signed_in_trainer(client, session)
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    token = csrf_token(client, f"/work/{project.slug}")
    url = _submit_url(page)
    for _ in range(2):
        client.post(url, data={"answer.label": "no", "csrf_token": token}, headers={"HX-Request": "true"})
    assert session.scalar(select(func.count(Annotation.id))) == 1


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
