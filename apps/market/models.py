from django.db import models


class Dataset(models.Model):
    class Kind(models.TextChoices):
        CANDLES = "candles", "OHLCV candles"
        FUNDING = "funding", "Funding rates"
        ENVIRONMENT = "environment", "Options environment"

    class Source(models.TextChoices):
        SYNTHETIC = "synthetic", "Synthetic"
        IMPORT = "import", "Imported file"

    name = models.CharField(max_length=120, unique=True)
    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=8, help_text="1m, 1h, 4h, 1d; 8h for funding")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CANDLES)
    source = models.CharField(max_length=16, choices=Source.choices)
    seed = models.BigIntegerField(null=True, blank=True)
    start = models.DateTimeField()
    end = models.DateTimeField(help_text="Open time of the last row")
    rows = models.PositiveIntegerField()
    checksum = models.CharField(max_length=64, help_text="sha256 of the Parquet file")
    file = models.CharField(max_length=255, help_text="Path relative to DATASET_DIR")
    # A stored dataset is never rewritten: re-importing it adds version n + 1 (a new row and
    # file) that supersedes it, and jobs keep the version they ran on.
    version = models.PositiveIntegerField(default=1)
    gaps = models.PositiveIntegerField(
        default=0, help_text="Steps between rows longer than the timeframe (missing rows)"
    )
    missing_rows = models.PositiveIntegerField(default=0)
    supersedes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["symbol", "kind", "timeframe", "name"]
        indexes = [
            # dataset pickers filter by symbol + kind + timeframe
            models.Index(fields=["symbol", "kind", "timeframe"], name="dataset_symbol_kind_tf"),
        ]

    def __str__(self) -> str:
        return self.name
