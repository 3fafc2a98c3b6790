"""The dashboard's rollups (``models/rollups.py``), kept as issues and patrols change.

Each issue counts under the key of its current state: its local month and, for the edges of
periods, its local day (two rows of each grain), × department, project contractor, subdistrict,
category, status and warranty flag (``IssueRollup``); its signing-for and fixing times rounded to
the tenth shown, per month and day × department, contractor and warranty flag
(``DurationRollup``); its local day and status (``DayRollup``, the weekly chart); and its
reporter's month (``ActivityRollup``, with patrols). Signals do the counting, as for the search
index and the public pages' cache: this is derived data, not a step of the workflow.

Saving an issue moves its count: ``pre_save`` reads the row as it was, ``post_save`` as it is,
and the difference is added with one upsert per table, in the saving transaction (the workflow
steps save under a row lock, so the old row read is the one replaced). Moving a project to another
contractor or neighbourhood moves its issues' counts. Bulk loads (``generate_scale``,
``load_demo``) bypass the signals and call ``rebuild()`` at their end; so does the
``rebuild_rollups`` command. ``recompute()`` is the same counting done by the database over the
issues themselves: the tests hold the two together.

Durations are counted in whole tenths (of an hour for signing for, of a day for fixing), rounded
half up from exact microseconds, identically in Python and in SQL on both databases.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from django.apps import apps as global_apps
from django.db import connection, transaction
from django.db.models import (
    Count,
    DateField,
    F,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate, TruncMonth, TruncWeek
from django.db.models.signals import post_save, pre_delete, pre_save
from django.utils import timezone

# --- local calendar, in Python and in SQL ------------------------------------------------------


def local_date(moment: datetime) -> date:
    return timezone.localtime(moment, timezone.get_default_timezone()).date()


def month_of(moment: datetime) -> date:
    return local_date(moment).replace(day=1)


class _LocalTruncOnSQLite:
    """SQLite has no time zones, so Django truncates each row in a Python function (200,000
    calls for the province's weekly chart: over a second). SQLite's own date functions do it
    with the local offset instead: a fixed offset, right for China's time zone, which has no
    daylight saving. PostgreSQL truncates natively."""

    sqlite_modifiers: tuple[str, ...] = ()

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.lhs)
        offset = timezone.localtime().utcoffset() or timedelta()
        modifiers = ", ".join(["%s"] * (1 + len(self.sqlite_modifiers)))
        shift = f"{int(offset.total_seconds() // 60):+d} minutes"
        # Whole seconds only: SQLite rounds fractions to milliseconds, which would move
        # 23:59:59.9999 into the next day.
        return f"date(substr({sql}, 1, 19), {modifiers})", (*params, shift, *self.sqlite_modifiers)


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


# --- durations in tenths -----------------------------------------------------------------------

MICROSECOND = timedelta(microseconds=1)
# A tenth of an hour (signing for) and of a day (fixing), in microseconds.
TENTH = {"sign": 360_000_000, "fix": 8_640_000_000}
DURATION_END = {"sign": "accepted_at", "fix": "rectified_at"}


def tenths(end: datetime, start: datetime, kind: str) -> int:
    """``end - start`` in tenths of an hour ("sign") or a day ("fix"), rounded half up."""
    unit = TENTH[kind]
    return ((end - start) // MICROSECOND + unit // 2) // unit


class Tenths(Func):
    """``tenths()`` in the database, in exact integers: SQLite's ``julianday`` is a float that
    can put a duration of exactly 3 minutes on either side of the 0.05-hour line; these
    cannot. SQLite keeps times as text (``YYYY-MM-DD HH:MM:SS[.ffffff]``); PostgreSQL's
    ``EXTRACT(EPOCH …)`` is an exact numeric."""

    output_field = IntegerField()

    def __init__(self, end: str, start: str, kind: str):
        self.unit = TENTH[kind]
        super().__init__(F(end), F(start))

    def as_sqlite(self, compiler, connection, **extra_context):
        (end, end_params), (start, start_params) = (
            compiler.compile(e) for e in self.get_source_expressions()
        )

        def micro(sql):
            return (
                f"(CAST(strftime('%%s', substr({sql}, 1, 19)) AS INTEGER) * 1000000"
                f" + CAST(substr({sql} || '.000000', 21, 6) AS INTEGER))"
            )

        # SQLite's integer division truncates towards zero: shifted by a million units (11
        # years of tenths of an hour), a negative duration (bad data) is floored too.
        shift = 1_000_000
        sql = (
            f"(({micro(end)} - {micro(start)} + {self.unit // 2 + shift * self.unit})"
            f" / {self.unit} - {shift})"
        )
        return sql, (*end_params, *end_params, *start_params, *start_params)

    def as_postgresql(self, compiler, connection, **extra_context):
        (end, end_params), (start, start_params) = (
            compiler.compile(e) for e in self.get_source_expressions()
        )
        sql = (
            f"FLOOR((EXTRACT(EPOCH FROM ({end} - {start})) * 1000000 + {self.unit // 2})"
            f" / {self.unit})::integer"
        )
        return sql, (*end_params, *start_params)


# --- what one issue counts for -----------------------------------------------------------------

# The issue's fields the rollups depend on (``project`` for its contractor and subdistrict).
ISSUE_FIELDS = frozenset(
    {
        "created_at",
        "department",
        "project",
        "reporter",
        "category",
        "status",
        "is_warranty",
        "reopen_count",
        "rating",
        "support_count",
        "accepted_at",
        "sign_for_due_at",
        "rectified_at",
        "rectify_due_at",
    }
)
ROW_VALUES = (
    "created_at",
    "department_id",
    "project__contractor_id",
    "project__neighbourhood__subdistrict_id",
    "reporter_id",
    "category",
    "status",
    "is_warranty",
    "reopen_count",
    "rating",
    "support_count",
    "accepted_at",
    "sign_for_due_at",
    "rectified_at",
    "rectify_due_at",
)
ISSUE_MEASURES = ("filed", "reopened", "rated", "satisfied", "supported", "late")


def late() -> Q:
    """Signed for late or rectified late: missed a limit for good (``stats`` adds the limits
    passed now by open issues)."""
    return Q(accepted_at__gt=F("sign_for_due_at")) | Q(rectified_at__gt=F("rectify_due_at"))


def _is_late(row: dict) -> bool:
    def after(moment, limit):
        return moment is not None and limit is not None and moment > limit

    return after(row["accepted_at"], row["sign_for_due_at"]) or after(
        row["rectified_at"], row["rectify_due_at"]
    )


class Tables:
    """The four rollups as dictionaries, key → measures; what ``recompute()``, ``stored()`` and
    one issue's contribution are, and what is added to the tables."""

    def __init__(self):
        self.issues: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(ISSUE_MEASURES))
        self.durations: dict[tuple, list[int]] = defaultdict(lambda: [0])
        self.days: dict[tuple, list[int]] = defaultdict(lambda: [0])
        self.activity: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])

    def parts(self) -> dict[str, dict]:
        return {
            "issues": self.issues,
            "durations": self.durations,
            "days": self.days,
            "activity": self.activity,
        }

    def add(self, other: Tables, sign: int = 1) -> None:
        for name, table in other.parts().items():
            mine = getattr(self, name)
            for key, measures in table.items():
                mine[key] = [a + sign * b for a, b in zip(mine[key], measures, strict=True)]

    def nonzero(self) -> dict[str, dict]:
        return {
            name: {key: list(m) for key, m in table.items() if any(m)}
            for name, table in self.parts().items()
        }


