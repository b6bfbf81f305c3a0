"""Costs: the trading costs every strategy run is given."""

from __future__ import annotations

import pytest

from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies.base import Costs


def test_costs_validation():
    with pytest.raises(ParameterError):
        Costs(commission_pct=float("nan"))
    with pytest.raises(ParameterError):
        Costs(initial_equity=0)
