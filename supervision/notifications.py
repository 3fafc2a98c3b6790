"""Who hears about what, after a step has committed.

Every event gives each person involved in the issue (the reporter, the staff of its department
and of the contractor it was dispatched to; the bureau for escalations, appeals and extension
requests: the bureau of the issue's county, never another county's) one ``Notification`` —
never the person who acted; an answer to the province's or the city's 督办 (回复督办) also goes to
the oversight who pressed. A support (附议) is for the reporter only; the department reads the count in its queue. Email goes to those with an
address; the department's WeCom group robot hears about new, overdue and closed issues. Both go
out in background tasks, so a request never waits on a mail server or a webhook.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from .deliveries import enqueue_delivery
from .models import Delivery, IssueEvent, Notification, issue_county

logger = logging.getLogger(__name__)
Kind = IssueEvent.Kind

FOR_THE_BUREAU = {Kind.ESCALATED, Kind.APPEALED, Kind.EXTENSION_REQUESTED}
FOR_THE_GROUP_ROBOT = {Kind.SUBMITTED, Kind.ESCALATED, Kind.VERIFIED, Kind.APPEALED}


def mark_read(user, pk: int | None = None) -> int:
    """Mark ``user``'s unread notifications read, one (``pk``) or all, and return how many.

    Only those about issues they may still read: after a transfer, the old department's
    notifications of an issue it no longer sees are neither shown nor touched; word of a ready
    export counts too. The pages and the API both mark through here.
    """
    unread = Notification.objects.shown_to(user).filter(read_at__isnull=True)
    if pk is not None:
        unread = unread.filter(pk=pk)
    return unread.update(read_at=timezone.now())


def notify_about_project(users, *, project, text: str, url: str, topic: str) -> int:
    """A notice about ``project`` to each of ``users``, once per ``topic`` however often it is
    asked for (the sweep that books 回头看 runs every 15 minutes). Returns how many were new."""
    people = {user.pk: user for user in users if user is not None and user.is_active}
    if not people:
        return 0
    before = set(
        Notification.objects.filter(recipient__in=people, topic=topic).values_list(
            "recipient_id", flat=True
        )
    )
    now = timezone.now()
    fresh = [
        Notification(
            recipient=user, project=project, text=text[:200], url=url, topic=topic, created_at=now
        )
        for pk, user in people.items()
        if pk not in before
    ]
    Notification.objects.bulk_create(fresh, ignore_conflicts=True)
    return len(fresh)


def recipients(event: IssueEvent) -> list:
    """Everyone involved in the event's issue, without the one who acted."""
    issue = event.issue
    User = get_user_model()
    involved = Q(pk=issue.reporter_id)
    if event.kind == Kind.VERIFY_REMINDED:  # only the reporter is asked to check
        return list(User.objects.filter(involved, is_active=True))
    if event.kind == Kind.SUPPORTED:
        # The reporter hears that others see it too. The department does not get a message for
        # every "me too" (a busy issue would flood its mail): it sees the count in its queue.
        users = User.objects.filter(involved, is_active=True)
        return list(users.exclude(pk=event.actor_id) if event.actor_id else users)
    departments = [d for d in (issue.department_id, issue.contractor_id) if d]
    if departments:
        involved |= Q(department_id__in=departments, role=User.Role.STAFF)
    if event.kind in FOR_THE_BUREAU:
        # The bureau of the issue's county (the oversight's 督办 too): no other county's.
        involved |= Q(role=User.Role.BUREAU, region=issue_county(issue))
    if event.kind == Kind.OVERSIGHT_REPLIED:
        # The oversight who pressed (督办) hears the county's answer.
        pressed = IssueEvent.objects.filter(
            issue=issue.pk, kind=Kind.ESCALATED, actor__role=User.Role.OVERSIGHT
        )
        involved |= Q(role=User.Role.OVERSIGHT, pk__in=pressed.values("actor"))
    users = User.objects.filter(involved, is_active=True)
    if event.actor_id:
        users = users.exclude(pk=event.actor_id)
    return list(users.order_by("pk"))


def issue_changed(issue_id: int, event_id: int) -> None:
    """Called after the transaction of a workflow step has committed."""
    event = (
        IssueEvent.objects.select_related(
            "issue__project__neighbourhood__subdistrict",
            "issue__department",
            "issue__contractor",
            "actor",
        )
        .filter(pk=event_id)
        .first()
    )
    if event is None:
        return
    people = recipients(event)
    first_time = not Notification.objects.filter(event=event).exists() and not (
        Delivery.objects.filter(event=event).exists()
    )
    Notification.objects.bulk_create(
        [Notification(recipient=user, event=event) for user in people], ignore_conflicts=True
    )
    subject, body = describe(event)
    deliveries = [
        Delivery(
            channel=Delivery.Channel.EMAIL,
            target=user.email,
            event=event,
            subject=subject,
            body=body,
        )
        for user in people
        if user.email
    ]
    department = event.issue.department
    if event.kind in FOR_THE_GROUP_ROBOT and department is not None and department.webhook_url:
        deliveries.append(
            Delivery(
                channel=Delivery.Channel.WEBHOOK,
                target=department.webhook_url,
                event=event,
                subject=subject,
                body=markdown(event),
            )
        )
    if not first_time:
        return  # this event was handled before: mail and webhooks went out then
    for delivery in deliveries:
        delivery.save()
        enqueue_delivery(delivery.pk)
    # WeChat and SMS, for the events each person chose (settings · 消息提醒). Imported here:
    # outbound reaches accounts.sms, which the accounts app's own modules import early.
    from . import outbound  # noqa: PLC0415

    outbound.queue_event_messages(event, people)


def absolute_url(path: str) -> str:
    """A link for a message read outside the site (email, WeCom, the digest pasted into the
    group): the site's own address (``settings.SITE_URL``) and ``path``."""
    return f"{settings.SITE_URL}{path}"


def link(event: IssueEvent) -> str:
    return absolute_url(reverse("issue-detail", args=[event.issue_id]))


def describe(event: IssueEvent) -> tuple[str, str]:
    issue = event.issue
    who = str(event.actor) if event.actor else _("系统")
    subject = _("【群众监督】%(ref)s %(kind)s：%(title)s") % {
        "ref": issue.reference,
        "kind": event.get_kind_display(),
        "title": issue.title,
    }
    lines = [
        _("项目：%(project)s") % {"project": issue.project},
        _("问题：%(ref)s %(title)s") % {"ref": issue.reference, "title": issue.title},
        *([_("位置：%(place)s") % {"place": issue.place}] if issue.place else []),
        _("%(who)s：%(kind)s") % {"who": who, "kind": event.get_kind_display()},
    ]
    if event.text:
        lines.append(event.text)
    lines.append(_("状态：%(status)s") % {"status": issue.get_status_display()})
    lines.append(link(event))
    return subject, "\n".join(lines)


def markdown(event: IssueEvent) -> str:
    """The WeCom group robot's short markdown message."""
    issue = event.issue
    colour = "warning" if event.kind == Kind.ESCALATED else "info"
    return "\n".join(
        [
            f'**<font color="{colour}">{event.get_kind_display()}</font>** '
            f"{issue.reference} {issue.title}",
            f"> {_('项目')}：{issue.project}",
            f"> {_('状态')}：{issue.get_status_display()}",
            f"[{_('查看详情')}]({link(event)})",
        ]
    )
