"""What a browser would build from HTML: the elements and their attributes."""

from html.parser import HTMLParser


class _TagCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict]]:
    collector = _TagCollector()
    collector.feed(html)
    return collector.elements


def assert_inert(html: str) -> None:
    """No script but our own files, no images, no event handlers, no javascript:/data: links."""
    for tag, attrs in elements(html):
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/static/"), f"foreign script: {attrs}"
        assert tag not in ("img", "iframe", "object", "embed"), f"unexpected <{tag}> {attrs}"
        assert not [name for name in attrs if name.startswith("on")], f"event handler on <{tag}>: {attrs}"
        for name in ("href", "src", "action", "formaction"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("javascript:", "data:", "vbscript:")), f"<{tag} {name}={value}>"
