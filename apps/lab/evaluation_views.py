"""Lab pages of the evaluation layer: strategy approval page and the job page's actions."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.lab.views import job_status_context
from apps.market.models import Dataset
from apps.optimization.selectors.jobs import job_get_for_user
from apps.optimization.services.monte_carlo import monte_carlo_job_create
from apps.optimization.services.walk_forward import walk_forward_job_from_sweep
from apps.strategies.selectors.approvals import approval_as_dict, approvals_visible
from apps.strategies.services import approval as approval_services
from backtestlab.engine.runner import strategy_warmup
from backtestlab.engine.strategies import STRATEGIES
from backtestlab.errors import ApplicationError


def _error_page(request, job, exc: ApplicationError):
    """The job page with the error above the evaluation panel (400, not a 500)."""
    context = job_status_context(job)
    context["evaluation_error"] = exc.message
    return render(request, "lab/job_detail.html", context, status=exc.status)


def _warmup_text(w) -> str:
    if isinstance(w, dt.timedelta):
        hours = w.total_seconds() / 3600
        return f"{hours:,.0f} h of history ({hours / 24:,.1f} days)"
    return f"{int(w):,} bars"


def strategy_detail_context(request, strategy) -> dict:
    """The strategy page: its parameter space, approvals and the datasets it can check on."""
    space = strategy.parameter_space()
    defaults = space.validate_params(space.defaults())
    history = [approval_as_dict(a) for a in approvals_visible(request.user, strategy.key)[:20]]
    datasets = Dataset.objects.filter(kind=strategy.data_kind).order_by("symbol", "timeframe")
    if strategy.timeframes:
        datasets = datasets.filter(timeframe__in=strategy.timeframes)
    return {
        "strategy": strategy,
        "params": space.params,
        "constraints": [getattr(c, "rule", None) or c.__doc__ or "" for c in space.constraints],
        "warmup": _warmup_text(strategy_warmup(strategy, defaults)),
        "datasets": datasets,
        "approval": history[0] if history else None,
        "history": history,
    }


@login_required
@require_GET
def strategy_detail(request, key: str):
    strategy = STRATEGIES.get(key)
    if strategy is None:
        raise Http404("unknown strategy")
    return render(request, "lab/strategy_detail.html", strategy_detail_context(request, strategy))


@login_required
@require_POST
def job_evaluate(request, job_id: int):
    job = job_get_for_user(request.user, job_id)
    try:
        approval_services.job_evaluate(job=job, trigger="page", user=request.user)
    except ApplicationError as exc:
        return _error_page(request, job, exc)
    return redirect("lab:job-detail", job_id=job.id)


def _int(request, name: str, default: int) -> int:
    raw = request.POST.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        raise ApplicationError(f"{name} must be an integer, got {raw!r}", field=name) from None


@login_required
@require_POST
def job_monte_carlo(request, job_id: int):
    job = job_get_for_user(request.user, job_id)
    try:
        if job.best_run is None:
            raise ApplicationError("this job has no best run to simulate", field="job")
        new = monte_carlo_job_create(
            user=request.user, run=job.best_run, sims=_int(request, "sims", 10_000),
            seed=_int(request, "seed", 0) or None,
        )  # fmt: skip
    except ApplicationError as exc:
        return _error_page(request, job, exc)
    return redirect("lab:job-detail", job_id=new.id)


@login_required
@require_POST
def job_walk_forward(request, job_id: int):
    job = job_get_for_user(request.user, job_id)
    try:
        new = walk_forward_job_from_sweep(
            user=request.user, job=job, n_splits=_int(request, "n_splits", 5),
            window=request.POST.get("window") or "rolling",
            pick=request.POST.get("pick") or "objective",
        )  # fmt: skip
    except ApplicationError as exc:
        return _error_page(request, job, exc)
    return redirect("lab:job-detail", job_id=new.id)