def _grains(day: date) -> tuple[tuple[str, date], ...]:
    """Where a local day counts: in its month's rows and in its own."""
    return (("month", day.replace(day=1)), ("day", day))


def _with_grains(by_day: dict[tuple, list[int]]) -> dict[tuple, list[int]]:
    """Rows keyed by day first (``issue_counts``, ``duration_counts``) in both grains."""
    rows: dict[tuple, list[int]] = {}
    for (day, *key), measures in by_day.items():
        for grain, start in _grains(day):
            row = rows.setdefault((grain, start, *key), [0] * len(measures))
            for i, amount in enumerate(measures):
                row[i] += amount
    return rows


def _add_issue(tables: Tables, row: dict) -> None:
    """Count one issue (a dict of ``ROW_VALUES``) into ``tables``."""
    day = local_date(row["created_at"])
    department = row["department_id"] or 0
    contractor = row["project__contractor_id"] or 0
    warranty = bool(row["is_warranty"])
    dims = (
        department,
        contractor,
        row["project__neighbourhood__subdistrict_id"] or 0,
        row["category"],
        row["status"],
        warranty,
    )
    counts = (
        1,
        int(row["reopen_count"] > 0),
        int(row["rating"] != ""),
        int(row["rating"] == "satisfied"),
        int(row["support_count"] > 0),
        int(_is_late(row)),
    )
    durations = [
        (kind, tenths(row[end], row["created_at"], kind))
        for kind, end in DURATION_END.items()
        if row[end] is not None
    ]
    for grain, start in _grains(day):
        key = (grain, start, *dims)
        tables.issues[key] = [a + b for a, b in zip(tables.issues[key], counts, strict=True)]
        for kind, bucket in durations:
            tables.durations[(grain, start, department, contractor, warranty, kind, bucket)][0] += 1
    tables.days[(day, row["status"])][0] += 1
    tables.activity[(day.replace(day=1), row["reporter_id"])][0] += 1


