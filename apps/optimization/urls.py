from django.urls import include, path
from rest_framework.routers import DefaultRouter

from apps.optimization import api, results_api

# No format-suffix routes (/api/jobs/1/cancel.json): the API answers JSON only, and DRF passes
# the suffix to every action as a "format" argument none of them takes (a TypeError, a 500).
router = DefaultRouter()
router.include_format_suffixes = False
router.register("jobs", api.JobViewSet, basename="job")
router.register("datasets", api.DatasetViewSet, basename="dataset")

urlpatterns = [
    path("strategies/", api.StrategyListView.as_view(), name="strategy-list"),
    # Before the router: "jobs/compare/" would otherwise be read as the job with pk "compare".
    path("jobs/compare/", results_api.JobsCompareView.as_view(), name="api-jobs-compare"),
    path("jobs/<int:pk>/heatmap/", results_api.JobHeatmapView.as_view(), name="api-job-heatmap"),
    path(
        "jobs/<int:pk>/sensitivity/",
        results_api.JobSensitivityView.as_view(),
        name="api-job-sensitivity",
    ),
    path("jobs/<int:pk>/export/", results_api.JobExportView.as_view(), name="api-job-export"),
    path("runs/<int:pk>/detail/", results_api.RunDetailView.as_view(), name="api-run-detail"),
    path("", include(router.urls)),
]
