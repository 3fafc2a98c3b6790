"""What ``db_worker`` does beside the web server, for tests: run every queued task, then stop."""

from __future__ import annotations

from django.core.management import call_command
from django.db import connection
from django.test import TestCase
from django_tasks_db.models import DBTaskResult


def run_worker() -> None:
    """Every queued task, in order, as the worker would. On PostgreSQL the worker would open its
    own connection, which the test's transaction forbids: the queued tasks are then run here."""
    if connection.vendor != "postgresql":
        call_command("db_worker", "--batch", "--no-startup-delay", "-v0")
        return
    while queued := DBTaskResult.objects.ready().order_by("enqueued_at", "pk").first():
        # What the task queues after its commit (the email) is queued, then run in turn.
        with TestCase.captureOnCommitCallbacks(execute=True):
            queued.task.call(*queued.args_kwargs["args"], **queued.args_kwargs["kwargs"])
            queued.set_successful(None)
