"""Evaluate a job's run (or a run) for approval and print the seed's strategy summary.

manage.py strategy_summary 12          # job 12 (a sweep's best run, a Monte Carlo source)
manage.py strategy_summary job:12
manage.py strategy_summary run:345
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.strategies.services import approval as approval_services
from backtestlab.engine.evaluation.approval import summary_lines
from backtestlab.errors import ApplicationError


class Command(BaseCommand):
    help = "Evaluate a job or run for approval (stored) and print the strategy summary."

    def add_arguments(self, parser):
        parser.add_argument("target", help="job id, job:<id> or run:<id>")
        parser.add_argument("--rules", action="store_true", help="also print every rule")

    def handle(self, *args, target: str, rules: bool, **options):
        kind, _, raw = target.rpartition(":")
        kind = kind or "job"
        try:
            pk = int(raw)
        except ValueError:
            raise CommandError(f"expected a job id, job:<id> or run:<id>, got {target!r}") from None
        try:
            if kind == "job":
                job = OptimizationJob.objects.filter(id=pk).first()
                if job is None:
                    raise CommandError(f"job {pk} does not exist")
                approval = approval_services.job_evaluate(job=job, trigger="command")
            elif kind == "run":
                run = OptimizationRun.objects.select_related("job", "dataset").filter(id=pk).first()
                if run is None:
                    raise CommandError(f"run {pk} does not exist")
                approval = approval_services.strategy_evaluate(run=run, trigger="command")
            else:
                raise CommandError(f"expected job:<id> or run:<id>, got {target!r}")
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for line in summary_lines(approval.summary):
            self.stdout.write(line)
        if rules:
            for r in approval.rules:
                mark = "pass" if r["passed"] else "FAIL"
                self.stdout.write(
                    f"  [{mark}] {r['label']}: {r['value']} {r['op']} {r['threshold']}"
                    + ("" if r["required"] else " (not required)")
                )
