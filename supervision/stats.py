"""The programme's figures: counts, rates and medians per group, for any period.

The figures are computed from a ``Cube``: issues counted per department, project contractor,
subdistrict, category, status and warranty flag; histograms of the signing-for and fixing times;
issues per day and status; and what each supervisor did per month. The bureau's cube comes from
the rollups (``rollups.py``) for the whole months of the period, and from the issues themselves
for the days at its edges, so any period is exact without scanning the province's issues. A
department's cube (a few thousand issues) is counted from its issues the same way.

Two things are not rolled up. Limits passed now by open issues depend on the moment: they are
counted over the open issues (their status index), leaving out those already late. And the
medians are read from histograms of durations rounded to the tenth shown (hours to sign for,
days to fix): the middle value, or for an even count the mean of the two middle ones rounded
half up to the tenth. That equals the median of the exact durations, rounded, except when an
even count's two middle durations fall in different tenths: then it can differ by 0.1.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Case, Count, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from . import rollups
from .models import (
    PROJECT_COUNTY,
    ActivityRollup,
    DayRollup,
    Department,
    DurationRollup,
    Issue,
    IssueRollup,
    Patrol,
    Project,
    Subdistrict,
    department_issues,
    department_projects,
    overdue,
)
from .rollups import DayOf, MonthOf, WeekOf  # noqa: F401  (the local calendar, for other modules)

S = Issue.Status
FIXED_OR_ANSWERED = (S.RECTIFIED, S.ANSWERED, S.CLOSED)


# --- formatting --------------------------------------------------------------------------------


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


def median_tenths(histogram: dict[int, int]) -> float | None:
    """The median of a histogram of tenths (of an hour or a day), in hours or days: the middle
    value, or for an even count the mean of the two middle values rounded half up to a tenth."""
    total = sum(histogram.values())
    if not total:
        return None
    low, high = (total + 1) // 2, total // 2 + 1  # the middle positions, counted from 1
    seen, middle = 0, []
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        while len(middle) < 2 and seen >= (low, high)[len(middle)]:
            middle.append(bucket)
        if len(middle) == 2:
            break
    return ((middle[0] + middle[1] + 1) // 2) / 10


# --- conditions --------------------------------------------------------------------------------


def missed_a_limit(now: datetime) -> Q:
    """Signed for late, rectified late, or past a limit now."""
    return rollups.late() | overdue(now)


def reopened() -> Q:
    """Sent back at least once (the count the reopen step keeps on the issue)."""
    return Q(reopen_count__gt=0)


# --- the cube ----------------------------------------------------------------------------------

MEASURES = rollups.ISSUE_MEASURES


@dataclass
class Cube:
    """What every figure is computed from, for one scope and period."""

    # (department, contractor, subdistrict, category, status, is_warranty) → ISSUE_MEASURES
    issues: dict = field(default_factory=lambda: defaultdict(lambda: [0] * len(MEASURES)))
    # (department, contractor, is_warranty, kind, tenths) → count
    durations: dict = field(default_factory=lambda: defaultdict(int))
    # (week's Monday, status) → count
    weeks: dict = field(default_factory=lambda: defaultdict(int))
    # month → [active supervisors, issues, patrols]; person → [issues, patrols]
    months: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    people: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    # department → open issues past a limit now that were not late already
    overdue_now: dict = field(default_factory=lambda: defaultdict(int))

    def add_issues(self, issues: QuerySet[Issue]) -> None:
        """Count these issues (``rollups.issue_counts`` and ``duration_counts``, days dropped)."""
        for (_day, *key), measures in rollups.issue_counts(issues).items():
            row = self.issues[tuple(key)]
            for i, amount in enumerate(measures):
                row[i] += amount
        for (_day, *key), (count,) in rollups.duration_counts(issues).items():
            self.durations[tuple(key)] += count

    def add_weeks(self, issues: QuerySet[Issue]) -> None:
        for (day, status), (count,) in rollups.day_counts(issues).items():
            self.weeks[(_monday(day), status)] += count

    def add_activity(self, activity: dict) -> None:
        """Add ``rollups.activity_counts`` (months not in the cube yet)."""
        for (month, person), (issues, patrols) in activity.items():
            if issues or patrols:
                self.months[month][0] += 1
                self.months[month][1] += issues
                self.months[month][2] += patrols
                self.people[person][0] += issues
                self.people[person][1] += patrols


def live_cube(
    issues: QuerySet[Issue], patrols: QuerySet | None = None, now: datetime | None = None
) -> Cube:
    """The cube of these issues (and patrols), counted from them."""
    cube = Cube()
    cube.add_issues(issues)
    cube.add_weeks(issues)
    cube.add_activity(rollups.activity_counts(issues, patrols))
    _count_overdue_now(cube, issues, now or timezone.now())
    return cube


def _count_overdue_now(cube: Cube, issues: QuerySet[Issue], now: datetime) -> None:
    # ``due_at`` (kept by ``Issue.save``) is set while a limit runs: the index's condition.
    rows = (
        issues.filter(status__in=Issue.OPEN_STATUSES, due_at__isnull=False)
        .filter(overdue(now))
        .annotate(was_late=Case(When(rollups.late(), then=Value(1)), default=Value(0)))
        .filter(was_late=0)
        .values_list("department_id")
        .annotate(n=Count("*"))  # not the id, which the index lacks on PostgreSQL
        .order_by()
    )
    for department, n in rows:
        cube.overdue_now[department or 0] += n


ISSUE_KEY = ("department", "contractor", "subdistrict", "category", "status", "is_warranty")
DURATION_KEY = ("department", "contractor", "is_warranty", "kind", "tenths")


def _add_rollups(
    cube: Cube, grain: str, first: date | None, last: date | None, parts, place=None
) -> None:
    """Add the rollups' rows of a grain ("month", "day") from ``first`` to ``last`` (None: no
    limit), summed by the database over their days; only those of ``place`` if given."""
    days = Q(grain=grain)
    if first:
        days &= Q(day__gte=first)
    if last:
        days &= Q(day__lte=last)
    if "issues" in parts:
        rows = (
            IssueRollup.objects.filter(days, place.issues() if place else Q())
            .values_list(*ISSUE_KEY)
            .annotate(*(Sum(m) for m in MEASURES))
            .order_by()
        )
        for row in rows:
            key = row[: len(ISSUE_KEY)]
            cube.issues[key] = [
                a + (b or 0) for a, b in zip(cube.issues[key], row[len(ISSUE_KEY) :], strict=True)
            ]
    if "durations" in parts:
        rows = (
            DurationRollup.objects.filter(days, place.durations() if place else Q())
            .values_list(*DURATION_KEY)
            .annotate(Sum("count"))
            .order_by()
        )
        for *key, count in rows:
            cube.durations[tuple(key)] += count or 0
    if "activity" in parts:
        # Kept per month only: asked for with whole months.
        months = ActivityRollup.objects.filter(
            place.people() if place else Q(),
            month__gte=first or date.min,
            month__lte=last or date.max,
        )
        active = Q(issues__gt=0) | Q(patrols__gt=0)
        for month, people, issues, patrols in (
            months.values_list("month")
            .annotate(n=Count("pk", filter=active), i=Sum("issues"), p=Sum("patrols"))
            .order_by()
        ):
            cube.months[month] = [
                a + b for a, b in zip(cube.months[month], (people, issues, patrols), strict=True)
            ]
        for person, issues, patrols in (
            months.values_list("person").annotate(Sum("issues"), Sum("patrols")).order_by()
        ):
            cube.people[person][0] += issues
            cube.people[person][1] += patrols


def _add_weeks(cube: Cube, start: date | None, end: date | None) -> None:
    """The weekly chart's counts of the days from ``start`` to ``end`` (None: no limit)."""
    rows = (
        DayRollup.objects.filter(day__gte=start or date.min, day__lte=end or date.max)
        .values_list("week", "status")
        .annotate(Sum("filed"))
        .order_by()
    )
    for week, status, count in rows:
        cube.weeks[(week, status)] += count


