"""Excel exports (openpyxl): what staff paste into their weekly reports."""

from __future__ import annotations

import io
from collections.abc import Iterable

from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from .models import Issue

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe(value):
    """Text a resident typed never becomes a spreadsheet formula (CSV/formula injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _local(moment):
    return timezone.localtime(moment).replace(tzinfo=None) if moment else None


def issues_workbook(issues: Iterable[Issue]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = _("问题清单")
    issues_sheet(sheet, issues)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def issues_sheet(sheet, issues: Iterable[Issue]) -> None:
    """One row per issue, dates as real dates, headers in Chinese."""
    headers = [
        _("编号"),
        _("标题"),
        _("项目"),
        _("街道"),
        _("类别"),
        _("紧急程度"),
        _("状态"),
        _("承办部门"),
        _("整改单位"),
        _("反映时间"),
        _("签收时间"),
        _("整改期限"),
        _("整改完成时间"),
        _("办结时间"),
        _("是否超期"),
        _("满意度"),
        _("位置"),
    ]
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for issue in issues:
        sheet.append(
            [
                safe(value)
                for value in (
                    issue.reference,
                    issue.title,
                    str(issue.project),
                    str(issue.project.neighbourhood.subdistrict),
                    issue.get_category_display(),
                    issue.get_urgency_display(),
                    issue.get_status_display(),
                    str(issue.department or ""),
                    str(issue.contractor or ""),
                    _local(issue.created_at),
                    _local(issue.accepted_at),
                    _local(issue.rectify_due_at),
                    _local(issue.rectified_at),
                    _local(issue.closed_at),
                    _("是") if issue.is_overdue else _("否"),
                    issue.get_rating_display(),
                    issue.place,
                )
            ]
        )
    widths = [12, 30, 24, 10, 10, 8, 10, 18, 18, 17, 17, 17, 17, 17, 8, 10, 20]
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    for row in sheet.iter_rows(min_row=2, min_col=10, max_col=14):
        for cell in row:
            cell.number_format = "yyyy-mm-dd hh:mm"
    sheet.freeze_panes = "A2"
