from app.services.rendering import render_markdown
from tests.html import assert_inert, elements

HOSTILE = (
    "Hello <script>alert('x')</script>\n\n"
    '<img src="x" onerror="alert(1)">\n\n'
    "[click me](javascript:alert(1)) and <a href=\"javascript:alert(2)\">raw</a>\n\n"
    "![pic](javascript:alert(3)) [data](data:text/html;base64,PHNjcmlwdD4=)"
)


def test_hostile_markup_renders_inert():
    html = render_markdown(HOSTILE)
    assert_inert(html)
    assert not [tag for tag, _ in elements(html) if tag == "script"]
    # The text is kept for the trainer to judge, shown as text.
    assert "&lt;script&gt;" in html and "&lt;img" in html


def test_markdown_formatting_and_safe_links_survive():
    html = render_markdown("**bold** and `code`\n\n```python\nprint(1)\n```\n\n[docs](https://example.org)")
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert '<pre class="code"><code class="language-python">' in html and '<span class="hl-nb">print</span>' in html
    assert ("a", {"href": "https://example.org", "rel": "noopener noreferrer nofollow"}) in elements(html)


def test_markdown_headings_sit_under_the_page_heading():
    """Instructions and dataset cards are shown inside a page with its own h1: their # is an h2, and no
    markdown (nor HTML in it) makes a second h1."""
    html = render_markdown("# Title\n\n## Part\n\n###### Deep\n\n<h1>raw</h1>")
    assert "<h1" not in html
    assert "<h2>Title</h2>" in html and "<h3>Part</h3>" in html and "<h6>Deep</h6>" in html
