"""The people page: find someone, add someone (with a one-time link to choose their password), and give
or take the trainer, reviewer and client roles. Admin is given on the server only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.errors import ValidationError
from app.models import AuditEvent, User, UserRole
from tests.conftest import login
from tests.factories import PASSWORD, make_user
from tests.security.conftest import sign_in, token


def _add(client, csrf, **form):
    return client.post("/admin/people", data={"csrf_token": csrf, **form})


def test_an_admin_adds_someone_who_then_chooses_their_own_password(app, client, session):
    admin = make_user(session, "admin")
    sign_in(client, admin)
    csrf = token(client, "/admin/people")
    added = _add(client, csrf, name="Rita Reviewer", email="Rita@Example.org", role=["reviewer", "client"])
    page = added.get_data(as_text=True)
    assert added.status_code == 200 and 'data-testid="reset-link"' in page
    link = re.search(r"<code>(http[^<]+/reset/[^<]+)</code>", page).group(1)
    session.rollback()
    rita = session.scalar(select(User).where(User.email == "rita@example.org"))
    assert sorted(rita.roles) == ["client", "reviewer"]
    assert session.scalar(select(AuditEvent.actor_id).where(AuditEvent.action == "user.create",
                                                            AuditEvent.target_id == str(rita.id))) == admin.id
    newcomer = app.test_client()
    path = link.split("://", 1)[1].split("/", 1)[1]
    form = newcomer.get("/" + path).get_data(as_text=True)
    reset_csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    chosen = "a long new password 42"
    assert newcomer.post("/" + path, data={"csrf_token": reset_csrf, "new": chosen, "confirm": chosen}).status_code in (302, 303)
    assert login(app.test_client(), "rita@example.org", chosen).status_code == 302


def test_adding_refuses_bad_input_keeps_it_and_never_makes_an_admin(client, session):
    admin = make_user(session, "admin")
    taken = make_user(session, "trainer")
    sign_in(client, admin)
    csrf = token(client, "/admin/people")
    for form, status, says in (
        ({"name": "No Roles", "email": "none@example.org"}, 422, "at least one role"),
        ({"name": "Boss", "email": "boss@example.org", "role": ["admin"]}, 422, "admin cannot be given here"),
        ({"name": "Odd", "email": "odd@example.org", "role": ["applicant"]}, 422, "applicant cannot be given here"),
        ({"name": "", "email": "not-an-address", "role": ["trainer"]}, 422, "is not an e-mail address"),
        ({"name": "Twice", "email": taken.email, "role": ["trainer"]}, 409, "already exists"),
    ):
        response = _add(client, csrf, **form)
        page = response.get_data(as_text=True)
        assert response.status_code == status and says in page, (form, page[:300])
        assert f'value="{form["email"]}"' in page  # what was typed stays
    session.rollback()
    assert session.scalar(select(User).where(User.email.in_(
        ["none@example.org", "boss@example.org", "odd@example.org", "not-an-address"]))) is None


def test_roles_change_on_the_page_but_never_admin_and_never_ones_own(app, client, session):
    admin, other_admin = make_user(session, "admin"), make_user(session, "admin")
    person = make_user(session, "trainer")
    person.role_rows.append(UserRole(role="applicant"))
    session.commit()
    sign_in(client, admin)
    csrf = token(client, f"/admin/people/{person.id}")

    def held(user_id):  # read afresh (not the test session's copy of the user)
        session.rollback()
        return sorted(session.scalars(select(UserRole.role).where(UserRole.user_id == user_id)))

    def roles(user_id, *chosen):
        return client.post(f"/admin/people/{user_id}/roles", data={"csrf_token": csrf, "role": list(chosen)})

    done = roles(person.id, "reviewer", "client")
    assert done.status_code == 303, done.get_data(as_text=True)[:300]
    assert held(person.id) == ["applicant", "client", "reviewer"]  # applicant stays
    roles(person.id, "admin", "trainer")
    assert held(person.id) == ["applicant", "client", "reviewer"]
    roles(admin.id, "trainer")  # one's own: refused
    roles(other_admin.id)  # takes nothing from an admin but page roles
    assert held(admin.id) == ["admin"] and held(other_admin.id) == ["admin"]
    lonely = make_user(session, "client")
    page = client.get(client.post(f"/admin/people/{lonely.id}/roles", data={"csrf_token": csrf}).headers["Location"])
    assert "keeps at least one role" in page.get_data(as_text=True)
    assert held(lonely.id) == ["client"]
    # the change holds from their next request: a trainer made client-only no longer reaches the work pages
    worker = make_user(session, "trainer")
    theirs = app.test_client()
    login(theirs, worker.email, PASSWORD)
    assert theirs.get("/work/").status_code == 200
    roles(worker.id, "client")
    assert theirs.get("/work/").status_code == 403


def test_people_are_found_by_name_or_e_mail(client, session):
    admin = make_user(session, "admin")
    make_user(session, "trainer", name="Zoë Zimmer", email="zz@example.org")
    make_user(session, "trainer", name="Percent 100%", email="pp@example.org")
    sign_in(client, admin)
    make_user(session, "trainer", name="Émile Ünal", email="eu@example.org")
    for query, expected in (("zimmer", ["Zoë Zimmer"]), ("ZZ@", ["Zoë Zimmer"]), ("émile", ["Émile Ünal"]),
                            ("ÜNAL", ["Émile Ünal"]), ("ZOË", ["Zoë Zimmer"]), ("100%", ["Percent 100%"]),
                            ("%", ["Percent 100%"]), ("_", []), ("nobody", [])):
        page = client.get("/admin/people", query_string={"q": query}).get_data(as_text=True)
        names = re.findall(r'<a href="/admin/people/\d+">([^<]+)</a>', page)
        assert names == expected, (query, names)
        if not expected:
            assert 'data-testid="no-match"' in page
    nul = client.get("/admin/people", query_string={"q": "\x00zz"})
    assert nul.status_code in (200, 400) and nul.status_code < 500  # refused at the door, or read without it


def test_an_admin_never_approves_the_pay_of_an_account_they_made_or_gave_a_link_to(client, session):
    """Adding a trainer and opening their link, an admin could work as them: like their own pay, another
    admin approves and pays it (asked for by line: refused; "all": left open)."""
    from app.models import Timesheet, utcnow
    from app.services import assignment as queue
    from app.services import pay
    from app.services import users as user_service
    from tests.factories import make_label_project

    admin, other_admin = make_user(session, "admin"), make_user(session, "admin")
    made = user_service.invite_user(session, "sock@example.org", "Sock", ["trainer"], admin.id)
    linked = make_user(session, "trainer")
    user_service.issue_reset_link(session, linked, admin.id)
    promoted = make_user(session, "applicant")  # an account from /apply, made a trainer on the people page
    user_service.set_page_roles(session, promoted, ["trainer"], admin.id)
    plain = make_user(session, "trainer")
    project = make_label_project(session, items=8, trainers=[made, linked, promoted, plain])
    for trainer in (made, linked, promoted):  # no bonus from the admin who vouched for them
        with pytest.raises(ValidationError, match="another admin does"):
            pay.adjust(session, trainer.id, project.id, "5000.00", "onboarding", admin.id)
        session.rollback()
    assert pay.adjust(session, promoted.id, project.id, "50.00", "onboarding", other_admin.id).amount_cents == 5000
    for trainer in (made, linked, promoted, plain):
        a = queue.next_task(session, trainer.id, project)
        a.active_seconds = 60
        session.commit()
        queue.submit(session, a.id, trainer.id, {"label": "yes"})
    week = pay.week_of(utcnow())
    for trainer in (made, linked, promoted):
        with pytest.raises(ValidationError, match="an account they made, gave roles to or gave a one-time password"):
            pay.approve(session, week, [(trainer.id, project.id)], admin.id)
        session.rollback()
    approved = pay.approve(session, week, None, admin.id)  # "all": only the trainer they never vouched for
    assert [s.trainer_id for s in approved] == [plain.id]
    by_other = pay.approve(session, week, None, other_admin.id)
    assert sorted(s.trainer_id for s in by_other) == sorted([made.id, linked.id, promoted.id])
    sheet = session.scalar(select(Timesheet).where(Timesheet.trainer_id == made.id))
    with pytest.raises(ValidationError, match="another admin does"):
        pay.mark_paid(session, [sheet.id], "TX-9", admin.id)
    session.rollback()
    assert pay.mark_paid(session, [sheet.id], "TX-9", other_admin.id) == 1


def test_the_pager_keeps_the_search(client, session, monkeypatch):
    from app.web import admin as admin_pages

    monkeypatch.setattr(admin_pages, "PAGE_SIZE", 2)
    admin = make_user(session, "admin")
    for n in range(3):
        make_user(session, "trainer", name=f"Medic {n}", email=f"medic{n}@example.org")
    sign_in(client, admin)
    first = client.get("/admin/people?q=medic").get_data(as_text=True)
    assert 'href="/admin/people?q=medic&amp;page=2" rel="next"' in first
    second = client.get("/admin/people?q=medic&page=2").get_data(as_text=True)
    assert re.findall(r'<a href="/admin/people/\d+">([^<]+)</a>', second) == ["Medic 2"]


def test_look_alike_addresses_and_endless_role_values_are_refused_briefly(client, session):
    """A full-width or Cyrillic letter makes an address that reads as another person's, on every page
    that lists people: refused on the people page and at /apply alike. A refusal repeating what was
    asked for repeats a little of it (it travels in the session cookie)."""
    from app.services import users as user_service
    from tests.conftest import csrf_token
    from tests.web.test_recruiting import apply_form

    admin = make_user(session, "admin")
    sign_in(client, admin)
    csrf = token(client, "/admin/people")
    for address in ("ａdmin@groundwork.test", "newt1@groundwork.tеst", "newt1@groundwork.test.", "a..b@x.org"):
        response = _add(client, csrf, name="Look Alike", email=address, role=["trainer"])
        assert response.status_code == 422, address
        errors = user_service.validate_new_account(user_service.normalise_email(address), "Look Alike",
                                                   "a long password 1", ["applicant"])
        assert "email" in errors, address
    visitor = client.application.test_client()
    applied = visitor.post("/apply", data=apply_form(csrf_token(visitor, "/apply"), email="ａdmin@groundwork.test"))
    assert applied.status_code == 422 and "ASCII letters" in applied.get_data(as_text=True)
    person = make_user(session, "trainer")
    done = client.post(f"/admin/people/{person.id}/roles", data={"csrf_token": csrf, "role": ["x" * 50_000]})
    assert done.status_code == 303 and len(done.headers.get("Set-Cookie", "")) < 4000
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "cannot be given here" in page and "x" * 100 not in page
