from django.urls import include, path
from rest_framework.routers import DefaultRouter

from apps.lab.carry_compare_views import CarryCompareView
from apps.optimization import api

router = DefaultRouter()
router.register("jobs", api.JobViewSet, basename="job")
router.register("datasets", api.DatasetViewSet, basename="dataset")

urlpatterns = [
    path("strategies/", api.StrategyListView.as_view(), name="strategy-list"),
    path("carry/compare", CarryCompareView.as_view(), name="api-carry-compare"),
    path("", include(router.urls)),
]
