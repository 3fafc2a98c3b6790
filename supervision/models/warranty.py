"""回头看: the return visits supervisors pay a project after its acceptance (6 and 12 months on,
and before a scope item's warranty runs out). Scheduled by ``supervision.warranty``."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .catalogue import Project, ScopeItem


class ReturnVisit(models.Model):
    """One 回头看 patrol due on a project; done once a patrol of the project is logged in its
    window (``supervision.warranty.with_done``)."""

    class Reason(models.TextChoices):
        SIX_MONTHS = "six_months", _("验收后 6 个月")
        TWELVE_MONTHS = "twelve_months", _("验收后 12 个月")
        WARRANTY_ENDING = "warranty_ending", _("保修期将满")

    project = models.ForeignKey(
        Project, verbose_name=_("项目"), on_delete=models.CASCADE, related_name="return_visits"
    )
    reason = models.CharField(_("原因"), max_length=20, choices=Reason.choices)
    scope_item = models.ForeignKey(
        ScopeItem,
        verbose_name=_("改造内容"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    due_on = models.DateField(_("应于此日前回头看"), db_index=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("回头看")
        verbose_name_plural = _("回头看")
        ordering = ["due_on", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "reason", "due_on"], name="supervision_returnvisit_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} {self.get_reason_display()} {self.due_on}"
