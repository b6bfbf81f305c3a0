"""Server-side inline SVG for the evaluation results: a fan chart and histograms.

Built from numbers only (no user text), so the markup is safe to mark as such.
"""

from __future__ import annotations

from django.utils.safestring import mark_safe

W, H, PAD = 640, 240, 36


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def fan_chart_svg(steps: list, bands: dict) -> str:
    """Equity percentile bands (5/25/50/75/95) against trade count."""
    if not steps or not bands:
        return ""
    lo = min(min(bands["5"]), 1.0)
    hi = max(max(bands["95"]), 1.0)
    x = _scale(steps[0], steps[-1], PAD, W - 8)
    y = _scale(lo, hi, H - PAD, 8)

    def area(a: str, b: str, cls: str) -> str:
        top = [f"{x(s):.1f},{y(v):.1f}" for s, v in zip(steps, bands[b], strict=True)]
        bottom = [f"{x(s):.1f},{y(v):.1f}" for s, v in zip(steps, bands[a], strict=True)]
        return f'<polygon class="{cls}" points="{" ".join(top + bottom[::-1])}"/>'

    median = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in zip(steps, bands["50"], strict=True))
    one = y(1.0)
    parts = [
        f'<svg id="mc-fan-chart" class="chart" viewBox="0 0 {W} {H}" role="img" '
        'aria-label="Monte Carlo equity percentile bands">',
        area("5", "95", "band-outer"),
        area("25", "75", "band-inner"),
        f'<polyline class="median" fill="none" points="{median}"/>',
        f'<line class="baseline" x1="{PAD}" x2="{W - 8}" y1="{one:.1f}" y2="{one:.1f}"/>',
        f'<text x="2" y="{y(hi) + 10:.0f}">{hi:.2f}</text>',
        f'<text x="2" y="{y(lo):.0f}">{lo:.2f}</text>',
        f'<text x="{PAD}" y="{H - 6}">0</text>',
        f'<text x="{W - 8}" y="{H - 6}" text-anchor="end">{steps[-1]} trades</text>',
        "</svg>",
    ]
    return mark_safe("".join(parts))  # noqa: S308 - numbers only


def histogram_svg(hist: dict, *, element_id: str, fmt: str = "{:.2f}") -> str:
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    if not counts:
        return ""
    w, h = 300, 140
    top = max(counts) or 1
    bw = (w - 10) / len(counts)
    bars = [
        f'<rect x="{5 + k * bw:.1f}" y="{h - 20 - c / top * (h - 30):.1f}" '
        f'width="{max(bw - 1, 1):.1f}" height="{c / top * (h - 30):.1f}"><title>'
        f"{fmt.format(edges[k])} … {fmt.format(edges[k + 1])}: {c}</title></rect>"
        for k, c in enumerate(counts)
    ]
    return mark_safe(  # noqa: S308 - numbers only
        f'<svg id="{element_id}" class="chart hist" viewBox="0 0 {w} {h}" role="img">'
        + "".join(bars)
        + f'<text x="5" y="{h - 4}">{fmt.format(edges[0])}</text>'
        + f'<text x="{w - 5}" y="{h - 4}" text-anchor="end">{fmt.format(edges[-1])}</text></svg>'
    )
