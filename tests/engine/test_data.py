from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtestlab.engine.data import (
    CANDLE_COLUMNS,
    DataError,
    EnvironmentSeries,
    FundingSeries,
    MarketData,
    validate_candles,
)


def _frame(n=20):
    ts = 1672531200 + np.arange(n) * 3600
    close = 100 + np.arange(n, dtype=float)
    return pd.DataFrame(
        {
            "ts": ts,
            "open": close - 0.5,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": np.ones(n),
        }
    )


def test_valid_frame_and_regime_default():
    df = _frame()
    validate_candles(df)
    md = MarketData.from_frame(df, symbol="BTC", timeframe="1h")
    assert (md.regime == 2).all() and len(md) == 20
    out = md.to_frame()
    assert tuple(out.columns) == CANDLE_COLUMNS
    back = MarketData.from_frame(out, symbol="BTC", timeframe="1h")
    np.testing.assert_array_equal(back.close, md.close)


@pytest.mark.parametrize(
    "mutate,row,column",
    [
        (lambda d: d.drop(columns=["volume"]), None, "volume"),
        (
            lambda d: d.astype({"close": object}).assign(
                close=lambda x: x.close.where(x.index != 17, "abc")
            ),
            17,
            "close",
        ),
        (lambda d: d.assign(open=lambda x: x.open.where(x.index != 3, np.nan)), 3, "open"),
        (lambda d: d.assign(low=lambda x: x.low.where(x.index != 5, -1.0)), 5, "low"),
        (lambda d: d.assign(open=lambda x: x.open.where(x.index != 6, 0.0)), 6, "open"),
        (lambda d: d.assign(high=lambda x: x.high.where(x.index != 8, 50.0)), 8, "high"),
        (lambda d: d.assign(low=lambda x: x.low.where(x.index != 9, x.close + 5)), 9, "low"),
        (lambda d: d.assign(volume=lambda x: x.volume.where(x.index != 11, -2.0)), 11, "volume"),
        (lambda d: d.assign(ts=lambda x: x.ts.where(x.index != 12, x.ts.iloc[11])), 12, "ts"),
        (lambda d: d.assign(ts=lambda x: x.ts.where(x.index != 13, 0)), 13, "ts"),
        (lambda d: d.assign(regime=[0] * 14 + [7] + [0] * 5), 14, "regime"),
    ],
)
def test_validation_errors_name_row_and_column(mutate, row, column):
    df = mutate(_frame())
    with pytest.raises(DataError) as exc:
        validate_candles(df)
    assert exc.value.row == row
    assert exc.value.column == column
    if row is not None:
        assert f"row {row}" in str(exc.value)
    assert column in str(exc.value)


def test_regime_labels_and_datetime_ts():
    df = _frame(3)
    df["regime"] = ["bull", "bear", "chop"]
    df["ts"] = pd.to_datetime(df["ts"], unit="s", utc=True)
    md = MarketData.from_frame(df, symbol="ETH", timeframe="1h")
    np.testing.assert_array_equal(md.regime, [0, 1, 2])
    assert md.ts[0] == 1672531200


def test_slice_time_and_timeframe():
    md = MarketData.from_frame(_frame(), symbol="BTC", timeframe="1h")
    s = md.slice_time(int(md.ts[2]), int(md.ts[5]))
    np.testing.assert_array_equal(s.ts, md.ts[2:5])
    assert len(md.slice_time(None, None)) == 20
    assert len(md.slice_time(int(md.ts[-1]) + 1, None)) == 0
    with pytest.raises(DataError):
        MarketData.from_frame(_frame(), symbol="BTC", timeframe="2h")


def test_series_round_trip():
    f = FundingSeries("BTC", np.array([0, 28800]), np.array([0.0001, -0.00002]))
    g = FundingSeries.from_frame(f.to_frame(), symbol="BTC")
    np.testing.assert_array_equal(g.rate, f.rate)
    e = EnvironmentSeries("BTC", np.array([0, 86400]), {"a": np.array([1.0, 2.0])})
    e2 = EnvironmentSeries.from_frame(e.to_frame(), symbol="BTC")
    np.testing.assert_array_equal(e2.metrics["a"], [1.0, 2.0])
