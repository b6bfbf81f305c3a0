"""Scheduled sweeps (JobTemplate, TemplateFiring), imported by ``apps.optimization.models``.

A JobTemplate is a sweep to repeat: each firing of its django-celery-beat PeriodicTask creates
one job. TemplateFiring rows make that exactly once per scheduled slot: (template, slot) is
unique, so beat firing twice, or two beat processes, give one job.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.optimization.ranking import min_trades_field


class JobTemplate(models.Model):
    class AutoApply(models.TextChoices):
        OFF = "off", "Off"
        DRY_RUN = "dry_run", "Dry-run (record proposals)"
        APPLY = "apply", "Apply"

    name = models.CharField(max_length=80)
    strategy = models.CharField(max_length=50)
    datasets = models.ManyToManyField("market.Dataset", related_name="+", blank=True)
    rolling_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(36500)],
        help_text="Only the last N days of each dataset (e.g. 365); blank = all of it",
    )  # fmt: skip
    parameter_grid = models.JSONField()
    objective = models.CharField(max_length=40, default="sharpe")
    min_trades = min_trades_field()
    costs = models.JSONField(default=dict, blank=True)
    auto_apply = models.CharField(max_length=8, choices=AutoApply.choices, default=AutoApply.OFF)
    min_improvement_pct = models.FloatField(
        default=5.0, validators=[MinValueValidator(0.0), MaxValueValidator(10_000.0)]
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="job_templates",
        help_text="Jobs are created as this user; auto-apply needs their apply permission",
    )  # fmt: skip
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="job_template",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"template {self.name}"


class TemplateFiring(models.Model):
    template = models.ForeignKey(JobTemplate, on_delete=models.CASCADE, related_name="firings")
    slot = models.DateTimeField(help_text="The scheduled time this firing belongs to (UTC)")
    job = models.ForeignKey("optimization.OptimizationJob", null=True, blank=True,
                            on_delete=models.SET_NULL, related_name="firings")  # fmt: skip
    error = models.TextField(blank=True)
    apply_status = models.CharField(
        max_length=12, default="pending", help_text="pending, running, done, skipped, failed"
    )
    apply_result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-slot", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["template", "slot"], name="firing_unique_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.template} @ {self.slot:%Y-%m-%d %H:%M}"
