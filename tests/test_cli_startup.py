"""`groundwork` starts light: listing the commands imports no data library, no model and no page; a
command that calls services builds an app without the web layer; the pages come only for the
commands that need them. Each check runs in a fresh interpreter, so what is loaded is what the
command itself loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "numpy", "pyarrow")

# Runs the command as `groundwork` does, then writes its exit code and every module it loaded.
PROBE = """
import json, os, sys
from app.cli import main
try:
    main(sys.argv[1:], prog_name="groundwork")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stdout.flush()
with open(os.environ["PROBE_OUT"], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def probe(args: list[str], tmp_path: Path, database_url: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "FLASK_APP")}
    env["DATABASE_URL"] = database_url or f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    env["SECRET_KEY"] = "startup-test-key-" + "x" * 32
    env["PROBE_OUT"] = str(tmp_path / "probe.json")
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "probe.json").read_text())
    result["output"], result["modules"] = done.stdout, set(result["modules"])
    return result


def roots(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_help_lists_every_command_and_loads_no_data_library_model_or_page(tmp_path):
    result = probe(["--help"], tmp_path)
    assert result["code"] == 0
    for command in ("db", "demo", "export", "import", "metrics", "payroll", "projects", "recount", "routes",
                    "run", "shell", "users", "worker"):
        assert f"\n  {command} " in result["output"], command
    assert not roots(result["modules"]) & {*HEAVY, "sqlalchemy", "argon2"}
    assert not {"app.web", "app.models", "app.services", "app.db"} & result["modules"]


def test_a_command_s_help_still_lists_its_choices(tmp_path):
    result = probe(["export", "--help"], tmp_path)
    assert result["code"] == 0
    assert "trl-preference" in result["output"] and "per_annotation" in result["output"]
    assert not roots(result["modules"]) & set(HEAVY)


def test_projects_builds_no_pages_and_loads_no_data_library(app, database_url, session, tmp_path):
    from tests.factories import make_label_project

    make_label_project(session, items=3, slug="listed")
    session.commit()
    result = probe(["projects", "--json"], tmp_path, database_url)
    assert result["code"] == 0
    assert [row["slug"] for row in json.loads(result["output"])] == ["listed"]
    assert not roots(result["modules"]) & set(HEAVY)
    assert "app.web" not in result["modules"] and "flask_login" not in roots(result["modules"])


def test_db_upgrade_runs_without_the_pages(tmp_path):
    result = probe(["db", "upgrade"], tmp_path)
    assert result["code"] == 0 and "database at revision" in result["output"]
    assert "app.web" not in result["modules"]


def test_routes_still_builds_the_pages(tmp_path):
    result = probe(["routes"], tmp_path)
    assert result["code"] == 0
    assert "/login" in result["output"] and "/api/v1" in result["output"]
    assert "app.web" in result["modules"]


def test_the_timing_equaliser_hash_is_made_on_first_use_only():
    code = """
import json
from app.services import users
before = users._DUMMY_HASH
first = users.dummy_hash()
print(json.dumps([before, first == users._DUMMY_HASH, users.dummy_hash() is first,
                  users._hasher.verify(first, "groundwork-timing-equaliser")]))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [None, True, True, True]


def test_only_our_commands_get_an_app_without_pages(monkeypatch, tmp_path):
    import click

    from app import cli

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    monkeypatch.setenv("SECRET_KEY", "startup-test-key-" + "x" * 32)
    monkeypatch.delenv("REDIS_URL", raising=False)

    def app_for(*names):
        ctx = click.Context(cli.main, info_name="groundwork")
        for name in names:
            ctx = click.Context(ctx.command.get_command(ctx, name), parent=ctx, info_name=name)
        with ctx:
            return cli.cli_app()

    for names in (("db", "upgrade"), ("projects",), ("export",), ("demo",), ("worker",)):
        assert not app_for(*names).blueprints, names
    for names in (("run",), ("routes",), ("shell",), ("limiter", "config")):
        assert app_for(*names).blueprints, names
