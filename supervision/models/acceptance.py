"""竣工验收 with residents (问效于民): the acceptance, who takes part, what each one said, and
its thread of events."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from ..addresses import address
from .catalogue import Project, TimestampedModel
from .issues import Issue, StoredPhoto
from .residents import Household


class Acceptance(TimestampedModel):
    """竣工验收: one completion check of a project; a failed one is held again as a new row."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("待验收")
        PASSED = "passed", _("验收通过")
        FAILED = "failed", _("验收未通过")

    project = models.ForeignKey(
        Project, verbose_name=_("项目"), on_delete=models.CASCADE, related_name="acceptances"
    )
    held_on = models.DateField(_("验收日期"))
    place = models.CharField(_("地点"), max_length=100)
    status = models.CharField(
        _("状态"), max_length=12, choices=Status.choices, default=Status.SCHEDULED
    )
    # The rule in force when it was scheduled (settings.ACCEPTANCE_MIN_AGREE), kept with it.
    agree_numerator = models.PositiveSmallIntegerField(_("同意比例分子"), default=2)
    agree_denominator = models.PositiveSmallIntegerField(_("同意比例分母"), default=3)
    no_open_urgent = models.BooleanField(_("须无未办结的紧急问题"), default=True)
    outcome = models.TextField(_("验收结论"), blank=True)
    scheduled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("组织人"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("结束人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    closed_at = models.DateTimeField(_("结束时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("竣工验收")
        verbose_name_plural = _("竣工验收")
        ordering = ["-held_on", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["scheduled", "passed", "failed"]),
                name="supervision_acceptance_status_valid",
            ),
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status="scheduled"),
                name="supervision_acceptance_one_scheduled_per_project",
            ),
            models.CheckConstraint(
                condition=Q(agree_denominator__gt=0)
                & Q(agree_numerator__lte=models.F("agree_denominator")),
                name="supervision_acceptance_rule_is_a_fraction",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} {self.held_on:%Y-%m-%d}"

    def get_absolute_url(self) -> str:
        return reverse("acceptance-record", args=[self.project_id]) + f"?round={self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.SCHEDULED


class AcceptanceView(models.Model):
    """One participant of an acceptance and, once recorded, their view: a serving supervisor of
    the project (invited automatically) or a household chosen as residents' representative."""

    class Role(models.TextChoices):
        SUPERVISOR = "supervisor", _("群众监督员")
        REPRESENTATIVE = "representative", _("居民代表")

    class Opinion(models.TextChoices):
        PENDING = "", _("未表态")
        AGREE = "agree", _("同意验收")
        RESERVATION = "reservation", _("有保留意见")

    acceptance = models.ForeignKey(
        Acceptance,
        verbose_name=pgettext_lazy("an acceptance", "验收"),
        on_delete=models.CASCADE,
        related_name="views",
    )
    role = models.CharField(_("身份"), max_length=16, choices=Role.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("监督员"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="acceptance_views",
    )
    household = models.ForeignKey(
        Household,
        verbose_name=_("住户"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="acceptance_views",
    )
    opinion = models.CharField(
        _("意见"), max_length=12, choices=Opinion.choices, default=Opinion.PENDING, blank=True
    )
    note = models.TextField(_("说明"), blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("代录人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    recorded_at = models.DateTimeField(_("表态时间"), null=True, blank=True)
    # 验收遗留: the reservation carried on as an issue, with the deadline asked for its fix.
    issue = models.OneToOneField(
        Issue,
        verbose_name=_("验收遗留问题"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="acceptance_view",
    )
    deadline = models.DateField(_("整改期限"), null=True, blank=True)

    class Meta:
        verbose_name = _("验收意见")
        verbose_name_plural = _("验收意见")
        ordering = ["acceptance", "role", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(role="supervisor") & Q(user__isnull=False) & Q(household__isnull=True))
                | (Q(role="representative") & Q(household__isnull=False) & Q(user__isnull=True)),
                name="supervision_acceptanceview_one_participant",
            ),
            models.UniqueConstraint(
                fields=["acceptance", "user"], name="supervision_acceptanceview_user_once"
            ),
            models.UniqueConstraint(
                fields=["acceptance", "household"],
                name="supervision_acceptanceview_household_once",
            ),
            models.CheckConstraint(
                condition=Q(opinion__in=["", "agree", "reservation"]),
                name="supervision_acceptanceview_opinion_valid",
            ),
            models.CheckConstraint(
                condition=~Q(opinion="reservation") | ~Q(note=""),
                name="supervision_acceptanceview_reservation_has_note",
            ),
        ]

    def __str__(self) -> str:
        return str(self.household) if self.household_id else str(self.user)

    @property
    def public_name(self) -> str:
        """Who, as the public record shows it: a supervisor by name (they are appointed in
        public), a household by building and unit only."""
        if self.household_id:
            return address(self.household.building, self.household.unit)
        return str(self.user)


class AcceptancePhoto(StoredPhoto):
    view = models.ForeignKey(AcceptanceView, on_delete=models.CASCADE, related_name="photos")

    class Meta(StoredPhoto.Meta):
        verbose_name = _("验收照片")
        verbose_name_plural = _("验收照片")


class AcceptanceEvent(models.Model):
    """One step of an acceptance, by whom and when."""

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled", _("安排验收")
        RECORDED = "recorded", _("记录意见")
        LEFTOVER = "leftover", _("转为验收遗留问题")
        PASSED = "passed", _("验收通过")
        FAILED = "failed", _("验收未通过")

    acceptance = models.ForeignKey(Acceptance, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("类型"), max_length=12, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("操作人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    view = models.ForeignKey(
        AcceptanceView, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    text = models.TextField(_("内容"), blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("验收记录")
        verbose_name_plural = _("验收记录")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.acceptance} {self.get_kind_display()}"
