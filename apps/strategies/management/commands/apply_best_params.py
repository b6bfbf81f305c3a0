"""manage.py apply_best_params [--symbol BTC] [--pattern-type imbalance] [--min-improvement 5]
[--strategy smc_zones] [--job ID] [--apply] [--user NAME]: the seed's auto-tuner.

Dry-run unless --apply: proposals are recorded (ParameterChange rows flagged dry_run) and
nothing changes. Without --user the command acts as the system (shell access is the operator's);
with --user that user's apply permission is checked like everywhere else.
"""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.optimization.models import OptimizationJob
from apps.strategies.services.auto_tuner import apply_best_params
from backtestlab.errors import ApplicationError


class Command(BaseCommand):
    help = "Apply (or, by default, propose) the best parameters of the latest sweeps."

    def add_arguments(self, parser):
        parser.add_argument("--symbol")
        parser.add_argument("--pattern-type")
        parser.add_argument("--min-improvement", type=float, default=5.0)
        parser.add_argument("--strategy")
        parser.add_argument("--job", type=int)
        parser.add_argument("--apply", action="store_true", help="apply (default: dry-run)")
        parser.add_argument("--user")

    def handle(self, *args, **o):
        user = None
        if o["user"]:
            user = get_user_model().objects.filter(username=o["user"]).first()
            if user is None:
                raise CommandError(f"no user {o['user']!r}")
        job = None
        if o["job"] is not None:
            job = OptimizationJob.objects.filter(id=o["job"]).first()
            if job is None:
                raise CommandError(f"no job {o['job']}")
        try:
            result = apply_best_params(
                symbol=o["symbol"], pattern_type=o["pattern_type"],
                min_improvement_pct=o["min_improvement"], dry_run=not o["apply"], job=job,
                strategy=o["strategy"], user=user, source="command",
            )  # fmt: skip
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(json.dumps(result, indent=2, default=str))
