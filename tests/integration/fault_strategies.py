"""A test-only strategy whose backtest raises for one parameter value.

Worker processes import this module with ``celery worker --include`` (``WorkerProcess(include=
...)``), so production code knows nothing of it; the test process registers it with the
``faulty_strategy`` fixture and removes it afterwards.
"""

from __future__ import annotations

from backtestlab.engine.strategies import STRATEGIES, register
from backtestlab.engine.strategies.sma_cross import SmaCross

CURSED_FAST = 10
MESSAGE = f"fast={CURSED_FAST} is cursed (test strategy)"


class FaultySma(SmaCross):
    key = "faulty_sma"
    label = "SMA crossover that raises for fast=10 (tests only)"

    def run_many(self, ctx, param_list, costs):
        if any(p["fast"] == CURSED_FAST for p in param_list):
            raise ValueError(MESSAGE)
        return super().run_many(ctx, param_list, costs)


FAULTY = STRATEGIES.get(FaultySma.key) or register(FaultySma())
