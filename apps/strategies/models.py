"""Production parameters of the strategies.

A StrategyConfig row is one version of the parameters a strategy trades with in production
for one (symbol, timeframe, pattern). Versions are never edited: applying new parameters
writes the next version (the apply-to-production service of a later issue), so the history
is the audit trail and "current" is simply the highest version.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StrategyConfig(models.Model):
    strategy = models.CharField(max_length=50, help_text="Strategy key, e.g. smc_zones")
    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=8)
    pattern = models.CharField(
        max_length=40,
        blank=True,
        default="",
        help_text="The strategy's group value (e.g. an SMC pattern_type); blank = none",
    )
    version = models.PositiveIntegerField()
    params = models.JSONField(help_text="Parameter name -> value; missing ones use defaults")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["strategy", "symbol", "timeframe", "pattern", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "symbol", "timeframe", "pattern", "version"],
                name="strategyconfig_unique_version",
            ),
        ]
        permissions = [
            ("apply_parameters", "Can apply parameters to production (and restore versions)"),
        ]
        # The unique constraint's index also serves strategy_config_current (the highest
        # version of one (strategy, symbol, timeframe, pattern)).

    def __str__(self) -> str:
        pattern = f" {self.pattern}" if self.pattern else ""
        return f"{self.strategy} {self.symbol} {self.timeframe}{pattern} v{self.version}"


# Approval lives in its own module; imported here so Django finds the models.
from apps.strategies.approval_models import ApprovalConfig, StrategyApproval  # noqa: E402

# Production side: audit, risk, paper trading.
from apps.strategies.production_models import (  # noqa: E402
    AuditEntry,
    PaperBook,
    PaperTrade,
    ParameterChange,
    RiskConfig,
    RiskDecision,
)

__all__ = [
    "ApprovalConfig",
    "AuditEntry",
    "PaperBook",
    "PaperTrade",
    "ParameterChange",
    "RiskConfig",
    "RiskDecision",
    "StrategyApproval",
    "StrategyConfig",
]
