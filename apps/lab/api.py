"""REST API of the synthetic environment tools (synthetic universe only; no trades, no exchange).

``POST /api/environment_heatmap``, ``POST /api/selector_scan``, ``POST /api/selector_heatmap``
and ``GET /api/environment_metrics``. Parsing is strict: a bool or a string is not a number,
NaN, Infinity and 1e309 are rejected, unknown fields get a "did you mean". Every failure has
the project's one error shape, ``{"ok": false, "error": "<field> ...", "field": "<field>"}``.
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.lab import synthetic_tools
from backtestlab.api import first_message
from backtestlab.engine.options_selector_rules import SELECTOR_RULES
from backtestlab.engine.parameters import Param, ParameterError, did_you_mean
from backtestlab.engine.synthetic import ENVIRONMENT_METRICS, MAX_DAYS, SYMBOLS
from backtestlab.errors import ApplicationError
from backtestlab.parsers import NonStrictJSONParser

THRESHOLD_NAMES = [r.param for r in SELECTOR_RULES]


# --- strict fields ---------------------------------------------------------------------------


class _Named:
    """Required/null messages that name the field and say what to send."""

    what = "a value"

    def bind(self, field_name, parent):
        super().bind(field_name, parent)
        self.error_messages["required"] = f"{field_name} is required: {self.what}"
        self.error_messages["null"] = f"{field_name} must not be null: {self.what}"


class StrictFloatField(_Named, serializers.FloatField):
    """A finite JSON number: no bool, no string, no NaN/Infinity/1e309."""

    what = "a finite number"

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool) and abs(data) > 1e308:
            raise serializers.ValidationError(f"{self.field_name} must be a finite number")
        try:
            return Param(self.field_name, "float", 0.0).coerce(data)
        except ParameterError as exc:
            raise serializers.ValidationError(exc.message) from None


@extend_schema_field({"type": "number", "format": "double", "minimum": 0, "exclusiveMinimum": True})
class StepField(StrictFloatField):
    """A grid's step: a finite number > 0 (the engine's Axis refuses 0 and below; the schema
    says so)."""


class StrictIntegerField(_Named, serializers.IntegerField):
    """A whole JSON number within [min_value, max_value] (5.0 is 5; 5.5, "5" and true are not)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.what = f"a whole number between {self.min_value} and {self.max_value}"

    def to_internal_value(self, data):
        param = Param(self.field_name, "int", 0, self.min_value, self.max_value)
        try:
            return param.coerce(data)
        except ParameterError as exc:
            raise serializers.ValidationError(exc.message) from None


class NamedChoiceField(_Named, serializers.ChoiceField):
    """One of a fixed list, with a "did you mean" for a near miss."""

    def __init__(self, choices, *, kind: str, **kwargs):
        super().__init__(choices, **kwargs)
        self.kind = kind
        self.what = f"one of {', '.join(map(str, self.choices))}"

    def to_internal_value(self, data):
        if isinstance(data, str) and data in self.choices:
            return data
        known = list(self.choices)
        if isinstance(data, str):
            message = f"{self.field_name}: " + did_you_mean(self.kind, data, known)
        else:
            message = f"{self.field_name} must be one of {', '.join(known)}, got {data!r}"
        raise serializers.ValidationError(message)


