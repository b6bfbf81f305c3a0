from django.core.management.base import BaseCommand, CommandError

from apps.market.services import candles_import
from backtestlab.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Import OHLCV candles from CSV or Parquet (columns ts,open,high,low,close,volume; "
        "ts in epoch seconds, milliseconds or ISO-8601). A bad file writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--timeframe", required=True)
        parser.add_argument("--name", default=None)
        parser.add_argument("--replace", action="store_true")

    def handle(self, *args, **opts):
        try:
            ds = candles_import(
                path=opts["file"],
                symbol=opts["symbol"],
                timeframe=opts["timeframe"],
                name=opts["name"],
                replace=opts["replace"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"imported {ds.rows} rows as dataset {ds.pk} ({ds.name})")
