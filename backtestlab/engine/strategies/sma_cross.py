"""Reference strategy: long-only simple-moving-average crossover with stop and target.

Entry on the close of bar ``i`` when the fast SMA crosses above the slow one (``fast[i] >
slow[i]`` and ``fast[i-1] <= slow[i-1]``, all four defined), filled at the next open; exit on
the opposite cross.  Stop ``sl_pct`` % below the entry fill and target ``rr * sl_pct`` % above
it (execution rules in :mod:`backtestlab.engine.simulate`).  ``fast >= slow`` never trades.
"""

from __future__ import annotations

import numpy as np

from ..parameters import Constraint, Param, ParameterSpace
from ..signals import Levels, Signals, crossed_above, crossed_below
from .base import Strategy


class SmaCross(Strategy):
    key = "sma_cross"
    label = "SMA crossover"
    description = (
        "Long when the fast simple moving average crosses above the slow one; exit on the "
        "opposite cross, a stop-loss or a take-profit at a multiple of the stop distance."
    )
    parameters = ParameterSpace(
        [
            Param("fast", "int", 10, 2, 500, label="Fast SMA", help="Fast window in bars"),
            Param("slow", "int", 50, 3, 2000, label="Slow SMA", help="Slow window in bars"),
            Param("sl_pct", "float", 2.0, 0.1, 50, label="Stop loss %", role="exit",
                  help="Stop distance below the entry fill, percent"),
            Param("rr", "float", 2.0, 0.1, 20, label="Reward/risk", role="exit",
                  help="Take-profit distance as a multiple of the stop distance"),
        ],
        constraints=[Constraint("fast < slow", "this combination never trades")],
    )  # fmt: skip

    def signals(self, ctx, p):
        fast, slow = ctx.sma(p.fast), ctx.sma(p.slow)
        if p.fast >= p.slow:  # an inverted "crossover" is another strategy: never trade
            return Signals(entries=np.zeros(len(fast), dtype=bool))
        return Signals(entries=crossed_above(fast, slow), exits=crossed_below(fast, slow))

    def levels(self, p):
        return Levels(stop_pct=p.sl_pct, target_pct=p.sl_pct * p.rr)

    def warmup(self, p):
        return max(p["fast"], p["slow"])
