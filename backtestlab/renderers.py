"""Strict JSON out: DRF's renderer, with NaN written as null and an infinity (an unbounded ratio,
e.g. a profit factor without a losing trade) as the string ``"Infinity"`` instead of failing the
response.  Kept apart from backtestlab.api: DRF's views read the renderer setting when they are
first imported, so this module must not import them."""

from __future__ import annotations

import math
from typing import Any

from rest_framework import renderers

INFINITY = "Infinity"


def json_number(value: float) -> float | str | None:
    """A float as strict JSON has it: NaN (undefined) is null, an infinite value (a ratio with
    nothing lost, e.g. a profit factor without a losing trade) is the string ``"Infinity"``
    or ``"-Infinity"``, which JavaScript's ``Number()`` and Python's ``float()`` read back."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return INFINITY if value > 0 else f"-{INFINITY}"
    return value


def json_float(value: Any) -> float | None:
    """A number read back from JSON written with :func:`json_number` (None stays None;
    ``float`` reads ``"Infinity"``)."""
    return None if value is None else float(value)


def json_clean(data: Any) -> Any:
    """``data`` with every float passed through :func:`json_number` (dicts, lists, tuples)."""
    if isinstance(data, float):
        return json_number(data)
    if isinstance(data, dict):
        return {k: json_clean(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [json_clean(v) for v in data]
    return data


class JSONRenderer(renderers.JSONRenderer):
    """DRF's strict JSON, with NaN and infinities written as :func:`json_number` says instead
    of failing the response (most responses hold none: they are encoded once)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except ValueError:  # "Out of range float values are not JSON compliant"
            return super().render(json_clean(data), accepted_media_type, renderer_context)
