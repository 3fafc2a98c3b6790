"""The dashboard's rollups: issues and patrols counted per month (and the weekly chart's days), so
that the figures of the whole province never scan its issues. ``supervision.rollups`` keeps
them as issues change and rebuilds them after bulk loads; nothing else writes them.

The keys are plain ids, 0 standing for "none" (no department, no contractor), so that every key
column is NOT NULL and one unique constraint per table lets an upsert add to the row in place.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .issues import Issue

ISSUE_MEASURES = ("filed", "reopened", "rated", "satisfied", "supported", "late")


class Grain(models.TextChoices):
    MONTH = "month", _("月")
    DAY = "day", _("日")


class IssueRollup(models.Model):
    """Issues filed in a local month (and, for the edges of periods, in a local day), per
    department, project contractor, subdistrict, category, status and warranty flag, with the
    counts the rates are made of. Every issue counts in one month row and one day row."""

    grain = models.CharField(_("粒度"), max_length=5, choices=Grain.choices)
    day = models.DateField(_("日期"))  # the local day of ``created_at``, or its month's first
    department = models.IntegerField(_("承办部门"), default=0)  # Department id, 0: none
    contractor = models.IntegerField(_("施工单位"), default=0)  # the project's contractor, 0: none
    subdistrict = models.IntegerField(_("街道"), default=0)  # the project's subdistrict
    category = models.CharField(_("类别"), max_length=20, choices=Issue.Category.choices)
    status = models.CharField(_("状态"), max_length=20, choices=Issue.Status.choices)
    is_warranty = models.BooleanField(_("保修"), default=False)
    filed = models.IntegerField(_("问题数"), default=0)
    reopened = models.IntegerField(_("退回过"), default=0)  # reopen_count > 0
    rated = models.IntegerField(_("已评价"), default=0)
    satisfied = models.IntegerField(_("满意"), default=0)
    supported = models.IntegerField(_("有人附议"), default=0)
    late = models.IntegerField(_("签收或整改超期"), default=0)  # missed a limit, for good

    class Meta:
        verbose_name = _("问题汇总")
        verbose_name_plural = _("问题汇总")
        ordering = ["grain", "day", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "grain",
                    "day",
                    "department",
                    "contractor",
                    "subdistrict",
                    "category",
                    "status",
                    "is_warranty",
                ],
                name="supervision_issuerollup_key",
            )
        ]
        # Read from the indexes alone: the months grouped over every other column in index
        # order (the province's 36,000 month rows in a fifth of the time of a sort), and the
        # days of a period's edges as a range.
        indexes = [
            models.Index(
                fields=[
                    "grain",
                    "department",
                    "contractor",
                    "subdistrict",
                    "category",
                    "status",
                    "is_warranty",
                    "day",
                    *ISSUE_MEASURES,
                ],
                name="supervision_issuerollup_cover",
            ),
            models.Index(
                fields=[
                    "grain",
                    "day",
                    "department",
                    "contractor",
                    "subdistrict",
                    "category",
                    "status",
                    "is_warranty",
                    *ISSUE_MEASURES,
                ],
                name="supervision_issuerollup_days",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.day} {self.status} {self.filed}"


class DurationRollup(models.Model):
    """How long signing for (hours) and fixing (days) took, as a histogram per local month (and
    day), department, project contractor and warranty flag: the count of issues per duration
    rounded to the tenth the dashboard shows. The medians are read from it."""

    class Kind(models.TextChoices):
        SIGN = "sign", _("签收（小时）")
        FIX = "fix", _("整改（天）")

    grain = models.CharField(_("粒度"), max_length=5, choices=Grain.choices)
    day = models.DateField(_("日期"))
    department = models.IntegerField(_("承办部门"), default=0)
    contractor = models.IntegerField(_("施工单位"), default=0)
    is_warranty = models.BooleanField(_("保修"), default=False)
    kind = models.CharField(_("类型"), max_length=4, choices=Kind.choices)
    tenths = models.IntegerField(_("用时（十分之一小时或天）"))
    count = models.IntegerField(_("问题数"), default=0)

    class Meta:
        verbose_name = _("用时分布")
        verbose_name_plural = _("用时分布")
        ordering = ["grain", "day", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "grain",
                    "day",
                    "department",
                    "contractor",
                    "is_warranty",
                    "kind",
                    "tenths",
                ],
                name="supervision_durationrollup_key",
            )
        ]
        indexes = [
            models.Index(
                fields=[
                    "grain",
                    "department",
                    "contractor",
                    "is_warranty",
                    "kind",
                    "tenths",
                    "day",
                    "count",
                ],
                name="supervision_durationrollup_cov",
            ),
            models.Index(
                fields=[
                    "grain",
                    "day",
                    "department",
                    "contractor",
                    "is_warranty",
                    "kind",
                    "tenths",
                    "count",
                ],
                name="supervision_durationrollup_day",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.day} {self.kind} {self.tenths / 10} × {self.count}"


class DayRollup(models.Model):
    """Issues filed per local day, by their status now: the weekly chart of any period."""

    day = models.DateField(_("日期"))
    week = models.DateField(_("周"))  # its Monday: the chart's columns
    status = models.CharField(_("状态"), max_length=20, choices=Issue.Status.choices)
    filed = models.IntegerField(_("问题数"), default=0)

    class Meta:
        verbose_name = _("问题每日汇总")
        verbose_name_plural = _("问题每日汇总")
        ordering = ["day", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["day", "status"], name="supervision_dayrollup_key")
        ]
        indexes = [
            models.Index(
                fields=["day", "week", "status", "filed"], name="supervision_dayrollup_cover"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.status} {self.filed}"


class ActivityRollup(models.Model):
    """What each person filed and patrolled in a local month (the supervisors' activity)."""

    month = models.DateField(_("月份"))
    person = models.IntegerField(_("监督员"))  # User id
    issues = models.IntegerField(_("反映问题"), default=0)
    patrols = models.IntegerField(_("巡查"), default=0)

    class Meta:
        verbose_name = _("监督员月度活跃度")
        verbose_name_plural = _("监督员月度活跃度")
        ordering = ["month", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["month", "person"], name="supervision_activityrollup_key"
            )
        ]
        indexes = [
            models.Index(
                fields=["month", "issues", "patrols"], name="supervision_activity_month_idx"
            ),
            models.Index(
                fields=["person", "issues", "patrols", "month"],
                name="supervision_activity_pers_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.person} {self.issues}/{self.patrols}"
