"""Keyset pagination over ``(created_at, pk)``, newest first: a page costs the same at row 20 and
at row 200,000, where OFFSET would read and skip every row before it.

A cursor is ``<microseconds since the epoch>-<pk>`` of a row; it is opaque to people and safe to
put in a URL. A malformed cursor reads as no cursor (the newest page), never as an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Model, QuerySet

# Counting every matching row is the one part of a list whose cost grows with the data; past
# this many the page says 「超过 1000 个」 instead.
COUNT_CAP = 1000


def cursor_of(row: Model) -> str:
    return f"{int(row.created_at.timestamp() * 1_000_000)}-{row.pk}"


def parse_cursor(value: str | None) -> tuple[datetime, int] | None:
    if not value or not value.isascii():
        return None
    try:
        micros, pk = (int(part) for part in value.split("-", 1))
        moment = datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return moment, pk


def older_than(rows: QuerySet, cursor: tuple[datetime, int]) -> QuerySet:
    moment, pk = cursor
    return rows.filter(created_at__lte=moment).exclude(created_at=moment, pk__gte=pk)


def newer_than(rows: QuerySet, cursor: tuple[datetime, int]) -> QuerySet:
    moment, pk = cursor
    return rows.filter(created_at__gte=moment).exclude(created_at=moment, pk__lte=pk)


def first_rows(rows: QuerySet, ordering: tuple[str, ...], limit: int) -> list:
    """The first ``limit`` of ``rows`` in ``ordering``, in two steps: the ids alone, then the rows
    with whatever they select or prefetch.

    One query with the joins of ``select_related`` lets SQLite's planner (once ANALYZE has given
    it statistics) start from a small joined table and sort 200,000 rows, instead of walking the
    (created_at, id) index and stopping after ``limit``: 1.4 s instead of 1 ms on the feed. The
    ids query has no joins to tempt it.
    """
    if not rows.query.select_related and not rows._prefetch_related_lookups:
        return list(rows.order_by(*ordering)[:limit])  # no joins of its own: one query will do
    ids = list(rows.order_by(*ordering).values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    found = rows.order_by().in_bulk(ids)
    return [found[pk] for pk in ids if pk in found]


@dataclass
class KeysetPage:
    object_list: list
    older: str | None = None  # cursor for the next (older) page, None on the last one
    newer: str | None = None  # cursor for the previous (newer) page, None on the first one
    total: int = 0
    total_is_capped: bool = False

    def __iter__(self) -> Iterator:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    @property
    def has_other_pages(self) -> bool:
        return bool(self.older or self.newer)


def paginate(
    rows: QuerySet, *, before: str | None, after: str | None, size: int, count: bool = True
) -> KeysetPage:
    """One page of ``rows``, newest first: the newest, or older than ``before``, or newer than
    ``after`` (the way back). ``count`` adds the number of matching rows, capped at COUNT_CAP."""
    page = None
    older = newer = None
    if (start := parse_cursor(after)) is not None:
        ascending = first_rows(newer_than(rows, start), ("created_at", "pk"), size + 1)
        if len(ascending) >= size:  # otherwise near the top: the newest page, whole
            page = ascending[:size][::-1]
            newer = cursor_of(page[0]) if len(ascending) > size else None
            older = cursor_of(page[-1])
    if page is None:
        newest_first = rows
        if (end := parse_cursor(before)) is not None:
            newest_first = older_than(newest_first, end)
        page = first_rows(newest_first, ("-created_at", "-pk"), size + 1)
        if len(page) > size:
            page = page[:size]
            older = cursor_of(page[-1])
        if end is not None and page:
            newer = cursor_of(page[0])
    total, capped = 0, False
    if count:
        total = rows.order_by().values("pk")[: COUNT_CAP + 1].count()
        capped = total > COUNT_CAP
        total = min(total, COUNT_CAP)
    return KeysetPage(page, older=older, newer=newer, total=total, total_is_capped=capped)


def now_cursor() -> str:
    """A cursor just after every row so far: the place a poll starts from on an empty stream."""
    return f"{int(datetime.now(tz=UTC).timestamp() * 1_000_000)}-0"


@dataclass
class StreamPage:
    rows: list  # newest first
    newest: str  # poll with this for what comes after (``after=``)
    older: str | None  # the next older page (``before=``), None at the bottom


def stream_page(
    rows: QuerySet, *, after: str | None = None, before: str | None = None, size: int
) -> StreamPage:
    """One page of a stream read newest first and polled for what is new: the feed on the page
    and in the API.

    With ``after``, the oldest ``size`` rows newer than it (so that polling again misses nothing),
    shown newest first; ``newest`` moves to the newest of them. Otherwise the newest rows, or
    those older than ``before``, with the cursor of the next older page. A malformed cursor reads
    as none.
    """
    if (start := parse_cursor(after)) is not None:
        page = first_rows(newer_than(rows, start), ("created_at", "pk"), size)[::-1]
        return StreamPage(page, newest=cursor_of(page[0]) if page else after, older=None)
    end = parse_cursor(before)
    if end is not None:
        rows = older_than(rows, end)
    page = first_rows(rows, ("-created_at", "-pk"), size + 1)
    older = cursor_of(page[size - 1]) if len(page) > size else None
    page = page[:size]
    if end is not None:
        return StreamPage(page, newest=before, older=older)
    return StreamPage(page, newest=cursor_of(page[0]) if page else now_cursor(), older=older)
