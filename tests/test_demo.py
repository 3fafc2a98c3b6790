"""The demo world people meet with `make run`."""

from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from supervision import acceptance, demo, residents, services, surveys, warranty
from supervision.models import (
    Acceptance,
    Consultation,
    Department,
    ExtensionRequest,
    Issue,
    IssueEvent,
    Patrol,
    Photo,
    Project,
    ReturnVisit,
    ScopeItem,
    Supervisor,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(settings):
    settings.DEMO_DATA_ALLOWED = True
    demo.load()


def counts():
    return {
        model.__name__: model.objects.count()
        for model in (User, Project, ScopeItem, Supervisor, Issue, IssueEvent, Photo)
    }


def test_demo_loads_twice_without_duplicates(loaded):
    before = counts()
    demo.load()
    assert counts() == before


def test_demo_has_the_2023_batch(loaded):
    batch = Project.objects.filter(year=2023)
    assert batch.count() == 29
    assert batch.filter(to_complete_this_year=True).count() == 25
    assert batch.filter(neighbourhood__name="兴业大厦").exists()
    subdistricts = set(batch.values_list("neighbourhood__subdistrict__name", flat=True))
    assert subdistricts == {"安阳街道", "玉海街道", "锦湖街道"}


def test_demo_accounts_log_in(loaded, client):
    for username in [
        "jiandu01",
        "jiandu25",
        "zhujianju",
        "anyang",
        "yuhai",
        "jinhu",
        "shigong01",
        "admin",
        "yueqing",
        "lecheng",
        "huayu01",
        "yqjiandu01",
        "shengting",
        "wenzhou",
    ]:
        assert client.login(username=username, password="renovate-2023"), username
        client.logout()
    ruian = Supervisor.objects.filter(is_active=True, user__region__code="330381")
    assert ruian.count() == 25


def test_demo_has_a_second_county_with_its_own_bureau_and_an_overdue_issue(loaded, client):
    """乐清 beside 瑞安: its own bureau, its issues routed to its own offices, one past its
    sign-for limit; Ruian's bureau gets 404 on it; the province sees it and may press on it."""
    yueqing = Issue.objects.filter(project__neighbourhood__subdistrict__region__code="330382")
    assert yueqing.count() == 3
    assert set(yueqing.values_list("department__region__code", flat=True)) == {"330382"}
    overdue = yueqing.overdue().get()
    client.login(username="zhujianju", password="renovate-2023")
    assert client.get(f"/issues/{overdue.pk}/").status_code == 404
    client.logout()
    client.login(username="shengting", password="renovate-2023")
    page = client.get(f"/issues/{overdue.pk}/")
    assert page.status_code == 200
    assert 'name="deadline"' in page.content.decode()  # the 上级督办 form
    figures = client.get("/dashboard/?preset=all")
    assert {row["county"] for row in figures.context["counties"]} == {"瑞安市", "乐清市"}


def test_demo_issues_cover_every_state_with_events_and_photos(loaded):
    assert set(Issue.objects.values_list("status", flat=True)) == set(Issue.Status.values)
    for issue in Issue.objects.all():
        assert issue.events.exists()
    assert Photo.objects.filter(kind=Photo.Kind.BEFORE).exists()
    assert Photo.objects.filter(kind=Photo.Kind.AFTER).exists()


def test_demo_refuses_in_production(settings):
    settings.DEMO_DATA_ALLOWED = False
    with pytest.raises(CommandError, match="开发模式"):
        call_command("load_demo")
    assert not Project.objects.exists()


# --- one story, dated from today (issue 18) ----------------------------------------------------


def this_years_batch():
    return Project.objects.exclude(year=2023)


def test_the_2023_batch_finished_in_2023_and_2024_close_to_plan(loaded):
    batch = Project.objects.filter(year=2023)
    assert set(batch.values_list("status", flat=True)) == {Project.Status.ACCEPTED}
    for project in batch:
        assert project.actual_end.year == (2023 if project.to_complete_this_year else 2024)
        assert project.acceptance_actual.year in (2023, 2024)
        for milestone in project.milestones():
            assert milestone.actual is not None, (project, milestone.label)
            assert abs((milestone.actual - milestone.planned).days) <= 14, (project, milestone)
        assert all(item.progress == 100 for item in project.scope_items.all())


def test_the_2023_issues_were_filed_and_finished_then(loaded):
    # Those filed while the works ran; the few after them are the after-works story below.
    old = Issue.objects.filter(project__year=2023, created_at__date__lte=F("project__actual_end"))
    assert old.count() >= 20
    for issue in old:
        assert issue.status in Issue.FINAL_STATUSES, issue
        filed = timezone.localtime(issue.created_at)
        assert filed.year in (2023, 2024)
        assert issue.project.actual_start <= filed.date() <= issue.project.actual_end
        events = list(issue.events.all())
        assert events[0].kind == IssueEvent.Kind.SUBMITTED
        assert events[0].created_at == issue.created_at
        assert all(e.created_at.year in (2023, 2024) for e in events), issue
        assert issue.closed_at == max(e.created_at for e in events if e.is_status_change)
        assert (issue.due_at, issue.verify_remind_at, issue.verify_due_at) == (None, None, None)
    kinds = set(IssueEvent.objects.filter(issue__in=old).values_list("kind", flat=True))
    assert {"escalated", "extension_requested", "extension_granted", "verify_expired"} <= kinds


def test_this_years_batch_is_under_way_with_this_weeks_issues(loaded):
    now = timezone.now()
    year = timezone.localdate().year if timezone.localdate().month > 5 else None
    batch = this_years_batch()
    assert batch.exists() and set(batch.values_list("year", flat=True)) != {2023}
    if year:
        assert set(batch.values_list("year", flat=True)) == {year}
    assert batch.filter(status=Project.Status.CONSTRUCTION).count() >= 5
    assert batch.filter(status=Project.Status.CONSULTING).exists()
    # Every issue still open is on this year's projects, and this week has some of them.
    assert not Issue.objects.open().filter(project__year=2023).exists()
    this_week = Issue.objects.filter(created_at__gte=now - timedelta(days=7), project__in=batch)
    assert this_week.count() >= 10
    assert this_week.filter(urgency="urgent", category="safety").count() >= 2
    assert Issue.objects.open().overdue(now).exists()
    for status in Issue.Status.values:
        assert Issue.objects.filter(project__in=batch, status=status).exists(), status
    assert not IssueEvent.objects.filter(created_at__gt=now).exists()


def test_filing_time_is_the_issues_created_at_and_every_event_follows_it(loaded):
    for issue in Issue.objects.prefetch_related("events"):
        times = [e.created_at for e in issue.events.all()]
        assert times[0] == issue.created_at
        assert times == sorted(times)


def test_the_first_sweep_after_loading_finds_nothing_to_do(loaded):
    assert services.escalate_overdue() == []
    assert services.sweep_unverified() == ([], [])
    # Each overdue issue was escalated once, by the sweep that ran when its limit passed.
    for issue in Issue.objects.open().overdue(timezone.now()):
        assert issue.escalated_at >= issue.due_at


def test_patrols_extensions_escalations_and_an_appeal_on_plausible_dates(loaded):
    now = timezone.now()
    patrols = Patrol.objects.all()
    assert patrols.filter(project__year=2023).exists()
    assert patrols.filter(created_at__gte=now - timedelta(days=21)).exclude(project__year=2023)
    assert not patrols.filter(created_at__gt=now).exists()
    for patrol in patrols.filter(project__year=2023):
        assert patrol.project.actual_start <= timezone.localdate(patrol.created_at)
    assert Issue.objects.filter(title="巡查发现：扬尘", patrol_check__isnull=False).exists()
    for request in ExtensionRequest.objects.all():
        asked = request.issue.events.get(
            kind=IssueEvent.Kind.EXTENSION_REQUESTED, text=request.reason
        )
        assert abs((asked.created_at - request.created_at).total_seconds()) < 1
    assert ExtensionRequest.objects.filter(status="pending").exists()
    assert ExtensionRequest.objects.filter(status="granted").exists()
    escalations = IssueEvent.objects.filter(kind=IssueEvent.Kind.ESCALATED)
    assert escalations.filter(actor__isnull=True).exists()  # the sweep's
    assert escalations.filter(actor__username="zhujianju").exists()  # the bureau's own
    appealed = Issue.objects.get(events__kind=IssueEvent.Kind.APPEALED)
    assert appealed.department.kind == "bureau" and appealed.status == Issue.Status.IN_PROGRESS


def test_one_consultation_is_open_and_one_was_adopted_both_on_their_project_pages(loaded, client):
    today = timezone.localdate()
    live = Consultation.objects.get(opens_on__lte=today, closes_on__gte=today)
    result = residents.results(live)
    assert result.households == live.project.neighbourhood.households > 0
    assert 0 < result.ballots < result.households and result.paper_ballots > 0
    assert all(item.verdict == "pending" for item in result.items)

    adopted = Consultation.objects.get(closes_on__lt=today, applied_at__isnull=False)
    outcome = residents.results(adopted)
    scope = {
        residents._scope_text(r) for r in outcome.items if r.adopted and r.item.kind == "scope"
    }
    assert scope and set(adopted.project.scope_items.values_list("description", flat=True)) == scope
    assert {r.verdict for r in outcome.items} == {"adopted", "rejected"}
    assert adopted.closes_on < adopted.project.actual_start

    page = client.get(live.project.get_absolute_url()).content.decode()
    assert live.get_absolute_url() in page and "投票进行中" in page
    assert f"已投票 {result.ballots} / {result.households} 户" in page
    page = client.get(adopted.project.get_absolute_url()).content.decode()
    assert adopted.get_absolute_url() in page and "结果已纳入改造内容" in page


def test_the_demo_loads_on_any_day(settings):
    """A day of another season and year: every date still follows from it."""
    settings.DEMO_DATA_ALLOWED = True
    moment = timezone.make_aware(datetime(2027, 3, 8, 6, 15))  # a Monday, before the day starts
    with mock.patch("django.utils.timezone.now", return_value=moment):
        demo.load(now=moment)
        assert not IssueEvent.objects.filter(created_at__gt=moment).exists()
        assert services.escalate_overdue(now=moment) == []
        assert Consultation.objects.filter(
            opens_on__lte=moment.date(), closes_on__gte=moment.date()
        ).exists()


# --- after the works (issue 19) -----------------------------------------------------------------


def test_a_2023_project_passed_acceptance_with_residents_was_surveyed_and_repaired(loaded, client):
    project = Project.objects.get(year=2023, neighbourhood__name=demo.PASSED)
    record = project.acceptances.get()
    assert record.status == Acceptance.Status.PASSED
    assert record.held_on == project.acceptance_actual and project.status == "accepted"
    count = acceptance.tally(record)
    assert count.passes and count.pending == 0 and count.supervisors >= 1
    assert (count.representatives, count.agree, count.reservations) == (5, 4, 1)
    assert record.views.filter(role="representative", entered_by__isnull=False).exists()
    page = client.get(f"/projects/{project.pk}/acceptance/")
    assert page.status_code == 200 and "验收通过" in page.content.decode()

    survey = project.surveys.get()
    assert survey.is_closed() and survey.opens_on > record.held_on
    result = surveys.results(survey)
    assert 10 <= result.answers <= 20 and result.paper == 2

    repair = project.issues.get(is_warranty=True)
    assert repair.status == Issue.Status.CLOSED
    assert repair.department == project.contractor
    assert repair.created_at.date() > project.acceptance_actual
    rectified = repair.events.get(kind=IssueEvent.Kind.RECTIFIED)
    assert rectified.actor.department == project.contractor


def test_a_2023_project_failed_its_first_acceptance_over_a_leftover_then_passed(loaded, client):
    project = Project.objects.get(year=2023, neighbourhood__name=demo.FAILED_FIRST)
    first, second = project.acceptances.order_by("held_on")
    assert first.status == Acceptance.Status.FAILED and "未达到" in first.outcome
    assert second.status == Acceptance.Status.PASSED
    assert second.held_on == project.acceptance_actual > first.held_on
    leftover = first.views.get(issue__isnull=False).issue
    assert leftover.title.startswith("验收遗留：") and leftover.status == Issue.Status.CLOSED
    assert leftover.closed_at.date() < second.held_on
    page = client.get(f"/projects/{project.pk}/acceptance/").content.decode()
    assert "第 1 次" in page and "第 2 次" in page and first.get_absolute_url() in page
    assert leftover.reference in client.get(first.get_absolute_url()).content.decode()


def test_a_2023_project_is_managed_by_its_property_manager_who_took_an_upkeep_issue(loaded):
    project = Project.objects.get(year=2023, neighbourhood__name=demo.MANAGED)
    manager = Department.objects.get(kind=Department.Kind.PROPERTY_MANAGER)
    assert project.manager == manager and project.manager_kind == "property_manager"
    assert project.handed_over_on >= project.acceptance_actual
    stages = {s.key: s for s in acceptance.life_stages(project)}
    assert stages["management"].current and manager.name in stages["management"].note
    upkeep = project.issues.get(department=manager)
    assert not upkeep.is_warranty and upkeep.status == Issue.Status.CLOSED
    assert upkeep.created_at.date() > project.handed_over_on
    assert upkeep.events.get(kind=IssueEvent.Kind.ACCEPTED).actor.department == manager


def test_after_loading_the_first_sweep_books_no_flood_of_return_visits(loaded):
    warranty.schedule_return_visits()
    assert ReturnVisit.objects.count() <= 3
    assert not warranty.missed_visits().exists()


def test_nothing_in_the_demo_happens_after_it_is_loaded_even_just_after_seven_thirty(settings):
    """Loaded at 07:37, the morning's steps (a 附议 minutes after a filing) are all in the past."""
    settings.DEMO_DATA_ALLOWED = True
    moment = timezone.make_aware(datetime(2026, 12, 5, 7, 37))
    with mock.patch("django.utils.timezone.now", return_value=moment):
        demo.load(now=moment)
    assert not IssueEvent.objects.filter(created_at__gt=moment).exists()
    assert not Issue.objects.filter(created_at__gt=moment).exists()
