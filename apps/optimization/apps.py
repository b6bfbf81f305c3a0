from django.apps import AppConfig


class OptimizationConfig(AppConfig):
    name = "apps.optimization"
    verbose_name = "Optimization"

    def ready(self):
        # Binds shared tasks to the configured app in every Django process (web, tests, worker).
        from backtestlab.celery import app  # noqa: F401

        # The worker's start-up recovery is a receiver in tasks.py.
        from . import tasks  # noqa: F401
