from django.contrib import admin

from apps.market.models import Dataset


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = (
        "name", "symbol", "timeframe", "kind", "source", "start", "end", "rows", "version", "gaps"
    )  # fmt: skip
    list_filter = ("symbol", "kind", "timeframe", "source")
    search_fields = ("name", "symbol")
    # A stored dataset is never rewritten (runs were computed on it): only its name may change;
    # new data is a new version (manage.py import_candles --replace, the Datasets page).
    readonly_fields = (
        "symbol", "timeframe", "kind", "source", "seed", "checksum", "file", "rows", "start",
        "end", "version", "supersedes", "gaps", "missing_rows", "created_at",
    )  # fmt: skip

    def has_add_permission(self, request) -> bool:
        # Data comes in through an import (the Datasets page, the API or import_candles),
        # which validates the whole file; a hand-made row would have no file.
        return False
