"""Every write of the optimization app: create, start, execute a chunk, finalize, cancel, reap.

A job is a validated parameter grid over one or more datasets. ``job_start`` splits it into
JobChunk rows (a grid-index range on one dataset) and enqueues one task per chunk after commit.
A worker claims a chunk with a conditional UPDATE, runs its backtests outside any transaction and
then, in one short transaction, marks the chunk done (only if it still holds the claim), inserts
the runs and advances the job's counters. The worker that brings ``chunks_remaining`` to zero
finalizes the job; the reaper repairs whatever a lost worker or broker message left behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.market.models import Dataset
from apps.market.selectors import dataset_companion, dataset_market_data
from apps.optimization.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    JobChunk,
    JobStatus,
    OptimizationJob,
    OptimizationRun,
)
from apps.optimization.selectors import job_best_per_dataset, job_best_runs
from backtestlab.engine import sweep
from backtestlab.engine.metrics import METRIC_NAMES, METRICS
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs, ParameterError
from backtestlab.errors import ApplicationError

log = logging.getLogger(__name__)

COST_BOUNDS = {
    "commission_pct": (0.0, 5.0),
    "slippage_pct": (0.0, 5.0),
    "initial_equity": (1.0, 1e12),
}


def _conf(name: str):
    return settings.BACKTESTLAB[name]


# --- validation --------------------------------------------------------------------------------


def _finite_number(field: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApplicationError(f"{field} must be a number, got {value!r}", field=field)
    if not math.isfinite(value):
        raise ApplicationError(f"{field} must be a finite number, got {value!r}", field=field)
    if not low <= value <= high:
        raise ApplicationError(
            f"{field} must be between {low:g} and {high:g}, got {value!r}", field=field
        )
    return float(value)


def costs_validate(costs: Mapping[str, Any] | None) -> dict[str, float]:
    if costs is None:
        costs = {}
    if not isinstance(costs, Mapping):
        raise ApplicationError(
            "costs must be an object like {'commission_pct': 0.1, 'slippage_pct': 0.05}",
            field="costs",
        )
    unknown = set(costs) - set(COST_BOUNDS)
    if unknown:
        raise ApplicationError(
            f"unknown cost field {sorted(unknown)[0]!r}; known: {', '.join(COST_BOUNDS)}",
            field="costs",
        )
    defaults = Costs()
    result = {}
    for name, (low, high) in COST_BOUNDS.items():
        value = costs.get(name, getattr(defaults, name))
        result[name] = _finite_number(f"costs.{name}", value, low, high)
    return result


def objective_validate(objective: Any) -> str:
    choices = [name for name, info in METRICS.items() if info.objective]
    if not isinstance(objective, str) or objective not in choices:
        raise ApplicationError(
            f"unknown objective {objective!r}; choose one of {', '.join(choices)}",
            field="objective",
        )
    return objective


def _datasets_validate(dataset_ids: Any, strategy) -> list[Dataset]:
    data_kind = strategy.data_kind
    if not isinstance(dataset_ids, list | tuple) or not dataset_ids:
        raise ApplicationError(
            "datasets must be a non-empty list of dataset ids, e.g. [1, 2]", field="datasets"
        )
    ids = []
    for value in dataset_ids:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApplicationError(
                f"datasets must contain integer ids, got {value!r}", field="datasets"
            )
        if not 1 <= value < 2**63:  # beyond a database integer: no such dataset
            raise ApplicationError(
                f"dataset {value} does not exist; list the datasets at /api/datasets/",
                field="datasets",
            )
        if value not in ids:
            ids.append(value)
    found = {ds.id: ds for ds in Dataset.objects.filter(id__in=ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ApplicationError(
            f"dataset {missing[0]} does not exist; list the datasets at /api/datasets/",
            field="datasets",
        )
    wrong = [found[i] for i in ids if found[i].kind != data_kind]
    if wrong:
        raise ApplicationError(
            f"dataset {wrong[0].id} ({wrong[0].name}) holds {wrong[0].kind}, "
            f"but this strategy needs {data_kind} data",
            field="datasets",
        )
    datasets = [found[i] for i in ids]
    allowed = strategy.timeframes
    for ds in datasets:
        if allowed is not None and ds.timeframe not in allowed:
            raise ApplicationError(
                f"dataset {ds.id} ({ds.name}) has {ds.timeframe} bars, but {strategy.key} runs "
                f"on {', '.join(allowed)} candles only; pick such a dataset "
                "(manage.py make_synthetic --with-minutes makes 1m candles)",
                field="datasets",
            )
        for kind in strategy.companion_kinds:
            if dataset_companion(ds, kind) is None:
                raise ApplicationError(
                    f"dataset {ds.id} ({ds.name}) has no {kind} series for {ds.symbol}; "
                    f"this strategy needs one: generate it with make_synthetic or import it",
                    field="datasets",
                )
    return datasets


def grid_validate(strategy_key: str, grid: Any, *, n_datasets: int = 1) -> dict[str, list]:
    """Check a grid against the strategy's parameter space and the combination cap.

    The cap counts runs (combinations × datasets) and is checked from the value counts, before
    anything is expanded, so an absurd grid is refused at once.
    """
    try:
        strategy = get_strategy(strategy_key)
    except ParameterError as exc:
        raise ApplicationError(exc.message, field="strategy") from None
    if not isinstance(grid, Mapping) or not grid:
        names = ", ".join(strategy.parameter_space().names)
        raise ApplicationError(
            f"parameter_grid must name at least one parameter with its values; known: {names}",
            field="parameter_grid",
        )
    cap = _conf("MAX_COMBINATIONS")
    try:
        validated = strategy.parameter_space().validate_grid(
            grid, max_combinations=max(1, cap // max(1, n_datasets))
        )
    except ParameterError as exc:
        field = exc.field if exc.field == "parameter_grid" else f"parameter_grid.{exc.field}"
        message = str(exc)
        if n_datasets > 1 and exc.field == "parameter_grid":
            message += f" (the cap of {cap} runs is shared by {n_datasets} datasets)"
        raise ApplicationError(message, field=field) from None
    return validated


def date_validate(field: str, value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ApplicationError(
                f"{field} must be an ISO-8601 date or datetime like 2023-06-01, got {value!r}",
                field=field,
            ) from None
    else:
        raise ApplicationError(f"{field} must be an ISO-8601 date string", field=field)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


# --- creation ----------------------------------------------------------------------------------


def job_quota_check(*, user, lock: bool) -> None:
    """Per-user limits on every surface: creation rate and jobs active at once (HTTP 429).

    Counting and then inserting races: two requests could both count 4 jobs of 5 and both
    insert. So the transaction that inserts a job calls this (``lock``) just before its insert:
    it first locks the user's row (PostgreSQL: SELECT ... FOR UPDATE), so concurrent creations
    by one user queue there and each counts what the previous one committed. SQLite needs no
    row lock: its transactions begin IMMEDIATE (settings), which serializes writers already.
    Surfaces call it once more beforehand with ``lock=False``, outside any transaction, to
    refuse an over-quota request before its (sometimes costly) validation.
    """
    if not getattr(user, "is_authenticated", False):
        return
    if lock:  # pragma: no mutate
        get_user_model().objects.select_for_update().get(pk=user.pk)
    jobs = OptimizationJob.objects.filter(created_by=user)
    per_minute = _conf("JOBS_PER_MINUTE")
    recent = jobs.filter(created_at__gte=timezone.now() - dt.timedelta(minutes=1)).count()
    if recent >= per_minute:
        raise ApplicationError(
            f"you created {recent} jobs in the last minute (limit {per_minute}); "
            "wait a minute, or put more values in one job's grid",
            status=429,
        )
    max_active = _conf("MAX_ACTIVE_JOBS_PER_USER")
    active = jobs.filter(status__in=ACTIVE_STATUSES).count()
    if active >= max_active:
        raise ApplicationError(
            f"you have {active} jobs pending or running (limit {max_active}); "
            "wait for one to finish or cancel one",
            status=429,
        )


def job_create(
    *,
    user,
    name: str,
    strategy: str,
    dataset_ids: Sequence[int],
    parameter_grid: Mapping[str, Any],
    objective: str = "sharpe",
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
    if not isinstance(description, str):
        raise ApplicationError("description must be text", field="description")
    if not isinstance(strategy, str):
        raise ApplicationError(
            "strategy must be a strategy key such as sma_cross", field="strategy"
        )
    try:
        strategy_obj = get_strategy(strategy)
    except ParameterError as exc:
        raise ApplicationError(exc.message, field="strategy") from None
    datasets = _datasets_validate(dataset_ids, strategy_obj)
    grid = grid_validate(strategy, parameter_grid, n_datasets=len(datasets))
    objective = objective_validate(objective)
    valid_costs = costs_validate(costs)
    start_at = date_validate("date_from", date_from)
    end_at = date_validate("date_to", date_to)
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
    with transaction.atomic():
        job_quota_check(user=user, lock=True)
        job = OptimizationJob.objects.create(
            name=name.strip(),
            description=description,
            strategy=strategy,
            date_from=start_at,
            date_to=end_at,
            parameter_grid=grid,
            objective=objective,
            costs=valid_costs,
            chunk_size=_conf("CHUNK_SIZE"),
            total_runs=sweep.grid_size(grid) * len(datasets),
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        job.datasets.set(datasets)
        if start:
            job_start(job=job)
    return job


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
        n = job_units(job)
        size = job.chunk_size or _conf("CHUNK_SIZE")
        chunks = []
        for dataset_id in job.datasets.order_by("id").values_list("id", flat=True):
            for lo in range(0, n, size):
                chunks.append(
                    JobChunk(
                        job=job,
                        index=len(chunks),
                        dataset_id=dataset_id,
                        start=lo,
                        stop=min(n, lo + size),
                        enqueued_at=now,
                    )
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


def chunks_enqueue(chunk_ids: Sequence[int]) -> None:
    from apps.optimization.tasks import run_chunk

    for chunk_id in chunk_ids:
        run_chunk.delay(chunk_id)


def job_copy(*, job: OptimizationJob, user, start: bool, rerun: bool = False) -> OptimizationJob:
    """A new job with the same configuration (duplicate: not started; re-run: started)."""
    if start:
        job_quota_check(user=user, lock=False)
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
            costs=job.costs,
            options=job.options,
            chunk_size=job.chunk_size,
            total_runs=job.total_runs,
            created_by=user if getattr(user, "is_authenticated", False) else job.created_by,
            rerun_of=job if rerun else None,
        )
        copy.datasets.set(job.datasets.all())
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


# --- execution ---------------------------------------------------------------------------------

_ctx_cache: dict[tuple, Any] = {}
_CTX_CACHE_SIZE = 4


def _context(job: OptimizationJob, dataset: Dataset, strategy):
    """The strategy's prepared context for a dataset (and date range), once per process."""
    companions = {kind: dataset_companion(dataset, kind) for kind in strategy.companion_kinds}
    key = (
        job.strategy,
        dataset.checksum,
        tuple(c.checksum for c in companions.values()),
        job.date_from,
        job.date_to,
    )
    ctx = _ctx_cache.get(key)
    if ctx is None:
        start = int(job.date_from.timestamp()) if job.date_from else None
        end = int(job.date_to.timestamp()) if job.date_to else None

        def load(ds):
            data = dataset_market_data(ds)
            return data.slice_time(start, end) if start or end else data

        ctx = strategy.prepare(
            load(dataset), {kind: load(ds) for kind, ds in companions.items()} or None
        )
        while len(_ctx_cache) >= _CTX_CACHE_SIZE:
            _ctx_cache.pop(next(iter(_ctx_cache)))
        _ctx_cache[key] = ctx
    return ctx


