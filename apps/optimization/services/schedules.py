"""Scheduled sweeps: a JobTemplate fires one job per (template, slot) through job_create."""

from __future__ import annotations

import datetime as dt
import json
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from apps.optimization.models import JobTemplate, OptimizationJob, TemplateFiring
from apps.optimization.queue import FIRE_TEMPLATE
from apps.optimization.services.jobs import job_create
from backtestlab.errors import ApplicationError

log = logging.getLogger(__name__)

TASK_NAME = FIRE_TEMPLATE

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
    datasets = list(template.datasets.order_by("id"))
    date_from = None
    if template.rolling_days and datasets:
        date_from = max(d.end for d in datasets) - dt.timedelta(days=template.rolling_days)
    return job_create(
        user=template.owner,
        name=f"{template.name} · {slot:%Y-%m-%d %H:%M}"[:100],
        description=f"Scheduled by template {template.id} for the slot {slot:%Y-%m-%d %H:%M} UTC",
        strategy=template.strategy,
        dataset_ids=[d.id for d in datasets],
        parameter_grid=template.parameter_grid,
        objective=template.objective,
        min_trades=template.min_trades,
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
