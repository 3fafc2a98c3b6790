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
