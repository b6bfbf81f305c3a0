"""``manage.py import_candles FILE`` / ``--freqtrade-dir DIR``: market data in the formats teams
already have (see ``apps/market/readers.py``): CSV/Parquet with common headers, Binance kline
CSVs and monthly zips, Freqtrade OHLCV and funding-rate files, funding-rate CSVs."""

from django.core.management.base import BaseCommand, CommandError

from apps.market.services import freqtrade_folder_import, market_file_import
from backtestlab.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Import candles or funding rates from CSV, Parquet, Feather, Freqtrade JSON or Binance "
        "kline files (a time column named ts, timestamp, time, date, datetime or open_time; "
        "epoch s/ms/us or ISO-8601), or a whole Freqtrade data/<exchange> folder. The symbol "
        "and timeframe are taken from the file name and timestamps unless given. A bad file "
        "writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="a data file (omit with --freqtrade-dir)")
        parser.add_argument("--freqtrade-dir", help="import every file of this folder")
        parser.add_argument("--symbol", default=None)
        parser.add_argument("--timeframe", default=None)
        parser.add_argument("--kind", choices=["candles", "funding"], default=None)
        parser.add_argument("--name", default=None)
        parser.add_argument("--replace", action="store_true", help="store a new version")

    def handle(self, *args, **opts):
        if bool(opts["file"]) == bool(opts["freqtrade_dir"]):
            raise CommandError("give a FILE or --freqtrade-dir DIR (one of them)")
        try:
            if opts["freqtrade_dir"]:
                datasets = freqtrade_folder_import(opts["freqtrade_dir"], replace=opts["replace"])
            else:
                datasets = [
                    market_file_import(
                        path=opts["file"],
                        symbol=opts["symbol"],
                        timeframe=opts["timeframe"],
                        kind=opts["kind"],
                        name=opts["name"],
                        replace=opts["replace"],
                    )
                ]
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for ds in datasets:
            self.stdout.write(
                f"imported {ds.rows} rows as dataset {ds.pk} ({ds.name}: {ds.kind}, {ds.symbol} "
                f"{ds.timeframe})"
            )
