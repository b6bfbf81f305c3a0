"""Lab routes of the evaluation layer (included by apps/lab/urls.py, namespace "lab")."""

from django.urls import path

from apps.lab import evaluation_views as v
from apps.lab import strategy_views

urlpatterns = [
    path("strategies/", strategy_views.strategy_list, name="strategy-list"),
    path("strategies/<str:key>/", v.strategy_detail, name="strategy-detail"),
    path("strategies/<str:key>/check/", strategy_views.strategy_check_view, name="strategy-check"),
    path("jobs/<int:job_id>/evaluate/", v.job_evaluate, name="job-evaluate"),
    path("jobs/<int:job_id>/monte-carlo/", v.job_monte_carlo, name="job-monte-carlo"),
    path("jobs/<int:job_id>/walk-forward/", v.job_walk_forward, name="job-walk-forward"),
]
