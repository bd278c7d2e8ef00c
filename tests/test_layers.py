"""The service boundary: views parse, call a service, render. Every query and every commit lives in
``app/services`` (a service that changes state commits itself), so nothing under ``app/web`` may
build a query or commit a transaction."""

from __future__ import annotations

from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parent.parent / "app" / "web"
FORBIDDEN = ("select(", ".commit()")


def _sources():
    return sorted(WEB.rglob("*.py"))


def test_the_web_layer_has_files_to_check():
    assert len(_sources()) > 5


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(WEB.parent.parent)))
def test_views_neither_query_nor_commit(path):
    text = path.read_text()
    found = [
        f"{path.relative_to(WEB.parent.parent)}:{number}: {what}"
        for number, line in enumerate(text.splitlines(), start=1)
        for what in FORBIDDEN
        if what in line
    ]
    assert not found, "queries and commits belong in app/services:\n" + "\n".join(found)
