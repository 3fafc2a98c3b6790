"""The workflow engine: every step × role × state, allowed or refused with a message, and the
happy paths with their events and deadlines."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone, translation

from supervision import services
from supervision.models import Issue, IssueEvent, Photo
from supervision.services import WorkflowError

from .factories import image_file, make_supervisor

S = Issue.Status
CJK = re.compile(r"[\u4e00-\u9fff]")

ROLES = [
    "reporter",
    "project_supervisor",  # watches the issue's project too: may support (附议) it
    "other_supervisor",
    "handler",
    "other_staff",
    "builder",
    "bureau",
    "anonymous",
]
STATES = list(S.values)
# States reached through a dispatch to the project's contractor: its staff can see and work them.
DISPATCHED = {S.IN_PROGRESS, S.RECTIFIED, S.CLOSED}


def actor_for(world, role):
    if role == "project_supervisor":
        return make_supervisor("carol", world.project.neighbourhood, [world.project])
    return {
        "reporter": world.alice,
        "other_supervisor": world.bob,
        "handler": world.handler,
        "other_staff": world.other_staff,
        "builder": world.builder,
        "bureau": world.bureau,
        "anonymous": AnonymousUser(),
    }[role]


def call(step, world, issue, actor):
    if step == "accept":
        return services.accept_issue(issue, actor=actor)
    if step == "answer":
        return services.answer_issue(issue, actor=actor, text="这是答复")
    if step == "dispatch":
        return services.dispatch_issue(issue, actor=actor, department=world.other_contractor)
    if step == "transfer":
        return services.transfer_issue(
            issue, actor=actor, department=world.other_office, text="属地调整"
        )
    if step == "reject":
        return services.reject_issue(issue, actor=actor, text="重复反映")
    if step == "rectify":
        return services.rectify_issue(issue, actor=actor, text="已整改", photos=[image_file()])
    if step == "verify":
        return services.verify_issue(issue, actor=actor, rating=Issue.Rating.SATISFIED)
    if step == "reopen":
        return services.reopen_issue(issue, actor=actor, text="问题还在")
    if step == "withdraw":
        return services.withdraw_issue(issue, actor=actor, text="不需要了")
    if step == "comment":
        return services.comment_on_issue(issue, actor=actor, text="补充一下情况")
    if step == "escalate":
        return services.escalate_issue(issue, actor=actor, text="请抓紧办理")
    if step == "reply":
        return services.reply_to_oversight(issue, actor=actor, text="已经督促街道加快办理")
    if step == "extend":
        until = timezone.localdate() + timedelta(days=40)
        return services.request_extension(issue, actor=actor, until=until, text="材料未到货")
    if step == "appeal":
        return services.appeal_issue(issue, actor=actor, text="不是重复问题，请住建局复核")
    if step == "support":
        return services.support_issue(issue, actor=actor)
    raise AssertionError(step)


HANDLERS = {"handler", "bureau"}
# step: (roles allowed, states allowed, resulting status or None when the status stays)
RULES = {
    "accept": (HANDLERS, {S.SUBMITTED}, S.ACCEPTED),
    "answer": (HANDLERS, {S.SUBMITTED, S.ACCEPTED}, S.ANSWERED),
    "dispatch": (HANDLERS, {S.ACCEPTED, S.IN_PROGRESS}, S.IN_PROGRESS),
    "transfer": (HANDLERS, {S.SUBMITTED, S.ACCEPTED, S.IN_PROGRESS}, None),
    "reject": (HANDLERS, {S.SUBMITTED, S.ACCEPTED}, S.REJECTED),
    "rectify": (HANDLERS | {"builder"}, {S.ACCEPTED, S.IN_PROGRESS}, S.RECTIFIED),
    "verify": ({"reporter"}, {S.RECTIFIED, S.ANSWERED}, S.CLOSED),
    "reopen": ({"reporter"}, {S.RECTIFIED, S.ANSWERED}, "reopened"),
    "withdraw": ({"reporter"}, {S.SUBMITTED}, S.WITHDRAWN),
    "comment": (
        {"reporter", "project_supervisor", "other_supervisor", "handler", "bureau", "builder"},
        set(STATES),
        None,
    ),
    "escalate": (HANDLERS, {S.SUBMITTED, S.ACCEPTED, S.IN_PROGRESS}, None),
    "extend": (HANDLERS | {"builder"}, {S.ACCEPTED, S.IN_PROGRESS}, None),
    "appeal": ({"reporter"}, {S.REJECTED}, S.SUBMITTED),
    # Not the reporter (their own issue), not a supervisor of another project.
    "support": (
        {"project_supervisor"},
        {S.SUBMITTED, S.ACCEPTED, S.IN_PROGRESS, S.RECTIFIED, S.ANSWERED},
        None,
    ),
}


def may_act(step, role, state):
    roles = RULES[step][0]
    if role == "builder":
        # The contractor takes part only once the issue was dispatched to it.
        return "builder" in roles and state in DISPATCHED
    return role in roles


CASES = [(step, role, state) for step in RULES for role in ROLES for state in STATES]


@pytest.mark.parametrize(("step", "role", "state"), CASES, ids=["-".join(c) for c in CASES])
def test_step_role_state(world, step, role, state):
    issue = world.issue_in(state)
    events_before = issue.events.count()
    actor = actor_for(world, role)
    roles_ok = may_act(step, role, state)
    state_ok = state in RULES[step][1]
    assert (step in services.allowed_steps(actor, issue)) == (roles_ok and state_ok)

    if roles_ok and state_ok:
        call(step, world, issue, actor)
        issue.refresh_from_db()
        expected = RULES[step][2]
        if expected == "reopened":
            expected = S.IN_PROGRESS if state == S.RECTIFIED else S.ACCEPTED
        assert issue.status == (expected or state)
        assert issue.events.count() == events_before + 1
        return

    with pytest.raises(WorkflowError) as refused:
        call(step, world, issue, actor)
    assert refused.value.status_code == (403 if not roles_ok else 409)
    assert CJK.search(refused.value.message), refused.value.message
    issue.refresh_from_db()
    assert issue.status == state
    assert issue.events.count() == events_before


# --- happy paths in detail ----------------------------------------------------------------------


def test_submit_routes_to_subdistrict_office_and_sets_clocks(world):
    issue = world.submit(photos=[image_file(), image_file("b.png", "PNG")])

    assert issue.status == S.SUBMITTED
    assert issue.department == world.office
    assert issue.sign_for_due_at > issue.created_at
    assert issue.reply_due_at >= issue.sign_for_due_at
    event = issue.events.get()
    assert (event.kind, event.actor, event.to_status) == (
        IssueEvent.Kind.SUBMITTED,
        world.alice,
        S.SUBMITTED,
    )
    assert issue.photos.filter(kind=Photo.Kind.BEFORE, event=event).count() == 2


def test_urgent_issue_must_be_signed_for_within_two_hours(world):
    issue = world.submit(urgency=Issue.Urgency.URGENT, category=Issue.Category.SAFETY)
    assert issue.sign_for_due_at - issue.created_at == timedelta(hours=2)


def test_supervisor_cannot_file_on_a_project_they_do_not_watch(world):
    with pytest.raises(WorkflowError) as refused:
        world.submit(project=world.other_project)
    assert refused.value.status_code == 403
    assert not Issue.objects.exists()


def test_staff_and_bureau_cannot_file_issues(world):
    for actor in (world.handler, world.bureau, world.builder):
        with pytest.raises(WorkflowError):
            world.submit(reporter=actor)
    assert not Issue.objects.exists()


def test_dismissed_supervisor_cannot_file(world):
    supervisor = world.alice.supervisor
    supervisor.is_active = False
    supervisor.dismissed_on = timezone.localdate()
    supervisor.save()
    with pytest.raises(WorkflowError) as refused:
        world.submit()
    assert "在任" in refused.value.message


def test_supervisor_past_term_cannot_file(world):
    supervisor = world.alice.supervisor
    supervisor.term_ends_on = timezone.localdate() - timedelta(days=1)
    supervisor.save()
    with pytest.raises(WorkflowError):
        world.submit()


def test_submit_needs_title_and_description(world):
    with pytest.raises(WorkflowError) as refused:
        world.submit(title="   ")
    assert refused.value.status_code == 400
    with pytest.raises(WorkflowError):
        world.submit(description="")
    assert not Issue.objects.exists()


def test_submit_refuses_a_file_that_is_not_a_photo(world):
    with pytest.raises(WorkflowError) as refused:
        world.submit(photos=[SimpleUploadedFile("x.jpg", b"%PDF-1.4 not a photo")])
    assert "x.jpg" in refused.value.message
    assert not Issue.objects.exists()


def test_same_idempotency_key_files_one_issue(world):
    first = world.submit(idempotency_key="tap-1")
    again = world.submit(idempotency_key="tap-1")
    assert first.pk == again.pk
    assert Issue.objects.count() == 1
    assert IssueEvent.objects.count() == 1


def test_accept_with_deadline_sets_end_of_that_day(world):
    issue = world.submit()
    due = timezone.localdate() + timedelta(days=10)
    services.accept_issue(issue, actor=world.handler, deadline=due)
    issue.refresh_from_db()
    local = timezone.localtime(issue.rectify_due_at)
    assert local.date() == due
    assert (local.hour, local.minute) == (17, 30)
    event = issue.events.last()
    assert event.kind == IssueEvent.Kind.ACCEPTED and event.deadline == issue.rectify_due_at
    assert issue.accepted_at and issue.first_reply_at


def test_accept_refuses_deadline_in_the_past(world):
    issue = world.submit()
    with pytest.raises(WorkflowError) as refused:
        services.accept_issue(
            issue, actor=world.handler, deadline=timezone.localdate() - timedelta(days=1)
        )
    assert refused.value.status_code == 400
    issue.refresh_from_db()
    assert issue.status == S.SUBMITTED


def test_accept_default_deadline_is_seven_working_days(world):
    issue = world.submit()
    services.accept_issue(issue, actor=world.handler)
    issue.refresh_from_db()
    assert issue.rectify_due_at - issue.created_at >= timedelta(days=7)


def test_dispatch_refuses_a_department_that_is_not_a_contractor(world):
    issue = world.issue_in(S.ACCEPTED)
    with pytest.raises(WorkflowError) as refused:
        services.dispatch_issue(issue, actor=world.handler, department=world.other_office)
    assert refused.value.status_code == 400


def test_dispatch_gives_the_contractor_the_issue(world):
    issue = world.issue_in(S.IN_PROGRESS)
    assert issue.contractor == world.contractor
    assert Issue.objects.visible_to(world.builder).filter(pk=issue.pk).exists()
    assert issue.events.last().department == world.contractor


def test_transfer_keeps_status_and_restarts_sign_for_clock(world):
    issue = world.issue_in(S.ACCEPTED)
    old_due = issue.sign_for_due_at
    services.transfer_issue(
        issue, actor=world.handler, department=world.other_office, text="属地调整"
    )
    issue.refresh_from_db()
    assert issue.status == S.ACCEPTED
    assert issue.department == world.other_office
    assert issue.sign_for_due_at >= old_due
    # The old department no longer handles it; the new one does.
    with pytest.raises(WorkflowError):
        services.answer_issue(issue, actor=world.handler, text="x")
    services.answer_issue(issue, actor=world.other_staff, text="我们来答复")


def test_transfer_needs_a_reason(world):
    issue = world.submit()
    with pytest.raises(WorkflowError) as refused:
        services.transfer_issue(issue, actor=world.handler, department=world.other_office, text="")
    assert refused.value.status_code == 400


def test_rectify_needs_an_after_photo(world):
    issue = world.issue_in(S.IN_PROGRESS)
    with pytest.raises(WorkflowError) as refused:
        services.rectify_issue(issue, actor=world.builder, text="修好了", photos=[])
    assert "照片" in refused.value.message
    issue.refresh_from_db()
    assert issue.status == S.IN_PROGRESS


def test_contractor_reports_fix_with_after_photos(world):
    issue = world.issue_in(S.IN_PROGRESS)
    services.rectify_issue(issue, actor=world.builder, text="已重新刷涂", photos=[image_file()])
    issue.refresh_from_db()
    assert issue.status == S.RECTIFIED and issue.rectified_at
    event = issue.events.last()
    assert event.kind == IssueEvent.Kind.RECTIFIED and event.actor == world.builder
    assert event.photos.filter(kind=Photo.Kind.AFTER).count() == 1


def test_verify_records_rating(world):
    issue = world.issue_in(S.RECTIFIED)
    services.verify_issue(
        issue, actor=world.alice, rating=Issue.Rating.BASICALLY_SATISFIED, text="还行"
    )
    issue.refresh_from_db()
    assert (issue.status, issue.rating) == (S.CLOSED, Issue.Rating.BASICALLY_SATISFIED)
    assert issue.closed_at
    assert issue.events.last().rating == Issue.Rating.BASICALLY_SATISFIED


def test_verify_refuses_an_unknown_rating(world):
    issue = world.issue_in(S.RECTIFIED)
    with pytest.raises(WorkflowError) as refused:
        services.verify_issue(issue, actor=world.alice, rating="great")
    assert refused.value.status_code == 400
    issue.refresh_from_db()
    assert issue.status == S.RECTIFIED and issue.rating == ""


def test_reopen_needs_a_reason_and_sets_new_deadline(world):
    issue = world.issue_in(S.RECTIFIED)
    with pytest.raises(WorkflowError):
        services.reopen_issue(issue, actor=world.alice, text=" ")
    services.reopen_issue(issue, actor=world.alice, text="墙面还在起皮")
    issue.refresh_from_db()
    assert issue.status == S.IN_PROGRESS
    assert issue.rectified_at is None
    assert issue.rectify_due_at > timezone.now()
    assert issue.events.last().kind == IssueEvent.Kind.REOPENED


def test_each_sending_back_is_counted_on_the_issue(world):
    """The figures' reopen rate reads this count; it must match the REOPENED events."""
    issue = world.issue_in(S.RECTIFIED)
    assert issue.reopen_count == 0
    services.reopen_issue(issue, actor=world.alice, text="墙面还在起皮")
    services.rectify_issue(issue, actor=world.handler, text="重新整改", photos=[image_file()])
    services.verify_issue(
        issue, actor=world.alice, rating=Issue.Rating.UNSATISFIED, text="还是不行"
    )
    issue.refresh_from_db()
    assert issue.reopen_count == 2
    assert issue.events.filter(kind=IssueEvent.Kind.REOPENED).count() == 2


