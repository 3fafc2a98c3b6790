"""The 监督群 feed's pages: people's events one line each, and what the system does by itself
(督办 by the overdue sweep, 提醒评价 and 逾期未评价 by the verification clock) one line per day
and kind: 「今日系统自动督办 9 件」, which opens to list the issues.

A day's line stands in the stream where its newest event stands, and counts the whole day. The
stream is paged by keyset like the events themselves (``keyset.stream_page``): people's events
come from the index as before, and the day lines are counted, for the days the page spans only,
in one aggregate query. A poll that brings new automatic events brings the day's line again, at
the top, with the new count; the page's script drops the older copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, F, Max, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import keyset
from .models import IssueEvent
from .stats import DayOf

Kind = IssueEvent.Kind

# What the periodic job does by itself, with no one acting (``actor`` is empty).
AUTOMATIC_KINDS = (Kind.ESCALATED, Kind.VERIFY_REMINDED, Kind.VERIFY_EXPIRED)
# Issues listed under a day's line when it is opened; the rest are counted.
LISTED = 20

Key = tuple[datetime, int]


def automatic() -> Q:
    return Q(actor__isnull=True, kind__in=AUTOMATIC_KINDS)


def _headline(kind: str, n: int, day: date, today: date) -> str:
    if day == today:
        texts = {
            Kind.ESCALATED: ngettext("今日系统自动督办 %(n)d 件", "今日系统自动督办 %(n)d 件", n),
            Kind.VERIFY_REMINDED: ngettext(
                "今日系统自动提醒评价 %(n)d 件", "今日系统自动提醒评价 %(n)d 件", n
            ),
            Kind.VERIFY_EXPIRED: ngettext(
                "今日系统按逾期未评价办结 %(n)d 件", "今日系统按逾期未评价办结 %(n)d 件", n
            ),
        }
        return texts[kind] % {"n": n}
    texts = {
        Kind.ESCALATED: ngettext(
            "%(day)s 系统自动督办 %(n)d 件", "%(day)s 系统自动督办 %(n)d 件", n
        ),
        Kind.VERIFY_REMINDED: ngettext(
            "%(day)s 系统自动提醒评价 %(n)d 件", "%(day)s 系统自动提醒评价 %(n)d 件", n
        ),
        Kind.VERIFY_EXPIRED: ngettext(
            "%(day)s 系统按逾期未评价办结 %(n)d 件", "%(day)s 系统按逾期未评价办结 %(n)d 件", n
        ),
    }
    return texts[kind] % {"n": n, "day": _day_name(day, today)}


def _day_name(day: date, today: date) -> str:
    if day.year == today.year:
        return _("%(month)d月%(day)d日") % {"month": day.month, "day": day.day}
    return _("%(year)d年%(month)d月%(day)d日") % {
        "year": day.year,
        "month": day.month,
        "day": day.day,
    }


@dataclass
class ListedIssue:
    pk: int
    reference: str
    title: str
    project: str

    def get_absolute_url(self) -> str:
        return reverse("issue-detail", args=[self.pk])


@dataclass
class DayGroup:
    """One day's automatic events of one kind, on the viewer's issues."""

    day: date
    kind: str
    count: int  # issues
    last: datetime  # the newest event's time: where the line stands in the stream
    last_pk: int
    issues: list[ListedIssue] = field(default_factory=list)
    is_group = True

    @property
    def key(self) -> Key:
        return (self.last, self.last_pk)

    @property
    def slot(self) -> str:
        """The same for every copy of this day's line (the page keeps the newest)."""
        return f"{self.day:%Y%m%d}-{self.kind}"

    @property
    def headline(self) -> str:
        return _headline(self.kind, self.count, self.day, timezone.localdate())

    @property
    def more(self) -> int:
        return max(self.count - len(self.issues), 0)


@dataclass
class FeedPage:
    items: list  # IssueEvent and DayGroup, newest first
    events: list[IssueEvent]  # people's events among them
    groups: list[DayGroup]
    newest: str  # poll with this (``after=``)
    older: str | None  # the next older page (``before=``), None at the bottom


def _key(event: IssueEvent) -> Key:
    return (event.created_at, event.pk)


