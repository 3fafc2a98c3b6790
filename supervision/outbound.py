"""消息提醒: the events that matter to a supervisor, sent by WeChat template message or by SMS as
each person chose in 设置 (accounts.models.MessageChoices); in-app notifications are always on.

The events: their issue was signed for (签收), answered (答复) or rectified (整改完成, 「请去验收」);
the reminder to check it (提醒评价); a resident's letter waiting (居民来信). ``queue_messages``
takes a new in-app ``Notification`` and writes one ``Delivery`` per chosen channel, queued with
``enqueue_delivery`` (background task, timeout, three tries, failures in the panel); ``send``
makes one attempt (called by ``deliveries.attempt``).

A row names its person as ``username · 微信`` or ``username · 139****0004`` and keeps the user's
id in its JSON body: the openid (sealed in ``WeChatBinding``) and the number are looked up only
when the message goes out, so neither is in the table, the panel or a log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import sms, wechat
from accounts.models import MessageChoices, WeChatBinding

from .models import Delivery, IssueEvent, Letter, Notification
from .security import mask_mobile

Event = MessageChoices.Event
Kind = IssueEvent.Kind
CHANNELS = (Delivery.Channel.WECHAT, Delivery.Channel.SMS)

EVENT_OF_KIND = {
    Kind.ACCEPTED: Event.ACCEPTED,
    Kind.ANSWERED: Event.ANSWERED,
    Kind.RECTIFIED: Event.RECTIFIED,
    Kind.VERIFY_REMINDED: Event.REMINDER,
}
HEADLINES = {
    Event.ACCEPTED: gettext_lazy("您反映的问题已签收"),
    Event.ANSWERED: gettext_lazy("您反映的问题已答复，请去查看"),
    Event.RECTIFIED: gettext_lazy("您反映的问题已整改，请去验收"),
    Event.REMINDER: gettext_lazy("您反映的问题等您验收评价"),
    Event.LETTER: gettext_lazy("有居民来信等您处理"),
}


def chosen_channels(user, event: str) -> list[str]:
    """The channels ``user`` hears about ``event`` on, among those open to them now."""
    if not (user.is_active and user.is_supervisor):
        return []
    row = MessageChoices.objects.filter(user=user).first()
    wanted_wechat = event in (row.wechat if row else Event.values)
    wanted_sms = event in (row.sms if row else [])
    found = []
    if (
        wanted_wechat
        and wechat.messages_enabled()
        and wechat.may_bind(user)
        and WeChatBinding.objects.filter(user=user).exists()
    ):
        found.append(Delivery.Channel.WECHAT)
    if wanted_sms and user.mobile and sms.notices_enabled():
        found.append(Delivery.Channel.SMS)
    return found


def _target(user, channel: str) -> str:
    shown = _("微信") if channel == Delivery.Channel.WECHAT else mask_mobile(user.mobile)
    return f"{user.username} · {shown}"


def _queue(
    user, event: str, *, ref: str, title: str, url: str, issue_event: IssueEvent | None = None
) -> list[Delivery]:
    from .deliveries import enqueue_delivery  # noqa: PLC0415 (deliveries imports this lazily)

    made = []
    headline = str(HEADLINES[event])
    for channel in chosen_channels(user, event):
        target = _target(user, channel)
        if (
            issue_event is not None
            and Delivery.objects.filter(event=issue_event, channel=channel, target=target).exists()
        ):
            continue  # this event was handled before
        payload = {
            "user": user.pk,
            "event": event,
            "headline": headline,
            "ref": ref,
            "title": title[:60],
            "time": timezone.localtime().strftime("%Y-%m-%d %H:%M"),
            "url": url,
        }
        delivery = Delivery.objects.create(
            channel=channel,
            target=target,
            event=issue_event,
            subject=f"{headline}：{ref}"[:200],
            body=json.dumps(payload, ensure_ascii=False),
        )
        enqueue_delivery(delivery.pk)
        made.append(delivery)
    return made


def queue_messages(notification: Notification) -> list[Delivery]:
    """The WeChat and SMS deliveries for a new in-app ``notification``: its recipient's chosen
    channels, for the events above, and only for the issue's reporter."""
    issue_event = notification.event
    if issue_event is None or issue_event.kind not in EVENT_OF_KIND:
        return []
    issue = issue_event.issue
    if issue.reporter_id != notification.recipient_id:
        return []
    return _queue(
        notification.recipient,
        EVENT_OF_KIND[issue_event.kind],
        ref=issue.reference,
        title=issue.title,
        url=f"{_site()}{reverse('issue-detail', args=[issue.pk])}",
        issue_event=issue_event,
    )


def queue_event_messages(event: IssueEvent, people: Iterable) -> list[Delivery]:
    """``queue_messages`` for each of ``people`` (the recipients ``notifications.issue_changed``
    gave the in-app notification to)."""
    made: list[Delivery] = []
    for user in people:
        made += queue_messages(Notification(recipient=user, event=event))
    return made


def queue_letter_messages(letter: Letter, users: Iterable | None = None) -> list[Delivery]:
    """A resident's letter waits: to each of the project's serving supervisors (or ``users``)
    who chose to hear about letters. Never the resident's number."""
    if users is None:
        from .letters import _supervisors_of  # noqa: PLC0415

        users = _supervisors_of(letter.project_id).order_by("pk")
    url = f"{_site()}{reverse('letter-triage', args=[letter.pk])}"
    made: list[Delivery] = []
    for user in users:
        made += _queue(user, Event.LETTER, ref=letter.code, title=letter.summary, url=url)
    return made


def _site() -> str:
    from .notifications import absolute_url  # noqa: PLC0415

    return absolute_url("")


# --- one attempt ------------------------------------------------------------------------------


def send(delivery: Delivery) -> str | None:
    """One try of a WeChat or SMS delivery: None when it went out, else what went wrong (never
    the openid or the number)."""
    try:
        payload = json.loads(delivery.body)
        user = get_user_model().objects.filter(pk=int(payload["user"]), is_active=True).first()
    except (ValueError, KeyError, TypeError):
        return "unreadable delivery"
    if user is None:
        return "recipient gone"
    if delivery.channel == Delivery.Channel.WECHAT:
        openid = wechat.openid_of(user) if wechat.messages_enabled() else None
        if not openid:
            return "wechat not bound or not configured"
        try:
            wechat.send_template(
                openid,
                url=str(payload.get("url", "")),
                data={
                    "first": str(payload.get("headline", "")),
                    "keyword1": f"{payload.get('ref', '')} {payload.get('title', '')}".strip(),
                    "keyword2": str(payload.get("headline", "")),
                    "keyword3": str(payload.get("time", "")),
                    "remark": _("点击查看详情。"),
                },
            )
        except wechat.WeChatError as error:
            return str(error)
        return None
    if not user.mobile:
        return "no mobile number"
    try:
        sms.send_notice(user.mobile, str(payload.get("ref", "")), str(payload.get("headline", "")))
    except sms.SmsDeliveryError as error:
        return str(error) or "sms failed"
    return None
