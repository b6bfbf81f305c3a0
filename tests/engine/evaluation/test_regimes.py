"""Regime coverage: which of bull / bear / chop the trades' span saw enough of."""

import numpy as np
import pytest

from backtestlab.engine.evaluation.regimes import regime_coverage


def test_regime_coverage_over_the_span():
    ts = np.arange(100)
    regime = np.array([0] * 40 + [1] * 3 + [2] * 57, dtype=np.int8)
    cov = regime_coverage(ts, regime, 0, 99, min_share=0.05)
    assert (cov.bull, cov.bear, cov.chop) == (True, False, True)
    assert cov.shares["bear"] == pytest.approx(0.03)
    assert regime_coverage(ts, regime, 50, 99).bull is False
