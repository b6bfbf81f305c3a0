"""A grid sweep's own work: its runs from a chunk of the grid, and its outcome at the end."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from apps.optimization.gateway import job_prepare, params_metrics
from apps.optimization.models import JobChunk, OptimizationJob, OptimizationRun
from apps.optimization.selectors.jobs import (
    job_allowed,
    job_best_per_dataset,
    job_best_runs,
)
from apps.optimization.services.validation import setting
from backtestlab.engine import sweep
from backtestlab.engine.metrics import METRIC_NAMES
from backtestlab.renderers import json_number

log = logging.getLogger(__name__)

INTEGER_METRICS = ("n_trades", "max_consec_wins", "max_consec_losses")


def metric_value(name: str, value: float) -> float | int | None:
    """A metric as stored: None where undefined (NaN), integral metrics as int; an unbounded
    ratio stays ``inf`` (the database orders it above every finite value)."""
    if value is None or math.isnan(value):
        return None
    return int(value) if name in INTEGER_METRICS else value


def job_ranges(job: OptimizationJob, size: int) -> list[tuple[int, int]]:
    """Chunk ranges of grid indexes holding ``size`` runs each (the last fewer): skipped
    combinations take no room in a chunk, and no chunk is left with nothing to run."""
    indexes = np.flatnonzero(job_allowed(job))
    return [
        (int(indexes[k]), int(indexes[min(k + size, len(indexes)) - 1]) + 1)
        for k in range(0, len(indexes), size)
    ]


def chunk_runs(job: OptimizationJob, chunk: JobChunk) -> list[OptimizationRun]:
    """Backtest each parameter set of the chunk that keeps the strategy's constraints; a set
    whose backtest raises is a failed run.

    The data and the strategy's prepared context are loaded first, outside that isolation: if
    they fail, every run would fail the same way, so the error is the chunk's (and the job's).
    """
    allowed = job_allowed(job, chunk.start, chunk.stop)
    indexes = [chunk.start + int(k) for k in np.flatnonzero(allowed)]
    every = sweep.params_range(job.grid, chunk.start, chunk.stop)
    param_list = [p for p, ok in zip(every, allowed, strict=True) if ok]
    job_prepare(job, chunk.dataset)
    rows: list[Any] = []
    try:
        rows = list(params_metrics(job, chunk.dataset, param_list))
    except Exception:
        # Isolate the failing parameter sets; the others still count.
        log.exception("chunk %s: batch run failed, retrying one by one", chunk.id)
        for params in param_list:
            try:
                (row,) = params_metrics(job, chunk.dataset, [params])
                rows.append(row)
            except Exception as exc:  # recorded on the run, shown to the operator
                rows.append(f"{type(exc).__name__}: {exc}")
    runs = []
    for params, row, index in zip(param_list, rows, indexes, strict=True):
        base = dict(
            job_id=job.id,
            dataset_id=chunk.dataset_id,
            grid_index=index,
            params=params,
            param_hash=sweep.param_hash(params),
        )
        if isinstance(row, str):
            runs.append(OptimizationRun(status=OptimizationRun.Status.FAILED, error=row, **base))
        else:
            metrics = {n: metric_value(n, float(v)) for n, v in zip(METRIC_NAMES, row, strict=True)}
            runs.append(OptimizationRun(**base, **metrics))
    return runs


def _run_summary(run: OptimizationRun, objective: str) -> dict:
    return {
        "run_id": run.id,
        "dataset_id": run.dataset_id,
        "dataset": run.dataset.name,
        "symbol": run.dataset.symbol,
        "timeframe": run.dataset.timeframe,
        "params": run.params,
        "value": json_number(getattr(run, objective)),  # "Infinity" for an unbounded ratio
    }


def sweep_outcome(job: OptimizationJob) -> tuple[str, dict | None, OptimizationRun | None]:
    """(error, best parameters, best run) of a sweep whose chunks are all done.

    The sweep fails when no run succeeded or the share of failed runs is above
    FAILURE_TOLERANCE; the error then quotes the first failure.
    """
    best = next(iter(job_best_runs(job=job, limit=1)), None)  # pragma: no mutate: NumberReplacer
    tolerance = setting("FAILURE_TOLERANCE")
    error = ""
    if job.completed_runs == 0 or job.failed_runs > tolerance * job.total_runs:
        sample = (
            job.runs.filter(status=OptimizationRun.Status.FAILED)
            .values_list("error", flat=True)
            .first()
        )
        error = (
            f"{job.failed_runs} of {job.total_runs} runs failed "
            f"(tolerance {tolerance:.0%}); first error: {sample or 'n/a'}"
        )
    if best is None:
        return error, None, None
    best_params = {
        "objective": job.objective,
        "overall": _run_summary(best, job.objective),
        "per_dataset": [_run_summary(r, job.objective) for r in job_best_per_dataset(job=job)],
    }
    return error, best_params, best
