"""Refuse oversized request bodies with 413 before anything reads them."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse

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
