"""Scheduled sweeps: a JobTemplate fired by django-celery-beat creates one job per slot.

- :func:`template_schedule_ensure` gives a template its PeriodicTask (default crontab: weekly,
  Sunday 02:00 UTC, the seed's ``0 2 * * 0``), editable in admin afterwards.
- :func:`template_fire` is the beat task's body: the slot is the latest scheduled time at or
  before now, and the unique (template, slot) row is claimed before a job is created, in the
  same transaction; a second firing of the slot (beat firing twice, two beat processes) finds
  the row and creates nothing.
- :func:`job_finished` (called once by ``job_finalize``) runs the template's auto-apply policy
  through the auto-tuner, i.e. the one apply service with all its gates.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from apps.optimization.models import JobTemplate, OptimizationJob, TemplateFiring
from backtestlab.errors import ApplicationError

log = logging.getLogger(__name__)

TASK_NAME = "apps.optimization.tasks.fire_template"
DEFAULT_CRONTAB = {"minute": "0", "hour": "2", "day_of_week": "0", "day_of_month": "*",
                   "month_of_year": "*"}  # fmt: skip


def template_schedule_ensure(template: JobTemplate) -> PeriodicTask:
    """The template's PeriodicTask, created with the default weekly crontab when missing. A
    task picked in admin is made to fire this template (its args may name another one)."""
    if template.periodic_task_id:
        task = template.periodic_task
        args = json.dumps([template.id])
        if task.args != args:
            task.args = args
            task.save()  # save(), not update(): beat notices changed tasks through it
        return task
    crontab, _ = CrontabSchedule.objects.get_or_create(**DEFAULT_CRONTAB, timezone="UTC")
    task, _ = PeriodicTask.objects.get_or_create(
        name=f"job template {template.id}: {template.name}"[:200],
        defaults={"task": TASK_NAME, "crontab": crontab, "args": json.dumps([template.id])},
    )
    JobTemplate.objects.filter(id=template.id).update(periodic_task=task)
    template.periodic_task = task
    return task


def _previous_fire(schedule, now: dt.datetime) -> dt.datetime:
    """The latest time at or before ``now`` at which ``schedule`` (a celery crontab) fires."""
    window = dt.timedelta(minutes=2)
    while window < dt.timedelta(days=800):
        start = now - window
        last_run, delta, _ = schedule.remaining_delta(start)
        fire = last_run + delta
        if fire <= now:
            while True:
                last_run, delta, _ = schedule.remaining_delta(fire)
                following = last_run + delta
                if following > now:
                    return fire.astimezone(dt.UTC).replace(second=0, microsecond=0)
                fire = following
        window *= 2
    return now.replace(second=0, microsecond=0)


def template_slot(template: JobTemplate, now: dt.datetime | None = None) -> dt.datetime:
    """The scheduled slot a firing at ``now`` belongs to."""
    now = now or timezone.now()
    task = template.periodic_task
    if task is not None and task.crontab_id:
        return _previous_fire(task.crontab.schedule, now)
    if task is not None and task.interval_id:
        every = task.interval.schedule.run_every.total_seconds()
        return dt.datetime.fromtimestamp(now.timestamp() // every * every, tz=dt.UTC)
    return now.replace(second=0, microsecond=0)


def _job_from_template(template: JobTemplate, slot: dt.datetime) -> OptimizationJob:
    from apps.optimization import services

    datasets = list(template.datasets.order_by("id"))
    date_from = None
    if template.rolling_days and datasets:
        date_from = max(d.end for d in datasets) - dt.timedelta(days=template.rolling_days)
    return services.job_create(
        user=template.owner,
        name=f"{template.name} · {slot:%Y-%m-%d %H:%M}"[:100],
        description=f"Scheduled by template {template.id} for the slot {slot:%Y-%m-%d %H:%M} UTC",
        strategy=template.strategy,
        dataset_ids=[d.id for d in datasets],
        parameter_grid=template.parameter_grid,
        objective=template.objective,
        costs=template.costs or None,
        date_from=date_from,
    )


def template_fire(
    *, template_id: int, now: dt.datetime | None = None, slot: dt.datetime | None = None
) -> TemplateFiring | None:
    """Create the slot's job, at most once per (template, slot). Returns the firing (new or
    existing), or None when the template is gone."""
    template = (
        JobTemplate.objects.select_related(
            "owner", "periodic_task__crontab", "periodic_task__interval"
        )  # fmt: skip
        .filter(id=template_id)
        .first()
    )
    if template is None:
        return None
    slot = slot or template_slot(template, now)
    try:
        with transaction.atomic():
            # The insert claims the slot: a concurrent firing blocks here on the unique index
            # until this transaction ends, then fails and reads our row.
            firing = TemplateFiring.objects.create(template=template, slot=slot)
            try:
                with transaction.atomic():
                    firing.job = _job_from_template(template, slot)
            except ApplicationError as exc:
                firing.error = exc.message
                firing.apply_status = "skipped"
            firing.save(update_fields=["job", "error", "apply_status"])
            return firing
    except IntegrityError:
        log.info("template %s slot %s already fired", template_id, slot)
        return TemplateFiring.objects.get(template=template, slot=slot)


def job_finished(*, job_id: int) -> None:
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
    from apps.strategies.auto_tuner import apply_best_params

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
