from django.contrib import admin
from django.db import transaction

from apps.optimization.admin import OptimizationRunAdmin
from apps.optimization.models import OptimizationRun
from apps.strategies.admin_actions import apply_dry_run, apply_to_production
from apps.strategies.models import ParameterChange, StrategyConfig
from apps.strategies.selectors.configs import strategy_config_current
from apps.strategies.services.apply import can_apply


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

    def has_add_permission(self, request):
        # A hand-written version is a production change: same permission as applying.
        return can_apply(request.user)

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        if change:
            super().save_model(request, obj, form, change)
            return
        with transaction.atomic():
            previous = strategy_config_current(obj.strategy, obj.symbol, obj.timeframe, obj.pattern)
            super().save_model(request, obj, form, change)
            ParameterChange.objects.create(
                strategy=obj.strategy, symbol=obj.symbol, timeframe=obj.timeframe,
                pattern=obj.pattern, kind=ParameterChange.Kind.MANUAL,
                from_version=previous.version if previous else 0, to_version=obj.version,
                old_params=previous.params if previous else None, new_params=obj.params,
                config=obj, reason=obj.note, source="admin", user=request.user,
            )  # fmt: skip


# Runs get the apply actions here, in the app that owns production parameters.
admin.site.unregister(OptimizationRun)


@admin.register(OptimizationRun)
class RunAdmin(OptimizationRunAdmin):
    actions = [apply_to_production, apply_dry_run]

    def has_apply_permission(self, request):
        return can_apply(request.user)


# Approval, and the production side (audit log, risk configs, paper trading), have their own
# admin modules.
from apps.strategies import approval_admin, production_admin  # noqa: E402, F401
