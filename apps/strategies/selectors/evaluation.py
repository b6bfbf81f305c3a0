"""What a job's evaluation shows: its kind's results, overfitting figures, latest approval."""

from __future__ import annotations

from apps.optimization.models import OptimizationJob
from apps.optimization.services.overfitting import job_overfitting
from apps.strategies.models import StrategyApproval
from apps.strategies.selectors.approvals import approval_as_dict
from backtestlab.engine.evaluation.psychology import REACHABLE_RANGE


def job_evaluation_data(job: OptimizationJob) -> dict:
    """What every surface shows of a job's evaluation (one function for page and API).

    A read: a sweep's overfitting figures are those computed when it finished (``None`` if
    they could not be); nothing is computed or written here."""
    latest = StrategyApproval.objects.filter(job=job).order_by("-created_at", "-id").first()
    evaluation = job.evaluation or {}
    data = {
        "ok": True,
        "job": job.id,
        "kind": job.kind,
        "status": job.status,
        "options": {k: v for k, v in (job.options or {}).items() if k != "returns"},
        "approval": approval_as_dict(latest),
        "psychology_reachable_range": list(REACHABLE_RANGE),
    }
    if job.kind == OptimizationJob.Kind.GRID:
        data["overfitting"] = job_overfitting(job=job, compute=False)
    else:
        data["result"] = {k: v for k, v in evaluation.items() if k != "overfitting"} or None
    return data
