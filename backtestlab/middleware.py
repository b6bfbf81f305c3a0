"""Refuse oversized request bodies with 413 before anything reads them, and NUL characters in
query strings and forms with 400 before any view passes them on."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

from backtestlab.errors import ApplicationError
from backtestlab.inputs import text_pairs_check

FORM_FIELDS_ROOM = 64 * 1024
UPLOAD_PATHS = ("/api/datasets/", "/lab/datasets/")  # where data files are uploaded


class BodySizeLimitMiddleware:
    """A body larger than DATA_UPLOAD_MAX_MEMORY_SIZE (a data file uploaded to UPLOAD_PATHS:
    larger than BACKTESTLAB["MAX_UPLOAD_MB"]) gets 413 (Django alone would say 400)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        upload = request.path in UPLOAD_PATHS and request.META.get("CONTENT_TYPE", "").startswith(
            "multipart/form-data"
        )
        if upload:
            # A data file: the upload limit (plus room for the form's other fields).
            mb = settings.BACKTESTLAB["MAX_UPLOAD_MB"]
            limit = mb * 2**20 + FORM_FIELDS_ROOM
        if limit is not None and length > limit:
            message = (
                f"request body of {length} bytes is larger than the limit of {limit} bytes; "
                "send a smaller body (e.g. a smaller grid, or ranges instead of long lists)"
            )
            if upload:
                message = (
                    f"the upload is {length / 2**20:,.1f} MB; the limit is {mb:,} MB "
                    "(BACKTESTLAB_MAX_UPLOAD_MB); split the file, or import it on the server "
                    "with manage.py import_candles"
                )
            if request.path.startswith("/api/"):
                return JsonResponse({"ok": False, "error": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain")
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Send settings.CONTENT_SECURITY_POLICY on every response (Django 5.2 has no CSP of its own).

    Scripts only from our own origin (htmx and the charts are vendored, page scripts live in
    static/js, the API docs load their script from /api/docs/?script); inline styles stay
    allowed for the progress bars' and heatmaps' widths and colours.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response


class NulCharacterMiddleware:
    """A NUL character in the query string or in a form field (name or value) is a 400 naming
    the field, on every path (API, lab pages, admin), before a view can store it or filter on
    it: PostgreSQL text cannot hold one (psycopg raises DataError, a 500).

    JSON bodies are checked by the API's parser (backtestlab.parsers.CheckedJSONParser). Multipart
    bodies under /api/ are left to DRF's parser and serializers (a CharField refuses a NUL):
    reading them here would replace DRF's own parse errors with Django's.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            text_pairs_check(_pairs(request.GET), where="query")
            if self._reads_form(request):
                text_pairs_check(_pairs(request.POST), where="form")
        except ApplicationError as exc:
            if request.path.startswith("/api/"):
                return JsonResponse(exc.as_dict(), status=exc.status)
            context = {"error": exc.message, "error_field": exc.field or ""}
            return render(request, "bad_request.html", context, status=exc.status)
        return self.get_response(request)

    @staticmethod
    def _reads_form(request) -> bool:
        if request.method != "POST":
            return False
        content_type = request.META.get("CONTENT_TYPE", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            return True
        return content_type.startswith("multipart/form-data") and not request.path.startswith(
            "/api/"
        )


def _pairs(query):
    """Every (name, value) of a QueryDict, repeated names included (``items()`` gives the
    last value of each name only)."""
    return ((name, value) for name, values in query.lists() for value in values)
