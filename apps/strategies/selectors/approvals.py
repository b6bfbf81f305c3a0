"""Reads of approvals: the configuration in force, a strategy's approvals a user may see."""

from __future__ import annotations

from apps.optimization.selectors.jobs import jobs_visible_to
from apps.strategies.models import ApprovalConfig, StrategyApproval


def approval_config_current() -> ApprovalConfig | None:
    """The active ApprovalConfig with the highest id; None = the seed's defaults."""
    return ApprovalConfig.objects.filter(is_active=True).order_by("-id").first()


def approval_as_dict(a: StrategyApproval | None) -> dict | None:
    if a is None:
        return None
    return {
        "id": a.id, "strategy": a.strategy, "job": a.job_id, "run": a.run_id,
        "params": a.params, "stage": a.stage, "reason": a.reason, "rules": a.rules,
        "summary": a.summary, "gates": a.gates, "config": a.config, "trigger": a.trigger,
        "created_by": a.created_by.username if a.created_by else None,
        "created_at": a.created_at.isoformat(),
    }  # fmt: skip


def approvals_visible(user, strategy: str):
    """Approvals of a strategy whose job this user may see (staff: all)."""
    qs = StrategyApproval.objects.filter(strategy=strategy).select_related("created_by")
    if getattr(user, "is_staff", False):
        return qs
    return qs.filter(job__in=jobs_visible_to(user))