class ThresholdsField(serializers.DictField):
    """Selector thresholds by name; null disables a rule, missing ones take their default.

    Checked by the one selector definition (``selector.validate_thresholds``).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("child", serializers.FloatField(allow_null=True))
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            "Fixed selector thresholds by name (" + ", ".join(THRESHOLD_NAMES) + "); "
            "null disables a rule, a missing one takes its default.",
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                f"{self.field_name} must be an object of threshold name -> number or null, "
                f"got {data!r}"
            )
        return dict(data)


def _horizon(**kwargs):
    return StrictIntegerField(
        min_value=1,
        max_value=MAX_DAYS,
        default=synthetic_tools.DEFAULT_HORIZON_DAYS,
        help_text="Days of the synthetic universe to look at (from its first day).",
        **kwargs,
    )


def _interval(**kwargs):
    return StrictIntegerField(
        min_value=1,
        max_value=30,
        default=synthetic_tools.DEFAULT_DECISION_INTERVAL_DAYS,
        help_text="A decision step every k-th day: days 0, k, 2k, ... below horizon_days.",
        **kwargs,
    )


def _points(low=synthetic_tools.MIN_POINTS, high=synthetic_tools.MAX_POINTS):
    return StrictIntegerField(min_value=low, max_value=high)


def _underlying():
    return NamedChoiceField(list(SYMBOLS), kind="underlying")


# x_ and y_ fields share one choice list; as plain enums drf-spectacular would name it twice
# (XMetricEnum, YMetricEnum) and warn, so the enum is wrapped in allOf and stays inline.
@extend_schema_field({"allOf": [{"type": "string", "enum": list(ENVIRONMENT_METRICS)}]})
class MetricField(NamedChoiceField):
    def __init__(self, **kwargs):
        super().__init__(list(ENVIRONMENT_METRICS), kind="metric", **kwargs)


@extend_schema_field({"allOf": [{"type": "string", "enum": THRESHOLD_NAMES}]})
class ThresholdNameField(NamedChoiceField):
    def __init__(self, **kwargs):
        super().__init__(THRESHOLD_NAMES, kind="threshold", **kwargs)


def _metric(help_text: str):
    return MetricField(help_text=help_text)


def _threshold(help_text: str):
    return ThresholdNameField(help_text=help_text)


class _Request(serializers.Serializer):
    """Rejects unknown fields with a "did you mean" (a typo must not silently use a default)."""

    def validate(self, attrs):
        known = list(self.fields)
        for name in self.initial_data:
            if name not in self.fields:
                raise serializers.ValidationError({name: did_you_mean("field", name, known)})
        return attrs


# --- request / response serializers ----------------------------------------------------------


# The component is "EnvironmentHeatmapRequest" once drf-spectacular adds its request suffix.
@extend_schema_serializer(component_name="EnvironmentHeatmap")
class EnvironmentHeatmapRequest(_Request):
    underlying = _underlying()
    x_metric = _metric("Environment metric on the X axis (columns).")
    y_metric = _metric("Environment metric on the Y axis (rows).")
    horizon_days = _horizon()
    decision_interval_days = _interval()
    x_start = StrictFloatField(help_text="Lower edge of the first X bucket.")
    x_step = StepField(help_text="Width of each X bucket (> 0).")
    x_points = _points()
    y_start = StrictFloatField(help_text="Lower edge of the first Y bucket.")
    y_step = StepField(help_text="Height of each Y bucket (> 0).")
    y_points = _points()


class EnvironmentHeatmapResponse(serializers.Serializer):
    ok = serializers.BooleanField()
    underlying = serializers.CharField()
    x_metric = serializers.CharField()
    y_metric = serializers.CharField()
    horizon_days = serializers.IntegerField()
    decision_interval_days = serializers.IntegerField()
    x_labels = serializers.ListField(
        child=serializers.FloatField(),
        help_text="Lower edge of each X bucket; bucket i is [x_start + i*x_step, next edge).",
    )
    y_labels = serializers.ListField(child=serializers.FloatField())
    grid = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="Rows follow y_labels, columns x_labels; a cell is the % of in-grid "
        "decision steps in that bucket (0.1).",
    )
    total_steps = serializers.IntegerField(help_text="Decision steps in the horizon.")
    in_grid_steps = serializers.IntegerField(help_text="Decision steps inside the grid.")
    coverage_pct = serializers.FloatField(help_text="in_grid_steps / total_steps, in % (0.1).")


# The component is "SelectorScanRequest" once drf-spectacular adds its request suffix.
@extend_schema_serializer(component_name="SelectorScan")
class SelectorScanRequest(_Request):
    underlying = _underlying()
    param = _threshold("The selector threshold to sweep.")
    horizon_days = _horizon()
    decision_interval_days = _interval()
    start = StrictFloatField(help_text="First threshold value.")
    step = StepField(help_text="Increment between values (> 0).")
    points = _points(1, synthetic_tools.MAX_SCAN_POINTS)
    thresholds = ThresholdsField()


class SelectorScanResponse(serializers.Serializer):
    ok = serializers.BooleanField()
    underlying = serializers.CharField()
    param = serializers.CharField()
    horizon_days = serializers.IntegerField()
    decision_interval_days = serializers.IntegerField()
    values = serializers.ListField(child=serializers.FloatField())
    allowed_pct = serializers.ListField(
        child=serializers.FloatField(), help_text="% of decision steps allowed per value (0.1)."
    )
    allowed_steps = serializers.ListField(child=serializers.IntegerField())
    total_steps = serializers.IntegerField()
    thresholds = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text="The fixed thresholds used (the swept one is null here).",
    )


# The component is "SelectorHeatmapRequest" once drf-spectacular adds its request suffix.
@extend_schema_serializer(component_name="SelectorHeatmap")
class SelectorHeatmapRequest(_Request):
    underlying = _underlying()
    x_param = _threshold("Selector threshold on the X axis (columns).")
    y_param = _threshold("Selector threshold on the Y axis (rows); not x_param.")
    horizon_days = _horizon()
    decision_interval_days = _interval()
    x_start = StrictFloatField()
    x_step = StepField(help_text="> 0")
    x_points = _points()
    y_start = StrictFloatField()
    y_step = StepField(help_text="> 0")
    y_points = _points()
    thresholds = ThresholdsField()


class SelectorHeatmapResponse(serializers.Serializer):
    ok = serializers.BooleanField()
    underlying = serializers.CharField()
    x_param = serializers.CharField()
    y_param = serializers.CharField()
    horizon_days = serializers.IntegerField()
    decision_interval_days = serializers.IntegerField()
    x_labels = serializers.ListField(child=serializers.FloatField())
    y_labels = serializers.ListField(child=serializers.FloatField())
    grid = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="Rows follow y_labels; a cell is the % of all decision steps allowed (0.1).",
    )
    total_steps = serializers.IntegerField()
    thresholds = serializers.DictField(child=serializers.FloatField(allow_null=True))


class _Grid(serializers.Serializer):
    start = serializers.FloatField()
    step = serializers.FloatField()
    points = serializers.IntegerField()


class _Metric(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    suggested = _Grid()


class _Threshold(serializers.Serializer):
    param = serializers.CharField()
    metric = serializers.CharField()
    op = serializers.ChoiceField(["min", "max"])
    label = serializers.CharField()
    default = serializers.FloatField()
    min = serializers.FloatField()
    max = serializers.FloatField()
    suggested = _Grid()


class _Bounds(serializers.Serializer):
    default = serializers.IntegerField()
    min = serializers.IntegerField()
    max = serializers.IntegerField()


class _Points(serializers.Serializer):
    min = serializers.IntegerField()
    max = serializers.IntegerField()
    scan_max = serializers.IntegerField()


class EnvironmentMetricsResponse(serializers.Serializer):
    underlyings = serializers.ListField(child=serializers.CharField())
    horizon_days = _Bounds()
    decision_interval_days = _Bounds()
    points = _Points()
    metrics = _Metric(many=True)
    thresholds = _Threshold(many=True)


class ErrorResponse(serializers.Serializer):
    ok = serializers.BooleanField(default=False)
    error = serializers.CharField(help_text="What was wrong and what to send instead.")
    field = serializers.CharField(required=False, help_text="The offending request field.")


ERRORS = {
    400: OpenApiResponse(ErrorResponse, description="Invalid request; `field` names it."),
    401: OpenApiResponse(ErrorResponse, description="Not logged in."),
    403: OpenApiResponse(ErrorResponse, description="Not allowed."),
    500: OpenApiResponse(ErrorResponse, description="Unexpected failure (logged)."),
}


# --- views -----------------------------------------------------------------------------------


def _validated(serializer_class, request) -> dict:
    """Validated data, or an ApplicationError naming the first offending field."""
    try:
        data = request.data
    except ParseError as exc:
        detail = str(exc.detail).removeprefix("JSON parse error - ")
        raise ApplicationError(f"the request body is not valid JSON: {detail}") from exc
    if not isinstance(data, dict):
        raise ApplicationError(f"the request body must be a JSON object, got {data!r}")
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return serializer.validated_data
    field, message = first_message(serializer.errors)
    if field and not message.startswith(field):
        message = f"{field}: {message}"
    raise ApplicationError(message, field=field or None)


class _SyntheticToolView(APIView):
    parser_classes = [NonStrictJSONParser]


class EnvironmentHeatmapView(_SyntheticToolView):
    @extend_schema(
        operation_id="environment_heatmap",
        summary="Environment occupancy heatmap (synthetic)",
        description=(
            "For two environment metrics, the % of decision steps the synthetic environment "
            "spends in each (x, y) bucket, ignoring any selector or strategy. Buckets are "
            "half-open [start + i*step, start + (i+1)*step); values outside the grid are "
            "counted in total_steps but not in in_grid_steps."
        ),
        request=EnvironmentHeatmapRequest,
        responses={200: EnvironmentHeatmapResponse, **ERRORS},
    )
    def post(self, request):
        args = _validated(EnvironmentHeatmapRequest, request)
        return Response(synthetic_tools.environment_heatmap_compute(**args))


class SelectorScanView(_SyntheticToolView):
    @extend_schema(
        operation_id="selector_scan",
        summary="Selector frequency scan (synthetic)",
        description=(
            "Sweep one selector threshold (start, step, points) and return, for each value, "
            "the % of decision steps on which the selector would allow a trade, the other "
            "thresholds fixed."
        ),
        request=SelectorScanRequest,
        responses={200: SelectorScanResponse, **ERRORS},
    )
    def post(self, request):
        args = _validated(SelectorScanRequest, request)
        return Response(synthetic_tools.selector_scan_compute(**args))


class SelectorHeatmapView(_SyntheticToolView):
    @extend_schema(
        operation_id="selector_heatmap",
        summary="Selector heatmap (synthetic)",
        description=(
            "Two selector thresholds on a grid: the % of decision steps the selector allows "
            "for each pair, the other thresholds fixed."
        ),
        request=SelectorHeatmapRequest,
        responses={200: SelectorHeatmapResponse, **ERRORS},
    )
    def post(self, request):
        args = _validated(SelectorHeatmapRequest, request)
        return Response(synthetic_tools.selector_heatmap_compute(**args))


class EnvironmentMetricsView(APIView):
    @extend_schema(
        operation_id="environment_metrics",
        summary="Environment metrics and selector thresholds",
        description=(
            "The one list of environment metrics (key, label, a suggested grid) and selector "
            "thresholds (default, bounds) that the synthetic tools accept."
        ),
        responses={200: EnvironmentMetricsResponse, 401: ERRORS[401], 403: ERRORS[403]},
    )
    def get(self, request):
        return Response(synthetic_tools.catalogue())
