"""Helpers that build jobs and run them the way workers do (task bodies called directly)."""

from apps.optimization.models import JobChunk
from apps.optimization.services.execution import chunk_execute
from apps.optimization.services.jobs import job_create

SMALL_GRID = {"fast": [5, 10, 20], "slow": [30, 60], "sl_pct": [1.0, 2.0], "rr": [2.0]}  # 12


def make_job(user, datasets, grid=None, **kwargs):
    """A job as job_create makes it; ``min_trades`` is 1 unless given (the fixtures' few days
    of candles give runs of a handful of trades; the ranking tests set it themselves)."""
    kwargs.setdefault("min_trades", 1)
    return job_create(
        user=user,
        name=kwargs.pop("name", "test job"),
        strategy=kwargs.pop("strategy", "sma_cross"),
        dataset_ids=[d.id for d in datasets],
        parameter_grid=grid or SMALL_GRID,
        **kwargs,
    )


def run_all_chunks(job, times=1, worker="w1"):
    """Run every chunk's task body `times` times, as redelivered messages would."""
    results = []
    for _ in range(times):
        for chunk_id in (
            JobChunk.objects.filter(job=job).order_by("index").values_list("id", flat=True)
        ):
            results.append(chunk_execute(chunk_id=chunk_id, worker=worker))
    job.refresh_from_db()
    return results
