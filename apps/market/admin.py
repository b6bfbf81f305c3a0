from django.contrib import admin

from apps.market.models import Dataset


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "symbol", "timeframe", "kind", "source", "start", "end", "rows")
    list_filter = ("symbol", "kind", "timeframe", "source")
    search_fields = ("name", "symbol")
    readonly_fields = ("checksum", "file", "rows", "start", "end", "created_at")