def _metric_value(name: str, value: float):
    if value is None or not math.isfinite(value):
        return None
    return int(value) if name in ("n_trades", "max_consec_wins", "max_consec_losses") else value


def _build_runs(job, chunk, param_list) -> list[OptimizationRun]:
    """Backtest each parameter set of the chunk; a set whose backtest raises is a failed run."""
    strategy = get_strategy(job.strategy)
    costs = Costs(**job.costs)
    ctx = _context(job, chunk.dataset, strategy)
    rows: list[Any] = []
    try:
        matrix = sweep.run_params(strategy, ctx, param_list, costs)
        rows = list(matrix)
    except Exception:
        # Isolate the failing parameter sets; the others still count.
        log.exception("chunk %s: batch run failed, retrying one by one", chunk.id)
        for params in param_list:
            try:
                (row,) = sweep.run_params(strategy, ctx, [params], costs)
                rows.append(row)
            except Exception as exc:  # recorded on the run, shown to the operator
                rows.append(f"{type(exc).__name__}: {exc}")
    runs = []
    for offset, (params, row) in enumerate(zip(param_list, rows, strict=True)):
        base = dict(
            job_id=job.id,
            dataset_id=chunk.dataset_id,
            grid_index=chunk.start + offset,
            params=params,
            param_hash=sweep.param_hash(params),
        )
        if isinstance(row, str):
            runs.append(OptimizationRun(status=OptimizationRun.Status.FAILED, error=row, **base))
        else:
            metrics = {
                n: _metric_value(n, float(v)) for n, v in zip(METRIC_NAMES, row, strict=True)
            }
            runs.append(OptimizationRun(**base, **metrics))
    return runs


