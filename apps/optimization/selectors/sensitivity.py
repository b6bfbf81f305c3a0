"""Sensitivity: 1-D slices of a metric through the best run, one per parameter."""

from __future__ import annotations

from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.optimization.selectors.jobs import job_allowed, job_best_runs
from apps.optimization.selectors.slices import grid_positions, grid_strides
from backtestlab.engine.evaluation.sensitivity import relative_fall
from backtestlab.engine.metrics import METRIC_NAMES, METRICS
from backtestlab.errors import ApplicationError


def job_sensitivity(
    *, job: OptimizationJob, metric: str | None = None, run: OptimizationRun | None = None
) -> dict:
    """For the best run (or ``run``), one 1-D slice per parameter with several values: the
    metric as that parameter moves through its values while every other parameter (and the
    dataset) stays at the run's. ``neighbour_drop_pct`` is the largest fall from the run's
    value to an adjacent value, in % of |value|: small means a plateau, large a spike."""
    metric = metric or job.objective
    if metric not in METRICS:
        raise ApplicationError(
            f"metric must be one of {', '.join(METRIC_NAMES)}; got {metric!r}", field="metric"
        )
    if run is None:
        run = next(iter(job_best_runs(job=job, limit=1)), None)
    result = {"job": job.id, "metric": metric, "metric_label": METRICS[metric].label}
    if run is None:
        return {**result, "run": None, "parameters": []}
    grid = job.grid
    strides = grid_strides(grid)
    positions = grid_positions(grid, run.grid_index)
    wanted: dict[str, list[int]] = {}
    for name, values in grid.items():
        if len(values) > 1:
            base = run.grid_index - positions[name] * strides[name]
            wanted[name] = [base + k * strides[name] for k in range(len(values))]
    indexes = {i for idx in wanted.values() for i in idx}
    found = {
        gi: (run_id, status, value, n_trades)
        for gi, run_id, status, value, n_trades in OptimizationRun.objects.filter(
            job=job, dataset_id=run.dataset_id, grid_index__in=indexes
        ).values_list("grid_index", "id", "status", metric, "n_trades")
    }
    higher = METRICS[metric].higher_is_better
    skipped = set()
    if job.skipped_combinations:  # combinations a constraint kept from running
        skipped = {gi for gi in indexes if not job_allowed(job, gi, gi + 1)[0]}
    parameters = []
    for name, idx in wanted.items():
        points = []
        for k, gi in enumerate(idx):
            run_id, status, value, n_trades = found.get(gi, (None, None, None, None))
            if status != OptimizationRun.Status.SUCCEEDED:
                value = None
            points.append(
                {
                    "value": grid[name][k],
                    "metric": value,
                    "run_id": run_id,
                    "is_run": k == positions[name],
                    "n_trades": n_trades,
                    # a neighbour that (nearly) never trades is shown, greyed: a cliff
                    "ranked": value is not None and (n_trades or 0) >= job.min_trades,
                    "skipped": gi in skipped,
                }
            )
        centre = points[positions[name]]["metric"]
        drops = []
        for k in (positions[name] - 1, positions[name] + 1):
            if 0 <= k < len(points) and centre not in (None, 0) and points[k]["metric"] is not None:
                sign = 1.0 if higher else -1.0
                drops.append(100.0 * relative_fall(sign * centre, sign * points[k]["metric"]))
        parameters.append(
            {
                "name": name,
                "points": points,
                "neighbour_drop_pct": max(drops) if drops else None,
            }
        )
    return {
        **result,
        "run": {
            "id": run.id,
            "dataset": run.dataset_id,
            "params": run.params,
            "value": getattr(run, metric),
        },
        "parameters": parameters,
    }
