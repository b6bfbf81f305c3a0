"""Reads of market data."""

from __future__ import annotations

import pandas as pd

from apps.market.models import Dataset
from apps.market.storage import dataset_path, frame_cache
from backtestlab.engine.data import EnvironmentSeries, FundingSeries, MarketData


def dataset_market_data(dataset: Dataset) -> MarketData | FundingSeries | EnvironmentSeries:
    """The dataset as engine arrays, loaded once per process (keyed by its checksum)."""

    def load():
        frame = pd.read_parquet(dataset_path(dataset.file))
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
