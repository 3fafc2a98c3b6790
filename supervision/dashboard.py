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
from django.views.decorators.http import require_http_methods, require_safe

from . import charts, export_views, exports, stats, surveys
from .models import ExportJob, Issue, Subdistrict, programme
from .xlsx import CONTENT_TYPE

PRESETS = [
    ("30", gettext_lazy("近 30 天")),
    ("90", gettext_lazy("近 90 天")),
    ("365", gettext_lazy("近一年")),
    ("all", gettext_lazy("全部")),
]
DEFAULT_PRESET = "90"


class PeriodForm(forms.Form):
    """The period of the figures: a preset (``?preset=30``) or dates (``?start=&end=``, which
    win when both are given). The page shows the presets as buttons and the dates as a form of
    their own, both filled from the period computed: what it shows is what it counted."""

    preset = forms.ChoiceField(
        label=gettext_lazy("时间"),
        choices=PRESETS,
        required=False,
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
        default = preset_period(DEFAULT_PRESET)
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
            return stats.Period(start, end, span(start, end)), ""
        return preset_period(self.cleaned_data["preset"] or DEFAULT_PRESET), ""


def span(start: date | None, end: date | None) -> str:
    """「2026-01-07 至 2026-04-06」; an open end reads 「…」."""
    return _("%(start)s 至 %(end)s") % {
        "start": start.isoformat() if start else "…",
        "end": end.isoformat() if end else "…",
    }


def preset_period(preset: str) -> stats.Period:
    """The days of a preset, ending today, labelled with its name and its dates."""
    name = str(dict(PRESETS)[preset])
    if preset == "all":
        return stats.Period(None, None, name, preset=preset)
    today = timezone.localdate()
    start = today - timedelta(days=int(preset) - 1)
    label = _("%(name)s（%(span)s）") % {"name": name, "span": span(start, today)}
    return stats.Period(start, today, label, preset=preset)


def period_choices(period: stats.Period) -> list[dict]:
    """The preset buttons, the one in use marked."""
    return [
        {"value": value, "label": label, "current": value == period.preset}
        for value, label in PRESETS
    ]


def _scope(request: HttpRequest) -> str:
    """Whose figures: a department's own; a bureau's county; the counties below the province
    or the city for the oversight ("all" when that is every county there is)."""
    user = request.user
    if not (user.is_active and (user.is_bureau or user.is_department_staff or user.is_oversight)):
        raise PermissionDenied(_("统计看板供部门和住建局使用。"))
    if not (user.is_bureau or user.is_oversight):
        return f"dept{user.department_id}"
    mine = programme(user, "region")
    if mine is None or not Subdistrict.objects.exclude(mine).exists():
        return "all"
    return stats.county_scope(
        set(Subdistrict.objects.filter(mine).values_list("region", flat=True).distinct())
    )


def figures(scope: str, period: stats.Period) -> dict:
    """The dashboard's figures: the bureau's from the rollups, a department's from its issues
    (``stats.dashboard_figures``), never more than a fraction of a second, so never cached."""
    return stats.dashboard_figures(
        scope,
        period.start.isoformat() if period.start else "",
        period.end.isoformat() if period.end else "",
    )


def _charts(data: dict, period: stats.Period) -> dict:
    categories = dict(Issue.Category.choices)
    weeks = stats.fill_weeks(data["weekly"], period.start, period.end or timezone.localdate())
    return {
        "weekly_chart": charts.stacked_columns(weeks, list(Issue.Status.choices)),
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
    period, note = PeriodForm(request.GET or None).period()
    data = figures(scope, period)
    # The date fields show the dates counted, whatever was asked for.
    form = PeriodForm(initial={"start": period.start, "end": period.end})
    context = {
        "form": form,
        "period": period,
        "presets": period_choices(period),
        "note": note,
        **data,
        **_charts(data, period),
    }
    context["query"] = request.GET.urlencode()
    ranking = surveys.rankings(request.user)
    context["survey_ranking_tables"] = [
        (_("施工单位"), ranking["contractors"]),
        (_("街道"), ranking["subdistricts"]),
    ]
    return render(request, "supervision/dashboard.html", context)


def summary_rows(data: dict, period: stats.Period) -> dict:
    """The export's 统计 sheet: the headline figures, then the departments' table (its header row
    in bold); plain values, so that a background export can carry them as the person saw them."""
    head = data["headline"]
    rows = [
        [_("统计期间"), str(period.label)],
        [_("反映问题"), head["filed"]],
        [_("已办结"), head["closed"]],
        [_("办理中"), head["open"]],
        [_("整改用时中位数（天）"), head["median_days_to_fix"]],
        [_("签收用时中位数（小时）"), head["median_hours_to_sign"]],
        [_("超期率（%）"), head["overdue_rate"]],
        [_("退回率（%）"), head["reopen_rate"]],
        [_("满意率（%）"), head["satisfied_share"]],
        [_("有人附议的问题"), head["supported"]],
        [],
        [
            _("部门"),
            _("问题数"),
            _("已办结"),
            _("签收用时中位数（小时）"),
            _("整改用时中位数（天）"),
            _("超期率（%）"),
            _("退回率（%）"),
            _("满意率（%）"),
        ],
    ]
    bold = [len(rows) - 1]
    rows += [
        [
            row["department__name"],
            row["filed"],
            row["closed"],
            row["median_hours_to_sign"],
            row["median_days_to_fix"],
            row["overdue_rate"],
            row["reopen_rate"],
            row["satisfied_share"],
        ]
        for row in data["departments"]
    ]
    return {"rows": rows, "bold": bold}


@login_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def dashboard_export(request: HttpRequest) -> HttpResponse:
    """The figures and the period's issue list in one workbook, Chinese headers, real dates.

    Up to ``EXPORT_INLINE_MAX_ROWS`` issues: the file at once. More: a page that says how many,
    whose button (a POST) starts a background export and leads to its progress page.
    """
    scope = _scope(request)
    period, _note = PeriodForm(request.GET or None).period()
    total = exports.dashboard_issues(scope, period).count()
    filename = f"dashboard-{timezone.localtime().strftime('%Y%m%d')}.xlsx"
    if exports.is_large(total):
        if request.method != "POST":
            return render(
                request,
                "supervision/exports/confirm.html",
                {
                    "total": total,
                    "period": period,
                    "action": request.get_full_path(),
                    "query": request.GET.urlencode(),
                    "recent": export_views.recent_exports(request.user),
                },
            )
        job, created = exports.start_export(
            requester=request.user,
            kind=ExportJob.Kind.DASHBOARD,
            issues=exports.dashboard_issues(scope, period),
            total=total,
            filename=filename,
            params={
                **exports.period_params(scope, period),
                "summary": summary_rows(figures(scope, period), period),
            },
        )
        return export_views.started(request, job, created)
    out = io.BytesIO()
    exports.write_dashboard(
        out,
        summary=summary_rows(figures(scope, period), period),
        scope=scope,
        period=period,
        requester=request.user,
    )
    response = HttpResponse(out.getvalue(), content_type=CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
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
        {"period": period, "note": note, "month": start, **data, **_charts(data, period)},
    )
