"""``{{ value|metric:4 }}``: a metric on a page, as ``floatformat`` writes it, except an
unbounded ratio (``inf``, or ``"Infinity"`` read back from JSON), which is "∞"."""

from __future__ import annotations

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
