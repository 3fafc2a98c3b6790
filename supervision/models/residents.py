"""Residents decide and look: consultations with their households and ballots, and patrols."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..addresses import address
from .catalogue import Project, ScopeItem, TimestampedModel
from .issues import Issue, StoredPhoto


class Consultation(TimestampedModel):
    """意愿征询: residents decide 改不改、改什么、怎么改、如何管, one ballot per household."""

    project = models.ForeignKey(
        Project, verbose_name=_("项目"), on_delete=models.CASCADE, related_name="consultations"
    )
    title = models.CharField(_("标题"), max_length=100)
    opens_on = models.DateField(_("开始日期"))
    closes_on = models.DateField(_("截止日期"))
    # The rule: at least participation of the households vote, and at least approval of those
    # who voted agree, for an item to be adopted. Default 2/3 and 2/3.
    participation_numerator = models.PositiveSmallIntegerField(_("参与率分子"), default=2)
    participation_denominator = models.PositiveSmallIntegerField(_("参与率分母"), default=3)
    approval_numerator = models.PositiveSmallIntegerField(_("同意率分子"), default=2)
    approval_denominator = models.PositiveSmallIntegerField(_("同意率分母"), default=3)
    applied_at = models.DateTimeField(_("结果采纳时间"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("发起人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("意愿征询")
        verbose_name_plural = _("意愿征询")
        ordering = ["-opens_on", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_on__gte=F("opens_on")),
                name="supervision_consultation_closes_after_opening",
            ),
            models.CheckConstraint(
                condition=Q(participation_denominator__gt=0)
                & Q(approval_denominator__gt=0)
                & Q(participation_numerator__lte=F("participation_denominator"))
                & Q(approval_numerator__lte=F("approval_denominator")),
                name="supervision_consultation_rule_is_a_fraction",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("consultation", args=[self.pk])

    def is_open(self, today: date | None = None) -> bool:
        today = today or timezone.localdate()
        return self.opens_on <= today <= self.closes_on

    def is_closed(self, today: date | None = None) -> bool:
        return (today or timezone.localdate()) > self.closes_on


class ConsultationItem(models.Model):
    """One question of a consultation: whether to renovate, a proposed scope item (how, by its
    options), or how the community will be managed afterwards."""

    class Kind(models.TextChoices):
        RENOVATE = "renovate", _("是否改造")
        SCOPE = "scope", _("改造内容")
        MANAGEMENT = "management", _("改造后管理")

    consultation = models.ForeignKey(
        Consultation, verbose_name=_("征询"), on_delete=models.CASCADE, related_name="items"
    )
    kind = models.CharField(_("类型"), max_length=12, choices=Kind.choices, default=Kind.SCOPE)
    area = models.CharField(
        _("改造方面"), max_length=20, choices=ScopeItem.Area.choices, blank=True
    )
    text = models.CharField(_("内容"), max_length=200)
    options = models.TextField(
        _("方案选项"), blank=True, help_text=_("每行一个选项，如：真石漆 / 普通涂料；可不填")
    )
    budget = models.DecimalField(
        _("估算投资（万元）"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    position = models.PositiveSmallIntegerField(_("排序"), default=0)

    class Meta:
        verbose_name = _("征询事项")
        verbose_name_plural = _("征询事项")
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="scope") | ~Q(area=""),
                name="supervision_consultationitem_scope_has_area",
            ),
        ]

    def __str__(self) -> str:
        return self.text

    def option_list(self) -> list[str]:
        return [line.strip() for line in self.options.splitlines() if line.strip()]


class Household(models.Model):
    """One household of a consultation, with its one-time voting code."""

    consultation = models.ForeignKey(
        Consultation, verbose_name=_("征询"), on_delete=models.CASCADE, related_name="households"
    )
    building = models.CharField(_("楼栋"), max_length=20)
    unit = models.CharField(_("单元"), max_length=20, blank=True)
    room = models.CharField(_("室"), max_length=20)
    code = models.CharField(_("投票码"), max_length=20, unique=True)

    class Meta:
        verbose_name = _("住户")
        verbose_name_plural = _("住户")
        ordering = ["building", "unit", "room"]
        constraints = [
            models.UniqueConstraint(
                fields=["consultation", "building", "unit", "room"],
                name="supervision_household_unique_address",
            ),
        ]

    def __str__(self) -> str:
        return address(self.building, self.unit, self.room)


class Ballot(TimestampedModel):
    """A household's one ballot (a resident may change it until the close)."""

    household = models.OneToOneField(
        Household, verbose_name=_("住户"), on_delete=models.CASCADE, related_name="ballot"
    )
    consultation = models.ForeignKey(
        Consultation, verbose_name=_("征询"), on_delete=models.CASCADE, related_name="ballots"
    )
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("代录人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("纸质选票由监督员代录时记录其姓名"),
    )

    class Meta:
        verbose_name = _("选票")
        verbose_name_plural = _("选票")
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return str(self.household)