def test_reopened_answer_goes_back_to_the_department(world):
    issue = world.issue_in(S.ANSWERED)
    services.reopen_issue(issue, actor=world.alice, text="答复没有解决问题")
    issue.refresh_from_db()
    assert issue.status == S.ACCEPTED


def test_withdraw_after_sign_for_says_why(world):
    issue = world.issue_in(S.ACCEPTED)
    with pytest.raises(WorkflowError) as refused:
        services.withdraw_issue(issue, actor=world.alice)
    assert "不能撤回" in refused.value.message


def test_reject_needs_a_reason(world):
    issue = world.submit()
    with pytest.raises(WorkflowError) as refused:
        services.reject_issue(issue, actor=world.handler, text="")
    assert refused.value.status_code == 400
    issue.refresh_from_db()
    assert issue.status == S.SUBMITTED


def test_escalation_by_the_periodic_job_has_no_actor(world):
    issue = world.submit()
    services.escalate_issue(issue, actor=None, text="")
    issue.refresh_from_db()
    assert issue.escalated_at
    event = issue.events.last()
    assert event.kind == IssueEvent.Kind.ESCALATED and event.actor is None and event.text


def test_first_staff_comment_counts_as_first_reply(world):
    issue = world.submit()
    services.comment_on_issue(issue, actor=world.bob, text="我也看到了")
    issue.refresh_from_db()
    assert issue.first_reply_at is None
    services.comment_on_issue(issue, actor=world.handler, text="明天去现场看")
    issue.refresh_from_db()
    assert issue.first_reply_at is not None


