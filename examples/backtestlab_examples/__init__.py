"""Example strategies written against BacktestLab's strategy contract (docs/strategies.md)."""
