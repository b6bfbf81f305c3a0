"""Robust ranking: every run's neighbourhood score - the worst and the mean of its job's
objective over the run and its immediate grid neighbours
(:func:`backtestlab.engine.evaluation.sensitivity.neighbourhood_scores`) - and a job's runs
ranked by it, so a lone lucky peak next to a cliff does not come first."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from django.db.models import Max, Min

from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.optimization.selectors.jobs import job_allowed
from backtestlab.engine import sweep
from backtestlab.engine.evaluation.sensitivity import neighbour_indexes, neighbourhood_scores
from backtestlab.engine.evaluation.walk_forward import PICKS
from backtestlab.engine.metrics import METRICS

# How "best" is ordered: by the objective, or robust (the same rule as a walk-forward's pick).
RANKINGS = PICKS


def dataset_neighbourhood(job: OptimizationJob, dataset_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``(worst, mean)`` per grid index of the job on one dataset; only ranked runs count
    (:mod:`apps.optimization.ranking`), the others are cliffs and have NaN scores; a
    combination skipped by a constraint is no neighbour."""
    values = np.full(sweep.grid_size(job.grid), np.nan)
    rows = (
        OptimizationRun.objects.filter(
            job=job,
            dataset_id=dataset_id,
            status=OptimizationRun.Status.SUCCEEDED,
            n_trades__gte=job.min_trades,
        )
        .exclude(**{f"{job.objective}__isnull": True})
        .values_list("grid_index", job.objective)
    )
    for grid_index, value in rows:
        values[grid_index] = value
    return neighbourhood_scores(
        job.grid,
        values,
        higher_is_better=METRICS[job.objective].higher_is_better,
        exists=job_allowed(job) if job.skipped_combinations else None,
    )


def runs_neighbourhood(job: OptimizationJob, runs: list[OptimizationRun]) -> dict[int, tuple]:
    """``{run id: (worst, mean)}`` for a few runs of one dataset, the same numbers as
    :func:`dataset_neighbourhood` from two small queries (their neighbours' values and the
    grid's worst ranked value) instead of the whole grid: the best table's ten rows."""
    if not runs:
        return {}
    grid = job.grid
    higher = METRICS[job.objective].higher_is_better
    ranked = OptimizationRun.objects.filter(
        job=job,
        dataset_id=runs[0].dataset_id,
        status=OptimizationRun.Status.SUCCEEDED,
        n_trades__gte=job.min_trades,
    ).exclude(**{f"{job.objective}__isnull": True})
    neighbours = {r.id: neighbour_indexes(grid, r.grid_index) for r in runs}
    if job.skipped_combinations:  # combinations never run are no neighbours
        neighbours = {
            run_id: [gi for gi in there if job_allowed(job, gi, gi + 1)[0]]
            for run_id, there in neighbours.items()
        }
    wanted = {gi for n in neighbours.values() for gi in n}
    values = dict(ranked.filter(grid_index__in=wanted).values_list("grid_index", job.objective))
    worst_ranked = ranked.aggregate(w=(Min if higher else Max)(job.objective))["w"]
    out = {}
    for run in runs:
        own = getattr(run, job.objective)
        if (
            own is None
            or run.status != OptimizationRun.Status.SUCCEEDED
            or (run.n_trades or 0) < job.min_trades
        ):
            out[run.id] = (math.nan, math.nan)
            continue
        hood = [own] + [values.get(gi, worst_ranked) for gi in neighbours[run.id]]
        out[run.id] = ((min if higher else max)(hood), sum(hood) / len(hood))
    return out


def job_robust_runs(
    *,
    job: OptimizationJob,
    limit: int = 10,
    dataset_id: int,
    params: Mapping[str, Any] | None = None,
) -> list[OptimizationRun]:
    """The top ``limit`` ranked runs of one dataset (and parameter values when given) by their
    neighbourhood: best worst first, then best mean, then best own objective, then lowest id.
    Each run carries ``neighbour_worst`` and ``neighbour_mean``."""
    worst, mean = dataset_neighbourhood(job, dataset_id)
    runs = OptimizationRun.objects.filter(
        job=job,
        dataset_id=dataset_id,
        status=OptimizationRun.Status.SUCCEEDED,
        n_trades__gte=job.min_trades,
    ).exclude(**{f"{job.objective}__isnull": True})
    for name, value in (params or {}).items():
        runs = runs.filter(**{f"params__{name}": value})
    sign = 1.0 if METRICS[job.objective].higher_is_better else -1.0
    candidates = sorted(
        runs.values_list("id", "grid_index", job.objective),
        key=lambda r: (-sign * worst[r[1]], -sign * mean[r[1]], -sign * r[2], r[0]),
    )[:limit]
    found = OptimizationRun.objects.select_related("dataset").in_bulk([c[0] for c in candidates])
    out = []
    for run_id, grid_index, _value in candidates:
        run = found[run_id]
        run.neighbour_worst = float(worst[grid_index])
        run.neighbour_mean = float(mean[grid_index])
        out.append(run)
    return out
