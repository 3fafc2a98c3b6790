"""When something the site stands on is away (supervision/unavailable.py, `make faults`): the
database, Redis, the photo disk, the background worker. A person sees 「系统繁忙，请稍后再试」
with status 503, never a 500 page; nothing they sent is half kept; nothing is sent twice."""

from __future__ import annotations

import errno
import logging
import socket
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.core.files.storage import FileSystemStorage
from django.db import OperationalError
from django.urls import path
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from supervision import deliveries
from supervision.models import Delivery, Issue, IssueEvent, Notification, Photo
from supervision.unavailable import unavailable_response

from .test_notifications import filing

BUSY = "系统繁忙，请稍后再试"
STORAGE_FULL = "服务器存储空间不足，照片没有保存，请稍后再试。"


def _database_gone(request):
    raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: refused')


def _disk_full(request):
    raise OSError(errno.ENOSPC, "No space left on device")


# Used by the tests marked ``pytest.mark.urls(__name__)``: views that fail as an outage does.
urlpatterns = [
    path("boom/", _database_gone),
    path("api/boom/", _database_gone),
    path("full/", _disk_full),
]


def stored_files() -> list:
    root = settings.MEDIA_ROOT
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def outage_logs(caplog) -> tuple[list, list]:
    """Our one line per answer, and what Django logged as a server error."""
    ours = [r for r in caplog.records if r.name == "supervision.unavailable"]
    errors = [r for r in caplog.records if r.name == "django.request" and r.levelno >= 40]
    return ours, errors


# --- the database away -------------------------------------------------------------------------


@pytest.mark.urls(__name__)
def test_database_error_in_a_view_shows_the_chinese_busy_page(client, caplog):
    caplog.set_level(logging.WARNING)

    response = client.get("/boom/")

    assert response.status_code == 503
    page = response.content.decode()
    assert BUSY in page and "0577-65800000" in page
    assert "Traceback" not in page and "OperationalError" not in page
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Retry-After"] == "10"
    assert response["Cache-Control"] == "no-store"
    ours, errors = outage_logs(caplog)
    assert len(ours) == 1 and "503 GET /boom/: OperationalError" in ours[0].getMessage()
    assert ours[0].exc_info is None  # one line, no traceback
    assert errors == []


@pytest.mark.urls(__name__)
def test_api_answers_its_own_error_shape_with_503(client):
    response = client.get("/api/boom/")

    assert response.status_code == 503
    assert response.json() == {"detail": f"{BUSY}。", "errors": []}
    assert response["Retry-After"] == "10"


def test_database_gone_before_the_view_shows_the_busy_page(world, client, caplog):
    """The session is read by a middleware (the staff idle timeout), before any view: Django
    has made a 500 of it by the time it comes back up; the person still sees the busy page."""
    client.force_login(world.alice)
    client.raise_request_exception = False  # Django's own signal for it is what we listen to
    caplog.set_level(logging.WARNING)
    gone = OperationalError("server closed the connection unexpectedly")

    with mock.patch("django.contrib.sessions.backends.db.SessionStore.load", side_effect=gone):
        response = client.get("/me/")

    assert response.status_code == 503
    assert BUSY in response.content.decode()
    ours, errors = outage_logs(caplog)
    assert len(ours) == 1 and errors == []  # Django's traceback for it is left out


@pytest.mark.urls(__name__)
def test_full_disk_outside_the_filing_form_is_told_too(client):
    response = client.get("/full/")

    assert response.status_code == 503
    page = response.content.decode()
    assert BUSY in page and "服务器存储空间不足" in page


# --- Redis away --------------------------------------------------------------------------------


@pytest.fixture
def redis_gone(settings):
    """Both caches on a Redis port where nothing listens, as while Redis is stopped."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    location = f"redis://127.0.0.1:{port}/0"
    backend = "django.core.cache.backends.redis.RedisCache"
    settings.CACHES = {
        "default": {"BACKEND": backend, "LOCATION": location},
        "fragments": {"BACKEND": backend, "LOCATION": location, "KEY_PREFIX": "fragments"},
    }


def test_api_with_redis_gone_answers_503_json(db, redis_gone, client):
    # The rate limit counts in Redis: without it the API says it is busy, in its own shape.
    response = client.get("/api/v1/projects")

    assert response.status_code == 503
    assert response.json()["detail"] == f"{BUSY}。"


def test_login_with_redis_gone_shows_the_busy_page(world, redis_gone, client, caplog):
    # The per-address login limit is read by a middleware, before the login page.
    client.raise_request_exception = False
    caplog.set_level(logging.WARNING)

    response = client.post("/accounts/login/", {"username": "alice", "password": "x"})

    assert response.status_code == 503
    assert BUSY in response.content.decode()
    assert outage_logs(caplog)[1] == []


def test_pages_that_do_not_need_redis_still_open(world, redis_gone, client):
    """The public pages and the issue list build without their caches; filing needs none."""
    assert client.get("/").status_code == 200
    assert client.get("/projects/").status_code == 200
    client.force_login(world.alice)
    assert client.get("/issues/").status_code == 200

    response = client.post("/issues/new/", filing(world, token="tok-unavailable-1"))

    assert response.status_code == 302
    assert Issue.objects.filter(idempotency_key="tok-unavailable-1").count() == 1


# --- the photo disk full -----------------------------------------------------------------------


class RoomForOnePhoto(FileSystemStorage):
    """A disk with room for a photo's web copy but not its thumbnail."""

    def _save(self, name, content):
        if name.endswith("_t.jpg"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return super()._save(name, content)


@pytest.fixture
def full_disk(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": f"{__name__}.RoomForOnePhoto"},
    }


@pytest.mark.django_db(transaction=True)
def test_full_disk_files_nothing_and_keeps_what_was_typed(world, full_disk, client):
    client.force_login(world.alice)

    response = client.post("/issues/new/", filing(world))

    assert response.status_code == 503  # the phone keeps it and sends it again
    page = response.content.decode()
    assert STORAGE_FULL in page
    assert "5 幢北面外墙涂料起皮" in page and "北面外墙涂料大面积起皮" in page
    assert not Issue.objects.exists() and not Photo.objects.exists()
    assert not IssueEvent.objects.exists()
    assert stored_files() == []  # the web copy written before the disk filled is gone again


@pytest.mark.django_db(transaction=True)
def test_the_phone_sending_again_after_the_disk_has_room_files_once(world, client, settings):
    client.force_login(world.alice)
    xhr = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}
    full = {**settings.STORAGES, "default": {"BACKEND": f"{__name__}.RoomForOnePhoto"}}
    room = dict(settings.STORAGES)

    settings.STORAGES = full
    first = client.post("/issues/new/", filing(world), **xhr)
    settings.STORAGES = room
    second = client.post("/issues/new/", filing(world), **xhr)
    third = client.post("/issues/new/", filing(world), **xhr)  # its answer was lost: again

    assert first.status_code == 503
    assert second.status_code == 200 and second["X-Location"] == third["X-Location"]
    issue = Issue.objects.get()
    assert second["X-Location"] == f"/issues/{issue.pk}/"
    photo = issue.photos.get()
    assert {p.name for p in stored_files()} == {
        photo.image.name.rsplit("/", 1)[1],
        photo.thumbnail.name.rsplit("/", 1)[1],
    }


