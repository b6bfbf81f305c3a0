"""Production-side models (audit, risk, paper trading), imported by ``apps.strategies.models``.

- ParameterChange: the audit row of every change of production parameters (an apply, a
  restore, or an auto-tuner proposal flagged ``dry_run``); never edited.
- RiskConfig: the seed's risk limits per strategy (Decimal fractions of equity).
- AuditEntry: every change of a risk or approval configuration (who, when, before, after).
- PaperBook / PaperTrade / RiskDecision: the paper-trading loop's state, orders and the
  RiskManager's verdict on each candidate trade.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from backtestlab.engine.risk import RiskConfig as EngineRiskConfig

_USER = settings.AUTH_USER_MODEL


class ParameterChange(models.Model):
    class Kind(models.TextChoices):
        APPLY = "apply", "Apply a run"
        RESTORE = "restore", "Restore a version"
        PROPOSAL = "proposal", "Proposal (dry-run)"
        MANUAL = "manual", "Added in admin"

    strategy = models.CharField(max_length=50)
    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=8)
    pattern = models.CharField(max_length=40, blank=True, default="")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    dry_run = models.BooleanField(default=False, help_text="A proposal: nothing was changed")
    from_version = models.PositiveIntegerField(help_text="0 = there was none")
    to_version = models.PositiveIntegerField(help_text="The version written (or proposed)")
    old_params = models.JSONField(null=True, blank=True)
    new_params = models.JSONField()
    config = models.ForeignKey(
        "strategies.StrategyConfig", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="changes",
    )  # fmt: skip
    job = models.ForeignKey(
        "optimization.OptimizationJob", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    run = models.ForeignKey(
        "optimization.OptimizationRun", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    objective = models.CharField(max_length=40, blank=True)
    old_value = models.FloatField(null=True, blank=True)
    new_value = models.FloatField(null=True, blank=True)
    improvement_pct = models.FloatField(null=True, blank=True)
    stage = models.CharField(max_length=16, blank=True, help_text="Approval stage at the time")
    reason = models.TextField(blank=True)
    source = models.CharField(max_length=16, help_text="page, api, admin, command, beat")
    user = models.ForeignKey(_USER, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # history of one (strategy, symbol, timeframe, pattern), newest first
            models.Index(
                fields=["strategy", "symbol", "timeframe", "pattern", "-created_at"],
                name="paramchange_key_created",
            ),  # fmt: skip
        ]

    def __str__(self) -> str:
        what = "proposal" if self.dry_run else self.kind
        return f"{self.strategy} {self.symbol} {self.timeframe} v{self.from_version}→v{self.to_version} ({what})"  # noqa: E501


_FRACTION = [MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("1"))]


class RiskConfig(models.Model):
    strategy = models.CharField(max_length=50, unique=True)
    max_risk_per_trade = models.DecimalField(
        max_digits=6, decimal_places=4, default=Decimal("0.01"), validators=_FRACTION,
        help_text="Fraction of equity (0.01 = 1 %)",
    )  # fmt: skip
    max_risk_per_underlying = models.DecimalField(
        max_digits=6, decimal_places=4, default=Decimal("0.03"), validators=_FRACTION,
        help_text="Open positions plus the candidate on one underlying (0.03 = 3 %)",
    )  # fmt: skip
    max_new_trades_per_day = models.PositiveIntegerField(
        default=2, validators=[MaxValueValidator(1000)]
    )
    enabled = models.BooleanField(default=True)
    updated_by = models.ForeignKey(_USER, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")  # fmt: skip
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["strategy"]

    def __str__(self) -> str:
        return f"risk {self.strategy}"

    def as_engine(self):
        return EngineRiskConfig(
            max_risk_per_trade=float(self.max_risk_per_trade),
            max_risk_per_underlying=float(self.max_risk_per_underlying),
            max_new_trades_per_day=int(self.max_new_trades_per_day),
            enabled=bool(self.enabled),
        )


class AuditEntry(models.Model):
    class Kind(models.TextChoices):
        RISK_CONFIG = "risk_config", "Risk config"
        APPROVAL_CONFIG = "approval_config", "Approval config"

    class Action(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    action = models.CharField(max_length=8, choices=Action.choices)
    object_id = models.PositiveIntegerField(null=True)
    object_repr = models.CharField(max_length=200)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=16)
    user = models.ForeignKey(_USER, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.action} {self.object_repr}"


class PaperBook(models.Model):
    """Paper trading of one production key; the loop trades its current StrategyConfig."""

    strategy = models.CharField(max_length=50)
    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=8)
    pattern = models.CharField(max_length=40, blank=True, default="")
    enabled = models.BooleanField(default=True)
    start_day = models.DateField(help_text="First synthetic day traded")
    days_done = models.PositiveIntegerField(default=0, help_text="Synthetic days stepped so far")
    equity = models.FloatField(default=10_000.0)
    initial_equity = models.FloatField(default=10_000.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "symbol", "timeframe", "pattern"], name="paperbook_unique_key"
            ),  # fmt: skip
        ]

    def __str__(self) -> str:
        return f"paper {self.strategy} {self.symbol} {self.timeframe} {self.pattern}".strip()


class PaperTrade(models.Model):
    book = models.ForeignKey(PaperBook, on_delete=models.CASCADE, related_name="trades")
    config_version = models.PositiveIntegerField()
    underlying = models.CharField(max_length=20)
    side = models.SmallIntegerField()
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    entry_price = models.FloatField()
    exit_price = models.FloatField(null=True, blank=True)
    estimated_max_loss_pct = models.FloatField()
    pnl_pct = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["book", "opened_at", "side"], name="papertrade_unique_entry"
            ),  # fmt: skip
        ]

    def __str__(self) -> str:
        return f"{self.underlying} {self.opened_at:%Y-%m-%d %H:%M} ({self.book})"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class RiskDecision(models.Model):
    book = models.ForeignKey(PaperBook, on_delete=models.CASCADE, related_name="decisions")
    strategy_id = models.CharField(max_length=120)
    underlying = models.CharField(max_length=20)
    estimated_max_loss_pct = models.FloatField()
    opened_at = models.DateTimeField()
    allowed = models.BooleanField()
    reason = models.TextField(blank=True)
    kind = models.CharField(
        max_length=16, blank=True, help_text="per_trade, per_underlying, daily_cap"
    )
    trade = models.OneToOneField(PaperTrade, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="decision")  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["book", "opened_at", "underlying"], name="riskdecision_unique_candidate"
            ),  # fmt: skip
        ]

    def __str__(self) -> str:
        verdict = "allowed" if self.allowed else f"vetoed: {self.reason}"
        return f"{self.underlying} {self.opened_at:%Y-%m-%d %H:%M} {verdict}"
