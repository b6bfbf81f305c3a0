from django.core.management.base import BaseCommand, CommandError

from apps.market.services import DEFAULT_TIMEFRAMES, synthetic_universe_create
from backtestlab.engine import synthetic
from backtestlab.errors import ApplicationError


class Command(BaseCommand):
    help = "Generate the seeded synthetic universe (candles, funding, options environment)."

    def add_arguments(self, parser):
        parser.add_argument("--symbols", nargs="+", default=list(synthetic.SYMBOLS))
        parser.add_argument("--days", type=int, default=365, help="1..3650 (default 365)")
        parser.add_argument("--seed", type=int, default=synthetic.DEFAULT_SEED)
        parser.add_argument("--timeframes", nargs="+", default=list(DEFAULT_TIMEFRAMES))
        parser.add_argument(
            "--with-minutes", action="store_true", help="also store the 1-minute candles"
        )

    def handle(self, *args, **opts):
        try:
            datasets = synthetic_universe_create(
                symbols=tuple(opts["symbols"]),
                days=opts["days"],
                seed=opts["seed"],
                timeframes=tuple(opts["timeframes"]),
                with_minutes=opts["with_minutes"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for ds in datasets:
            self.stdout.write(f"{ds.pk:>4}  {ds.name}  ({ds.rows} rows)")
