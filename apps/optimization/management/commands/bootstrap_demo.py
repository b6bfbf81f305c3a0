"""Set up a fresh lab for `make run`: admin user, synthetic datasets, one demo job."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import OptimizationJob
from apps.optimization.services.jobs import job_create


class Command(BaseCommand):
    help = "Create the admin user, the demo synthetic datasets and one demo job (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=365)

    def handle(self, *args, **opts):
        User = get_user_model()
        username = os.environ.get("ADMIN_USERNAME", "admin")
        admin = User.objects.filter(username=username).first()
        if admin is None:
            password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            admin = User.objects.create_superuser(username, "admin@example.com", password)
            shown = "(from ADMIN_PASSWORD)" if os.environ.get("ADMIN_PASSWORD") else password
            self.stdout.write(self.style.SUCCESS(f"admin user: {username} / password: {shown}"))
        else:
            self.stdout.write(f"admin user {username!r} exists (password unchanged)")
        if not Dataset.objects.filter(source=Dataset.Source.SYNTHETIC).exists():
            self.stdout.write(f"generating the synthetic universe ({opts['days']} days) ...")
            for ds in synthetic_universe_create(days=opts["days"]):
                self.stdout.write(f"  {ds.name} ({ds.rows} rows)")
        if not OptimizationJob.objects.exists():
            dataset = Dataset.objects.filter(
                symbol="BTC", timeframe="1h", kind=Dataset.Kind.CANDLES
            ).first()
            if dataset:
                job = job_create(
                    user=admin,
                    name="Demo: BTC 1h SMA crossover sweep",
                    description="Created by make run: 900 combinations of sma_cross.",
                    strategy="sma_cross",
                    dataset_ids=[dataset.id],
                    parameter_grid={
                        "fast": {"start": 5, "stop": 50, "step": 5},
                        "slow": {"start": 20, "stop": 200, "step": 20},
                        "sl_pct": [1, 2, 3],
                        "rr": [1.5, 2, 3],
                    },
                    objective="sharpe",
                )
                self.stdout.write(f"demo job {job.id} created ({job.total_runs} runs)")
