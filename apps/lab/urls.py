from django.urls import path

from apps.lab import (
    apply_views,
    carry_compare_views,
    dataset_views,
    paper_views,
    results_views,
    views,
)
from apps.lab.evaluation_urls import urlpatterns as evaluation_urls

app_name = "lab"

urlpatterns = [
    path("", views.job_list, name="job-list"),
    path("jobs/new/", views.job_new, name="job-new"),
    path("jobs/new/plan/", views.job_plan, name="job-plan"),
    path("synthetic/", views.synthetic_tools, name="synthetic-tools"),
    path("carry/compare/", carry_compare_views.carry_compare_page, name="carry-compare"),
    path("jobs/<int:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<int:job_id>/progress/", views.job_progress, name="job-progress"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<int:job_id>/heatmap/", results_views.job_heatmap, name="job-heatmap"),
    path("jobs/<int:job_id>/sensitivity/", results_views.job_sensitivity, name="job-sensitivity"),
    path("jobs/<int:job_id>/runs/<int:run_id>/", results_views.run_detail, name="run-detail"),
    path("jobs/<int:job_id>/runs/<int:run_id>/apply/", apply_views.run_apply, name="run-apply"),
    path("jobs/<int:job_id>/export.csv", results_views.job_export_csv, name="job-export-csv"),
    path("compare/", results_views.jobs_compare, name="jobs-compare"),
    path("paper/", paper_views.paper, name="paper"),
    path("datasets/", dataset_views.datasets, name="datasets"),
    *evaluation_urls,
]
