"""RSI mean reversion: buy when the RSI falls into oversold, sell when it recovers."""

from backtestlab.engine.parameters import Param, ParameterSpace
from backtestlab.engine.signals import Levels, Signals, crossed_above, crossed_below
from backtestlab.engine.strategies.base import Strategy


class RsiReversion(Strategy):
    key = "rsi_reversion"
    label = "RSI mean reversion (example)"
    description = (
        "Long when the RSI crosses below the oversold level; "
        "out when it crosses above the exit level."
    )
    parameters = ParameterSpace(
        [
            Param("period", "int", 14, 2, 200, label="RSI period", help="Bars"),
            Param("oversold", "float", 30.0, 1, 50, label="Oversold", help="Enter below this RSI"),
            Param(
                "exit_level", "float", 55.0, 20, 99, label="Exit RSI", help="Exit above this RSI"
            ),
            Param("sl_pct", "float", 3.0, 0.1, 50, label="Stop loss %", role="exit"),
            Param("size_pct", "float", 100.0, 1, 100, label="Size % of equity", role="sizing"),
        ],
        constraints=["oversold < exit_level"],
    )

    def signals(self, ctx, p):
        rsi = ctx.rsi(p.period)
        return Signals(
            entries=crossed_below(rsi, p.oversold),
            exits=crossed_above(rsi, p.exit_level),
        )

    def levels(self, p):
        return Levels(stop_pct=p.sl_pct, size=p.size_pct / 100.0)

    def warmup(self, p):
        # Wilder's RSI smooths recursively: after ten periods the start is forgotten (e^-10).
        return 10 * p.period
