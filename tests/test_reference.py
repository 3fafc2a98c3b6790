"""Reference numbers people quote on the phone: 2023-00042, sequential per year."""

import threading
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from supervision import services
from supervision.models import Issue, IssueEvent

from .factories import make_world


def test_references_are_sequential_and_formatted(world):
    first, second = world.submit(), world.submit()
    year = timezone.localdate().year
    assert first.reference == f"{year}-00001"
    assert second.reference == f"{year}-00002"


def test_sequence_restarts_each_year(world):
    with mock.patch(
        "django.utils.timezone.now", return_value=timezone.make_aware(datetime(2023, 12, 31, 23, 0))
    ):
        last_of_2023 = world.submit()
    with mock.patch(
        "django.utils.timezone.now", return_value=timezone.make_aware(datetime(2024, 1, 1, 8, 0))
    ):
        first_of_2024 = world.submit()
    assert last_of_2023.reference == "2023-00001"
    assert first_of_2024.reference == "2024-00001"


def test_year_follows_shanghai_time_not_utc(world):
    # 2023-12-31 17:00 UTC is already 2024-01-01 01:00 in Shanghai.
    moment = datetime(2023, 12, 31, 17, 0, tzinfo=UTC)
    with mock.patch("django.utils.timezone.now", return_value=moment):
        issue = world.submit()
    assert issue.reference.startswith("2024-")


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_get_distinct_sequential_numbers(on_postgres):
    world = make_world()
    errors = []

    def submit():
        try:
            world.submit()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    sequences = sorted(Issue.objects.values_list("sequence", flat=True))
    assert sequences == list(range(1, 9))


@pytest.mark.django_db(transaction=True)
def test_two_people_accepting_at_once_exactly_one_wins(on_postgres):
    world = make_world()
    issue = world.submit()
    barrier = threading.Barrier(2)
    outcomes = []

    def accept(actor):
        try:
            barrier.wait()
            services.accept_issue(Issue.objects.get(pk=issue.pk), actor=actor)
            outcomes.append("ok")
        except services.WorkflowError as error:
            outcomes.append(error.message)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=accept, args=(user,)) for user in (world.handler, world.bureau)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=lambda o: o != "ok")[0] == "ok"
    assert outcomes.count("ok") == 1
    refusal = next(o for o in outcomes if o != "ok")
    assert "已签收" in refusal
    assert IssueEvent.objects.filter(issue=issue, kind=IssueEvent.Kind.ACCEPTED).count() == 1
