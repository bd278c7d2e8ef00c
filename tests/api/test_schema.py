"""Schemathesis against the API's own OpenAPI document, as every caller, on both databases: no response
is a 5xx, every response matches the schema the document declares for its status, and its content type.

One test per (caller, database) walks every operation with a few generated requests each, so the world
is built once per caller rather than once per operation.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from tests.security.conftest import matrix_world  # noqa: F401 - the fixture: one of everything

from .conftest import CALLERS

EXAMPLES = 12  # per operation and caller; the run is a probe, the contract tests are the specification
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _operations(schema):
    for result in schema.get_all_operations():
        yield result.ok()


@pytest.mark.slow
@pytest.mark.parametrize("caller", CALLERS)
def test_every_operation_keeps_its_schema(app, api_world, matrix_world, caller):  # noqa: F811
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {} if caller == "anonymous" else {"Authorization": f"Bearer {api_world.tokens[caller]}"}
    operations = list(_operations(schema))
    assert len(operations) >= 4
    failures = []
    for operation in operations:
        @given(case=operation.as_strategy(), real=st.booleans())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def probe(case, real):
            if real:  # half the cases point at rows that exist, so the probe gets past the 404s
                for name in case.path_parameters or {}:
                    if name in matrix_world.values:
                        case.path_parameters[name] = matrix_world.values[name]
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            probe()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert failures == [], "\n\n".join(failures)
