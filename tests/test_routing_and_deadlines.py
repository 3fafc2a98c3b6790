"""Where a new issue goes, when it must be signed for, what happens when it is late, and the
daily digest. Time is fixed by patching ``django.utils.timezone.now``, as ``supervision/demo.py``
does."""

from __future__ import annotations

import io
import re
from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from supervision import services
from supervision.models import CalendarChange, Issue, IssueEvent, Notification, RoutingRule
from supervision.services import WorkflowError, route_department
from supervision.stats import headline, missed_a_limit
from supervision.workdays import end_of_working_day

from .factories import make_department, make_user

S = Issue.Status
Kind = IssueEvent.Kind


# --- helpers -----------------------------------------------------------------------------------


def at(*args) -> datetime:
    """A moment in Beijing time."""
    return timezone.make_aware(datetime(*args))


@contextmanager
def clock(moment: datetime):
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def local(moment: datetime) -> tuple:
    moment = timezone.localtime(moment)
    return moment.date().isoformat(), moment.strftime("%H:%M")


def events_of(issue: Issue) -> list[str]:
    return list(issue.events.order_by("created_at", "pk").values_list("kind", flat=True))


def notified(event: IssueEvent) -> set[str]:
    return set(
        Notification.objects.filter(event=event).values_list("recipient__username", flat=True)
    )


def page_of(response) -> str:
    return response.content.decode()


def refusal(page: str) -> str:
    match = re.search(r"<div [^>]*data-refusal>(.*?)</div>", page, re.S)
    return match.group(1) if match else ""


def escalate_overdue_command() -> str:
    out = io.StringIO()
    call_command("escalate_overdue", stdout=out)
    return out.getvalue()


def make_overdue(issue: Issue) -> None:
    """Move the issue's clock back so that the deadline it runs against has passed."""
    past = timezone.now() - timedelta(hours=1)
    if issue.status == S.SUBMITTED:
        Issue.objects.filter(pk=issue.pk).update(sign_for_due_at=past)
    else:
        Issue.objects.filter(pk=issue.pk).update(
            created_at=past - timedelta(days=20), rectify_due_at=past
        )
    issue.refresh_from_db()


# --- routing -----------------------------------------------------------------------------------


