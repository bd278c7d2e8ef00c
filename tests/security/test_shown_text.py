"""Free text other people read (a rejection reason, a written answer, an invitation message, a review
comment, a skip reason, a pay adjustment's reason, a written prompt) is plain text: line breaks and
tabs are fine; control characters and direction overrides, which make it show one thing and say
another, are refused; a required one must show something."""

from __future__ import annotations

import pytest

from app.bounds import has_visible, plain_text_problem


@pytest.mark.parametrize("text", ["a\u202eb", "x\u202ay", "bell\x07", "esc\x1b[31m", "del\x7f", "c1\x85"])
def test_control_characters_and_direction_overrides_are_not_plain_text(text):
    assert plain_text_problem(text) is not None


@pytest.mark.parametrize("text", ["line one\nline two\ttabbed\r\n", "مرحبا \u2067world\u2069 \u200f", "café ✓"])
def test_line_breaks_tabs_marks_and_isolates_are(text):
    assert plain_text_problem(text) is None


def test_invisible_characters_show_nothing():
    assert not has_visible("\u200b\u2060 \u00ad") and has_visible("\u200bx")
