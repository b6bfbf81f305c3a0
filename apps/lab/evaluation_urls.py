"""Lab routes of the evaluation layer (included by apps/lab/urls.py, namespace "lab")."""

from django.urls import path

from apps.lab import evaluation_views as v

urlpatterns = [
    path("strategies/<str:key>/", v.strategy_detail, name="strategy-detail"),
    path("jobs/<int:job_id>/evaluate/", v.job_evaluate, name="job-evaluate"),
    path("jobs/<int:job_id>/monte-carlo/", v.job_monte_carlo, name="job-monte-carlo"),
    path("jobs/<int:job_id>/walk-forward/", v.job_walk_forward, name="job-walk-forward"),
]
