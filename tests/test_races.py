"""Integrity under races, on PostgreSQL with 20 threads: exactly one winner per step, no lost
updates of an issue's state, one issue per idempotency token."""

import threading

import pytest
from django.db import connection

from supervision import services
from supervision.models import Issue, IssueEvent

from .factories import make_world

THREADS = 20
pytestmark = pytest.mark.django_db(transaction=True)


def race(work, arguments):
    """Run ``work(argument)`` in one thread per argument, all released at once."""
    barrier = threading.Barrier(len(arguments))
    outcomes, errors = [], []

    def run(argument):
        try:
            barrier.wait()
            outcomes.append(work(argument))
        except services.WorkflowError as refusal:
            outcomes.append(refusal)
        except Exception as error:  # pragma: no cover - reported by the assertion
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(a,)) for a in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return outcomes


def test_twenty_steps_at_once_on_one_issue_have_exactly_one_winner(on_postgres):
    """Signing for, answering, refusing and withdrawing, five of each at once: exactly one of
    them acts on the submitted issue. Answering and refusing are also allowed once the issue
    is signed for, so one of those may then follow the winner; it must act on the state the
    winner left, and every other attempt is refused with nothing changed."""
    world = make_world()
    issue = world.submit()
    steps = [
        lambda: services.accept_issue(Issue.objects.get(pk=issue.pk), actor=world.handler),
        lambda: services.answer_issue(
            Issue.objects.get(pk=issue.pk), actor=world.bureau, text="答复"
        ),
        lambda: services.reject_issue(
            Issue.objects.get(pk=issue.pk), actor=world.handler, text="重复"
        ),
        lambda: services.withdraw_issue(Issue.objects.get(pk=issue.pk), actor=world.alice),
    ]
    outcomes = race(lambda i: steps[i % len(steps)](), list(range(THREADS)))
    winners = [o for o in outcomes if not isinstance(o, services.WorkflowError)]
    assert all(o.status_code == 409 for o in outcomes if isinstance(o, services.WorkflowError))
    changes = list(
        IssueEvent.objects.filter(issue=issue)
        .exclude(kind=IssueEvent.Kind.SUBMITTED)
        .order_by("created_at", "pk")
    )
    assert len(changes) == len(winners)
    assert [c.from_status for c in changes].count(Issue.Status.SUBMITTED) == 1
    for before, after in zip(changes, changes[1:], strict=False):
        assert after.from_status == before.to_status  # each acted on what the last one left
    if len(changes) == 2:
        assert changes[0].kind == IssueEvent.Kind.ACCEPTED
        assert changes[1].kind in (IssueEvent.Kind.ANSWERED, IssueEvent.Kind.REJECTED)
    assert len(changes) in (1, 2)
    issue.refresh_from_db()
    assert issue.status == changes[-1].to_status  # the state is the last winner's, nothing lost


def test_twenty_comments_at_once_are_all_kept(on_postgres):
    world = make_world()
    issue = world.submit()
    outcomes = race(
        lambda i: services.comment_on_issue(
            Issue.objects.get(pk=issue.pk), actor=world.alice, text=f"补充 {i}"
        ),
        list(range(THREADS)),
    )
    assert len(outcomes) == THREADS
    assert IssueEvent.objects.filter(issue=issue, kind=IssueEvent.Kind.COMMENTED).count() == THREADS


def test_one_token_twenty_taps_one_issue(on_postgres):
    world = make_world()
    outcomes = race(lambda _: world.submit(idempotency_key="tap-tap-tap").pk, list(range(THREADS)))
    assert len(set(outcomes)) == 1
    assert Issue.objects.filter(idempotency_key="tap-tap-tap").count() == 1
    assert IssueEvent.objects.filter(kind=IssueEvent.Kind.SUBMITTED).count() == 1


def test_twenty_submits_get_twenty_distinct_references(on_postgres):
    world = make_world()
    race(lambda i: world.submit(title=f"问题 {i}"), list(range(THREADS)))
    sequences = sorted(Issue.objects.values_list("sequence", flat=True))
    assert sequences == list(range(1, THREADS + 1))
