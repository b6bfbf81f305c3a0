from django.apps import AppConfig


class LabConfig(AppConfig):
    name = "apps.lab"
    verbose_name = "Backtesting Lab"