def _issue_rows(issues: QuerySet) -> list[dict]:
    return list(issues.values(*ROW_VALUES))


# --- the same counts by the database -----------------------------------------------------------


def issue_counts(issues: QuerySet) -> dict[tuple, list[int]]:
    """These issues counted per local day, department, project contractor, subdistrict,
    category, status and warranty flag (``IssueRollup``'s day rows)."""
    rows = (
        issues.annotate(
            r_day=DayOf("created_at"),
            r_department=Coalesce("department_id", Value(0)),
            r_contractor=Coalesce("project__contractor_id", Value(0)),
            r_subdistrict=Coalesce("project__neighbourhood__subdistrict_id", Value(0)),
        )
        .values_list(
            "r_day",
            "r_department",
            "r_contractor",
            "r_subdistrict",
            "category",
            "status",
            "is_warranty",
        )  # fmt: skip
        .annotate(
            filed=Count("pk"),
            reopened=Count("pk", filter=Q(reopen_count__gt=0)),
            rated=Count("pk", filter=~Q(rating="")),
            satisfied=Count("pk", filter=Q(rating="satisfied")),
            supported=Count("pk", filter=Q(support_count__gt=0)),
            late=Count("pk", filter=late()),
        )
        .order_by()
    )
    return {(_date(r[0]), *r[1:6], bool(r[6])): list(r[7:]) for r in rows}