def _next_month(month: date) -> date:
    return (month.replace(day=1) + timedelta(days=32)).replace(day=1)


def _previous_month(month: date) -> date:
    return (month - timedelta(days=1)).replace(day=1)


def _split(period: Period) -> tuple[tuple[date | None, date | None] | None, list[Period]]:
    """The whole months of a period (first days of the first and last; None: no limit), and
    the periods at its edges that are not whole months."""
    start, end = period.start, period.end
    first = None if start is None else start if start.day == 1 else _next_month(start)
    last = None
    if end is not None:
        last = end.replace(day=1)
        if _next_month(last) - timedelta(days=1) != end:
            last = _previous_month(last)
    if first and last and first > last:
        return None, [period]
    edges = []
    if first and start < first:
        edges.append(Period(start, first - timedelta(days=1), ""))
    if last and end >= _next_month(last):
        edges.append(Period(_next_month(last), end, ""))
    return (first, last), edges


def bureau_cube(
    period: Period, now: datetime | None = None, counties: list[int] | None = None
) -> Cube:
    """The cube of every issue, or of the issues of some counties, for a period, from the
    rollups: the whole months from their month rows, the days at the edges from their day rows
    (the supervisors' activity there from the issues and patrols themselves), and the limits
    passed now from the open issues. The rollups are kept by subdistrict and department, so a
    county's share is their rows of its subdistricts and departments; the weekly chart of some
    counties is counted from their issues (its rollup has no place)."""
    now = now or timezone.now()
    cube = Cube()
    place = None if counties is None else _Place(counties)
    scope = "all" if counties is None else county_scope(counties)
    months, edges = _split(period)
    if months is not None:
        _add_rollups(cube, "month", *months, parts={"issues", "durations", "activity"}, place=place)
    for edge in edges:
        _add_rollups(cube, "day", edge.start, edge.end, parts={"issues", "durations"}, place=place)
        cube.add_activity(
            rollups.activity_counts(
                edge.apply(scope_issues(scope)), edge.apply(scope_patrols(scope))
            )
        )
    if place is None:
        _add_weeks(cube, period.start, period.end)
    else:
        cube.add_weeks(period.apply(scope_issues(scope)))
    _count_overdue_now(cube, period.apply(scope_issues(scope)), now)
    return cube


