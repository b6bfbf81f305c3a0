"""Project-wide REST plumbing: the one JSON error shape and capped pagination."""

from __future__ import annotations

import logging

from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from backtestlab.errors import ApplicationError

log = logging.getLogger(__name__)


def _first_message(detail, prefix="") -> tuple[str, str]:
    """(field, message) of the first error in a DRF error structure."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = key if key != "non_field_errors" else ""
            name = f"{prefix}.{field}" if prefix and field else (field or prefix)
            return _first_message(value, name)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0], prefix)
    return prefix, str(detail)


def exception_handler(exc, context):
    """One JSON error shape for every failure: {"ok": false, "error": "...", "field": ...}."""
    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        log.exception("unexpected API error", exc_info=exc)
        return Response(
            {"ok": False, "error": f"internal error ({type(exc).__name__}); it has been logged"},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    field, message = _first_message(response.data)
    body = {"ok": False, "error": f"{field}: {message}" if field else message}
    if field:
        body["field"] = field
    if isinstance(exc, exceptions.ValidationError):
        body["errors"] = response.data
    response.data = body
    return response


class CappedPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
