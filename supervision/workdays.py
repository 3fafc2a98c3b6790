"""Working days on China's official calendar, 调休 included.

The State Council publishes each year's holidays and make-up working days in December;
``chinesecalendar`` carries them. For a year it does not know yet we fall back to
Monday–Friday, which is what a department would assume too.
"""

from datetime import date, datetime, time, timedelta

import chinese_calendar
from django.conf import settings
from django.utils import timezone


def is_working_day(day: date) -> bool:
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return day.weekday() < 5


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
