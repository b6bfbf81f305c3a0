"""Walk-forward optimisation (seed 003: train 70 %, test 30 %, roll forward, n_splits).

Windows (bar indexes, end exclusive) over ``L`` bars with ``n`` splits and the ratio
``q = train_frac / test_frac``: every test window has ``t = floor(L / (n + q))`` bars and the
test windows tile the end of the data back to back.

* rolling - fold ``k`` trains on ``[k t, k t + r)`` with ``r = L - n t`` (about ``q t``) and
  tests on the next ``t`` bars;
* anchored - the train window always starts at bar 0 and grows by ``t`` per fold.

Each fold optimises on its train window (``strategy.run_many`` over the whole grid, the best
combination by the objective, NaN never best, ties to the lowest grid index) and evaluates
that combination on the following test window (``strategy.run``).  Indicators restart at each
window's first bar (no data from outside the window is used, so the warm-up is part of the
window).  The walk-forward efficiency is ``mean(OOS objective) / mean(IS objective)`` over
the folds (NaN when the IS mean is not positive).  ``total_return_pct`` grows with the window
length, so for it both sides are first divided by their window's length in years.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..metrics import METRIC_NAMES, METRICS, compute_row
from .sensitivity import neighbourhood_scores

WINDOW_MODES = ("rolling", "anchored")
_YEAR = 365.25 * 86400.0


def walk_forward_windows(
    n_bars: int, *, n_splits: int = 5, train_frac: float = 0.7, test_frac: float = 0.3,
    anchored: bool = False,
) -> list[tuple[tuple[int, int], tuple[int, int]]]:  # fmt: skip
    """``[((train_lo, train_hi), (test_lo, test_hi)), ...]`` for each fold (see module)."""
    if isinstance(n_splits, bool) or int(n_splits) != n_splits or not 1 <= n_splits <= 50:
        raise ValueError(f"n_splits must be an integer 1..50, got {n_splits!r}")
    for name, v in (("train_frac", train_frac), ("test_frac", test_frac)):
        if not (isinstance(v, int | float) and 0 < v < 1):
            raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {v!r}")
    if abs(train_frac + test_frac - 1) > 1e-9:
        raise ValueError(f"train_frac + test_frac must be 1, got {train_frac + test_frac:g}")
    t = int(n_bars // (n_splits + train_frac / test_frac))
    r = n_bars - n_splits * t
    if t < 2 or r < 2:
        raise ValueError(
            f"{n_bars} bars are too few for {n_splits} walk-forward splits; "
            "use fewer splits or more data"
        )
    folds = []
    for k in range(n_splits):
        test_lo = r + k * t
        train_lo = 0 if anchored else k * t
        folds.append(((train_lo, test_lo), (test_lo, test_lo + t)))
    return folds


PICKS = ("objective", "robust")


def best_row(
    matrix: np.ndarray,
    objective: str,
    *,
    min_trades: int = 0,
    pick: str = "objective",
    grid: Mapping[str, Sequence] | None = None,
    allowed: np.ndarray | None = None,
) -> int:
    """Index of the best row by ``objective``, -1 if no row may be ranked.

    A row may be ranked when its objective is defined (NaN never is; an unbounded ratio
    ``+inf`` ranks above every finite value) and it has at least ``min_trades`` trades.
    ``pick="objective"``: the best objective (ties: lowest index).  ``pick="robust"``: the
    best neighbourhood on ``grid`` (the matrix rows are the grid in sweep order) - the best
    worst, then mean, then own objective over the row and its one-step neighbours
    (:func:`~backtestlab.engine.evaluation.sensitivity.neighbourhood_scores`).  ``allowed``
    (bool per row) marks the combinations that keep the strategy's constraints; the others
    were not run (their rows are NaN) and are no one's neighbours."""
    if pick not in PICKS:
        raise ValueError(f"pick must be one of {', '.join(PICKS)}, got {pick!r}")
    col = matrix[:, METRIC_NAMES.index(objective)]
    higher = METRICS[objective].higher_is_better
    signed = col if higher else -col
    rankable = ~np.isnan(signed) & (matrix[:, METRIC_NAMES.index("n_trades")] >= min_trades)
    if not rankable.any():
        return -1
    if pick == "objective":
        return int(np.argmax(np.where(rankable, signed, -np.inf)))
    if grid is None:
        raise ValueError("a robust pick needs the grid the rows were swept from")
    worst, mean = neighbourhood_scores(
        grid, np.where(rankable, col, np.nan), higher_is_better=higher, exists=allowed
    )
    sign = 1.0 if higher else -1.0
    rows = np.flatnonzero(rankable)
    order = np.lexsort((rows, -signed[rows], -sign * mean[rows], -sign * worst[rows]))
    return int(rows[order[0]])


def _slice_series(series, lo_ts: int, hi_ts: int | None):
    return series.slice_time(lo_ts, hi_ts)


def _window(data, companions, lo: int, hi: int):
    lo_ts = int(data.ts[lo])
    hi_ts = int(data.ts[hi]) if hi < len(data) else None
    part = _slice_series(data, lo_ts, hi_ts)
    comps = {k: _slice_series(v, lo_ts, hi_ts) for k, v in (companions or {}).items()}
    return part, comps or None


def _years(data) -> float:
    if len(data) == 0:
        return math.nan
    return (int(data.ts[-1]) - int(data.ts[0]) + data_bar_seconds(data)) / _YEAR


def data_bar_seconds(data) -> int:
    return int(getattr(data, "bar_seconds", 86400))


