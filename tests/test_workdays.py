"""Time limits count working days on the official calendar, 调休 included."""

from datetime import date, datetime

import pytest
from django.utils import timezone

from supervision.models import CalendarChange
from supervision.workdays import add_working_days, is_working_day, working_days_deadline

pytestmark = pytest.mark.django_db


def at(*args):
    return timezone.make_aware(datetime(*args))


def test_friday_plus_one_working_day_is_monday_end_of_day():
    due = timezone.localtime(working_days_deadline(at(2023, 6, 9, 15, 0), 1))  # a Friday
    assert (due.date(), due.hour, due.minute) == (date(2023, 6, 12), 17, 30)


def test_national_day_holiday_is_skipped():
    # 2023: 中秋 + 国庆 holiday 29 Sep – 6 Oct; Saturday 7 Oct is a make-up working day.
    assert add_working_days(date(2023, 9, 28), 1) == date(2023, 10, 7)


def test_make_up_sunday_counts_as_working_day():
    assert is_working_day(date(2023, 10, 8))  # Sunday, 调休 working day
    assert not is_working_day(date(2023, 10, 2))  # Monday in the holiday


def test_seven_working_days_over_a_weekend():
    assert add_working_days(date(2023, 6, 5), 7) == date(2023, 6, 14)


def test_year_beyond_the_published_calendar_falls_back_to_weekdays():
    assert is_working_day(date(2099, 3, 2))  # a Monday
    assert not is_working_day(date(2099, 3, 1))  # a Sunday


def test_national_day_2026_and_its_make_up_saturday():
    # 2026: 1–7 Oct off; Sunday 20 Sep and Saturday 10 Oct are make-up working days.
    assert add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert is_working_day(date(2026, 10, 10))
    assert is_working_day(date(2026, 9, 20))
    due = timezone.localtime(working_days_deadline(at(2026, 10, 9, 16, 0), 1))
    assert due.date() == date(2026, 10, 10)  # the 调休 Saturday counts


def test_a_local_day_off_moves_deadlines():
    monday = date(2026, 12, 7)
    assert add_working_days(date(2026, 12, 4), 1) == monday
    CalendarChange.objects.create(day=monday, is_working_day=False, note="台风停工")
    assert not is_working_day(monday)
    assert add_working_days(date(2026, 12, 4), 1) == date(2026, 12, 8)


def test_a_local_working_day_counts():
    saturday = date(2027, 1, 9)
    assert not is_working_day(saturday)
    CalendarChange.objects.create(day=saturday, is_working_day=True, note="明年调休，先行录入")
    assert is_working_day(saturday)


def test_a_bulk_delete_of_calendar_changes_takes_effect_at_once(db):
    """The panel's 「删除所选」 deletes through the queryset, without each row's ``delete()``: the
    cached calendar is forgotten through the model's signals all the same."""
    sunday = date(2030, 6, 2)
    assert not is_working_day(sunday)
    CalendarChange.objects.create(day=sunday, is_working_day=True, note="调休上班")
    assert is_working_day(sunday)

    CalendarChange.objects.filter(day=sunday).delete()

    assert not is_working_day(sunday)
