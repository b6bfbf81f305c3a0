"""The best table's Apply: a confirmation page (current vs new parameters, both measured on
the same data, and the gates' verdicts), then a POST through the one apply service."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from apps.optimization.models import OptimizationRun
from apps.optimization.selectors.jobs import job_get_for_user, run_get_for_user
from apps.strategies.services.apply import apply_plan, can_apply, run_apply_to_production
from backtestlab.engine.metrics import METRIC_NAMES, METRICS
from backtestlab.errors import ApplicationError
from backtestlab.inputs import whole_number


def _plan_context(run: OptimizationRun) -> dict:
    plan = apply_plan(run=run)
    names = sorted(set(plan.old_params or {}) | set(plan.new_params))
    old = plan.old_params or {}
    return {
        "plan": plan,
        "param_rows": [
            (n, old.get(n, "—"), plan.new_params.get(n), old.get(n) != plan.new_params.get(n))
            for n in names
        ],
        "metric_rows": [
            (
                METRICS[n].label,
                plan.old_metrics.get(n),
                plan.new_metrics.get(n),
                n == plan.objective,
            )
            for n in METRIC_NAMES
        ],  # fmt: skip
    }


@login_required
@require_http_methods(["GET", "POST"])
def run_apply(request, job_id: int, run_id: int):
    job = job_get_for_user(request.user, job_id)
    run = run_get_for_user(request.user, run_id, job=job)
    run.job = job
    if not can_apply(request.user):
        raise PermissionDenied(
            "applying parameters needs the strategies.apply_parameters permission"
        )
    context = {"job": job, "run": run}
    status = 200
    if request.method == "POST":
        expected_version = whole_number(request.POST.get("expected_version", ""))
        try:
            if expected_version is None:
                raise ApplicationError(
                    "expected_version is missing: reload the page", field="expected_version"
                )
            context["result"] = run_apply_to_production(
                run=run, user=request.user, dry_run=False, source="page",
                reason=request.POST.get("reason", ""), expected_version=expected_version,
            )  # fmt: skip
        except ApplicationError as exc:
            context["error"] = exc.message
            status = exc.status
    try:
        context.update(_plan_context(run))
    except ApplicationError as exc:
        context["error"] = context.get("error") or exc.message
        status = status if status != 200 else exc.status
    return render(request, "lab/run_apply.html", context, status=status)
