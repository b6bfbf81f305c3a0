"""Production parameters as they stand."""

from __future__ import annotations

from apps.strategies.models import (
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
