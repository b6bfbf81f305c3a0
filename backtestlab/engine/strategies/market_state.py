"""Market state (seed 004): trade BALANCE / IMBALANCE states computed from 1-minute candles.

Volume profile, order flow and the state rules are defined in
:mod:`backtestlab.engine.market_profile`; this module turns the states into orders for the ONE
simulator (market orders at the next open, ATR stops and targets as fractions of the fill).

Rules, evaluated at each 1-minute close once the lookback window is full
------------------------------------------------------------------------
* IMBALANCE_UP entered on this bar (the previous bar's state differs) with confidence >=
  ``min_confidence`` -> long; IMBALANCE_DOWN likewise -> short.  A fresh opposite imbalance
  while in a position reverses it (the simulator's reversal rule).
* ``allow_balance_trades``: in BALANCE with confidence >= ``min_confidence``, a close that
  crosses below VAL -> long (back into value), a close that crosses above VAH -> short.
* Stop ``sl_atr_mult`` x ATR(``atr_period``) and target ``tp_atr_mult`` x ATR from the fill.

Timeframes: the strategy expects 1-minute candles (``lookback_period`` and
``lookback_buckets`` are minutes).  On any other timeframe every run fails with a message
saying so (a job on such a dataset ends FAILED with that message) rather than silently
treating bars as minutes.

Speed: everything that depends only on the data and one window (volume profile, flow,
momentum, ATR) is computed once per prepared context and reused by every run of a sweep; a
run is one O(n) classification pass, the simulator and the metrics kernel, all compiled.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..data import MarketData
from ..indicators import atr
from ..market_profile import (
    STATE_BALANCE,
    STATE_IMBALANCE_DOWN,
    STATE_IMBALANCE_UP,
    STATE_UNKNOWN,
    candle_flow,
    classify_kernel,
    cvd_momentum,
    volume_profile,
    window_flow,
)
from ..parameters import Param, ParameterSpace
from ..signals import Signals
from .base import Strategy

# The parameters the state classification depends on (its cache key).
_STATE_PARAMS = (
    "lookback_period",
    "lookback_buckets",
    "poc_distance_threshold",
    "momentum_threshold",
    "cvd_pressure_threshold",
)


@njit(cache=True, error_model="numpy")
def state_signals(
    close, vah, val, state, confidence, atr_, allow_balance, min_conf, sl_mult, tp_mult,
    entry, stop_pct, target_pct,
):  # fmt: skip
    """Entry side (+1/-1/0) and stop/target distances (percent of the fill) per close."""
    n = close.shape[0]
    for i in range(n):
        entry[i] = 0
        stop_pct[i] = np.nan
        target_pct[i] = np.nan
        s = state[i]
        a = atr_[i]
        if s == STATE_UNKNOWN or not confidence[i] >= min_conf or not a > 0.0:
            continue
        prev = state[i - 1] if i > 0 else STATE_UNKNOWN
        e = 0
        if s == STATE_IMBALANCE_UP and prev != STATE_IMBALANCE_UP:
            e = 1
        elif s == STATE_IMBALANCE_DOWN and prev != STATE_IMBALANCE_DOWN:
            e = -1
        elif s == STATE_BALANCE and allow_balance and i > 0:
            if close[i] < val[i] and close[i - 1] >= val[i - 1]:
                e = 1
            elif close[i] > vah[i] and close[i - 1] <= vah[i - 1]:
                e = -1
        if e != 0:
            entry[i] = e
            stop_pct[i] = sl_mult * a / close[i] * 100.0
            target_pct[i] = tp_mult * a / close[i] * 100.0


class MarketStateContext:
    """Per-dataset cache: one volume profile and flow per lookback, ATR per period."""

    def __init__(self, data: MarketData):
        self.data = data
        self.error = None
        if data.timeframe != "1m":
            self.error = (
                f"market_state needs 1-minute candles; {data.symbol} {data.timeframe} has "
                f"{data.timeframe} bars. Use a 1m dataset (manage.py make_synthetic "
                "--with-minutes, or import minute candles)"
            )
        self._windows: dict[int, tuple] = {}
        self._cvd: dict[int, np.ndarray] = {}
        self._atr: dict[int, np.ndarray] = {}
        self._buy = None
        self._delta = None
        self._cache: dict = {}

    def cached(self, key, compute):
        """``compute()`` once per ``key`` (the states of one classification)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def check(self) -> None:
        if self.error:
            raise ValueError(self.error)

    def _flow(self):
        if self._buy is None:
            d = self.data
            self._buy, self._delta = candle_flow(d.high, d.low, d.close, d.volume)
        return self._buy, self._delta

    def window(self, lookback: int) -> tuple:
        """``(poc, vah, val, cvd_pressure, momentum)`` over ``lookback`` minutes."""
        w = self._windows.get(lookback)
        if w is None:
            d = self.data
            poc, vah, val = volume_profile(d.high, d.low, d.volume, lookback)
            pressure, momentum = window_flow(d.close, d.volume, self._flow()[0], lookback)
            w = (poc, vah, val, pressure, momentum)
            self._windows[lookback] = w
        return w

    def cvd_momentum(self, buckets: int) -> np.ndarray:
        arr = self._cvd.get(buckets)
        if arr is None:
            arr = cvd_momentum(self._flow()[1], buckets)
            self._cvd[buckets] = arr
        return arr

    def atr(self, period: int) -> np.ndarray:
        arr = self._atr.get(period)
        if arr is None:
            d = self.data
            arr = atr(d.high, d.low, d.close, period)
            self._atr[period] = arr
        return arr


