"""Numbers on a page. ``{{ value|metric:4 }}``: a metric as ``floatformat`` writes it, except
an unbounded ratio (``inf``, or ``"Infinity"`` read back from JSON), which is "∞".
``{{ fraction|pct:2 }}``: a fraction of equity (the evaluation's unit, 0.125) in percent,
the unit of every metric page ("12.50 %"); "n/a" where undefined.  ``{{ ts|utc_date }}``: a
bar time (seconds since the epoch, the engine's unit) as "2025-03-01 UTC"."""

from __future__ import annotations

import datetime as dt
import math

from django import template
from django.template.defaultfilters import floatformat

from backtestlab.renderers import json_float

register = template.Library()


@register.filter
def metric(value, digits=4):
    if isinstance(value, str):
        try:
            value = json_float(value)
        except ValueError:
            return value
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return floatformat(value, digits)


@register.filter
def pct(value, digits=2):
    if value is None or value == "":
        return "n/a"
    try:
        value = json_float(value) * 100.0
    except (TypeError, ValueError):
        return value
    if math.isnan(value):
        return "n/a"
    return f"{metric(value, digits)} %"


@register.filter
def utc_date(value):
    try:
        return dt.datetime.fromtimestamp(int(value), dt.UTC).strftime("%Y-%m-%d UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""
