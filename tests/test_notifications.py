"""Who hears about what: the bell's notifications, email and the WeCom group robot.

Notifications and deliveries are written after a step commits; deliveries go out in the
``deliver`` task, never inside a request. The WeCom robot is played by a small HTTP server on
127.0.0.1 that records what it is sent."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from supervision import deliveries, notifications, services
from supervision.models import Delivery, Issue, IssueEvent, Notification

from .factories import image_file, make_user
from .test_api import Api

S = Issue.Status
Kind = IssueEvent.Kind


# --- helpers -----------------------------------------------------------------------------------


def page_of(response) -> str:
    return response.content.decode()


def notified(event: IssueEvent) -> set[str]:
    return set(
        Notification.objects.filter(event=event).values_list("recipient__username", flat=True)
    )


def bell(page: str) -> str:
    """The unread count the navigation bar shows ('' when there is none)."""
    start = page.find('<span class="badge text-bg-danger">')
    if start < 0:
        return ""
    start = page.index(">", start) + 1
    return page[start : page.index("<", start)]


def filing(world, token: str = "tok-notify-1", **fields) -> dict:
    data = {
        "token": token,
        "project": world.project.pk,
        "category": Issue.Category.QUALITY,
        "urgency": Issue.Urgency.NORMAL,
        "title": "5 幢北面外墙涂料起皮",
        "description": "北面外墙涂料大面积起皮，一碰就掉。",
        "building": "5 幢",
        "location": "北面外墙",
        "photos": [image_file()],
    }
    data.update(fields)
    return data


def enqueued_deliveries() -> list[int]:
    """The delivery ids the ``deliver`` task was enqueued for (database task backend)."""
    return [
        row.args_kwargs["args"][0]
        for row in DBTaskResult.objects.filter(task_path=deliveries.deliver.module_path).order_by(
            "enqueued_at"
        )
    ]


@pytest.fixture
def colleague(world):
    """A second member of the 安阳 office, to show that the rest of the department hears."""
    return make_user("anyang2", role="staff", department=world.office)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what waits for the commit (the notifications) as the step's transaction ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# --- the WeCom group robot ---------------------------------------------------------------------


class _Robot(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.bodies.append(body)
        if self.server.behaviour == "hang":
            self.server.release.wait(10)
            return
        status, answer = {
            "ok": (200, b'{"errcode":0,"errmsg":"ok"}'),
            "errcode": (200, b'{"errcode":93000,"errmsg":"invalid webhook url"}'),
            "error": (500, b"internal error"),
        }[self.server.behaviour]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def robot(monkeypatch):
    """A WeCom robot on 127.0.0.1: ``behaviour`` is ok, errcode, error (HTTP 500) or hang."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Robot)
    server.daemon_threads = True
    server.bodies = []
    server.behaviour = "ok"
    server.release = threading.Event()
    server.url = f"http://127.0.0.1:{server.server_port}/cgi-bin/webhook/send?key=test"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def nothing_listening() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key=test"


def robot_for_the_office(world, url: str) -> None:
    world.office.webhook_url = url
    world.office.save()


# --- who is notified ---------------------------------------------------------------------------


def test_department_staff_hear_of_a_new_issue_and_the_reporter_does_not(
    world, colleague, committed
):
    with committed():
        issue = world.submit()

    event = issue.events.get(kind=Kind.SUBMITTED)
    assert notified(event) == {"anyang", "anyang2"}
    assert Notification.objects.filter(event=event).count() == 2


def test_reporter_hears_of_the_accept_and_the_one_who_accepted_does_not(
    world, colleague, committed
):
    issue = world.submit()

    with committed():
        services.accept_issue(issue, actor=world.handler)

    event = issue.events.get(kind=Kind.ACCEPTED)
    assert notified(event) == {"alice", "anyang2"}
    assert not Notification.objects.filter(recipient=world.handler).exists()


def test_contractor_staff_hear_once_the_issue_is_dispatched_to_them(world, committed):
    issue = services.accept_issue(world.submit(), actor=world.handler)

    with committed():
        services.dispatch_issue(issue, actor=world.handler, department=world.contractor)

    assert notified(issue.events.get(kind=Kind.DISPATCHED)) == {"alice", "shigong"}


