"""Acceptance 4: arbitrary strings and numbers in every field of every POST route, in every query
parameter and in the URL's own parts, as every kind of visitor, on both databases — never a 5xx,
and a request that is refused (4xx) changes nothing in the database."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from app.db import get_db
from tasks import cancel_scheduled, stop_inline_jobs
from tests.conftest import csrf_token

from .conftest import routes, sign_in, token
from .test_access_matrix import MATRIX, VISITORS

pytestmark = pytest.mark.slow

PROJECT_FIELDS = [
    "name", "slug", "kind", "status", "instructions", "overlap", "lease_minutes", "gold_rate", "review_rate",
    "hourly_rate", "budget", "max_billable_seconds_per_task", "required_domains", "quality_bonus_percent",
    "quality_bonus_min_accuracy", "pause_at_budget", "show_model_names", "q-0-key", "q-0-type", "q-0-title",
    "q-0-help", "q-0-labels", "q-0-required", "q-0-min", "q-0-max", "q-0-anchors", "q-0-scale", "q-0-allow_ties",
    "q-0-min_chars", "q-0-mode", "q-7-key", "q-7-type",
]
# Every field each form of ours sends (and a few it does not).
FIELDS = {
    "auth.login": ["email", "password", "next"],
    "auth.change_password": ["current", "new", "confirm"],
    "auth.reset": ["new", "confirm"],
    "tokens.create": ["name", "expires_in_days", "read_only", "password"],
    "work.submit": ["answer.label", "answer.other", "answer."],
    "work.heartbeat": ["resume"],
    "work.skip": ["reason"],
    "review.verdict": ["verdict", "comment", "answer.label"],
    "admin.person_status": ["status"],
    "admin.create_person": ["name", "email", "role"],
    "admin.person_roles": ["role"],
    "admin.person_sign_out": [],
    "admin.person_reset_link": [],
    "admin.new_project": PROJECT_FIELDS,
    "admin.edit_project": PROJECT_FIELDS,
    "admin.add_member": ["email", "role"],
    "admin.member_status": ["status"],
    "admin.import_items": ["file", "update"],
    "admin.recompute_quality": [],
    "admin.exclude_trainer": ["include"],
    "exports.create": ["format", "pairs", "ranking_pairs", "min_agreement", "min_trainer_quality", "date_from",
                       "date_to", "test_fraction", "desirable_labels", "reviewed_only", "exclude_gold",
                       "exclude_flagged_trainers", "margin", "conversational", "with_ids"],
    "exports.retry": [],
    "webhooks.create": ["url", "events"],
    "webhooks.set_active": ["active"],
    "webhooks.rotate": [],
    "webhooks.delete": ["confirm"],
    "webhooks.send_test": [],
    "webhooks.redeliver": ["back"],
    "pay.approve": ["week", "project", "status", "line"],
    "pay.mark_paid": ["week", "timesheet", "reference"],
    "pay.adjust": ["week", "amount", "trainer", "adjust_project", "reason", "kind", "project", "status"],
    "recruiting.apply": ["name", "email", "password", "domains", "languages", "years_experience", "credentials",
                         "timezone", "availability_hours_per_week", "desired_rate", "consent"],
    "recruiting.answer": ["question", "answer.label", "answer."],
    "recruiting.written": ["written.1", "written.2", "written.x", "written."],
    "recruiting.grade": ["grade", "note"],
    "recruiting_admin.vet": ["note"],
    "recruiting_admin.reject": ["reason"],
    "recruiting_admin.domains": ["form", "slug", "name", "active"],
    "recruiting_admin.assessment": ["domain", "min_items", "max_items", "se_target", "time_limit_minutes",
                                    "ability_weight", "pass_score", "auto_vet_score", "exposure_bin",
                                    "calibrate_after"],
    "recruiting_admin.save_prompt": ["prompt_id", "prompt", "rubric", "max_chars"],
    "recruiting_admin.delete_prompt": ["prompt_id"],
    "recruiting_admin.levels": ["level-1", "level-2", "level-x", "page"],
    "staffing.invite": ["user_id", "rate", "expected_hours_per_week", "message"],
}
QUERY = ["page", "sort", "dir", "week", "project", "status", "format", "preset", "type", "n", "key", "title", "help",
         "next"]
ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
SKIPPED = {"auth.logout"}  # it ends the session the rest of the run needs (its access is in the matrix)

EDGES = [
    "", " ", "0", "-1", "1", "2", "3", "99", "2147483647", "2147483648", "-2147483649", "9223372036854775808",
    "1e309", "-1e309", "1e30", "NaN", "Infinity", "-0", "0.001", "12.345", "1" * 400, "\x00", "a\x00b", "💥",
    "{{7*7}}", "<script>alert(1)</script>", "' OR 1=1 --", "../../etc/passwd", "%00", "2026-W48", "2026-W99",
    "0001-01-01", "9999-W52", "2026-02-30", '[["A"],["B"]]', '[["Z"]]', "[[[]]]", '{"a": 1}', "A", "yes", "no",
    "approve", "reject", "correct", "suspended", "active", "paused", "removed", "trainer", "reviewer", "admin",
    "bonus", "correction", "raw", "trl-preference", "csv", "on", "off", "true", "label", "ranking", "desc", "asc",
    "annotations", "name", "1:1", "1:2", "x:y", "trainer@example.test", "//evil.test/", "/work/",
    "x" * 65, "x" * 201, "x" * 501, "x" * 2001, "x" * 20_001, "y\n" * 300, " padded ", "Ünïcödé ✓",
]
VALUE = st.one_of(
    st.sampled_from(EDGES),
    st.sampled_from(EDGES),  # twice: the edges are where the bugs live
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=300),
    st.text("abcxyz019 -_.:@<>\"'&%", min_size=20, max_size=3000),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
# the URL's own parts, now and then: a stranger's slug, a huge id, a hostile string
URL_EDGES = ["beta", "assess", "nope", "0", "-1", "2147483648", "9223372036854775808", "99999999999999999999",
             "a\x00b", "%2e%2e", "%00", "x" * 300]
URL_PART = st.one_of(st.sampled_from(URL_EDGES), st.integers(min_value=1, max_value=10**20))


class CommittedWrites:
    """Every INSERT, UPDATE or DELETE that reached a commit, on any connection of the engine (the
    request's own sessions, side sessions, jobs): cheaper and stricter than comparing table dumps."""

    DML = ("INSERT", "UPDATE", "DELETE")

    def __init__(self, engine):
        self.engine, self.pending, self.committed = engine, {}, []
        event.listen(engine, "after_cursor_execute", self._executed)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)

    def _executed(self, conn, _cursor, statement, _params, _context, _many):
        if statement.lstrip().upper().startswith(self.DML):
            self.pending.setdefault(id(conn), statement.split("\n")[0][:120])

    def _commit(self, conn):
        if id(conn) in self.pending:
            self.committed.append(self.pending.pop(id(conn)))

    def _rollback(self, conn):
        self.pending.pop(id(conn), None)

    def take(self) -> list[str]:
        found, self.committed = self.committed, []
        return found

    def close(self):
        for name, fn in (("after_cursor_execute", self._executed), ("commit", self._commit),
                         ("rollback", self._rollback)):
            event.remove(self.engine, name, fn)