# --- a request or a worker that died half way --------------------------------------------------


def test_a_filing_sent_again_notifies_what_its_first_request_never_did(world):
    """The first request committed the issue and died before the notifications (they run after
    the commit, which this test never reaches): the phone's resend makes up for it, once."""
    issue = world.submit(idempotency_key="tok-resent")
    assert not Notification.objects.exists()
    soon = world.submit(idempotency_key="tok-resent")  # a double tap: the first one sends them
    assert soon.pk == issue.pk and not Notification.objects.exists()
    Issue.objects.filter(pk=issue.pk).update(created_at=timezone.now() - timedelta(minutes=1))

    again = world.submit(idempotency_key="tok-resent")
    told = Notification.objects.count()
    world.submit(idempotency_key="tok-resent")

    assert again.pk == issue.pk and Issue.objects.count() == 1
    assert told > 0
    assert Notification.objects.filter(recipient=world.handler, event__issue=issue).count() == 1
    assert Notification.objects.count() == told


def _delivery(*, minutes_ago: int = 5, attempts: int = 0) -> Delivery:
    delivery = Delivery.objects.create(
        channel=Delivery.Channel.EMAIL,
        target="handler@example.cn",
        subject="【群众监督】2023-00001 已提交：外墙涂料起皮",
        body="问题：外墙涂料起皮",
        attempts=attempts,
    )
    Delivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return delivery


def _tasks_for(delivery: Delivery) -> list[DBTaskResult]:
    rows = DBTaskResult.objects.filter(task_path=deliveries.deliver.module_path)
    return [row for row in rows if row.args_kwargs["args"] == [delivery.pk]]


def test_a_delivery_a_killed_worker_left_running_is_sent_again(db):
    delivery = _delivery()
    deliveries.enqueue_delivery(delivery.pk)
    DBTaskResult.objects.update(  # the worker took it, then was killed (-9)
        status="RUNNING", started_at=timezone.now() - timedelta(minutes=5)
    )

    assert deliveries.recover_deliveries() == 1

    statuses = sorted(row.status for row in _tasks_for(delivery))
    assert statuses == ["FAILED", "READY"]
    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.SENT
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)


def test_a_delivery_whose_task_was_never_queued_is_queued(db):
    delivery = _delivery()  # saved, then the database went away before its task was

    assert deliveries.recover_deliveries() == 1
    assert [row.status for row in _tasks_for(delivery)] == ["READY"]


def test_deliveries_waiting_or_new_are_left_alone(db):
    waiting = _delivery()
    deliveries.enqueue_delivery(waiting.pk)
    _delivery(minutes_ago=0)  # its task is being queued right now

    assert deliveries.recover_deliveries() == 0
    assert DBTaskResult.objects.count() == 1


def test_the_attempt_a_killed_worker_began_still_counts(db):
    # It died during the last attempt allowed: the message may have gone out; never a fourth.
    delivery = _delivery(attempts=deliveries.MAX_ATTEMPTS)

    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.FAILED

    assert mail.outbox == []
    delivery.refresh_from_db()
    assert delivery.attempts == deliveries.MAX_ATTEMPTS
    assert delivery.last_error == "worker stopped during the last attempt"


def test_an_attempt_is_counted_before_it_is_made(db):
    delivery = _delivery()
    seen = []

    def sending(row):
        seen.append(Delivery.objects.get(pk=row.pk).attempts)
        return None

    with mock.patch.object(deliveries, "attempt", side_effect=sending):
        assert deliveries.deliver.call(delivery.pk) == Delivery.Status.SENT

    assert seen == [1]  # a worker killed while sending leaves the attempt counted


def test_the_busy_page_asks_nothing_of_the_database(db, django_assert_num_queries, rf):
    request = rf.get("/projects/")
    with django_assert_num_queries(0):
        response = unavailable_response(request, OperationalError("gone"))

    assert response.status_code == 503 and BUSY in response.content.decode()
