"""Delivery plumbing: emails, WeCom group-robot posts, and WeChat messages and SMS notices to one
person (``supervision.outbound``), sent in the background.

A delivery is tried up to three times with growing pauses (the ``deliver`` task, run by
``db_worker``); each attempt has a 5-second timeout; a failure is logged and shown in the panel.
Nothing here ever runs inside a request. It needs only the models, so that ``notifications``
can queue deliveries without importing the jobs that sit on top of the workflow engine.

An attempt is counted before it is made, so that a worker killed in the middle of one (kill -9,
the database restarting under it) can never make a delivery go out more than ``MAX_ATTEMPTS``
times. What such a worker leaves behind (its task marked running for ever, or a delivery whose
task was never queued) is picked up by ``recover_deliveries``, which each ``deliver`` runs first,
at most every ``RECOVER_EVERY`` seconds in a process.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from .models import Delivery

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
TIMEOUT_SECONDS = 5
BACKOFF_SECONDS = (0, 30, 120)  # before the 1st, 2nd and 3rd attempt
# An attempt takes TIMEOUT_SECONDS at most: a task running for longer belongs to a dead worker.
LEASE = timedelta(minutes=1)
RECOVER_EVERY = 30.0
_recovered_at = float("-inf")  # this process's last recovery (time.monotonic())


def enqueue_delivery(delivery_id: int, attempt: int = 0) -> None:
    job = deliver
    pause = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
    if pause and job.get_backend().supports_defer:
        job = job.using(run_after=timezone.now() + timedelta(seconds=pause))
    job.enqueue(delivery_id)


@task()
def deliver(delivery_id: int) -> str:
    global _recovered_at
    if time.monotonic() - _recovered_at >= RECOVER_EVERY:
        _recovered_at = time.monotonic()
        recover_deliveries()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update()
            .filter(pk=delivery_id, status=Delivery.Status.PENDING)
            .first()
        )
        if delivery is None:
            return "gone"
        if delivery.attempts >= MAX_ATTEMPTS:  # a worker died during the last attempt allowed
            delivery.status = Delivery.Status.FAILED
            delivery.last_error = "worker stopped during the last attempt"
            delivery.save(update_fields=["status", "last_error"])
            return delivery.status
        delivery.attempts += 1  # counted first: see the module's doc
        delivery.save(update_fields=["attempts"])
    error = attempt(delivery)
    if error is None:
        delivery.status = Delivery.Status.SENT
        delivery.sent_at = timezone.now()
        delivery.last_error = ""
    else:
        delivery.last_error = error[:300]
        if delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = Delivery.Status.FAILED
            logger.warning(
                "delivery %s to %s failed after %s attempts: %s",
                delivery.pk,
                delivery.target,
                delivery.attempts,
                error,
            )
    with transaction.atomic():  # the next try is queued with the result, or neither is kept
        delivery.save(update_fields=["status", "sent_at", "last_error"])
        if delivery.status == Delivery.Status.PENDING:
            enqueue_delivery(delivery.pk, delivery.attempts)
    return delivery.status


def recover_deliveries(now: datetime | None = None) -> int:
    """Queue again the deliveries a stopped worker left behind; returns how many.

    A ``deliver`` task still marked running after ``LEASE`` lost its worker: it is marked
    failed. A pending delivery older than ``LEASE`` with no task waiting or running for it (that
    one, or a task never queued because the database went away between the two) gets a new task.
    Its attempts so far still count (``deliver``)."""
    now = now or timezone.now()
    tasks = DBTaskResult.objects.filter(task_path=deliver.module_path)
    tasks.filter(status="RUNNING", started_at__lt=now - LEASE).update(
        status="FAILED",
        finished_at=now,
        exception_class_path="",
        traceback="worker stopped during the task",
    )
    live = {
        (args_kwargs.get("args") or [None])[0]
        for args_kwargs in tasks.filter(status__in=("READY", "RUNNING")).values_list(
            "args_kwargs", flat=True
        )
    }
    left = (
        Delivery.objects.filter(status=Delivery.Status.PENDING, created_at__lt=now - LEASE)
        .exclude(pk__in=[pk for pk in live if isinstance(pk, int)])
        .values_list("pk", flat=True)
    )
    count = 0
    for pk in left:
        enqueue_delivery(pk)
        count += 1
    if count:
        logger.warning("%s deliveries left behind by a stopped worker queued again", count)
    return count


def attempt(delivery: Delivery) -> str | None:
    """One try; returns None when it went out, else what went wrong."""
    if delivery.channel in (Delivery.Channel.WECHAT, Delivery.Channel.SMS):
        from .outbound import send  # noqa: PLC0415 (outbound needs accounts, loaded late)

        return send(delivery)
    try:
        if delivery.channel == Delivery.Channel.EMAIL:
            send_mail(delivery.subject, delivery.body, None, [delivery.target])
            return None
        payload = json.dumps(
            {"msgtype": "markdown", "markdown": {"content": delivery.body}}, ensure_ascii=False
        ).encode()
        request = urllib.request.Request(
            delivery.target,
            data=payload,
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            body = response.read(2000)
        # WeCom answers 200 with {"errcode": 0} on success, another errcode on failure.
        try:
            errcode = json.loads(body or b"{}").get("errcode", 0)
        except ValueError:
            errcode = 0
        return None if errcode == 0 else f"errcode {errcode}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        return str(getattr(error, "reason", error)) or error.__class__.__name__
