"""import_candles: good files land as datasets; bad files name the row and column, write nothing."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from apps.market.models import Dataset
from apps.market.selectors import dataset_market_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_dataset_dir(settings, tmp_path):
    """Each test gets an empty DATASET_DIR, so "nothing written" can be checked on disk."""
    settings.DATASET_DIR = tmp_path / "datasets"


def candles(n=48, start=1_700_000_000, step=3600):
    rng = np.random.default_rng(7)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {
            "ts": start + step * np.arange(n),
            "open": open_,
            "high": np.maximum(open_, close) + 0.5,
            "low": np.minimum(open_, close) - 0.5,
            "close": close,
            "volume": rng.uniform(1, 10, n),
        }
    )


def files_in_dataset_dir() -> list[Path]:
    root = Path(settings.DATASET_DIR)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_good_csv_becomes_a_dataset(tmp_path):
    frame = candles()
    path = tmp_path / "btc.csv"
    frame.to_csv(path, index=False)
    call_command("import_candles", str(path), symbol="btc", timeframe="1h")
    ds = Dataset.objects.get()
    assert (ds.symbol, ds.timeframe, ds.rows, ds.source) == ("BTC", "1h", 48, "import")
    data = dataset_market_data(ds)
    assert np.allclose(data.close, frame["close"].to_numpy(), rtol=1e-12)
    assert data.ts[0] == 1_700_000_000 and ds.start.timestamp() == 1_700_000_000


def test_parquet_with_iso_timestamps_and_milliseconds_are_accepted(tmp_path):
    frame = candles()
    iso = frame.assign(ts=pd.to_datetime(frame["ts"], unit="s", utc=True).astype(str))
    iso.to_parquet(tmp_path / "iso.parquet")
    call_command("import_candles", str(tmp_path / "iso.parquet"), symbol="ETH", timeframe="1h")
    ms = frame.assign(ts=frame["ts"] * 1000)
    ms.to_csv(tmp_path / "ms.csv", index=False)
    call_command("import_candles", str(tmp_path / "ms.csv"), symbol="ETH", timeframe="1h")
    a, b = (dataset_market_data(d) for d in Dataset.objects.order_by("id"))
    assert np.array_equal(a.ts, b.ts) and a.ts[0] == 1_700_000_000


def _break(frame, kind):
    frame = frame.copy()
    if kind == "missing column":
        return frame.drop(columns=["volume"]), "volume", None
    if kind == "unsorted":
        frame.loc[10, "ts"], frame.loc[11, "ts"] = frame.loc[11, "ts"], frame.loc[10, "ts"]
        return frame, "ts", 11
    if kind == "duplicate":
        frame.loc[20, "ts"] = frame.loc[19, "ts"]
        return frame, "ts", 20
    if kind == "nan price":
        frame.loc[17, "close"] = np.nan
        return frame, "close", 17
    if kind == "negative price":
        frame.loc[5, "low"] = -1.0
        return frame, "low", 5
    if kind == "text price":
        frame["open"] = frame["open"].astype(object)
        frame.loc[3, "open"] = "abc"
        return frame, "open", 3
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["missing column", "unsorted", "duplicate", "nan price", "negative price", "text price"]
)
def test_a_bad_file_names_the_row_and_column_and_writes_nothing(tmp_path, kind):
    frame, column, row = _break(candles(), kind)
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(CommandError) as err:
        call_command("import_candles", str(path), symbol="BTC", timeframe="1h")
    message = str(err.value)
    assert column in message
    if row is not None:
        assert f"row {row}" in message
    assert Dataset.objects.count() == 0
    assert files_in_dataset_dir() == []


def test_a_malformed_or_missing_file_is_explained(tmp_path):
    path = tmp_path / "junk.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(CommandError, match="cannot read junk.parquet"):
        call_command("import_candles", str(path), symbol="BTC", timeframe="1h")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_candles", str(tmp_path / "nope.csv"), symbol="BTC", timeframe="1h")
    with pytest.raises(CommandError, match="unknown timeframe"):
        call_command("import_candles", str(path), symbol="BTC", timeframe="7m")
    assert Dataset.objects.count() == 0


def test_make_synthetic_is_deterministic_per_seed(tmp_path):
    call_command("make_synthetic", days=20, seed=5, symbols=["BTC"], timeframes=["1h"])
    first = dict(Dataset.objects.values_list("name", "checksum"))
    call_command("make_synthetic", days=20, seed=5, symbols=["BTC"], timeframes=["1h"])
    assert dict(Dataset.objects.values_list("name", "checksum")) == first
    assert set(first) == {
        "BTC 1h synthetic 20d seed5",
        "BTC funding synthetic 20d seed5",
        "BTC environment synthetic 20d seed5",
    }
    assert len(files_in_dataset_dir()) == 3  # replaced files leave nothing behind
    call_command("make_synthetic", days=20, seed=6, symbols=["BTC"], timeframes=["1h"])
    other = Dataset.objects.get(name="BTC 1h synthetic 20d seed6")
    assert other.checksum != first["BTC 1h synthetic 20d seed5"]
    with pytest.raises(CommandError, match="between 1 and 3650"):
        call_command("make_synthetic", days=0)
