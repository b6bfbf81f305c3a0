"""Approval configuration and decisions (seed 002), imported by ``apps.strategies.models``.

ApprovalConfig holds the seed's ``ApprovalConfig`` defaults plus the thresholds of the gates
the seed hard-codes (sensitivity, walk-forward, stress, regimes); the active row with the
highest id is the one in force (editable in admin; none = the seed's defaults).
StrategyApproval is one evaluation: never edited, so the rows of a strategy are its history.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from backtestlab.engine.evaluation.approval import ApprovalConfig as EngineApprovalConfig

_D = EngineApprovalConfig()
# A threshold out of its range makes every strategy pass or fail a gate: refused in admin.
_SHARE = [MinValueValidator(0.0), MaxValueValidator(1.0)]
_SCORE = [MinValueValidator(0.0), MaxValueValidator(100.0)]


class ApprovalConfig(models.Model):
    name = models.CharField(max_length=100, default="default")
    is_active = models.BooleanField(default=True)

    min_trades = models.PositiveIntegerField(default=_D.min_trades)
    min_years = models.FloatField(default=_D.min_years, validators=[MinValueValidator(0.0)])
    require_bull_bear_chop = models.BooleanField(default=_D.require_bull_bear_chop)
    max_worst_dd_research = models.FloatField(default=_D.max_worst_dd_research, validators=_SHARE)
    max_worst_dd_pilot = models.FloatField(default=_D.max_worst_dd_pilot, validators=_SHARE)
    max_worst_dd_prod = models.FloatField(default=_D.max_worst_dd_prod, validators=_SHARE)
    max_loss_streak_pilot = models.PositiveIntegerField(default=_D.max_loss_streak_pilot)
    max_loss_streak_prod = models.PositiveIntegerField(default=_D.max_loss_streak_prod)
    min_psych_score_pilot = models.FloatField(default=_D.min_psych_score_pilot, validators=_SCORE)
    min_psych_score_prod = models.FloatField(default=_D.min_psych_score_prod, validators=_SCORE)
    require_param_sensitivity_ok = models.BooleanField(default=_D.require_param_sensitivity_ok)
    require_walk_forward_ok = models.BooleanField(default=_D.require_walk_forward_ok)
    require_stress_test_ok = models.BooleanField(default=_D.require_stress_test_ok)

    max_neighbour_drop = models.FloatField(
        default=_D.max_neighbour_drop,
        validators=_SHARE,
        help_text="Largest allowed objective drop in the best run's grid neighbourhood "
        "(0.5 = neighbours keep half the best objective)",
    )
    min_walk_forward_efficiency = models.FloatField(
        default=_D.min_walk_forward_efficiency, help_text="OOS / IS objective, at least"
    )
    min_oos_positive_share = models.FloatField(
        default=_D.min_oos_positive_share,
        validators=_SHARE,
        help_text="Share of walk-forward folds with a positive OOS objective, at least",
    )
    stress_min_fraction = models.FloatField(
        default=_D.stress_min_fraction,
        help_text="Each stress scenario keeps at least this fraction of the base objective",
    )
    stress_min_fraction_combined = models.FloatField(
        default=_D.stress_min_fraction_combined,
        help_text="Fees x2 + slippage x2 + delay together keep at least this fraction",
    )
    min_regime_share = models.FloatField(
        default=_D.min_regime_share,
        validators=_SHARE,
        help_text="A regime counts when this share of the bars in the trades' span has it",
    )
    mc_sims = models.PositiveIntegerField(default=_D.mc_sims, validators=[MinValueValidator(1)])
    mc_seed = models.PositiveBigIntegerField(default=_D.mc_seed)

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name}{'' if self.is_active else ' (inactive)'}"

    def as_engine(self) -> EngineApprovalConfig:
        return EngineApprovalConfig.from_mapping(
            {f.name: getattr(self, f.name) for f in self._meta.fields}
        )


class StrategyApproval(models.Model):
    class Stage(models.TextChoices):
        RESEARCH = "RESEARCH", "Research"
        PILOT = "PILOT", "Pilot"
        PRODUCTION = "PRODUCTION", "Production"

    class Trigger(models.TextChoices):
        PAGE = "page", "Lab page"
        API = "api", "API"
        COMMAND = "command", "Management command"
        ADMIN = "admin", "Admin"

    strategy = models.CharField(max_length=50)
    job = models.ForeignKey(
        "optimization.OptimizationJob", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="approvals",
    )  # fmt: skip
    run = models.ForeignKey(
        "optimization.OptimizationRun", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    params = models.JSONField(default=dict)
    stage = models.CharField(max_length=16, choices=Stage.choices)
    reason = models.TextField()
    rules = models.JSONField(default=list, help_text="Each rule: value, threshold, pass")
    summary = models.JSONField(default=dict, help_text="The seed's strategy summary")
    gates = models.JSONField(default=dict, help_text="Details of every computed gate")
    config = models.JSONField(default=dict, help_text="The ApprovalConfig values used")
    config_ref = models.ForeignKey(
        ApprovalConfig, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # strategy page / API: latest approvals of one strategy first
            models.Index(fields=["strategy", "-created_at"], name="approval_strategy_created"),
        ]

    def __str__(self) -> str:
        return f"{self.strategy} {self.stage} ({self.created_at:%Y-%m-%d %H:%M})"
