"""The per-dataset context a strategy's signals read: the data, and indicators cached.

``Strategy.prepare`` returns a :class:`Context` unless a strategy needs its own.  Every
indicator is computed once per distinct argument and reused by every parameter set of a sweep
(a 900-combination sma sweep over ten fast and ten slow windows computes twenty SMAs).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np

from . import indicators
from .data import MarketData


class Context:
    """``data`` (:class:`MarketData`), ``companions`` (other series by kind, e.g.
    ``"funding"``), and cached indicators: ``ctx.sma(20)``, ``ctx.ema(12)``, ``ctx.rsi(14)``,
    ``ctx.atr(14)``, ``ctx.rolling_std(20)``, or any function through :meth:`cached`."""

    def __init__(self, data: MarketData, companions: Mapping[str, Any] | None = None):
        self.data = data
        self.companions = dict(companions or {})
        self._cache: dict[Hashable, Any] = {}

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()`` the first time ``key`` is asked for, the stored value afterwards."""
        try:
            return self._cache[key]
        except KeyError:
            value = self._cache[key] = compute()
            return value

    def _series(self, source: str) -> np.ndarray:
        try:
            return getattr(self.data, source)
        except AttributeError:
            raise ValueError(
                f"unknown price series {source!r}; use open, high, low, close or volume"
            ) from None

    def sma(self, window: int, source: str = "close") -> np.ndarray:
        return self.cached(
            ("sma", int(window), source), lambda: indicators.sma(self._series(source), window)
        )

    def ema(self, window: int, source: str = "close") -> np.ndarray:
        return self.cached(
            ("ema", int(window), source), lambda: indicators.ema(self._series(source), window)
        )

    def rsi(self, window: int) -> np.ndarray:
        return self.cached(("rsi", int(window)), lambda: indicators.rsi(self.data.close, window))

    def atr(self, window: int) -> np.ndarray:
        d = self.data
        return self.cached(
            ("atr", int(window)), lambda: indicators.atr(d.high, d.low, d.close, window)
        )

    def rolling_std(self, window: int, source: str = "close") -> np.ndarray:
        return self.cached(
            ("std", int(window), source),
            lambda: indicators.rolling_std(self._series(source), window),
        )
