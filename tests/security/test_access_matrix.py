"""The access matrix: every rule of the URL map, GET and POST, for every kind of visitor, against a
table of the exact status each must get. A route without a row fails the test.

Visitors: anonymous; an applicant (on an assessment only); the trainer member of the project; a
trainer of another project; the reviewer member; a reviewer who is a member of nothing; a client of
the project (the AI team that ordered its data); an admin.
POSTs carry a valid CSRF token and an empty or harmless form, so each answer shows who may act, not
whether the action succeeded.
"""

from __future__ import annotations

import pytest
from flask import url_for

from tests.conftest import csrf_token

from .conftest import routes, sign_in, token

VISITORS = ("anonymous", "applicant", "trainer", "outsider", "reviewer", "stranger", "client", "admin")
SIGNED_IN = VISITORS[1:]
L = "login"  # 302 to the sign-in page (or 401 with HX-Redirect for htmx)


def everyone(status):
    return {v: status for v in VISITORS}


def signed_in(status):
    return {"anonymous": L, **{v: status for v in SIGNED_IN}}


def admin_only(status):
    return {"anonymous": L, **{v: 403 for v in SIGNED_IN}, "admin": status}


def managers(status):
    """A project's data (exports, imports): admins and the project's clients."""
    return {**admin_only(status), "client": status}


def clients(status):
    """/client/…: the client's own pages; nobody else holds the client role."""
    return {"anonymous": L, **{v: 403 for v in SIGNED_IN}, "client": status}


def workers(mine, elsewhere_trainer=404):
    """/work/<project>/…: the trainer member gets ``mine``; other trainers see no such project;
    applicants, reviewers, clients and admins hold no trainer role."""
    return {"anonymous": L, "applicant": 403, "trainer": mine, "outsider": elsewhere_trainer,
            "reviewer": 403, "stranger": 403, "client": 403, "admin": 403}


def candidates(mine, trainers=404):
    """/candidate/…: the applicant's own application and interview; a trainer has none of theirs
    (no such thing); reviewers and admins are not candidates."""
    return {"anonymous": L, "applicant": mine, "trainer": trainers, "outsider": trainers,
            "reviewer": 403, "stranger": 403, "client": 403, "admin": 403}


def trainers(status, elsewhere=None):
    """Trainer-only pages that are not a project's: the trainer gets ``status``; the outsider (a trainer
    too) ``elsewhere``, the same by default; applicants, reviewers and admins hold no trainer role."""
    return {"anonymous": L, "applicant": 403, "trainer": status, "outsider": status if elsewhere is None else elsewhere,
            "reviewer": 403, "stranger": 403, "client": 403, "admin": 403}


def graders(status):
    """Grading written answers: reviewers (any) and admins."""
    return {"anonymous": L, "applicant": 403, "trainer": 403, "outsider": 403, "reviewer": status,
            "stranger": status, "client": 403, "admin": status}


def reviewers(mine):
    """/review/<project>/…: the reviewer member and admins; a reviewer of nothing sees no such project."""
    return {"anonymous": L, "applicant": 403, "trainer": 403, "outsider": 403, "reviewer": mine, "stranger": 404,
            "client": 403, "admin": mine}


