"""What the optimization app announces to the apps above it.

``job_finished`` is sent once per job, right after the conditional UPDATE that finalized it
(any kind, any final status), with ``job_id``. Receivers must not raise: the sender logs and
swallows their errors so a receiver can never fail a job's finalization.
"""

from django.dispatch import Signal

job_finished = Signal()
