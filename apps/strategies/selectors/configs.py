"""Production parameters as they stand."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.optimization.selectors.jobs import jobs_visible_to, team_q
from apps.strategies.models import (
    ParameterChange,
    RiskConfig,
    StrategyConfig,
)


def strategy_config_current(
    strategy: str, symbol: str, timeframe: str, pattern: str = ""
) -> StrategyConfig | None:
    """The production parameters in force: the highest version, or None when there is none."""
    return (
        StrategyConfig.objects.filter(
            strategy=strategy, symbol=symbol, timeframe=timeframe, pattern=pattern or ""
        )
        .order_by("-version")
        .first()
    )


def parameter_changes_in_full(user, changes: QuerySet[ParameterChange]) -> set[int]:
    """Ids of the ``changes`` ``user`` may read in full (who, why, which job and run): staff,
    the author's team (as for jobs), and for a change without author (beat, a command) those
    who may see its job. Everyone else reads the parameters and versions only."""
    if getattr(user, "is_staff", False):
        return set(changes.values_list("id", flat=True))
    if not getattr(user, "is_authenticated", False):
        return set()
    authorless = Q(user__isnull=True, job__in=jobs_visible_to(user))
    return set(changes.filter(team_q(user, "user") | authorless).values_list("id", flat=True))


def risk_config_for(strategy: str) -> RiskConfig:
    """The strategy's risk config, or an unsaved one with the seed's defaults."""
    return RiskConfig.objects.filter(strategy=strategy).first() or RiskConfig(strategy=strategy)


def risk_config_as_dict(obj: RiskConfig) -> dict:
    return {
        "strategy": obj.strategy,
        "max_risk_per_trade": float(obj.max_risk_per_trade),
        "max_risk_per_underlying": float(obj.max_risk_per_underlying),
        "max_new_trades_per_day": obj.max_new_trades_per_day,
        "enabled": obj.enabled,
        "stored": obj.pk is not None,
        "updated_at": obj.updated_at,
    }
