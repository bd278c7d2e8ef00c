"""A heartbeat's sign-in is checked at its door: the one locking read it makes anyway also checks the
account (active), the session (its version current) and the trainer role, so a beat reads no user
first. Every refusal answers as the usual check would, in the same order (401, then 403, then 404),
and changes nothing."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select, update

from app.models import Assignment, User, UserRole
from app.services import users as user_service
from app.web.access import Claimed
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_label_project, make_user
from tests.statements import statements

BEAT_RE = re.compile(r'data-heartbeat-url="([^"]+)"')


@pytest.fixture
def beating(client, session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=3, trainers=[trainer])
    login(client, trainer.email, PASSWORD)
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    url = BEAT_RE.search(page).group(1)
    token = csrf_token(client, f"/work/{project.slug}")

    def beat(url=url, **headers):
        return client.post(url, data={"resume": "1"},
                           headers={"X-CSRFToken": token, "Accept": "application/json", **headers})

    assert beat().status_code == 200
    return trainer, project, url, beat


def _marks(session) -> list:
    session.rollback()  # a fresh read (SQLite's snapshot would otherwise be the last one's)
    return session.scalars(select(Assignment.last_heartbeat_at).order_by(Assignment.id)).all()


def test_a_beat_reads_no_user_before_its_door(session, beating):
    _trainer, _project, _url, beat = beating
    responses = []
    seen = statements(session, squeeze=True, call=lambda: responses.append(beat()))
    assert responses[0].status_code == 200
    assert not any(s.startswith("SELECT users.") for s in seen), seen
    door = [s for s in seen if "FROM project_members JOIN assignments" in s]
    assert len(door) == 1 and "user_roles" in door[0] and "session_version" in door[0], seen


def test_a_suspended_account_is_signed_out_at_the_door(session, beating):
    """Status alone (the session version left as it was): the door's own check refuses it."""
    trainer, _project, _url, beat = beating
    before = _marks(session)
    session.execute(update(User).where(User.id == trainer.id).values(status="suspended"))
    session.commit()
    assert beat().status_code == 401
    htmx = beat(**{"HX-Request": "true"})
    assert htmx.status_code == 401 and "/login" in htmx.headers["HX-Redirect"]
    assert _marks(session) == before


def test_an_ended_session_is_signed_out_at_the_door(session, beating):
    trainer, _project, _url, beat = beating
    before = _marks(session)
    user_service.sign_out_everywhere(session, trainer, None)  # a new session version
    assert beat().status_code == 401
    assert _marks(session) == before


def test_a_revoked_trainer_role_is_forbidden_at_the_door(session, beating):
    """Still a member of the project, no longer a trainer: 403 as before, and no time."""
    trainer, _project, _url, beat = beating
    before = _marks(session)
    session.execute(update(UserRole).where(UserRole.user_id == trainer.id).values(role="reviewer"))
    session.commit()
    assert beat().status_code == 403
    assert _marks(session) == before


def test_the_usual_check_answers_first_when_the_door_finds_no_task(app, session, beating):
    """The door finds nothing for a task that is not the caller's: a trainer gets 404, but a signed-in
    admin gets 403 and nobody gets 401, as without the check at the door."""
    _trainer, _project, url, beat = beating
    held = session.scalar(select(Assignment.id))
    assert beat(url.replace(f"/tasks/{held}/", "/tasks/999999/")).status_code == 404
    before = _marks(session)
    for roles, expected in ((("admin",), 403), (("trainer",), 404), (("reviewer", "admin"), 403)):
        person, other = make_user(session, *roles), app.test_client()
        login(other, person.email, PASSWORD)
        token = csrf_token(other, "/account/password")
        answer = other.post(url, headers={"X-CSRFToken": token, "Accept": "application/json"})
        assert answer.status_code == expected, roles
    nobody = app.test_client()
    token = csrf_token(nobody, "/login")
    assert nobody.post(url, headers={"X-CSRFToken": token, "Accept": "application/json"}).status_code == 401
    assert _marks(session) == before


