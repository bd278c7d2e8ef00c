"""Untrusted text (item contexts, responses, instructions) to safe HTML.

Markdown is parsed with raw HTML disabled, code blocks are highlighted on the server (Pygments),
then the output is sanitised again with an allow-list, so neither a markdown trick nor a parser bug
can smuggle in a script, an event handler or a ``javascript:`` link.
"""

from __future__ import annotations

from html import escape

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_formatter = HtmlFormatter(nowrap=True, classprefix="hl-")


def _highlight(code: str, lang: str, _attrs) -> str:
    lang = (lang or "").strip().split()[0] if lang else ""
    try:
        lexer = get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        lexer = None
    body = highlight(code, lexer, _formatter) if lexer else escape(code)
    css_lang = escape(lang, quote=True)
    return f'<pre class="code"><code class="language-{css_lang}">{body}</code></pre>\n' if lang else (
        f'<pre class="code"><code>{body}</code></pre>\n'
    )


_md = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False, "highlight": _highlight})
    .enable("table")
    .enable("strikethrough")
)

# A table column's alignment (``:---:``) as a class: the CSP allows no ``style`` attribute.
ALIGN_CLASSES = {f"text-align:{side}": f"align-{side}" for side in ("left", "center", "right")}


def _cell_open(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    align = ALIGN_CLASSES.get(str(token.attrs.pop("style", "")).replace(" ", ""))
    if align:
        token.attrSet("class", align)
    return self.renderToken(tokens, idx, options, env)


_md.add_render_rule("th_open", _cell_open)
_md.add_render_rule("td_open", _cell_open)
# A table in its own scrolling box, as the pages' own tables are: a wide one never widens the page.
_md.add_render_rule("table_open", lambda self, tokens, idx, options, env:
                    '<div class="table-scroll">' + self.renderToken(tokens, idx, options, env))
_md.add_render_rule("table_close", lambda self, tokens, idx, options, env:
                    self.renderToken(tokens, idx, options, env) + "</div>\n")



def _heading(self, tokens, idx, options, env) -> str:
    """A heading one level down (# is h2): markdown is always shown inside a page that has its own h1
    (instructions, a dataset card), and a page has one."""
    token = tokens[idx]
    token.tag = f"h{min(int(token.tag[1]) + 1, 6)}"
    return self.renderToken(tokens, idx, options, env)


_md.add_render_rule("heading_open", _heading)
_md.add_render_rule("heading_close", _heading)

ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote", "ul", "ol", "li", "span",
    "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td", "div",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "pre": {"class"},
    "span": {"class"},
    "ol": {"start"},
}
ALLOWED_CLASSES = {"th": set(ALIGN_CLASSES.values()), "td": set(ALIGN_CLASSES.values()), "div": {"table-scroll"}}
URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str) -> str:
    html = _md.render(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=ALLOWED_CLASSES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


def highlight_css() -> str:
    """The stylesheet for highlighted code (written to static/css/highlight.css)."""
    return HtmlFormatter(classprefix="hl-", style="friendly").get_style_defs(".markdown pre.code")
