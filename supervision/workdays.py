"""Working days on China's official calendar, 调休 included, plus local changes.

The State Council publishes each year's holidays and make-up working days; the ``holidays``
package carries them (``holidays.China``: rest days, and weekend days that are working days).
``CalendarChange`` rows, kept by the bureau in the panel, override it for one day: a typhoon day
off, or next year's schedule before the package has it.
"""

from __future__ import annotations

import threading
import time as clock
from datetime import date, datetime, time, timedelta

import holidays
from django.conf import settings
from django.utils import timezone

from .models import CalendarChange

_CHINA = holidays.country_holidays("CN")
_lock = threading.Lock()
_changes: dict[date, bool] | None = None
_loaded_at = 0.0
# Other processes see a change in the panel within this many seconds.
CHANGES_TTL = 60.0


def _local_changes() -> dict[date, bool]:
    global _changes, _loaded_at
    with _lock:
        if _changes is None or clock.monotonic() - _loaded_at > CHANGES_TTL:
            _changes = dict(CalendarChange.objects.values_list("day", "is_working_day"))
            _loaded_at = clock.monotonic()
        return _changes


def forget_local_changes(**signal_kwargs) -> None:
    """Connected to ``CalendarChange``'s save and delete signals (``SupervisionConfig.ready``), so
    that the panel's bulk delete forgets the changes too."""
    global _changes
    with _lock:
        _changes = None


def is_working_day(day: date) -> bool:
    changed = _local_changes().get(day)
    if changed is not None:
        return changed
    return _CHINA.is_working_day(day)


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself never counts)."""
    day = start
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return day


def end_of_working_day(day: date) -> datetime:
    hours, minutes = (int(part) for part in settings.SUPERVISION["WORKDAY_ENDS_AT"].split(":"))
    return timezone.make_aware(datetime.combine(day, time(hours, minutes)))


def working_days_deadline(start: datetime, days: int) -> datetime:
    """End of the working day ``days`` working days after ``start``.

    Filed on Friday afternoon with one working day to sign for: Monday 17:30 (or the Monday
    after a holiday, or the Sunday that is a make-up working day).
    """
    local = timezone.localtime(start)
    return end_of_working_day(add_working_days(local.date(), days))


def working_days_elapsed(since: datetime, now: datetime) -> int:
    """Whole working days that went by after ``since``: the working days strictly between the
    two dates, and today once its working day has ended. A deadline at Friday 17:30 is 0 working
    days late on Monday morning, 1 on Monday evening; 28 minutes past midnight is 0."""
    start, end = timezone.localtime(since), timezone.localtime(now)
    if end.date() <= start.date():
        return 0
    days = _working_days_in(start.date() + timedelta(days=1), end.date() - timedelta(days=1))
    if is_working_day(end.date()) and end >= end_of_working_day(end.date()):
        days += 1
    return days


# Per year, how many working days there are up to each day of it: counting the working days
# between two dates is then a subtraction, however long ago the first one was (a queue of issues
# years overdue reads 50 of them a page). Rebuilt whenever the local changes are reloaded.
_counts: dict[int, list[int]] = {}
_counts_of: dict | None = None


def _counts_by_day(year: int) -> list[int]:
    global _counts, _counts_of
    changes = _local_changes()
    with _lock:
        if changes is not _counts_of:
            _counts, _counts_of = {}, changes
        counts = _counts.get(year)
    if counts is None:
        counts, total, day = [], 0, date(year, 1, 1)
        while day.year == year:
            total += is_working_day(day)
            counts.append(total)
            day += timedelta(days=1)
        with _lock:
            _counts[year] = counts
    return counts


def _working_days_in(first: date, last: date) -> int:
    """Working days from ``first`` to ``last``, both included."""
    total = 0
    for year in range(first.year, last.year + 1):
        counts = _counts_by_day(year)
        upto = counts[(last - date(year, 1, 1)).days] if year == last.year else counts[-1]
        before = counts[(first - date(year, 1, 1)).days - 1] if year == first.year else 0
        if year == first.year and first == date(year, 1, 1):
            before = 0
        total += upto - before
    return max(total, 0)
