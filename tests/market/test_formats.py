"""Market data in the formats teams already have: each format from a small file written here,
read to the same candles; each refusal names what to send instead and writes nothing."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from apps.market.models import Dataset
from apps.market.selectors import dataset_market_data
from backtestlab.engine.data import REGIME_LABELS
from backtestlab.engine.price_regimes import regimes_from_prices

pytestmark = pytest.mark.django_db

START = 1_704_067_200  # 2024-01-01 00:00 UTC
N = 96


@pytest.fixture(autouse=True)
def private_dataset_dir(settings, tmp_path):
    settings.DATASET_DIR = tmp_path / "datasets"


def ohlcv(n=N, step=3600, seed=3):
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {
            "ts": START + step * np.arange(n, dtype=np.int64),
            "open": open_,
            "high": np.maximum(open_, close) + 0.5,
            "low": np.minimum(open_, close) - 0.5,
            "close": close,
            "volume": rng.uniform(1, 10, n),
        }
    )


def imported(*args, **kwargs) -> Dataset:
    before = set(Dataset.objects.values_list("id", flat=True))
    call_command("import_candles", *args, **kwargs)
    (new,) = Dataset.objects.exclude(id__in=before)
    return new


def assert_same_candles(ds: Dataset, frame: pd.DataFrame, step=3600):
    data = dataset_market_data(ds)
    np.testing.assert_array_equal(data.ts, START + step * np.arange(len(frame)))
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(getattr(data, col), frame[col].to_numpy(), rtol=0, atol=1e-9)


def nothing_written():
    root = Path(settings.DATASET_DIR)
    return Dataset.objects.count() == 0 and (not root.exists() or not any(root.rglob("*.parquet")))


def test_a_timestamp_csv_with_iso_times_and_a_zone(tmp_path):
    frame = ohlcv()
    out = frame.drop(columns="ts")
    out.insert(
        0,
        "Timestamp",
        pd.to_datetime(frame["ts"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
    )
    path = tmp_path / "export.csv"
    out.to_csv(path, index=False)
    ds = imported(str(path), symbol="btc")
    assert (ds.symbol, ds.timeframe, ds.kind) == ("BTC", "1h", "candles")  # timeframe inferred
    assert_same_candles(ds, frame)


@pytest.mark.parametrize("unit, factor", [("s", 1), ("ms", 1_000), ("us", 1_000_000)])
def test_epoch_times_in_seconds_milliseconds_or_microseconds(tmp_path, unit, factor):
    frame = ohlcv()
    out = frame.rename(columns={"ts": "time"}).assign(time=frame["ts"] * factor)
    path = tmp_path / f"epoch_{unit}.csv"
    out.to_csv(path, index=False)
    ds = imported(str(path), symbol="ETH", timeframe="1h")
    assert_same_candles(ds, frame)


def binance_rows(frame: pd.DataFrame, factor: int) -> pd.DataFrame:
    t = frame["ts"] * factor
    return pd.DataFrame(
        [t, frame.open, frame.high, frame.low, frame.close, frame.volume, t + 3599 * factor,
         frame.volume * frame.close, np.full(len(frame), 42), frame.volume / 2,
         frame.volume * frame.close / 2, np.zeros(len(frame))]
    ).T  # fmt: skip


def test_a_binance_monthly_zip_with_microsecond_open_times(tmp_path):
    frame = ohlcv()
    csv = binance_rows(frame, 1_000_000).to_csv(index=False, header=False)
    path = tmp_path / "BTCUSDT-1h-2024-01.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("BTCUSDT-1h-2024-01.csv", csv)
    ds = imported(str(path))
    assert (ds.symbol, ds.timeframe) == ("BTCUSDT", "1h")  # from the file name and timestamps
    assert_same_candles(ds, frame)


def test_a_binance_csv_with_millisecond_open_times(tmp_path):
    frame = ohlcv(step=4 * 3600)
    path = tmp_path / "ETHUSDT-4h-2024-01.csv"
    binance_rows(frame, 1_000).to_csv(path, index=False, header=False)
    ds = imported(str(path))
    assert (ds.symbol, ds.timeframe) == ("ETHUSDT", "4h")
    assert_same_candles(ds, frame, step=4 * 3600)


def freqtrade_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.drop(columns="ts")
    out.insert(0, "date", pd.to_datetime(frame["ts"], unit="s", utc=True))
    return out


def test_freqtrade_feather_json_and_parquet_files(tmp_path):
    frame = ohlcv()
    freqtrade_frame(frame).to_feather(tmp_path / "BTC_USDT-1h.feather")
    rows = [[int(t) * 1000, o, h, lo, c, v] for t, o, h, lo, c, v in frame.itertuples(index=False)]
    (tmp_path / "ETH_USDT-1h.json").write_text(json.dumps(rows))
    freqtrade_frame(frame).to_parquet(tmp_path / "SOL_USDT-1h-futures.parquet")
    for name, symbol in [("BTC_USDT-1h.feather", "BTCUSDT"), ("ETH_USDT-1h.json", "ETHUSDT"),
                         ("SOL_USDT-1h-futures.parquet", "SOLUSDT")]:  # fmt: skip
        ds = imported(str(tmp_path / name))
        assert (ds.symbol, ds.timeframe, ds.kind) == (symbol, "1h", "candles")
        assert_same_candles(ds, frame)


def funding_frame(n=30):
    rng = np.random.default_rng(5)
    return pd.DataFrame(
        {"ts": START + 8 * 3600 * np.arange(n, dtype=np.int64), "rate": rng.normal(1e-4, 5e-5, n)}
    )


def test_funding_rates_from_a_freqtrade_file_and_a_binance_style_csv(tmp_path):
    fr = funding_frame()
    ft = pd.DataFrame(
        {"date": pd.to_datetime(fr["ts"], unit="s", utc=True), "open": fr["rate"],
         "high": fr["rate"], "low": fr["rate"], "close": fr["rate"], "volume": 0.0}
    )  # fmt: skip
    ft.to_feather(tmp_path / "BTC_USDT_USDT-8h-funding_rate.feather")
    ds = imported(str(tmp_path / "BTC_USDT_USDT-8h-funding_rate.feather"))
    assert (ds.symbol, ds.timeframe, ds.kind) == ("BTCUSDTUSDT", "8h", "funding")
    series = dataset_market_data(ds)
    np.testing.assert_array_equal(series.ts, fr["ts"])
    np.testing.assert_allclose(series.rate, fr["rate"], rtol=0, atol=1e-15)
    csv = tmp_path / "funding.csv"
    pd.DataFrame({"fundingTime": fr["ts"] * 1000, "fundingRate": fr["rate"]}).to_csv(
        csv, index=False
    )
    ds = imported(str(csv), symbol="ETH")
    assert (ds.symbol, ds.timeframe, ds.kind) == ("ETH", "8h", "funding")
    np.testing.assert_allclose(dataset_market_data(ds).rate, fr["rate"], rtol=0, atol=1e-15)


def test_a_whole_freqtrade_folder_in_one_command(tmp_path):
    folder = tmp_path / "data" / "binance"
    (folder / "futures").mkdir(parents=True)
    frame = ohlcv()
    freqtrade_frame(frame).to_feather(folder / "BTC_USDT-1h.feather")
    freqtrade_frame(ohlcv(step=86400)).to_feather(folder / "BTC_USDT-1d.feather")
    freqtrade_frame(frame).to_feather(folder / "futures" / "BTC_USDT_USDT-1h-mark.feather")
    fr = funding_frame()
    pd.DataFrame(
        {"date": pd.to_datetime(fr["ts"], unit="s", utc=True), "open": fr["rate"]}
    ).to_feather(folder / "futures" / "BTC_USDT_USDT-8h-funding_rate.feather")
    call_command("import_candles", freqtrade_dir=str(folder))
    got = sorted(Dataset.objects.values_list("symbol", "timeframe", "kind"))
    assert got == [
        ("BTCUSDT", "1d", "candles"),
        ("BTCUSDT", "1h", "candles"),
        ("BTCUSDTUSDT", "8h", "funding"),
    ]  # fmt: skip  (mark prices are skipped)


def test_imported_candles_get_regimes_from_their_own_prices(tmp_path):
    n = 24 * 150
    t = np.arange(n)
    close = 100 * np.exp(
        0.3 * np.sin(t / (24 * 20)) + np.random.default_rng(1).normal(0, 0.002, n).cumsum()
    )
    frame = pd.DataFrame(
        {"ts": START + 3600 * t, "open": np.r_[close[0], close[:-1]], "close": close, "volume": 1.0}
    )
    frame["high"] = frame[["open", "close"]].max(axis=1)
    frame["low"] = frame[["open", "close"]].min(axis=1)
    path = tmp_path / "waves.csv"
    frame.to_csv(path, index=False)
    data = dataset_market_data(imported(str(path), symbol="BTC"))
    shares = np.bincount(data.regime, minlength=3) / n
    assert all(share > 0.1 for share in shares), dict(zip(REGIME_LABELS, shares, strict=True))
    np.testing.assert_array_equal(data.regime, regimes_from_prices(close, 3600))
    # No look-ahead: labels up to a bar do not change when the later prices do.
    k = n // 2
    other = np.r_[close[: k + 1], close[k + 1 :][::-1]]
    np.testing.assert_array_equal(regimes_from_prices(other, 3600)[: k + 1], data.regime[: k + 1])


@pytest.mark.parametrize(
    "name, content, kwargs, message",
    [
        ("x.csv", "1,2,3\n4,5,6\n", {"symbol": "BTC"}, "no header row and not a 12-column Binance"),
        ("x.csv", "when,open,high,low,close,volume\n1,1,1,1,1,1\n", {"symbol": "BTC"},
         "no time column; name it one of ts, timestamp"),
        ("x.csv", "ts,open,high,low,close\n1704067200,1,1,1,1\n", {"symbol": "BTC"},
         "missing column(s) volume"),
        ("x.csv", "ts,rate\n1704067200,0.0001\n1704096000,1.5\n", {"symbol": "BTC"},
         "is the file in percent"),
        ("x.csv", "ts,open,high,low,close,volume\n1704067200,1,1,1,1,1\n1704067200,1,1,1,1,1\n",
         {"symbol": "BTC", "timeframe": "1h"}, "duplicate timestamp"),
        ("x.csv", "ts,open,high,low,close,volume\n1704067200,1,1,1,1,1\n1704070800,1,1,1,1,1\n",
         {"symbol": "???"}, "symbol must be 1 to 20 letters or digits"),
        ("x.csv", "ts,open,high,low,close,volume\n1704067200,1,1,1,1,1\n1704067777,1,1,1,1,1\n",
         {"symbol": "BTC"}, "the timeframe could not be inferred"),
        ("x.xlsx", "nope", {"symbol": "BTC"}, "unsupported file type '.xlsx'"),
        ("x.csv", "ts,open,high,low,close,volume\nyesterday,1,1,1,1,1\n", {"symbol": "BTC"},
         "row 0, column 'ts': 'yesterday' is not a timestamp"),
    ],
)  # fmt: skip
def test_a_bad_file_is_refused_with_what_to_send_and_writes_nothing(
    tmp_path, name, content, kwargs, message
):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CommandError) as err:
        call_command("import_candles", str(path), **kwargs)
    assert message in str(err.value), str(err.value)
    assert nothing_written()


def test_a_zip_must_hold_one_csv(tmp_path):
    path = tmp_path / "BTCUSDT-1h-2024-01.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "1")
        archive.writestr("b.csv", "2")
    with pytest.raises(CommandError, match="the zip must hold exactly one CSV file"):
        call_command("import_candles", str(path))
    assert nothing_written()
