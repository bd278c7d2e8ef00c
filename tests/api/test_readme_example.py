"""The README's API example, run as written against a live server: part one creates a project and
pushes items, trainers work, part two builds a version and loads it with ``datasets``."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app.models import Project
from app.services import api_tokens
from app.services import assignment as queue
from app.services import projects as project_service
from tests.e2e.conftest import QuietHandler
from tests.factories import make_user

README = Path(__file__).resolve().parents[2] / "README.md"


def example(name: str) -> str:
    text = README.read_text()
    match = re.search(rf"<!-- example: {name} -->\s*```python\n(.*?)```", text, re.S)
    assert match, f"the README has no example {name}"
    return match.group(1)


@pytest.fixture
def live(app):
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.slow
def test_the_readme_example_runs_from_a_new_project_to_a_loaded_dataset(app, session, live, capsys):
    admin = make_user(session, "admin")
    token = api_tokens.create(session, admin, "readme").secret
    namespace = {}
    part_one = example("api-part-1").replace('"http://127.0.0.1:5000/api/v1"', repr(f"{live}/api/v1"))
    part_one = part_one.replace('"gw_…"', repr(token))
    exec(compile(part_one, "README api-part-1", "exec"), namespace)  # noqa: S102 - the README's own code

    project = session.query(Project).filter_by(slug=namespace["slug"]).one()
    trainers = [make_user(session, "trainer") for _ in range(2)]
    for trainer in trainers:
        project_service.add_member(session, project, trainer, "trainer")
    for n, trainer in enumerate(trainers):
        while (task := queue.next_task(session, trainer.id, project)) is not None:
            queue.submit(session, task.id, trainer.id, {"preference": -2 if n == 0 else -1})

    exec(compile(example("api-part-2"), "README api-part-2", "exec"), namespace)  # noqa: S102
    dataset = namespace["dataset"]
    assert dataset.num_rows == 20
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    assert all("logrotate" in row["chosen"][-1]["content"] if isinstance(row["chosen"], list) else
               "logrotate" in row["chosen"] for row in dataset)
    assert "20 items" in capsys.readouterr().out