@dataclass(frozen=True)
class FoldResult:
    index: int
    train: tuple[int, int]  # (first ts, last ts) of the window
    test: tuple[int, int]
    params: dict | None
    grid_index: int
    is_value: float
    oos_value: float
    is_metrics: dict
    oos_metrics: dict
    train_years: float
    test_years: float

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _clean(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def run_fold(
    strategy, data, companions, param_list: Sequence[dict], costs, *, objective: str,
    fold: tuple[tuple[int, int], tuple[int, int]], index: int = 0, min_trades: int = 0,
    pick: str = "objective", grid: Mapping[str, Sequence] | None = None,
    allowed: np.ndarray | None = None,
) -> FoldResult:  # fmt: skip
    """Optimise on the fold's train window, evaluate the winner on its test window (the
    winner: :func:`best_row` with ``min_trades``, ``pick`` and ``grid``).  ``allowed`` (bool
    per parameter set) leaves out the sets that break the strategy's constraints: they are
    not run."""
    (tr_lo, tr_hi), (te_lo, te_hi) = fold
    train, train_c = _window(data, companions, tr_lo, tr_hi)
    test, test_c = _window(data, companions, te_lo, te_hi)
    k = METRIC_NAMES.index(objective)
    ctx = strategy.prepare(train, train_c)
    if allowed is None:
        matrix = strategy.run_many(ctx, param_list, costs)
    else:
        allowed = np.asarray(allowed, dtype=bool)
        rows = np.flatnonzero(allowed)
        matrix = np.full((len(param_list), len(METRIC_NAMES)), math.nan)
        if rows.size:
            matrix[rows] = strategy.run_many(ctx, [param_list[r] for r in rows], costs)
    best = best_row(matrix, objective, min_trades=min_trades, pick=pick, grid=grid, allowed=allowed)
    nan = math.nan
    if best < 0:
        is_row = np.full(len(METRIC_NAMES), nan)
        oos_row = np.full(len(METRIC_NAMES), nan)
        params = None
    else:
        params = dict(param_list[best])
        is_row = matrix[best]
        oos_row = compute_row(strategy.run(strategy.prepare(test, test_c), params, costs))
    return FoldResult(
        index=index,
        train=(int(train.ts[0]), int(train.ts[-1])),
        test=(int(test.ts[0]), int(test.ts[-1])),
        params=params,
        grid_index=best,
        is_value=float(is_row[k]),
        oos_value=float(oos_row[k]),
        is_metrics={n: _clean(v) for n, v in zip(METRIC_NAMES, is_row, strict=True)},
        oos_metrics={n: _clean(v) for n, v in zip(METRIC_NAMES, oos_row, strict=True)},
        train_years=_years(train),
        test_years=_years(test),
    )


def _fold_get(f, name):
    return f[name] if isinstance(f, Mapping) else getattr(f, name)


def walk_forward_efficiency(folds: Sequence, objective: str) -> dict:
    """WFE and per-fold pass counts from fold results (objects or their dicts)."""
    is_v, oos_v = [], []
    for f in folds:
        a, b = _fold_get(f, "is_value"), _fold_get(f, "oos_value")
        a = math.nan if a is None else float(a)
        b = math.nan if b is None else float(b)
        if objective == "total_return_pct":
            a /= _fold_get(f, "train_years") or math.nan
            b /= _fold_get(f, "test_years") or math.nan
        is_v.append(a)
        oos_v.append(b)
    is_a = np.array(is_v, dtype=np.float64)
    oos_a = np.array(oos_v, dtype=np.float64)
    ok = np.isfinite(is_a) & np.isfinite(oos_a)
    is_mean = float(is_a[ok].mean()) if ok.any() else math.nan
    oos_mean = float(oos_a[ok].mean()) if ok.any() else math.nan
    wfe = oos_mean / is_mean if ok.any() and is_mean > 0 else math.nan
    positive = int((oos_a[np.isfinite(oos_a)] > 0).sum())
    return {
        "objective": objective,
        "is_mean": is_mean,
        "oos_mean": oos_mean,
        "wfe": wfe,
        "folds": len(folds),
        "folds_scored": int(ok.sum()),
        "oos_positive_folds": positive,
        "oos_positive_share": positive / len(folds) if folds else math.nan,
    }


@dataclass(frozen=True)
class WalkForwardResult:
    folds: tuple[FoldResult, ...]
    summary: dict
    mode: str

    def as_dict(self) -> dict:
        return {
            "mode": self.mode,
            "folds": [f.as_dict() for f in self.folds],
            "summary": self.summary,
        }


def walk_forward(
    strategy, data, param_list: Sequence[dict], costs, *, objective: str = "sharpe",
    companions: Mapping | None = None, n_splits: int = 5, train_frac: float = 0.7,
    test_frac: float = 0.3, anchored: bool = False, min_trades: int = 0,
    pick: str = "objective", grid: Mapping[str, Sequence] | None = None,
) -> WalkForwardResult:  # fmt: skip
    """Every fold of :func:`walk_forward_windows` through :func:`run_fold`, and the WFE."""
    if objective not in METRICS or not METRICS[objective].objective:
        raise ValueError(f"unknown objective {objective!r}")
    windows = walk_forward_windows(
        len(data), n_splits=n_splits, train_frac=train_frac, test_frac=test_frac,
        anchored=anchored,
    )  # fmt: skip
    folds = tuple(
        run_fold(
            strategy,
            data,
            companions,
            param_list,
            costs,
            objective=objective,
            fold=w,
            index=k,
            min_trades=min_trades,
            pick=pick,
            grid=grid,
        )  # fmt: skip
        for k, w in enumerate(windows)
    )
    return WalkForwardResult(
        folds=folds,
        summary=walk_forward_efficiency(folds, objective),
        mode="anchored" if anchored else "rolling",
    )
