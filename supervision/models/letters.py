"""Residents speak (居民来信) and say "me too" (附议).

A resident without an account writes a letter from the project's page (the QR on the site
board); the project's supervisors carry it: answer it, file it as an issue on the residents'
behalf, add it as support to an issue that already exists, or decline it with a reason. A letter
holds personal data (an optional mobile number for a reply): it is never public, never exported
and never in an API answer, and the number is erased 180 days after the letter is closed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .catalogue import Project
from .issues import Issue, StoredPhoto


class Letter(models.Model):
    """居民来信: one resident's letter about a project, followed by its 查询码."""

    class Status(models.TextChoices):
        NEW = "new", _("待处理")
        ANSWERED = "answered", _("已答复")
        FILED = "filed", _("已转为问题")
        SUPPORTED = "supported", _("已附议到问题")
        DECLINED = "declined", _("不予采纳")

    # Triage ends the letter's own life: what follows is the issue's.
    OPEN_STATUSES = (Status.NEW,)

    project = models.ForeignKey(
        Project, verbose_name=_("项目"), on_delete=models.CASCADE, related_name="letters"
    )
    code = models.CharField(_("查询码"), max_length=12, unique=True, editable=False)
    summary = models.CharField(_("一句话说明"), max_length=100)
    details = models.TextField(_("详细情况"), blank=True)
    building = models.CharField(_("楼栋"), max_length=20, blank=True)
    unit = models.CharField(_("单元"), max_length=20, blank=True)
    # Only for a reply by phone: masked wherever it is shown, erased 180 days after closing.
    mobile = models.CharField(_("联系电话"), max_length=11, blank=True)
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.NEW)
    answer = models.TextField(_("答复"), blank=True)
    decline_reason = models.CharField(_("不予采纳的原因"), max_length=300, blank=True)
    issue = models.ForeignKey(
        Issue,
        verbose_name=_("对应问题"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="letters",
    )
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("处理人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    handled_at = models.DateTimeField(_("处理时间"), null=True, blank=True)
    triage_due_at = models.DateTimeField(_("处理时限"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("提醒时间"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("转街道时间"), null=True, blank=True)
    # Who sent it, as a keyed digest of the address: enough to refuse a repeat, not to find them.
    sender_digest = models.CharField(max_length=64, blank=True, editable=False)
    text_digest = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("居民来信")
        verbose_name_plural = _("居民来信")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["new", "answered", "filed", "supported", "declined"]),
                name="supervision_letter_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["filed", "supported"]) | Q(issue__isnull=False),
                name="supervision_letter_filed_has_issue",
            ),
        ]
        indexes = [
            models.Index(
                fields=["project", "status", "-created_at"], name="supervision_letter_inbox"
            ),
            models.Index(fields=["sender_digest", "-created_at"], name="supervision_letter_sender"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.summary}"

    def get_absolute_url(self) -> str:
        return reverse("letter-track", args=[self.code])

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def masked_mobile(self) -> str:
        return f"{self.mobile[:3]}****{self.mobile[-4:]}" if len(self.mobile) == 11 else ""


class LetterPhoto(StoredPhoto):
    """A photo sent with a letter, through the same intake as an issue's photos."""

    letter = models.ForeignKey(Letter, on_delete=models.CASCADE, related_name="photos")

    class Meta(StoredPhoto.Meta):
        verbose_name = _("来信照片")
        verbose_name_plural = _("来信照片")


class LetterEvent(models.Model):
    """One step of a letter's triage, by whom and when (the letter's own thread)."""

    class Kind(models.TextChoices):
        SENT = "sent", _("居民来信")
        ANSWERED = "answered", _("答复")
        FILED = "filed", _("转为问题")
        SUPPORTED = "supported", _("附议到问题")
        DECLINED = "declined", _("不予采纳")
        REMINDED = "reminded", _("提醒处理")
        ESCALATED = "escalated", _("转街道督促")
        ERASED = "erased", _("删除联系电话")

    letter = models.ForeignKey(Letter, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("类型"), max_length=12, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("操作人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    text = models.TextField(_("内容"), blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("来信处理记录")
        verbose_name_plural = _("来信处理记录")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.letter.code} {self.get_kind_display()}"


class Support(models.Model):
    """附议: a supervisor's "me too" on an issue, or a resident's letter added to it. One per
    person (or letter) per issue; ``Issue.support_count`` keeps the total for lists and queues."""

    issue = models.ForeignKey(
        Issue, verbose_name=_("问题"), on_delete=models.CASCADE, related_name="supports"
    )
    supporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("附议人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="supports",
    )
    letter = models.OneToOneField(
        Letter,
        verbose_name=_("居民来信"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="support",
    )
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("附议")
        verbose_name_plural = _("附议")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["issue", "supporter"],
                condition=Q(supporter__isnull=False),
                name="supervision_support_once_per_person",
            ),
            models.CheckConstraint(
                condition=Q(supporter__isnull=False) | Q(letter__isnull=False),
                name="supervision_support_has_someone",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.issue.reference} +1"
