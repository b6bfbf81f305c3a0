from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from backtestlab.engine.strategies import StrategyLoadError, load_strategies


class OptimizationConfig(AppConfig):
    name = "apps.optimization"
    verbose_name = "Optimization"

    def ready(self):
        # Binds shared tasks to the configured app in every Django process (web, tests, worker);
        # the worker's start-up recovery is a receiver in tasks.py.  The team's strategies
        # (setting + entry points) join the built-ins in every process, or the process
        # refuses to start, naming the module.
        from backtestlab.celery import app  # noqa: F401

        from . import tasks  # noqa: F401

        try:
            load_strategies(settings.BACKTESTLAB_STRATEGIES)
        except StrategyLoadError as exc:
            raise ImproperlyConfigured(f"cannot load a strategy: {exc}") from exc
