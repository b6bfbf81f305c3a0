"""BacktestLab's pure computation engine.

Everything under this package is plain numpy / pandas / numba: no Django, no I/O, no
environment variables and no global random state, so it can be imported by web workers,
Celery tasks and tests alike.  Submodules are imported explicitly (``from
backtestlab.engine.metrics import compute``) so that importing the package stays cheap.
"""
