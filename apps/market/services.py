"""Writes of market data: synthetic generation and candle import."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.text import slugify

from apps.market.models import Dataset
from apps.market.readers import freqtrade_files, read_market_file, step_label
from apps.market.selectors import dataset_step_seconds
from apps.market.storage import dataset_path, write_parquet
from backtestlab.engine import synthetic
from backtestlab.engine.data import (
    DataError,
    FundingSeries,
    MarketData,
    gap_report,
    validate_candles,
    validate_funding,
)
from backtestlab.engine.price_regimes import regimes_from_prices
from backtestlab.engine.timeframes import TIMEFRAME_SECONDS
from backtestlab.errors import ApplicationError

DEFAULT_TIMEFRAMES = ("1h", "4h", "1d")


def _utc(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ts), tz=dt.UTC)


def _latest_version(name: str) -> Dataset | None:
    """The newest version of the dataset first stored as ``name`` ("name", "name v2", ...)."""
    pattern = rf"^{re.escape(name)} v[0-9]+$"
    return (
        Dataset.objects.filter(Q(name=name) | Q(name__regex=pattern))
        .order_by("-version", "-id")
        .first()
    )


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
    """Write the Parquet file, then the row; if the row cannot be written the file goes too.

    A stored dataset is never rewritten: with ``replace`` an import of a name that exists adds
    a new version (``name vN``, a new row and file superseding the latest one), or returns the
    latest one unchanged when its file is byte-identical.
    """
    if len(frame) == 0:
        raise ApplicationError("the dataset has no rows; send at least one row", field="file")
    if not slugify(symbol) or not slugify(name):
        raise ApplicationError(
            "symbol and name must contain letters or digits (they name the stored file)",
            field="name",
        )
    latest = _latest_version(name)
    if latest and not replace:
        raise ApplicationError(
            f"a dataset named {name!r} exists already; pick another name or pass replace "
            "(which stores a new version and keeps the old one for the jobs that used it)",
            field="name",
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    relative = f"{slugify(symbol)}/{slugify(name)}-{stamp}.parquet"
    checksum = write_parquet(frame, relative)
    if latest and latest.checksum == checksum and latest.kind == kind:
        dataset_path(relative).unlink(missing_ok=True)
        return latest
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
    step = dataset_step_seconds(Dataset(kind=kind, timeframe=timeframe))
    report = gap_report(frame["ts"].to_numpy(), step, shown=0)
    fields.update(gaps=report["gaps"], missing_rows=report["missing_rows"])
    try:
        with transaction.atomic():
            if latest:
                version = latest.version + 1
                dataset = Dataset.objects.create(
                    name=f"{name} v{version}", version=version, supersedes=latest, **fields
                )
            else:
                dataset = Dataset.objects.create(name=name, **fields)
    except BaseException:
        dataset_path(relative).unlink(missing_ok=True)
        raise
    return dataset


def synthetic_universe_create(
    *,
    symbols: tuple[str, ...] = synthetic.SYMBOLS,
    days: int = 365,
    seed: int = synthetic.DEFAULT_SEED,
    timeframes: tuple[str, ...] = DEFAULT_TIMEFRAMES,
    with_minutes: bool = False,
    with_companions: bool = True,
    replace: bool = True,
) -> list[Dataset]:
    """Generate candles (resampled per timeframe), funding and environment for each symbol.

    ``with_minutes`` stores the 1-minute candles too; ``with_companions=False`` leaves out the
    funding and environment series (e.g. a shorter span of minutes for market_state beside a
    longer universe).
    """
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
        if with_companions:
            series.append(
                (
                    "8h",
                    Dataset.Kind.FUNDING,
                    synthetic.synthetic_funding(symbol, days=days, seed=seed),
                )
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


def _import_error(exc: DataError) -> ApplicationError:
    return ApplicationError(str(exc), field="file", extra={"row": exc.row, "column": exc.column})


def _check_symbol(symbol: str | None) -> str:
    symbol = (symbol or "").strip().upper()
    if not symbol or len(symbol) > 20 or not slugify(symbol):
        raise ApplicationError(
            "symbol must be 1 to 20 letters or digits, e.g. BTC or BTCUSDT", field="symbol"
        )
    return symbol


def market_file_import(
    *,
    path: str | Path,
    symbol: str | None = None,
    timeframe: str | None = None,
    kind: str | None = None,
    name: str | None = None,
    replace: bool = False,
) -> Dataset:
    """Import candles or funding rates from any format :mod:`apps.market.readers` knows.

    The symbol and timeframe default to what the file name (Freqtrade, Binance) and the
    timestamps show; given ones win.  The whole file is validated before anything is written.
    Candles without a ``regime`` column are labelled bull / bear / chop from their own prices
    (:mod:`backtestlab.engine.price_regimes`).
    """
    if kind not in (None, Dataset.Kind.CANDLES, Dataset.Kind.FUNDING):
        raise ApplicationError("kind must be candles or funding", field="kind")
    if (
        kind != Dataset.Kind.FUNDING
        and timeframe is not None
        and timeframe not in TIMEFRAME_SECONDS
    ):
        raise ApplicationError(
            f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAME_SECONDS)}",
            field="timeframe",
        )
    try:
        read = read_market_file(path, kind)
    except DataError as exc:
        raise _import_error(exc) from None
    symbol = _check_symbol(symbol or read.symbol)
    if read.kind == Dataset.Kind.FUNDING:  # funding periods are labels, not candle timeframes
        timeframe = (timeframe or step_label(read.frame["ts"].to_numpy()) or "8h")[:8]
    timeframe = timeframe or read.timeframe
    if read.kind == Dataset.Kind.CANDLES and timeframe not in TIMEFRAME_SECONDS:
        raise ApplicationError(
            f"the timeframe could not be inferred from the timestamps (got {timeframe!r}); "
            f"pass one of {', '.join(TIMEFRAME_SECONDS)}",
            field="timeframe",
        )
    frame = read.frame
    stem = Path(path).stem
    if read.kind == Dataset.Kind.FUNDING:
        try:
            data = FundingSeries.from_frame(frame, symbol=symbol)
            validate_funding(data)
        except DataError as exc:
            raise _import_error(exc) from None
        return _store(
            name=name or f"{symbol} funding import {stem}",
            symbol=symbol,
            timeframe=timeframe,
            kind=Dataset.Kind.FUNDING,
            source=Dataset.Source.IMPORT,
            frame=data.to_frame(),
            replace=replace,
        )
    try:
        validate_candles(frame)
        data = MarketData.from_frame(frame, symbol=symbol, timeframe=timeframe)
    except DataError as exc:
        raise _import_error(exc) from None
    if "regime" not in frame.columns:
        data = dataclasses.replace(
            data, regime=regimes_from_prices(data.close, TIMEFRAME_SECONDS[timeframe])
        )
    return _store(
        name=name or f"{symbol} {timeframe} import {stem}",
        symbol=symbol,
        timeframe=timeframe,
        kind=Dataset.Kind.CANDLES,
        source=Dataset.Source.IMPORT,
        frame=data.to_frame(),
        replace=replace,
    )


def candles_import(
    *,
    path: str | Path,
    symbol: str | None = None,
    timeframe: str | None = None,
    name: str | None = None,
    replace: bool = False,
) -> Dataset:
    """Validate a candle file completely, then store it; a bad file writes nothing."""
    return market_file_import(
        path=path, symbol=symbol, timeframe=timeframe, kind=Dataset.Kind.CANDLES, name=name,
        replace=replace,
    )  # fmt: skip


def freqtrade_folder_import(folder: str | Path, *, replace: bool = False) -> list[Dataset]:
    """Every OHLCV and funding-rate file of a Freqtrade ``data/<exchange>`` folder; all files
    are read and validated before the first is stored."""
    try:
        files = freqtrade_files(folder)
    except DataError as exc:
        raise ApplicationError(str(exc), field="folder") from None
    for path in files:  # validate everything first: one bad file writes nothing
        try:
            read_market_file(path)
        except DataError as exc:
            raise ApplicationError(f"{path.name}: {exc}", field="file") from None
    return [market_file_import(path=path, replace=replace) for path in files]


def _check_upload(upload, max_bytes: int, missing: str) -> None:
    if upload is None:
        raise ApplicationError(missing, field="file")
    if upload.size > max_bytes:
        raise ApplicationError(
            f"the file is {upload.size / 2**20:,.1f} MB; the limit is {max_bytes / 2**20:,.0f} "
            "MB (BACKTESTLAB_MAX_UPLOAD_MB); split it, or import it on the server with "
            "manage.py import_candles",
            field="file",
            status=413,
        )


def market_upload_import(
    *,
    upload,
    symbol: str | None = None,
    timeframe: str | None = None,
    kind: str | None = None,
    name: str | None = None,
    max_bytes: int,
) -> Dataset:
    """Import an uploaded file (a Django ``UploadedFile``) like :func:`market_file_import`;
    its original name tells the format (and, for Freqtrade or Binance files, the symbol and
    timeframe).  Larger than ``max_bytes``: refused with 413 before anything is read."""
    _check_upload(upload, max_bytes, "send the data file as the multipart field 'file'")
    safe = Path(upload.name or "upload.csv").name or "upload.csv"
    with tempfile.TemporaryDirectory(prefix="upload-") as folder:
        path = Path(folder) / safe
        with open(path, "wb") as fh:
            for block in upload.chunks():
                fh.write(block)
        return market_file_import(
            path=path, symbol=symbol, timeframe=timeframe, kind=kind, name=name
        )


UPLOAD_TOKEN = re.compile(r"^[0-9a-f]{32}$")


def _upload_dir() -> Path:
    return Path(settings.VAR_DIR) / "uploads"


UPLOAD_KEEP_SECONDS = 24 * 3600


def _forget_old_uploads() -> None:
    """Previewed uploads never confirmed are removed after a day."""
    root = _upload_dir()
    if not root.is_dir():
        return
    cutoff = time.time() - UPLOAD_KEEP_SECONDS
    for folder in root.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


def market_upload_preview(*, upload, max_bytes: int, shown: int = 5) -> dict:
    """Keep an uploaded file aside (under VAR_DIR/uploads) and read it without storing a
    dataset: its format, kind, the symbol and timeframe it suggests, its first and last rows
    and its gap report.  :func:`market_upload_confirm` stores it with the values the operator
    confirmed; a file that cannot be read is removed at once."""
    _check_upload(upload, max_bytes, "choose a data file to upload")
    _forget_old_uploads()
    token = uuid.uuid4().hex
    folder = _upload_dir() / token
    folder.mkdir(parents=True)
    path = folder / (Path(upload.name or "upload.csv").name or "upload.csv")
    with open(path, "wb") as fh:
        for block in upload.chunks():
            fh.write(block)
    try:
        read = read_market_file(path)
    except DataError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise _import_error(exc) from None
    frame = read.frame
    step = TIMEFRAME_SECONDS.get(read.timeframe or "", 8 * 3600)
    rows = pd.concat([frame.head(shown), frame.tail(shown)]) if len(frame) > 2 * shown else frame
    gaps = gap_report(frame["ts"].to_numpy(), step)
    for gap in gaps["first"]:
        gap["after_time"] = _utc(gap["after"]).strftime("%Y-%m-%d %H:%M UTC")
        gap["before_time"] = _utc(gap["before"]).strftime("%Y-%m-%d %H:%M UTC")
    return {
        "token": token,
        "file_name": path.name,
        "format": read.format,
        "kind": read.kind,
        "symbol": read.symbol or "",
        "timeframe": read.timeframe or (step_label(frame["ts"].to_numpy()) or ""),
        "rows": len(frame),
        "columns": list(frame.columns),
        "sample": [
            {
                **{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()},
                "time": _utc(r["ts"]).isoformat(),
            }
            for r in rows.to_dict("records")
        ],  # fmt: skip
        "gaps": gaps,
    }


def market_upload_confirm(
    *, token: str, symbol: str | None, timeframe: str | None, name: str | None = None
) -> Dataset:
    """Store a previewed upload with the confirmed symbol and timeframe, then forget it."""
    if not UPLOAD_TOKEN.match(token or ""):
        raise ApplicationError(
            "the upload expired or is unknown; upload the file again", field="file"
        )
    folder = _upload_dir() / token
    files = list(folder.glob("*")) if folder.is_dir() else []
    if len(files) != 1:
        raise ApplicationError(
            "the upload expired or is unknown; upload the file again", field="file"
        )
    # A refusal leaves the file for another try with other values.
    dataset = market_file_import(
        path=files[0], symbol=symbol or None, timeframe=timeframe or None, name=name or None
    )
    shutil.rmtree(folder, ignore_errors=True)
    return dataset
