"""``{% job_evaluation job %}``: the evaluation panel of a job page (Monte Carlo fan chart,
walk-forward folds, overfitting figures, approval card), one line in the status partial."""

from __future__ import annotations

from django import template

from apps.lab.evaluation_charts import fan_chart_svg, histogram_svg
from apps.strategies.selectors.evaluation import job_evaluation_data

register = template.Library()


@register.inclusion_tag("lab/_evaluation.html", takes_context=True)
def job_evaluation(context, job):
    data = job_evaluation_data(job) if not job.is_active else {"kind": job.kind}
    result = data.get("result") or {}
    charts = {}
    if job.kind == "monte_carlo" and result.get("bands"):
        hists = result.get("histograms", {})
        charts = {
            "fan": fan_chart_svg(result["steps"], result["bands"]),
            # fractions of equity, shown in % like the table above
            "final": histogram_svg(
                hists.get("final_return", {}), element_id="mc-hist-final", fmt="{:.1%}"
            ),
            "dd": histogram_svg(
                hists.get("max_drawdown", {}), element_id="mc-hist-dd", fmt="{:.1%}"
            ),
            "streak": histogram_svg(
                hists.get("max_loss_streak", {}), element_id="mc-hist-streak", fmt="{:.0f}"
            ),
        }
    return {
        "job": job,
        "data": data,
        "result": result,
        "charts": charts,
        "approval": data.get("approval"),
        "csrf_token": context.get("csrf_token"),
        "evaluation_error": context.get("evaluation_error"),
    }