def test_comment_text_is_required_and_bounded(world):
    issue = world.submit()
    with pytest.raises(WorkflowError):
        services.comment_on_issue(issue, actor=world.bob, text="")
    with pytest.raises(WorkflowError):
        services.comment_on_issue(issue, actor=world.bob, text="长" * 2001)
    assert issue.events.count() == 1


def test_callers_instance_shows_the_new_state(world):
    issue = world.submit()
    services.accept_issue(issue, actor=world.handler)
    assert issue.status == S.ACCEPTED


def test_inactive_staff_account_cannot_act(world):
    issue = world.submit()
    world.handler.is_active = False
    world.handler.save()
    with pytest.raises(WorkflowError) as refused:
        services.accept_issue(issue, actor=world.handler)
    assert refused.value.status_code == 403


def test_overdue_when_sign_for_time_passed(world):
    issue = world.submit()
    assert not issue.is_overdue
    Issue.objects.filter(pk=issue.pk).update(sign_for_due_at=timezone.now() - timedelta(minutes=1))
    issue.refresh_from_db()
    assert issue.is_overdue
    services.accept_issue(issue, actor=world.handler)
    issue.refresh_from_db()
    assert not issue.is_overdue  # now running against the rectification deadline


def test_a_refusal_in_english_names_the_step_in_english(world):
    """Step names are translated when the refusal is made, not when the module was imported."""
    issue = world.issue_in(S.SUBMITTED)
    services.accept_issue(issue, actor=world.handler)
    with translation.override("en"):
        with pytest.raises(WorkflowError) as refused:
            services.accept_issue(issue, actor=world.handler)
        refused_again = services.refusal(world.handler, issue, "accept")
    assert "“Sign for” is not possible" in refused.value.message
    assert not CJK.search(refused.value.message.split("This issue")[1].split(".")[0])
    assert refused_again is not None and "“Sign for”" in refused_again.message
    with translation.override("zh-hans"):
        assert "不能签收" in services.refusal(world.handler, issue, "accept").message


def test_every_step_function_enforces_the_table(world):
    """Each step is refused with the table's own words for whom it does not allow."""
    issue = world.issue_in(S.SUBMITTED)
    for step, rule in services.STEP_RULES.items():
        if rule.who(world.bob, issue):
            continue
        with pytest.raises(WorkflowError) as refused:
            call(step, world, issue, world.bob)
        assert refused.value.message == str(rule.forbidden), step
        assert refused.value.status_code == 403
