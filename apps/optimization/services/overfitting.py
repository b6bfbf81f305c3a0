"""Overfitting figures of a finished sweep: PBO (CSCV) and the deflated Sharpe ratio."""

from __future__ import annotations

import logging
import math

from django.db import transaction

from apps.optimization.gateway import job_context, json_safe
from apps.optimization.models import JobStatus, OptimizationJob, OptimizationRun
from apps.optimization.selectors.jobs import trials_count
from backtestlab.engine.evaluation import overfitting
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.timeframes import bars_per_year
from backtestlab.errors import ApplicationError

log = logging.getLogger(__name__)

# Sweeps with more successful runs than this are sampled (every k-th grid index) for PBO.
OVERFITTING_MAX_CONFIGS = 300


def job_overfitting_compute(*, job: OptimizationJob) -> dict:
    """PBO and deflated Sharpe of a finished sweep, on the dataset of its best run.

    Configurations = the sweep's succeeded runs on that dataset (every k-th by grid index
    above OVERFITTING_MAX_CONFIGS, an unbiased sample, plus the best run); their per-period
    returns are recomputed with the engine (per bar, or coarser periods on long data); the
    number of trials for the DSR is every parameter set of the strategy ever evaluated on that
    dataset, by this job or any other (the trial ledger).
    """
    best = job.best_run
    if best is None:
        raise ApplicationError(f"job {job.id} has no best run to assess", field="job")
    runs = list(
        OptimizationRun.objects.filter(
            job=job, dataset_id=best.dataset_id, status=OptimizationRun.Status.SUCCEEDED
        )
        .order_by("grid_index")
        .values_list("id", "params")
    )
    n_trials = max(trials_count(strategy=job.strategy, dataset_id=best.dataset_id), len(runs))
    step = max(1, math.ceil(len(runs) / OVERFITTING_MAX_CONFIGS))
    sample = runs[::step]
    if best.id not in {r[0] for r in sample}:
        sample.append((best.id, best.params))
    strategy = get_strategy(job.strategy)
    ctx = job_context(job, best.dataset, strategy)
    matrix, bars_per_period = overfitting.returns_matrix(
        strategy, ctx, [p for _i, p in sample], Costs(**job.costs)
    )
    col = [r[0] for r in sample].index(best.id)
    report = overfitting.overfitting_report(
        matrix, col, periods_per_year=bars_per_year(best.dataset.timeframe) / bars_per_period,
        n_trials=n_trials,
    )  # fmt: skip
    report.update(
        dataset_id=best.dataset_id, best_run=best.id, n_trials=n_trials, job_trials=len(runs),
        sampled_every=step, objective=job.objective, best_sharpe=best.sharpe,
    )  # fmt: skip
    return json_safe(report)


def job_overfitting(*, job: OptimizationJob, compute: bool = True) -> dict | None:
    """The cached overfitting figures of a finished sweep (computed and cached if missing)."""
    cached = (job.evaluation or {}).get("overfitting")
    if cached is not None or not compute:
        return cached
    if job.kind != OptimizationJob.Kind.GRID or job.status != JobStatus.SUCCEEDED:
        return None
    try:
        report = job_overfitting_compute(job=job)
    except ApplicationError:
        return None
    except Exception as exc:
        log.exception("overfitting figures of job %s failed", job.id)
        report = {"error": f"{type(exc).__name__}: {exc}"}
    with transaction.atomic():
        fresh = OptimizationJob.objects.select_for_update().get(id=job.id)
        fresh.evaluation = {**(fresh.evaluation or {}), "overfitting": report}
        fresh.save(update_fields=["evaluation"])
    job.evaluation = fresh.evaluation
    return report


def job_overfitting_safe(*, job_id: int) -> None:
    """At a sweep's finalize: never let the figures fail the job."""
    try:
        job_overfitting(job=OptimizationJob.objects.select_related("best_run").get(id=job_id))
    except Exception:
        log.exception("overfitting figures of job %s failed", job_id)


def job_overfitting_after(job_id: int) -> None:
    job_overfitting_safe(job_id=job_id)
