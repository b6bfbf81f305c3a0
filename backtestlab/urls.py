from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser

from backtestlab.api import fields_check
from backtestlab.parsers import CheckedJSONParser


class TokenView(ObtainAuthToken):
    """DRF's token view as every other: the checked JSON parser (DRF's view names its own
    parsers) and a 400 for a field its serializer does not declare."""

    parser_classes = [CheckedJSONParser, FormParser, MultiPartParser]

    def post(self, request, *args, **kwargs):
        fields_check(request.data, self.get_serializer().fields)
        return super().post(request, *args, **kwargs)


urlpatterns = [
    path("", RedirectView.as_view(url="/lab/", permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's setup script from /api/docs/?script: no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/token/", TokenView.as_view(), name="api-token"),
    # Before the optimization router: "jobs/monte_carlo/" would be read as the job "monte_carlo".
    path("api/", include("apps.strategies.evaluation_urls")),
    path("api/", include("apps.optimization.urls")),
    path("api/", include("apps.lab.api_urls")),
    path("api/", include("apps.strategies.api_urls")),
    path("lab/", include("apps.lab.urls")),
]

# Unmatched /api/ paths answer in the API's one JSON error shape; pages keep Django's 404.
handler404 = "backtestlab.api.not_found"
