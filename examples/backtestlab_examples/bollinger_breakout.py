"""Bollinger breakout: trade a close outside the bands, exit back at the middle band."""

import numpy as np

from backtestlab.engine.parameters import Param, ParameterSpace
from backtestlab.engine.signals import Levels, Signals, crossed_above, crossed_below
from backtestlab.engine.strategies.base import Strategy


class BollingerBreakout(Strategy):
    key = "bollinger_breakout"
    label = "Bollinger breakout (example)"
    description = (
        "Long when the close breaks above the upper band (short below the lower band if "
        "allowed); exit when it crosses back over the middle band, or at the stop or target."
    )
    parameters = ParameterSpace(
        [
            Param("window", "int", 20, 5, 500, label="Window", help="Bars of the bands' SMA"),
            Param("width", "float", 2.0, 0.5, 5.0, label="Width (std)", help="Band distance"),
            Param("allow_short", "bool", False, label="Shorts", help="Also sell breakdowns"),
            Param("sl_pct", "float", 2.0, 0.1, 50, label="Stop loss %", role="exit"),
            Param("rr", "float", 2.0, 0.5, 10, label="Reward/risk", role="exit"),
        ]
    )

    def signals(self, ctx, p):
        close = ctx.data.close
        mid = ctx.sma(p.window)
        band = p.width * ctx.rolling_std(p.window)
        long_ = crossed_above(close, mid + band)
        short = crossed_below(close, mid - band) if p.allow_short else np.zeros(len(close), bool)
        entries = long_.astype(np.int8) - short.astype(np.int8)
        exits = crossed_below(close, mid) | (crossed_above(close, mid) & p.allow_short)
        return Signals(entries=entries, exits=exits)

    def levels(self, p):
        return Levels(stop_pct=p.sl_pct, target_pct=p.sl_pct * p.rr)

    def warmup(self, p):
        return p["window"] + 1
