"""API routes of production parameters and risk (included under /api/)."""

from django.urls import path

from apps.strategies import api

urlpatterns = [
    path("jobs/<int:pk>/best/", api.JobBestView.as_view(), name="job-best"),
    path("runs/<int:pk>/apply/", api.RunApplyView.as_view(), name="api-run-apply"),
    path("jobs/<int:pk>/apply_best/", api.JobApplyBestView.as_view(), name="api-job-apply-best"),
    path(
        "strategies/<str:key>/config", api.StrategyConfigView.as_view(), name="api-strategy-config"
    ),
    path(
        "strategies/<str:key>/config/history",
        api.StrategyConfigHistoryView.as_view(),
        name="api-strategy-config-history",
    ),
    path(
        "strategies/<str:key>/config/restore",
        api.StrategyConfigRestoreView.as_view(),
        name="api-strategy-config-restore",
    ),
    path("runs/<int:pk>/risk/", api.RunRiskView.as_view(), name="api-run-risk"),
    path("paper/", api.PaperView.as_view(), name="api-paper"),
    path("strategies/<str:key>/risk", api.StrategyRiskView.as_view(), name="api-strategy-risk"),
]
