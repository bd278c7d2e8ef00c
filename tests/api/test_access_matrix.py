"""The API's access matrix: every route of /api/v1, for every caller, against the exact status each
must get. A route without a row fails. Rows live beside their area in ``tests/api/access_<area>.py``
(``ROWS``, and optionally ``BODIES`` and ``values(session, world, matrix)`` for URL parts).

Callers (tests/api/conftest.CALLERS): anonymous (no token); the security world's applicant, trainer
member, trainer of another project (outsider), reviewer member, reviewer of nothing (stranger); a
client of the project; an admin; an admin's read-only token. Writes carry an empty JSON object, so
each answer shows who may act, not whether the action succeeded.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from flask import url_for

import tests.api
from tests.security.conftest import matrix_world  # noqa: F401 - the fixture, shared

from .conftest import CALLERS, Api

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


def _areas():
    for info in pkgutil.iter_modules(tests.api.__path__):
        if info.name.startswith("access_"):
            yield importlib.import_module(f"tests.api.{info.name}")


def _merged(name: str) -> dict:
    merged: dict = {}
    for module in _areas():
        part = getattr(module, name, {})
        overlap = set(merged) & set(part)
        assert not overlap, f"{module.__name__} repeats rows {overlap}"
        merged.update(part)
    return merged


MATRIX = _merged("ROWS")
BODIES = _merged("BODIES")


def api_routes(app):
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            for method in METHODS:
                if method in rule.methods:
                    found.append((method, rule.endpoint, rule))
    return found


def test_every_api_route_has_a_row(app):
    found = {(m, e) for m, e, _ in api_routes(app)}
    assert found - set(MATRIX) == set(), "API routes without an access row"
    assert set(MATRIX) - found == set(), "rows for API routes that no longer exist"
    for key, row in MATRIX.items():
        assert set(row) == set(CALLERS), f"{key} must say what every caller gets"


@pytest.fixture
def api_matrix(app, session, matrix_world, api_world):  # noqa: F811 - the imported fixture
    values = dict(matrix_world.values)
    for module in _areas():
        if hasattr(module, "values"):
            values.update(module.values(session, api_world, matrix_world))
    return values


@pytest.mark.parametrize("caller", CALLERS)
def test_each_caller_gets_exactly_the_status_the_matrix_says(app, client, api_world, api_matrix, caller):
    api = Api(client, api_world.tokens)
    with app.test_request_context():
        urls = {(m, e): url_for(e, **{k: api_matrix[k] for k in rule.arguments}) for m, e, rule in api_routes(app)}
    failures = []
    for (method, endpoint), url in sorted(urls.items()):
        expected = MATRIX[(method, endpoint)][caller]
        kwargs = {} if method == "GET" else {"json": BODIES.get((method, endpoint), {})}
        response = api.request(method, url, as_=caller, **kwargs)
        if response.status_code != expected:
            failures.append(f"{caller} {method} {url}: expected {expected}, got {response.status_code} "
                            f"{response.get_data(as_text=True)[:200]}")
        if response.status_code >= 400 and response.mimetype == "application/json":
            assert set(response.get_json()["error"]) == {"code", "message", "details"}
    assert failures == []