@dataclass
class _Place:
    """The rollups' keys that belong to some counties: their subdistricts, departments and
    people."""

    counties: list[int]

    def issues(self) -> Q:
        return Q(subdistrict__in=Subdistrict.objects.filter(region__in=self.counties).values("pk"))

    def durations(self) -> Q:
        return Q(department__in=Department.objects.filter(region__in=self.counties).values("pk"))

    def people(self) -> Q:
        users = get_user_model().objects.filter(region__in=self.counties).values("pk")
        return Q(person__in=users)


def county_scope(counties) -> str:
    """The dashboard's scope for some counties: ``"counties:3,7"``."""
    return "counties:" + ",".join(str(pk) for pk in sorted(counties))


def scope_counties(scope: str) -> list[int] | None:
    """The counties of a ``county_scope``; None for any other scope."""
    if not scope.startswith("counties:"):
        return None
    return [int(pk) for pk in scope.removeprefix("counties:").split(",") if pk.isdigit()]


# --- the figures -------------------------------------------------------------------------------


def _sum(rows) -> dict:
    totals = dict.fromkeys(MEASURES, 0)
    for measures in rows:
        for name, amount in zip(MEASURES, measures, strict=True):
            totals[name] += amount
    return totals


def _rates(cube: Cube, match=lambda key: True) -> dict:
    """The counts behind the rates of the issues whose key matches."""
    rows = [(key, m) for key, m in cube.issues.items() if match(key)]
    totals = _sum(m for _key, m in rows)
    closed = _sum(m for key, m in rows if key[4] == S.CLOSED)
    fixed = _sum(m for key, m in rows if key[4] in FIXED_OR_ANSWERED)
    return {
        "filed": totals["filed"],
        "closed": closed["filed"],
        "open": sum(m[0] for key, m in rows if key[4] in Issue.OPEN_STATUSES),
        "late": totals["late"],
        "fixed_or_answered": fixed["filed"] + totals["reopened"] - fixed["reopened"],
        "reopened": totals["reopened"],
        "rated": totals["rated"],
        "satisfied": totals["satisfied"],
        # Closed without the reporter's check (逾期未评价): unrated, never counted as 满意.
        "closed_unrated": closed["filed"] - closed["rated"],
        # 附议: others (supervisors, residents' letters) said "me too" at least once.
        "supported": totals["supported"],
    }


def _medians(cube: Cube, group: int | None = None, warranty: bool | None = None) -> dict:
    """{(kind, group value): median} over the duration histograms; ``group`` is the position
    in the key (0 department, 1 contractor), None for one median per kind."""
    histograms: dict = defaultdict(lambda: defaultdict(int))
    for key, count in cube.durations.items():
        if warranty is not None and key[2] != warranty:
            continue
        histograms[(key[3], None if group is None else key[group])][key[4]] += count
    return {name: median_tenths(histogram) for name, histogram in histograms.items()}


