from django.apps import AppConfig


class StrategiesConfig(AppConfig):
    name = "apps.strategies"
    verbose_name = "Strategies"

    def ready(self):
        from apps.optimization.signals import job_finished
        from apps.strategies.receivers import job_finished_auto_apply

        job_finished.connect(job_finished_auto_apply, dispatch_uid="strategies-auto-apply")
