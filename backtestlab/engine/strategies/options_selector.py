"""Options selector: short volatility on the options environment when the selector allows it.

Seeds 000 (the selector's rules on the environment metrics) and 002 (each trade's PnL and
estimated maximum loss as fractions of equity, its underlying and chain id, for the risk
manager).

Decisions
---------
The dataset is a daily :class:`~backtestlab.engine.data.EnvironmentSeries`; row ``d`` holds
values known at day ``d``'s open.  Decision steps are days ``0, k, 2k, ...`` with
``k = decision_interval_days``.  At a step where no position is open, the ONE selector
(:func:`backtestlab.engine.options_selector_rules.selector_allows`, thresholds = the
``SELECTOR_RULES`` parameters) decides whether to open one position at day ``d``'s open; it
is held for ``holding_days`` and settled at the open of day ``d + holding_days``.  The
simulator fills one order per bar open, so the first step after a settlement at which a new
position can open is the day after the settlement day.

Underlying prices come from the companion candles of the same symbol (any timeframe; daily
is enough): the price at time ``t`` is the close of the latest candle closed at or before
``t`` (candle timestamps are open times).  A step without a price, without 30 days of
realised volatility, or whose settlement falls beyond the data opens nothing.

Option PnL model (deterministic, documented; no option chain in the synthetic universe)
-----------------------------------------------------------------------------------------
* Implied vol ``iv = max(rv_30d + vrp_30d, 5) / 100`` (the synthetic universe's own
  definition): ``rv_30d`` is the annualised (sqrt 365) standard deviation of the last 30
  daily log returns up to ``d``'s open, ``vrp_30d`` the environment's variance risk premium.
* The position is a short iron butterfly: short the at-the-money straddle, long the wings
  ``w = wing_sigmas * s`` away, where ``s = S0 * iv * sqrt(holding_days / 365)`` is the
  implied one-sigma move over the holding period.  Under a normal (Bachelier) move the
  package's fair credit is ``s * C(k)``, ``C(k) = sqrt(2/pi) - 2 phi(k) + 2 k (1 - Phi(k))``
  (straddle minus strangle), and at settlement it is worth ``V = min(|S1 - S0|, w)``.
* Costs, the one cost model (Costs: percent per fill of traded value): the opening sale
  receives ``credit * (1 - slip)`` and pays ``comm * credit``; the closing purchase pays
  ``V * (1 + slip)`` and ``comm * V``.
* Sizing: ``max_loss_pct`` percent of equity is the estimated maximum loss, i.e. the loss at
  ``V = w`` after costs: ``units = max_loss_pct / 100 * E / (w (1 + slip + comm) - credit
  (1 - slip - comm))``.  So each trade's ``estimated_max_loss_pct`` (a fraction of equity,
  what the risk manager checks) is ``max_loss_pct / 100``, and its PnL fraction is
  ``max_loss_pct / 100 * (credit (1 - slip - comm) - V (1 + slip + comm)) / (that
  denominator)``.

Through the ONE simulator and metrics
-------------------------------------
Each environment day is one bar of a constant-price (1.0) instrument; a trade is a long
position in it entered at day ``d``'s open (signal on the previous close) and exited at the
settlement day's open.  Its PnL fraction arrives as the simulator's per-bar cash ``flow`` at
the close of the last day held (when ``S1`` is known), and the simulator runs with zero
commission and slippage because the costs above are already in the flow.  The simulator's
trade ``pnl_pct`` is therefore the trade's PnL in percent of equity, its equity curve is the
daily equity (stepping at settlements) and the one metrics kernel reads them (365 bars a
year).  :meth:`OptionsSelector.trade_results` lists the seed-002 trade records.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..data import EnvironmentSeries, MarketData
from ..indicators import rolling_std
from ..options_selector_rules import SELECTOR_RULES, selector_allows
from ..parameters import Param, ParameterSpace
from ..signals import Signals
from ..simulate import cost_fractions
from .base import Costs, Strategy

DAY = 86400
RV_DAYS = 30
MIN_IV_PCT = 5.0
_SQRT_2_PI = math.sqrt(2.0 / math.pi)


@dataclass(frozen=True)
class OptionTradeResult:
    """One closed position, in the shape of seed 002's ``TradeResult`` plus the estimated
    maximum loss that its ``RiskManager`` checks (``OpenPosition.estimated_max_loss_pct``).

    ``pnl_frac`` and ``estimated_max_loss_pct`` (the seed's name) are fractions of equity
    (+0.01 = +1 %).
    """

    timestamp: dt.datetime
    pnl_frac: float
    is_win: bool
    underlying: str
    chain_id: str
    estimated_max_loss_pct: float
    settled_at: dt.datetime


@njit(cache=True, error_model="numpy", inline="always")
def _norm_cdf(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@njit(cache=True, error_model="numpy")
def option_schedule(
    env_ts, allowed, spot, iv, c_close_time, c_close, interval, holding, wing_sigmas,
    max_loss, comm, slip, entry_out, exit_out, flow_out,
):  # fmt: skip
    """Write the simulator's entry/exit signals and the settlement flows for one parameter
    set (see the module docstring); returns the number of positions opened."""
    n = env_ts.shape[0]
    for i in range(n):
        entry_out[i] = 0
        exit_out[i] = False
        flow_out[i] = 0.0
    k = wing_sigmas
    credit_unit = _SQRT_2_PI - 2.0 * math.exp(-0.5 * k * k) / math.sqrt(2.0 * math.pi)
    credit_unit += 2.0 * k * (1.0 - _norm_cdf(k))
    keep = 1.0 - slip - comm
    pay = 1.0 + slip + comm
    risk_unit = k * pay - credit_unit * keep  # estimated max loss per unit of s
    if risk_unit <= 0.0:
        return 0
    horizon = holding * DAY
    m = c_close_time.shape[0]
    end_known = env_ts[n - 1] + DAY if n > 0 else 0
    next_free = 1  # day 0 has no previous close to carry its signal
    opened = 0
    for d in range(0, n, interval):
        if d < next_free or not allowed[d]:
            continue
        s0 = spot[d]
        vol = iv[d]
        if not (s0 == s0 and vol == vol):
            continue
        t_settle = env_ts[d] + horizon
        if t_settle > end_known:
            continue
        j = np.searchsorted(c_close_time, t_settle, side="right") - 1
        if j < 0 or j >= m or c_close_time[j] <= t_settle - DAY:
            continue
        s1 = c_close[j]
        settle_bar = np.searchsorted(env_ts, t_settle, side="left") - 1
        if settle_bar < d:
            continue
        sigma_move = vol * math.sqrt(holding / 365.0)
        move = abs(s1 / s0 - 1.0) / sigma_move  # in implied sigmas
        value = move if move < k else k
        entry_out[d - 1] = 1
        exit_out[settle_bar] = True
        flow_out[settle_bar] = max_loss * (credit_unit * keep - value * pay) / risk_unit
        next_free = settle_bar + 2
        opened += 1
    return opened


@njit(cache=True, error_model="numpy")
def option_schedule_rows(
    ts, allowed_rows, allowed_idx, spot, iv, c_close_time, c_close, interval, holding,
    wing_sigmas, max_loss_pct, comm, slip, entry_out, exit_out, flow_out,
):  # fmt: skip
    """:func:`option_schedule` for each row ``r`` of the parameter columns."""
    for r in range(interval.shape[0]):
        option_schedule(
            ts, allowed_rows[allowed_idx[r]], spot, iv, c_close_time, c_close, interval[r],
            holding[r], wing_sigmas[r], max_loss_pct[r] / 100.0, comm, slip, entry_out[r],
            exit_out[r], flow_out[r],
        )  # fmt: skip


def price_at(candles: MarketData, t: np.ndarray) -> np.ndarray:
    """Close of the latest candle closed at or before each time ``t`` (NaN = none)."""
    close_time = candles.ts + candles.bar_seconds
    idx = np.searchsorted(close_time, t, side="right") - 1
    if not len(candles):
        return np.full(len(t), np.nan)
    return np.where(idx >= 0, candles.close[np.maximum(idx, 0)], np.nan)


class OptionsSelectorContext:
    """Environment rows with the underlying's price, realised and implied vol per day."""

    def __init__(self, env: EnvironmentSeries, candles: MarketData):
        needed = {"vrp_30d", *(r.metric for r in SELECTOR_RULES)}
        missing = sorted(needed - set(env.metrics))
        if missing:
            raise ValueError(
                f"the environment dataset lacks metric(s) {', '.join(missing)}; "
                "the options selector needs " + ", ".join(sorted(needed))
            )
        self.env = env
        self.candles = candles
        self.underlying = env.symbol
        self.spot = price_at(candles, env.ts)
        with np.errstate(invalid="ignore", divide="ignore"):
            ret = np.full(len(env), np.nan)
            ret[1:] = np.log(self.spot[1:] / self.spot[:-1])
            contiguous = np.diff(env.ts) == DAY
            ret[1:][~contiguous] = np.nan
        rv = rolling_std(ret, RV_DAYS) * math.sqrt(365.0) * 100.0 if len(env) else ret
        self.rv_30d = rv
        self.iv = np.ascontiguousarray(np.maximum(rv + env.metrics["vrp_30d"], MIN_IV_PCT) / 100.0)
        self.c_close_time = np.ascontiguousarray(candles.ts + candles.bar_seconds)
        self.c_close = candles.close
        self.ones = np.ones(len(env))
        # The simulator's bars: one per environment day at a constant price.
        self.bars = MarketData(
            symbol=env.symbol,
            timeframe="1d",
            ts=env.ts,
            open=self.ones,
            high=self.ones,
            low=self.ones,
            close=self.ones,
            volume=np.zeros(len(env)),
        )
        self._allowed: dict[tuple, np.ndarray] = {}

    def allowed(self, thresholds: dict[str, float]) -> np.ndarray:
        key = tuple(float(thresholds[r.param]) for r in SELECTOR_RULES)
        arr = self._allowed.get(key)
        if arr is None:
            arr = np.ascontiguousarray(selector_allows(self.env.metrics, thresholds))
            self._allowed[key] = arr
        return arr


class OptionsSelector(Strategy):
    key = "options_selector"
    label = "Options selector (short vol)"
    description = (
        "Sells a defined-risk at-the-money iron butterfly on the options environment when the "
        "selector's rules allow it (VRP, IV rank, ADX, RSI thresholds); held for a fixed "
        "number of days, sized so its estimated maximum loss is a set share of equity."
    )
    data_kind = "environment"
    companion_kinds = ("candles",)

    # The option model prices its premium's costs into the settlement flow (see above); the
    # simulator's bars are a constant-price instrument whose fills cost nothing.
    simulator_costs = False
    parameters = ParameterSpace([
        Param("decision_interval_days", "int", 1, 1, 30, label="Decision interval (days)",
              help="A decision step every k-th day"),
        Param("holding_days", "int", 7, 1, 90, label="Holding period (days)",
              help="Days from opening to settlement"),
        Param("wing_sigmas", "float", 2.0, 0.5, 5.0, label="Wings (implied sigmas)",
              help="Long wings this many implied one-sigma moves from the strike"),
        Param("max_loss_pct", "float", 1.0, 0.05, 10.0, label="Max loss per trade %",
              help="Estimated maximum loss of a position, percent of equity"),
        *(rule.as_param() for rule in SELECTOR_RULES),
    ])  # fmt: skip

    def prepare(self, data: EnvironmentSeries, companions=None) -> OptionsSelectorContext:
        candles = (companions or {}).get("candles")
        if candles is None:
            raise ValueError(
                "options_selector needs the underlying's candles "
                "(companions={'candles': MarketData})"
            )
        return OptionsSelectorContext(data, candles)

    def bars(self, ctx: OptionsSelectorContext) -> MarketData:
        return ctx.bars

    def signals(self, ctx: OptionsSelectorContext, p, costs: Costs) -> Signals:
        n = len(ctx.env)
        entry = np.empty(n, dtype=np.int8)
        exit_ = np.empty(n, dtype=np.bool_)
        flow = np.empty(n)
        comm, slip = cost_fractions(costs)
        allowed = ctx.allowed({r.param: p[r.param] for r in SELECTOR_RULES})
        option_schedule(
            ctx.env.ts, allowed, ctx.spot, ctx.iv, ctx.c_close_time, ctx.c_close,
            p["decision_interval_days"], p["holding_days"], p["wing_sigmas"],
            p["max_loss_pct"] / 100.0, comm, slip, entry, exit_, flow,
        )  # fmt: skip
        return Signals(entries=entry, exits=exit_, flow=flow)

    def warmup(self, p) -> int:
        """Days: the realised volatility's window, then room for the chain of positions (a
        position still open at the start shifts the next entries) to fall back in step."""
        return RV_DAYS + 5 * (p["holding_days"] + p["decision_interval_days"]) + 1

    def signals_batch(self, ctx: OptionsSelectorContext, p, costs: Costs) -> Signals:
        """The schedules of many parameter sets (``p``: a column per parameter) in one
        compiled loop, the same as ``signals`` row by row; the selector's allowed days are
        computed once per distinct threshold combination."""
        rule_cols = np.column_stack([p[r.param] for r in SELECTOR_RULES])
        keys, allowed_idx = np.unique(rule_cols, axis=0, return_inverse=True)
        allowed = np.empty((len(keys), len(ctx.env)), dtype=np.bool_)
        for j, key in enumerate(keys):
            allowed[j] = ctx.allowed(
                {r.param: float(v) for r, v in zip(SELECTOR_RULES, key, strict=True)}
            )
        comm, slip = cost_fractions(costs)
        g, n = len(p.holding_days), len(ctx.env)
        entry = np.empty((g, n), dtype=np.int8)
        exit_ = np.empty((g, n), dtype=np.bool_)
        flow = np.empty((g, n))
        option_schedule_rows(
            ctx.env.ts, allowed, np.ascontiguousarray(allowed_idx.ravel()), ctx.spot, ctx.iv,
            ctx.c_close_time, ctx.c_close, p.decision_interval_days, p.holding_days,
            p.wing_sigmas, p.max_loss_pct, comm, slip, entry, exit_, flow,
        )  # fmt: skip
        return Signals(entries=entry, exits=exit_, flow=flow)

    def trade_results(
        self, ctx: OptionsSelectorContext, params: dict, costs: Costs
    ) -> list[OptionTradeResult]:
        """The run's closed positions as seed-002 trade records (fractions of equity)."""
        p = self.parameter_space().validate_params(params)
        result = self.run(ctx, p, costs)
        t = result.trades
        out = []
        for k in range(len(t)):
            opened = dt.datetime.fromtimestamp(int(t.entry_ts[k]), tz=dt.UTC)
            pnl = float(t.pnl_pct[k]) / 100.0
            out.append(
                OptionTradeResult(
                    timestamp=opened,
                    pnl_frac=pnl,
                    is_win=pnl > 0,
                    underlying=ctx.underlying,
                    chain_id=f"{ctx.underlying}-{opened:%Y%m%d}-{p['holding_days']}d",
                    estimated_max_loss_pct=p["max_loss_pct"] / 100.0,
                    settled_at=opened + dt.timedelta(days=p["holding_days"]),
                )
            )
        return out
