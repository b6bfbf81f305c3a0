"""Funding-rate carry: long spot + short perpetual, driven by 8-hourly funding (seed 001).

The position is delta-neutral, so its equity moves only with the funding it collects and the
costs it pays.  Two decision modes, chosen by the ``strategy_mode`` parameter:

* ``simple`` - enter when the funding rate is ``>= min_funding_rate``, exit when it falls
  ``< exit_funding_rate``.
* ``composite`` - a score in [0, 1], the weighted mean (weights ``weight_*`` divided by their
  sum; all zero = score 0) of four components, each in [0, 1]:

  =============  ==========================================================================
  rate level     ``clip(rate / RATE_FULL_SCORE, 0, 1)``: 0.03 % per 8 h (the seed's
                 ``min_funding_rate``, ~33 % a year) scores 1, zero or negative funding 0
  trend          ``clip(0.5 + 0.5 * (rate - EMA) / TREND_FULL_SCORE, 0, 1)`` with the EMA of
                 the funding rates over ``trend_ema_span`` periods (``indicators.ema``);
                 0.5 (neutral) while the EMA is still warming up
  persistence    consecutive periods up to now with ``rate >= persistence_threshold``, capped
                 at ``persistence_max_periods``, divided by that cap
  basis          the synthetic universe has no perpetual price, so the basis is a documented
                 deterministic proxy: perpetuals trade at a premium in rallies, so
                 ``clip(0.5 + 0.5 * (p / EMA_21(p) - 1) / BASIS_FULL_SCORE, 0, 1)`` with
                 ``p`` the spot price at the funding times and a 7-day (21-period) EMA;
                 0.5 without a price.  Its weight keeps the seed's default 0.15.
  =============  ==========================================================================

  Enter when the score is ``>= entry_threshold``, exit when it falls ``< exit_threshold``.
  Defaults are the seed's ``BacktestConfig``.

Time line (no look-ahead: the seed's time-bounded data store)
-------------------------------------------------------------
Candle timestamps are bar OPEN times, so a candle's close is known at ``ts + bar_seconds``.
At each funding time ``t`` the strategy sees funding rates with ``ts <= t`` and candles that
closed at or before ``t``; the price at a funding time is the close of the latest such
candle.  The decision is placed on the bar that contains ``t`` (``ts < t <= ts + bar``), i.e.
read by the simulator at that bar's close (>= ``t``) and filled at the next open, like every
other strategy.  With several funding times in one bar (daily candles) the last one decides.

Funding settlement and costs through the ONE simulator
------------------------------------------------------
:func:`~backtestlab.engine.simulate.simulate_kernel` runs the carry as a *hedged* position
(``hedged=True``): the long spot leg and an equal short perpetual leg open and close at the
same open; each leg pays slippage in its own direction and commission on its own traded
value (2 legs x entry and exit).  Funding is the kernel's per-bar cash ``flow``: at the bar
containing funding time ``t`` a position held through that bar's close receives
``qty * rate * price(t)`` (a short perpetual receives positive funding and pays negative
funding).  A position entered at ``t`` therefore does not collect the rate settled at ``t``
(it was known before the entry); one exited at the open after ``t`` does.  Equity is the
one simulator's mark (flat between funding times apart from the fills' spread); metrics come
from the one metrics kernel.

A sweep computes the signals of many parameter sets in one compiled loop
(:meth:`FundingCarry.signals_batch`); the engine runs them through the simulator and metrics.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
from numba import njit

from ..data import FundingSeries, MarketData
from ..indicators import ema
from ..parameters import Param, ParameterSpace
from ..signals import Signals
from .base import Strategy

MODES: tuple[str, ...] = ("simple", "composite")
MODE_SIMPLE, MODE_COMPOSITE = range(2)
RATE_FULL_SCORE = 0.0003  # the seed's min_funding_rate: such a rate scores 1 on rate level
TREND_FULL_SCORE = 0.0001  # rate above its EMA by this much scores 1 on trend
BASIS_EMA_PERIODS = 21  # 7 days of 8-hourly funding-time prices
BASIS_FULL_SCORE = 0.05  # spot 5 % above its 7-day EMA scores 1 on the basis proxy
# An EMA seeded with its first value forgets the seed by (1 - 2 / (span + 1)) ** k, about
# e ** (-2 k / span): after 6 spans ~6e-6.  The warm-up counts that many spans.
WARMUP_EMA_SPANS = 6


def _clip01(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, 0.0), 1.0)


def _ema_seeded(x: np.ndarray, span: int) -> np.ndarray:
    """EMA (``alpha = 2 / (span + 1)``) over the finite values, seeded with the first one;
    NaN where ``x`` is NaN (the basis proxy's reference level)."""
    out = np.full(len(x), np.nan)
    alpha = 2.0 / (span + 1.0)
    level = np.nan
    for k, v in enumerate(x):
        if np.isfinite(v):
            level = v if np.isnan(level) else level + alpha * (v - level)
            out[k] = level
    return out


class FundingCarryContext:
    """Candles aligned with funding times (computed once per dataset).

    Attributes
    ----------
    data : MarketData
    rate : ndarray[float64] (K,)
        Funding rates up to the last candle's close.
    bar : ndarray[int64] (K,)
        Bar containing each funding time (-1 = outside the candles).
    price : ndarray[float64] (K,)
        Close of the latest candle closed at or before each funding time (NaN = none).
    basis : ndarray[float64] (K,)
        Basis-proxy component in [0, 1].
    flow : ndarray[float64] (n,)
        Funding per unit of position credited at each bar's close (``rate * price``).
    """

    def __init__(self, data: MarketData, funding: FundingSeries):
        self.data = data
        close_time = data.ts + data.bar_seconds
        n = len(data)
        last = close_time[-1] if n else np.iinfo(np.int64).min
        keep = funding.ts <= last
        f_ts = funding.ts[keep]
        self.rate = np.ascontiguousarray(funding.rate[keep])
        p_idx = np.searchsorted(close_time, f_ts, side="right") - 1
        self.price = np.where(p_idx >= 0, data.close[np.maximum(p_idx, 0)], np.nan)
        # The bar containing t: the first one closing at or after t, or the one before it
        # when t falls in a gap between bars (held across t = held through that close).
        bar = np.searchsorted(close_time, f_ts, side="left").astype(np.int64)
        inside = bar < n
        if n:
            bar = np.where(inside & (data.ts[np.minimum(bar, n - 1)] >= f_ts), bar - 1, bar)
        self.bar = np.ascontiguousarray(np.where(inside & (bar >= 0), bar, -1), dtype=np.int64)
        self.flow = np.zeros(n)
        settles = (self.bar >= 0) & np.isfinite(self.price)
        np.add.at(self.flow, self.bar[settles], self.rate[settles] * self.price[settles])
        ref = _ema_seeded(self.price, BASIS_EMA_PERIODS)
        with np.errstate(invalid="ignore", divide="ignore"):
            basis = _clip01(0.5 + 0.5 * (self.price / ref - 1.0) / BASIS_FULL_SCORE)
        self.basis = np.ascontiguousarray(np.where(np.isfinite(basis), basis, 0.5))
        self._ema: dict[int, np.ndarray] = {}

    def rate_ema(self, span: int) -> np.ndarray:
        arr = self._ema.get(span)
        if arr is None:
            arr = ema(self.rate, span) if len(self.rate) else np.empty(0)
            self._ema[span] = arr
        return arr


@njit(cache=True, error_model="numpy")
def carry_signals(
    mode,
    rate,
    rate_ema,
    basis,
    bar,
    min_rate,
    exit_rate,
    entry_th,
    exit_th,
    w_level,
    w_trend,
    w_persist,
    w_basis,
    persist_th,
    persist_max,
    entry_out,
    exit_out,
):
    """Walk the funding times in order and write bar signals (see the module docstring).

    ``entry_out[b] = 1`` where the decision at the bar's (last) funding time is "hold",
    ``exit_out[b] = True`` where it is "flat"; other bars carry no signal.
    """
    for i in range(entry_out.shape[0]):
        entry_out[i] = 0
        exit_out[i] = False
    wsum = w_level + w_trend + w_persist + w_basis
    want = False
    run = 0
    for k in range(rate.shape[0]):
        r = rate[k]
        if mode == MODE_SIMPLE:
            if not want and r >= min_rate:
                want = True
            elif want and r < exit_rate:
                want = False
        else:
            run = run + 1 if r >= persist_th else 0
            persist = min(run, persist_max) / persist_max
            level = min(max(r / RATE_FULL_SCORE, 0.0), 1.0)
            e = rate_ema[k]
            trend = 0.5
            if e == e:
                trend = min(max(0.5 + 0.5 * (r - e) / TREND_FULL_SCORE, 0.0), 1.0)
            score = 0.0
            if wsum > 0.0:
                score = (
                    w_level * level + w_trend * trend + w_persist * persist + w_basis * basis[k]
                ) / wsum
            if not want and score >= entry_th:
                want = True
            elif want and score < exit_th:
                want = False
        b = bar[k]
        if b >= 0:
            entry_out[b] = 1 if want else 0
            exit_out[b] = not want


@njit(cache=True, error_model="numpy")
def carry_signals_rows(
    rate, emas, ema_row, basis, bar, mode, min_rate, exit_rate, entry_th, exit_th, w_level,
    w_trend, w_persist, w_basis, persist_th, persist_max, entry_out, exit_out,
):  # fmt: skip
    """:func:`carry_signals` for each row ``j`` of the parameter columns."""
    for j in range(mode.shape[0]):
        carry_signals(
            mode[j], rate, emas[ema_row[j]], basis, bar, min_rate[j], exit_rate[j], entry_th[j],
            exit_th[j], w_level[j], w_trend[j], w_persist[j], w_basis[j], persist_th[j],
            persist_max[j], entry_out[j], exit_out[j],
        )  # fmt: skip


def _weights_set(params: Mapping[str, Any]) -> str | None:
    """composite mode needs a positive weight"""
    if params["strategy_mode"] == "composite" and not any(
        params[w] > 0
        for w in ("weight_rate_level", "weight_trend", "weight_persistence", "weight_basis")
    ):
        return "all composite weights are 0: the score is always 0"
    return None


_RATE = dict(low=-0.01, high=0.01)


class FundingCarry(Strategy):
    key = "funding_carry"
    label = "Funding carry (spot/perp)"
    description = (
        "Delta-neutral long spot + short perpetual that collects 8-hourly funding; simple "
        "rate thresholds or a composite score (rate level, trend, persistence, basis)."
    )
    data_kind = "candles"
    companion_kinds = ("funding",)
    group_by = ("strategy_mode",)

    hedged = True
    parameters = ParameterSpace(
        [
            Param("strategy_mode", "choice", "simple", choices=MODES, label="Mode",
                  help="simple: rate thresholds; composite: weighted signal score"),
            Param("min_funding_rate", "float", 0.0003, **_RATE, label="Min funding rate",
                  help="simple: enter when the rate per 8 h is at least this (0.0003 = 0.03 %)"),
            Param("exit_funding_rate", "float", 0.0001, **_RATE, label="Exit funding rate",
                  help="simple: exit when the rate per 8 h falls below this"),
            Param("entry_threshold", "float", 0.5, 0.0, 1.0, label="Entry score",
                  help="composite: enter when the score is at least this"),
            Param("exit_threshold", "float", 0.3, 0.0, 1.0, label="Exit score",
                  help="composite: exit when the score falls below this"),
            Param("weight_rate_level", "float", 0.35, 0.0, 1.0, label="Weight: rate level"),
            Param("weight_trend", "float", 0.25, 0.0, 1.0, label="Weight: trend"),
            Param("weight_persistence", "float", 0.25, 0.0, 1.0, label="Weight: persistence"),
            Param("weight_basis", "float", 0.15, 0.0, 1.0, label="Weight: basis (proxy)"),
            Param("trend_ema_span", "int", 6, 1, 500, label="Trend EMA span",
                  help="composite: funding periods of the trend EMA"),
            Param("persistence_threshold", "float", 0.0003, **_RATE,
                  label="Persistence threshold",
                  help="composite: a period counts as persistent at this rate or above"),
            Param("persistence_max_periods", "int", 30, 1, 1000, label="Persistence cap",
                  help="composite: periods at which persistence scores 1"),
        ],
        constraints=[_weights_set],
    )  # fmt: skip

    def prepare(self, data: MarketData, companions=None) -> FundingCarryContext:
        funding = (companions or {}).get("funding")
        if funding is None:
            raise ValueError(
                "funding_carry needs the funding series of the candles' symbol "
                "(companions={'funding': FundingSeries})"
            )
        return FundingCarryContext(data, funding)

    def signals(self, ctx: FundingCarryContext, p) -> Signals:
        n = len(ctx.data)
        entry = np.empty(n, dtype=np.int8)
        exit_ = np.empty(n, dtype=np.bool_)
        carry_signals(
            MODES.index(p["strategy_mode"]), ctx.rate, ctx.rate_ema(p["trend_ema_span"]), ctx.basis,
            ctx.bar, p["min_funding_rate"], p["exit_funding_rate"], p["entry_threshold"],
            p["exit_threshold"], p["weight_rate_level"], p["weight_trend"],
            p["weight_persistence"], p["weight_basis"], p["persistence_threshold"],
            p["persistence_max_periods"], entry, exit_,
        )  # fmt: skip
        return Signals(entries=entry, exits=exit_, flow=ctx.flow)

    def warmup(self, p) -> dt.timedelta:
        """Funding periods of history: the basis proxy's and the trend's EMAs (seeded with the
        first rate) converge, the persistence count fills and the entry/exit hysteresis
        settles; measured in time because funding is 8-hourly whatever the candles."""
        periods = max(
            WARMUP_EMA_SPANS * BASIS_EMA_PERIODS,
            WARMUP_EMA_SPANS * p["trend_ema_span"],
            2 * p["persistence_max_periods"],
        )
        return dt.timedelta(hours=8 * periods)

    def signals_batch(self, ctx: FundingCarryContext, p) -> Signals:
        """The signals of many parameter sets (``p``: a column per parameter) in one compiled
        loop; the same as ``signals`` row by row."""
        mode = np.array([MODES.index(m) for m in p.strategy_mode], dtype=np.int64)
        spans = np.unique(p.trend_ema_span)
        emas = np.empty((len(spans), len(ctx.rate)))
        for j, span in enumerate(spans):
            emas[j] = ctx.rate_ema(int(span))
        ema_row = np.searchsorted(spans, p.trend_ema_span)
        g, n = len(mode), len(ctx.data)
        entry = np.empty((g, n), dtype=np.int8)
        exit_ = np.empty((g, n), dtype=np.bool_)
        carry_signals_rows(
            ctx.rate, emas, ema_row, ctx.basis, ctx.bar, mode, p.min_funding_rate,
            p.exit_funding_rate, p.entry_threshold, p.exit_threshold, p.weight_rate_level,
            p.weight_trend, p.weight_persistence, p.weight_basis, p.persistence_threshold,
            p.persistence_max_periods, entry, exit_,
        )  # fmt: skip
        return Signals(entries=entry, exits=exit_, flow=ctx.flow)
