"""Project-wide REST plumbing: the one JSON error shape and capped pagination."""

from __future__ import annotations

import logging

from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from backtestlab.errors import ApplicationError

log = logging.getLogger(__name__)


def first_message(detail, prefix="") -> tuple[str, str]:
    """(field, message) of the first error in a DRF error structure."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = key if key != "non_field_errors" else ""
            name = f"{prefix}.{field}" if prefix and field else (field or prefix)
            return first_message(value, name)
    if isinstance(detail, list) and detail:
        return first_message(detail[0], prefix)
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
    data = response.data
    # DRF's own errors (parse, auth, 404, throttling) carry {"detail": ...}: not a field.
    if isinstance(data, dict) and set(data) == {"detail"}:
        data = data["detail"]
    field, message = first_message(data)
    body = {"ok": False, "error": f"{field}: {message}" if field else message}
    if field:
        body["field"] = field
    if isinstance(exc, exceptions.ValidationError):
        body["errors"] = response.data
    response.data = body
    return response


class NonStrictJSONParser(JSONParser):
    """Parses NaN/Infinity literals into floats, so validation can name the field at fault
    (the strict parser refuses the whole body without saying where)."""

    strict = False


def body_object(request) -> dict:
    """The request's JSON body, which must be an object: ``[1]``, ``"x"``, ``1`` or ``null``
    are a 400 (a view calling ``.get()`` on them would be a 500)."""
    data = request.data
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(data), "a number"
        )
        raise ApplicationError(f"the body must be a JSON object like {{...}}, got {kind}")
    return data


class CappedPagination(PageNumberPagination):
    """``page_size`` above 500 is capped to 500; one that is not a whole number >= 1 is a 400
    naming it (DRF alone would silently use the default)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
            raise ApplicationError(
                f"page_size must be a whole number from 1 (at most {self.max_page_size} are "
                f"returned), got {raw!r}",
                field="page_size",
            )
        return super().get_page_size(request)

    def get_page_number(self, request, paginator):
        # DRF reads an empty ?page= as page 1; the schema says integer, so say what is wrong.
        if request.query_params.get(self.page_query_param) == "":
            raise ApplicationError(
                "page is empty; leave it out for the first page or send a whole number",
                field="page",
            )
        return super().get_page_number(request, paginator)


def not_found(request, exception=None):
    """handler404: a path under /api/ that matches no route answers in the one error shape."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "ok": False,
                "error": f"nothing at {request.path}; the endpoints are listed at /api/docs/",
            },
            status=status.HTTP_404_NOT_FOUND,
        )
    return page_not_found(request, exception)
