from django.urls import include, path
from rest_framework.routers import DefaultRouter

from apps.optimization import api

router = DefaultRouter()
router.register("jobs", api.JobViewSet, basename="job")
router.register("datasets", api.DatasetViewSet, basename="dataset")

urlpatterns = [
    path("strategies/", api.StrategyListView.as_view(), name="strategy-list"),
    path("", include(router.urls)),
]
