"""Market data files in the formats teams already have, read with pandas / pyarrow.

:func:`read_market_file` detects the format, and returns a :class:`ReadResult`: a frame with
``ts`` (epoch seconds, int64) and the value columns of its kind, the kind (``candles`` or
``funding``), the timeframe the timestamps show, and the symbol the file name suggests.

=====================  ========================================================================
format                 how it is recognised
=====================  ========================================================================
CSV / Parquet          a header row; the time column is any of ``ts``, ``timestamp``, ``time``,
                       ``date``, ``datetime``, ``open_time`` (any case, ``_`` optional), or a
                       funding file's ``fundingTime`` / ``calc_time``; prices ``open``, ``high``,
                       ``low``, ``close``, ``volume``; funding rates in ``rate``,
                       ``fundingRate``, ``last_funding_rate`` or ``funding``
Binance klines         a headerless CSV with 12 numeric columns (open time, OHLCV, close time,
                       ...), open times in ms or µs; also inside Binance's monthly ``.zip``
Freqtrade OHLCV        ``<PAIR>-<timeframe>[-futures].feather / .json / .parquet`` with a
                       ``date`` column (JSON: rows of ``[ms, open, high, low, close, volume]``)
Freqtrade funding      ``<PAIR>-<timeframe>-funding_rate.feather / .json / .parquet`` (the rate is
                       its ``open`` column)
=====================  ========================================================================

Times may be epoch seconds, milliseconds, microseconds or nanoseconds (told apart by their
size), datetime columns, or ISO-8601 strings with or without a zone (no zone = UTC).  A bad
value raises :class:`~backtestlab.engine.data.DataError` with its row and column; nothing here
writes anything.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backtestlab.engine.data import DataError, data_error
from backtestlab.engine.timeframes import TIMEFRAME_SECONDS

TIME_COLUMNS = (
    "ts", "timestamp", "time", "date", "datetime", "open_time", "funding_time", "calc_time",
)  # fmt: skip
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
RATE_COLUMNS = ("rate", "funding_rate", "last_funding_rate", "funding")
BINANCE_KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
SUFFIXES = (".csv", ".txt", ".zip", ".parquet", ".feather", ".json")
FREQTRADE_NAME = re.compile(
    r"^(?P<pair>[A-Za-z0-9_]+?)-(?P<timeframe>\d+[smhdwM])"
    r"(?:-(?P<kind>futures|spot|mark|index|premiumIndex|funding_rate))?$"
)
BINANCE_NAME = re.compile(
    r"^(?P<pair>[A-Z0-9]+)-(?P<timeframe>\d+[smhdwM])-\d{4}-\d{2}(?:-\d{2})?$"
)

# Epoch magnitudes: seconds reach 1e10 in the year 2286; milliseconds, microseconds and
# nanoseconds are 1e3, 1e6, 1e9 times larger.
_UNITS = ((1e11, 1), (1e14, 1_000), (1e17, 1_000_000), (float("inf"), 1_000_000_000))


@dataclass(frozen=True)
class ReadResult:
    frame: pd.DataFrame
    kind: str  # "candles" or "funding"
    format: str
    timeframe: str | None
    symbol: str | None


def _key(name: object) -> str:
    return re.sub(r"[\s_\-]", "", str(name)).lower()


def name_hints(path: Path) -> tuple[str | None, str | None, str | None]:
    """(symbol, timeframe, kind) suggested by a Freqtrade or Binance file name."""
    stem = path.name
    for suffix in SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    m = FREQTRADE_NAME.match(stem)
    if m:
        kind = {"funding_rate": "funding", None: "candles", "futures": "candles", "spot": "candles"}
        # mark, index and premium-index prices are not tradable candles: no kind
        return m["pair"].replace("_", "").upper(), m["timeframe"], kind.get(m["kind"])
    m = BINANCE_NAME.match(stem)
    if m:
        return m["pair"], m["timeframe"], "candles"
    return None, None, None


def epoch_seconds(col: pd.Series, column: str = "ts") -> np.ndarray:
    """A time column as int64 epoch seconds (see the module docstring for what it takes)."""
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = pd.to_datetime(col, utc=True)
    elif pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad))
            raise data_error(
                f"{column} {col.iloc[row]!r} is not a timestamp", row=row, column=column
            )
        top = np.abs(values).max() if len(values) else 0.0
        per_second = next(unit for limit, unit in _UNITS if top < limit)
        whole = col.to_numpy().astype(np.int64)
        return whole // per_second
    else:
        parsed = pd.to_datetime(col, utc=True, errors="coerce", format="mixed")
        bad = parsed.isna().to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise data_error(
                f"{col.iloc[row]!r} is not a timestamp; send epoch seconds, milliseconds, "
                "microseconds or ISO-8601",
                row=row,
                column=column,
            )
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


def _common_step(ts: np.ndarray) -> int | None:
    if len(ts) < 2:
        return None
    steps, counts = np.unique(np.diff(ts), return_counts=True)
    return int(steps[np.argmax(counts)])


def step_label(ts: np.ndarray) -> str | None:
    """The most common step between timestamps as a label ("8h", "1h", "15m", "1d")."""
    step = _common_step(ts)
    if not step or step <= 0:
        return None
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if step % seconds == 0:
            return f"{step // seconds}{unit}"
    return None


def infer_timeframe(ts: np.ndarray) -> str | None:
    """The timeframe whose bar length is the most common step between timestamps."""
    step = _common_step(ts)
    for name, seconds in TIMEFRAME_SECONDS.items():
        if seconds == step:
            return name
    return None


def _read_table(path: Path) -> tuple[pd.DataFrame, str]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path), "parquet"
    if suffix == ".feather":
        return pd.read_feather(path), "feather"
    if suffix == ".json":
        frame = pd.read_json(path, orient="values")
        if frame.shape[1] < 6:
            raise data_error(
                f"{path.name}: a Freqtrade JSON file holds rows of "
                "[time, open, high, low, close, volume]"
            )
        frame = frame.iloc[:, :6]
        frame.columns = ["date", *PRICE_COLUMNS]
        return frame, "freqtrade-json"
    if suffix in (".csv", ".txt", ".zip"):
        if suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
            if len(members) != 1:
                raise data_error(f"{path.name}: the zip must hold exactly one CSV file")
        first = pd.read_csv(path, nrows=1, header=None)
        numeric = pd.to_numeric(first.iloc[0], errors="coerce").notna().all()
        if numeric and first.shape[1] == len(BINANCE_KLINE_COLUMNS):
            frame = pd.read_csv(path, header=None, names=list(BINANCE_KLINE_COLUMNS))
            return frame, "binance-klines"
        if numeric:
            raise data_error(
                f"{path.name}: no header row and not a 12-column Binance kline file; add a "
                "header (ts,open,high,low,close,volume)"
            )
        return pd.read_csv(path), "csv"
    raise data_error(
        f"unsupported file type {suffix or '(none)'!r}; send one of {', '.join(SUFFIXES)}"
    )


def read_market_file(path: str | Path, kind: str | None = None) -> ReadResult:
    """Read and normalise one file (``kind``: force ``candles`` or ``funding``)."""
    path = Path(path)
    if not path.exists():
        raise data_error(f"file {str(path)!r} does not exist")
    symbol, name_timeframe, name_kind = name_hints(path)
    try:
        raw, fmt = _read_table(path)
    except DataError:
        raise
    except Exception as exc:  # pandas / pyarrow raise many parser error types
        raise data_error(
            f"cannot read {path.name}: {exc}; send a CSV with a header row "
            "(ts,open,high,low,close,volume), a Parquet, Feather or Freqtrade JSON file, or a "
            "Binance kline CSV/zip"
        ) from None
    by_key = {_key(c): c for c in raw.columns}
    time_col = next((by_key[_key(c)] for c in TIME_COLUMNS if _key(c) in by_key), None)
    if time_col is None:
        raise data_error(
            f"{path.name}: no time column; name it one of {', '.join(TIME_COLUMNS)}",
            column="ts",
        )
    rate_col = next((by_key[_key(c)] for c in RATE_COLUMNS if _key(c) in by_key), None)
    kind = kind or name_kind or ("funding" if rate_col is not None else "candles")
    ts = epoch_seconds(raw[time_col], "ts")
    if kind == "funding":
        if rate_col is None and name_kind == "funding" and "open" in by_key:
            rate_col = by_key["open"]  # Freqtrade keeps the funding rate in "open"
        if rate_col is None:
            raise data_error(
                f"{path.name}: no funding-rate column; name it one of {', '.join(RATE_COLUMNS)}",
                column="rate",
            )
        rate = pd.to_numeric(raw[rate_col], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(rate)
        if bad.any():
            row = int(np.argmax(bad))
            raise data_error(
                f"rate {raw[rate_col].iloc[row]!r} is not a number", row=row, column="rate"
            )
        frame = pd.DataFrame({"ts": ts, "rate": rate})
    else:
        missing = [c for c in PRICE_COLUMNS if c not in by_key]
        if missing:
            raise data_error(
                f"{path.name}: missing column(s) {', '.join(missing)}; candles need "
                f"{', '.join(PRICE_COLUMNS)} and a time column",
                column=missing[0],
            )
        frame = pd.DataFrame({"ts": ts, **{c: raw[by_key[c]] for c in PRICE_COLUMNS}})
        if "regime" in by_key:
            frame["regime"] = raw[by_key["regime"]]
    timeframe = infer_timeframe(frame["ts"].to_numpy()) or name_timeframe
    return ReadResult(frame, kind, fmt, timeframe, symbol)


def freqtrade_files(folder: str | Path) -> list[Path]:
    """The Freqtrade data files of a ``data/<exchange>`` folder (and its ``futures/``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise data_error(f"{str(folder)!r} is not a folder")
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in (".feather", ".json", ".parquet") and name_hints(path)[2]:
            found.append(path)
    if not found:
        raise data_error(
            f"no Freqtrade data files in {str(folder)!r} (<PAIR>-<timeframe>.feather, .json or "
            ".parquet)"
        )
    return found
