"""Server-rendered SVG charts: geometry computed here, drawn by templates/includes/*_chart.html.
Every chart is accompanied on the page by a table of its figures."""

from __future__ import annotations

from dataclasses import dataclass

STATUS_COLOURS = {
    "submitted": "#6c757d",
    "accepted": "#1d5fb4",
    "in_progress": "#b07d00",
    "rectified": "#0b7b7e",
    "closed": "#2e7d32",
    "answered": "#5a9e5f",
    "rejected": "#9e9e9e",
    "withdrawn": "#bdbdbd",
}


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    y: int
    width: float


def bars(rows: list[tuple[str, float]], *, width: int = 200, row: int = 28) -> dict:
    """Horizontal bars, longest = ``width`` px."""
    top = max((value for _, value in rows), default=0) or 1
    items = [
        Bar(label=label, value=value, y=index * row, width=round(width * value / top, 1))
        for index, (label, value) in enumerate(rows)
    ]
    return {"bars": items, "height": max(len(items), 1) * row, "width": width, "row": row}


def stacked_columns(
    weeks: list[dict], statuses: list[tuple[str, str]], *, height: int = 160
) -> dict:
    """One column per week, stacked by status."""
    top = max((sum(week["counts"].values()) for week in weeks), default=0) or 1
    column, gap = 36, 10
    columns = []
    for index, week in enumerate(weeks):
        y = height
        segments = []
        for status, label in statuses:
            count = week["counts"].get(status, 0)
            if not count:
                continue
            h = round(height * count / top, 1)
            y -= h
            segments.append(
                {
                    "y": round(y, 1),
                    "height": h,
                    "colour": STATUS_COLOURS[status],
                    "label": label,
                    "count": count,
                }
            )
        columns.append(
            {
                "x": index * (column + gap),
                "week": week["week"],
                "segments": segments,
                "total": sum(week["counts"].values()),
                "counts": [week["counts"].get(status, 0) for status, _ in statuses],
            }
        )
    return {
        "columns": columns,
        "width": max(len(columns), 1) * (column + gap),
        "height": height,
        "column": column,
        "legend": [(label, STATUS_COLOURS[status]) for status, label in statuses],
    }