class MarketState(Strategy):
    key = "market_state"
    label = "Market state"
    description = (
        "BALANCE / IMBALANCE from 1-minute candles: volume profile (POC, VAH, VAL, 70 % value "
        "area) and candle-estimated order flow (CVD); trade fresh imbalances, optionally fade "
        "the value-area edges in balance, with ATR stops and targets."
    )
    data_kind = "candles"
    timeframes = ("1m",)

    parameters = ParameterSpace(
        [
            Param(
                "lookback_period",
                "int",
                60,
                5,
                1440,
                label="Lookback (min)",
                help="Window of the volume profile, flow pressure and momentum, minutes",
            ),
            Param(
                "poc_distance_threshold",
                "float",
                1.5,
                0.01,
                50,
                label="POC distance %",
                help="Closer to the POC than this percent -> BALANCE",
            ),
            Param(
                "momentum_threshold",
                "float",
                1.5,
                0.01,
                50,
                label="Momentum %",
                help="Price change over the lookback that confirms an imbalance, percent",
            ),
            Param(
                "cvd_pressure_threshold",
                "float",
                15.0,
                0.1,
                100,
                label="CVD pressure",
                help="Buy % minus sell % over the lookback that confirms an imbalance",
            ),
            Param(
                "lookback_buckets",
                "int",
                5,
                1,
                240,
                label="CVD buckets",
                help="CVD momentum: change of cumulative delta over this many minutes",
            ),
            Param(
                "allow_balance_trades",
                "bool",
                False,
                label="Balance trades",
                help="Also fade VAH/VAL breaks while the market is in BALANCE",
            ),
            Param(
                "min_confidence",
                "float",
                50.0,
                0,
                100,
                label="Min confidence",
                help="State confidence (0-100) needed to trade",
            ),
            Param("atr_period", "int", 14, 2, 1440, label="ATR period", help="Minutes"),
            Param(
                "sl_atr_mult",
                "float",
                1.5,
                0.1,
                50,
                label="Stop x ATR",
                help="Stop distance from the fill in ATRs",
            ),
            Param(
                "tp_atr_mult",
                "float",
                3.0,
                0.1,
                100,
                label="Target x ATR",
                help="Target distance from the fill in ATRs",
            ),
        ]
    )

    def prepare(self, data: MarketData, companions=None) -> MarketStateContext:
        return MarketStateContext(data)

    def states(self, ctx: MarketStateContext, p) -> tuple[np.ndarray, np.ndarray]:
        """State codes (``STATE_*``) and confidence per bar (cached per classification)."""
        ctx.check()
        p = self.parameters.validate_params(p)
        key = tuple(p[k] for k in _STATE_PARAMS)

        def classify():
            n = len(ctx.data)
            poc, _vah, _val, pressure, momentum = ctx.window(p["lookback_period"])
            state = np.empty(n, dtype=np.int8)
            conf = np.empty(n)
            classify_kernel(
                ctx.data.close, poc, pressure, momentum, ctx.cvd_momentum(p["lookback_buckets"]),
                float(p["poc_distance_threshold"]), float(p["momentum_threshold"]),
                float(p["cvd_pressure_threshold"]), state, conf,
            )  # fmt: skip
            return state, conf

        return ctx.cached(("states", key), classify)

    def signals(self, ctx: MarketStateContext, p) -> Signals:
        state, conf = self.states(ctx, p)
        data = ctx.data
        n = len(data)
        _poc, vah, val, _pressure, _momentum = ctx.window(p["lookback_period"])
        entry = np.empty(n, dtype=np.int8)
        stop = np.empty(n)
        target = np.empty(n)
        state_signals(
            data.close, vah, val, state, conf, ctx.atr(p["atr_period"]),
            bool(p["allow_balance_trades"]), float(p["min_confidence"]),
            float(p["sl_atr_mult"]), float(p["tp_atr_mult"]), entry, stop, target,
        )  # fmt: skip
        return Signals(entries=entry, stop_pct=stop, target_pct=target)

    def warmup(self, p) -> int:
        # The ATR of the stops is Wilder-smoothed: ~25 periods to agree to 1e-9.
        return max(p["lookback_period"], p["lookback_buckets"], 25 * p["atr_period"]) + 1
