"""The job kinds: what one unit of progress is, how a chunk is computed, how a job is finished.

Every place that depends on a job's kind looks it up here (:func:`job_kind`) instead of
branching on ``job.kind``. A grid sweep stores one OptimizationRun per parameter set; Monte
Carlo and walk-forward chunks store a partial result on the chunk, combined at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from apps.optimization.gateway import job_data, json_safe
from apps.optimization.models import JobChunk, OptimizationJob, OptimizationRun
from apps.optimization.selectors.jobs import job_allowed
from apps.optimization.services import overfitting, sweeps, trials
from backtestlab.engine import sweep
from backtestlab.engine.evaluation import monte_carlo as mc
from backtestlab.engine.evaluation import walk_forward
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs

log = logging.getLogger(__name__)


@dataclass
class ChunkOutput:
    """What a chunk produced: runs to insert (sweeps) or a partial result (evaluations)."""

    units: int
    failed: int
    runs: list[OptimizationRun] = field(default_factory=list)
    result: dict | None = None


@dataclass(frozen=True)
class Finish:
    """A finished job's fields: status is derived from ``error`` (empty: succeeded)."""

    error: str = ""
    fields: dict = field(default_factory=dict)
    best_run: OptimizationRun | None = None
    # Once the job is finished: work that must never fail it (it logs its own errors).
    after: Callable[[int], None] | None = None


def even_ranges(units: int, size: int) -> list[tuple[int, int]]:
    """``[0, units)`` cut into ranges of ``size`` (the last shorter)."""
    return [(lo, min(units, lo + size)) for lo in range(0, units, size)]


@dataclass(frozen=True)
class JobKind:
    # Units of progress per dataset: a grid sweep's runs, Monte Carlo simulations, folds.
    units: Callable[[OptimizationJob], int]
    compute: Callable[[OptimizationJob, JobChunk], ChunkOutput]
    finish: Callable[[OptimizationJob], Finish]
    # The chunk ranges of one dataset for a chunk size (default: the units cut evenly).
    ranges: Callable[[OptimizationJob, int], list[tuple[int, int]]] | None = None

    def chunk_ranges(self, job: OptimizationJob, size: int) -> list[tuple[int, int]]:
        if self.ranges is not None:
            return self.ranges(job, size)
        return even_ranges(self.units(job), size)


# --- grid sweep ------------------------------------------------------------------------------


def _grid_compute(job: OptimizationJob, chunk: JobChunk) -> ChunkOutput:
    runs = sweeps.chunk_runs(job, chunk)
    failed = sum(1 for r in runs if r.status == OptimizationRun.Status.FAILED)
    return ChunkOutput(units=len(runs), failed=failed, runs=runs)


def _grid_finish(job: OptimizationJob) -> Finish:
    trials.job_trials_record(job)  # before the overfitting figures, which count them
    error, best_params, best = sweeps.sweep_outcome(job)
    after = overfitting.job_overfitting_after if best is not None else None
    return Finish(error=error, fields={"best_params": best_params}, best_run=best, after=after)


# --- evaluations: parts on the chunks, combined at the end ------------------------------------


def _mc_args(job: OptimizationJob) -> dict:
    o = job.options
    return dict(sims=o["sims"], trades_per_sim=o["trades_per_sim"], mode=o["mode"], seed=o["seed"])


def _mc_compute(job: OptimizationJob, chunk: JobChunk) -> ChunkOutput:
    final, dd, streak, _eq, _cps = mc.simulate_paths(
        np.asarray(job.options["returns"]), start=chunk.start, stop=chunk.stop, **_mc_args(job)
    )
    part = {"final": final.tolist(), "dd": dd.tolist(), "streak": streak.tolist()}
    return ChunkOutput(units=chunk.size, failed=0, result=part)


def _mc_combine(job: OptimizationJob, parts: list[dict]) -> tuple[dict, str]:
    final = np.concatenate([p["final"] for p in parts])
    dd = np.concatenate([p["dd"] for p in parts])
    streak = np.concatenate([p["streak"] for p in parts])
    profile, intervals = mc.summarize(
        final, dd, streak, trades_per_sim=job.options["trades_per_sim"]
    )
    _f, _d, _s, eq_at, steps = mc.simulate_paths(
        np.asarray(job.options["returns"]), **_mc_args(job)
    )
    evaluation = {
        "profile": profile.as_dict(),
        "intervals": intervals,
        "confidence_level": 0.95,
        "steps": steps.tolist(),
        "bands": {str(p): v for p, v in mc.equity_bands(eq_at).items()},
        "histograms": {
            "final_return": mc.histogram(final),
            "max_drawdown": mc.histogram(dd),
            "max_loss_streak": mc.histogram(streak, bins=int(min(30, streak.max() + 1))),
        },
        "n_trades": len(job.options["returns"]),
    }
    return evaluation, ""


