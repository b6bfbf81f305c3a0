"""Market-data containers and candle validation.

All timestamps are ``int64`` epoch seconds (UTC).  Candle timestamps are the bar OPEN time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .timeframes import TIMEFRAME_SECONDS

REGIME_LABELS: tuple[str, ...] = ("bull", "bear", "chop")
REGIME_CHOP = 2
CANDLE_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume", "regime")
_PRICE_COLUMNS = ("open", "high", "low", "close")
_REQUIRED_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


class DataError(ValueError):
    """A problem in imported market data.

    Attributes
    ----------
    row : int or None
        0-based position of the offending row in the input (not the index label).
    column : str or None
        Offending column name.
    message : str
        Human-readable description (already includes row/column when known).
    """

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None):
        self.row = row
        self.column = column
        self.message = message
        super().__init__(message)


def _where(row: int | None, column: str | None) -> str:
    parts = []
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column '{column}'")
    return ", ".join(parts)


def _fail(message: str, *, row: int | None = None, column: str | None = None) -> DataError:
    where = _where(row, column)
    return DataError(f"{where}: {message}" if where else message, row=row, column=column)


def _check_increasing(ts: np.ndarray) -> None:
    """Strictly increasing timestamps; duplicates and unsorted rows are reported separately."""
    if len(ts) < 2:
        return
    d = np.diff(ts)
    if (d == 0).any():
        row = int(np.argmax(d == 0)) + 1
        raise _fail(f"duplicate timestamp {ts[row]}", row=row, column="ts")
    if (d < 0).any():
        row = int(np.argmax(d < 0)) + 1
        raise _fail(
            f"timestamps are not sorted ({ts[row]} comes after {ts[row - 1]})",
            row=row,
            column="ts",
        )


def data_error(message: str, *, row: int | None = None, column: str | None = None) -> DataError:
    """A :class:`DataError` whose message starts with where it is ("row 3, column 'ts': ...")."""
    return _fail(message, row=row, column=column)


def _ts_to_seconds(series: pd.Series) -> np.ndarray:
    """Convert a timestamp column to int64 epoch seconds, raising DataError on bad cells."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if series.isna().any():
            raise _fail(
                "missing timestamp", row=int(np.argmax(series.isna().to_numpy())), column="ts"
            )
        s = series
        if getattr(s.dt, "tz", None) is None:
            s = s.dt.tz_localize("UTC")
        # Datetime resolution varies across pandas versions (ns/us/s); go through int64 ns.
        ns = s.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64").to_numpy()
        return ns // 1_000_000_000
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise _fail(f"timestamp is not a number: {series.iloc[row]!r}", row=row, column="ts")
    frac = values != np.floor(values)
    if frac.any():
        row = int(np.argmax(frac))
        raise _fail(f"timestamp must be whole seconds, got {values[row]!r}", row=row, column="ts")
    return values.astype(np.int64)


def _regime_codes(series: pd.Series) -> np.ndarray:
    """Accept regime as int codes 0..2 or labels bull/bear/chop."""
    out = np.empty(len(series), dtype=np.int8)
    lookup = {label: code for code, label in enumerate(REGIME_LABELS)}
    raw = series.to_numpy(dtype=object)
    for i, v in enumerate(raw):
        if isinstance(v, str):
            key = v.strip().lower()
            if key in lookup:
                out[i] = lookup[key]
                continue
            try:
                v = float(key)
            except ValueError:
                raise _fail(
                    f"regime must be 0/1/2 or one of {', '.join(REGIME_LABELS)}, got {v!r}",
                    row=i,
                    column="regime",
                ) from None
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = np.nan
        if not np.isfinite(f) or f not in (0.0, 1.0, 2.0):
            raise _fail(
                f"regime must be 0/1/2 or one of {', '.join(REGIME_LABELS)}, got {v!r}",
                row=i,
                column="regime",
            )
        out[i] = int(f)
    return out


def _numeric_column(df: pd.DataFrame, col: str) -> np.ndarray:
    series = df[col]
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    missing = series.isna().to_numpy()
    non_numeric = np.isnan(values) & ~missing
    if non_numeric.any():
        row = int(np.argmax(non_numeric))
        raise _fail(f"not a number: {series.iloc[row]!r}", row=row, column=col)
    if missing.any():
        raise _fail("missing value (NaN)", row=int(np.argmax(missing)), column=col)
    inf = ~np.isfinite(values)
    if inf.any():
        raise _fail("value is infinite", row=int(np.argmax(inf)), column=col)
    return values


