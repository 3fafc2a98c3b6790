"""/dashboard/: the figures for department staff (their department's issues) and the bureau (all),
over a period; its Excel export and the printable monthly report."""

from __future__ import annotations

import io
from datetime import date, timedelta

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from openpyxl import Workbook
from openpyxl.styles import Font

from . import charts, stats
from .models import Issue
from .xlsx import issues_sheet, safe

PRESETS = [
    ("30", gettext_lazy("近 30 天")),
    ("90", gettext_lazy("近 90 天")),
    ("365", gettext_lazy("近一年")),
    ("all", gettext_lazy("全部")),
]


class PeriodForm(forms.Form):
    preset = forms.ChoiceField(
        label=gettext_lazy("时间"),
        choices=PRESETS,
        required=False,
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    start = forms.DateField(
        label=gettext_lazy("从"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "class": "form-control"}, format="%Y-%m-%d"),
    )
    end = forms.DateField(
        label=gettext_lazy("到"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "class": "form-control"}, format="%Y-%m-%d"),
    )

    def period(self) -> tuple[stats.Period, str]:
        """The chosen period and a note when part of the request was ignored."""
        today = timezone.localdate()
        default = stats.Period(today - timedelta(days=89), today, str(PRESETS[1][1]))
        if not self.is_bound:
            return default, ""
        if not self.is_valid():
            return default, _("时间条件有误，已按近 90 天统计。")
        start, end = self.cleaned_data["start"], self.cleaned_data["end"]
        limits = (date(2000, 1, 1), date(2100, 12, 31))
        if any(d and not limits[0] <= d <= limits[1] for d in (start, end)):
            return default, _("日期应在 2000 年到 2100 年之间，已按近 90 天统计。")
        if start or end:
            if start and end and start > end:
                return default, _("开始日期晚于结束日期，已按近 90 天统计。")
            label = f"{start or '…'} — {end or '…'}"
            return stats.Period(start, end, label), ""
        preset = self.cleaned_data["preset"] or "90"
        if preset == "all":
            return stats.Period(None, None, str(dict(PRESETS)["all"])), ""
        days = int(preset)
        return stats.Period(today - timedelta(days=days - 1), today, str(dict(PRESETS)[preset])), ""


def _scope(request: HttpRequest) -> str:
    user = request.user
    if not (user.is_active and (user.is_bureau or user.is_department_staff)):
        raise PermissionDenied(_("统计看板供部门和住建局使用。"))
    return "all" if user.is_bureau else f"dept{user.department_id}"


def figures(scope: str, period: stats.Period) -> dict:
    """The dashboard's figures, cached (stale ones refreshed in the background)."""
    return stats.figures(
        "dashboard",
        scope=scope,
        start=period.start.isoformat() if period.start else "",
        end=period.end.isoformat() if period.end else "",
    )


def _charts(data: dict) -> dict:
    categories = dict(Issue.Category.choices)
    return {
        "weekly_chart": charts.stacked_columns(data["weekly"], list(Issue.Status.choices)),
        "category_chart": charts.bars(
            [
                (str(categories.get(r["category"], r["category"])), r["count"])
                for r in data["by_category"]
            ]
        ),
        "subdistrict_chart": charts.bars(
            [
                (r["project__neighbourhood__subdistrict__name"], r["count"])
                for r in data["by_subdistrict"]
            ]
        ),
        "category_labels": categories,
    }


@login_required
@never_cache
@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    form = PeriodForm(request.GET or None)
    period, note = form.period()
    data = figures(scope, period)
    context = {"form": form, "period": period, "note": note, **data, **_charts(data)}
    context["query"] = request.GET.urlencode()
    return render(request, "supervision/dashboard.html", context)


@login_required
@never_cache
@require_safe
def dashboard_export(request: HttpRequest) -> HttpResponse:
    """The figures and the period's issue list in one workbook, Chinese headers, real dates."""
    scope = _scope(request)
    period, _note = PeriodForm(request.GET or None).period()
    data = figures(scope, period)
    book = Workbook()
    sheet = book.active
    sheet.title = _("统计")
    head = data["headline"]
    sheet.append([_("统计期间"), period.label])
    sheet.append([_("反映问题"), head["filed"]])
    sheet.append([_("已办结"), head["closed"]])
    sheet.append([_("办理中"), head["open"]])
    sheet.append([_("整改用时中位数（天）"), head["median_days_to_fix"]])
    sheet.append([_("签收用时中位数（小时）"), head["median_hours_to_sign"]])
    sheet.append([_("超期率（%）"), head["overdue_rate"]])
    sheet.append([_("退回率（%）"), head["reopen_rate"]])
    sheet.append([_("满意率（%）"), head["satisfied_share"]])
    # .get: figures computed before supports were counted may still be in the cache.
    sheet.append([_("有人附议的问题"), head.get("supported")])
    sheet.append([])
    header = [
        _("部门"),
        _("问题数"),
        _("已办结"),
        _("签收用时中位数（小时）"),
        _("整改用时中位数（天）"),
        _("超期率（%）"),
        _("退回率（%）"),
        _("满意率（%）"),
    ]
    sheet.append(header)
    sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
    for row in data["departments"]:
        sheet.append(
            [
                safe(row["department__name"]),
                row["filed"],
                row["closed"],
                row["median_hours_to_sign"],
                row["median_days_to_fix"],
                row["overdue_rate"],
                row["reopen_rate"],
                row["satisfied_share"],
            ]
        )
    sheet.column_dimensions["A"].width = 28
    rows = period.apply(stats.scope_issues(scope)).select_related(
        "project__neighbourhood__subdistrict", "department", "contractor"
    )
    issues_sheet(book.create_sheet(_("问题清单")), rows.order_by("created_at"))
    activity = book.create_sheet(_("监督员活跃度"))
    activity.append([_("月份"), _("监督员"), _("反映问题"), _("巡查")])
    scoped = period.apply(stats.scope_issues(scope))
    for row in stats.supervisor_activity(scoped, period.apply(stats.scope_patrols(scope))):
        activity.append(
            [row["month"].strftime("%Y-%m"), safe(row["name"]), row["issues"], row["patrols"]]
        )
    out = io.BytesIO()
    book.save(out)
    response = HttpResponse(
        out.getvalue(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    stamp = timezone.localtime().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="dashboard-{stamp}.xlsx"'
    return response


@login_required
@never_cache
@require_safe
def monthly_report(request: HttpRequest) -> HttpResponse:
    """A printable monthly report: ``?month=2026-11`` (default: last month)."""
    scope = _scope(request)
    today = timezone.localdate()
    first = today.replace(day=1)
    default = (first - timedelta(days=1)).replace(day=1)
    note = ""
    try:
        year, month = (int(part) for part in request.GET.get("month", "").split("-"))
        if not (2000 <= year <= 2100 and 1 <= month <= 12):
            raise ValueError(year)
        start = date(year, month, 1)
    except ValueError:
        if request.GET.get("month"):
            note = _("月份格式应为 YYYY-MM，已显示上个月。")
        start = default
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    period = stats.Period(start, end, f"{start.year}年{start.month}月")
    data = figures(scope, period)
    return render(
        request,
        "supervision/monthly_report.html",
        {"period": period, "note": note, "month": start, **data, **_charts(data)},
    )