def _wf_compute(job: OptimizationJob, chunk: JobChunk) -> ChunkOutput:
    o = job.options
    try:
        strategy = get_strategy(job.strategy)
        data, companions = job_data(job, chunk.dataset, strategy)
        windows = walk_forward.walk_forward_windows(
            len(data),
            n_splits=o["n_splits"],
            train_frac=o["train_frac"],
            test_frac=o["test_frac"],
            anchored=o["window"] == "anchored",
        )
        params = sweep.params_range(job.grid, 0, sweep.grid_size(job.grid))
        allowed = job_allowed(job)
        fold = walk_forward.run_fold(
            strategy,
            data,
            companions,
            params,
            Costs(**job.costs),
            objective=job.objective,
            fold=windows[chunk.start],
            index=chunk.start,
            min_trades=job.min_trades,
            pick=o.get("pick", "objective"),
            grid=job.grid,
            allowed=None if allowed.all() else allowed,
        )
        part = {**json_safe(fold.as_dict()), "dataset_id": chunk.dataset_id}
        return ChunkOutput(units=1, failed=0, result=part)
    except Exception as exc:  # recorded on the fold, shown to the operator
        log.exception("walk-forward job %s fold %s failed", job.id, chunk.start)
        part = {
            "index": chunk.start,
            "dataset_id": chunk.dataset_id,
            "error": f"{type(exc).__name__}: {exc}",
        }
        return ChunkOutput(units=1, failed=1, result=part)


def _wf_combine(job: OptimizationJob, parts: list[dict]) -> tuple[dict, str]:
    """Folds of every dataset (in dataset, then fold order), each dataset's summary and the
    pooled one (every scored fold of every dataset: the job's ``summary``)."""
    names = dict(job.datasets.values_list("id", "name"))
    order = {ds_id: k for k, ds_id in enumerate(sorted(names))}
    folds = sorted(parts, key=lambda p: (order.get(p.get("dataset_id"), -1), p.get("index", 0)))
    for f in folds:
        f["dataset"] = names.get(f.get("dataset_id"), "")
    scored = [f for f in folds if "error" not in f]
    summary = walk_forward.walk_forward_efficiency(scored, job.objective) if scored else {}
    per_dataset = []
    for ds_id in sorted(names):
        mine = [f for f in scored if f.get("dataset_id") == ds_id]
        figures = walk_forward.walk_forward_efficiency(mine, job.objective) if mine else {}
        per_dataset.append({"dataset_id": ds_id, "dataset": names[ds_id], **figures})
    error = "" if summary else "every fold failed; first error: " + parts[0].get("error", "n/a")
    evaluation = {
        "folds": folds,
        "summary": summary,
        "per_dataset": per_dataset,
        "window": job.options["window"],
    }
    return evaluation, error


def _evaluation_finish(combine) -> Callable[[OptimizationJob], Finish]:
    def finish(job: OptimizationJob) -> Finish:
        parts = list(job.chunks.order_by("index").values_list("result", flat=True))
        try:
            if any(p is None for p in parts):
                raise ValueError("a chunk finished without a result")
            evaluation, error = combine(job, parts)
        except Exception as exc:
            log.exception("finalizing job %s failed", job.id)
            evaluation, error = None, f"{type(exc).__name__}: {exc}"
        return Finish(error=error, fields={"evaluation": json_safe(evaluation)})

    return finish


def _wf_finish(job: OptimizationJob) -> Finish:
    trials.job_trials_record(job)  # each fold picked its parameters from the whole grid
    return _evaluation_finish(_wf_combine)(job)


JOB_KINDS: dict[str, JobKind] = {
    OptimizationJob.Kind.GRID: JobKind(
        lambda job: int(job_allowed(job).sum()),
        _grid_compute,
        _grid_finish,
        ranges=sweeps.job_ranges,
    ),
    OptimizationJob.Kind.MONTE_CARLO: JobKind(
        lambda job: int(job.options["sims"]), _mc_compute, _evaluation_finish(_mc_combine)
    ),
    OptimizationJob.Kind.WALK_FORWARD: JobKind(
        lambda job: int(job.options["n_splits"]), _wf_compute, _wf_finish
    ),
}


def job_kind(job: OptimizationJob) -> JobKind:
    return JOB_KINDS[job.kind]
