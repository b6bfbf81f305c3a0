"""A job's life outside the workers: create (validated), start (split into chunks, enqueue
after commit), copy / re-run, cancel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.market.selectors import dataset_companion
from apps.optimization.models import (
    ACTIVE_STATUSES,
    JobChunk,
    JobCompanion,
    JobStatus,
    OptimizationJob,
)
from apps.optimization.queue import chunks_enqueue
from apps.optimization.ranking import DEFAULT_MIN_TRADES, MAX_MIN_TRADES
from apps.optimization.selectors.jobs import GridPlan, grid_plan
from apps.optimization.services.job_kinds import job_kind
from apps.optimization.services.quotas import job_quota_check
from apps.optimization.services.validation import (
    costs_validate,
    datasets_validate,
    date_validate,
    description_validate,
    grid_validate,
    int_option,
    objective_validate,
    setting,
    strategy_datasets_validate,
)
from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies import get_strategy
from backtestlab.errors import ApplicationError


def job_spec_validate(
    *,
    strategy: Any,
    dataset_ids: Any,
    parameter_grid: Any,
    objective: Any,
    costs: Any,
    date_from: Any,
    date_to: Any,
    min_trades: Any = DEFAULT_MIN_TRADES,
) -> dict[str, Any]:
    """Every check of what a job is made of, in one place for every surface that makes or
    starts one; the cleaned values (datasets as rows, the grid in the strategy's order)."""
    if not isinstance(strategy, str):
        raise ApplicationError(
            "strategy must be a strategy key such as sma_cross", field="strategy"
        )
    try:
        strategy_obj = get_strategy(strategy)
    except ParameterError as exc:
        raise ApplicationError(exc.message, field="strategy") from None
    datasets = strategy_datasets_validate(dataset_ids, strategy_obj)
    grid = grid_validate(strategy, parameter_grid, n_datasets=len(datasets))
    start_at = date_validate("date_from", date_from)
    end_at = date_validate("date_to", date_to)
    spec = {
        "datasets": datasets,
        "parameter_grid": grid,
        "objective": objective_validate(objective),
        "min_trades": int_option("min_trades", min_trades, 1, MAX_MIN_TRADES),
        "costs": costs_validate(costs),
        "date_from": start_at,
        "date_to": end_at,
    }
    if start_at and end_at and start_at >= end_at:
        raise ApplicationError(
            f"date_from ({start_at:%Y-%m-%d %H:%M}) must be before "
            f"date_to ({end_at:%Y-%m-%d %H:%M})",
            field="date_from",
        )
    for ds in datasets:
        if (start_at and start_at > ds.end) or (end_at and end_at <= ds.start):
            raise ApplicationError(
                f"dataset {ds.id} ({ds.name}) has no data between date_from and date_to; "
                f"it covers {ds.start:%Y-%m-%d} to {ds.end:%Y-%m-%d}",
                field="date_from",
            )
    return spec


def job_stored_validate(job: OptimizationJob) -> None:
    """The checks :func:`job_create` makes, on a stored job about to start (the admin's add
    form, a duplicate, a re-run): its datasets may have been deleted, its strategy or the caps
    changed since. A job with nothing to run is refused here, before anything is written."""
    dataset_ids = list(job.datasets.order_by("id").values_list("id", flat=True))
    if not dataset_ids:
        raise ApplicationError(
            f"job {job.id} has no dataset left (deleted since the job was made), so it has "
            "nothing to run; make a new job on existing datasets",
            field="datasets",
        )
    job_spec_validate(
        strategy=job.strategy,
        dataset_ids=dataset_ids,
        parameter_grid=job.parameter_grid,
        objective=job.objective,
        costs=job.costs,
        date_from=job.date_from,
        date_to=job.date_to,
        min_trades=job.min_trades,
    )


def job_start_checked(*, job: OptimizationJob, user) -> OptimizationJob:
    """Start a job that was stored without :func:`job_create` (the admin's add form), after
    the same checks job_create makes: quota, strategy, datasets, grid, objective, costs, dates."""
    job_quota_check(user=user, lock=False, exclude=job.id)
    job_stored_validate(job)
    return job_start(job=job)


def job_datasets_pin(job: OptimizationJob, datasets) -> None:
    """Attach the datasets and fix each one's companion series (the latest of its symbol now)
    for good: the job always reads these, whatever is imported later."""
    job.datasets.set(datasets)
    strategy = get_strategy(job.strategy)
    pins = []
    for dataset in datasets:
        for kind in strategy.companion_kinds:
            companion = dataset_companion(dataset, kind)
            if companion is not None:
                pins.append(JobCompanion(job=job, dataset=dataset, kind=kind, companion=companion))
    JobCompanion.objects.bulk_create(pins)


def job_create(
    *,
    user,
    name: str,
    strategy: str,
    dataset_ids: Sequence[int],
    parameter_grid: Mapping[str, Any],
    objective: str = "sharpe",
    min_trades: Any = DEFAULT_MIN_TRADES,
    description: str = "",
    date_from: Any = None,
    date_to: Any = None,
    costs: Mapping[str, Any] | None = None,
    start: bool = True,
) -> OptimizationJob:
    """Validate everything, store the job and (``start``) its chunks; enqueue after commit."""
    job_quota_check(user=user, lock=False)
    if not isinstance(name, str) or not name.strip():
        raise ApplicationError("name must be a non-empty text", field="name")
    if len(name) > 100:
        raise ApplicationError("name must be at most 100 characters", field="name")
    description = description_validate(description)
    spec = job_spec_validate(
        strategy=strategy,
        dataset_ids=dataset_ids,
        parameter_grid=parameter_grid,
        objective=objective,
        costs=costs,
        date_from=date_from,
        date_to=date_to,
        min_trades=min_trades,
    )
    datasets, grid = spec["datasets"], spec["parameter_grid"]
    plan = grid_plan_check(strategy, grid)
    with transaction.atomic():
        job_quota_check(user=user, lock=True)
        job = OptimizationJob.objects.create(
            name=name.strip(),
            description=description,
            strategy=strategy,
            date_from=spec["date_from"],
            date_to=spec["date_to"],
            parameter_grid=grid,
            objective=spec["objective"],
            min_trades=spec["min_trades"],
            costs=spec["costs"],
            chunk_size=setting("CHUNK_SIZE"),
            total_runs=plan.runs * len(datasets),
            grid_combinations=plan.combinations,
            skipped_combinations=plan.skipped,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        job_datasets_pin(job, datasets)
        if start:
            job_start(job=job)
    return job


def job_plan(*, strategy: str, dataset_ids: Any, parameter_grid: Any) -> dict:
    """What a sweep would run, before it is launched: its combinations per dataset, those
    skipped by each of the strategy's constraints and the runs, with the sentence the launch
    form shows ("900 combinations, 378 skipped by fast < slow, 522 runs").  Bad input is
    refused as :func:`job_create` refuses it; nothing is stored."""
    datasets = datasets_validate(strategy, dataset_ids)
    grid = grid_validate(strategy, parameter_grid, n_datasets=len(datasets))
    plan = grid_plan(strategy, grid)
    return {
        "combinations": plan.combinations,
        "skipped": plan.skipped,
        "skipped_by": [{"constraint": label, "combinations": n} for label, n in plan.skipped_by],
        "runs_per_dataset": plan.runs,
        "datasets": len(datasets),
        "runs": plan.runs * len(datasets),
        "text": plan.text(len(datasets)),
    }


def grid_plan_check(strategy: str, grid: dict[str, list]) -> GridPlan:
    """The grid's plan (:func:`~apps.optimization.selectors.jobs.grid_plan`); a grid whose
    every combination breaks a constraint is refused with what to change."""
    plan = grid_plan(strategy, grid)
    if not plan.runs:
        rules = "; ".join(label for label, n in plan.skipped_by if n)
        raise ApplicationError(
            f"parameter_grid: all {plan.combinations:,} combinations break the strategy's "
            f"constraints ({rules}), so nothing would run; choose values that keep them",
            field="parameter_grid",
        )
    return plan


def job_start(*, job: OptimizationJob) -> OptimizationJob:
    """Create the chunks of a job that was never started and enqueue them after commit."""
    with transaction.atomic():
        now = timezone.now()
        claimed = OptimizationJob.objects.filter(
            id=job.id, status=JobStatus.PENDING, enqueued_at__isnull=True
        ).update(enqueued_at=now)
        if not claimed:
            raise ApplicationError(
                f"job {job.id} was started already; use re-run for a fresh copy",
                status=409,
                field="status",
            )
        kind = job_kind(job)
        n = kind.units(job)
        ranges = kind.chunk_ranges(job, job.chunk_size or setting("CHUNK_SIZE"))
        chunks = []
        for dataset_id in job.datasets.order_by("id").values_list("id", flat=True):
            for lo, hi in ranges:
                chunks.append(
                    JobChunk(
                        job=job,
                        index=len(chunks),
                        dataset_id=dataset_id,
                        start=lo,
                        stop=hi,
                        enqueued_at=now,
                    )
                )
        if not chunks:
            # Never a job that waits for ever and holds a quota slot: the transaction (and
            # the claim above) rolls back.
            raise ApplicationError(
                f"job {job.id} has nothing to run ({n} {job.unit_label} on "
                f"{job.datasets.count()} datasets); check its datasets and grid",
                field="datasets" if n else None,
            )
        JobChunk.objects.bulk_create(chunks, batch_size=1000)
        OptimizationJob.objects.filter(id=job.id).update(
            total_runs=n * len({c.dataset_id for c in chunks}),
            chunks_total=len(chunks),
            chunks_remaining=len(chunks),
        )
        chunk_ids = list(job.chunks.order_by("index").values_list("id", flat=True))
        transaction.on_commit(lambda: chunks_enqueue(chunk_ids))
    job.refresh_from_db()
    return job


def job_copy(*, job: OptimizationJob, user, start: bool, rerun: bool = False) -> OptimizationJob:
    """A new job with the same configuration (duplicate: not started; re-run: started, after
    the checks job_create makes, so a job whose datasets are gone is refused, not copied)."""
    if start:
        job_quota_check(user=user, lock=False)
        job_stored_validate(job)
    suffix = " (re-run)" if rerun else " (copy)"
    with transaction.atomic():
        if start:
            job_quota_check(user=user, lock=True)
        copy = OptimizationJob.objects.create(
            name=(job.name[: 100 - len(suffix)] + suffix),
            description=job.description,
            kind=job.kind,
            strategy=job.strategy,
            date_from=job.date_from,
            date_to=job.date_to,
            parameter_grid=job.parameter_grid,
            objective=job.objective,
            min_trades=job.min_trades,
            costs=job.costs,
            options=job.options,
            chunk_size=job.chunk_size,
            total_runs=job.total_runs,
            grid_combinations=job.grid_combinations,
            skipped_combinations=job.skipped_combinations,
            created_by=user if getattr(user, "is_authenticated", False) else job.created_by,
            rerun_of=job if rerun else None,
        )
        job_datasets_pin(copy, list(job.datasets.all()))
        if start:
            job_start(job=copy)
    return copy


def job_cancel(*, job: OptimizationJob) -> OptimizationJob:
    """Cancel an active job: its chunks stop being claimable and no run is stored after this.

    Locks are taken chunk rows first, then the job row, the same order as a finishing chunk.
    """
    with transaction.atomic():
        JobChunk.objects.filter(
            job_id=job.id, status__in=[JobChunk.Status.PENDING, JobChunk.Status.RUNNING]
        ).update(status=JobChunk.Status.CANCELLED)
        cancelled = OptimizationJob.objects.filter(id=job.id, status__in=ACTIVE_STATUSES).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now()
        )
    job.refresh_from_db()
    if not cancelled:
        raise ApplicationError(
            f"job {job.id} is {job.status} already; only pending or running jobs can be cancelled",
            status=409,
            field="status",
        )
    return job
