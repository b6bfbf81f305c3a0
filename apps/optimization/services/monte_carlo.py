"""Monte Carlo jobs: resample a run's trades into many equity paths, in chunks of simulations."""

from __future__ import annotations

import secrets

from django.db import transaction

from apps.optimization.gateway import run_trades
from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.optimization.services.jobs import job_datasets_pin, job_start
from apps.optimization.services.quotas import job_quota_check
from apps.optimization.services.validation import int_option, name_option
from backtestlab.engine.evaluation import monte_carlo as mc
from backtestlab.errors import ApplicationError

MAX_SIMS = 100_000

MAX_TRADES_PER_SIM = 10_000

MAX_PATH_STEPS = 100_000_000  # sims x trades_per_sim


def _no_trades(run: OptimizationRun) -> ApplicationError:
    return ApplicationError(
        f"run {run.id} closed no trade, so there is nothing to evaluate; pick a run with trades "
        "(n_trades > 0)",
        field="run",
    )


def monte_carlo_job_create(
    *,
    user,
    run: OptimizationRun,
    sims: int = 10_000,
    trades_per_sim: int | None = None,
    mode: str = "bootstrap",
    seed: int | None = None,
    name: str = "",
    start: bool = True,
) -> OptimizationJob:
    """A Monte Carlo job over the trades of ``run`` (the caller checked the user may see it)."""
    job_quota_check(user=user, lock=False)
    name = name_option(name)
    sims = int_option("sims", sims, 1, MAX_SIMS)
    if mode not in mc.MODES:
        raise ApplicationError(f"mode must be one of {', '.join(mc.MODES)}, got {mode!r}",
                               field="mode")  # fmt: skip
    if seed is None:
        seed = secrets.randbits(32)  # stored, so the job can be reproduced
    seed = int_option("seed", seed, 0, 2**63 - 1)
    if run.status != OptimizationRun.Status.SUCCEEDED:
        raise ApplicationError(f"run {run.id} failed; pick a succeeded run", field="run")
    returns = [t.pnl_frac for t in run_trades(run)]
    if not returns:
        raise _no_trades(run)
    if trades_per_sim is None or (trades_per_sim == 0 and not isinstance(trades_per_sim, bool)):
        trades_per_sim = len(returns)
    trades_per_sim = int_option("trades_per_sim", trades_per_sim, 1, MAX_TRADES_PER_SIM)
    if mode == "shuffle" and trades_per_sim > len(returns):
        raise ApplicationError(
            f"shuffle draws without replacement: trades_per_sim must be at most the run's "
            f"{len(returns)} trades, got {trades_per_sim}; use bootstrap for longer paths",
            field="trades_per_sim",
        )
    if sims * trades_per_sim > MAX_PATH_STEPS:
        raise ApplicationError(
            f"sims x trades_per_sim = {sims * trades_per_sim:,} exceeds {MAX_PATH_STEPS:,}",
            field="sims",
        )
    source = run.job
    with transaction.atomic():
        job_quota_check(user=user, lock=True)
        job = OptimizationJob.objects.create(
            name=(name or f"Monte Carlo of run {run.id}")[:100],
            kind=OptimizationJob.Kind.MONTE_CARLO,
            strategy=source.strategy,
            date_from=source.date_from,
            date_to=source.date_to,
            parameter_grid={k: [v] for k, v in run.params.items()},
            objective=source.objective,
            costs=source.costs,
            chunk_size=mc.BLOCK,
            total_runs=sims,
            options={
                "source_run": run.id,
                "source_job": source.id,
                "params": run.params,
                "sims": sims,
                "trades_per_sim": trades_per_sim,
                "mode": mode,
                "seed": seed,
                "returns": returns,
            },
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        job_datasets_pin(job, [run.dataset])
        if start:
            job_start(job=job)
    return job
