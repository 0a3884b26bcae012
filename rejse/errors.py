"""Domain errors: raised by service functions, turned into 4xx responses by the API."""

from __future__ import annotations


class DomainError(Exception):
    """A rejected request; `field` names the culprit (dotted path)."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status_code is not None:
            self.status_code = status_code


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Unprocessable(DomainError):
    status_code = 422
