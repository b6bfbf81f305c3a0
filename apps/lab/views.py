"""HTMX Backtesting Lab pages: thin views over the optimization services and selectors."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from apps.lab.forms import job_kwargs_from_post, launch_context
from apps.lab.results_views import best_table_columns, best_table_context
from apps.lab.synthetic_tools import page_context as synthetic_page_context
from apps.optimization.models import OptimizationJob
from apps.optimization.selectors.jobs import job_get_for_user, job_grid_plan, jobs_visible_to
from apps.optimization.selectors.neighbourhood import RANKINGS
from apps.optimization.services import jobs as jobs_services
from apps.optimization.services.jobs import job_create
from backtestlab.engine.metrics import METRICS
from backtestlab.errors import ApplicationError

BEST_TABLE_SIZE = 10


def job_status_context(job: OptimizationJob, rank: str = "objective") -> dict:
    # The best table per dataset and group_by value (e.g. per pattern_type), each beside the
    # current production parameters (apps.optimization.results.job_best_table), ranked by
    # the objective or by the runs' neighbourhoods (rank=robust).
    rank = rank if rank in RANKINGS else "objective"
    best_table = best_table_context(job, limit=BEST_TABLE_SIZE, rank=rank)
    return {
        "job": job,
        "rank": rank,
        "best_table": best_table,
        "has_best": any(section["rows"] for section in best_table),
        "param_names": best_table_columns(job)[0],
        "fixed_params": best_table_columns(job)[1],
        "objective_label": METRICS[job.objective].label,
    }


@login_required
@require_GET
def job_list(request):
    jobs = jobs_visible_to(request.user)[:200]
    return render(request, "lab/job_list.html", {"jobs": jobs})


@login_required
@require_GET
def job_progress(request, job_id: int):
    """The progress-bar fragment of one job row; it polls only while the job is active."""
    return render(
        request, "lab/_job_progress.html", {"job": job_get_for_user(request.user, job_id)}
    )


@login_required
@require_GET
@vary_on_headers("HX-Request")
def job_detail(request, job_id: int):
    job = job_get_for_user(request.user, job_id)
    context = job_status_context(job, rank=request.GET.get("rank") or "objective")
    if request.htmx:
        return render(request, "lab/_job_status.html", context)
    if job.kind == OptimizationJob.Kind.GRID:
        context["grid_plan"] = job_grid_plan(job).text(job.datasets.count())
    return render(request, "lab/job_detail.html", context)


@login_required
@require_POST
def job_cancel(request, job_id: int):
    job = job_get_for_user(request.user, job_id)
    try:
        jobs_services.job_cancel(job=job)
    except ApplicationError as exc:
        context = job_status_context(job)
        context["error"] = exc.message
        return render(request, "lab/_job_status.html", context, status=409)
    job.refresh_from_db()
    if request.htmx:
        return render(request, "lab/_job_status.html", job_status_context(job))
    return redirect("lab:job-detail", job_id=job.id)


@login_required
@require_http_methods(["GET", "POST"])
def job_new(request):
    if request.method == "GET":
        context = launch_context(request.GET.get("strategy"), preset=request.GET.get("preset"))
        template = "lab/_launch_params.html" if request.htmx else "lab/job_new.html"
        return render(request, template, context)
    try:
        job = job_create(user=request.user, **job_kwargs_from_post(request.POST))
    except ApplicationError as exc:
        context = launch_context(request.POST.get("strategy"), request.POST)
        context.update(error=exc.message, error_field=exc.field or "")
        return render(request, "lab/job_new.html", context, status=400)
    url = reverse("lab:job-detail", args=[job.id])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@login_required
@require_POST
def job_plan(request):
    """The launch form's line "900 combinations, 378 skipped by fast < slow, 522 runs" for what
    the form holds now (htmx, on every change); a wrong field is named instead."""
    try:
        kwargs = job_kwargs_from_post(request.POST)
        plan = jobs_services.job_plan(
            strategy=kwargs["strategy"],
            dataset_ids=kwargs["dataset_ids"],
            parameter_grid=kwargs["parameter_grid"],
        )
    except ApplicationError as exc:
        return render(request, "lab/_launch_plan.html", {"plan_error": exc.message})
    return render(request, "lab/_launch_plan.html", {"plan": plan})


@login_required
@require_GET
def synthetic_tools(request):
    """Selector Frequency Scan, Selector Heatmap and Environment Heatmap (synthetic universe).

    The page only renders the forms from the one catalogue; its script posts to the API.
    """
    return render(request, "lab/synthetic_tools.html", synthetic_page_context())
