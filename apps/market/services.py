"""Writes of market data: synthetic generation and candle import."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from django.db import transaction
from django.utils.text import slugify

from apps.market.models import Dataset
from apps.market.storage import dataset_path, write_parquet
from backtestlab.engine import synthetic
from backtestlab.engine.data import DataError, MarketData, validate_candles
from backtestlab.engine.timeframes import TIMEFRAME_SECONDS
from backtestlab.errors import ApplicationError

DEFAULT_TIMEFRAMES = ("1h", "4h", "1d")


def _utc(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ts), tz=dt.UTC)


def _store(
    *,
    name: str,
    symbol: str,
    timeframe: str,
    kind: str,
    source: str,
    frame: pd.DataFrame,
    seed: int | None = None,
    replace: bool = False,
) -> Dataset:
    """Write the Parquet file, then the row; if the row cannot be written the file goes too."""
    if len(frame) == 0:
        raise ApplicationError("the dataset has no rows; send at least one row", field="file")
    existing = Dataset.objects.filter(name=name).first()
    if existing and not replace:
        raise ApplicationError(
            f"a dataset named {name!r} exists already; pick another name or pass replace",
            field="name",
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    relative = f"{slugify(symbol)}/{slugify(name)}-{stamp}.parquet"
    checksum = write_parquet(frame, relative)
    fields = dict(
        symbol=symbol,
        timeframe=timeframe,
        kind=kind,
        source=source,
        seed=seed,
        start=_utc(frame["ts"].iloc[0]),
        end=_utc(frame["ts"].iloc[-1]),
        rows=len(frame),
        checksum=checksum,
        file=relative,
    )
    try:
        with transaction.atomic():
            if existing:
                old_file = existing.file
                Dataset.objects.filter(pk=existing.pk).update(**fields)
                existing.refresh_from_db()
                dataset = existing
            else:
                dataset = Dataset.objects.create(name=name, **fields)
    except BaseException:
        dataset_path(relative).unlink(missing_ok=True)
        raise
    if existing and old_file != relative:
        dataset_path(old_file).unlink(missing_ok=True)
    return dataset


def synthetic_universe_create(
    *,
    symbols: tuple[str, ...] = synthetic.SYMBOLS,
    days: int = 365,
    seed: int = synthetic.DEFAULT_SEED,
    timeframes: tuple[str, ...] = DEFAULT_TIMEFRAMES,
    with_minutes: bool = False,
    replace: bool = True,
) -> list[Dataset]:
    """Generate candles (resampled per timeframe), funding and environment for each symbol."""
    if not 1 <= days <= 3650:
        raise ApplicationError(f"days must be between 1 and 3650, got {days}", field="days")
    unknown = [s for s in symbols if s not in synthetic.SYMBOLS]
    if unknown:
        raise ApplicationError(
            f"unknown symbol {unknown[0]!r}; "
            f"the synthetic universe has {', '.join(synthetic.SYMBOLS)}",
            field="symbols",
        )
    bad_tf = [t for t in timeframes if t not in TIMEFRAME_SECONDS]
    if bad_tf:
        raise ApplicationError(
            f"unknown timeframe {bad_tf[0]!r}; use one of {', '.join(TIMEFRAME_SECONDS)}",
            field="timeframes",
        )
    created = []
    for symbol in symbols:
        minutes = synthetic.synthetic_candles(symbol, days=days, seed=seed)
        series = [("1m", Dataset.Kind.CANDLES, minutes)] if with_minutes else []
        series += [
            (tf, Dataset.Kind.CANDLES, synthetic.resample(minutes, tf))
            for tf in timeframes
            if tf != "1m"
        ]
        series.append(
            ("8h", Dataset.Kind.FUNDING, synthetic.synthetic_funding(symbol, days=days, seed=seed))
        )
        series.append(
            (
                "1d",
                Dataset.Kind.ENVIRONMENT,
                synthetic.synthetic_environment(symbol, days=days, seed=seed),
            )
        )
        for timeframe, kind, data in series:
            label = timeframe if kind == Dataset.Kind.CANDLES else kind
            created.append(
                _store(
                    name=f"{symbol} {label} synthetic {days}d seed{seed}",
                    symbol=symbol,
                    timeframe=timeframe,
                    kind=kind,
                    source=Dataset.Source.SYNTHETIC,
                    frame=data.to_frame(),
                    seed=seed,
                    replace=replace,
                )
            )
    return created


def _read_candle_file(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in {".csv", ".txt"}:
            return pd.read_csv(path)
    except FileNotFoundError:
        raise ApplicationError(f"file {str(path)!r} does not exist", field="file") from None
    except Exception as exc:  # pandas/pyarrow raise many parser error types
        raise ApplicationError(
            f"cannot read {path.name}: {exc}; send a CSV with a header row "
            "ts,open,high,low,close,volume or a Parquet file with those columns",
            field="file",
        ) from None
    raise ApplicationError(
        f"unsupported file type {suffix or '(none)'!r}; send a .csv or .parquet file", field="file"
    )


def _normalise_ts(frame: pd.DataFrame) -> pd.DataFrame:
    """Accept epoch seconds, epoch milliseconds or ISO-8601 strings in the ``ts`` column."""
    if "ts" not in frame.columns:
        return frame
    col = frame["ts"]
    if pd.api.types.is_numeric_dtype(col):
        if col.notna().all() and len(col) and col.abs().max() > 10**11:
            frame = frame.assign(ts=col // 1000)
        return frame
    parsed = pd.to_datetime(col, utc=True, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise ApplicationError(
            f"row {row}, column ts: {col.iloc[row]!r} is not a timestamp; "
            "send epoch seconds, epoch milliseconds or ISO-8601",
            field="file",
            extra={"row": row, "column": "ts"},
        )
    seconds = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return frame.assign(ts=seconds.astype("int64"))


def candles_import(
    *, path: str | Path, symbol: str, timeframe: str, name: str | None = None, replace: bool = False
) -> Dataset:
    """Validate a CSV/Parquet candle file completely, then store it; a bad file writes nothing."""
    if timeframe not in TIMEFRAME_SECONDS:
        raise ApplicationError(
            f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAME_SECONDS)}",
            field="timeframe",
        )
    symbol = symbol.strip().upper()
    if not symbol or len(symbol) > 20:
        raise ApplicationError("symbol must be 1 to 20 characters, e.g. BTC", field="symbol")
    path = Path(path)
    frame = _normalise_ts(_read_candle_file(path))
    try:
        validate_candles(frame)
    except DataError as exc:
        raise ApplicationError(
            str(exc), field="file", extra={"row": exc.row, "column": exc.column}
        ) from None
    data = MarketData.from_frame(frame, symbol=symbol, timeframe=timeframe)
    return _store(
        name=name or f"{symbol} {timeframe} import {path.stem}",
        symbol=symbol,
        timeframe=timeframe,
        kind=Dataset.Kind.CANDLES,
        source=Dataset.Source.IMPORT,
        frame=data.to_frame(),
        replace=replace,
    )
