"""Reads of production parameters."""

from __future__ import annotations

from apps.strategies.models import StrategyConfig


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
