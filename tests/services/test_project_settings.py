"""The dataset settings' rules, in the one service every door calls (form, API, command line)."""

import pytest

from app.errors import ValidationError
from app.services import projects as project_service
from tests.factories import make_label_project


@pytest.mark.parametrize(("fields", "expected"), [
    ({"license": " MIT "}, {"license": "MIT"}),  # kept as given, trimmed
    ({"license": "OTHER:Acme licence"}, {"license": "other: Acme licence"}),
    ({"license": "cc-by-nc-4.0"}, {"license": "cc-by-nc-4.0"}),
    ({"language": " en , pt-BR,zh-Hant "}, {"language": "en,pt-BR,zh-Hant"}),
    ({"language": ""}, {"language": ""}),  # not stated
    ({"citation": "  Doe et al. (2026).\r\n"}, {"citation": "Doe et al. (2026)."}),
])
def test_dataset_settings_are_kept_in_one_canonical_form(session, fields, expected):
    project = make_label_project(session, items=1)
    project_service.update_project(session, project, name=project.name, **fields)
    assert {k: getattr(project, k) for k in expected} == expected


@pytest.mark.parametrize(("fields", "field"), [
    ({"license": "cc by"}, "license"),
    ({"license": "other: two\nlines"}, "license"),
    ({"license": 4}, "license"),
    ({"language": "EN"}, "language"),  # the primary subtag is lower case
    ({"language": "e"}, "language"),
    ({"citation": "a \x00 b"}, "citation"),  # the command line has no input layer in front of it
    ({"citation": "x" * 5001}, "citation"),
])
def test_bad_dataset_settings_name_their_field_and_change_nothing(session, fields, field):
    project = make_label_project(session, items=1)
    with pytest.raises(ValidationError) as refused:
        project_service.update_project(session, project, name=project.name, **fields)
    assert list(refused.value.errors) == [field]
    session.refresh(project)
    assert (project.license, project.language, project.citation) == ("", "en", "")
