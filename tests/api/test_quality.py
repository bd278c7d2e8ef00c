"""GET /api/v1/projects/<slug>/quality: the figures of the Quality page; trainers by the pseudonym their
dataset files carry (clients never get a user id, a name or an e-mail); admins and the project's clients only."""

from __future__ import annotations

import orjson

from app.db import get_db
from app.services import assignment as queue
from app.services import exporting
from app.services import projects as project_service
from app.services.exporting.source import Pseudonyms
from app.services.stats import compute_project_stats
from tests.factories import make_user

from .conftest import token_for

URL = "/api/v1/projects/alpha/quality"


def _answered(session, api_world):
    """world.project ("alpha", overlap 1) answered by its trainer and by the outsider, with figures."""
    world = api_world.world
    world.project.overlap = 2
    project_service.add_member(session, world.project, world.outsider, "trainer")
    for trainer, label in ((world.trainer, "yes"), (world.outsider, "no")):
        while (a := queue.next_task(session, trainer.id, world.project)) is not None:
            queue.submit(session, a.id, trainer.id, {"label": label if a.item.external_id != "it-1" else "yes"})
    compute_project_stats(session, world.project)
    return world


def test_before_any_figures_the_answer_is_empty_not_an_error(api, api_world):
    body = api.get(URL, as_="client").get_json()
    assert body["computed_at"] is None and body["trainers"] == [] and body["questions"] == []
    assert body["review"] == {"unreviewed": 0, "approved": 0, "rejected": 0, "corrected": 0}
    assert body["gold_accuracy_histogram"] == [0, 0, 0, 0, 0]


def test_a_client_gets_the_figures_with_trainers_by_pseudonym_only(app, api, api_world, session):
    world = _answered(session, api_world)
    response = api.get(URL, as_="client")
    assert response.status_code == 200
    body = response.get_json()
    pseudonym = Pseudonyms(app.config["SECRET_KEY"])
    assert body["project"] == "alpha" and body["computed_at"] and body["annotations"] == 8
    assert body["trainers_count"] == 2 and body["trainers_total"] == 2
    assert {t["trainer"] for t in body["trainers"]} == {pseudonym(world.trainer.id), pseudonym(world.outsider.id)}
    assert all(t["user_id"] is None for t in body["trainers"])
    question = body["questions"][0]
    assert question["key"] == "label" and question["items_with_2_plus"] == 4 and "alpha_nominal" in question["figures"]
    assert {row["external_id"] for row in body["lowest_agreement_items"]} == {"it-2", "it-3", "it-4"}
    assert body["review"]["unreviewed"] + body["review"]["approved"] == 8
    raw = response.get_data(as_text=True)
    for person in (world.trainer, world.outsider, world.reviewer, world.admin):
        assert person.name not in raw and person.email not in raw
        assert f'"user_id":{person.id}' not in raw.replace(" ", "")


def test_the_pseudonyms_are_the_ones_in_the_dataset_files(app, api, api_world, session):
    world = _answered(session, api_world)
    export = exporting.create_export(session, world.project, {"format": "raw"}, world.admin.id)
    with app.app_context():
        done = exporting.run_export(get_db().session_factory, export.id, app.config["EXPORT_DIR"],
                                    app.config["SECRET_KEY"])
    path = exporting.file_path(app.config["EXPORT_DIR"], done, "train.jsonl")
    in_files = {orjson.loads(line)["trainer"] for line in path.read_bytes().splitlines()}
    body = api.get(URL, as_="client").get_json()
    assert {t["trainer"] for t in body["trainers"]} == in_files and len(in_files) == 2


def test_admins_also_get_user_ids(api, api_world, session):
    world = _answered(session, api_world)
    for caller in ("admin", "admin_ro"):
        body = api.get(URL, as_=caller).get_json()
        assert {t["user_id"] for t in body["trainers"]} == {world.trainer.id, world.outsider.id}


def test_rows_sort_and_stop_at_the_limit(api, api_world, session):
    _answered(session, api_world)
    by_name = api.get(URL + "?sort=trainer&order=asc", as_="client").get_json()["trainers"]
    assert [t["trainer"] for t in by_name] == sorted(t["trainer"] for t in by_name)
    agreeing = api.get(URL + "?sort=consensus_agreement&order=desc", as_="client").get_json()["trainers"]
    values = [t["consensus_agreement"] for t in agreeing]
    assert values == sorted(values, reverse=True)
    one = api.get(URL + "?limit=1", as_="client").get_json()
    assert len(one["trainers"]) == 1 and one["trainers_total"] == 2


def test_bad_queries_are_422_naming_the_field(api, api_world):
    for query, field in (("sort=name", "sort"), ("limit=0", "limit"), ("limit=1001", "limit"), ("order=up", "order"),
                         ("extra=1", "extra")):
        response = api.get(f"{URL}?{query}", as_="client")
        assert response.status_code == 422, query
        assert field in response.get_json()["error"]["details"], query


def test_other_projects_do_not_exist_for_a_client(api, api_world, session):
    assert api.get("/api/v1/projects/beta/quality", as_="client").status_code == 404
    assert api.get("/api/v1/projects/nope/quality", as_="client").status_code == 404
    # A client of beta sees beta's, not alpha's.
    theirs = make_user(session, "client")
    project_service.add_member(session, api_world.world.other, theirs, "client")
    api.tokens["beta_client"] = token_for(session, theirs)
    assert api.get("/api/v1/projects/beta/quality", as_="beta_client").status_code == 200
    assert api.get(URL, as_="beta_client").status_code == 404


def test_trainers_and_reviewers_of_the_project_are_refused(api, api_world):
    for caller in ("trainer", "reviewer", "applicant"):
        response = api.get(URL, as_=caller)
        assert response.status_code == 403 and response.get_json()["error"]["code"]
