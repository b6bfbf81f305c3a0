from django.contrib import admin

from apps.strategies.models import StrategyConfig


@admin.register(StrategyConfig)
class StrategyConfigAdmin(admin.ModelAdmin):
    """Read-mostly: versions are written by the apply service; editing one would rewrite
    history, so existing rows cannot be changed here."""

    list_display = ("strategy", "symbol", "timeframe", "pattern", "version", "created_by",
                    "created_at", "note")  # fmt: skip
    list_filter = ("strategy", "symbol", "timeframe", "pattern")
    search_fields = ("strategy", "symbol", "note")
    readonly_fields = ("created_at",)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return [f.name for f in StrategyConfig._meta.fields]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


# Approval (issue 6): its admin classes live in their own module.
from apps.strategies import approval_admin  # noqa: E402, F401