class _ClaimLost(Exception):
    """The chunk was re-queued, cancelled or finished by someone else while we computed."""


@dataclass(frozen=True)
class ChunkClaim:
    """A worker's claim on a chunk: only the holder of ``token`` may commit the chunk."""

    chunk: JobChunk  # with its job and dataset loaded
    token: uuid.UUID


@dataclass(frozen=True)
class ChunkWork:
    """What a claimed chunk computed: the runs of a sweep (or a partial evaluation result)."""

    runs: list[OptimizationRun]
    n_units: int
    n_failed: int
    result: dict | None = None


def chunk_claim(*, chunk_id: int, worker: str = "") -> ChunkClaim | None:
    """Claim a PENDING chunk of an active job (a conditional UPDATE); None if not claimable."""
    token = uuid.uuid4()
    now = timezone.now()
    claimed = JobChunk.objects.filter(
        id=chunk_id, status=JobChunk.Status.PENDING, job__status__in=ACTIVE_STATUSES
    ).update(
        status=JobChunk.Status.RUNNING,
        claim_token=token,
        worker=worker[:200],
        claimed_at=now,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    chunk = JobChunk.objects.select_related("job", "dataset").get(id=chunk_id)
    OptimizationJob.objects.filter(id=chunk.job_id, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now
    )
    return ChunkClaim(chunk=chunk, token=token)


def chunk_work(*, claim: ChunkClaim) -> ChunkWork:
    """Run a claimed chunk's backtests (or simulations, folds), outside any transaction."""
    chunk = claim.chunk
    job = chunk.job
    if job.kind == OptimizationJob.Kind.GRID:
        param_list = sweep.params_range(job.grid, chunk.start, chunk.stop)
        runs = _build_runs(job, chunk, param_list)
        n_failed = sum(1 for r in runs if r.status == OptimizationRun.Status.FAILED)
        return ChunkWork(runs=runs, n_units=len(runs), n_failed=n_failed)
    # Monte Carlo / walk-forward: a partial result on the chunk instead of runs
    from apps.optimization import evaluation_jobs

    n_units, n_failed, result = evaluation_jobs.chunk_compute(job=job, chunk=chunk)
    return ChunkWork(runs=[], n_units=n_units, n_failed=n_failed, result=result)


def chunk_commit(*, claim: ChunkClaim, work: ChunkWork) -> int | None:
    """In one transaction: mark the chunk done, store its runs, advance the job's counters.

    Only while the claim still holds (the chunk RUNNING with our token, the job RUNNING):
    a cancel, the reaper or another worker may have taken the chunk meanwhile, and then
    nothing is stored. Returns the job's chunks remaining, or None when the claim was lost.
    """
    chunk = claim.chunk
    try:
        with transaction.atomic():
            done = JobChunk.objects.filter(
                id=chunk.id, status=JobChunk.Status.RUNNING, claim_token=claim.token
            ).update(status=JobChunk.Status.DONE, finished_at=timezone.now(), result=work.result)
            if not done:
                raise _ClaimLost
            advanced = OptimizationJob.objects.filter(
                id=chunk.job_id, status=JobStatus.RUNNING
            ).update(
                completed_runs=F("completed_runs") + (work.n_units - work.n_failed),
                failed_runs=F("failed_runs") + work.n_failed,
                chunks_remaining=F("chunks_remaining") - 1,
                heartbeat_at=timezone.now(),
            )
            if not advanced:
                raise _ClaimLost
            OptimizationRun.objects.bulk_create(work.runs, batch_size=2000)  # pragma: no mutate
            return (
                OptimizationJob.objects.filter(id=chunk.job_id)
                .values_list("chunks_remaining", flat=True)
                .get()
            )
    except _ClaimLost:
        return None


def chunk_execute(*, chunk_id: int, worker: str = "") -> str:
    """Run one chunk; safe to call any number of times, from any number of workers at once.

    Claim, compute outside any transaction, commit; the worker that commits the last chunk
    finalizes the job. Returns what happened: "done", "skipped" (not claimable), "lost"
    (claim lost meanwhile).
    """
    claim = chunk_claim(chunk_id=chunk_id, worker=worker)
    if claim is None:
        return "skipped"
    remaining = chunk_commit(claim=claim, work=chunk_work(claim=claim))
    if remaining is None:
        return "lost"
    if remaining == 0:  # pragma: no mutate: GtE, LtE
        job_finalize(job_id=claim.chunk.job_id)
    return "done"


def job_finalize(*, job_id: int) -> bool:
    """Record best parameters and the final status, exactly once (a conditional UPDATE)."""
    job = OptimizationJob.objects.filter(
        id=job_id, status=JobStatus.RUNNING, chunks_remaining=0
    ).first()
    if job is None:  # not running, or chunks left: nothing to finalize (yet)
        return False
    if job.kind != OptimizationJob.Kind.GRID:
        from apps.optimization import evaluation_jobs

        return evaluation_jobs.job_finalize_evaluation(job=job)
    best = next(iter(job_best_runs(job=job, limit=1)), None)  # pragma: no mutate: NumberReplacer
    per_dataset = job_best_per_dataset(job=job)
    tolerance = _conf("FAILURE_TOLERANCE")
    failed = job.completed_runs == 0 or job.failed_runs > tolerance * job.total_runs
    status = JobStatus.FAILED if failed else JobStatus.SUCCEEDED
    error = ""
    if failed:
        sample = (
            job.runs.filter(status=OptimizationRun.Status.FAILED)
            .values_list("error", flat=True)
            .first()
        )
        error = (
            f"{job.failed_runs} of {job.total_runs} runs failed "
            f"(tolerance {tolerance:.0%}); first error: {sample or 'n/a'}"
        )
    best_params = None
    if best is not None:
        best_params = {
            "objective": job.objective,
            "overall": _run_summary(best, job.objective),
            "per_dataset": [_run_summary(r, job.objective) for r in per_dataset],
        }
    finalized = bool(
        OptimizationJob.objects.filter(
            id=job_id, status=JobStatus.RUNNING, chunks_remaining=0
        ).update(
            status=status,
            best_params=best_params,
            best_run=best,
            error=error,
            finished_at=timezone.now(),
        )
    )
    if finalized and best is not None:  # pragma: no mutate: ReplaceAndWithOr
        from apps.optimization import evaluation_jobs

        evaluation_jobs.job_overfitting_safe(job_id=job_id)
    if finalized:
        from apps.optimization.schedules import job_finished

        job_finished(job_id=job_id)  # a scheduled sweep's auto-apply policy (once)
    return finalized


def job_units(job: OptimizationJob) -> int:
    """Units of progress: grid combinations per dataset, Monte Carlo simulations or folds."""
    if job.kind == OptimizationJob.Kind.GRID:
        return sweep.grid_size(job.grid)
    return int(job.options["sims"] if job.kind == OptimizationJob.Kind.MONTE_CARLO
               else job.options["n_splits"])  # fmt: skip


def _run_summary(run: OptimizationRun, objective: str) -> dict:
    return {
        "run_id": run.id,
        "dataset_id": run.dataset_id,
        "dataset": run.dataset.name,
        "symbol": run.dataset.symbol,
        "timeframe": run.dataset.timeframe,
        "params": run.params,
        "value": getattr(run, objective),
    }


# --- repair --------------------------------------------------------------------------------------


def chunks_reap(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Repair what lost workers and lost broker messages leave behind.

    - RUNNING chunks claimed longer ago than STALE_CHUNK_SECONDS (past any task time limit, so
      their worker is gone) go back to PENDING and are enqueued again;
    - PENDING chunks of a job that has made no progress for REQUEUE_PENDING_SECONDS are enqueued
      again (their message may have died with the broker); duplicates are harmless;
    - RUNNING jobs with no chunk left are finalized.
    """
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=_conf("STALE_CHUNK_SECONDS"))
    requeue_before = now - dt.timedelta(seconds=_conf("REQUEUE_PENDING_SECONDS"))
    stale = list(
        JobChunk.objects.filter(
            status=JobChunk.Status.RUNNING, claimed_at__lt=stale_before
        ).values_list("id", flat=True)
    )
    reset = JobChunk.objects.filter(id__in=stale, status=JobChunk.Status.RUNNING).update(
        status=JobChunk.Status.PENDING, claim_token=None, worker="", enqueued_at=now
    )
    pending = list(
        JobChunk.objects.filter(
            status=JobChunk.Status.PENDING,
            job__status__in=ACTIVE_STATUSES,
            enqueued_at__lt=requeue_before,
        )
        .exclude(job__heartbeat_at__gte=requeue_before)
        .values_list("id", flat=True)
    )
    JobChunk.objects.filter(id__in=pending).update(enqueued_at=now)
    to_enqueue = sorted(set(stale) | set(pending))
    if to_enqueue:
        chunks_enqueue(to_enqueue)
    finalized = 0
    for job_id in OptimizationJob.objects.filter(
        status=JobStatus.RUNNING, chunks_remaining=0
    ).values_list("id", flat=True):
        finalized += job_finalize(job_id=job_id)
    return {"reset": reset, "requeued": len(pending), "finalized": finalized}


def chunks_recover_worker(*, worker: str) -> int:
    """At worker start-up: chunks this worker name held when it died go back to the queue."""
    ids = list(
        JobChunk.objects.filter(worker=worker, status=JobChunk.Status.RUNNING).values_list(
            "id", flat=True
        )
    )
    if not ids:
        return 0
    JobChunk.objects.filter(id__in=ids, worker=worker, status=JobChunk.Status.RUNNING).update(
        status=JobChunk.Status.PENDING, claim_token=None, worker="", enqueued_at=timezone.now()
    )
    chunks_enqueue(ids)
    return len(ids)


def chunk_release(*, chunk_id: int, worker: str) -> bool:
    """Give back a chunk this worker holds (its task died on a database error, to be retried).

    Claims are exclusive, so a RUNNING chunk with this worker's name is the one the failed
    attempt held; if another process of the same worker held it instead, that one's claim is
    lost and it stores nothing, so the chunk still runs exactly once.
    """
    return bool(
        JobChunk.objects.filter(id=chunk_id, worker=worker, status=JobChunk.Status.RUNNING).update(
            status=JobChunk.Status.PENDING, claim_token=None, worker="", enqueued_at=timezone.now()
        )
    )


__all__ = [
    "FINISHED_STATUSES",
    "ChunkClaim",
    "ChunkWork",
    "chunk_claim",
    "chunk_commit",
    "chunk_execute",
    "chunk_release",
    "chunk_work",
    "chunks_reap",
    "chunks_recover_worker",
    "costs_validate",
    "grid_validate",
    "job_cancel",
    "job_copy",
    "job_create",
    "job_finalize",
    "job_quota_check",
    "job_start",
    "objective_validate",
]
