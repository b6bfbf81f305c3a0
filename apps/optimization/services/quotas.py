"""Per-user limits on job creation (HTTP 429): jobs per minute and jobs active at once."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from apps.optimization.models import (
    ACTIVE_STATUSES,
    OptimizationJob,
)
from apps.optimization.services.validation import setting
from backtestlab.errors import ApplicationError


def quota_check(user) -> None:
    """Per-user limits on every surface: creation rate and jobs active at once (HTTP 429)."""
    if not getattr(user, "is_authenticated", False):
        return
    jobs = OptimizationJob.objects.filter(created_by=user)
    per_minute = setting("JOBS_PER_MINUTE")
    recent = jobs.filter(created_at__gte=timezone.now() - dt.timedelta(minutes=1)).count()
    if recent >= per_minute:
        raise ApplicationError(
            f"you created {recent} jobs in the last minute (limit {per_minute}); "
            "wait a minute, or put more values in one job's grid",
            status=429,
        )
    max_active = setting("MAX_ACTIVE_JOBS_PER_USER")
    active = jobs.filter(status__in=ACTIVE_STATUSES).count()
    if active >= max_active:
        raise ApplicationError(
            f"you have {active} jobs pending or running (limit {max_active}); "
            "wait for one to finish or cancel one",
            status=429,
        )
