from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from apps.optimization.admin import OptimizationRunAdmin
from apps.optimization.models import OptimizationRun
from apps.strategies.admin_actions import apply_dry_run, apply_to_production
from apps.strategies.models import StrategyConfig
from apps.strategies.services.apply import can_apply, strategy_config_add, strategy_params_validate
from backtestlab.engine.strategies import STRATEGIES
from backtestlab.errors import ApplicationError

ADD_FIELDS = ("strategy", "symbol", "timeframe", "pattern", "params", "note")
PARAMS_HELP = 'JSON object, e.g. {"fast": 10, "slow": 60}; missing parameters take their defaults'


class StrategyConfigForm(forms.ModelForm):
    """Hand-written production parameters: a known strategy and a valid parameter set; the
    version number and the author are not typed in but set by the service."""

    strategy = forms.ChoiceField(choices=[])

    class Meta:
        model = StrategyConfig
        fields = ADD_FIELDS
        help_texts = {"params": PARAMS_HELP}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["strategy"].choices = [(k, s.label) for k, s in STRATEGIES.items()]

    def clean(self):
        data = super().clean()
        if data.get("strategy") and "params" in data:
            try:
                data["params"] = strategy_params_validate(data["strategy"], data["params"])
            except ApplicationError as exc:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data


@admin.register(StrategyConfig)
class StrategyConfigAdmin(admin.ModelAdmin):
    """Versions are written by the services (apply, restore, and the add form here, which needs
    the same permission as applying); a version is never edited or deleted: that would rewrite
    production's history without an audit row. Roll back with a restore."""

    form = StrategyConfigForm
    list_display = ("strategy", "symbol", "timeframe", "pattern", "version", "created_by",
                    "created_at", "note")  # fmt: skip
    list_filter = ("strategy", "symbol", "timeframe", "pattern")
    search_fields = ("strategy", "symbol", "note")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ADD_FIELDS
        return [f.name for f in StrategyConfig._meta.fields if f.name != "id"]

    def has_add_permission(self, request):
        # A hand-written version is a production change: same permission as applying.
        return can_apply(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changeform_view(self, request, *args, **kwargs):
        try:
            return super().changeform_view(request, *args, **kwargs)
        except ApplicationError as exc:  # a version written meanwhile (409): nothing stored
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.path)

    def save_model(self, request, obj, form, change):
        config = strategy_config_add(
            strategy=obj.strategy, symbol=obj.symbol, timeframe=obj.timeframe,
            pattern=obj.pattern, params=obj.params, note=obj.note, user=request.user,
            source="admin",
        )  # fmt: skip
        obj.pk, obj.version, obj.created_by = config.pk, config.version, config.created_by
        obj.created_at = config.created_at


# Runs get the apply actions here, in the app that owns production parameters.
admin.site.unregister(OptimizationRun)


@admin.register(OptimizationRun)
class RunAdmin(OptimizationRunAdmin):
    actions = [apply_to_production, apply_dry_run]

    def has_apply_permission(self, request):
        return can_apply(request.user)


# Approval, the production side (audit log, risk configs, paper trading) and scheduled sweeps
# (their templates may auto-apply) have their own admin modules.
from apps.strategies import approval_admin, production_admin, template_admin  # noqa: E402, F401
