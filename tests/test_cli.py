import json
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from app.db import get_db
from app.models import Annotation, Base, Item, Project, User
from tests.conftest import DATABASES, POSTGRES_ADMIN_URL, build_app


@pytest.fixture(scope="module", params=DATABASES)
def demo(request, tmp_path_factory):
    """One seeded demo per database for this module's read-mostly commands (the demo takes seconds
    to seed), in a database of its own so no other test's schema comes and goes under it."""
    folder = tmp_path_factory.mktemp("demo")
    admin, name = None, None
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'demo.sqlite3'}"
    else:
        request.getfixturevalue("postgres_url")  # skips (or fails under CI) when the server is away
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        name = f"groundwork_demo_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    app = build_app(url, folder)
    with app.app_context():
        engine = get_db().engine
        Base.metadata.create_all(engine)
        factory = get_db().session_factory
    first = app.test_cli_runner().invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    session = factory()
    try:
        yield SimpleNamespace(app=app, runner=app.test_cli_runner(), session=session, first=first)
    finally:
        session.close()
        engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def test_users_create_and_refuses_a_duplicate(runner, session):
    args = ["users", "create", "--email", "Lee@Example.test", "--role", "reviewer", "--role", "trainer",
            "--password", "a-long-password"]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    assert "lee@example.test (reviewer, trainer)" in result.output
    again = runner.invoke(args=args)
    assert again.exit_code == 1 and "already exists" in again.output


def test_users_create_explains_bad_input(runner):
    result = runner.invoke(args=["users", "create", "--email", "x@example.test", "--role", "admin", "--password", "short"])
    assert result.exit_code == 1 and "password: must be at least 10 characters" in result.output


@pytest.mark.slow  # seeds the whole demo once per database
def test_demo_is_idempotent_and_projects_json_lists_it(demo):
    runner, session, first = demo.runner, demo.session, demo.first
    assert "trainer1@groundwork.test" in first.output and "groundwork-demo" in first.output
    counts = [session.scalar(select(func.count()).select_from(m)) for m in (User, Project, Item, Annotation)]
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0, second.output
    assert [session.scalar(select(func.count()).select_from(m)) for m in (User, Project, Item, Annotation)] == counts
    from app.services.demo import DEMO_PEOPLE
    from app.services.demo_recruiting import PAST_CANDIDATES

    assert counts[0] == len(DEMO_PEOPLE) + 2 * PAST_CANDIDATES + 3  # the logins, past candidates, three named applicants

    listing = runner.invoke(args=["projects", "--json"])
    rows = {row["slug"]: row for row in json.loads(listing.output)}
    assert rows["safety-triage"]["items"] == 55  # 50 work items and 5 gold
    assert rows["safety-triage"]["kind"] == "work" and rows["safety-triage"]["questions"] == 1
    assert rows["safety-triage"]["annotations"] == 21
    assert rows["medical-interview"]["kind"] == "qualification"


@pytest.mark.slow  # seeds the whole demo once per database
def test_demo_has_work_in_every_state(demo):
    from app.models import Assignment

    session = demo.session
    states = set(session.scalars(select(Assignment.status).distinct()))
    assert states == {"active", "submitted", "skipped", "expired"}


def test_the_demo_vets_exactly_the_candidates_who_passed(demo):
    """The demo's past candidates: vetted ones passed their interview and written answer (and hold that
    domain's qualification), rejected ones did not; the board and the funnel then count alike."""
    from app.models import Application, Interview, Qualification

    session = demo.session
    decided = session.execute(select(Application.id, Application.user_id, Application.stage)
                              .where(Application.stage.in_(("vetted", "rejected")))).all()
    assert len(decided) > 20
    for application_id, user_id, stage in decided:
        passed = session.scalar(select(func.count(Interview.id)).where(Interview.application_id == application_id,
                                                                        Interview.passed.is_(True)))
        qualified = session.scalar(select(func.count(Qualification.id)).where(Qualification.user_id == user_id))
        assert (stage == "vetted") == (passed > 0) == (qualified > 0), (application_id, stage, passed, qualified)

@pytest.mark.slow  # seeds the whole demo once per database
def test_recount_reports_corrections(demo):
    runner = demo.runner
    result = runner.invoke(args=["recount", "safety-triage"])
    assert result.exit_code == 0 and "0 item counters corrected" in result.output
    assert runner.invoke(args=["recount", "nope"]).exit_code == 1


