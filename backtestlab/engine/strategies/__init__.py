"""The strategy registry: every strategy instance by its key."""

from __future__ import annotations

from ..parameters import ParameterError, did_you_mean
from .base import Strategy
from .funding_carry import FundingCarry
from .market_state import MarketState
from .options_selector import OptionsSelector
from .sma_cross import SmaCross
from .smc import Smc

STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Add a strategy instance to :data:`STRATEGIES` (keyed by ``strategy.key``)."""
    if strategy.key in STRATEGIES and STRATEGIES[strategy.key] is not strategy:
        raise ValueError(f"strategy key {strategy.key!r} is already registered")
    STRATEGIES[strategy.key] = strategy
    return strategy


def get_strategy(key: str) -> Strategy:
    """Registered strategy by key; ParameterError("strategy", ...) with a suggestion if
    unknown."""
    try:
        return STRATEGIES[key]
    except (KeyError, TypeError):
        raise ParameterError("strategy", did_you_mean("strategy", key, list(STRATEGIES))) from None


register(SmaCross())
register(FundingCarry())
register(OptionsSelector())
register(Smc())
register(MarketState())