def _headline(cube: Cube) -> dict:
    figures = _rates(cube)
    figures["overdue"] = figures.pop("late") + sum(cube.overdue_now.values())
    medians = _medians(cube)
    figures.update(
        median_days_to_fix=medians.get(("fix", None)),
        median_hours_to_sign=medians.get(("sign", None)),
        satisfied_share=percent(figures["satisfied"], figures["rated"]),
        overdue_rate=percent(figures["overdue"], figures["filed"]),
        reopen_rate=percent(figures["reopened"], figures["fixed_or_answered"]),
    )
    return figures


def _department_table(cube: Cube) -> list[dict]:
    departments = {key[0] for key in cube.issues if key[0]}
    names = dict(Department.objects.filter(pk__in=departments).values_list("pk", "name"))
    medians = _medians(cube, group=0)
    rows = []
    for department in departments:
        row = {"department": department, "department__name": names.get(department)}
        counts = _rates(cube, lambda key, d=department: key[0] == d)
        if not counts["filed"]:
            continue
        row.update(
            filed=counts["filed"],
            closed=counts["closed"],
            overdue=counts["late"] + cube.overdue_now.get(department, 0),
            reopened=counts["reopened"],
            fixed_or_answered=counts["fixed_or_answered"],
            rated=counts["rated"],
            satisfied=counts["satisfied"],
            median_hours_to_sign=medians.get(("sign", department)),
            median_days_to_fix=medians.get(("fix", department)),
        )
        row["overdue_rate"] = percent(row["overdue"], row["filed"])
        row["reopen_rate"] = percent(row["reopened"], row["fixed_or_answered"])
        row["satisfied_share"] = percent(row["satisfied"], row["rated"])
        rows.append(row)
    # Fewest missed limits first, then the most satisfied, then the fastest.
    rows.sort(
        key=lambda r: (
            r["overdue_rate"] if r["overdue_rate"] is not None else 101,
            -(r["satisfied_share"] or 0),
            r["median_days_to_fix"] if r["median_days_to_fix"] is not None else 1e9,
            r["department__name"] or "",
        )
    )
    return rows


def _contractor_scorecard(cube: Cube) -> list[dict]:
    totals: dict = defaultdict(lambda: [0] * len(MEASURES))
    for key, measures in cube.issues.items():
        if key[1]:
            totals[key[1]] = [a + b for a, b in zip(totals[key[1]], measures, strict=True)]
    names = dict(Department.objects.filter(pk__in=totals).values_list("pk", "name"))
    # Issues per project counts every project the contractor builds, clean ones included.
    projects = dict(
        Project.objects.filter(contractor__in=list(totals))
        .values("contractor")
        .annotate(n=Count("pk"))
        .values_list("contractor", "n")
    )
    medians = _medians(cube, group=1)
    rows = []
    for contractor, measures in totals.items():
        counts = dict(zip(MEASURES, measures, strict=True))
        if not counts["filed"]:
            continue
        row = {
            "project__contractor": contractor,
            "project__contractor__name": names.get(contractor),
            "filed": counts["filed"],
            "projects": projects.get(contractor, 0),
            "reopened": counts["reopened"],
        }
        row["per_project"] = round(row["filed"] / row["projects"], 1) if row["projects"] else None
        row["median_days_to_fix"] = medians.get(("fix", contractor))
        row["reopen_rate"] = percent(row["reopened"], row["filed"])
        rows.append(row)
    return sorted(
        rows, key=lambda r: (r["project__contractor__name"] or "", r["project__contractor"])
    )


def _warranty_scorecard(cube: Cube) -> list[dict]:
    counts: dict = defaultdict(lambda: [0, 0])
    for key, measures in cube.issues.items():
        if key[5] and key[0]:
            counts[key[0]][0] += measures[0]
            if key[4] in Issue.OPEN_STATUSES:
                counts[key[0]][1] += measures[0]
    names = dict(Department.objects.filter(pk__in=counts).values_list("pk", "name"))
    medians = _medians(cube, group=0, warranty=True)
    rows = [
        {
            "department": department,
            "department__name": names.get(department),
            "filed": filed,
            "open": still_open,
            "median_hours_to_sign": medians.get(("sign", department)),
            "median_days_to_fix": medians.get(("fix", department)),
        }
        for department, (filed, still_open) in counts.items()
        if filed
    ]
    return sorted(rows, key=lambda r: (r["department__name"] or "", r["department"]))


