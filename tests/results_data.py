"""Jobs whose runs are inserted directly with chosen metric values (hand-computable results)."""

from __future__ import annotations

from apps.optimization.models import JobStatus, OptimizationRun
from backtestlab.engine import sweep
from tests.factories import make_job

# sma_cross: fast × slow × sl_pct (× rr, one value) = 3 × 2 × 2; grid_index = 4f + 2s + l.
GRID_3x2x2 = {"fast": [5, 10, 20], "slow": [30, 60], "sl_pct": [1.0, 2.0], "rr": [2.0]}

# The seed's "Win Rate by RR Target vs SL Buffer" (rows rr_target, columns sl_buffer_pct).
SEED_RR = [1.5, 2.0, 2.5, 3.0]
SEED_SL = [5, 10, 15, 20]
SEED_WIN_RATE = [
    [45, 52, 48, 42],
    [38, 55, 51, 45],
    [32, 48, 53, 49],
    [28, 42, 47, 51],
]
SEED_GRID = {
    "pattern_type": ["imbalance", "order_block"],
    "rr_target": SEED_RR,
    "sl_buffer_pct": SEED_SL,
}


def job_with_runs(user, datasets, metrics_of, *, grid=None, strategy="sma_cross", **kwargs):
    """A finished job whose runs have ``metrics_of(dataset_index, grid_index, params)``
    (a dict of metric values; ``None`` for a failed run). ``n_trades`` is 100 unless given:
    enough for the run to be ranked (the job's ``min_trades`` is 1, see ``make_job``)."""
    status = kwargs.pop("status", JobStatus.SUCCEEDED)
    job = make_job(
        user, datasets, grid=grid or GRID_3x2x2, strategy=strategy, start=False, **kwargs
    )
    grid = job.grid
    runs = []
    for d, ds in enumerate(datasets):
        for gi, params in enumerate(sweep.params_range(grid, 0, sweep.grid_size(grid))):
            metrics = metrics_of(d, gi, params)
            base = dict(
                job=job,
                dataset=ds,
                grid_index=gi,
                params=params,
                param_hash=sweep.param_hash(params),
            )
            if metrics is None:
                runs.append(OptimizationRun(status="failed", error="boom", **base))
            else:
                runs.append(OptimizationRun(**base, **{"n_trades": 100, **metrics}))
    OptimizationRun.objects.bulk_create(runs, batch_size=2000)
    n_failed = sum(1 for r in runs if r.status == "failed")
    job.status = status
    job.total_runs = len(runs)
    job.completed_runs = len(runs) - n_failed
    job.failed_runs = n_failed
    job.save()
    return job


def seed_metrics(d, gi, params):
    """Win rates of the seed's table for imbalance; order_block = 100 - that."""
    win = SEED_WIN_RATE[SEED_RR.index(params["rr_target"])][SEED_SL.index(params["sl_buffer_pct"])]
    if params["pattern_type"] == "order_block":
        win = 100 - win
    return {"win_rate": float(win), "sharpe": win / 100.0}