def _idle(app) -> None:
    """Wait for in-process jobs of every queue (stats after a submit, a webhook's test delivery…), so
    their writes belong to their request. A job asked for later (the recompute a verdict asks for a
    minute after the last one) would run during some later request and be counted as its writes: its
    timer is stopped here, with the request that set it."""
    cancel_scheduled(app)
    stop_inline_jobs(app)  # every job already submitted has finished


# examples per route where the visitor gets past the door (besides the sweep of every edge value)
RANDOM_EXAMPLES = 12


@pytest.mark.parametrize("visitor", VISITORS)
def test_no_input_makes_a_5xx_or_a_partial_write(app, client, session, matrix_world, visitor):
    world = matrix_world.world
    if visitor != "anonymous":
        sign_in(client, getattr(world, visitor))
    csrf = token(client, "/work/") if visitor != "anonymous" else csrf_token(client)
    with app.app_context():
        writes = CommittedWrites(get_db().engine)

    def send(method, rule, values, form):
        url = ARGUMENT.sub(lambda m: quote(str(values[m.group(1)]), safe="%"), rule.rule)
        writes.take()
        if method == "POST":
            response = client.post(url, data={"csrf_token": csrf, **form})
        else:
            response = client.get(url, query_string=form)
        _idle(app)
        status, written = response.status_code, writes.take()
        where = f"{visitor} {method} {url} {dict((k, v[:80]) for k, v in form.items())!r} -> {status}"
        # /readyz answers 503 by design here: the test schema is made without migrations, so it is not
        # "at head" (tests/web/test_ops.py checks it answers 200 on a migrated database).
        assert status < 500 or (url == "/readyz" and status == 503), where
        assert status < 400 or not written, f"{where} but committed {written}"

    def sweep(method, endpoint, rule):
        """Every edge value in every field at once, then in every part of the URL."""
        fields = FIELDS.get(endpoint, []) if method == "POST" else QUERY
        for value in EDGES:
            send(method, rule, matrix_world.values, {name: value for name in fields})
        for arg in rule.arguments:
            for part in URL_EDGES:
                send(method, rule, {**matrix_world.values, arg: part}, {})

    def mix(method, endpoint, rule):
        fields = FIELDS.get(endpoint, []) if method == "POST" else QUERY

        @settings(max_examples=RANDOM_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def one_request(data):
            values = dict(matrix_world.values)
            for arg in rule.arguments:
                if data.draw(st.integers(0, 9), label=f"change {arg}") >= 8:
                    values[arg] = data.draw(URL_PART, label=f"url {arg}")
            chosen = data.draw(st.lists(st.sampled_from(fields), unique=True, min_size=1, max_size=len(fields)),
                               label="fields") if fields else []
            send(method, rule, values, {name: data.draw(VALUE, label=name) for name in chosen})

        one_request()

    try:
        for method, endpoint, rule in routes(app):
            if endpoint in SKIPPED:
                continue
            if MATRIX[(method, endpoint)][visitor] in (403, "login"):
                send(method, rule, matrix_world.values, {})  # shut at the door, whatever the form says
                continue
            sweep(method, endpoint, rule)
            mix(method, endpoint, rule)
    finally:
        writes.close()
