"""Excel exports (openpyxl): what staff paste into their weekly reports.

Workbooks are written in openpyxl's write-only mode, one row at a time, from rows streamed out of
the database (``values_list(...).iterator()``): a province's 200,000 issues never sit in memory,
neither as model instances nor as cells. The same writer serves the small exports answered inside
the request and the large ones written by the background worker (``exports``).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from .addresses import address
from .models import Issue

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DATE_FORMAT = "yyyy-mm-dd hh:mm"
BOLD = Font(bold=True)
# Rows fetched from the database at a time, and how often the progress is reported.
CHUNK_ROWS = 2000

# The issue list's columns: what each row is made of, in this order.
ISSUE_FIELDS = (
    "reference",
    "title",
    "project__name",
    "project__neighbourhood__subdistrict__name",
    "category",
    "urgency",
    "status",
    "department__name",
    "contractor__name",
    "created_at",
    "accepted_at",
    "rectify_due_at",
    "rectified_at",
    "closed_at",
    "sign_for_due_at",
    "rating",
    "building",
    "unit",
    "location",
)
WIDTHS = [12, 30, 24, 10, 10, 8, 10, 18, 18, 17, 17, 17, 17, 17, 8, 10, 20]


def safe(value):
    """Text a resident typed never becomes a spreadsheet formula (CSV/formula injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _local(moment: datetime | None, zone=None) -> datetime | None:
    """Local wall-clock time without a zone, as Excel keeps dates."""
    if not moment:
        return None
    return moment.astimezone(zone or timezone.get_current_timezone()).replace(tzinfo=None)


def issue_headers() -> list[str]:
    return [
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


def issue_rows(issues: QuerySet[Issue], *, chunk_size: int = CHUNK_ROWS) -> Iterator[list[Any]]:
    """One row of cell values per issue, streamed from the database ``chunk_size`` at a time.

    Plain values only (no model instances): the labels of the choices are looked up once, and
    "overdue" is ``Issue.is_overdue``'s rule at one moment for the whole export.
    """
    labels = {
        name: {value: str(label) for value, label in choices}
        for name, choices in (
            ("category", Issue.Category.choices),
            ("urgency", Issue.Urgency.choices),
            ("status", Issue.Status.choices),
            ("rating", Issue.Rating.choices),
        )
    }
    yes, no = _("是"), _("否")
    zone = timezone.get_current_timezone()
    signing = Issue.Status.SUBMITTED
    rectifying = (Issue.Status.ACCEPTED, Issue.Status.IN_PROGRESS)
    now = timezone.now()
    rows = issues.values_list(*ISSUE_FIELDS).iterator(chunk_size=chunk_size)
    for (
        reference,
        title,
        project,
        subdistrict,
        category,
        urgency,
        status,
        department,
        contractor,
        created_at,
        accepted_at,
        rectify_due_at,
        rectified_at,
        closed_at,
        sign_for_due_at,
        rating,
        building,
        unit,
        location,
    ) in rows:
        if status == signing:
            deadline = sign_for_due_at
        elif status in rectifying:
            deadline = rectify_due_at
        else:
            deadline = None
        yield [
            reference,
            title,
            project,
            subdistrict,
            labels["category"].get(category, category),
            labels["urgency"].get(urgency, urgency),
            labels["status"].get(status, status),
            department or "",
            contractor or "",
            _local(created_at, zone),
            _local(accepted_at, zone),
            _local(rectify_due_at, zone),
            _local(rectified_at, zone),
            _local(closed_at, zone),
            yes if deadline is not None and deadline < now else no,
            labels["rating"].get(rating, rating or ""),
            address(building, unit, location=location),
        ]


def new_book() -> Workbook:
    return Workbook(write_only=True)


def issues_sheet(
    book: Workbook,
    issues: QuerySet[Issue],
    *,
    title: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """The issue list as a sheet of ``book``: one row per issue, dates as real dates, headers in
    Chinese; ``progress(rows written)`` after every chunk. Returns how many issues it wrote."""
    sheet = book.create_sheet(title or _("问题清单"))
    for index, width in enumerate(WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.append([_bold(sheet, header) for header in issue_headers()])
    written = 0
    for row in issue_rows(issues):
        for index in range(9, 14):  # 反映时间 … 办结时间
            if row[index] is not None:
                row[index] = _date(sheet, row[index])
        sheet.append([safe(value) for value in row])
        written += 1
        if progress is not None and written % CHUNK_ROWS == 0:
            progress(written)
    return written


def issues_workbook(issues: QuerySet[Issue]) -> bytes:
    """The issue list alone, as the panel's 「导出所选问题（Excel）」 answers it."""
    book = new_book()
    issues_sheet(book, issues)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rows_sheet(
    book: Workbook,
    title: str,
    rows: Iterable[list[Any]],
    *,
    bold_rows: Iterable[int] = (),
    widths: dict[str, float] | None = None,
) -> WriteOnlyWorksheet:
    """A small sheet of ready rows (the figures, the activity table): values made safe, the
    first cell of each row in ``bold_rows`` (0-based) bold."""
    sheet = book.create_sheet(title)
    for column, width in (widths or {}).items():
        sheet.column_dimensions[column].width = width
    bold = set(bold_rows)
    for number, row in enumerate(rows):
        values = [safe(value) for value in row]
        if number in bold and values:
            values[0] = _bold(sheet, values[0])
        sheet.append(values)
    return sheet


def _bold(sheet: WriteOnlyWorksheet, value) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=safe(value))
    cell.font = BOLD
    return cell


def _date(sheet: WriteOnlyWorksheet, value: datetime) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    cell.number_format = DATE_FORMAT
    return cell
