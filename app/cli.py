"""The `groundwork` command: database, people, projects, demo data, background workers.

The command answers quickly: this module imports only click and Flask's command line at the top, every
service inside the command that needs it, and the lists an option chooses from when that option is
parsed. Commands that do not serve or list pages get an app without the web layer."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext


def _fail(message: str) -> None:
    raise click.ClickException(message)


class LazyChoice(click.Choice):
    """A `click.Choice` whose choices are read when first needed (parsing the option or showing its
    command's help), so listing the commands imports no model or service."""

    def __init__(self, load: Callable[[], Sequence[str]], case_sensitive: bool = True) -> None:
        self._load = load
        self._choices: tuple[str, ...] | None = None
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple[str, ...]:
        if self._choices is None:
            self._choices = tuple(self._load())
        return self._choices


def _roles() -> Sequence[str]:
    from app.models.users import ROLES

    return ROLES


def _timesheet_statuses() -> Sequence[str]:
    from app.models.pay import TIMESHEET_STATUSES

    return TIMESHEET_STATUSES


def _import_formats() -> Sequence[str]:
    from app.services.importing import FORMATS

    return FORMATS


def _export_formats() -> Sequence[str]:
    from app.services.exporting import FORMATS

    return list(FORMATS)


def _pair_modes() -> Sequence[str]:
    from app.services.exporting.options import PAIR_MODES

    return PAIR_MODES


def _ranking_pairs() -> Sequence[str]:
    from app.services.exporting.options import RANKING_PAIRS

    return RANKING_PAIRS


def cli_app():
    """The app a command runs in: without the web layer (no blueprints, templates or login) for our
    commands, which call services only; whole for the rest (`run`, `routes`, `shell`, plugins)."""
    from app import create_app

    ctx, top = click.get_current_context(silent=True), None
    while ctx is not None and ctx.parent is not None:  # up to the command under `groundwork`
        top, ctx = ctx.command.name, ctx.parent
    return create_app(web=top not in SERVICE_COMMANDS)


class GroundworkGroup(FlaskGroup):
    """Flask's command group, listing its own commands (ours, Flask's and plugins') without building
    the app: `groundwork --help` starts no app, and one of our commands loads no plugin."""

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self.commands.get(name) or super().get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return sorted(self.commands)


@click.group(cls=GroundworkGroup, create_app=cli_app, add_default_commands=True, load_dotenv=False)
def main() -> None:
    """Groundwork: recruit, vet, work, review, pay and export human feedback for AI."""


def register(app) -> None:
    """Attach the commands to the app, so both `groundwork ...` and the test CLI runner find them."""
    for command in COMMANDS:
        app.cli.add_command(command)


# --- db -------------------------------------------------------------------------------------------


@click.group()
def db() -> None:
    """Database migrations, backups and restores."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Bring the database schema up to date."""
    from app.db import get_db
    from app.migrate import current_revision, upgrade

    engine = get_db().engine
    upgrade(engine, revision)
    click.echo(f"database at revision {current_revision(engine)}")


@db.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Step the schema back to REVISION (e.g. -1 or base)."""
    from app.db import get_db
    from app.migrate import current_revision, downgrade

    engine = get_db().engine
    downgrade(engine, revision)
    click.echo(f"database at revision {current_revision(engine)}")


@db.command("current")
@with_appcontext
def db_current() -> None:
    """Print the schema revision the database is at."""
    from app.db import get_db
    from app.migrate import current_revision

    click.echo(current_revision(get_db().engine) or "empty (no revision)")


def _known_revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    from app.migrate import alembic_config

    return [script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()]


@db.command("backup")
@click.argument("file", type=click.Path(dir_okay=False))
@with_appcontext
def db_backup(file: str) -> None:
    """Write the database and the export folder into one file, FILE (a tar with a manifest). Safe
    while the app runs: SQLite is copied through its online backup API, PostgreSQL through pg_dump."""
    from app import __version__
    from app.errors import ServiceError
    from app.services import backup

    config = current_app.config
    try:
        manifest = backup.create_backup(config["DATABASE_URL"], config["EXPORT_DIR"], file, __version__)
    except ServiceError as exc:
        _fail(str(exc))
    size = Path(file).stat().st_size
    click.echo(f"backed up the {manifest.database} database (revision {manifest.revision}, "
               f"{len(manifest.tables)} tables) and {manifest.export_files} export file(s) to {file} "
               f"({size / 1e6:.1f} MB)")


@db.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--yes", is_flag=True, help="Replace a database that holds data without asking.")
@with_appcontext
def db_restore(file: str, yes: bool) -> None:
    """Replace the database and the export folder with those of FILE, a `groundwork db backup`.
    Refuses another database kind's backup or a newer schema; asks first when the database holds data."""
    from sqlalchemy.engine import make_url

    from app.db import get_db
    from app.errors import ServiceError
    from app.migrate import current_revision
    from app.services import backup

    config = current_app.config
    url = config["DATABASE_URL"]
    known = _known_revisions()
    try:
        manifest = backup.read_manifest(file)
        backup.check_restorable(manifest, url, known)
        empty = backup.is_empty(url)
    except ServiceError as exc:
        _fail(str(exc))
    if not empty and not yes:
        click.confirm(f"{make_url(url).render_as_string(hide_password=True)} holds data. Replace it and the export "
                      f"folder with the backup made {manifest.created_at}?", abort=True, err=True)
    database = get_db()
    for engine in {database.engine, getattr(database, "writer_engine", None)} - {None}:
        engine.dispose()  # the backup goes in with no connection of ours open
    try:
        manifest = backup.restore_backup(file, url, config["EXPORT_DIR"], known)
    except ServiceError as exc:
        _fail(str(exc))
    revision = current_revision(database.engine)
    click.echo(f"restored the {manifest.database} database (revision {revision}) and {manifest.export_files} "
               f"export file(s) from the backup made {manifest.created_at}")
    if revision != known[0]:
        click.echo("the backup's schema is older than this code's: run `groundwork db upgrade`")


# --- users ----------------------------------------------------------------------------------------


@click.group()
def users() -> None:
    """People and their roles."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", default=None, help="Display name (defaults to the part of the e-mail before @).")
@click.option(
    "--role", "roles", multiple=True, required=True,
    type=LazyChoice(_roles), help="Repeat for several roles.",
)
@click.password_option("--password", help="At least 10 characters; prompted for when omitted.")
@with_appcontext
def users_create(email: str, name: str | None, roles: tuple[str, ...], password: str) -> None:
    """Create an account."""
    from app.db import get_session
    from app.errors import ServiceError
    from app.services.users import create_user

    session = get_session()
    try:
        user = create_user(session, email, name or email.split("@")[0], password, roles)
    except ServiceError as exc:
        session.rollback()
        _fail(str(exc))
    click.echo(f"created user {user.id} {user.email} ({', '.join(sorted(user.roles))})")


@users.command("reset-link")
@click.argument("email")
@with_appcontext
def users_reset_link(email: str) -> None:
    """Print a one-time password link for EMAIL, valid for a day (an admin's account gets one only here)."""
    from app.db import get_session
    from app.errors import ServiceError
    from app.services.users import find_by_email, issue_reset_link

    session = get_session()
    user = find_by_email(session, email)
    if user is None:
        _fail(f"no account with the e-mail {email}")
    try:
        token = issue_reset_link(session, user, None)
    except ServiceError as exc:
        session.rollback()
        _fail(str(exc))
    click.echo(f"one-time password link for {user.email}, valid for a day: /reset/{token} (on this "
               "installation's address)")


# --- projects -------------------------------------------------------------------------------------


@click.command("projects")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@with_appcontext
def projects(as_json: bool) -> None:
    """List projects: slug, kind, status and how many questions, items and annotations each has."""
    import orjson

    from app.db import get_session
    from app.services.projects import project_summaries

    rows = project_summaries(get_session())
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")
        return
    if not rows:
        click.echo("no projects yet (try `groundwork demo`)")
        return
    header = ("slug", "kind", "status", "questions", "items", "annotations")
    widths = [max(len(h), *(len(str(getattr(r, h))) for r in rows)) for h in header]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        click.echo("  ".join(str(getattr(r, h)).ljust(w) for h, w in zip(header, widths, strict=True)))


@click.command("import")
@click.argument("slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=LazyChoice(_import_formats), help="Default: from the file name.")
@click.option("--update", is_flag=True, help="Update items whose external_id exists (default: skip them).")
@with_appcontext
def import_command(slug: str, file: str, fmt: str | None, update: bool) -> None:
    """Import items into a project from JSONL or CSV: all lines or none."""
    import os

    from app.db import get_session
    from app.errors import ServiceError
    from app.services import importing
    from app.services.projects import get_by_slug

    session = get_session()
    try:
        project = get_by_slug(session, slug)
        fmt = fmt or importing.detect_format(file)
    except ServiceError as exc:
        _fail(str(exc))
    size = os.path.getsize(file)
    with click.progressbar(length=2 * size or 1, label="importing", file=sys.stderr) as bar:
        state = {"shown": 0}

        def progress(phase: str, done: int, _lines: int) -> None:
            target = done + (size if phase == "writing" else 0)
            bar.update(max(target - state["shown"], 0))
            state["shown"] = max(target, state["shown"])

        report = importing.import_file(session, project, file, fmt, update_existing=update, progress=progress)
        bar.update(2 * size - state["shown"])
    if not report.ok:
        for error in report.errors:
            click.echo(str(error), err=True)
        if report.error_count > len(report.errors):
            click.echo(f"... and {report.error_count - len(report.errors)} more", err=True)
        _fail(f"{report.error_count} problem(s) in {file}; nothing was imported")
    click.echo(
        f"imported {report.inserted} item(s) into {slug}"
        + (f", updated {report.updated}" if report.updated else "")
        + (f", skipped {report.skipped} already there" if report.skipped else "")
        + f" ({report.lines} lines)"
    )


@click.command("export")
@click.argument("slug")
@click.option("--format", "fmt", required=True, type=LazyChoice(_export_formats), help="The dataset format.")
@click.option("--out", type=click.Path(dir_okay=False, allow_dash=True),
              help="Copy the train file here ('-' for stdout); other splits go beside it as NAME.test.EXT and "
                   "NAME.validation.EXT, and each one's meta file as NAME[.split].meta.jsonl.")
@click.option("--pairs", type=LazyChoice(_pair_modes),
              help="consensus (default): one row per item pair, in the direction of the mean preference "
                   "(Bradley-Terry order for rankings); per_annotation: each direction annotators gave, once per "
                   "item (a weighting view).")
@click.option("--ranking-pairs", type=LazyChoice(_ranking_pairs))
@click.option("--conversational", is_flag=True, help="Message lists even when every item is one user turn.")
@click.option("--margin", is_flag=True, help="Add a float margin (preference strength) to pair rows.")
@click.option("--with-ids", is_flag=True, help="Put item_id (and chosen_id / rejected_id) into the training rows.")
@click.option("--with-agreement", is_flag=True, help="Add agreement and n_annotators columns to pair rows.")
@click.option("--reviewed-only", is_flag=True, help="Only annotations a reviewer approved or corrected.")
@click.option("--min-agreement", type=float, help="Only items whose annotators agree at least this much (0-1): the share of pairs of them who "
                   "gave the same answer (2 of 3 agreeing is 1/3), not the rows' agreement column.")
@click.option("--exclude-flagged-trainers", is_flag=True, help="Leave out trainers flagged or paused here.")
@click.option("--include-gold", is_flag=True, help="Export gold items too (left out by default).")
@click.option("--min-trainer-quality", type=float, help="Only trainers with gold accuracy (or agreement) ≥ this.")
@click.option("--from", "date_from", metavar="DATE|INSTANT",
              help="Submitted at or after this (UTC): 2026-12-01 or 2026-12-01T09:30:00Z.")
@click.option("--to", "date_to", metavar="DATE|INSTANT",
              help="Submitted at or before this (UTC); a bare date takes the whole day.")
@click.option("--as-of", "as_of", metavar="INSTANT",
              help="Rebuild the data as it stood then: work submitted and verdicts given up to this instant "
                   "(a version's manifest snapshot.instant rebuilds it byte for byte).")
@click.option("--test-fraction", type=float, help="Share of items in a test split (by hashed prompt).")
@click.option("--validation-fraction", type=float, help="Share of items in a validation split (by hashed prompt).")
@click.option("--desirable-labels", help="Comma-separated labels that count as good (label projects: KTO, SFT).")
@with_appcontext
def export_command(slug: str, fmt: str, out: str | None, include_gold: bool, **filters) -> None:
    """Build a dataset version of a project and print its manifest summary."""
    import shutil
    import threading

    from app.db import get_db, get_session
    from app.errors import ServiceError
    from app.models import DatasetExport
    from app.services import exporting
    from app.services.projects import get_by_slug

    session = get_session()
    if out and out != "-" and not Path(out).resolve().parent.is_dir():
        _fail(f"--out: the folder {Path(out).resolve().parent} does not exist; nothing was built")
    raw = {k: v for k, v in filters.items() if v not in (None, False)}
    raw["format"], raw["exclude_gold"] = fmt, not include_gold
    try:
        project = get_by_slug(session, slug)
        export = exporting.create_export(session, project, raw, actor_id=None,
                                         **exporting.disk_limits(current_app.config))
    except ServiceError as exc:
        _fail(str(exc))
    app = current_app._get_current_object()
    outcome: dict = {}

    def build() -> None:
        with app.app_context():
            try:
                outcome["export"] = exporting.run_export(
                    get_db().session_factory, export.id, app.config["EXPORT_DIR"], app.config["SECRET_KEY"],
                    progress_rows=app.config["EXPORT_PROGRESS_ROWS"], processes=app.config["EXPORT_PROCESSES"])
            except Exception as exc:  # noqa: BLE001 - shown below
                outcome["error"] = exc

    worker_thread = threading.Thread(target=build)
    worker_thread.start()
    with click.progressbar(length=100, label=f"version v{export.version} ({fmt}, export #{export.id})", file=sys.stderr) as bar:
        shown = 0
        while worker_thread.is_alive():
            worker_thread.join(0.5)
            with get_db().session_factory() as s:
                percent = s.get(DatasetExport, export.id).percent
            bar.update(max(percent - shown, 0))
            shown = max(shown, percent)
        bar.update(100 - shown)
    if "error" in outcome:
        _fail(f"version v{export.version} (export #{export.id}) failed: {outcome['error']}")
    done = outcome["export"]
    folder = Path(app.config["EXPORT_DIR"]) / done.path
    manifest = done.manifest
    if done.status == "empty":
        click.echo(f"version v{done.version} (export #{done.id}) is empty: no row passed the filters, so it has no data file.", err=True)
        for reason in manifest.get("empty_reasons", []):
            click.echo(f"  - {reason}", err=True)
        click.echo(f"manifest and card in {folder}", err=True)
        return
    # The manifest's mappings come back from JSONB in its own key order: splits go train, validation, test.
    splits = {split: manifest["splits"][split] for split in ("train", "validation", "test") if split in manifest["splits"]}
    if out == "-":
        first, *others = splits.values()
        with open(folder / first["file"], "rb") as source:  # train, when it has rows
            shutil.copyfileobj(source, sys.stdout.buffer)
        if others:
            click.echo(f"stdout has {first['file']} only; " + ", ".join(e["file"] for e in others)
                       + f" are in {folder}", err=True)
    elif out:
        target = Path(out)
        try:
            for split, entry in splits.items():  # each data file with its line-aligned meta file beside it
                stem = target.stem if split == "train" else f"{target.stem}.{split}"
                name = target if split == "train" else target.with_name(f"{stem}{target.suffix}")
                shutil.copyfile(folder / entry["file"], name)
                if (folder / entry["meta_file"]).exists():
                    shutil.copyfile(folder / entry["meta_file"], target.with_name(f"{stem}.meta.jsonl"))
        except OSError as exc:
            _fail(f"version v{done.version} (export #{done.id}) is built (in {folder}) but could not be copied to {out}: {exc.strerror}")
    counts = manifest["counts"]
    per_split = ", ".join(f"{entry['rows']} {split}" for split, entry in splits.items())
    click.echo(f"version v{done.version} (export #{done.id}): {counts['rows']} rows ({per_split}) from {counts['annotations_read']} "
               f"annotations, {manifest['annotators']} annotators", err=True)
    for entry in manifest["files"]:
        click.echo(f"  {entry['name']:<24} {entry['role']:<10} {entry['rows']:>9} lines", err=True)
    for warning in manifest.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"sha256 {done.sha256}", err=True)
    click.echo(f"files in {folder}" + (f"; copied to {out}" if out and out != "-" else ""), err=True)


@click.command("payroll")
@click.argument("week")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write one row per trainer × project × week here ('-' for stdout).")
@click.option("--project", "slug", help="Only this project.")
@click.option("--status", type=LazyChoice(_timesheet_statuses), help="Only timesheets in this state.")
@with_appcontext
def payroll(week: str, csv_path: str | None, slug: str | None, status: str | None) -> None:
    """Print (or write as CSV) the payroll of WEEK: 2026-W48, or any date in that week."""
    from app.db import get_session
    from app.errors import ServiceError
    from app.services import pay
    from app.services.money import format_cents
    from app.services.projects import get_by_slug
    from app.services.spreadsheets import csv_text

    session = get_session()
    try:
        monday = pay.parse_week(week)
        project_id = get_by_slug(session, slug).id if slug else None
    except ServiceError as exc:
        _fail(str(exc))
    frame = pay.payroll_frame(session, monday, project_id, status)
    if csv_path == "-":
        click.echo(csv_text(frame), nl=False)
        return
    if csv_path:
        Path(csv_path).write_text(csv_text(frame), encoding="utf-8", newline="")
    total = frame.attrs.get("total_cents", 0)
    click.echo(f"{pay.week_label(monday)}: {len(frame)} timesheet(s), total {format_cents(total)}"
               + (f"; written to {csv_path}" if csv_path else ""))
    for row in frame.itertuples():
        click.echo(f"  {row.trainer_email:<32} {row.project:<28} {row.billable_hours:>8.2f} h  {row.total:>10}  {row.status}")


@click.command("metrics")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_appcontext
def metrics(slug: str, as_json: bool) -> None:
    """Recompute and print a project's quality figures (agreement, gold, per trainer)."""
    import orjson

    from app.db import get_session
    from app.errors import ServiceError
    from app.services.projects import get_by_slug
    from app.services.stats import compute_project_stats, trainer_table

    session = get_session()
    try:
        project = get_by_slug(session, slug)
    except ServiceError as exc:
        _fail(str(exc))
    stats = compute_project_stats(session, project)
    trainers = [
        {"trainer": email, "annotations": t.annotations, "gold_answers": t.gold_answers,
         "gold_accuracy": t.gold_accuracy, "consensus_agreement": t.consensus_agreement,
         "reliability": t.reliability, "approval_rate": t.approval_rate, "median_seconds": t.median_seconds,
         "flags": t.flags}
        for t, _name, email in trainer_table(session, project)
    ]
    report = {"project": slug, "computed_at": stats.computed_at.isoformat(), "annotations": stats.annotations,
              **stats.figures, "per_trainer": trainers}
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        return
    click.echo(f"{slug}: {stats.annotations} annotations by {stats.figures['trainers']} trainers")
    for q in stats.figures["questions"]:
        shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in q.items() if k not in ("key", "title", "type")}
        click.echo(f"  {q['key']} ({q['type']}): {shown}")
    for t in trainers:
        click.echo(f"  {t['trainer']}: {t['annotations']} annotations, gold {t['gold_accuracy']}, "
                   f"agreement {t['consensus_agreement']}, flags {t['flags']}")


@click.command("recount")
@click.argument("slug")
@with_appcontext
def recount(slug: str) -> None:
    """Recompute a project's counters from its data: each item's done/active counts, the project's
    progress counters and its billable seconds per trainer and week (a background job when Redis is
    configured)."""
    from app.db import get_session
    from app.errors import ServiceError
    from app.services.projects import get_by_slug
    from tasks import enqueue
    from tasks.jobs import recount_items

    try:
        project = get_by_slug(get_session(), slug)
    except ServiceError as exc:
        _fail(str(exc))
    handle = enqueue(recount_items, project.id)
    if handle.backend == "inline":
        handle.wait()
    if handle.status == "delayed":  # nothing remembers a recount to run later
        _fail(f"the recount was not queued ({handle.error}); run it again")
    if handle.backend == "rq":
        click.echo(f"queued job {handle.id}; a `groundwork worker` will run it")
    elif handle.status == "failed":
        _fail(handle.error or "job failed")
    else:
        click.echo(f"{handle.result['items_corrected']} item counters corrected")


# --- demo -----------------------------------------------------------------------------------------


@click.command("demo")
@with_appcontext
def demo() -> None:
    """Create the demo people, projects and work (safe to run again)."""
    from app.db import get_db, get_session
    from app.services.demo import seed_demo

    app = current_app._get_current_object()
    result = seed_demo(get_session(), get_db().session_factory, app.config["EXPORT_DIR"], app.config["SECRET_KEY"])
    click.echo(f"Demo ready. Sign in with any of these (password: {result['password']}):")
    width = max(len(email) for email, _roles in result["logins"]) + 2
    for email, roles in result["logins"]:
        click.echo(f"  {email:<{width}} {roles}")


# --- worker ---------------------------------------------------------------------------------------


@click.command("worker")
@click.option("--queue", "queues", multiple=True,
              help="Queue name(s) to work, in order (default: default, then webhooks).")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@with_appcontext
def worker(queues: tuple[str, ...], burst: bool) -> None:
    """Run an RQ worker for the background jobs (needs REDIS_URL)."""
    from tasks import run_worker

    try:
        run_worker(current_app._get_current_object(), list(queues) or None, burst=burst)
    except RuntimeError as exc:
        _fail(str(exc))


COMMANDS = (db, users, projects, import_command, export_command, payroll, metrics, recount, demo, worker)
SERVICE_COMMANDS = frozenset(command.name for command in COMMANDS)
for _command in COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":
    main()