def test_bureau_hears_of_escalations_but_not_of_every_new_issue(world, committed):
    with committed():
        issue = world.submit()
    Issue.objects.filter(pk=issue.pk).update(sign_for_due_at=timezone.now())

    with committed():
        services.escalate_overdue()

    assert "zhujianju" not in notified(issue.events.get(kind=Kind.SUBMITTED))
    assert notified(issue.events.get(kind=Kind.ESCALATED)) == {"zhujianju", "alice", "anyang"}


def test_bureau_hears_of_an_extension_request_and_the_requester_does_not(world, committed):
    issue = world.issue_in(S.ACCEPTED)
    until = timezone.localdate() + timedelta(days=30)

    with committed():
        services.request_extension(issue, actor=world.handler, until=until, text="雨季")

    event = issue.events.get(kind=Kind.EXTENSION_REQUESTED)
    assert notified(event) == {"zhujianju", "alice"}


def test_bureau_hears_of_an_appeal(world, committed):
    issue = world.issue_in(S.REJECTED)

    with committed():
        services.appeal_issue(issue, actor=world.alice, text="不是重复问题")

    assert notified(issue.events.get(kind=Kind.APPEALED)) == {"zhujianju"}


def test_nobody_is_notified_before_the_step_commits(world):
    issue = world.submit()  # the test's transaction never commits

    assert not Notification.objects.exists()
    assert issue.events.count() == 1


def test_handling_the_same_event_twice_notifies_once(world, committed):
    with committed():
        issue = world.submit()
    event = issue.events.get()

    notifications.issue_changed(issue.pk, event.pk)

    assert Notification.objects.filter(event=event).count() == 1
    assert notified(event) == {"anyang"}


def test_handling_the_same_event_twice_emails_once(world, robot, committed):
    world.handler.email = "anyang@example.com"
    world.handler.save()
    robot_for_the_office(world, robot.url)
    with committed():
        issue = world.submit()
    event = issue.events.get()

    notifications.issue_changed(issue.pk, event.pk)

    assert Delivery.objects.filter(event=event, channel=Delivery.Channel.EMAIL).count() == 1
    assert Delivery.objects.filter(event=event, channel=Delivery.Channel.WEBHOOK).count() == 1


def test_an_event_that_is_gone_is_ignored(db):
    notifications.issue_changed(1, 999_999)

    assert not Notification.objects.exists()
    assert not Delivery.objects.exists()


# --- the bell ----------------------------------------------------------------------------------


def test_bell_shows_the_unread_count(world, client, committed):
    with committed():
        world.submit(title="第一件")
        world.submit(title="第二件")
    client.force_login(world.handler)

    response = client.get("/issues/")

    assert response.status_code == 200
    assert bell(page_of(response)) == "2"
    client.force_login(world.other_staff)
    assert bell(page_of(client.get("/issues/"))) == ""


def test_notification_list_shows_the_users_own_notifications(world, client, committed):
    with committed():
        issue = world.submit(title="楼道灯不亮")
    client.force_login(world.handler)

    response = client.get("/notifications/")

    assert response.status_code == 200
    assert issue.reference in page_of(response) and "楼道灯不亮" in page_of(response)
    client.force_login(world.other_staff)
    assert issue.reference not in page_of(client.get("/notifications/"))


def test_opening_a_notification_marks_it_read_and_goes_to_the_event(world, client, committed):
    with committed():
        issue = world.submit()
    item = Notification.objects.get(recipient=world.handler)
    client.force_login(world.handler)

    response = client.post(f"/notifications/{item.pk}/")

    assert response.status_code == 302
    assert response["Location"] == f"/issues/{issue.pk}/#event-{item.event_id}"
    item.refresh_from_db()
    assert item.read_at is not None
    assert bell(page_of(client.get("/issues/"))) == ""


def test_mark_all_read(world, client, committed):
    with committed():
        world.submit(title="第一件")
        world.submit(title="第二件")
    client.force_login(world.handler)

    response = client.post("/notifications/read/", follow=True)

    assert response.redirect_chain == [("/notifications/", 302)]
    assert "已将 2 条通知标为已读。" in page_of(response)
    assert not world.handler.notifications.filter(read_at__isnull=True).exists()