MATRIX = {
    ("GET", "home.index"): {"anonymous": 302, **{v: 302 for v in SIGNED_IN}},
    ("GET", "home.healthz"): everyone(200),
    # operations: readiness names what failed (the test schema is made from the models, never
    # migrated: 503); metrics are served to loopback without a token (the test client is 127.0.0.1)
    ("GET", "ops.readyz"): everyone(503),
    ("GET", "ops.metrics"): everyone(200),
    ("GET", "home.favicon"): everyone(301),
    ("GET", "auth.login"): {"anonymous": 200, **{v: 302 for v in SIGNED_IN}},
    ("POST", "auth.login"): everyone(401),  # an empty form signs nobody in
    ("GET", "auth.change_password"): signed_in(200),
    ("POST", "auth.change_password"): signed_in(422),
    ("GET", "auth.reset"): everyone(404),  # an unknown token opens nothing, for anyone
    ("POST", "auth.reset"): everyone(404),
    ("POST", "auth.logout"): signed_in(302),
    # one's own API tokens
    ("GET", "tokens.index"): signed_in(200),
    ("POST", "tokens.create"): signed_in(422),  # no name
    ("POST", "tokens.revoke"): signed_in(404),  # not one of theirs
    # the trainer's own pages
    ("GET", "work.index"): workers(200, 200),
    ("GET", "work.feedback"): workers(200, 200),
    ("GET", "pay.earnings"): workers(200, 200),
    ("GET", "work.workspace"): workers(200),
    ("GET", "work.task"): workers(200),
    ("POST", "work.submit"): workers(422),
    ("POST", "work.heartbeat"): workers(200),
    ("POST", "work.skip"): workers(422),
    # review
    ("GET", "review.index"): {"anonymous": L, "applicant": 403, "trainer": 403, "outsider": 403, "reviewer": 200,
                              "stranger": 200, "client": 403, "admin": 200},
    ("GET", "review.project"): reviewers(200),
    ("GET", "review.queue"): reviewers(200),
    ("POST", "review.verdict"): reviewers(422),
    # admin
    ("GET", "admin.index"): admin_only(200),
    ("GET", "admin.audit"): admin_only(200),
    ("GET", "admin.people"): admin_only(200),
    ("POST", "admin.create_person"): admin_only(422),  # no name, no e-mail
    ("POST", "admin.person_roles"): admin_only(303),
    ("GET", "admin.person"): admin_only(200),
    ("POST", "admin.person_status"): admin_only(422),
    ("POST", "admin.person_sign_out"): admin_only(303),
    ("POST", "admin.person_reset_link"): admin_only(200),
    ("GET", "admin.project"): admin_only(200),
    ("GET", "admin.new_project"): admin_only(200),
    ("POST", "admin.new_project"): admin_only(422),
    ("GET", "admin.edit_project"): admin_only(200),
    ("POST", "admin.edit_project"): admin_only(422),
    ("GET", "admin.question_row"): admin_only(200),
    ("POST", "admin.add_member"): admin_only(302),  # an empty e-mail: flashed, nothing added
    ("POST", "admin.member_status"): admin_only(422),
    # pushing items: admins and the project's clients
    ("GET", "admin.import_items"): managers(200),
    ("POST", "admin.import_items"): managers(422),
    ("GET", "admin.import_status"): managers(200),
    ("GET", "admin.import_progress"): managers(286),  # finished: htmx stops polling
    ("POST", "admin.abandon_import"): managers(409),  # a finished import is not stalled
    ("GET", "admin.quality"): admin_only(200),
    ("POST", "admin.recompute_quality"): admin_only(302),
    ("GET", "admin.trainer_detail"): admin_only(200),
    ("POST", "admin.exclude_trainer"): admin_only(302),
    # dataset versions: admins and the project's clients build, watch and download them
    ("GET", "exports.index"): managers(200),
    ("POST", "exports.create"): managers(422),
    ("GET", "exports.detail"): managers(200),
    ("GET", "exports.progress"): managers(286),
    ("POST", "exports.retry"): managers(409),  # a finished version never runs again
    ("GET", "exports.download"): managers(200),
    # webhooks: admins only
    ("GET", "webhooks.index"): admin_only(200),
    ("POST", "webhooks.create"): admin_only(422),  # no address, no event
    ("POST", "webhooks.set_active"): admin_only(422),  # neither enable nor disable
    ("POST", "webhooks.rotate"): admin_only(303),
    ("POST", "webhooks.delete"): admin_only(422),  # not confirmed
    ("POST", "webhooks.send_test"): admin_only(303),  # a ping, posted once after the commit
    ("GET", "webhooks.delivery"): admin_only(200),
    ("POST", "webhooks.redeliver"): admin_only(303),  # the failed delivery goes again
    # the client's pages: their projects, one project, its quality (trainers by pseudonym)
    ("GET", "client.index"): clients(200),
    ("GET", "client.project"): clients(200),
    ("GET", "client.quality"): clients(200),
    ("GET", "pay.payroll"): admin_only(200),
    ("GET", "pay.payroll_csv"): admin_only(200),
    ("POST", "pay.approve"): admin_only(303),  # nothing ticked: flashed
    ("POST", "pay.mark_paid"): admin_only(303),
    ("POST", "pay.adjust"): admin_only(422),
    # recruiting: the public form, the candidate's side, grading
    ("GET", "recruiting.apply"): {"anonymous": 200, **{v: 302 for v in SIGNED_IN}},
    ("POST", "recruiting.apply"): {"anonymous": 422, **{v: 302 for v in SIGNED_IN}},
    ("GET", "recruiting.candidate"): candidates(200, trainers=200),  # a trainer: "you have no application"
    ("POST", "recruiting.start_interview"): candidates(302),  # resumes the interview under way
    ("GET", "recruiting.interview"): candidates(200),
    ("POST", "recruiting.answer"): candidates(422),  # no item id
    ("POST", "recruiting.written"): candidates(200),  # no written part waiting: said on the page
    ("POST", "recruiting.finish"): candidates(409),  # time is not up
    ("GET", "recruiting.grading_queue"): graders(200),
    ("GET", "recruiting.grade"): graders(200),
    ("POST", "recruiting.grade"): graders(422),  # no grade
    # the admin's recruiting pages
    ("GET", "recruiting_admin.board"): admin_only(200),
    ("GET", "recruiting_admin.candidate"): admin_only(200),
    ("POST", "recruiting_admin.vet"): admin_only(303),  # mid-interview: Conflict, flashed
    ("POST", "recruiting_admin.reject"): admin_only(422),  # no reason
    ("POST", "recruiting_admin.end_lapsed"): admin_only(303),  # nothing past its time: flashed
    ("GET", "recruiting_admin.dashboard"): admin_only(200),
    ("GET", "recruiting_admin.domains"): admin_only(200),
    ("POST", "recruiting_admin.domains"): admin_only(422),  # no slug, no name
    ("GET", "recruiting_admin.assessments"): admin_only(200),
    ("GET", "recruiting_admin.assessment"): admin_only(200),
    ("POST", "recruiting_admin.assessment"): admin_only(422),  # every setting missing
    ("POST", "recruiting_admin.save_prompt"): admin_only(422),  # no prompt
    ("POST", "recruiting_admin.delete_prompt"): admin_only(422),  # no prompt chosen
    ("POST", "recruiting_admin.levels"): admin_only(303),  # nothing to change: flashed
    ("POST", "recruiting_admin.calibrate"): admin_only(303),  # too few candidates: flashed
    # matching and invitations: the trainer's invitation to world.project; answering it twice is a
    # Conflict the views flash, so the order the routes run in does not matter
    ("GET", "staffing.project"): admin_only(200),
    ("POST", "staffing.invite"): admin_only(422),  # nobody ticked
    ("POST", "staffing.withdraw"): admin_only(303),
    ("GET", "staffing.invitations"): trainers(200),
    ("GET", "staffing.pending"): trainers(200),
    ("POST", "staffing.accept"): trainers(303, elsewhere=404),  # not the outsider's invitation
    ("POST", "staffing.decline"): trainers(303, elsewhere=404),
}