@pytest.mark.slow  # seeds the whole demo once per database
def test_metrics_json_prints_project_and_trainer_figures(demo):
    runner = demo.runner
    result = runner.invoke(args=["metrics", "safety-triage", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["project"] == "safety-triage" and report["annotations"] == 21
    assert report["questions"][0]["key"] == "safety" and "alpha_nominal" in report["questions"][0]
    assert {t["trainer"] for t in report["per_trainer"]} == {"trainer2@groundwork.test", "trainer3@groundwork.test"}
    assert runner.invoke(args=["metrics", "nope"]).exit_code == 1


@pytest.mark.slow  # seeds the whole demo once per database
def test_export_writes_a_version_and_copies_it(demo, tmp_path):
    runner = demo.runner
    out = tmp_path / "pairs.jsonl"
    result = runner.invoke(args=["export", "helpfulness-pairs", "--format", "trl-preference", "--out", str(out),
                                 "--margin", "--test-fraction", "0.3"])
    assert result.exit_code == 0, result.output
    assert "sha256 " in result.output and "rows (" in result.output
    for name in ("train.jsonl", "test.jsonl", "train.meta.jsonl", "test.meta.jsonl", "items.jsonl"):
        assert name in result.output  # every file of the version, with its role and lines
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    test_lines = [json.loads(x) for x in (tmp_path / "pairs.test.jsonl").read_text().splitlines()]
    assert lines and test_lines and all(set(x) == {"prompt", "chosen", "rejected", "margin"} for x in lines + test_lines)
    # each data file's meta file comes along, line for line
    assert len((tmp_path / "pairs.meta.jsonl").read_text().splitlines()) == len(lines)
    assert len((tmp_path / "pairs.test.meta.jsonl").read_text().splitlines()) == len(test_lines)
    bad = runner.invoke(args=["export", "helpfulness-pairs", "--format", "helpsteer"])
    assert bad.exit_code == 1 and "helpsteer needs at least one rating question" in bad.output
    missing = runner.invoke(args=["export", "nope", "--format", "raw"])
    assert missing.exit_code == 1 and "no project 'nope'" in missing.output
    nowhere = runner.invoke(args=["export", "helpfulness-pairs", "--format", "raw", "--out",
                                  str(tmp_path / "no-such-folder" / "x.jsonl")])
    assert nowhere.exit_code == 1 and "does not exist; nothing was built" in nowhere.output
    assert "Traceback" not in nowhere.output


@pytest.mark.slow  # seeds the whole demo once per database
def test_an_export_with_no_row_is_empty_says_why_and_succeeds(demo):
    result = demo.runner.invoke(args=["export", "helpfulness-pairs", "--format", "raw", "--from", "2099-01-01T00:00:00Z"])
    assert result.exit_code == 0, result.output
    assert "is empty: no row passed the filters, so it has no data file." in result.output
    assert "were submitted before 2099-01-01T00:00:00.000000Z (date_from)." in result.output
    assert "sha256" not in result.output


def test_export_help_names_the_options_of_a_traceable_version(runner):
    result = runner.invoke(args=["export", "--help"])
    assert result.exit_code == 0
    for option in ("--as-of INSTANT", "--with-ids", "--with-agreement", "--validation-fraction", "--from DATE|INSTANT",
                   "--to DATE|INSTANT"):
        assert option in result.output


@pytest.mark.slow  # seeds the whole demo once per database
def test_demo_gives_every_format_a_real_file(demo):
    from app.models import DatasetExport
    from app.services.exporting import FORMATS, available_formats

    runner, session = demo.runner, demo.session
    session.rollback()  # a fresh snapshot
    from app.services.demo import DEMO_EXPORTS

    # the demo's own versions (other tests of this module add theirs, an empty one among them)
    versions = session.scalars(select(DatasetExport).order_by(DatasetExport.id).limit(len(DEMO_EXPORTS))).all()
    assert [v.status for v in versions] == ["empty" if o.get("reviewed_only") else "done" for _s, o in DEMO_EXPORTS]
    assert all(v.row_count > 0 for v in versions if v.status == "done")
    (empty,) = [v for v in versions if v.status == "empty"]  # the demo shows an empty version and says why
    assert any("reviewed_only" in reason for reason in empty.manifest["empty_reasons"])
    rows: dict[str, int] = {}
    for project in session.scalars(select(Project)).all():
        for name, problem in available_formats(session, project).items():
            if problem:
                continue
            args = ["export", project.slug, "--format", name]
            if name in ("trl-kto", "trl-sft") and project.slug in ("safety-triage", "medical-safety-assessment"):
                args += ["--desirable-labels", "safe"]
            elif name in ("trl-kto", "trl-sft") and any(q.key == "verdict" for q in project.questions):
                args += ["--desirable-labels", "correct"]  # the recruiting demo's judged answers
            result = runner.invoke(args=args)
            assert result.exit_code == 0, result.output
            if " is empty: " in result.output:  # e.g. a project whose work is all on gold items: no data file
                assert "  - The project had " in result.output  # and why, filter by filter
                count = 0
            else:
                count = int(result.output.split("export #")[-1].split(": ")[1].split(" rows")[0])
            rows[name] = max(rows.get(name, 0), count)
    assert set(rows) == set(FORMATS)
    # consensus (the default) gives one row per item: the demo's critique project rates two items
    assert all(n >= 2 for n in rows.values()), str(rows)


@pytest.mark.slow  # seeds the whole demo once per database
def test_payroll_prints_and_writes_the_weeks_csv(demo, tmp_path):
    import csv

    from app.services import pay
    from app.services.demo import demo_now

    runner = demo.runner
    week = pay.week_label(pay.week_of(demo_now()))  # the week the demo's work is in
    out = tmp_path / "payroll.csv"
    result = runner.invoke(args=["payroll", week, "--csv", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{week}: " in result.output and "trainer2@groundwork.test" in result.output
    rows = list(csv.DictReader(out.open()))
    assert rows and {r["status"] for r in rows} == {"open", "approved", "paid"}
    assert list(rows[0]) == ["week", "trainer_email", "trainer_name", "project", "billable_seconds", "billable_hours",
                             "rate", "amount", "adjustments", "total", "status", "paid_reference"]
    paid = runner.invoke(args=["payroll", week, "--status", "paid", "--csv", "-"])
    assert paid.exit_code == 0 and paid.output.count("\n") == 2 and "DEMO-TRANSFER-0001" in paid.output
    bad = runner.invoke(args=["payroll", "soon"])
    assert bad.exit_code == 1 and "is not a week" in bad.output


def test_recount_fails_loudly_when_the_job_queue_is_unreachable(database_url, tmp_path):
    """Nothing remembers a recount to run later: when Redis cannot take it, the command says so and
    exits 1, never "queued"."""
    from tests.conftest import redis_away_app
    from tests.factories import make_label_project

    with redis_away_app(database_url, tmp_path) as app:
        with app.app_context():
            session = get_db().session_factory()
            make_label_project(session, items=2, slug="recount-me")
            session.close()
        result = app.test_cli_runner().invoke(args=["recount", "recount-me"])
        assert result.exit_code == 1
        assert "the recount was not queued (the job queue is unreachable); run it again" in result.output
        assert "queued job" not in result.output


@pytest.mark.slow  # seeds the whole demo once per database
def test_the_demo_reads_the_same_whatever_the_day(demo):
    """Early in a week the demo's work is dated back into the week before (so its timesheets can be
    approved); what is about the present still is: trainer3's task is open right now, and Payroll
    opens on the week whose timesheets are in every state, bonus included."""
    from sqlalchemy import select

    from app.models import Assignment, PayAdjustment, User, utcnow
    from app.services import pay
    from app.services.demo import demo_now
    from tests.conftest import login

    session = demo.session
    session.rollback()
    trainer3 = session.scalar(select(User).where(User.email == "trainer3@groundwork.test"))
    open_now = session.scalars(select(Assignment).where(Assignment.trainer_id == trainer3.id,
                                                        Assignment.status == "active")).all()
    assert any(a.expires_at.replace(tzinfo=None) > utcnow().replace(tzinfo=None) for a in open_now)
    week = pay.week_of(demo_now())
    assert {a.week_start for a in session.scalars(select(PayAdjustment))} == {week}
    assert pay.latest_week(session, pay.week_of(utcnow())) == week
    client = demo.app.test_client()
    login(client, "admin@groundwork.test", "groundwork-demo")
    page = client.get("/admin/payroll").get_data(as_text=True)
    assert pay.week_label(week) in page and "DEMO-TRANSFER-0001" in page
