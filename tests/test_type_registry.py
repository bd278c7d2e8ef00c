"""Nothing outside the question-type registry branches on a type's name: callers ask the type."""

from __future__ import annotations

import re
from pathlib import Path

from app.services.qtypes import QUESTION_TYPES

ROOT = Path(__file__).resolve().parent.parent
NAMES = "|".join(QUESTION_TYPES)
BRANCH = re.compile(
    rf"""(type(_name)?\s*(==|!=|\bin\b)|(==|!=)\s*['"]({NAMES})['"]|['"]({NAMES})['"]\s*(==|!=|\bin\b\s*\(?\s*\w*types)"""
    rf"""|['"]equalto['"]\s*,\s*['"]({NAMES})['"]|\(\s*['"]({NAMES})['"]\s*,\s*['"]({NAMES})['"])"""
)


def offending_lines():
    files = [p for p in (ROOT / "app").rglob("*.py") if "qtypes" not in p.parts]
    files += [p for p in (ROOT / "templates").rglob("*.html") if "qtypes" not in p.parts]
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if BRANCH.search(line) and re.search(rf"['\"]({NAMES})['\"]", line) and "type" in line:
                yield f"{path.relative_to(ROOT)}:{number}: {line.strip()}"


def script_lines():
    """Browser code outside the types' own scripts that names a type (selectors, literals)."""
    named = re.compile(rf"""data-type=['"]?({NAMES})\b|['"]({NAMES})['"]""")
    for path in (ROOT / "static" / "js").rglob("*.js"):
        if "qtypes" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if named.search(line):
                yield f"{path.relative_to(ROOT)}:{number}: {line.strip()}"


def test_no_branch_on_a_question_type_name_outside_the_registry():
    assert list(offending_lines()) == []
    assert list(script_lines()) == []


def test_each_type_has_its_template_and_its_script():
    for kind in QUESTION_TYPES.values():
        assert (ROOT / "templates" / kind.template).is_file(), kind.name
        if kind.script:
            assert (ROOT / "static" / kind.script).is_file(), kind.name


def test_the_check_sees_a_branch():
    assert BRANCH.search("if question.type == 'rating':")
    assert BRANCH.search('elif q.type in ("label", "multi_label"):')
    assert BRANCH.search("questions | selectattr('type', 'equalto', 'preference')")
