"""Delivery plumbing: emails and WeCom group-robot posts, sent in the background.

A delivery is tried up to three times with growing pauses (the ``deliver`` task, run by
``db_worker``); each attempt has a 5-second timeout; a failure is logged and shown in the panel.
Nothing here ever runs inside a request. It needs only the models, so that ``notifications``
can queue deliveries without importing the jobs that sit on top of the workflow engine.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import timedelta

from django.core.mail import send_mail
from django.utils import timezone
from django_tasks import task

from .models import Delivery

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
TIMEOUT_SECONDS = 5
BACKOFF_SECONDS = (0, 30, 120)  # before the 1st, 2nd and 3rd attempt


def enqueue_delivery(delivery_id: int, attempt: int = 0) -> None:
    job = deliver
    pause = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
    if pause and job.get_backend().supports_defer:
        job = job.using(run_after=timezone.now() + timedelta(seconds=pause))
    job.enqueue(delivery_id)


@task()
def deliver(delivery_id: int) -> str:
    delivery = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING).first()
    if delivery is None:
        return "gone"
    error = attempt(delivery)
    delivery.attempts += 1
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
    delivery.save(update_fields=["attempts", "status", "sent_at", "last_error"])
    if delivery.status == Delivery.Status.PENDING:
        enqueue_delivery(delivery.pk, delivery.attempts)
    return delivery.status


def attempt(delivery: Delivery) -> str | None:
    """One try; returns None when it went out, else what went wrong."""
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
