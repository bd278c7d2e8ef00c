"""`groundwork demo` names no port (whatever port is served, it cannot be wrong), and `make run`
announces the port it serves; `groundwork recount` reports the counters it put right."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.models import Item

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # seeds the whole demo
def test_demo_prints_the_logins_and_no_server_address(runner, session):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "Sign in with any of these" in result.output and "trainer1@groundwork.test" in result.output
    assert "5000" not in result.output
    assert not re.search(r"https?://|localhost|127\.0\.0\.1|:\d{2,5}\b", result.output, re.IGNORECASE)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_announces_and_serves_the_port_it_is_given():
    dry = subprocess.run(["make", "-n", "run", "PORT=8123"], cwd=ROOT, capture_output=True, text=True, check=True)
    commands = dry.stdout
    assert "groundwork demo" in commands
    assert "http://127.0.0.1:8123" in commands and "--port 8123" in commands
    assert "5000" not in commands


def test_recount_reports_the_counters_it_corrected(runner, session):
    from tests.factories import make_label_project

    project = make_label_project(session, items=4, slug="counted")
    ids = list(session.scalars(select(Item.id).where(Item.project_id == project.id).order_by(Item.id).limit(2)))
    session.execute(update(Item).where(Item.id.in_(ids)).values(done_count=Item.done_count + 7))
    session.commit()
    result = runner.invoke(args=["recount", "counted"])
    assert result.exit_code == 0 and "2 item counters corrected" in result.output
    again = runner.invoke(args=["recount", "counted"])
    assert "0 item counters corrected" in again.output
