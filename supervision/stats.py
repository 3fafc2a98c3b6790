"""The programme's figures, from SQL aggregates only: counts, rates and medians per group.

Medians use window functions (ROW_NUMBER and COUNT over each group), which SQLite and PostgreSQL
both have: the database returns at most the two middle rows of each group, never the rows
themselves. Heavy figures are cached under a version that every issue event bumps, and recomputed in the
background when stale (``figures``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import (
    Count,
    DateField,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    Window,
)
from django.db.models.functions import RowNumber, TruncDate, TruncMonth, TruncWeek
from django.utils import timezone
from django_tasks import task

from .models import Issue, Patrol, Project, department_issues, department_projects, overdue

S = Issue.Status
VERSION_KEY = "stats:version"
# An entry is kept a day (stale ones are still shown while recomputed); a refresh that died
# is retried after five minutes.
ENTRY_SECONDS = 24 * 3600
REFRESH_LOCK_SECONDS = 300
MIN_REFRESH_SECONDS = 60


# --- cache -------------------------------------------------------------------------------------


def bump_version() -> None:
    """Called for every issue event after commit: cached figures become stale."""
    try:
        cache.incr(VERSION_KEY)
    except ValueError:
        # Evicted: start from a value no cached figure can carry.
        cache.set(VERSION_KEY, time.time_ns(), None)


def current_version() -> int:
    return cache.get_or_set(VERSION_KEY, time.time_ns, None)


# Named computations of figures, so that a background task can recompute them by name. Filled
# by ``SupervisionConfig.ready``: ``{"home": programme_headline, "dashboard": dashboard_figures}``.
RECIPES: dict[str, Callable[..., dict]] = {}


def _key(name: str, args: dict) -> str:
    return "stats:" + ":".join([name, *(f"{k}={args[k]}" for k in sorted(args))])


def figures(name: str, **args) -> dict:
    """The figures of recipe ``name`` for ``args``, from the cache.

    At province scale the whole programme's figures take seconds to compute, and issue events
    arrive every minute; recomputing on the next view after each event would make the bureau wait
    seconds for most views. So a stale entry is served at once (its ``computed_at`` says when it
    was computed) while a background task recomputes it; only a missing entry is computed inside
    the request. ``STATS_REFRESH = "inline"`` recomputes stale entries in the request instead.
    """
    key = _key(name, args)
    entry = cache.get(key)
    if entry is not None:
        if entry["version"] == current_version():
            return entry["value"]
        if settings.STATS_REFRESH == "background":
            age = (timezone.now() - entry["value"]["computed_at"]).total_seconds()
            # At most one refresh a minute per entry: at province scale events arrive faster
            # than the whole programme's figures compute (5 s on PostgreSQL, 16 s on SQLite).
            if age >= MIN_REFRESH_SECONDS and cache.add(
                f"{key}:refreshing", 1, REFRESH_LOCK_SECONDS
            ):
                refresh_figures.enqueue(name, args)
            return entry["value"]
    return refresh(name, args)


@task()
def refresh_figures(name: str, args: dict) -> str:
    """Recompute cached figures that an issue event made stale, in the background."""
    refresh(name, args)
    return "ok"


def refresh(name: str, args: dict) -> dict:
    """Compute and store; the version is read first, so an event meanwhile leaves it stale."""
    key = _key(name, args)
    version = current_version()
    value = {**RECIPES[name](**args), "computed_at": timezone.now()}
    cache.set(key, {"version": version, "value": value}, ENTRY_SECONDS)
    cache.delete(f"{key}:refreshing")
    return value


# --- building blocks ---------------------------------------------------------------------------


class Seconds(Func):
    """``end - start`` in seconds, computed by the database itself.

    Django's duration arithmetic on SQLite calls a Python function for every row; over the
    province's 200,000 issues a median took 4.3 s that way, and about a tenth of it with
    ``julianday``.
    """

    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra_context,
        )

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="EXTRACT(EPOCH FROM (%(expressions)s))::float",
            arg_joiner=" - ",
            **extra_context,
        )


class _LocalTruncOnSQLite:
    """SQLite has no time zones, so Django truncates each row in a Python function (200,000
    calls for the province's weekly chart: over a second). SQLite's own date functions do it
    with the local offset instead: a fixed offset, right for China's time zone, which has no
    daylight saving. PostgreSQL truncates natively as before."""

    sqlite_modifiers: tuple[str, ...] = ()

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.lhs)
        offset = timezone.localtime().utcoffset() or timedelta()
        modifiers = ", ".join(["%s"] * (1 + len(self.sqlite_modifiers)))
        shift = f"{int(offset.total_seconds() // 60):+d} minutes"
        return f"date({sql}, {modifiers})", (*params, shift, *self.sqlite_modifiers)


class WeekOf(_LocalTruncOnSQLite, TruncWeek):
    """The local date of the Monday of the week (Django's TruncWeek, as a date)."""

    sqlite_modifiers = ("-6 days", "weekday 1")

    def __init__(self, expression):
        super().__init__(expression, output_field=DateField())


class DayOf(_LocalTruncOnSQLite, TruncDate):
    """The local date (Django's TruncDate, without a Python call per row on SQLite)."""

    def __init__(self, expression):
        super().__init__(expression, output_field=DateField())


class MonthOf(_LocalTruncOnSQLite, TruncMonth):
    """The local date of the first of the month (Django's TruncMonth, as a date)."""

    sqlite_modifiers = ("start of month",)

    def __init__(self, expression):
        super().__init__(expression, output_field=DateField())


def duration(end: str, start: str = "created_at") -> Seconds:
    return Seconds(F(end), F(start))


def medians(queryset: QuerySet, value, group: str | None = None) -> dict:
    """Median of ``value`` (an expression) per ``group`` value, or {None: median} without a
    group. Only the middle one or two rows of each group leave the database."""
    partition = [F(group)] if group else []
    rows = (
        queryset.annotate(value=value)
        .filter(value__isnull=False)
        .annotate(
            position=Window(RowNumber(), partition_by=partition, order_by=[F("value").asc()]),
            size=Window(Count("pk"), partition_by=partition),
        )
        .filter(position__gte=(F("size") + 1) / 2, position__lte=(F("size") + 2) / 2)
        .values_list(group or "pk", "value")
    )
    middle = defaultdict(list)
    for key, amount in rows:
        middle[key if group else None].append(amount)
    return {key: timedelta(seconds=sum(values) / len(values)) for key, values in middle.items()}


def days(amount: timedelta | None) -> float | None:
    return None if amount is None else round(amount.total_seconds() / 86400, 1)


def hours(amount: timedelta | None) -> float | None:
    return None if amount is None else round(amount.total_seconds() / 3600, 1)


def percent(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None


NO_FIGURE = "—"


def format_rate(value: float | None) -> str:
    """How every page writes a rate: 「12.5%」, 「57%」, or 「—」 alone when there is no figure
    (nothing to divide by). The one place rates are formatted (the ``rate`` template filter)."""
    if value is None or value == "":
        return NO_FIGURE
    number = float(value)
    text = f"{number:.1f}".removesuffix(".0")
    return f"{text}%"


def missed_a_limit(now: datetime) -> Q:
    """Signed for late, rectified late, or past a limit now."""
    return (
        Q(accepted_at__gt=F("sign_for_due_at"))
        | Q(rectified_at__gt=F("rectify_due_at"))
        | overdue(now)
    )


def reopened() -> Q:
    """Sent back at least once (the count the reopen step keeps on the issue)."""
    return Q(reopen_count__gt=0)


def _rates(queryset: QuerySet, now: datetime) -> dict:
    """Counts for rates, in one aggregate query."""
    return queryset.aggregate(
        filed=Count("pk"),
        closed=Count("pk", filter=Q(status=S.CLOSED)),
        open=Count("pk", filter=Q(status__in=Issue.OPEN_STATUSES)),
        overdue=Count("pk", filter=missed_a_limit(now)),
        fixed_or_answered=Count(
            "pk", filter=Q(status__in=[S.RECTIFIED, S.ANSWERED, S.CLOSED]) | reopened()
        ),
        reopened=Count("pk", filter=reopened()),
        rated=Count("pk", filter=~Q(rating="")),
        satisfied=Count("pk", filter=Q(rating=Issue.Rating.SATISFIED)),
        # Closed without the reporter's check (逾期未评价): unrated, never counted as 满意.
        closed_unrated=Count("pk", filter=Q(status=S.CLOSED, rating="")),
        # 附议: others (supervisors, residents' letters) said "me too" at least once.
        supported=Count("pk", filter=Q(support_count__gt=0)),
    )


# --- the figures -------------------------------------------------------------------------------


def headline(issues: QuerySet[Issue], now: datetime | None = None) -> dict:
    """Issues filed and closed, median days to fix, share 满意, overdue and reopen rates, and
    how many issues others supported (附议)."""
    now = now or timezone.now()
    figures = _rates(issues, now)
    fix = medians(issues.filter(rectified_at__isnull=False), duration("rectified_at")).get(None)
    sign = medians(issues.filter(accepted_at__isnull=False), duration("accepted_at")).get(None)
    figures.update(
        median_days_to_fix=days(fix),
        median_hours_to_sign=hours(sign),
        satisfied_share=percent(figures["satisfied"], figures["rated"]),
        overdue_rate=percent(figures["overdue"], figures["filed"]),
        reopen_rate=percent(figures["reopened"], figures["fixed_or_answered"]),
    )
    return figures


def programme_headline() -> dict:
    """The home page's figures: filed, closed, open, share 满意 and the median days to fix (the
    dashboard adds the rates and the sign-for median)."""
    issues = Issue.objects.all()
    figures = issues.aggregate(
        filed=Count("pk"),
        closed=Count("pk", filter=Q(status=S.CLOSED)),
        open=Count("pk", filter=Q(status__in=Issue.OPEN_STATUSES)),
        rated=Count("pk", filter=~Q(rating="")),
        satisfied=Count("pk", filter=Q(rating=Issue.Rating.SATISFIED)),
    )
    fix = medians(issues.filter(rectified_at__isnull=False), duration("rectified_at")).get(None)
    figures.update(
        median_days_to_fix=days(fix),
        satisfied_share=percent(figures["satisfied"], figures["rated"]),
    )
    return figures


def counts_by(issues: QuerySet[Issue], field: str, label_field: str | None = None) -> list:
    fields = [field] + ([label_field] if label_field else [])
    return list(issues.values(*fields).annotate(count=Count("pk")).order_by("-count", field))


def weekly_by_status(issues: QuerySet[Issue]) -> list[dict]:
    """Issues filed per week, split by their status now."""
    rows = (
        issues.annotate(week=WeekOf("created_at"))
        .values("week", "status")
        .annotate(count=Count("pk"))
        .order_by("week")
    )
    weeks: dict = {}
    for row in rows:
        week = row["week"].date() if isinstance(row["week"], datetime) else row["week"]
        weeks.setdefault(week, {status: 0 for status in S.values})[row["status"]] = row["count"]
    return [{"week": week, "counts": counts} for week, counts in weeks.items()]


# A chart of more weeks than this starts at the first week with issues and ends at the last.
FILLED_WEEKS_MAX = 260


def fill_weeks(weeks: list[dict], start: date | None, end: date | None) -> list[dict]:
    """``weekly_by_status`` with the weeks of no issues too, from the week of ``start`` (or the
    first week with issues) to the week of ``end`` (or the last): a chart of the period shows the
    whole period, quiet weeks included."""
    if not weeks and start is None:
        return []
    counts = {week["week"]: week["counts"] for week in weeks}
    first = _monday(start) if start else min(counts)
    last = _monday(end) if end else max(counts)
    if counts and (last - first).days > 7 * FILLED_WEEKS_MAX:
        # Dates from 2000 to 2100: the weeks that have issues, and the quiet ones between.
        first, last = max(first, min(counts)), min(last, max(counts))
    filled = []
    week = first
    while week <= last:
        filled.append({"week": week, "counts": counts.get(week, dict.fromkeys(S.values, 0))})
        week += timedelta(days=7)
    return filled


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def department_table(issues: QuerySet[Issue], now: datetime | None = None) -> list[dict]:
    """The league table: per department, volume, median sign-for and fix times, rates."""
    now = now or timezone.now()
    rows = list(
        issues.filter(department__isnull=False)
        .values("department", "department__name")
        .annotate(
            filed=Count("pk"),
            closed=Count("pk", filter=Q(status=S.CLOSED)),
            overdue=Count("pk", filter=missed_a_limit(now)),
            reopened=Count("pk", filter=reopened()),
            fixed_or_answered=Count(
                "pk",
                filter=Q(status__in=[S.RECTIFIED, S.ANSWERED, S.CLOSED]) | reopened(),
            ),
            rated=Count("pk", filter=~Q(rating="")),
            satisfied=Count("pk", filter=Q(rating=Issue.Rating.SATISFIED)),
        )
    )
    sign = medians(issues.filter(accepted_at__isnull=False), duration("accepted_at"), "department")
    fix = medians(issues.filter(rectified_at__isnull=False), duration("rectified_at"), "department")
    for row in rows:
        row["median_hours_to_sign"] = hours(sign.get(row["department"]))
        row["median_days_to_fix"] = days(fix.get(row["department"]))
        row["overdue_rate"] = percent(row["overdue"], row["filed"])
        row["reopen_rate"] = percent(row["reopened"], row["fixed_or_answered"])
        row["satisfied_share"] = percent(row["satisfied"], row["rated"])
    # Fewest missed limits first, then the most satisfied, then the fastest.
    rows.sort(
        key=lambda r: (
            r["overdue_rate"] if r["overdue_rate"] is not None else 101,
            -(r["satisfied_share"] or 0),
            r["median_days_to_fix"] if r["median_days_to_fix"] is not None else 1e9,
        )
    )
    return rows


def contractor_scorecard(issues: QuerySet[Issue]) -> list[dict]:
    """Per contractor of the projects: issues per project, median fix time, reopen rate."""
    rows = list(
        issues.filter(project__contractor__isnull=False)
        .values("project__contractor", "project__contractor__name")
        .annotate(
            filed=Count("pk"),
            projects=Count("project", distinct=True),
            reopened=Count("pk", filter=reopened()),
        )
        .order_by("project__contractor__name")
    )
    fix = medians(
        issues.filter(rectified_at__isnull=False),
        duration("rectified_at"),
        "project__contractor",
    )
    # Issues per project counts every project the contractor builds, clean ones included.
    projects = dict(
        Project.objects.filter(contractor__in=[row["project__contractor"] for row in rows])
        .values("contractor")
        .annotate(n=Count("pk"))
        .values_list("contractor", "n")
    )
    for row in rows:
        row["projects"] = projects.get(row["project__contractor"], row["projects"])
        row["per_project"] = round(row["filed"] / row["projects"], 1) if row["projects"] else None
        row["median_days_to_fix"] = days(fix.get(row["project__contractor"]))
        row["reopen_rate"] = percent(row["reopened"], row["filed"])
    return rows


def warranty_scorecard(issues: QuerySet[Issue]) -> list[dict]:
    """Warranty issues (保修) on their own, per warranty contractor: how many, how many still
    open, median hours to sign for and median days to fix."""
    warranty = issues.filter(is_warranty=True, department__isnull=False)
    rows = list(
        warranty.values("department", "department__name")
        .annotate(filed=Count("pk"), open=Count("pk", filter=Q(status__in=Issue.OPEN_STATUSES)))
        .order_by("department__name")
    )
    sign = medians(
        warranty.filter(accepted_at__isnull=False), duration("accepted_at"), "department"
    )
    fix = medians(
        warranty.filter(rectified_at__isnull=False), duration("rectified_at"), "department"
    )
    for row in rows:
        row["median_hours_to_sign"] = hours(sign.get(row["department"]))
        row["median_days_to_fix"] = days(fix.get(row["department"]))
    return rows


def supervisor_activity(issues: QuerySet[Issue], patrols: QuerySet | None = None) -> list[dict]:
    """Issues filed and patrols logged per supervisor per month."""
    counts: dict[tuple, dict] = {}

    def month_of(value):
        return value.date() if isinstance(value, datetime) else value

    for source, field, key in ((issues, "reporter", "issues"), (patrols, "supervisor", "patrols")):
        if source is None:
            continue
        rows = (
            source.annotate(month=MonthOf("created_at"))
            .values("month", field, f"{field}__display_name", f"{field}__username")
            .annotate(count=Count("pk"))
        )
        for row in rows:
            entry = counts.setdefault(
                (month_of(row["month"]), row[field]),
                {
                    "month": month_of(row["month"]),
                    "name": row[f"{field}__display_name"] or row[f"{field}__username"],
                    "issues": 0,
                    "patrols": 0,
                },
            )
            entry[key] = row["count"]
    return sorted(counts.values(), key=lambda r: (r["month"], -(r["issues"] + r["patrols"])))


def supervisor_summary(activity: list[dict], top: int = 20) -> dict:
    """What a page can show of ``supervisor_activity`` at province scale (thousands of rows):
    per month, how many supervisors were active and what they did; and the most active ones."""
    months: dict = {}
    people: dict = {}
    for row in activity:
        month = months.setdefault(
            row["month"], {"month": row["month"], "active": 0, "issues": 0, "patrols": 0}
        )
        month["active"] += 1
        month["issues"] += row["issues"]
        month["patrols"] += row["patrols"]
        person = people.setdefault(row["name"], {"name": row["name"], "issues": 0, "patrols": 0})
        person["issues"] += row["issues"]
        person["patrols"] += row["patrols"]
    ranked = sorted(people.values(), key=lambda p: (-(p["issues"] + p["patrols"]), p["name"]))
    return {"months": sorted(months.values(), key=lambda m: m["month"]), "top": ranked[:top]}


@dataclass(frozen=True)
class Period:
    start: date | None
    end: date | None
    label: str
    preset: str = ""  # the dashboard's preset it stands for ("30", "all"), "" for dates

    def apply(self, issues: QuerySet[Issue]) -> QuerySet[Issue]:
        if self.start:
            issues = issues.filter(
                created_at__gte=timezone.make_aware(
                    datetime.combine(self.start, datetime.min.time())
                )
            )
        if self.end:
            issues = issues.filter(
                created_at__lt=timezone.make_aware(
                    datetime.combine(self.end + timedelta(days=1), datetime.min.time())
                )
            )
        return issues

    @property
    def key(self) -> str:
        return f"{self.start}:{self.end}"


# --- the dashboard's figures ----------------------------------------------------------------


def scope_issues(scope: str) -> QuerySet[Issue]:
    """The issues of a scope: "all" (the bureau) or "dept<id>" (a department's)."""
    if scope == "all":
        return Issue.objects.all()
    return Issue.objects.filter(department_issues(int(scope[4:])))


def scope_patrols(scope: str) -> QuerySet[Patrol]:
    """The patrols of a scope: all, or those on a department's projects."""
    patrols = Patrol.objects.all()
    if scope.startswith("dept"):
        department = int(scope[4:])
        patrols = patrols.filter(department_projects(department, "project__")).distinct()
    return patrols


def dashboard_figures(scope: str, start: str, end: str) -> dict:
    """Every figure of the dashboard for a scope ("all" or "dept<id>") and period (ISO dates)."""
    period = Period(
        date.fromisoformat(start) if start else None, date.fromisoformat(end) if end else None, ""
    )
    scoped = period.apply(scope_issues(scope))
    now = timezone.now()
    activity = supervisor_activity(scoped, period.apply(scope_patrols(scope)))
    return {
        "headline": headline(scoped, now),
        "weekly": weekly_by_status(scoped),
        "by_category": counts_by(scoped, "category"),
        "by_subdistrict": counts_by(scoped, "project__neighbourhood__subdistrict__name"),
        "departments": department_table(scoped, now),
        "contractors": contractor_scorecard(scoped),
        "warranty_contractors": warranty_scorecard(scoped),
        "supervisor_summary": supervisor_summary(activity),
    }
