"""The errors the domain raises. The web layer maps each to one status in one place (``web/errors``);
the CLI prints the message. Every message is safe to show to the person who caused it."""


class ServiceError(Exception):
    """Base class: the message is safe to show to the user."""

    status = 400


class ValidationError(ServiceError):
    """Input broke a rule. ``errors`` maps a field (or ``line:field``) to what is wrong."""

    status = 422

    def __init__(self, errors: dict[str, str] | str):
        if isinstance(errors, str):
            errors = {"": errors}
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in errors.items()))


class Unauthorized(ServiceError):
    """No credentials, or credentials that authenticate nobody (the API's bearer tokens)."""

    status = 401


class NotFound(ServiceError):
    status = 404


class Forbidden(ServiceError):
    status = 403


def said(exc: ServiceError) -> str:
    """A refusal as one sentence for a page's message: a validation error's messages without their field
    keys (which name form fields, not what the person sees), any other error's own message."""
    return "; ".join(exc.errors.values()) if isinstance(exc, ValidationError) else str(exc)


def plain_reason(exc: BaseException) -> str:
    """What a person can be told about an unexpected failure of a background job: our own errors say
    it themselves; the rest are named by kind, never by Python's words (the log has those)."""
    if isinstance(exc, ServiceError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "the server ran out of memory"
    if isinstance(exc, OSError):
        return "the server could not read or write a file (is the disk full?)"
    if type(exc).__name__ == "IntegrityError":
        return "another change to the same rows happened at the same moment; run it again"
    if type(exc).__module__.startswith(("sqlalchemy", "psycopg", "sqlite3")):
        return "the database was unavailable or refused a change"
    return "an unexpected error (it is in the server's log)"


class Conflict(ServiceError):
    """The request was fine but the state has moved on (someone else acted first, a lease lapsed)."""

    status = 409


class InsufficientStorage(ServiceError):
    """The server's disk has no room for what was asked (a dataset version)."""

    status = 507
