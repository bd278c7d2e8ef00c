"""Recording the SQL a piece of code runs, for tests that hold a path to its statements."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event


def statements(session, call: Callable[[], object], squeeze: bool = False) -> list[str]:
    """The statements ``call()`` ran on the session's engine, in order (``squeeze``: whitespace runs
    made single spaces)."""
    seen: list[str] = []
    engine = session.get_bind()

    def executed(_conn, _cursor, statement, *_args):
        seen.append(" ".join(statement.split()) if squeeze else statement)

    event.listen(engine, "after_cursor_execute", executed)
    try:
        call()
    finally:
        event.remove(engine, "after_cursor_execute", executed)
    return seen
