"""Admin of scheduled sweeps (imported by apps/strategies/admin.py, because a template may
auto-apply its best parameters to production). A template saved here
gets its PeriodicTask (weekly, Sunday 02:00 UTC) if it has none; edit the schedule on the
PeriodicTask (django-celery-beat's admin).

The form checks a template as the API checks a job (strategy, datasets, grid, objective,
costs), so a bad template is refused when it is saved instead of failing at every firing.
Turning auto-apply on needs the strategies.apply_parameters permission, for the person saving
the template and for its owner (whose permission the firing uses)."""

from django import forms
from django.contrib import admin

from apps.optimization.models import JobTemplate, TemplateFiring
from apps.optimization.queue import FIRE_TEMPLATE
from apps.optimization.ranking import DEFAULT_MIN_TRADES
from apps.optimization.services.schedules import template_schedule_ensure
from apps.optimization.services.validation import costs_validate, datasets_validate, grid_validate
from apps.strategies.services.apply import APPLY_PERMISSION, can_apply
from backtestlab.engine.metrics import METRICS
from backtestlab.engine.strategies import STRATEGIES
from backtestlab.errors import ApplicationError


class JobTemplateForm(forms.ModelForm):
    strategy = forms.ChoiceField(choices=[])
    objective = forms.ChoiceField(choices=[], initial="sharpe")
    editor = None  # the user saving the form: JobTemplateAdmin.get_form sets it per request

    class Meta:
        model = JobTemplate
        fields = [
            "name", "strategy", "datasets", "rolling_days", "parameter_grid", "objective",
            "min_trades", "costs", "auto_apply", "min_improvement_pct", "owner", "periodic_task",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["strategy"].choices = [(k, s.label) for k, s in STRATEGIES.items()]
        self.fields["objective"].choices = [
            (name, info.label) for name, info in METRICS.items() if info.objective
        ]
        self.fields["min_trades"].required = False  # left empty: the default

    def clean_min_trades(self):
        value = self.cleaned_data.get("min_trades")
        return DEFAULT_MIN_TRADES if value is None else value

    def _check(self, validate, *args, **kwargs):
        try:
            return validate(*args, **kwargs)
        except ApplicationError as exc:
            field = (exc.field or "").split(".")[0]
            self.add_error(field if field in self.fields else None, exc.message)
            return None

    def clean(self):
        data = super().clean()
        strategy = data.get("strategy")
        if strategy and "datasets" in data:
            ids = [d.id for d in data["datasets"]]
            self._check(datasets_validate, strategy, ids)
        if strategy and "parameter_grid" in data:
            n = max(1, len(data.get("datasets") or []))
            grid = self._check(grid_validate, strategy, data["parameter_grid"],
                               n_datasets=n)  # fmt: skip
            if grid is not None:
                data["parameter_grid"] = grid
        if data.get("costs") is not None:
            costs = self._check(costs_validate, data["costs"])
            if costs is not None:
                data["costs"] = costs
        task = data.get("periodic_task")
        if task is not None and task.task != FIRE_TEMPLATE:
            self.add_error(
                "periodic_task",
                f"this periodic task runs {task.task}, not {FIRE_TEMPLATE}; leave it blank to get "
                "a weekly schedule, then edit its crontab",
            )
        self._auto_apply_check(data)
        return data

    def _auto_apply_check(self, data) -> None:
        if data.get("auto_apply", JobTemplate.AutoApply.OFF) == JobTemplate.AutoApply.OFF:
            return
        if not can_apply(self.editor):
            self.add_error(
                "auto_apply",
                f"auto-apply acts on production parameters: turning it on needs the "
                f"{APPLY_PERMISSION} permission, which you do not have",
            )
        owner = data.get("owner")
        if owner is not None and not can_apply(owner):
            self.add_error(
                "owner",
                f"{owner} lacks the {APPLY_PERMISSION} permission, so every auto-apply would "
                "be refused: pick an owner who has it, or turn auto-apply off",
            )


@admin.register(JobTemplate)
class JobTemplateAdmin(admin.ModelAdmin):
    form = JobTemplateForm
    list_display = ("name", "strategy", "objective", "rolling_days", "auto_apply",
                    "min_improvement_pct", "owner", "periodic_task")  # fmt: skip
    list_filter = ("strategy", "auto_apply")
    filter_horizontal = ("datasets",)
    raw_id_fields = ("periodic_task",)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)  # a new class on every call
        form.editor = request.user
        return form

    def render_change_form(self, request, context, *args, **kwargs):
        response = super().render_change_form(request, context, *args, **kwargs)
        adminform = context.get("adminform")
        if request.method == "POST" and adminform is not None and adminform.form.errors:
            response.status_code = 400  # refused, nothing stored (as the job form)
        return response

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        template_schedule_ensure(form.instance)


@admin.register(TemplateFiring)
class TemplateFiringAdmin(admin.ModelAdmin):
    list_display = ("template", "slot", "job", "apply_status", "error", "created_at")
    list_filter = ("apply_status", "template")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
