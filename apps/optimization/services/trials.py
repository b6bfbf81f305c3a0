"""The trial ledger (:class:`~apps.optimization.models.Trial`): what a finished job adds, and
how many trials a strategy has had on a dataset."""

from __future__ import annotations

from collections.abc import Iterable

from apps.optimization.models import OptimizationJob, OptimizationRun, Trial
from apps.optimization.selectors.jobs import job_allowed
from backtestlab.engine import sweep

BATCH = 2000


def trials_record(*, job: OptimizationJob, dataset_id: int, hashes: Iterable[str]) -> None:
    """Add the parameter sets (by ``param_hash``) ``job`` evaluated on a dataset; sets the
    ledger holds already stay as they are (first job kept)."""
    batch: list[Trial] = []
    for h in hashes:
        batch.append(Trial(strategy=job.strategy, dataset_id=dataset_id, param_hash=h, job=job))
        if len(batch) >= BATCH:
            Trial.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        Trial.objects.bulk_create(batch, ignore_conflicts=True)


def job_trials_record(job: OptimizationJob) -> None:
    """Every parameter set a finished job evaluated, per dataset: a sweep's runs (failed ones
    too: they were tried), or a walk-forward's grid but for the combinations its constraints
    skip (every fold optimises over it)."""
    dataset_ids = list(job.datasets.order_by("id").values_list("id", flat=True))
    for dataset_id in dataset_ids:
        if job.kind == OptimizationJob.Kind.GRID:
            hashes = (
                OptimizationRun.objects.filter(job=job, dataset_id=dataset_id)
                .values_list("param_hash", flat=True)
                .iterator(chunk_size=BATCH)
            )
        elif job.kind == OptimizationJob.Kind.WALK_FORWARD:
            grid = job.grid
            every = sweep.params_range(grid, 0, sweep.grid_size(grid))
            hashes = (
                sweep.param_hash(p) for p, ok in zip(every, job_allowed(job), strict=True) if ok
            )
        else:
            return  # Monte Carlo resamples one run's trades: no new parameter set
        trials_record(job=job, dataset_id=dataset_id, hashes=hashes)