def test_a_session_the_door_refused_but_the_usual_check_accepts_beats_with_the_user_read(
        session, beating, monkeypatch):
    """A session that changed between the two checks (refused at the door, accepted when read): the
    view runs again with the user read, and the beat counts."""
    _trainer, _project, _url, beat = beating
    answers = iter([False])
    real = user_service.session_holds
    monkeypatch.setattr(user_service, "session_holds", lambda *a: next(answers, real(*a)))
    before = _marks(session)
    responses = []
    seen = statements(session, squeeze=True, call=lambda: responses.append(beat()))
    assert responses[0].status_code == 200
    assert any(s.startswith("SELECT users.") for s in seen), seen  # the usual read, after the refusal
    assert _marks(session) != before, seen


class _Deadlock(Exception):
    sqlstate = "40P01"


def test_a_deadlock_at_the_door_leaves_the_sign_in_to_the_usual_check(session, beating, monkeypatch):
    """A door that could not run checked nobody: an ended session gets 401 all the same, a current one
    has its beat dropped (as any deadlocked beat) and answered 200."""
    from sqlalchemy.exc import OperationalError

    from app.services import assignment as queue

    trainer, _project, _url, beat = beating
    real = queue._lock_task

    def deadlocked(*args, **kwargs):
        raise OperationalError("SELECT … FOR NO KEY UPDATE", {}, _Deadlock())

    monkeypatch.setattr(queue, "_lock_task", deadlocked)
    answer = beat()
    assert answer.status_code == 200 and set(answer.get_json()) == {"active_seconds", "status"}
    user_service.sign_out_everywhere(session, trainer, None)
    assert beat().status_code == 401
    monkeypatch.setattr(queue, "_lock_task", real)
    assert beat().status_code == 401


def test_a_remember_cookie_is_read_the_usual_way(app, session):
    """Only the session's own user id is taken unread; a remember cookie's is read by the usual check."""
    from flask_login import user_loaded_from_cookie
    from flask_login.utils import encode_cookie

    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer])
    first = app.test_client()
    login(first, trainer.email, PASSWORD)
    url = BEAT_RE.search(first.get(f"/work/{project.slug}").get_data(as_text=True)).group(1)
    with first.session_transaction() as signed_in:
        fingerprint = signed_in["_id"]
    other = app.test_client()
    token = csrf_token(other, "/login")  # a session with a CSRF token and no user
    session.rollback()
    with app.app_context():
        other.set_cookie("remember_token", encode_cookie(f"{trainer.id}:{trainer.session_version}"))
    with other.session_transaction() as fresh:
        fresh["_id"] = fingerprint
    loaded = []

    def seen(_app, user=None, **_kw):
        loaded.append(type(user).__name__)

    user_loaded_from_cookie.connect(seen)
    try:
        other.post(url, data={"resume": "1"}, headers={"X-CSRFToken": token, "Accept": "application/json"})
    finally:
        user_loaded_from_cookie.disconnect(seen)
    assert "Claimed" not in loaded


def test_only_an_at_door_view_takes_a_claim(app, session):
    """A claim left on the request by mistake never opens another view: its role is asked of the
    claim, which answers no role question (an error, not the page)."""
    from flask import g
    from flask import session as cookie_session

    from app.web import access

    trainer = make_user(session, "trainer")
    ran = []

    @access.require("admin")
    def admin_only():
        ran.append(True)
        return "admin page"

    with app.test_request_context("/"):
        cookie_session["_user_id"] = f"{trainer.id}:{trainer.session_version}"
        cookie_session["_id"] = app.login_manager._session_identifier_generator()
        cookie_session[access.SIGNED_IN_AT] = int(time.time())
        setattr(g, access._AT_DOOR, cookie_session["_user_id"])
        with pytest.raises(Exception):  # noqa: B017 - 403 or the claim's refusal, never the page
            admin_only()
    assert ran == []
    with pytest.raises(ValueError):
        access.require("admin", at_door=True)


def test_an_error_page_draws_nobody_rather_than_an_unread_claim(app):
    """Something failing after the view (an after-request hook, saving the session) draws the error
    page for nobody: the page's navigation would otherwise ask the claim for roles."""
    from flask import g

    from app.web.errors import render_error

    with app.test_request_context("/work/x/tasks/1/heartbeat", method="POST"):
        g._login_user = Claimed(1, 1)
        body, status, _headers = render_error(500)
        assert status == 500 and "<html" in body and "Sign out" not in body


def test_a_claimed_session_answers_no_role_question():
    claimed = Claimed(7, 3)
    assert claimed.get_id() == "7:3" and claimed.is_authenticated
    with pytest.raises(RuntimeError):
        claimed.has_role("trainer")
