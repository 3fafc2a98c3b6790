"""The periodic and background jobs (Django's tasks API; the database backend runs them in
``db_worker``): the sweep every 15 minutes (overdue issues, and fixes waiting for the reporter).

The jobs sit on top of the workflow engine; the plumbing below it has its own modules, so that
nothing the engine imports needs to import this: deliveries (``deliveries.deliver``).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from . import deliveries, exports, letters, photos, services, warranty
from .deliveries import deliver  # noqa: F401  (tasks queued as supervision.tasks.deliver)
from .exports import write_export  # noqa: F401  (queued as supervision.tasks.write_export)
from .photos import convert_pending  # noqa: F401  (queued as supervision.photos.convert_pending)

SWEEP_EVERY = timedelta(minutes=15)


@task()
def sweep_overdue() -> int:
    """Escalate newly overdue issues, remind reporters of fixes waiting for their check and close
    those that waited too long; remind, escalate and erase residents' letters as they fall due;
    delete expired exports; book 回头看 patrols; queue again deliveries and photo conversions a
    stopped worker left behind; then (with the database backend) book the next sweep."""
    count = len(services.escalate_overdue())
    reminded, closed = services.sweep_unverified()
    count += len(reminded) + len(closed)
    count += sum(len(done) for done in letters.sweep_letters())
    count += exports.delete_expired()
    count += len(warranty.schedule_return_visits())  # 回头看, and 保修期满前 30 天的提醒
    # Also run by each delivery; here too, for when no new delivery comes after a worker died.
    count += deliveries.recover_deliveries()
    count += photos.recover_pending()  # HEIC conversions a stopped worker left behind
    schedule_sweep(after=SWEEP_EVERY)
    return count


def schedule_sweep(after: timedelta = timedelta(0)) -> bool:
    """Book the next sweep unless one is already waiting; False without a deferring backend."""
    if not sweep_overdue.get_backend().supports_defer:
        return False
    if DBTaskResult.objects.filter(status="READY", task_path=sweep_overdue.module_path).exists():
        return True
    sweep_overdue.using(run_after=timezone.now() + after).enqueue()
    return True
