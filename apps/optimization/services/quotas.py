"""Per-user limits on job creation (HTTP 429): jobs per minute and jobs active at once."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.optimization.models import (
    ACTIVE_STATUSES,
    OptimizationJob,
)
from apps.optimization.services.validation import setting
from backtestlab.errors import ApplicationError


def job_quota_check(*, user, lock: bool, exclude: int | None = None) -> None:
    """Per-user limits on every surface: creation rate and jobs active at once (HTTP 429).

    Counting and then inserting races: two requests could both count 4 jobs of 5 and both
    insert. So the transaction that inserts a job calls this (``lock``) just before its insert:
    it first locks the user's row (PostgreSQL: SELECT ... FOR UPDATE), so concurrent creations
    by one user queue there and each counts what the previous one committed. SQLite needs no
    row lock: its transactions begin IMMEDIATE (settings), which serializes writers already.
    Surfaces call it once more beforehand with ``lock=False``, outside any transaction, to
    refuse an over-quota request before its (sometimes costly) validation. ``exclude``: a job
    stored earlier and being started now, not counted against its own start.
    """
    if not getattr(user, "is_authenticated", False):
        return
    if lock:  # pragma: no mutate
        get_user_model().objects.select_for_update().get(pk=user.pk)
    jobs = OptimizationJob.objects.filter(created_by=user)
    if exclude is not None:
        jobs = jobs.exclude(id=exclude)
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
