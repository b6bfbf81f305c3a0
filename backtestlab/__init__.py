"""BacktestLab Django project.

The Celery app is imported by ``apps.optimization.apps`` (not here) so that importing the pure
engine package ``backtestlab.engine`` never drags in Celery or Django.
"""