def test_another_users_notification_is_not_found(world, client, committed):
    with committed():
        world.submit()
    item = Notification.objects.get(recipient=world.handler)
    client.force_login(world.other_staff)

    assert client.post(f"/notifications/{item.pk}/").status_code == 404
    item.refresh_from_db()
    assert item.read_at is None


def test_notifications_of_an_issue_transferred_away_drop_out(world, client, committed):
    """The first office must not keep reading, through its bell, the events of an issue that
    is now another office's (as the API already does)."""
    with committed():
        issue = world.submit(title="楼道灯不亮")
        world.submit(title="围挡倒了")
    item = Notification.objects.get(recipient=world.handler, event__issue=issue)
    with committed():
        services.transfer_issue(
            issue, actor=world.handler, department=world.other_office, text="属玉海街道"
        )
    client.force_login(world.handler)

    page = page_of(client.get("/notifications/"))
    assert "楼道灯不亮" not in page and "围挡倒了" in page
    assert bell(page) == "1"
    assert client.post(f"/notifications/{item.pk}/").status_code == 404
    client.post("/notifications/read/")
    item.refresh_from_db()
    assert item.read_at is None  # never shown, never counted


def test_notifications_are_opened_by_post_and_need_login(world, client, committed):
    with committed():
        world.submit()
    item = Notification.objects.get(recipient=world.handler)

    response = client.post(f"/notifications/{item.pk}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    client.force_login(world.handler)
    assert client.get(f"/notifications/{item.pk}/").status_code == 405
    item.refresh_from_db()
    assert item.read_at is None


# --- email -------------------------------------------------------------------------------------


def test_staff_with_an_email_address_are_emailed_by_the_background_task(world, committed):
    world.handler.email = "anyang@example.com"
    world.handler.save()

    with committed():
        issue = world.submit()

    delivery = Delivery.objects.get()
    assert (delivery.channel, delivery.target, delivery.status) == (
        Delivery.Channel.EMAIL,
        "anyang@example.com",
        Delivery.Status.PENDING,
    )
    assert delivery.subject == f"【群众监督】{issue.reference} 提交问题：外墙涂料起皮"
    assert enqueued_deliveries() == [delivery.pk]
    assert mail.outbox == []  # nothing went out inside the step

    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.SENT

    (message,) = mail.outbox
    assert message.to == ["anyang@example.com"]
    assert message.subject == delivery.subject
    assert f"/issues/{issue.pk}/" in message.body
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 1, "")
    assert delivery.sent_at is not None
    assert deliveries.deliver.call(delivery.pk) == "gone"  # sent once only
    assert len(mail.outbox) == 1


def test_people_without_an_email_address_get_no_email(world, committed):
    issue = world.submit()

    with committed():
        services.accept_issue(issue, actor=world.handler)  # Alice has no address

    assert not Delivery.objects.exists()


# --- the WeCom group robot ---------------------------------------------------------------------


def test_new_issue_is_posted_to_the_departments_wecom_group(world, robot, committed):
    robot_for_the_office(world, robot.url)

    with committed():
        issue = world.submit()

    delivery = Delivery.objects.get()
    assert (delivery.channel, delivery.target) == (Delivery.Channel.WEBHOOK, robot.url)
    assert delivery.event == issue.events.get()
    assert robot.bodies == []  # the step only wrote rows
    assert enqueued_deliveries() == [delivery.pk]

    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.SENT

    (body,) = robot.bodies
    payload = json.loads(body)
    assert payload["msgtype"] == "markdown"
    content = payload["markdown"]["content"]
    assert "提交问题" in content and issue.reference in content
    assert f"/issues/{issue.pk}/" in content
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 1, "")


def test_accepting_is_not_posted_to_the_group(world, robot, committed):
    robot_for_the_office(world, robot.url)
    issue = world.submit()

    with committed():
        services.accept_issue(issue, actor=world.handler)

    assert not Delivery.objects.exists()


