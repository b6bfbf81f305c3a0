"""What the strategies app does when the optimization app announces something."""

from __future__ import annotations

import logging

from apps.optimization.models import JobTemplate, OptimizationJob, TemplateFiring
from apps.strategies.services.auto_tuner import apply_best_params

log = logging.getLogger(__name__)


def job_finished_auto_apply(sender=None, *, job_id: int, **kwargs) -> None:
    """Run the auto-apply policy of the template that created ``job_id`` (if any), once."""
    firing = TemplateFiring.objects.select_related("template").filter(job_id=job_id).first()
    if firing is None:
        return
    claimed = TemplateFiring.objects.filter(id=firing.id, apply_status="pending").update(
        apply_status="running"
    )
    if not claimed:
        return
    template = firing.template
    job = OptimizationJob.objects.get(id=job_id)
    if template.auto_apply == JobTemplate.AutoApply.OFF or job.status != "succeeded":
        TemplateFiring.objects.filter(id=firing.id).update(apply_status="skipped")
        return
    try:
        result = apply_best_params(
            min_improvement_pct=template.min_improvement_pct,
            dry_run=template.auto_apply == JobTemplate.AutoApply.DRY_RUN,
            job=job,
            user=template.owner,
            source="beat",
        )
        TemplateFiring.objects.filter(id=firing.id).update(apply_status="done", apply_result=result)
    except Exception as exc:  # never let auto-apply break a job's finalization
        log.exception("auto-apply of job %s failed", job_id)
        TemplateFiring.objects.filter(id=firing.id).update(
            apply_status="failed", apply_result={"error": f"{type(exc).__name__}: {exc}"}
        )
