"""The seed's auto-tuner, ``apply_best_params``, on the one apply service.

For each slice (dataset × group) of the chosen sweep (``job``, or the latest succeeded sweep
of each strategy), the best run goes through :func:`run_apply_to_production` with every gate
(permission, stage, improvement ≥ ``min_improvement_pct``, version). In dry-run each passing
slice is recorded as a proposal (a ParameterChange flagged ``dry_run``) and nothing changes.
Acting for a ``user`` (``--user``, a template's owner), only the jobs that user may see are
considered, as on the pages and the API; ``user=None`` is the system (shell access).
"""

from __future__ import annotations

from apps.optimization.models import JobStatus, OptimizationJob
from apps.optimization.ranking import no_ranked_run
from apps.optimization.selectors.jobs import job_best_runs, jobs_visible_to
from apps.optimization.selectors.slices import job_slices
from apps.strategies.services.apply import run_apply_to_production
from backtestlab.errors import ApplicationError


def _jobs(strategy: str | None, user) -> list[OptimizationJob]:
    jobs = OptimizationJob.objects.filter(
        kind=OptimizationJob.Kind.GRID, status=JobStatus.SUCCEEDED
    ).order_by("-finished_at", "-id")
    if user is not None:
        jobs = jobs.filter(id__in=jobs_visible_to(user).values("id"))
    if strategy:
        jobs = jobs.filter(strategy=strategy)
    latest: dict[str, OptimizationJob] = {}
    for job in jobs.iterator():
        latest.setdefault(job.strategy, job)
    return list(latest.values())


def apply_best_params(
    symbol: str | None = None,
    pattern_type: str | None = None,
    min_improvement_pct: float = 5.0,
    dry_run: bool = True,
    *,
    job: OptimizationJob | None = None,
    strategy: str | None = None,
    user=None,
    source: str = "command",
) -> dict:
    """Apply (or propose) the best parameters; returns ``{"dry_run", "changes", "refused"}``."""
    visible = job is None or user is None or jobs_visible_to(user).filter(id=job.id).exists()
    if not visible:
        raise ApplicationError(f"job {job.id} does not exist for {user}", field="job", status=404)
    changes, refused = [], []
    for j in [job] if job is not None else _jobs(strategy, user):
        for s in job_slices(j):
            if symbol and s.dataset.symbol != symbol:
                continue
            if pattern_type and s.group_label != pattern_type:
                continue
            best = job_best_runs(job=j, limit=1, dataset_id=s.dataset.id, params=s.group)
            where = {"job": j.id, "symbol": s.dataset.symbol, "timeframe": s.dataset.timeframe,
                     "pattern": s.group_label}  # fmt: skip
            if not best:
                reason = f"{no_ranked_run(j.min_trades, j.objective)} in this slice"
                refused.append({**where, "reason": reason})
                continue
            try:
                answer = run_apply_to_production(
                    run=best[0], user=user, dry_run=dry_run, record_proposal=dry_run,
                    min_improvement_pct=min_improvement_pct, source=source,
                    reason=f"auto-tuner ({'dry-run' if dry_run else 'apply'}) from job {j.id}",
                )  # fmt: skip
            except ApplicationError as exc:
                refused.append({**where, "run": best[0].id, "gate": exc.field,
                                "reason": exc.message})  # fmt: skip
                continue
            changes.append({**where, "run": best[0].id, "from_version": answer["from_version"],
                            "to_version": answer["to_version"], "diff": answer["diff"],
                            "improvement_pct": answer["improvement_pct"],
                            "applied": answer["applied"]})  # fmt: skip
    return {"dry_run": dry_run, "changes": changes, "refused": refused}