def _counts_by(cube: Cube, position: int) -> dict:
    counts: dict = defaultdict(int)
    for key, measures in cube.issues.items():
        counts[key[position]] += measures[0]
    return {value: n for value, n in counts.items() if n}


def _by_category(cube: Cube) -> list[dict]:
    counts = _counts_by(cube, 3)
    return [
        {"category": category, "count": n}
        for category, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def _county_table(cube: Cube, keep_one: bool = False) -> list[dict]:
    """The league table of counties (县（市、区）) for the province and the cities: each county's
    issues, closed, open, overdue and satisfaction, the most punctual first. Empty when the cube
    holds one county only (a county's own bureau)."""
    subdistricts = {key[2] for key in cube.issues if key[2]}
    places = {
        pk: (county, name, city)
        for pk, county, name, city in Subdistrict.objects.filter(pk__in=subdistricts).values_list(
            "pk", "region", "region__name", "region__parent__name"
        )
    }
    counties = set(places.values())
    if len(counties) < 2 and not keep_one:
        return []
    departments = defaultdict(set)
    for key in cube.issues:
        if key[2] in places:
            departments[places[key[2]][0]].add(key[0])
    rows = []
    for county, name, city in counties:
        counts = _rates(cube, lambda key, c=county: places.get(key[2], (None,))[0] == c)
        late = counts["late"] + sum(cube.overdue_now.get(d, 0) for d in departments[county])
        rows.append(
            {
                "county_id": county,
                "county": name,
                "city": city,
                "filed": counts["filed"],
                "closed": counts["closed"],
                "open": counts["open"],
                "overdue": late,
                "overdue_rate": percent(late, counts["filed"]),
                "satisfied_share": percent(counts["satisfied"], counts["rated"]),
            }
        )
    rows.sort(key=lambda r: (r["overdue_rate"] is None, r["overdue_rate"] or 0, -r["filed"]))
    return rows


def county_headlines() -> list[dict]:
    """Every county's issues at a glance for the province's home page (``_county_table`` of the
    whole programme from the month rollups), with the county's id."""
    cube = Cube()
    _add_rollups(cube, "month", None, None, parts={"issues"})
    return _county_table(cube, keep_one=True)


def _by_subdistrict(cube: Cube) -> list[dict]:
    counts = _counts_by(cube, 2)
    names = dict(Subdistrict.objects.filter(pk__in=counts).values_list("pk", "name"))
    named = defaultdict(int)
    for subdistrict, n in counts.items():
        named[names.get(subdistrict)] += n
    return [
        {"project__neighbourhood__subdistrict__name": name, "count": n}
        for name, n in sorted(named.items(), key=lambda item: (-item[1], item[0] or ""))
    ]


def _weekly(cube: Cube) -> list[dict]:
    weeks: dict = {}
    for (week, status), count in sorted(cube.weeks.items()):
        if count:
            weeks.setdefault(week, dict.fromkeys(S.values, 0))[status] += count
    return [{"week": week, "counts": counts} for week, counts in sorted(weeks.items())]


def _supervisor_summary(cube: Cube, top: int = 20) -> dict:
    """``supervisor_summary`` of the cube's activity."""
    months = [
        {"month": month, "active": active, "issues": issues, "patrols": patrols}
        for month, (active, issues, patrols) in sorted(cube.months.items())
        if active
    ]
    users = get_user_model().objects.filter(pk__in=list(cube.people))
    names = {
        pk: shown or username
        for pk, shown, username in users.values_list("pk", "display_name", "username")
    }
    people: dict = {}
    for person, (issues, patrols) in cube.people.items():
        if issues or patrols:
            name = names.get(person, "")
            entry = people.setdefault(name, {"name": name, "issues": 0, "patrols": 0})
            entry["issues"] += issues
            entry["patrols"] += patrols
    ranked = sorted(people.values(), key=lambda p: (-(p["issues"] + p["patrols"]), p["name"]))
    return {"months": months, "top": ranked[:top]}


def figures_of(cube: Cube) -> dict:
    """Every figure of the dashboard, from a cube."""
    return {
        "headline": _headline(cube),
        "weekly": _weekly(cube),
        "by_category": _by_category(cube),
        "by_subdistrict": _by_subdistrict(cube),
        "counties": _county_table(cube),
        "departments": _department_table(cube),
        "contractors": _contractor_scorecard(cube),
        "warranty_contractors": _warranty_scorecard(cube),
        "supervisor_summary": _supervisor_summary(cube),
    }


# --- figures of any issues (counted from them) -------------------------------------------------


def headline(issues: QuerySet[Issue], now: datetime | None = None) -> dict:
    """Issues filed and closed, median days to fix, share 满意, overdue and reopen rates, and
    how many issues others supported (附议)."""
    return _headline(live_cube(issues, now=now))


def department_table(issues: QuerySet[Issue], now: datetime | None = None) -> list[dict]:
    """The league table: per department, volume, median sign-for and fix times, rates."""
    return _department_table(live_cube(issues, now=now))


def contractor_scorecard(issues: QuerySet[Issue]) -> list[dict]:
    """Per contractor of the projects: issues per project, median fix time, reopen rate."""
    return _contractor_scorecard(live_cube(issues))


def warranty_scorecard(issues: QuerySet[Issue]) -> list[dict]:
    """Warranty issues (保修) on their own, per warranty contractor: how many, how many still
    open, median hours to sign for and median days to fix."""
    return _warranty_scorecard(live_cube(issues))


def weekly_by_status(issues: QuerySet[Issue]) -> list[dict]:
    """Issues filed per week, split by their status now."""
    cube = Cube()
    cube.add_weeks(issues)
    return _weekly(cube)


def programme_headline(counties: list[int] | None = None) -> dict:
    """The home page's figures: filed, closed, open, share 满意 and the median days to fix (the
    dashboard adds the rates and the sign-for median), from the rollups; of some counties only
    if given."""
    cube = Cube()
    place = None if counties is None else _Place(counties)
    _add_rollups(cube, "month", None, None, parts={"issues", "durations"}, place=place)
    figures = {
        key: value
        for key, value in _rates(cube).items()
        if key in ("filed", "closed", "open", "rated", "satisfied")
    }
    figures.update(
        median_days_to_fix=_medians(cube).get(("fix", None)),
        satisfied_share=percent(figures["satisfied"], figures["rated"]),
    )
    return figures


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


def supervisor_activity(issues: QuerySet[Issue], patrols: QuerySet | None = None) -> list[dict]:
    """Issues filed and patrols logged per supervisor per month (the export's sheet)."""
    counts = rollups.activity_counts(issues, patrols)
    users = get_user_model().objects.filter(pk__in={person for _month, person in counts})
    names = {
        pk: shown or username
        for pk, shown, username in users.values_list("pk", "display_name", "username")
    }
    rows = [
        {"month": month, "name": names.get(person, ""), "issues": issues_, "patrols": patrols_}
        for (month, person), (issues_, patrols_) in counts.items()
    ]
    return sorted(rows, key=lambda r: (r["month"], -(r["issues"] + r["patrols"]), r["name"]))


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
    """The issues of a scope: "all", "counties:<ids>" (a county's bureau, the oversight of a
    city) or "dept<id>" (a department's)."""
    if scope == "all":
        return Issue.objects.all()
    counties = scope_counties(scope)
    if counties is not None:
        projects = Project.objects.filter(**{f"{PROJECT_COUNTY}__in": counties})
        return Issue.objects.filter(project__in=projects.values("pk"))
    return Issue.objects.filter(department_issues(int(scope[4:])))


def scope_patrols(scope: str) -> QuerySet[Patrol]:
    """The patrols of a scope: all, a county's, or those on a department's projects."""
    patrols = Patrol.objects.all()
    counties = scope_counties(scope)
    if counties is not None:
        return patrols.filter(**{f"project__{PROJECT_COUNTY}__in": counties})
    if scope.startswith("dept"):
        department = int(scope[4:])
        patrols = patrols.filter(department_projects(department, "project__")).distinct()
    return patrols


def dashboard_figures(scope: str, start: str, end: str) -> dict:
    """Every figure of the dashboard for a scope ("all" or "dept<id>") and period (ISO dates):
    the bureau's from the rollups, a department's from its issues."""
    period = Period(
        date.fromisoformat(start) if start else None, date.fromisoformat(end) if end else None, ""
    )
    now = timezone.now()
    if scope == "all":
        cube = bureau_cube(period, now)
    elif scope.startswith("counties:"):
        cube = bureau_cube(period, now, scope_counties(scope))
    else:
        issues = period.apply(scope_issues(scope))
        cube = live_cube(issues, period.apply(scope_patrols(scope)), now)
    return figures_of(cube)
