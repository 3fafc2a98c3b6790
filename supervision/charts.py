"""Server-rendered SVG charts: geometry computed here, drawn by templates/includes/*_chart.html.
Every chart is accompanied on the page by a table of its figures.

Charts are drawn at their own size and never scaled down (a narrow screen scrolls them
sideways), so that their text stays at ``FONT`` px. Colours are the Okabe–Ito palette, which
readers with any common colour-vision deficiency can tell apart; each colour also has its
words beside it (legend, tooltips, the data table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Axis, bar and value labels, in px (at least 12: issue 18).
FONT = 14

# Okabe & Ito (2008), "Color Universal Design", with grey for the not yet handled. The hues
# follow the status badges where they can (accepted blue, in progress amber, rectified sky
# blue, closed green); answered is reddish purple instead of a second green.
STATUS_COLOURS = {
    "submitted": "#999999",
    "accepted": "#0072B2",
    "in_progress": "#E69F00",
    "rectified": "#56B4E9",
    "closed": "#009E73",
    "answered": "#CC79A7",
    "rejected": "#D55E00",
    "withdrawn": "#F0E442",
}
BAR_COLOUR = "#0072B2"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    y: int
    width: float


def bars(
    rows: list[tuple[str, float]], *, width: int = 280, row: int = 30, label_width: int = 130
) -> dict:
    """Horizontal bars, longest = ``width`` px, labels in the ``label_width`` px on the left and
    the value after each bar."""
    top = max((value for _, value in rows), default=0) or 1
    items = [
        Bar(label=label, value=value, y=index * row, width=round(width * value / top, 1))
        for index, (label, value) in enumerate(rows)
    ]
    return {
        "bars": items,
        "height": max(len(items), 1) * row,
        "width": width,
        "row": row,
        "label_width": label_width,
        "bar_x": label_width,
        "value_gap": 6,
        # Room for the value after the longest bar.
        "total_width": label_width + width + 8 * FONT // 2 + 12,
        "font": FONT,
        "colour": BAR_COLOUR,
        # How many characters of a label fit in its room (CJK characters are about 1 em).
        "label_chars": max(3, (label_width - 8) // FONT),
    }


def stacked_columns(
    weeks: list[dict], statuses: list[tuple[str, str]], *, height: int = 180, fit: int = 1060
) -> dict:
    """One column per week, stacked by status, at most about ``fit`` px wide: a long period
    gets narrower columns and a date under every few of them, never smaller text."""
    top = max((sum(week["counts"].values()) for week in weeks), default=0) or 1
    pitch = max(5.0, min(46.0, fit / max(len(weeks), 1)))
    column = round(pitch * 0.78, 1)
    # A date label ("12/31") is about 3 em wide at FONT px: label every ``every`` columns.
    every = max(1, math.ceil(3.2 * FONT / pitch))
    # Totals on top of the columns when they fit over a column (up to three digits).
    totals = pitch >= 2.2 * FONT
    headroom = FONT + 6 if totals else 0
    years = {week["week"].year for week in weeks}
    shown_year = None
    columns = []
    for index, week in enumerate(weeks):
        y = float(height)
        segments = []
        for status, label in statuses:
            count = week["counts"].get(status, 0)
            if not count:
                continue
            h = round(height * count / top, 1)
            y -= h
            segments.append(
                {
                    "y": round(y + headroom, 1),
                    "height": h,
                    "colour": STATUS_COLOURS[status],
                    "label": label,
                    "count": count,
                }
            )
        total = sum(week["counts"].values())
        x = round(index * pitch, 1)
        labelled = index % every == 0
        # Over more than one year, the year under the first date of each year.
        year = None
        if labelled and len(years) > 1 and week["week"].year != shown_year:
            year = shown_year = week["week"].year
        columns.append(
            {
                "x": x,
                "middle": round(x + column / 2, 1),
                "top": round(headroom + height - height * total / top - 4, 1),
                "week": week["week"],
                "segments": segments,
                "total": total,
                "counts": [week["counts"].get(status, 0) for status, _ in statuses],
                "labelled": labelled,
                "year": year,
            }
        )
    year_row = FONT + 4 if len(years) > 1 else 0
    return {
        "columns": columns,
        "width": max(round(len(columns) * pitch + 3 * FONT), 4 * FONT),
        "height": height,
        "headroom": headroom,
        "axis": headroom + height,
        "svg_height": headroom + height + FONT + 10 + year_row,
        "label_y": headroom + height + FONT + 4,
        "year_y": headroom + height + 2 * FONT + 8,
        "column": column,
        "totals": totals,
        "font": FONT,
        "legend": [(label, STATUS_COLOURS[status]) for status, label in statuses],
    }
