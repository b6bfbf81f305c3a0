"""Check a strategy for look-ahead and for a too-short declared warm-up.

manage.py check_strategy sma_cross                  # synthetic data of the right kind
manage.py check_strategy funding_carry --days 120   # 120 days of hourly candles + funding
manage.py check_strategy smc_zones --dataset 7      # a stored dataset and its companions

Without ``--dataset`` the data is the synthetic universe's (``--symbol``, default BTC): hourly
candles, 1-minute candles for a strategy whose ``timeframes`` are ``("1m",)`` (another single
timeframe is resampled to), a daily environment for ``data_kind = "environment"``, and the
companions the strategy declares (funding, daily candles, environment) over the same days.
Default lengths: 90 days of candles, 3 days of minutes, 365 environment days (a shorter
environment gives the options selector no trade to check).

With ``--dataset ID`` the dataset and its companions are loaded as a job on it would see them
(``apps/strategies/services/checks.py``), cut to the last ``--days`` days when given.

The checks are :func:`backtestlab.engine.checks.check_strategy`; the verdict is printed and
a failing check ends the command with an error (non-zero exit status).  ``--rtol`` loosens
the warm-up test's comparison of levels (e.g. ``1e-3`` accepts a Wilder ATR that is 0.1 %
from converged); entries and exits are always compared exactly.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.strategies.services.checks import strategy_check
from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies import STRATEGIES, get_strategy
from backtestlab.engine.synthetic import SYMBOLS
from backtestlab.errors import ApplicationError


class Command(BaseCommand):
    help = "Check a strategy for look-ahead and for a warm-up shorter than it needs."

    def add_arguments(self, parser):
        parser.add_argument("key", help="strategy key, e.g. sma_cross")
        parser.add_argument("--dataset", type=int, help="a stored dataset id (default: synthetic)")
        parser.add_argument("--days", type=int, help="days of data (synthetic: its length)")
        parser.add_argument("--symbol", default="BTC", choices=SYMBOLS, help="synthetic symbol")
        parser.add_argument("--cuts", type=int, default=5, help="evenly spread cut bars")
        parser.add_argument(
            "--rtol",
            type=float,
            default=1e-9,
            help="warm-up: relative difference of levels still taken as equal (default 1e-9)",
        )

    def handle(self, *args, key: str, dataset, days, symbol, cuts, rtol, **options):
        try:
            strategy = get_strategy(key)
        except ParameterError:
            raise CommandError(
                f"unknown strategy {key!r}; known: {', '.join(sorted(STRATEGIES))}"
            ) from None
        if days is not None and days < 1:
            raise CommandError(f"--days must be at least 1, got {days}")
        if cuts < 1:
            raise CommandError(f"--cuts must be at least 1, got {cuts}")
        if not 0 <= rtol < 1:
            raise CommandError(f"--rtol must be in [0, 1), got {rtol}")
        try:
            result, what = strategy_check(
                strategy, dataset_id=dataset, days=days, symbol=symbol, cuts=cuts, rtol=rtol
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"checked {key} on {what}")
        for line in result.lines():
            self.stdout.write(line)
        if not result.passed:
            failed = [v for v in (result.lookahead, result.warmup) if not v.passed]
            raise CommandError(f"{key} failed the {failed[0].test} check: {failed[0].message}")