def test_webhook_answering_500_fails_after_three_attempts(world, client, robot, committed):
    robot.behaviour = "error"
    robot_for_the_office(world, robot.url)
    client.force_login(world.alice)

    with committed():
        response = client.post("/issues/new/", filing(world))

    assert response.status_code == 302
    delivery = Delivery.objects.get(channel=Delivery.Channel.WEBHOOK)
    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.PENDING
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_error) == (1, "HTTP 500")
    retry = DBTaskResult.objects.filter(task_path=deliveries.deliver.module_path).latest(
        "enqueued_at"
    )
    assert retry.run_after is not None and retry.run_after > timezone.now()  # after a pause

    deliveries.deliver.call(delivery.pk)
    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.FAILED

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 3, "HTTP 500")
    assert delivery.sent_at is None
    assert len(robot.bodies) == 3
    assert deliveries.deliver.call(delivery.pk) == "gone"
    assert len(robot.bodies) == 3


def test_webhook_refusing_with_an_errcode_is_retried(world, robot, committed):
    robot.behaviour = "errcode"
    robot_for_the_office(world, robot.url)
    with committed():
        world.submit()
    delivery = Delivery.objects.get()

    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.PENDING

    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_error) == (1, "errcode 93000")


def test_webhook_that_never_answers_times_out_and_fails(world, robot, committed, monkeypatch):
    monkeypatch.setattr(deliveries, "TIMEOUT_SECONDS", 0.5)
    robot.behaviour = "hang"
    robot_for_the_office(world, robot.url)
    with committed():
        world.submit()
    delivery = Delivery.objects.get()

    started = time.monotonic()
    for _ in range(deliveries.MAX_ATTEMPTS):
        deliveries.deliver.call(delivery.pk)
    elapsed = time.monotonic() - started

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert "timed out" in delivery.last_error
    assert elapsed < 5


def test_unreachable_webhook_fails_cleanly(world, committed):
    robot_for_the_office(world, nothing_listening())
    with committed():
        world.submit()
    delivery = Delivery.objects.get()

    for _ in range(deliveries.MAX_ATTEMPTS):
        deliveries.deliver.call(delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.last_error  # e.g. "[Errno 111] Connection refused"


def test_filing_is_fast_even_when_the_webhook_hangs(world, client, robot, committed):
    robot.behaviour = "hang"  # and the real 5-second timeout
    robot_for_the_office(world, robot.url)
    client.force_login(world.alice)

    started = time.monotonic()
    with committed():
        response = client.post("/issues/new/", filing(world))
    elapsed = time.monotonic() - started

    assert response.status_code == 302
    assert elapsed < 3
    assert robot.bodies == []  # the request never called the robot
    delivery = Delivery.objects.get(channel=Delivery.Channel.WEBHOOK)
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert enqueued_deliveries() == [delivery.pk]


def test_the_api_marks_read_only_what_its_reader_may_still_read(world, committed):
    """The pages and the API mark through one function: the API's 「全部标为已读」 used to mark
    the notifications of an issue transferred away too, which the person can no longer see."""
    with committed():
        issue = world.submit(title="楼道灯不亮")
        world.submit(title="围挡倒了")
    hidden = Notification.objects.get(recipient=world.handler, event__issue=issue)
    with committed():
        services.transfer_issue(
            issue, actor=world.handler, department=world.other_office, text="属玉海街道"
        )
    api = Api(world.handler)

    assert api.post(f"/notifications/{hidden.pk}/read").status_code == 404
    answer = api.post("/notifications/read")

    assert answer.status_code == 200 and answer.json() == {"marked": 1}
    hidden.refresh_from_db()
    assert hidden.read_at is None
    assert not Notification.objects.for_reader(world.handler).filter(read_at__isnull=True)


def test_marking_read_is_one_rule_for_pages_and_api(world, committed):
    with committed():
        world.submit(title="楼道灯不亮")
        world.submit(title="围挡倒了")
    first, second = Notification.objects.filter(recipient=world.handler).order_by("pk")

    assert notifications.mark_read(world.handler, first.pk) == 1
    assert notifications.mark_read(world.handler, first.pk) == 0  # already read
    assert notifications.mark_read(world.bob, second.pk) == 0  # not bob's
    assert notifications.mark_read(world.handler) == 1
