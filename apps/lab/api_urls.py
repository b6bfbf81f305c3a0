"""URLs of the synthetic environment tools' API, included under /api/.

The documented paths have no trailing slash (the seed's clients post to
``/api/environment_heatmap``); the slash form is accepted too, and left out of the schema.
"""

from django.urls import path

from apps.lab import api
from apps.lab.carry_compare_views import CarryCompareView

ENDPOINTS = [
    ("environment_heatmap", api.EnvironmentHeatmapView, "environment-heatmap"),
    ("selector_scan", api.SelectorScanView, "selector-scan"),
    ("selector_heatmap", api.SelectorHeatmapView, "selector-heatmap"),
    ("environment_metrics", api.EnvironmentMetricsView, "environment-metrics"),
]

urlpatterns = [
    path("carry/compare", CarryCompareView.as_view(), name="api-carry-compare"),
    *(
        url
        for route, view, name in ENDPOINTS
        for url in (
            path(route, view.as_view(), name=name),
            path(f"{route}/", view.as_view(schema=None)),
        )
    ),
]
