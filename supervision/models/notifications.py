"""Who hears about what: one notification per recipient and event, and the email and WeCom
deliveries with their attempts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .issues import IssueEvent, issue_visibility


class NotificationQuerySet(models.QuerySet):
    def for_reader(self, user) -> NotificationQuerySet:
        """``user``'s own notifications, about issues they may still read."""
        return self.filter(recipient=user, event__isnull=False).readable_by(user)

    def shown_to(self, user) -> NotificationQuerySet:
        """What the bell counts and the notifications page lists: ``for_reader``, and word that
        an export of theirs is ready."""
        about_issue = models.Q(event__isnull=False)
        readable = issue_visibility(user, "event__issue__")
        if readable is not None:
            about_issue &= readable
        return self.filter(
            models.Q(recipient=user)
            & (about_issue | models.Q(export__isnull=False) | models.Q(project__isnull=False))
        )

    def exports_for(self, user) -> NotificationQuerySet:
        """``user``'s notifications that an export of theirs is ready to download."""
        return self.filter(recipient=user, export__isnull=False)

    def readable_by(self, user) -> NotificationQuerySet:
        """Those about issues ``user`` may still read: after a transfer, the old department's
        notifications would otherwise still show the events of an issue now hidden from it."""
        condition = issue_visibility(user, "event__issue__")
        return self if condition is None else self.filter(condition)


class Notification(models.Model):
    """One recipient's copy of one event, word that their export is ready, or a notice about a
    project (an acceptance invitation, a 回头看 due, a survey opened): the bell counts the unread
    ones."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("接收人"),
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    event = models.ForeignKey(
        IssueEvent,
        verbose_name=_("处理记录"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    export = models.ForeignKey(
        "supervision.ExportJob",
        verbose_name=_("导出任务"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    # A notice about a project: its words and where it leads. ``topic`` names what it is about
    # (``visit:12:6m:2027-06-01``), so a sweep that runs again never repeats it.
    project = models.ForeignKey(
        "supervision.Project",
        verbose_name=_("项目"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    text = models.CharField(_("内容"), max_length=200, blank=True)
    url = models.CharField(_("链接"), max_length=200, blank=True)
    topic = models.CharField(_("主题"), max_length=80, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)
    read_at = models.DateTimeField(_("已读时间"), null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "event"], name="supervision_notification_once"
            ),
            models.UniqueConstraint(
                fields=["recipient", "topic"],
                condition=~models.Q(topic=""),
                name="supervision_notification_topic_once",
            ),
            # About exactly one thing: an issue event, an export or a project.
            models.CheckConstraint(
                condition=models.Q(event__isnull=False, export__isnull=True, project__isnull=True)
                | models.Q(event__isnull=True, export__isnull=False, project__isnull=True)
                | models.Q(event__isnull=True, export__isnull=True, project__isnull=False),
                name="supervision_notification_about_one_thing",
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="supervision_notif_unread_idx"),
            # The bell's list, newest first: the bureau receives every escalation of a province.
            models.Index(
                fields=["recipient", "-created_at", "-id"], name="supervision_notif_recent_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recipient} · {self.event or self.export or self.text}"


class Delivery(models.Model):
    """An email, a WeCom webhook post, a WeChat message or an SMS, with its attempts: failures
    are shown in the panel. WeChat and SMS rows name the person only as ``username · 139****0004``
    and keep their recipient in the JSON body: the number and the openid are looked up when sent."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("邮件")
        WEBHOOK = "webhook", _("企业微信群")
        WECHAT = "wechat", _("微信消息")  # to one person (accounts.wechat, supervision.outbound)
        SMS = "sms", _("短信")  # to one person (accounts.sms.send_notice)

    class Status(models.TextChoices):
        PENDING = "pending", _("待发送")
        SENT = "sent", _("已发送")
        FAILED = "failed", _("发送失败")

    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    target = models.CharField(_("发送到"), max_length=300)
    event = models.ForeignKey(
        IssueEvent,
        verbose_name=_("处理记录"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    subject = models.CharField(_("标题"), max_length=200)
    body = models.TextField(_("内容"))
    status = models.CharField(
        _("状态"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    last_error = models.CharField(_("最近错误"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("消息推送")
        verbose_name_plural = _("消息推送")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} → {self.target}"
