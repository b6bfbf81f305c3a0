"""The one error type for business-rule failures.

Services raise it; the API's exception handler turns it into
``{"ok": false, "error": message, "field": field}`` with ``status``; pages show ``message``.
"""

from __future__ import annotations


class ApplicationError(Exception):
    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int = 400,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.extra = extra or {}

    def as_dict(self) -> dict:
        body = {"ok": False, "error": self.message}
        if self.field:
            body["field"] = self.field
        body.update(self.extra)
        return body
