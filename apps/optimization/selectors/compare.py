"""Two to four jobs side by side: best parameters, metrics and overlaid equity."""

from __future__ import annotations

from collections.abc import Sequence

from django.http import Http404

from apps.optimization.selectors.jobs import job_best_runs, jobs_visible_to
from apps.optimization.selectors.runs import MAX_CURVE_POINTS, run_backtest_detail
from backtestlab.engine.metrics import METRIC_NAMES, METRICS
from backtestlab.errors import ApplicationError
from backtestlab.inputs import whole_number

COMPARE_MIN, COMPARE_MAX = 2, 4


def jobs_compare(*, user, ids: Sequence[int], max_points: int = MAX_CURVE_POINTS) -> list[dict]:
    """2–4 jobs side by side: their best run's parameters and metrics and its equity curve
    (in % return so different starting equities overlay). A job the user may not see: 404."""
    jobs = {j.id: j for j in jobs_visible_to(user).filter(id__in=ids)}
    missing = [i for i in ids if i not in jobs]
    if missing:
        raise Http404(f"no job {missing[0]} visible to you")
    out = []
    for job_id in ids:
        job = jobs[job_id]
        best = next(iter(job_best_runs(job=job, limit=1)), None)
        entry = {
            "job": job,
            "id": job.id,
            "name": job.name,
            "strategy": job.strategy,
            "status": job.status,
            "objective": job.objective,
            "objective_label": METRICS[job.objective].label,
            "best_run": best,
            "params": best.params if best else None,
            "metrics": {n: getattr(best, n) for n in METRIC_NAMES} if best else None,
            "curve": None,
        }
        if best is not None:
            detail = run_backtest_detail(best, max_points=max_points // 2)
            e0 = detail["initial_equity"]
            entry["dataset"] = detail["dataset"]
            entry["curve"] = {
                "time": detail["curve"]["time"],
                "return_pct": [(v / e0 - 1.0) * 100.0 for v in detail["curve"]["equity"]],
            }
        out.append(entry)
    return out


def compare_ids_parse(raw: Sequence[str] | str | None) -> list[int]:
    """``"1,2"`` or ``["1", "2"]`` -> ``[1, 2]``: 2–4 distinct job ids, or a 400."""
    parts = raw if isinstance(raw, list | tuple) else [raw or ""]
    ids: list[int] = []
    for part in parts:
        for token in str(part).split(","):
            token = token.strip()
            if not token:
                continue
            job_id = whole_number(token)
            if job_id is None:
                raise ApplicationError(
                    f"ids must be job ids separated by commas, e.g. ids=3,7; got {token!r}",
                    field="ids",
                )
            if job_id not in ids:
                ids.append(job_id)
    if not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        raise ApplicationError(
            f"compare takes {COMPARE_MIN} to {COMPARE_MAX} different jobs, got {len(ids)}; "
            "e.g. ids=3,7",
            field="ids",
        )
    return ids
