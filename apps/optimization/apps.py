from django.apps import AppConfig


class OptimizationConfig(AppConfig):
    name = "apps.optimization"
    verbose_name = "Optimization"

    def ready(self):
        # Binds shared tasks to the configured app in every Django process (web, tests, worker).
        from backtestlab.celery import app  # noqa: F401

        from . import signals  # noqa: F401
