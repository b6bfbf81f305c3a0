"""Look-ahead and warm-up checks for any strategy (Freqtrade's lookahead-analysis and
recursive-analysis are the model; these also catch a one-bar peek).

:func:`check_strategy` runs two empirical tests on real (or synthetic) data and returns a
:class:`StrategyCheck` with a :class:`Verdict` per test.  Both treat the strategy as a black
box: they only call ``prepare``, ``signals`` (through :func:`runner.signals_for`, i.e. with the
validated signal-role parameters, exactly as a backtest does), ``bars`` and ``run``.

Future replacement (look-ahead)
-------------------------------
A signal of bar ``k`` is read at the close of bar ``k`` (see :mod:`.signals`), so it may use
only what is known at ``T_k = ts[k] + bar_seconds`` of the strategy's bars.  For several cut
bars ``k`` the check builds copies of the data in which everything *not* known at ``T_k`` is
different, re-prepares the strategy on each copy and requires

* every signal array (entries with their side, exits, limit, stop/target percent or price,
  every partial target, parts, size, flow; NaN equals NaN) to be identical at bars ``<= k``,
* the equity of :meth:`Strategy.run` to be identical at bars ``<= k``.

What "not known at ``T``" means per series (the data and every companion are replaced
consistently, at the same instant):

* :class:`MarketData` (the traded candles, or a companion such as the options selector's
  daily candles): a candle is known at its close, so candles with ``ts + bar_seconds > T``.
* :class:`FundingSeries`: a rate is known at its funding time, so rows with ``ts > T``.
* :class:`EnvironmentSeries`: a row holds values observed at its timestamp (the synthetic
  universe's rows are "known at the day's open"), so rows with ``ts > T``.  For daily rows
  this keeps row ``k + 1`` (its open *is* the close of day ``k``): the options selector's
  signal at the close of day ``k`` for the decision at day ``k + 1``'s open legitimately
  reads it.

Each cut is tried with every replacement of :data:`REPLACEMENTS`, so a signal cannot survive
by luck (a peek at "the next close is higher" flips under the mirror for every bar; a peek at
volume or at a level survives neither gap):

``mirror``
    future prices reflected around the last known close in log space
    (``p' = P**2 / p``: rises become falls; high and low swap so every candle stays a valid
    OHLC), future volume reversed in time, bull and bear regimes swapped; funding and
    environment values reflected around their last known value.
``gap_up`` / ``gap_down``
    future prices times 1.25 / 0.8 (a gap at the first unknown bar), volume times 4 / 0.25,
    regimes rotated; funding and environment values shifted up / down (by three standard
    deviations of the funding rate, half the range of each environment metric).

The series keep their length and timestamps, so boundary effects (a position that cannot be
settled before the data ends) are the same in both runs; only knowledge differs.

Cut bars: ``cuts`` bars spread evenly after the longest declared warm-up, plus up to
``cuts`` *signal-anchored* ones: bars where some parameter set's signals on the original data
enter or exit (taken in turn from each set, spread over its signals).  A look-ahead shows
where a decision was taken, so cutting right at the decisions is what Freqtrade's
lookahead-analysis does and what makes a one-bar peek certain to be caught.

Warm-up (history dependence)
----------------------------
``warmup(p)`` promises that ``warmup(p)`` bars of history before a bar are enough for its
signal.  For start bars ``s`` the check prepares the strategy on the data from
``s - warmup(p)`` (the short run) and on the data from ``s - L`` with
``L = 3 * warmup(p) + 200`` (the long run; less when the data is short), companions cut to
the same start time (as a job's date range cuts them), and compares the signals of both from
bar ``s`` to the end, aligned by timestamp.  Entries and exits must be identical; level and
flow arrays must agree within ``warmup_rtol`` (default 1e-9: rolling sums restart at a
different bar and differ in the last bits).  Any other difference means the strategy needs
more history than it declares: an indicator whose NaN warm-up is longer than declared, a
recursive indicator (EMA, Wilder ATR/RSI) that has not converged, or a state (hysteresis, a
held position) carried from bars before the start.  On a failure the check retries a few
longer histories and reports the shortest that agreed (a hint for the right ``warmup``).

Parameter sets
--------------
Unless given, the defaults plus a few deterministic samples (:func:`sample_param_sets`):
numbers drawn within a factor of two of their default (inside the bounds), choices and
booleans cycled so every choice is tried, constraints respected
(``space.check_constraints``) and warm-ups short enough for the data.

The engine stays pure: this module imports nothing outside the engine.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import runner
from .data import EnvironmentSeries, FundingSeries, MarketData
from .signals import Signals, per_bar
from .strategies.base import Costs

REPLACEMENTS: tuple[str, ...] = ("mirror", "gap_up", "gap_down")
WARMUP_MARGIN = 200  # extra bars of history of the long run, beyond 3 x warmup(p)

_GAP = {"gap_up": 1.25, "gap_down": 0.8}
_VOLUME = {"gap_up": 4.0, "gap_down": 0.25}
# Regime codes (0 bull, 1 bear, 2 chop) after each replacement.
_REGIME = {
    "mirror": np.array([1, 0, 2], dtype=np.int8),
    "gap_up": np.array([1, 2, 0], dtype=np.int8),
    "gap_down": np.array([2, 0, 1], dtype=np.int8),
}
# What "not given" means when one run gives a level and the other does not (as the runner).
_NEUTRAL = {"limit": np.nan, "stop_pct": np.nan, "target_pct": np.nan, "stop_price": np.nan}
_NEUTRAL.update({"size": 1.0, "flow": 0.0, "parts": 1.0})
_FIELD_ORDER = (
    "entries", "exits", "limit", "stop_pct", "target_pct", "stop_price", "target_price",
    "parts", "size", "flow",
)  # fmt: skip


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Finding:
    """One place where a test saw a difference.

    ``bar`` is an index into the strategy's bars on the full data (``strategy.bars(ctx)``),
    ``time`` its open time in ISO form, ``what`` the differing array (``entries``,
    ``stop_pct``, ``target_price[1]``, ``equity``...) and ``delta`` its relative difference
    at that bar (None for entries and exits).  Look-ahead: ``cut`` is the cut bar ``k``
    (what was not known at its close was replaced by ``replacement``).  Warm-up: ``cut`` is
    the start bar ``s``, ``history`` the bars of history of the short run (the declared
    warm-up), ``long_history`` those of the long run and ``agreed_with`` the shortest longer
    history tried that agreed (None: none did).
    """

    test: str
    what: str
    bar: int
    time: str
    params: dict
    cut: int
    cut_time: str
    replacement: str | None = None
    history: int | None = None
    long_history: int | None = None
    agreed_with: int | None = None
    delta: float | None = None
    message: str = ""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one test: ``passed``, a one-line ``message`` for people, the first
    finding (earliest cut, then earliest bar) and all of them (at most one per parameter set
    and cut), the cut bars (look-ahead) or start bars (warm-up) used, how many
    signal comparisons were made and notes on what was not tested."""

    test: str
    passed: bool
    message: str
    finding: Finding | None = None
    findings: tuple[Finding, ...] = ()
    cuts: tuple[int, ...] = ()
    comparisons: int = 0
    notes: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class StrategyCheck:
    """Both verdicts of :func:`check_strategy` for one strategy and dataset."""

    strategy: str
    n_bars: int
    param_sets: tuple[dict, ...]
    lookahead: Verdict
    warmup: Verdict
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.lookahead.passed and self.warmup.passed

    def lines(self) -> list[str]:
        """A short human report: a headline, one line per test, the offending parameter set
        and any notes."""
        out = [
            f"{self.strategy}: {'PASS' if self.passed else 'FAIL'} ({self.n_bars} bars, "
            f"{len(self.param_sets)} parameter set(s), {self.seconds:.2f} s)"
        ]
        for v in (self.lookahead, self.warmup):
            out.append(f"  [{'pass' if v.passed else 'FAIL'}] {v.test}: {v.message}")
            if v.finding is not None:
                out.append(f"         parameters: {v.finding.params}")
                if len(v.findings) > 1:
                    out.append(f"         ({len(v.findings) - 1} more finding(s))")
            for note in v.notes:
                out.append(f"         note: {note}")
        return out


