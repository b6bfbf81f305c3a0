"""Refuse oversized request bodies with 413 before anything reads them."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse


class BodySizeLimitMiddleware:
    """A body larger than DATA_UPLOAD_MAX_MEMORY_SIZE gets 413 (Django alone would say 400)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            message = (
                f"request body of {length} bytes is larger than the limit of {limit} bytes; "
                "send a smaller body (e.g. a smaller grid, or ranges instead of long lists)"
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