def test_without_rules_a_new_issue_goes_to_the_subdistrict_office(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        anyang = world.submit()
        yuhai = world.submit(reporter=world.bob, project=world.other_project)

    assert anyang.department == world.office
    assert yuhai.department == world.other_office
    submitted = anyang.events.get()
    assert (submitted.kind, submitted.department) == (Kind.SUBMITTED, world.office)
    assert notified(submitted) == {"anyang"}


def test_most_specific_routing_rule_wins(world):
    utility = make_department("自来水公司", "utility")
    engineer = make_department("监理公司", "supervising_engineer")
    RoutingRule.objects.create(subdistrict=None, category="quality", department=utility)
    assert route_department(world.project, "quality") == utility
    assert route_department(world.project, "safety") == world.office  # no rule for safety

    RoutingRule.objects.create(subdistrict=world.anyang, category="", department=engineer)
    assert route_department(world.project, "quality") == engineer  # subdistrict beats category
    assert route_department(world.project, "safety") == engineer

    RoutingRule.objects.create(
        subdistrict=world.anyang, category="quality", department=world.bureau_dept
    )
    assert route_department(world.project, "quality") == world.bureau_dept
    assert route_department(world.project, "safety") == engineer
    # the 玉海 project follows only the any-subdistrict rule
    assert route_department(world.other_project, "quality") == utility
    assert route_department(world.other_project, "safety") == world.other_office

    assert world.submit(category="quality").department == world.bureau_dept


def test_rule_to_an_inactive_department_is_ignored(world):
    closed = make_department("已撤销的指挥部", "utility")
    closed.is_active = False
    closed.save()
    RoutingRule.objects.create(subdistrict=world.anyang, category="quality", department=closed)

    assert route_department(world.project, "quality") == world.office
    assert world.submit(category="quality").department == world.office


def test_without_an_active_office_the_issue_goes_to_the_bureau(world):
    world.office.is_active = False
    world.office.save()

    assert world.submit().department == world.bureau_dept


# --- deadlines ---------------------------------------------------------------------------------


def test_filed_the_day_before_national_day_is_signed_for_after_the_holiday(world):
    with clock(at(2026, 9, 30, 15, 0)):  # a Wednesday
        issue = world.submit()

    assert local(issue.sign_for_due_at) == ("2026-10-08", "17:30")
    assert local(issue.reply_due_at) == ("2026-10-10", "17:30")  # 8th, 9th, Saturday 10th
    assert issue.events.get().deadline == issue.sign_for_due_at


def test_filed_on_friday_before_a_make_up_saturday_is_due_on_saturday(world):
    with clock(at(2026, 10, 9, 16, 45)):  # Friday; Saturday the 10th is a 调休 working day
        issue = world.submit()

    assert local(issue.sign_for_due_at) == ("2026-10-10", "17:30")


def test_typhoon_day_off_moves_the_deadline(world):
    with clock(at(2026, 9, 28, 9, 0)):  # Monday
        before = world.submit()
    CalendarChange.objects.create(day=at(2026, 9, 29).date(), is_working_day=False, note="台风")
    with clock(at(2026, 9, 28, 9, 5)):
        after = world.submit()

    assert local(before.sign_for_due_at) == ("2026-09-29", "17:30")
    assert local(after.sign_for_due_at) == ("2026-09-30", "17:30")


def test_local_make_up_day_counts_as_a_working_day(world):
    CalendarChange.objects.create(day=at(2026, 9, 26).date(), is_working_day=True, note="补班")
    with clock(at(2026, 9, 25, 10, 0)):  # Friday; Saturday made a working day locally
        issue = world.submit()

    assert local(issue.sign_for_due_at) == ("2026-09-26", "17:30")


def test_urgent_issue_must_be_signed_for_within_two_hours(world):
    moment = at(2026, 10, 1, 22, 15)  # even on a holiday night
    with clock(moment):
        issue = world.submit(urgency=Issue.Urgency.URGENT)

    assert issue.sign_for_due_at == moment + timedelta(hours=2)


def test_accepting_gives_seven_working_days_by_default(world):
    with clock(at(2026, 9, 30, 15, 0)):
        issue = services.accept_issue(world.submit(), actor=world.handler)

    assert local(issue.rectify_due_at) == ("2026-10-15", "17:30")  # 8, 9, Sat 10, 12, 13, 14, 15
    assert issue.events.get(kind=Kind.ACCEPTED).deadline == issue.rectify_due_at


# --- escalation --------------------------------------------------------------------------------


def test_escalate_overdue_escalates_each_overdue_issue_once(
    world, django_capture_on_commit_callbacks
):
    late_sign_for = world.submit(title="没人签收")
    late_fix = world.issue_in(S.ACCEPTED, title="迟迟不整改")
    on_time = world.submit(title="还来得及")
    make_overdue(late_sign_for)
    make_overdue(late_fix)

    with django_capture_on_commit_callbacks(execute=True):
        first = escalate_overdue_command()
        second = escalate_overdue_command()

    assert "已提请督办 2 个超期问题。" in first
    assert late_sign_for.reference in first and late_fix.reference in first
    assert "已提请督办 0 个超期问题。" in second
    for issue in (late_sign_for, late_fix):
        issue.refresh_from_db()
        assert issue.escalated_at is not None
        assert events_of(issue).count(Kind.ESCALATED) == 1
        event = issue.events.get(kind=Kind.ESCALATED)
        assert event.actor is None
        assert event.from_status == event.to_status == issue.status
        assert "zhujianju" in notified(event)  # the bureau hears of it
        assert {"alice", "anyang"} <= notified(event)
    on_time.refresh_from_db()
    assert on_time.escalated_at is None
    assert Kind.ESCALATED not in events_of(on_time)


def test_issue_overdue_again_after_a_granted_extension_is_escalated_again(world):
    issue = world.issue_in(S.ACCEPTED)
    make_overdue(issue)
    escalate_overdue_command()
    until = timezone.localdate() + timedelta(days=10)
    extension = services.request_extension(issue, actor=world.handler, until=until, text="下雨")
    services.decide_extension(extension, actor=world.bureau, grant=True)
    issue.refresh_from_db()
    assert issue.escalated_at is None
    assert issue.rectify_due_at == end_of_working_day(until)

    assert "已提请督办 0 个" in escalate_overdue_command()  # within the new deadline
    with clock(issue.rectify_due_at + timedelta(minutes=1)):
        again = escalate_overdue_command()
        once_more = escalate_overdue_command()

    assert "已提请督办 1 个" in again and issue.reference in again
    assert "已提请督办 0 个" in once_more
    assert events_of(issue).count(Kind.ESCALATED) == 2


def test_issue_escalated_while_waiting_is_escalated_again_when_late_to_rectify(world):
    issue = world.submit()
    make_overdue(issue)
    escalate_overdue_command()
    issue = services.accept_issue(issue, actor=world.handler)

    with clock(issue.rectify_due_at + timedelta(minutes=1)):
        output = escalate_overdue_command()

    assert "已提请督办 1 个" in output
    assert events_of(issue).count(Kind.ESCALATED) == 2


# --- appeal ------------------------------------------------------------------------------------


def test_reporter_appeals_a_rejection_to_the_bureau(
    world, client, django_capture_on_commit_callbacks
):
    issue = world.issue_in(S.REJECTED)
    client.force_login(world.alice)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/issues/{issue.pk}/appeal/", {"reason": "不是重复问题"})

    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == S.SUBMITTED
    assert issue.department == world.bureau_dept
    assert issue.closed_at is None
    assert issue.sign_for_due_at > timezone.now()
    assert events_of(issue) == [Kind.SUBMITTED, Kind.REJECTED, Kind.APPEALED]
    event = issue.events.get(kind=Kind.APPEALED)
    assert (event.actor, event.text, event.department) == (
        world.alice,
        "不是重复问题",
        world.bureau_dept,
    )
    assert (event.from_status, event.to_status) == (S.REJECTED, S.SUBMITTED)
    assert event.deadline == issue.sign_for_due_at
    assert notified(event) == {"zhujianju"}


def test_another_supervisor_cannot_appeal(world, client):
    issue = world.issue_in(S.REJECTED)

    with pytest.raises(WorkflowError) as refused:
        services.appeal_issue(issue, actor=world.bob, text="我也觉得不对")
    assert refused.value.status_code == 403
    client.force_login(world.bob)
    response = client.post(f"/issues/{issue.pk}/appeal/", {"reason": "我也觉得不对"})
    assert response.status_code == 403
    assert "只有反映人本人可以申诉" in refusal(page_of(response))

    issue.refresh_from_db()
    assert (issue.status, issue.department) == (S.REJECTED, world.office)
    assert events_of(issue) == [Kind.SUBMITTED, Kind.REJECTED]


def test_only_a_rejected_issue_can_be_appealed(world):
    issue = world.issue_in(S.ACCEPTED)

    with pytest.raises(WorkflowError) as refused:
        services.appeal_issue(issue, actor=world.alice, text="申诉")

    assert refused.value.status_code == 409
    assert "不能申诉" in refused.value.message
    assert events_of(issue) == [Kind.SUBMITTED, Kind.ACCEPTED]


# --- two handlers, one issue -------------------------------------------------------------------


def test_second_handler_is_told_who_signed_for_it_first(world):
    colleague = make_user("anyang2", role="staff", department=world.office)
    with clock(at(2026, 10, 8, 10, 42)):
        issue = world.submit()
        stale = Issue.objects.get(pk=issue.pk)  # what the colleague's page still shows
        services.accept_issue(issue, actor=world.handler)
        with pytest.raises(WorkflowError) as refused:
            services.accept_issue(stale, actor=colleague)

    assert refused.value.status_code == 409
    assert refused.value.message == (
        "该问题当前状态为「已签收」，不能签收。该事项已由安阳街道办事处于 10:42 签收。"
    )
    assert events_of(issue) == [Kind.SUBMITTED, Kind.ACCEPTED]
    assert issue.events.get(kind=Kind.ACCEPTED).actor == world.handler


def test_second_handler_sees_who_signed_for_it_on_the_page(world, client):
    colleague = make_user("anyang2", role="staff", department=world.office)
    issue = world.submit()
    services.accept_issue(issue, actor=world.handler)
    client.force_login(colleague)

    response = client.post(f"/issues/{issue.pk}/accept/", {})

    assert response.status_code == 409
    message = refusal(page_of(response))
    assert re.search(r"该事项已由安阳街道办事处于 \d\d:\d\d 签收。", message), message
    assert events_of(issue) == [Kind.SUBMITTED, Kind.ACCEPTED]


# --- the daily digest --------------------------------------------------------------------------


@pytest.fixture
def digest_day(world):
    """Two issues filed on 8 October 2026, one in each subdistrict, and one the day after."""
    with clock(at(2026, 10, 8, 9, 30)):
        anyang = world.submit(title="安阳的问题")
        yuhai = world.submit(reporter=world.bob, project=world.other_project, title="玉海的问题")
    with clock(at(2026, 10, 9, 9, 30)):
        later = world.submit(title="第二天的问题")
    return anyang, yuhai, later


def sections(text: str) -> dict[str, str]:
    """The digest's text per subdistrict (「◆ 安阳街道」 …)."""
    parts = text.split("◆ ")[1:]
    return {part.splitlines()[0]: part for part in parts}


def test_daily_digest_lists_the_days_new_issues_by_subdistrict(world, digest_day):
    anyang, yuhai, later = digest_day
    out = io.StringIO()

    call_command("daily_digest", "--date", "2026-10-08", stdout=out)

    text = out.getvalue()
    assert text.startswith("【群众监督日报】10月8日")
    assert "新反映 2 件，办结 0 件，目前超期 0 件。" in text
    by_subdistrict = sections(text)
    assert set(by_subdistrict) == {"安阳街道", "玉海街道"}
    assert "新反映（1）：" in by_subdistrict["安阳街道"]
    assert f"· {anyang.reference} 安阳的问题（安阳街道办事处）" in by_subdistrict["安阳街道"]
    assert f"/issues/{anyang.pk}/" in by_subdistrict["安阳街道"]
    assert f"· {yuhai.reference} 玉海的问题（玉海街道办事处）" in by_subdistrict["玉海街道"]
    assert later.reference not in text


def test_daily_digest_does_not_call_a_withdrawn_issue_closed(world):
    with clock(at(2026, 10, 8, 9, 30)):
        issue = world.submit(title="自己解决了")
        services.withdraw_issue(issue, actor=world.alice, text="已自行解决")
    out = io.StringIO()

    call_command("daily_digest", "--date", "2026-10-08", stdout=out)

    assert "办结 0 件" in out.getvalue()
    assert "已办结" not in out.getvalue()


def test_daily_digest_refuses_a_bad_date(db):
    with pytest.raises(CommandError):
        call_command("daily_digest", "--date", "2026-13-01", stdout=io.StringIO())


def test_digest_page_shows_staff_their_own_scope_and_the_bureau_everything(
    world, client, digest_day
):
    anyang, yuhai, _ = digest_day

    client.force_login(world.handler)
    response = client.get("/digest/", {"date": "2026-10-08"})
    assert response.status_code == 200
    assert anyang.reference in response.context["text"]
    assert yuhai.reference not in response.context["text"]

    client.force_login(world.bureau)
    response = client.get("/digest/", {"date": "2026-10-08"})
    assert response.status_code == 200
    assert anyang.reference in page_of(response) and yuhai.reference in page_of(response)


def test_digest_page_is_not_for_supervisors_or_the_anonymous(world, client):
    response = client.get("/digest/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/digest/")

    client.force_login(world.alice)
    assert client.get("/digest/").status_code == 403


def test_digest_page_with_a_bad_date_shows_yesterday(world, client):
    client.force_login(world.bureau)

    response = client.get("/digest/", {"date": "garbage"})

    assert response.status_code == 200
    assert response.context["day"] == timezone.localdate() - timedelta(days=1)
    assert "日期格式应为 YYYY-MM-DD" in page_of(response)


@pytest.mark.parametrize(
    "day",
    [
        pytest.param(
            "9999-12-31",
        ),
        pytest.param(
            "0001-01-01",
        ),
    ],
)
def test_digest_page_with_a_date_at_the_end_of_time_is_not_a_server_error(world, client, day):
    client.raise_request_exception = False
    client.force_login(world.bureau)

    response = client.get("/digest/", {"date": day})

    assert response.status_code == 200


def test_overdue_is_one_rule_for_lists_panel_and_figures(world, client):
    """The queryset, the issue in hand, the panel's overdue-first order and the figures' count
    all read one condition (models.overdue): in every state, they agree."""
    issues = {status: world.issue_in(status) for status in S.values}
    for issue in issues.values():
        make_overdue(issue)
    now = timezone.now()

    by_queryset = set(Issue.objects.overdue(now).values_list("pk", flat=True))
    in_hand = {issue.pk for issue in Issue.objects.all() if issue.is_overdue}
    counted = set(Issue.objects.filter(missed_a_limit(now)).values_list("pk", flat=True))

    expected = {issues[s].pk for s in (S.SUBMITTED, S.ACCEPTED, S.IN_PROGRESS)}
    assert by_queryset == in_hand == expected
    assert expected <= counted  # the figures also count limits missed in the past
    client.force_login(world.bureau)
    queue = client.get("/panel/supervision/issue/").content.decode()
    assert queue.count("status-overdue") == len(expected)


# --- the reporter's check has a clock (回访) ---------------------------------------------------


def _past(issue: Issue, **fields) -> None:
    Issue.objects.filter(pk=issue.pk).update(**fields)
    issue.refresh_from_db()


def test_a_fix_waits_two_working_days_then_the_reporter_is_reminded_once(world, settings):
    issue = world.issue_in(S.RECTIFIED)
    assert issue.verify_remind_at and issue.verify_due_at > issue.verify_remind_at
    assert services.sweep_unverified() == ([], [])  # not yet

    _past(issue, verify_remind_at=timezone.now() - timedelta(minutes=1))
    reminded, closed = services.sweep_unverified()
    again = services.sweep_unverified()

    assert [i.pk for i in reminded] == [issue.pk] and closed == [] and again == ([], [])
    event = issue.events.get(kind=IssueEvent.Kind.VERIFY_REMINDED)
    assert event.actor is None and event.to_status == S.RECTIFIED
    assert set(Notification.objects.filter(event=event).values_list("recipient", flat=True)) <= {
        world.alice.pk
    }


def test_a_fix_not_checked_in_five_working_days_closes_unrated(world):
    issue = world.issue_in(S.RECTIFIED)
    _past(issue, verify_due_at=timezone.now() - timedelta(minutes=1))

    reminded, closed = services.sweep_unverified()

    issue.refresh_from_db()
    assert [i.pk for i in closed] == [issue.pk]
    assert issue.status == S.CLOSED and issue.rating == "" and issue.closed_at
    assert issue.verify_due_at is None and issue.verify_remind_at is None
    event = issue.events.order_by("-created_at", "-pk").first()
    assert event.kind == IssueEvent.Kind.VERIFY_EXPIRED and event.get_kind_display() == "逾期未评价"
    assert "逾期未评价" in event.text
    figures = headline(Issue.objects.filter(pk=issue.pk))
    assert figures["closed"] == 1 and figures["rated"] == 0 and figures["closed_unrated"] == 1
    assert figures["satisfied_share"] is None  # never counted as 满意


def test_an_answer_has_the_same_clock_and_checking_in_time_stops_it(world):
    issue = world.issue_in(S.ANSWERED)
    assert issue.verify_due_at is not None
    services.verify_issue(issue, actor=world.alice, rating=Issue.Rating.SATISFIED)
    issue.refresh_from_db()
    assert issue.verify_due_at is None and issue.verify_remind_at is None
    assert services.sweep_unverified() == ([], [])


def test_sending_a_fix_back_stops_the_clock_until_the_next_fix(world):
    issue = world.issue_in(S.RECTIFIED)
    services.reopen_issue(issue, actor=world.alice, text="墙面还在渗水")
    issue.refresh_from_db()
    assert issue.status == S.IN_PROGRESS and issue.verify_due_at is None


def test_the_clock_follows_the_settings(world, settings):
    settings.SUPERVISION = {**settings.SUPERVISION, "VERIFY_CLOSE_WORKING_DAYS": 10}
    issue = world.issue_in(S.RECTIFIED)
    # Ten working days hold at least two weekends.
    assert issue.verify_due_at > timezone.now() + timedelta(days=11)


def test_the_sweep_command_reports_reminders_and_closures(world):
    issue = world.issue_in(S.RECTIFIED)
    _past(issue, verify_due_at=timezone.now() - timedelta(minutes=1))
    assert "逾期未评价办结 1 个" in escalate_overdue_command()
