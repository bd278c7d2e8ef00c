"""Errors the services raise; the web layer maps them to status codes, the CLI to messages."""


class ServiceError(Exception):
    """Base class: the message is safe to show to the user."""


class ValidationError(ServiceError):
    """Input broke a rule. ``errors`` maps a field (or ``line:field``) to what is wrong."""

    def __init__(self, errors: dict[str, str] | str):
        if isinstance(errors, str):
            errors = {"": errors}
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in errors.items()))


class NotFound(ServiceError):
    pass


class Forbidden(ServiceError):
    pass


class Conflict(ServiceError):
    pass