def duration_counts(issues: QuerySet) -> dict[tuple, list[int]]:
    """Signing-for and fixing times of these issues in tenths, counted per local day,
    department, project contractor and warranty flag (``DurationRollup``'s day rows)."""
    counts = {}
    for kind, end in DURATION_END.items():
        rows = (
            issues.filter(**{f"{end}__isnull": False})
            .annotate(
                r_day=DayOf("created_at"),
                r_department=Coalesce("department_id", Value(0)),
                r_contractor=Coalesce("project__contractor_id", Value(0)),
                r_tenths=Tenths(end, "created_at", kind),
            )
            .values_list("r_day", "r_department", "r_contractor", "is_warranty", "r_tenths")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for day, department, contractor, warranty, bucket, n in rows:
            counts[(_date(day), department, contractor, bool(warranty), kind, bucket)] = [n]
    return counts


def day_counts(issues: QuerySet) -> dict[tuple, list[int]]:
    rows = (
        issues.annotate(r_day=DayOf("created_at"))
        .values_list("r_day", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(_date(day), status): [n] for day, status, n in rows}


def activity_counts(issues: QuerySet | None, patrols: QuerySet | None) -> dict[tuple, list[int]]:
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for position, (source, person) in enumerate(
        ((issues, "reporter_id"), (patrols, "supervisor_id"))
    ):
        if source is None:
            continue
        rows = (
            source.annotate(r_month=MonthOf("created_at"))
            .values_list("r_month", person)
            .annotate(n=Count("pk"))
            .order_by()
        )
        for month, who, n in rows:
            counts[(_date(month), who)][position] += n
    return dict(counts)


def _date(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def recompute(apps=global_apps) -> Tables:
    """Every rollup computed afresh from the issues and patrols (``apps``: a migration's)."""
    issues = apps.get_model("supervision", "Issue")._base_manager.all()
    patrols = apps.get_model("supervision", "Patrol")._base_manager.all()
    tables = Tables()
    tables.issues.update(_with_grains(issue_counts(issues)))
    tables.durations.update(_with_grains(duration_counts(issues)))
    tables.days.update(day_counts(issues))
    tables.activity.update(activity_counts(issues, patrols))
    return tables


# --- the tables --------------------------------------------------------------------------------

KEYS = {
    "issues": (
        "grain",
        "day",
        "department",
        "contractor",
        "subdistrict",
        "category",
        "status",
        "is_warranty",
    ),
    "durations": ("grain", "day", "department", "contractor", "is_warranty", "kind", "tenths"),
    "days": ("day", "status"),
    "activity": ("month", "person"),
}
MEASURES = {
    "issues": ISSUE_MEASURES,
    "durations": ("count",),
    "days": ("filed",),
    "activity": ("issues", "patrols"),
}
MODELS = {
    "issues": "IssueRollup",
    "durations": "DurationRollup",
    "days": "DayRollup",
    "activity": "ActivityRollup",
}


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _derived(name: str, key: tuple) -> dict:
    """Columns that follow from the key: a day's week."""
    return {"week": _monday(key[0])} if name == "days" else {}


def _model(name: str, apps=global_apps):
    return apps.get_model("supervision", MODELS[name])


def stored() -> Tables:
    """What the tables hold, rows of only zeros left out."""
    tables = Tables()
    for name, table in tables.parts().items():
        keys, measures = KEYS[name], MEASURES[name]
        for row in _model(name).objects.values_list(*keys, *measures):
            if any(row[len(keys) :]):
                table[tuple(row[: len(keys)])] = list(row[len(keys) :])
    return tables


def rebuild(apps=global_apps) -> Tables:
    """Empty the rollups and fill them from the issues and patrols, in one transaction; then
    refresh the query planner's statistics of the tables, whose sizes just changed."""
    quote = connection.ops.quote_name
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Steps meanwhile wait, then add their change to the rebuilt counts (SQLite
            # writers wait for each other anyway).
            names = ", ".join(quote(_model(name, apps)._meta.db_table) for name in MODELS)
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {names} IN EXCLUSIVE MODE")
        tables = recompute(apps)
        with connection.cursor() as cursor:
            for name, table in tables.nonzero().items():
                model = _model(name, apps)
                model.objects.all().delete()
                derived = tuple(_derived(name, next(iter(table)))) if table else ()
                columns = (*KEYS[name], *derived, *MEASURES[name])
                rows = [
                    [_adapt(v) for v in (*key, *_derived(name, key).values())] + m
                    for key, m in table.items()
                ]
                sql = (
                    f"INSERT INTO {quote(model._meta.db_table)} "
                    f"({', '.join(quote(c) for c in columns)}) "
                    f"VALUES ({', '.join(['%s'] * len(columns))})"
                )
                for chunk in range(0, len(rows), 5000):
                    cursor.executemany(sql, rows[chunk : chunk + 5000])
    with connection.cursor() as cursor:
        for name in MODELS:
            cursor.execute(
                f"ANALYZE {connection.ops.quote_name(_model(name, apps)._meta.db_table)}"
            )
    return tables


def _upsert(name: str, table: dict[tuple, list[int]]) -> None:
    """Add each row's measures to the stored row of its key (created at zero if missing)."""
    # In key order, so that concurrent steps lock the rows they share in the same order.
    rows = sorted((key, m) for key, m in table.items() if any(m))
    if not rows:
        return
    model = _model(name)
    keys, measures = KEYS[name], MEASURES[name]
    quote = connection.ops.quote_name
    db_table = quote(model._meta.db_table)
    derived = tuple(_derived(name, rows[0][0]))
    columns = ", ".join(quote(c) for c in (*keys, *derived, *measures))
    one = "(" + ", ".join(["%s"] * (len(keys) + len(derived) + len(measures))) + ")"
    updates = ", ".join(
        f"{quote(m)} = {db_table}.{quote(m)} + excluded.{quote(m)}" for m in measures
    )
    params = []
    for key, m in rows:
        values = (*key, *_derived(name, key).values())
        params += [_adapt(value) for value in values] + list(m)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {db_table} ({columns}) VALUES {', '.join([one] * len(rows))} "
            f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {updates}",
            params,
        )


def _adapt(value):
    return connection.ops.adapt_datefield_value(value) if isinstance(value, date) else value


def apply(delta: Tables) -> None:
    for name, table in delta.parts().items():
        _upsert(name, table)


# --- kept as things change ---------------------------------------------------------------------


def _issue_before(sender, instance, update_fields=None, raw=False, **kwargs) -> None:
    # raw: loaddata (import_data) writes rows as they were, rollups included.
    if raw or (update_fields is not None and not ISSUE_FIELDS.intersection(update_fields)):
        instance._rollup_before = None
        return
    before = Tables()
    if instance.pk is not None:
        for row in _issue_rows(sender._base_manager.filter(pk=instance.pk)):
            _add_issue(before, row)
    instance._rollup_before = before


def _issue_after(sender, instance, **kwargs) -> None:
    before = getattr(instance, "_rollup_before", None)
    if before is None:
        return
    instance._rollup_before = None
    delta = Tables()
    for row in _issue_rows(sender._base_manager.filter(pk=instance.pk)):
        _add_issue(delta, row)
    delta.add(before, -1)
    with transaction.atomic():
        apply(delta)


def _issue_deleted(sender, instance, **kwargs) -> None:
    gone = Tables()
    for row in _issue_rows(sender._base_manager.filter(pk=instance.pk)):
        _add_issue(gone, row)
    delta = Tables()
    delta.add(gone, -1)
    apply(delta)


def _patrol_tables(patrol_model, pk) -> Tables:
    tables = Tables()
    for created, person in patrol_model._base_manager.filter(pk=pk).values_list(
        "created_at", "supervisor_id"
    ):
        tables.activity[(month_of(created), person)][1] += 1
    return tables


def _patrol_before(sender, instance, update_fields=None, raw=False, **kwargs) -> None:
    if raw or (
        update_fields is not None and not {"created_at", "supervisor"}.intersection(update_fields)
    ):
        instance._rollup_before = None
        return
    instance._rollup_before = (
        _patrol_tables(sender, instance.pk) if instance.pk is not None else Tables()
    )


def _patrol_after(sender, instance, **kwargs) -> None:
    before = getattr(instance, "_rollup_before", None)
    if before is None:
        return
    instance._rollup_before = None
    delta = _patrol_tables(sender, instance.pk)
    delta.add(before, -1)
    with transaction.atomic():
        apply(delta)


def _patrol_deleted(sender, instance, **kwargs) -> None:
    delta = Tables()
    delta.add(_patrol_tables(sender, instance.pk), -1)
    apply(delta)


def _place(project_filter: Q) -> list[tuple]:
    from .models import Project  # noqa: PLC0415

    return list(
        Project._base_manager.filter(project_filter).values_list(
            "pk", "contractor_id", "neighbourhood__subdistrict_id"
        )
    )


def _project_before(sender, instance, update_fields=None, raw=False, **kwargs) -> None:
    moved = not raw and (
        update_fields is None or {"contractor", "neighbourhood"}.intersection(update_fields)
    )
    instance._rollup_place = _place(Q(pk=instance.pk)) if instance.pk and moved else []


def _neighbourhood_before(sender, instance, update_fields=None, raw=False, **kwargs) -> None:
    moved = not raw and (update_fields is None or "subdistrict" in update_fields)
    instance._rollup_place = (
        _place(Q(neighbourhood_id=instance.pk)) if instance.pk and moved else []
    )


def _moved(sender, instance, **kwargs) -> None:
    """Projects moved to another contractor or subdistrict: their issues' counts move too."""
    from .models import Issue  # noqa: PLC0415

    before = dict((pk, (c, s)) for pk, c, s in getattr(instance, "_rollup_place", []))
    instance._rollup_place = []
    if not before:
        return
    moved = [pk for pk, c, s in _place(Q(pk__in=list(before))) if before[pk] != (c, s)]
    for pk in moved:
        issues = Issue._base_manager.filter(project_id=pk)
        old_contractor, old_subdistrict = (value or 0 for value in before[pk])
        now, then = Tables(), Tables()
        now.issues.update(_with_grains(issue_counts(issues)))
        now.durations.update(_with_grains(duration_counts(issues)))
        for key, m in now.issues.items():  # (grain, day, department, contractor, subdistrict, …)
            then.issues[(*key[:3], old_contractor, old_subdistrict, *key[5:])] = m
        for key, m in now.durations.items():  # (grain, day, department, contractor, …)
            then.durations[(*key[:3], old_contractor, *key[4:])] = m
        delta = Tables()
        delta.add(now)
        delta.add(then, -1)
        with transaction.atomic():
            apply(delta)


def connect_signals() -> None:
    """Called once by ``SupervisionConfig.ready``."""
    from .models import Issue, Neighbourhood, Patrol, Project  # noqa: PLC0415

    pre_save.connect(_issue_before, sender=Issue, dispatch_uid="rollups_issue_before")
    post_save.connect(_issue_after, sender=Issue, dispatch_uid="rollups_issue_after")
    pre_delete.connect(_issue_deleted, sender=Issue, dispatch_uid="rollups_issue_deleted")
    pre_save.connect(_patrol_before, sender=Patrol, dispatch_uid="rollups_patrol_before")
    post_save.connect(_patrol_after, sender=Patrol, dispatch_uid="rollups_patrol_after")
    pre_delete.connect(_patrol_deleted, sender=Patrol, dispatch_uid="rollups_patrol_deleted")
    pre_save.connect(_project_before, sender=Project, dispatch_uid="rollups_project_before")
    post_save.connect(_moved, sender=Project, dispatch_uid="rollups_project_after")
    pre_save.connect(
        _neighbourhood_before, sender=Neighbourhood, dispatch_uid="rollups_neighbourhood_before"
    )
    post_save.connect(_moved, sender=Neighbourhood, dispatch_uid="rollups_neighbourhood_after")
