"""The strategy registry (backtestlab.engine.strategies): lookup by key, did-you-mean."""

from __future__ import annotations

import pytest

from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies import STRATEGIES, get_strategy


def test_registry():
    assert "sma_cross" in STRATEGIES
    s = get_strategy("sma_cross")
    assert s.label == "SMA crossover" and s.data_kind == "candles"
    with pytest.raises(ParameterError) as exc:
        get_strategy("sma")
    assert exc.value.field == "strategy"
    assert "did you mean 'sma_cross'?" in str(exc.value)
    assert "Known: sma_cross" in str(exc.value)