class BallotAnswer(models.Model):
    ballot = models.ForeignKey(Ballot, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey(ConsultationItem, on_delete=models.CASCADE, related_name="answers")
    agree = models.BooleanField(_("同意"))
    option = models.CharField(_("选择的方案"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("选票内容")
        verbose_name_plural = _("选票内容")
        constraints = [
            models.UniqueConstraint(fields=["ballot", "item"], name="supervision_answer_once"),
        ]

    def __str__(self) -> str:
        return f"{self.item}: {self.agree}"


# --- patrols -----------------------------------------------------------------------------------


class Patrol(models.Model):
    """巡查记录: a supervisor's site visit with its checklist."""

    class Check(models.TextChoices):
        QUALITY = "quality", _("施工质量")
        PROGRESS = "progress", _("进度是否按计划")
        SAFETY = "safety", _("安全措施")
        FENCING = "fencing", _("围挡")
        DUST = "dust", _("扬尘")
        NOISE = "noise", _("噪声")
        DEBRIS = "debris", _("建筑垃圾")
        ACCESS = "access", _("居民通行")

    project = models.ForeignKey(
        Project, verbose_name=_("项目"), on_delete=models.CASCADE, related_name="patrols"
    )
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("监督员"),
        on_delete=models.PROTECT,
        related_name="patrols",
    )
    note = models.TextField(_("总体情况"), blank=True)
    created_at = models.DateTimeField(_("巡查时间"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("巡查记录")
        verbose_name_plural = _("巡查记录")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.project} {timezone.localtime(self.created_at):%Y-%m-%d}"

    def get_absolute_url(self) -> str:
        return reverse("patrol-detail", args=[self.pk])


class PatrolCheck(models.Model):
    patrol = models.ForeignKey(Patrol, on_delete=models.CASCADE, related_name="checks")
    item = models.CharField(_("检查项"), max_length=20, choices=Patrol.Check.choices)
    ok = models.BooleanField(_("正常"), default=True)
    note = models.CharField(_("问题说明"), max_length=500, blank=True)
    issue = models.OneToOneField(
        Issue,
        verbose_name=_("转为问题"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="patrol_check",
    )

    class Meta:
        verbose_name = _("巡查项")
        verbose_name_plural = _("巡查项")
        ordering = ["patrol", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["patrol", "item"], name="supervision_patrol_item_once"),
            models.CheckConstraint(
                condition=Q(ok=True) | ~Q(note=""), name="supervision_patrol_problem_has_note"
            ),
        ]

    def __str__(self) -> str:
        return self.get_item_display()


class PatrolPhoto(StoredPhoto):
    check_item = models.ForeignKey(PatrolCheck, on_delete=models.CASCADE, related_name="photos")

    class Meta(StoredPhoto.Meta):
        verbose_name = _("巡查照片")
        verbose_name_plural = _("巡查照片")
