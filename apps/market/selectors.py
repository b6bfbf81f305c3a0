"""Reads of market data."""

from __future__ import annotations

import pandas as pd

from apps.market.models import Dataset
from apps.market.storage import dataset_path, file_sha256, frame_cache
from backtestlab.engine.data import EnvironmentSeries, FundingSeries, MarketData, gap_report
from backtestlab.engine.timeframes import TIMEFRAME_SECONDS
from backtestlab.errors import ApplicationError
from backtestlab.inputs import whole_number


def dataset_market_data(dataset: Dataset) -> MarketData | FundingSeries | EnvironmentSeries:
    """The dataset as engine arrays, loaded once per process (keyed by its checksum)."""

    def load():
        path = dataset_path(dataset.file)
        if not path.exists():
            raise ApplicationError(
                f"dataset {dataset.id} ({dataset.name}, version {dataset.version}): its file "
                f"{dataset.file} is missing, so what was computed on it cannot be recomputed; "
                "restore the file or re-import the data as a new version",
                status=409,
            )
        if file_sha256(path) != dataset.checksum:
            raise ApplicationError(
                f"dataset {dataset.id} ({dataset.name}, version {dataset.version}): its file "
                f"changed since it was stored (checksum {dataset.checksum[:12]}... expected), "
                "so what was computed on it cannot be recomputed; restore the file or "
                "re-import the data as a new version",
                status=409,
            )
        frame = pd.read_parquet(path)
        if dataset.kind == Dataset.Kind.FUNDING:
            return FundingSeries.from_frame(frame, symbol=dataset.symbol)
        if dataset.kind == Dataset.Kind.ENVIRONMENT:
            return EnvironmentSeries.from_frame(frame, symbol=dataset.symbol)
        return MarketData.from_frame(frame, symbol=dataset.symbol, timeframe=dataset.timeframe)

    return frame_cache.get_or_load(f"data:{dataset.checksum}", load)


def dataset_companion(dataset: Dataset, kind: str) -> Dataset | None:
    """The ``kind`` series (funding, environment) that goes with a candle dataset.

    Same symbol; a dataset from the same source and seed first (the synthetic universe's own
    funding for its own candles), then the one covering most of the candles' span, then daily
    ones (candles for a daily environment: 1d holds all the options selector reads).
    """
    candidates = list(Dataset.objects.filter(symbol=dataset.symbol, kind=kind))
    if not candidates:
        return None

    def rank(other: Dataset):
        same_origin = other.source == dataset.source and other.seed == dataset.seed
        overlap = min(other.end, dataset.end) - max(other.start, dataset.start)
        return (same_origin, overlap.total_seconds(), other.timeframe == "1d", other.id)

    return max(candidates, key=rank)


def dataset_step_seconds(dataset: Dataset) -> int:
    """Seconds between consecutive rows the dataset should have (its timeframe or period)."""
    if dataset.kind == Dataset.Kind.ENVIRONMENT:
        return 86400
    if dataset.timeframe in TIMEFRAME_SECONDS:
        return TIMEFRAME_SECONDS[dataset.timeframe]
    number, unit = whole_number(dataset.timeframe[:-1]), dataset.timeframe[-1:]
    seconds = {"m": 60, "h": 3600, "d": 86400}.get(unit)
    return number * seconds if number and seconds else 8 * 3600


def dataset_gaps(dataset: Dataset) -> dict:
    """The dataset's gap report (missing rows between its timestamps)."""
    return gap_report(dataset_market_data(dataset).ts, dataset_step_seconds(dataset))