# Form fields that make a POST harmless but well-formed for whoever is allowed to send it.
FORMS = {
    "admin.exclude_trainer": {"include": "1"},
}


def test_every_route_has_a_row_in_the_matrix(app):
    found = {(method, endpoint) for method, endpoint, _rule in routes(app)}
    assert found - set(MATRIX) == set(), "routes without an access row"
    assert set(MATRIX) - found == set(), "rows for routes that no longer exist"
    for key, row in MATRIX.items():
        assert set(row) == set(VISITORS), f"{key} must say what every visitor gets"


@pytest.mark.parametrize("visitor", VISITORS)
def test_each_visitor_gets_exactly_the_status_the_matrix_says(app, client, session, matrix_world, visitor):
    world = matrix_world.world
    if visitor != "anonymous":
        sign_in(client, getattr(world, visitor))
    csrf = token(client, "/work/") if visitor != "anonymous" else csrf_token(client)
    with app.test_request_context():
        urls = {(m, e): url_for(e, **{k: matrix_world.values[k] for k in rule.arguments})
                for m, e, rule in routes(app)}
    failures = []
    # signing out goes last: it ends the session every other row needs
    for (method, endpoint), url in sorted(urls.items(), key=lambda kv: kv[0][1] == "auth.logout"):
        expected = MATRIX[(method, endpoint)][visitor]
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, data={"csrf_token": csrf, **FORMS.get(endpoint, {})})
        got = response.status_code
        if expected == L:
            ok = got == 302 and "/login" in response.headers.get("Location", "")
        else:
            ok = got == expected
        if not ok:
            failures.append(f"{visitor} {method} {url}: expected {expected}, got {got}")
    assert failures == []
