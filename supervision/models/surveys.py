"""问效于民: after acceptance, a household satisfaction survey that reuses the consultation's
household codes. One answer per household, changeable until the close."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .catalogue import Project, ScopeItem, TimestampedModel
from .issues import Issue
from .residents import Household

Rating = Issue.Rating


class Survey(TimestampedModel):
    """满意度调查: one project's survey after acceptance, opened and closed by the bureau."""

    project = models.ForeignKey(
        Project, verbose_name=_("项目"), on_delete=models.CASCADE, related_name="surveys"
    )
    opens_on = models.DateField(_("开始日期"))
    closes_on = models.DateField(_("截止日期"))
    # The areas asked about, fixed when the survey opens: those actually renovated.
    areas = models.JSONField(_("调查的改造方面"), default=list, blank=True)
    closed_at = models.DateTimeField(_("提前结束时间"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("发起人"),
        null=True,
        blank=True,
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

    class Meta:
        verbose_name = _("满意度调查")
        verbose_name_plural = _("满意度调查")
        ordering = ["-opens_on", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_on__gte=F("opens_on")),
                name="supervision_survey_closes_after_opening",
            ),
        ]

    def __str__(self) -> str:
        return _("%(project)s 满意度调查") % {"project": self.project}

    def get_absolute_url(self) -> str:
        return reverse("survey", args=[self.pk])

    def is_closed(self, today: date | None = None) -> bool:
        return self.closed_at is not None or (today or timezone.localdate()) > self.closes_on

    def is_open(self, today: date | None = None) -> bool:
        today = today or timezone.localdate()
        return not self.is_closed(today) and self.opens_on <= today

    def state(self, today: date | None = None) -> str:
        """``upcoming``, ``open`` or ``closed``."""
        if self.is_closed(today):
            return "closed"
        return "open" if self.is_open(today) else "upcoming"

    def area_choices(self) -> list[tuple[str, str]]:
        labels = dict(ScopeItem.Area.choices)
        return [(area, str(labels[area])) for area in self.areas if area in labels]


class SurveyAnswer(TimestampedModel):
    """A household's one answer: overall, the contractor's conduct, a comment."""

    survey = models.ForeignKey(
        Survey, verbose_name=_("调查"), on_delete=models.CASCADE, related_name="answers"
    )
    household = models.ForeignKey(
        Household, verbose_name=_("住户"), on_delete=models.CASCADE, related_name="survey_answers"
    )
    overall = models.CharField(_("总体评价"), max_length=20, choices=Rating.choices)
    conduct = models.CharField(_("施工单位安全、文明施工"), max_length=20, choices=Rating.choices)
    comment = models.CharField(_("意见建议"), max_length=500, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("代录人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("纸质问卷由监督员代录时记录其姓名"),
    )

    class Meta:
        verbose_name = _("调查答卷")
        verbose_name_plural = _("调查答卷")
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "household"], name="supervision_survey_answer_once"
            ),
        ]

    def __str__(self) -> str:
        return str(self.household)


class SurveyAreaAnswer(models.Model):
    answer = models.ForeignKey(SurveyAnswer, on_delete=models.CASCADE, related_name="areas")
    area = models.CharField(_("改造方面"), max_length=20, choices=ScopeItem.Area.choices)
    rating = models.CharField(_("评价"), max_length=20, choices=Rating.choices)

    class Meta:
        verbose_name = _("分项评价")
        verbose_name_plural = _("分项评价")
        ordering = ["answer", "area"]
        constraints = [
            models.UniqueConstraint(fields=["answer", "area"], name="supervision_survey_area_once"),
        ]

    def __str__(self) -> str:
        return f"{self.get_area_display()}: {self.get_rating_display()}"


class SurveyEvent(models.Model):
    """One step of a survey, by whom and when: opened, an answer given or changed, closed. A
    household answering online has no account: the event names its household instead."""

    class Kind(models.TextChoices):
        OPENED = "opened", _("发起调查")
        ANSWERED = "answered", _("提交答卷")
        CHANGED = "changed", _("修改答卷")
        CLOSED = "closed", _("结束调查")

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("类型"), max_length=12, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("操作人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    household = models.ForeignKey(
        Household,
        verbose_name=_("住户"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("调查记录")
        verbose_name_plural = _("调查记录")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.survey} · {self.get_kind_display()}"
