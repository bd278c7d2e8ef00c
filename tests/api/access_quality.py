"""Access rows: a project's quality figures (admins and the project's clients)."""

from __future__ import annotations

from .access_projects import row

ROWS = {
    # world.project's client reads it; trainers, reviewers and applicants hold neither role
    ("GET", "api.project_quality"): row(client=200),
}
