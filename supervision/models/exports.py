"""Large Excel exports, written in the background: who asked, for what, how far it got, and the
private file it became (kept a few days)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# A queued or running export that has not moved for this long died with its worker.
STUCK_AFTER = timedelta(minutes=30)


def export_path(instance: ExportJob, filename: str) -> str:
    # The export module names files (a random name under private/exports/); this only keeps
    # Django's FileField contract.
    return filename


class ExportJob(models.Model):
    """导出任务: one person's export of more issues than a request should write."""

    class Kind(models.TextChoices):
        DASHBOARD = "dashboard", _("统计看板导出")
        ISSUES = "issues", _("问题清单导出")

    class Status(models.TextChoices):
        QUEUED = "queued", _("排队中")
        RUNNING = "running", _("正在导出")
        READY = "ready", _("可以下载")
        FAILED = "failed", _("导出失败")

    UNFINISHED = (Status.QUEUED, Status.RUNNING)

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("导出人"),
        on_delete=models.CASCADE,
        related_name="exports",
    )
    kind = models.CharField(_("类型"), max_length=20, choices=Kind.choices)
    status = models.CharField(
        _("状态"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    # What to write: the dashboard's scope and period, or the panel's selection (a pickled
    # ``Query``), and the requester's role, department and language when they asked.
    params = models.JSONField(_("条件"), default=dict, blank=True)
    query = models.BinaryField(_("所选问题"), null=True, blank=True, editable=False)
    total_rows = models.PositiveIntegerField(_("总行数"), default=0)
    done_rows = models.PositiveIntegerField(_("已完成行数"), default=0)
    file = models.FileField(_("文件"), upload_to=export_path, max_length=200, blank=True)
    filename = models.CharField(_("文件名"), max_length=100)
    error = models.CharField(_("错误"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), default=timezone.now)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    expires_at = models.DateTimeField(_("过期时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("导出任务")
        verbose_name_plural = _("导出任务")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="ready") | ~models.Q(file=""),
                name="supervision_exportjob_ready_has_file",
            ),
        ]
        indexes = [
            models.Index(fields=["requester", "status"], name="supervision_export_mine_idx"),
            models.Index(fields=["expires_at"], name="supervision_export_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} · {self.requester}"

    def get_absolute_url(self) -> str:
        return reverse("exports:detail", args=[self.pk])

    @property
    def is_unfinished(self) -> bool:
        return self.status in self.UNFINISHED

    @property
    def is_stuck(self) -> bool:
        """Queued or running, but nothing moved for a long time: its worker died."""
        return self.is_unfinished and timezone.now() - self.updated_at > STUCK_AFTER

    @property
    def is_expired(self) -> bool:
        """Past its keeping time: the file is (or is about to be) deleted."""
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def percent(self) -> int:
        if self.status == self.Status.READY:
            return 100
        if not self.total_rows:
            return 0
        return min(100, self.done_rows * 100 // self.total_rows)