# --------------------------------------------------------------------------- helpers


def iso(ts: int) -> str:
    """Epoch seconds as ``2025-03-01T12:00Z`` (seconds shown only when not zero)."""
    t = dt.datetime.fromtimestamp(int(ts), tz=dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ" if t.second else "%Y-%m-%dT%H:%MZ")


def signal_arrays(sig: Signals, n: int) -> dict[str, np.ndarray]:
    """The per-bar arrays a :class:`Signals` stands for, by name, each of shape ``(n,)``:
    ``entries`` as +1/-1/0 (boolean entries times ``side``), ``exits`` (False when not
    given), every level given (numbers broadcast to every bar) and each partial target as
    ``target_price[i]``."""
    entries = np.asarray(sig.entries)
    if entries.dtype == np.bool_:
        entries = entries.astype(np.int64) * int(sig.side)
    out: dict[str, np.ndarray] = {"entries": per_bar(entries, n, "entries", np.int64)}
    out["exits"] = (
        np.zeros(n, dtype=np.bool_)
        if sig.exits is None
        else per_bar(sig.exits, n, "exits", np.bool_)
    )
    for name in ("limit", "stop_pct", "target_pct", "stop_price", "size", "flow", "parts"):
        value = getattr(sig, name)
        if value is not None:
            out[name] = per_bar(value, n, name)
    if sig.target_price is not None:
        if isinstance(sig.target_price, (list, tuple)):
            for i, level in enumerate(sig.target_price):
                out[f"target_price[{i}]"] = per_bar(level, n, "target_price")
        else:
            out["target_price"] = per_bar(sig.target_price, n, "target_price")
    return out


def _neutral(name: str, n: int) -> np.ndarray:
    base = name.split("[", 1)[0]
    return np.full(n, _NEUTRAL.get(base, np.nan))


def _order(name: str) -> tuple[int, str]:
    base = name.split("[", 1)[0]
    return (_FIELD_ORDER.index(base) if base in _FIELD_ORDER else len(_FIELD_ORDER), name)


def first_difference(a: np.ndarray, b: np.ndarray, rtol: float = 0.0) -> int:
    """Index of the first element where ``a`` and ``b`` differ (-1: none).  NaN equals NaN;
    floats may differ by ``rtol`` relative to the larger magnitude (0 = exactly)."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        a = a.astype(np.float64)
        b = b.astype(np.float64)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        if rtol > 0:
            with np.errstate(invalid="ignore"):
                same |= np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b))
    else:
        same = a == b
    bad = np.flatnonzero(~same)
    return int(bad[0]) if len(bad) else -1


def _relative(a: np.ndarray, b: np.ndarray, i: int) -> float | None:
    if a.dtype.kind != "f" and b.dtype.kind != "f":
        return None
    x, y = float(a[i]), float(b[i])
    if math.isnan(x) or math.isnan(y):
        return math.inf
    scale = max(abs(x), abs(y))
    return abs(x - y) / scale if scale > 0 else 0.0


def _compare(
    ref: dict[str, np.ndarray], other: dict[str, np.ndarray], rtol: float = 0.0
) -> tuple[int, str, float | None] | None:
    """The earliest differing bar over all signal arrays, which array (the first in
    :data:`_FIELD_ORDER` on a tie) and its relative difference there; None when all are
    equal.  Arrays must have equal lengths; entries and exits are always compared exactly,
    an array only one side gives is compared with its neutral value (as the runner fills
    it in)."""
    n = len(ref["entries"])
    best: tuple[int, str, float | None] | None = None
    for name in sorted(set(ref) | set(other), key=_order):
        a = ref.get(name, _neutral(name, n))
        b = other.get(name, _neutral(name, n))
        i = first_difference(a, b, 0.0 if name in ("entries", "exits") else rtol)
        if i >= 0 and (best is None or i < best[0]):
            best = (i, name, _relative(a, b, i))
    return best


def _cut_arrays(arrays: dict[str, np.ndarray], sl: slice) -> dict[str, np.ndarray]:
    return {k: v[sl] for k, v in arrays.items()}


# --------------------------------------------------------------------------- replacement


def _replace_candles(data: MarketData, known_until: int, how: str) -> MarketData:
    first = int(np.searchsorted(data.ts + data.bar_seconds, known_until, side="right"))
    n = len(data)
    if first >= n:
        return data
    sl = slice(first, None)
    o, h, lo, c = (getattr(data, k).copy() for k in ("open", "high", "low", "close"))
    volume = data.volume.copy()
    regime = data.regime.copy()
    if how == "mirror":
        pivot = data.close[first - 1] if first > 0 else data.open[0]
        p2 = pivot * pivot
        o[sl], c[sl] = p2 / data.open[sl], p2 / data.close[sl]
        h[sl], lo[sl] = p2 / data.low[sl], p2 / data.high[sl]
        volume[sl] = data.volume[sl][::-1]
    else:
        f = _GAP[how]
        for arr, src in ((o, data.open), (h, data.high), (lo, data.low), (c, data.close)):
            arr[sl] = src[sl] * f
        volume[sl] = data.volume[sl] * _VOLUME[how]
    regime[sl] = _REGIME[how][np.clip(data.regime[sl], 0, 2)]
    return MarketData(
        symbol=data.symbol, timeframe=data.timeframe, ts=data.ts, open=o, high=h, low=lo,
        close=c, volume=volume, regime=regime,
    )  # fmt: skip


def _shifted(values: np.ndarray, first: int, how: str, step: float) -> np.ndarray:
    out = values.copy()
    if first >= len(values):
        return out
    future = values[first:]
    if how == "mirror":
        ref = values[first - 1] if first > 0 else 0.0
        ref = ref if math.isfinite(ref) else 0.0
        out[first:] = 2.0 * ref - future
    else:
        out[first:] = future + (step if how == "gap_up" else -step)
    return out


def _spread(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return 1.0
    span = float(finite.max() - finite.min())
    return span if span > 0 else max(abs(float(finite[0])), 1.0)


def replace_future(series: Any, known_until: int, how: str) -> Any:
    """A copy of ``series`` in which everything not known at ``known_until`` (epoch
    seconds) is replaced by ``how`` (one of :data:`REPLACEMENTS`); see the module docstring
    for what is known when.  Timestamps and length are kept.  Raises TypeError for a series
    type it cannot replace (better than a check that silently leaves the future in place)."""
    if how not in REPLACEMENTS:
        raise ValueError(f"unknown replacement {how!r}; known: {', '.join(REPLACEMENTS)}")
    if series is None:
        return None
    if isinstance(series, MarketData):
        return _replace_candles(series, known_until, how)
    if isinstance(series, FundingSeries):
        first = int(np.searchsorted(series.ts, known_until, side="right"))
        finite = series.rate[np.isfinite(series.rate)]
        step = max(3.0 * float(finite.std()) if len(finite) else 0.0, 1e-4)
        return FundingSeries(
            symbol=series.symbol, ts=series.ts, rate=_shifted(series.rate, first, how, step)
        )
    if isinstance(series, EnvironmentSeries):
        first = int(np.searchsorted(series.ts, known_until, side="right"))
        metrics = {k: _shifted(v, first, how, 0.5 * _spread(v)) for k, v in series.metrics.items()}
        return EnvironmentSeries(symbol=series.symbol, ts=series.ts, metrics=metrics)
    raise TypeError(
        f"cannot replace the future of a {type(series).__name__}; the checks know MarketData, "
        "FundingSeries and EnvironmentSeries"
    )


def _start_at(series: Any, start_ts: int) -> Any:
    return None if series is None else series.slice_time(start_ts, None)


# --------------------------------------------------------------------------- parameter sets


def sample_param_sets(
    strategy,
    *,
    samples: int = 3,
    seed: int = 0,
    max_warmup: int | None = None,
    bar_seconds: int = 3600,
) -> list[dict]:
    """The defaults plus up to ``samples`` deterministic samples of the parameter space.

    Sample ``j`` takes, for a choice, the ``j + 1``-th choice after the default (so every
    choice comes up), for a bool the opposite of the default on even ``j``, and for a number
    the default times ``exp(u)``, ``u`` uniform in ``[-ln 2, ln 2]`` (a default of zero or
    below: plus a uniform quarter of the range), rounded for ints and clipped to the
    bounds.  Draws that break a constraint, fail validation, repeat an earlier set or need a
    warm-up above ``max_warmup`` are redrawn (a bounded number of times).  Seeded by
    ``seed``: the same strategy gives the same sets every time.
    """
    space = strategy.parameter_space()
    defaults = space.validate_params(space.defaults())
    out = [defaults]
    rng = np.random.default_rng(seed)
    for j in range(samples):
        for _ in range(40):
            raw: dict[str, Any] = {}
            for prm in space:
                d = prm.default
                if prm.kind == "choice":
                    raw[prm.name] = prm.choices[(prm.choices.index(d) + j + 1) % len(prm.choices)]
                elif prm.kind == "bool":
                    raw[prm.name] = (not d) if j % 2 == 0 else bool(d)
                else:
                    u = rng.uniform(-1.0, 1.0)
                    if d > 0:
                        v = d * math.exp(u * math.log(2.0))
                    else:
                        lo = prm.low if prm.low is not None else d - 1.0
                        hi = prm.high if prm.high is not None else d + 1.0
                        v = d + u * 0.25 * (hi - lo)
                    if prm.low is not None:
                        v = max(v, prm.low)
                    if prm.high is not None:
                        v = min(v, prm.high)
                    raw[prm.name] = int(round(v)) if prm.kind == "int" else float(v)
            try:
                p = space.validate_params(raw)
            except ValueError:
                continue
            if space.check_constraints(p) or p in out:
                continue
            if max_warmup is not None and (
                runner.warmup_bars(strategy, p, bar_seconds) > max_warmup
            ):
                continue
            out.append(p)
            break
    return out


# --------------------------------------------------------------------------- the tests


def _spread_bars(lo: int, hi: int, count: int) -> list[int]:
    """``count`` bars spread evenly over the inside of ``[lo, hi]`` (fewer when the range is
    short)."""
    if hi < lo or count <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(lo, hi, count + 2)[1:-1]})


def _decision_bars(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Bars where a parameter set enters or exits."""
    return np.flatnonzero((arrays["entries"] != 0) | arrays["exits"])


def _delta_text(delta: float | None) -> str:
    if delta is None:
        return ""
    if math.isinf(delta):
        return " (one of them NaN)"
    return f" (by {delta:.3g} relative)"


def check_lookahead(
    strategy,
    data: Any,
    companions: Mapping[str, Any] | None,
    param_sets: Sequence[dict],
    *,
    cuts: int = 5,
    costs: Costs | None = None,
    replacements: Sequence[str] = REPLACEMENTS,
) -> Verdict:
    """The future-replacement test (see the module docstring) of validated ``param_sets``.

    One prepared context per cut and replacement serves every parameter set.  For each set
    the signals are compared at bars ``<= k`` first; only when they agree is the equity of
    a full run compared too (a difference there means the simulator was handed something
    else that depends on the future).
    """
    costs = costs or Costs()
    started = time.perf_counter()
    companions = dict(companions or {})
    ctx = strategy.prepare(data, companions or None)
    bars = strategy.bars(ctx)
    n = len(bars)
    ref_sig = [signal_arrays(runner.signals_for(strategy, ctx, p, costs), n) for p in param_sets]
    ref_eq = [strategy.run(ctx, p, costs).equity for p in param_sets]
    lo = min(
        max(runner.warmup_bars(strategy, p, bars.bar_seconds) for p in param_sets),
        max(n - 2, 0),
    )
    cut_bars = set(_spread_bars(lo, n - 2, cuts))
    # Signal-anchored cuts: each set's decision bars in turn, spread over its decisions.
    pools = []
    for arrays in ref_sig:
        idx = _decision_bars(arrays)
        idx = idx[(idx >= lo) & (idx <= n - 2)]
        pools.append([int(idx[i]) for i in _spread_bars(0, len(idx) - 1, cuts)])
    notes = []
    if not any(pools):
        notes.append(
            "no parameter set enters or exits after the warm-up on this data: only the evenly "
            "spread cuts were tested (use longer data or other parameters)"
        )
    anchored = 0
    while anchored < cuts and any(pools):
        for pool in pools:
            if pool and anchored < cuts:
                k = pool.pop(0)
                if k not in cut_bars:
                    cut_bars.add(k)
                    anchored += 1
    findings: list[Finding] = []
    seen: set[tuple[int, int]] = set()
    comparisons = 0
    for k in sorted(cut_bars):
        known_until = int(bars.ts[k]) + bars.bar_seconds
        upto = slice(0, k + 1)
        for how in replacements:
            alt_data = replace_future(data, known_until, how)
            alt_comp = {kind: replace_future(s, known_until, how) for kind, s in companions.items()}
            alt_ctx = strategy.prepare(alt_data, alt_comp or None)
            alt_bars = strategy.bars(alt_ctx)
            if len(alt_bars) != n or not np.array_equal(alt_bars.ts, bars.ts):
                raise ValueError(
                    f"{strategy.key}: replacing what follows bar {k} changed the bars the "
                    "strategy trades (their number or times); the check cannot align them"
                )
            for j, p in enumerate(param_sets):
                if (k, j) in seen:
                    continue  # one finding per cut and parameter set: the first replacement's
                comparisons += 1
                sig = signal_arrays(runner.signals_for(strategy, alt_ctx, p, costs), n)
                diff = _compare(_cut_arrays(ref_sig[j], upto), _cut_arrays(sig, upto))
                if diff is None:
                    eq = strategy.run(alt_ctx, p, costs).equity
                    i = first_difference(ref_eq[j][upto], eq[upto])
                    diff = None if i < 0 else (i, "equity", _relative(ref_eq[j], eq, i))
                if diff is None:
                    continue
                seen.add((k, j))
                bar, what, delta = diff
                message = (
                    f"{what} at bar {bar} ({iso(bars.ts[bar])}) change{_delta_text(delta)} "
                    f"when the bars after bar {k} ({iso(bars.ts[k])}) are replaced ({how}): "
                    "the strategy reads the future"
                )
                findings.append(
                    Finding(
                        test="lookahead", what=what, bar=bar, time=iso(bars.ts[bar]),
                        params=dict(p), cut=k, cut_time=iso(bars.ts[k]), replacement=how,
                        delta=delta, message=message,
                    )
                )  # fmt: skip
    findings.sort(key=lambda f: (f.cut, f.bar))
    cut_tuple = tuple(sorted(cut_bars))
    seconds = time.perf_counter() - started
    if findings:
        first = findings[0]
        return Verdict(
            "lookahead", False, first.message, first, tuple(findings), cut_tuple, comparisons,
            tuple(notes), seconds,
        )  # fmt: skip
    msg = (
        f"no signal or equity at or before the cut changed ({len(cut_bars)} cuts, "
        f"{anchored} of them at decisions, x {len(replacements)} replacements x "
        f"{len(param_sets)} parameter sets)"
    )
    return Verdict("lookahead", True, msg, None, (), cut_tuple, comparisons, tuple(notes), seconds)


def _signals_from(strategy, data, companions, start_ts: int, p: dict, costs, from_ts: int):
    """Signal arrays from bar time ``from_ts`` on, of a run on the data (and companions)
    cut to start at ``start_ts``."""
    cut = {kind: _start_at(s, start_ts) for kind, s in companions.items()}
    ctx = strategy.prepare(_start_at(data, start_ts), cut or None)
    bars = strategy.bars(ctx)
    arrays = signal_arrays(runner.signals_for(strategy, ctx, p, costs), len(bars))
    i = int(np.searchsorted(bars.ts, from_ts, side="left"))
    if i >= len(bars) or bars.ts[i] != from_ts:
        raise ValueError(
            f"{strategy.key}: a run on the data from {iso(start_ts)} has no bar at "
            f"{iso(from_ts)}; the check cannot align the runs"
        )
    return _cut_arrays(arrays, slice(i, None))


def _longer_histories(w: int, long_h: int) -> list[int]:
    """A few histories between the declared warm-up and the long run's, ascending."""
    cands = {2 * w, 3 * w, w + 10, w + 25, w + 50, w + 100, w + 200, 2 * w + 100}
    return sorted(h for h in cands if w < h < long_h)


def check_warmup(
    strategy,
    data: Any,
    companions: Mapping[str, Any] | None,
    param_sets: Sequence[dict],
    *,
    starts: int = 2,
    costs: Costs | None = None,
    rtol: float = 1e-9,
) -> Verdict:
    """The warm-up test (see the module docstring) of validated ``param_sets``.

    Per parameter set: the long history ``L = min(3 w + WARMUP_MARGIN, n // 2)`` bars
    (``w = warmup(p)``; a set with ``L <= w`` is noted and skipped) and ``starts`` start bars
    spread over ``[L, n - 1]``; the first start whose short and long runs disagree gives the
    set's finding.
    """
    costs = costs or Costs()
    started = time.perf_counter()
    companions = dict(companions or {})
    bars = strategy.bars(strategy.prepare(data, companions or None))
    n = len(bars)
    findings: list[Finding] = []
    notes: list[str] = []
    used: set[int] = set()
    comparisons = 0
    for p in param_sets:
        w = runner.warmup_bars(strategy, p, bars.bar_seconds)
        long_h = min(3 * w + WARMUP_MARGIN, n // 2)
        if long_h <= w:
            notes.append(f"warmup {w} of {p} needs more than {2 * w} bars of data, there are {n}")
            continue
        for s in _spread_bars(long_h, n - 1, starts) or [long_h]:
            used.add(s)
            t_s = int(bars.ts[s])
            ref = _signals_from(strategy, data, companions, int(bars.ts[s - long_h]), p, costs, t_s)
            got = _signals_from(strategy, data, companions, int(bars.ts[s - w]), p, costs, t_s)
            if len(ref["entries"]) != len(got["entries"]):
                raise ValueError(
                    f"{strategy.key}: runs starting at different bars give a different number "
                    f"of bars after bar {s}; the check cannot align them"
                )
            comparisons += 1
            diff = _compare(ref, got, rtol)
            if diff is None:
                continue
            off, what, delta = diff
            bar = s + off
            agreed = None
            tried = _longer_histories(w, long_h)
            for h in tried:
                alt = _signals_from(strategy, data, companions, int(bars.ts[s - h]), p, costs, t_s)
                if _compare(ref, alt, rtol) is None:
                    agreed = h
                    break
            hint = (
                f"they agree with {agreed} bars of history"
                if agreed is not None
                else f"they still differ with {max(tried, default=w)} bars of history: the "
                "signals depend on a long or unbounded history (a recursive indicator or a "
                "carried state)"
            )
            message = (
                f"{what} at bar {bar} ({iso(bars.ts[bar])}) differ{_delta_text(delta)} when "
                f"the data starts {w} bars before bar {s} (warmup(p) = {w}) instead of "
                f"{long_h} bars before: the strategy needs more history than it declares "
                f"({hint})"
            )
            findings.append(
                Finding(
                    test="warmup", what=what, bar=bar, time=iso(bars.ts[bar]), params=dict(p),
                    cut=s, cut_time=iso(bars.ts[s]), history=w, long_history=long_h,
                    agreed_with=agreed, delta=delta, message=message,
                )
            )  # fmt: skip
            break  # one finding per parameter set
    findings.sort(key=lambda f: (f.cut, f.bar))
    starts_used = tuple(sorted(used))
    seconds = time.perf_counter() - started
    if findings:
        first = findings[0]
        return Verdict(
            "warmup", False, first.message, first, tuple(findings), starts_used, comparisons,
            tuple(notes), seconds,
        )  # fmt: skip
    if not comparisons:
        msg = "nothing compared: the data is too short for the declared warm-ups"
        return Verdict("warmup", False, msg, None, (), (), 0, tuple(notes), seconds)
    msg = (
        "signals from each start bar on are the same with only the declared warm-up of "
        f"history as with a long one ({comparisons} comparisons)"
    )
    return Verdict("warmup", True, msg, None, (), starts_used, comparisons, tuple(notes), seconds)


def check_strategy(
    strategy,
    data: Any,
    companions: Mapping[str, Any] | None = None,
    *,
    param_sets: Sequence[Mapping[str, Any]] | None = None,
    cuts: int = 5,
    costs=None,
    replacements: Sequence[str] = REPLACEMENTS,
    warmup_starts: int = 2,
    warmup_rtol: float = 1e-9,
) -> StrategyCheck:
    """Run the look-ahead and the warm-up tests on ``data`` (with ``companions`` by kind,
    as ``strategy.prepare`` takes them) and return both verdicts.

    ``param_sets`` default to :func:`sample_param_sets` (defaults + 3 samples whose warm-up
    fits in a quarter of the data); given ones are validated.  ``cuts`` is the number of
    evenly spread cut bars (as many signal-anchored ones are added); ``costs`` defaults to
    ``Costs()``.  Pure and deterministic; raises what the strategy raises.
    """
    started = time.perf_counter()
    space = strategy.parameter_space()
    bars = strategy.bars(strategy.prepare(data, dict(companions or {}) or None))
    n = len(bars)
    if param_sets is None:
        sets = sample_param_sets(strategy, max_warmup=max(n // 4, 1), bar_seconds=bars.bar_seconds)
    else:
        sets = [space.validate_params(p) for p in param_sets]
    if not sets:
        raise ValueError("no parameter sets to check")
    look = check_lookahead(
        strategy, data, companions, sets, cuts=cuts, costs=costs, replacements=replacements
    )
    warm = check_warmup(
        strategy, data, companions, sets, starts=warmup_starts, costs=costs, rtol=warmup_rtol
    )
    return StrategyCheck(
        strategy=strategy.key,
        n_bars=n,
        param_sets=tuple(sets),
        lookahead=look,
        warmup=warm,
        seconds=time.perf_counter() - started,
    )
