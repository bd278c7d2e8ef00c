"""Pagination, once: which page was asked for, and whether it exists."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import abort, request, url_for

# Past this no list of ours has pages; a bigger number is a probe, not a reader.
MAX_PAGE = 100_000


@dataclass(frozen=True)
class Page:
    number: int
    pages: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page

    @property
    def limit(self) -> int:
        return self.per_page


def page_of(total: int, per_page: int, arg: str = "page") -> Page:
    """The page ``?page=`` asks for among ``total`` rows; a page that does not exist is a 404."""
    raw = request.args.get(arg, "1").strip()
    pages = max(1, -(-int(total) // per_page))
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not 1 <= int(raw) <= min(pages, MAX_PAGE):
        abort(404, description=f"There is no page {raw[:20]!r}; pages run from 1 to {pages}.")
    return Page(int(raw), pages, per_page)


def page_url(number: int, arg: str = "page") -> str:
    """This page's address with ``arg`` set to ``number``, every other query argument kept (a search, a
    filter): the pager's links."""
    args = request.args.to_dict(flat=False)
    args[arg] = [str(number)]
    return url_for(request.endpoint, **(request.view_args or {}), **args)
