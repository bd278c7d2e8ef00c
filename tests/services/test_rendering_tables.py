"""Markdown tables keep their column alignment as classes: the CSP allows no style attribute."""

from __future__ import annotations

from pathlib import Path

from app.services.rendering import ALIGN_CLASSES, render_markdown
from tests.html import elements

TABLE = "| left | centre | right | plain |\n|:---|:---:|---:|---|\n| 1 | 2 | 3 | 4 |\n"
CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "app.css"


def cells(html: str) -> list[tuple[str, dict]]:
    return [(tag, attrs) for tag, attrs in elements(html) if tag in ("th", "td")]


def test_a_centred_column_renders_a_class_and_no_style():
    html = render_markdown(TABLE)
    assert 'class="align-center"' in html
    assert "style=" not in html
    assert cells(html) == [
        ("th", {"class": "align-left"}), ("th", {"class": "align-center"}), ("th", {"class": "align-right"}),
        ("th", {}),
        ("td", {"class": "align-left"}), ("td", {"class": "align-center"}), ("td", {"class": "align-right"}),
        ("td", {}),
    ]


def test_only_the_alignment_classes_pass_the_sanitiser():
    from app.services import rendering

    raw = ('<table><tr><td class="align-center evil" style="color: red">x</td>'
           '<th class="hidden" style="text-align: center">y</th></tr></table>')
    html = rendering.nh3.clean(raw, tags=rendering.ALLOWED_TAGS, attributes=rendering.ALLOWED_ATTRIBUTES,
                               allowed_classes=rendering.ALLOWED_CLASSES)
    assert "style=" not in html and "evil" not in html and "hidden" not in html
    assert 'class="align-center"' in html


def test_markup_typed_into_a_cell_stays_text():
    html = render_markdown('| a |\n|:-:|\n| <td style="x" class="align-left"> |\n')
    assert "&lt;td style=" in html  # shown as text
    assert not [attrs for _tag, attrs in elements(html) if "style" in attrs]
    assert [attrs for _tag, attrs in cells(html)] == [{"class": "align-center"}, {"class": "align-center"}]


def test_every_alignment_class_has_a_css_rule():
    css = CSS.read_text()
    for side, name in ((k.split(":")[1], v) for k, v in ALIGN_CLASSES.items()):
        assert f"td.{name}" in css and f"th.{name}" in css and f"text-align: {side}" in css


def test_a_table_scrolls_in_its_own_box_and_nobody_else_gets_that_box():
    """A markdown table (instructions, dataset cards) comes in the pages' scrolling box, so a wide one
    never widens the page on a phone; the box is ours: typed HTML stays text."""
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |")
    assert html.startswith('<div class="table-scroll"><table>') and html.rstrip().endswith("</table>\n</div>")
    assert "<div" not in render_markdown('<div class="table-scroll">x</div>').replace("&lt;div", "")
