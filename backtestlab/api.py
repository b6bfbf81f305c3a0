"""Project-wide REST plumbing: the one JSON error shape, capped pagination and the metric field
(the JSON parsers are in backtestlab.parsers, the renderer in backtestlab.renderers)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from django.http import JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from backtestlab.engine.parameters import did_you_mean
from backtestlab.errors import ApplicationError
from backtestlab.inputs import whole_number
from backtestlab.renderers import INFINITY, json_number

log = logging.getLogger(__name__)


@extend_schema_field(
    {
        "oneOf": [{"type": "number"}, {"type": "string", "enum": [INFINITY, f"-{INFINITY}"]}],
        "nullable": True,
        "description": 'null where undefined; "Infinity" for an unbounded ratio',
    }
)
class MetricField(serializers.FloatField):
    """A read-only metric: a number, null where undefined (NaN), or ``"Infinity"`` (see
    :func:`json_number`)."""

    def to_representation(self, value):
        return json_number(float(value))


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


# Sent by browsers with every form, never a field of ours.
IGNORED_FIELDS = frozenset({"csrfmiddlewaretoken"})


def fields_check(data, known) -> None:
    """A field the request serializer does not declare is a 400 naming it (the schema says
    ``additionalProperties: false``): a typo must not silently fall back to a default.
    A body that is not an object is left to the serializer, which names what to send."""
    if not isinstance(data, Mapping):
        return
    for name in data:
        if name not in known and name not in IGNORED_FIELDS:
            raise ApplicationError(did_you_mean("field", name, list(known)), field=str(name))


def body_object(request, documented=None) -> dict:
    """The request's JSON body, which must be an object: ``[1]``, ``"x"``, ``1`` or ``null``
    are a 400 (a view calling ``.get()`` on them would be a 500). With ``documented`` (the
    request serializer its schema shows), a field it does not declare is a 400 too."""
    data = request.data
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(data), "a number"
        )
        raise ApplicationError(f"the body must be a JSON object like {{...}}, got {kind}")
    if documented is not None:
        fields_check(data, documented.fields)
    return data


def int_schema(low: int, high: int | None = None) -> dict:
    """The OpenAPI schema of a whole-number query parameter: what the view refuses (below
    ``low``, above ``high``), the schema says, so clients and the fuzzer know it."""
    schema = {"type": "integer", "minimum": low}
    return schema if high is None else {**schema, "maximum": high}


PAGE_SIZE_DESCRIPTION = "rows per page (at most 500 are returned)"
# Query parameters of a paginated list, for views that paginate by hand (e.g. a job's runs).
PAGE_PARAMETERS = [
    OpenApiParameter("page", int_schema(1)),
    OpenApiParameter("page_size", int_schema(1), description=PAGE_SIZE_DESCRIPTION),
]


class CappedPagination(PageNumberPagination):
    """``page_size`` above 500 is capped to 500; one that is not a whole number >= 1 is a 400
    naming it (DRF alone would silently use the default)."""

    page_size = 50
    page_size_query_param = "page_size"
    page_size_query_description = PAGE_SIZE_DESCRIPTION
    max_page_size = 500

    def get_schema_operation_parameters(self, view):
        # The schema says what is refused: page and page_size are whole numbers from 1.
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"] = {**parameter["schema"], "minimum": 1}
        return parameters

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and (whole_number(raw, maximum=None) or 0) < 1:
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


FORMAT_SUFFIX = re.compile(r"\.[A-Za-z0-9]+/?$")


def not_found(request, exception=None):
    """handler404: a path under /api/ that matches no route answers in the one error shape
    (format-suffix routes such as /api/jobs/1/cancel.json are not served: say so)."""
    if request.path.startswith("/api/"):
        hint = "the endpoints are listed at /api/docs/"
        if FORMAT_SUFFIX.search(request.path):
            hint = "drop the format suffix (the API answers JSON); " + hint
        return JsonResponse(
            {"ok": False, "error": f"nothing at {request.path}; {hint}"},
            status=status.HTTP_404_NOT_FOUND,
        )
    return page_not_found(request, exception)
