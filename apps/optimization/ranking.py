"""What may be ranked best: the one rule every surface follows (best table, heatmap star, the
job's best run, *Apply*, the auto-tuner, beat auto-apply).

A run is ranked only when it succeeded, its objective is defined and it closed at least the
job's ``min_trades`` trades: a configuration that never trades has a max drawdown of 0 and
would otherwise be "best" by drawdown. Runs that are not ranked stay listed, with the reason.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

# The fewest closed trades a run needs to be ranked (a job's default; editable per job and
# per template). The approval config keeps its own, stricter thresholds.
DEFAULT_MIN_TRADES = 30
MAX_MIN_TRADES = 100_000
MIN_TRADES_HELP = "Runs with fewer closed trades are never ranked best, starred or applied"


def min_trades_field() -> models.PositiveIntegerField:
    """The ``min_trades`` column of a job and of a job template."""
    return models.PositiveIntegerField(
        default=DEFAULT_MIN_TRADES,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_MIN_TRADES)],
        help_text=MIN_TRADES_HELP,
    )


def no_ranked_run(min_trades: int, objective: str) -> str:
    """Why a job (or one slice of it) has no best run."""
    return (
        f"no ranked run (each one failed, has fewer than {min_trades} trades or an undefined "
        f"{objective})"
    )


def run_unranked_reason(run) -> str:
    """:func:`unranked_reason` of a stored run (an ``OptimizationRun`` with its job)."""
    job = run.job
    return unranked_reason(
        status=run.status, error=run.error, n_trades=run.n_trades,
        value=getattr(run, job.objective), objective=job.objective, min_trades=job.min_trades,
    )  # fmt: skip


def unranked_reason(*, status: str, error: str, n_trades, value, objective: str, min_trades: int):
    """Why a run is not ranked, in words an operator reads beside it; "" when it is."""
    if status != "succeeded":
        return f"failed: {error}" if error else "failed"
    if n_trades is None or n_trades < min_trades:
        trades = 0 if n_trades is None else int(n_trades)
        return (
            f"{trades} trade{'' if trades == 1 else 's'}, fewer than the job's minimum of "
            f"{min_trades}"
        )
    if value is None:
        return f"{objective} is undefined for this run"
    return ""