def _parse_candles(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Validate and convert a candle frame; the single source of truth for both
    :func:`validate_candles` and :meth:`MarketData.from_frame`."""
    if not isinstance(df, pd.DataFrame):
        raise DataError("expected a pandas DataFrame")
    missing = [c for c in _REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"missing column(s): {', '.join(missing)} (required: {', '.join(_REQUIRED_COLUMNS)})",
            column=missing[0],
        )
    out: dict[str, np.ndarray] = {"ts": _ts_to_seconds(df["ts"])}
    for col in (*_PRICE_COLUMNS, "volume"):
        out[col] = _numeric_column(df, col)
    for col in _PRICE_COLUMNS:
        bad = out[col] <= 0
        if bad.any():
            row = int(np.argmax(bad))
            raise _fail(f"price must be positive, got {out[col][row]!r}", row=row, column=col)
    o, h, lo, c = out["open"], out["high"], out["low"], out["close"]
    bad = h < np.maximum(o, c)
    if bad.any():
        row = int(np.argmax(bad))
        raise _fail(
            f"high {h[row]!r} is below max(open, close) = {max(o[row], c[row])!r}",
            row=row,
            column="high",
        )
    bad = lo > np.minimum(o, c)
    if bad.any():
        row = int(np.argmax(bad))
        raise _fail(
            f"low {lo[row]!r} is above min(open, close) = {min(o[row], c[row])!r}",
            row=row,
            column="low",
        )
    bad = out["volume"] < 0
    if bad.any():
        row = int(np.argmax(bad))
        raise _fail(f"volume must be >= 0, got {out['volume'][row]!r}", row=row, column="volume")
    _check_increasing(out["ts"])
    if "regime" in df.columns:
        out["regime"] = _regime_codes(df["regime"])
    else:
        out["regime"] = np.full(len(out["ts"]), REGIME_CHOP, dtype=np.int8)
    return out


def validate_candles(df: pd.DataFrame) -> None:
    """Check a candle frame and raise :class:`DataError` on the first problem.

    Checks, in this order: required columns (``regime`` is optional and defaults to chop),
    timestamps numeric/whole seconds (datetime64 columns are accepted), numeric prices and
    volume without NaN/inf, prices > 0, ``high >= max(open, close)``,
    ``low <= min(open, close)``, volume >= 0, strictly increasing timestamps (duplicates and
    unsorted rows are reported separately), regime codes in 0..2 or labels.

    Row numbers in messages are 0-based positions in the frame (``"row 17"``).
    """
    _parse_candles(df)


def gap_report(ts: np.ndarray, step_seconds: int, *, shown: int = 20) -> dict:
    """Where a series misses rows: each step between consecutive timestamps longer than
    ``step_seconds`` is a gap of ``step / step_seconds - 1`` missing rows.  Returns the counts
    and the first ``shown`` gaps (times as epoch seconds)."""
    ts = np.asarray(ts, dtype=np.int64)
    d = np.diff(ts)
    at = np.flatnonzero(d > step_seconds)
    missing = (d[at] + step_seconds - 1) // step_seconds - 1
    return {
        "step_seconds": int(step_seconds),
        "gaps": len(at),
        "missing_rows": int(missing.sum()),
        "first": [
            {"after": int(ts[i]), "before": int(ts[i + 1]), "missing_rows": int(k)}
            for i, k in zip(at[:shown], missing[:shown], strict=True)
        ],
    }


MAX_FUNDING_RATE = 0.05  # per period; beyond this the file is in percent or broken


def validate_funding(series: FundingSeries) -> None:
    """Check funding rates: strictly increasing times (duplicates and unsorted rows reported
    separately) and finite rates within +-5 % per period (fractions: 0.0001 = 0.01 %)."""
    ts, rate = series.ts, series.rate
    if len(ts) == 0:
        raise _fail("the file has no rows")
    _check_increasing(ts)
    bad = ~np.isfinite(rate) | (np.abs(rate) > MAX_FUNDING_RATE)
    if bad.any():
        row = int(np.argmax(bad))
        raise _fail(
            f"funding rate {rate[row]!r} is not a fraction per period within "
            f"+-{MAX_FUNDING_RATE} (0.0001 = 0.01 %); is the file in percent?",
            row=row,
            column="rate",
        )


def _time_slice(ts: np.ndarray, start_ts: int | None, end_ts: int | None) -> slice:
    """The index range of ``start_ts <= ts < end_ts`` in sorted ``ts`` (None = open bound)."""
    lo = 0 if start_ts is None else int(np.searchsorted(ts, start_ts, side="left"))
    hi = len(ts) if end_ts is None else int(np.searchsorted(ts, end_ts, side="left"))
    return slice(lo, max(hi, lo))


def _f64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class MarketData:
    """OHLCV candles of one symbol and timeframe.

    Attributes
    ----------
    ts : ndarray[int64]
        Bar OPEN times, epoch seconds UTC, strictly increasing.
    open, high, low, close : ndarray[float64]
        Prices in quote currency.
    volume : ndarray[float64]
        Base-currency volume per bar.
    regime : ndarray[int8]
        0 bull, 1 bear, 2 chop (see ``REGIME_LABELS``).
    """

    symbol: str
    timeframe: str
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    regime: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.timeframe not in TIMEFRAME_SECONDS:
            raise DataError(
                f"unknown timeframe {self.timeframe!r}; known: {', '.join(TIMEFRAME_SECONDS)}"
            )
        set_ = object.__setattr__
        set_(self, "ts", np.ascontiguousarray(self.ts, dtype=np.int64))
        for name in ("open", "high", "low", "close", "volume"):
            set_(self, name, _f64(getattr(self, name)))
        n = len(self.ts)
        if self.regime is None:
            set_(self, "regime", np.full(n, REGIME_CHOP, dtype=np.int8))
        else:
            set_(self, "regime", np.ascontiguousarray(self.regime, dtype=np.int8))
        for name in CANDLE_COLUMNS[1:]:
            if len(getattr(self, name)) != n:
                raise DataError(f"column '{name}' has length {len(getattr(self, name))}, not {n}")

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def bar_seconds(self) -> int:
        """Bar length in seconds."""
        return TIMEFRAME_SECONDS[self.timeframe]

    def slice_time(self, start_ts: int | None, end_ts: int | None) -> MarketData:
        """Bars with ``start_ts <= ts < end_ts`` (either bound may be None = open)."""
        return self._take(_time_slice(self.ts, start_ts, end_ts))

    def _take(self, sl: slice) -> MarketData:
        return MarketData(
            symbol=self.symbol,
            timeframe=self.timeframe,
            ts=self.ts[sl],
            open=self.open[sl],
            high=self.high[sl],
            low=self.low[sl],
            close=self.close[sl],
            volume=self.volume[sl],
            regime=self.regime[sl],
        )

    def to_frame(self) -> pd.DataFrame:
        """DataFrame with columns ``CANDLE_COLUMNS``."""
        return pd.DataFrame({name: getattr(self, name) for name in CANDLE_COLUMNS})

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, symbol: str, timeframe: str) -> MarketData:
        """Build from a frame, validating it first (raises :class:`DataError`)."""
        cols = _parse_candles(df)
        return cls(symbol=symbol, timeframe=timeframe, **cols)


@dataclass(frozen=True, eq=False)
class FundingSeries:
    """Perpetual-swap funding rates.

    Attributes
    ----------
    ts : ndarray[int64]
        Funding times, epoch seconds UTC.
    rate : ndarray[float64]
        Rate per 8-hour period as a fraction (0.0001 = 0.01 %).
    """

    symbol: str
    ts: np.ndarray
    rate: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", np.ascontiguousarray(self.ts, dtype=np.int64))
        object.__setattr__(self, "rate", _f64(self.rate))
        if len(self.ts) != len(self.rate):
            raise DataError("ts and rate lengths differ")

    def __len__(self) -> int:
        return len(self.ts)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"ts": self.ts, "rate": self.rate})

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, symbol: str) -> FundingSeries:
        for col in ("ts", "rate"):
            if col not in df.columns:
                raise DataError(f"missing column: {col}", column=col)
        return cls(symbol=symbol, ts=_ts_to_seconds(df["ts"]), rate=_numeric_column(df, "rate"))

    def slice_time(self, start_ts: int | None, end_ts: int | None) -> FundingSeries:
        """Rows with ``start_ts <= ts < end_ts`` (either bound may be None = open)."""
        sl = _time_slice(self.ts, start_ts, end_ts)
        return FundingSeries(symbol=self.symbol, ts=self.ts[sl], rate=self.rate[sl])


@dataclass(frozen=True, eq=False)
class EnvironmentSeries:
    """Daily market-environment metrics (see ``synthetic.ENVIRONMENT_METRICS``).

    Attributes
    ----------
    ts : ndarray[int64]
        Day open times, epoch seconds UTC.
    metrics : dict[str, ndarray[float64]]
        One array per metric key, aligned with ``ts``.
    """

    symbol: str
    ts: np.ndarray
    metrics: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", np.ascontiguousarray(self.ts, dtype=np.int64))
        metrics = {k: _f64(v) for k, v in self.metrics.items()}
        for k, v in metrics.items():
            if len(v) != len(self.ts):
                raise DataError(f"metric '{k}' has length {len(v)}, not {len(self.ts)}")
        object.__setattr__(self, "metrics", metrics)

    def __len__(self) -> int:
        return len(self.ts)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"ts": self.ts, **self.metrics})

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, symbol: str) -> EnvironmentSeries:
        if "ts" not in df.columns:
            raise DataError("missing column: ts", column="ts")
        metrics = {str(c): _numeric_column(df, c) for c in df.columns if c != "ts"}
        return cls(symbol=symbol, ts=_ts_to_seconds(df["ts"]), metrics=metrics)

    def slice_time(self, start_ts: int | None, end_ts: int | None) -> EnvironmentSeries:
        """Rows with ``start_ts <= ts < end_ts`` (either bound may be None = open)."""
        sl = _time_slice(self.ts, start_ts, end_ts)
        return EnvironmentSeries(
            symbol=self.symbol, ts=self.ts[sl], metrics={k: v[sl] for k, v in self.metrics.items()}
        )
