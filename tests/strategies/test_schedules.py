"""Scheduled sweeps: one job per (template, slot); the auto-apply policy after the job."""

import datetime as dt

import pytest

from apps.optimization.models import JobTemplate, OptimizationJob, TemplateFiring
from apps.optimization.services.schedules import (
    template_fire,
    template_schedule_ensure,
    template_slot,
)
from apps.optimization.tasks import fire_template
from apps.strategies.models import ParameterChange, StrategyConfig
from tests.factories import SMALL_GRID, run_all_chunks
from tests.strategies.conftest import approve, grant

pytestmark = pytest.mark.django_db

SAT = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)  # a Saturday
SUNDAY_2AM = dt.datetime(2026, 11, 15, 2, 0, tzinfo=dt.UTC)


def make_template(owner, datasets, **kwargs) -> JobTemplate:
    template = JobTemplate.objects.create(
        name="weekly", strategy="sma_cross", parameter_grid=SMALL_GRID, owner=owner,
        **{"min_trades": 1, **kwargs},  # the fixtures' few days trade little
    )  # fmt: skip
    template.datasets.set(datasets)
    template_schedule_ensure(template)
    return template


def test_a_template_gets_the_seeds_weekly_crontab(alice, datasets):
    task = make_template(alice, datasets[:1]).periodic_task
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_week, str(cron.timezone)) == ("0", "2", "0", "UTC")
    assert task.task == "apps.optimization.tasks.fire_template" and task.enabled


def test_the_slot_is_the_latest_scheduled_time_at_or_before_now(alice, datasets):
    template = make_template(alice, datasets[:1])
    assert template_slot(template, SAT) == SUNDAY_2AM
    assert template_slot(template, SUNDAY_2AM) == SUNDAY_2AM
    assert template_slot(template, SUNDAY_2AM + dt.timedelta(seconds=3)) == SUNDAY_2AM
    assert template_slot(
        template, SUNDAY_2AM - dt.timedelta(seconds=1)
    ) == SUNDAY_2AM - dt.timedelta(days=7)  # noqa: E501


def test_firing_the_same_slot_twice_creates_one_job(alice, datasets):
    template = make_template(alice, datasets[:1], rolling_days=30)
    first = template_fire(template_id=template.id, now=SAT)
    second = template_fire(template_id=template.id, now=SAT + dt.timedelta(minutes=5))
    assert first.id == second.id and first.job_id is not None
    assert OptimizationJob.objects.count() == 1 and TemplateFiring.objects.count() == 1
    job = first.job
    assert job.created_by == alice
    assert job.date_from == datasets[0].end - dt.timedelta(days=30)  # rolling_days before its end
    assert template_fire(template_id=template.id, now=SAT + dt.timedelta(days=7)).job_id != job.id


def test_the_beat_task_body_called_twice_creates_one_job(alice, datasets):
    template = make_template(alice, datasets[:1])
    fire_template(template.id)
    fire_template(template.id)
    assert OptimizationJob.objects.count() == 1


def test_a_refused_job_is_recorded_on_the_firing_and_not_retried(alice, datasets, settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "MAX_ACTIVE_JOBS_PER_USER": 0}
    template = make_template(alice, datasets[:1])
    firing = template_fire(template_id=template.id, now=SAT)
    assert firing.job is None and "limit 0" in firing.error
    assert template_fire(template_id=template.id, now=SAT).id == firing.id


def test_auto_apply_in_dry_run_records_a_proposal_and_changes_nothing(alice, datasets):
    owner = grant(alice)
    approve("PILOT")
    template = make_template(owner, datasets[:1], auto_apply="dry_run", min_improvement_pct=-1e9)
    firing = template_fire(template_id=template.id, now=SAT)
    run_all_chunks(firing.job)
    firing.refresh_from_db()
    assert firing.apply_status == "done", firing.apply_result
    assert len(firing.apply_result["changes"]) == 1 and firing.apply_result["dry_run"]
    proposal = ParameterChange.objects.get()
    assert proposal.dry_run and proposal.kind == "proposal" and proposal.source == "beat"
    assert proposal.job == firing.job and proposal.to_version == 1
    assert StrategyConfig.objects.count() == 0


def test_auto_apply_applies_through_the_same_gates(alice, datasets):
    template = make_template(grant(alice), datasets[:1], auto_apply="apply")
    firing = template_fire(template_id=template.id, now=SAT)
    run_all_chunks(firing.job)  # no approval yet: the stage gate refuses
    firing.refresh_from_db()
    assert firing.apply_result["changes"] == []
    assert firing.apply_result["refused"][0]["gate"] == "stage"
    assert StrategyConfig.objects.count() == 0


def test_auto_apply_writes_a_version_when_every_gate_passes(alice, datasets):
    approve("PRODUCTION")
    template = make_template(
        grant(alice), datasets[:1], auto_apply="apply", min_improvement_pct=-1e9
    )  # noqa: E501
    firing = template_fire(template_id=template.id, now=SAT)
    run_all_chunks(firing.job)
    assert StrategyConfig.objects.get().version == 1
    assert ParameterChange.objects.get().source == "beat"
