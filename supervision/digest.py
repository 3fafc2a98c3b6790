"""The daily digest for the WeChat group the city still uses: paste-ready Chinese text of
yesterday's new, closed and overdue issues per subdistrict, with reference numbers and links."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Issue
from .notifications import absolute_url


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


EARLIEST = date(2000, 1, 1)


def sane_day(day: date) -> bool:
    """Dates a digest can be about: from 2000 to tomorrow."""
    return EARLIEST <= day <= timezone.localdate() + timedelta(days=1)


def daily_digest(day: date, issues: QuerySet[Issue] | None = None) -> str:
    issues = (issues if issues is not None else Issue.objects.all()).select_related(
        "project__neighbourhood__subdistrict", "department"
    )
    start, end = _day_bounds(day)
    sections = {
        "new": issues.filter(created_at__gte=start, created_at__lt=end),
        "closed": issues.filter(
            status=Issue.Status.CLOSED, closed_at__gte=start, closed_at__lt=end
        ),
        "overdue": issues.open().overdue(end),
    }
    by_subdistrict: dict[str, dict[str, list[Issue]]] = defaultdict(lambda: defaultdict(list))
    for name, rows in sections.items():
        for issue in rows.order_by("reference"):
            by_subdistrict[issue.project.neighbourhood.subdistrict.name][name].append(issue)

    counts = {name: rows.count() for name, rows in sections.items()}
    lines = [
        _("【群众监督日报】%(month)d月%(day)d日") % {"month": day.month, "day": day.day},
        _("新反映 %(new)d 件，办结 %(closed)d 件，目前超期 %(overdue)d 件。") % counts,
    ]
    labels = {"new": _("新反映"), "closed": _("已办结"), "overdue": _("超期未办")}
    for subdistrict in sorted(by_subdistrict):
        lines.append("")
        lines.append(f"◆ {subdistrict}")
        for name in ("new", "closed", "overdue"):
            rows = by_subdistrict[subdistrict][name]
            if not rows:
                continue
            lines.append(f"{labels[name]}（{len(rows)}）：")
            for issue in rows:
                owner = issue.department.name if issue.department else _("待分派")
                lines.append(f"· {issue.reference} {issue.title}（{owner}）{_link(issue)}")
    if not by_subdistrict:
        lines.append(_("当天没有新反映、办结或超期的问题。"))
    return "\n".join(lines)


def _link(issue: Issue) -> str:
    return absolute_url(reverse("issue-detail", args=[issue.pk]))