def _cursor(key: Key) -> str:
    return f"{int(key[0].timestamp() * 1_000_000)}-{key[1]}"


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def day_groups(
    system: QuerySet[IssueEvent], *, above: Key | None, below: Key | None
) -> list[DayGroup]:
    """The day lines standing strictly between ``above`` and ``below`` (either open), newest
    first, each counting its whole day. One query over the days between the two."""
    rows = system
    if above is not None:
        rows = rows.filter(created_at__gte=_day_start(timezone.localdate(above[0])))
    if below is not None:
        next_day = timezone.localdate(below[0]) + timedelta(days=1)
        rows = rows.filter(created_at__lt=_day_start(next_day))
    found = (
        rows.annotate(day=DayOf("created_at"))
        .values("day", "kind")
        .annotate(count=Count("issue", distinct=True), last=Max("created_at"), last_pk=Max("pk"))
        .order_by()
    )
    groups = []
    for row in found:
        day = row["day"]
        group = DayGroup(
            day=day if isinstance(day, date) else date.fromisoformat(str(day)[:10]),
            kind=row["kind"],
            count=row["count"],
            last=row["last"],
            last_pk=row["last_pk"],
        )
        if (above is None or group.key > above) and (below is None or group.key < below):
            groups.append(group)
    groups.sort(key=lambda g: g.key, reverse=True)
    return groups


def _list_issues(system: QuerySet[IssueEvent], groups: list[DayGroup]) -> None:
    """Fill each line's first LISTED issues (newest first), in one query for all the lines: at
    most LISTED rows of each, whatever the day held."""
    if not groups:
        return
    days = Q()
    for group in groups:
        start = _day_start(group.day)
        days |= Q(kind=group.kind, created_at__gte=start, created_at__lt=start + timedelta(days=1))
    rows = (
        system.filter(days)
        .annotate(
            day=DayOf("created_at"),
            position=Window(
                RowNumber(),
                partition_by=[DayOf("created_at"), F("kind")],
                order_by=[F("created_at").desc(), F("pk").desc()],
            ),
        )
        .filter(position__lte=LISTED)
        .values(
            "day", "kind", "issue_id", "issue__reference", "issue__title", "issue__project__name"
        )
        .order_by("-created_at", "-pk")
    )
    by_slot = {(g.day, g.kind): g for g in groups}
    for row in rows:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        group = by_slot.get((day, row["kind"]))
        if group is None or any(issue.pk == row["issue_id"] for issue in group.issues):
            continue  # an issue escalated twice that day is listed once
        group.issues.append(
            ListedIssue(
                pk=row["issue_id"],
                reference=row["issue__reference"],
                title=row["issue__title"],
                project=row["issue__project__name"],
            )
        )


def _merge(events: Iterable[IssueEvent], groups: Iterable[DayGroup]) -> list:
    items = [(_key(e), e) for e in events] + [(g.key, g) for g in groups]
    items.sort(key=lambda pair: pair[0], reverse=True)
    return [item for _key_, item in items]


def feed_page(
    visible: QuerySet[IssueEvent],
    *,
    after: str | None = None,
    before: str | None = None,
    size: int,
) -> FeedPage:
    """One page of the feed for the events in ``visible`` (already with their select_related
    and prefetches): the newest, those older than ``before``, or, for the poll, those newer than
    ``after``. Queries: people's events as ``keyset.stream_page`` reads them, one for the day
    lines, one for the issues under them."""
    people = visible.exclude(automatic())
    system = visible.filter(automatic()).order_by().select_related(None).prefetch_related(None)
    start = keyset.parse_cursor(after)
    if start is not None:
        stream = keyset.stream_page(people, after=after, size=size)
        # A full batch leaves newer events for the next poll: the lines stop at it too.
        full = len(stream.rows) >= size
        below = _key(stream.rows[0]) if full else None
        groups = day_groups(system, above=start, below=below)[:size]
        newest = stream.newest
        if groups and not full:
            newest = _cursor(max(keyset.parse_cursor(newest) or start, groups[0].key))
        _list_issues(system, groups)
        return FeedPage(_merge(stream.rows, groups), stream.rows, groups, newest, None)

    end = keyset.parse_cursor(before)
    stream = keyset.stream_page(people, before=before, size=size)
    above = _key(stream.rows[-1]) if stream.older else None
    groups = day_groups(system, above=above, below=end)[: size + 1]
    items = _merge(stream.rows, groups)
    older = stream.older
    if len(items) > size:  # the day lines pushed some of the page to the next one
        items = items[:size]
        older = _cursor(_key(items[-1]) if isinstance(items[-1], IssueEvent) else items[-1].key)
    groups = [item for item in items if isinstance(item, DayGroup)]
    events = [item for item in items if isinstance(item, IssueEvent)]
    newest = stream.newest
    if end is None and groups:
        newest = _cursor(max(keyset.parse_cursor(newest), groups[0].key))
    _list_issues(system, groups)
    return FeedPage(items, events, groups, newest, older)
