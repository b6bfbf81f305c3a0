from django.urls import path

from apps.lab import carry_compare_views, views

app_name = "lab"

urlpatterns = [
    path("", views.job_list, name="job-list"),
    path("jobs/new/", views.job_new, name="job-new"),
    path("synthetic/", views.synthetic_tools, name="synthetic-tools"),
    path("carry/compare/", carry_compare_views.carry_compare_page, name="carry-compare"),
    path("jobs/<int:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<int:job_id>/progress/", views.job_progress, name="job-progress"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel, name="job-cancel"),
]
