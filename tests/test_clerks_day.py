"""The clerk's day in the panel (issue 18): the queue puts urgent and most overdue work first with
one marker saying how late; the step offered first is the one the work calls for, with the
templates written for it; a transfer sends the sender back to their queue."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from supervision import services
from supervision.models import CalendarChange, Issue, ResponseTemplate
from supervision.templatetags.supervision_tags import overdue_by
from supervision.workdays import working_days_elapsed

from .factories import image_file

S = Issue.Status
ISSUES = "/panel/supervision/issue/"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def listed(response) -> list[int]:
    return [obj.pk for obj in response.context["cl"].result_list]


def late(issue: Issue, **ago) -> Issue:
    """Make the limit the issue runs against fall ``ago`` in the past, as the clock would."""
    moment = timezone.now() - timedelta(**ago)
    Issue.objects.filter(pk=issue.pk).update(created_at=moment - timedelta(days=1))
    issue.refresh_from_db()
    if issue.status == S.SUBMITTED:
        issue.sign_for_due_at = moment
    else:
        issue.rectify_due_at = max(moment, issue.created_at + timedelta(seconds=1))
    issue.save(update_fields=["sign_for_due_at", "rectify_due_at"])
    return issue


# --- the queue ---------------------------------------------------------------------------------


def test_the_queue_puts_urgent_then_most_overdue_then_oldest_first(world, client):
    oldest = world.submit(title="最早的")
    overdue_a_little = late(world.submit(title="超期一点"), hours=1)
    overdue_a_lot = late(world.issue_in(S.ACCEPTED, title="超期很久"), days=5)
    urgent = world.submit(
        title="脚手架松动",
        category=Issue.Category.SAFETY,
        urgency=Issue.Urgency.URGENT,
    )
    waiting_on_reporter = world.issue_in(S.RECTIFIED, title="等评价")
    client.force_login(world.handler)

    response = client.get(ISSUES)

    order = listed(response)
    assert order[:3] == [urgent.pk, overdue_a_lot.pk, overdue_a_little.pk]
    assert order[3] == oldest.pk
    # Waiting on the reporter is not the department's work: under 「未办结」, not the queue.
    assert waiting_on_reporter.pk not in order
    assert waiting_on_reporter.pk in listed(client.get(ISSUES, {"queue": "open"}))


def test_urgent_rows_carry_a_red_badge_and_overdue_says_how_late_once(world, client):
    urgent = world.submit(
        title="脚手架松动", category=Issue.Category.SAFETY, urgency=Issue.Urgency.URGENT
    )
    late(urgent, hours=3, minutes=10)
    normal = late(world.issue_in(S.ACCEPTED, title="外墙起皮"), days=10)
    client.force_login(world.handler)

    page = client.get(ISSUES).content.decode()

    assert '<span class="badge-urgent">紧急</span>' in page
    assert "已超期 3 小时" in page  # an urgent limit counts hours
    assert "个工作日" in page  # a normal one working days
    for issue in (urgent, normal):
        row = page[page.index(f">{issue.reference}<") :]
        row = row[: row.index("</tr>")]
        assert row.count("已超期") == 1, row


def test_waiting_counts_from_filing(world, client):
    issue = world.submit(title="昨天反映的")
    Issue.objects.filter(pk=issue.pk).update(created_at=timezone.now() - timedelta(hours=30))
    client.force_login(world.handler)

    page = client.get(ISSUES).content.decode()

    assert "1 天" in page


def test_the_bureaus_queue_is_read_through_the_queue_index(world, client):
    """The order and the default filter are the index's own (no sort of every open issue)."""
    for n in range(3):
        world.submit(title=f"问题 {n}")
    client.force_login(world.bureau)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(ISSUES)
    assert response.status_code == 200
    # One page of the listing (a short list is read whole, without LIMIT).
    listing = next(
        q["sql"]
        for q in queries.captured_queries
        if 'ORDER BY "supervision_issue"."urgency" DESC' in q["sql"]
    )
    listing += " LIMIT 50"
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + listing)
            plan = " ".join(str(row) for row in cursor.fetchall())
            assert "supervision_issue_queue_idx" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
        else:
            pytest.skip("PostgreSQL picks by statistics; the bench measures it at scale")


def test_the_queue_answers_in_a_bounded_number_of_queries(
    world, client, django_assert_max_num_queries
):
    for n in range(12):
        world.submit(title=f"问题 {n}", urgency=Issue.Urgency.URGENT if n % 3 else "normal")
    client.force_login(world.handler)
    with django_assert_max_num_queries(12):
        assert client.get(ISSUES).status_code == 200


# --- how late, in the limit's unit -------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def test_urgent_28_minutes_late_across_midnight_is_28_minutes_not_a_day(db):
    assert overdue_by(at("2026-12-03 23:50"), at("2026-12-04 00:18"), urgent=True) == (
        "已超期 28 分钟"
    )


def test_urgent_limits_count_hours(db):
    assert overdue_by(at("2026-12-03 20:00"), at("2026-12-04 09:30"), urgent=True) == (
        "已超期 13 小时"
    )


def test_normal_limits_count_working_days(db):
    # Due Friday 17:30; a weekend is not late working days; Monday evening is one.
    friday = at("2026-12-04 17:30")
    assert overdue_by(friday, at("2026-12-07 09:00")) == "已超期，不到 1 个工作日"
    assert overdue_by(friday, at("2026-12-07 18:00")) == "已超期 1 个工作日"
    assert overdue_by(friday, at("2026-12-09 10:00")) == "已超期 2 个工作日"
    assert overdue_by(friday, at("2026-12-04 19:40")) == "已超期 2 小时"


def test_a_local_day_off_is_not_counted(db):
    CalendarChange.objects.create(day=at("2026-12-08 00:00").date(), is_working_day=False)
    assert working_days_elapsed(at("2026-12-04 17:30"), at("2026-12-09 18:00")) == 2


# --- next steps follow the work ----------------------------------------------------------------


def panel_page(client, issue):
    return client.get(f"{ISSUES}{issue.pk}/change/")


def test_after_signing_for_the_first_step_offered_is_dispatch_with_the_contractor_chosen(
    world, client
):
    issue = world.submit()
    client.force_login(world.handler)
    page = panel_page(client, issue)
    assert page.context["next_step"] == "accept"
    assert page.context["step_forms"][0].step == "accept"

    response = client.post(
        f"/issues/{issue.pk}/accept/", {"next": f"{ISSUES}{issue.pk}/change/"}, follow=True
    )

    forms = response.context["step_forms"]
    assert response.context["next_step"] == "dispatch"
    assert forms[0].step == "dispatch"
    assert forms[0]["department"].value() == world.contractor.pk
    html = response.content.decode()
    assert 'id="step-dispatch" open data-next-step' in html
    assert 'id="step-rectify" open' not in html


def test_sign_for_then_dispatch_takes_two_posts_from_the_issue(world, client):
    """Queue → issue → 签收 → 派单整改: the contractor needs no choosing."""
    issue = world.submit()
    client.force_login(world.handler)
    back = f"{ISSUES}{issue.pk}/change/"
    client.post(f"/issues/{issue.pk}/accept/", {"next": back})
    form = panel_page(client, issue).context["step_forms"][0]
    client.post(
        f"/issues/{issue.pk}/dispatch/",
        {"next": back, "department": form["department"].value()},
    )
    issue.refresh_from_db()
    assert issue.status == S.IN_PROGRESS
    assert issue.contractor == world.contractor


def test_after_dispatch_the_same_dispatch_is_not_offered_again(world, client):
    issue = world.issue_in(S.IN_PROGRESS)
    client.force_login(world.handler)

    response = panel_page(client, issue)

    forms = {form.step: form for form in response.context["step_forms"]}
    assert response.context["next_step"] == "rectify"
    assert response.context["step_forms"][0].step == "rectify"
    # 改派 only to another contractor; the one already working on it is not a choice.
    assert str(forms["dispatch"].label) == "改派施工单位"
    assert world.contractor not in forms["dispatch"].fields["department"].queryset


def test_dispatch_is_not_offered_when_there_is_no_other_contractor(world, client):
    world.other_contractor.is_active = False
    world.other_contractor.save()
    issue = world.issue_in(S.IN_PROGRESS)
    client.force_login(world.handler)

    steps = [form.step for form in panel_page(client, issue).context["step_forms"]]

    assert "dispatch" not in steps


def test_contractor_staff_are_offered_the_rectification_report_first(world, client):
    issue = world.issue_in(S.IN_PROGRESS)
    client.force_login(world.builder)

    response = client.get(issue.get_absolute_url())

    assert response.context["step_forms"][0].step == "rectify"


def test_only_the_templates_written_for_a_step_are_offered_with_it(world, client):
    thanks = ResponseTemplate.objects.create(step="answer", title="感谢反映", text="感谢反映。")
    fixed = ResponseTemplate.objects.create(
        step="rectify", title="已整改", text="已按要求整改完毕。", department=world.office
    )
    anywhere = ResponseTemplate.objects.create(step="", title="已收到", text="已收到。")
    issue = world.issue_in(S.IN_PROGRESS)
    client.force_login(world.handler)

    forms = {form.step: form for form in panel_page(client, issue).context["step_forms"]}

    assert set(forms["rectify"].response_templates) == {fixed, anywhere}
    assert thanks not in forms["rectify"].response_templates
    page = panel_page(client, issue).content.decode()
    rectify_part = page[page.index('id="step-rectify"') :]
    rectify_part = rectify_part[: rectify_part.index("</details>")]
    assert "感谢反映" not in rectify_part


# --- transfer ----------------------------------------------------------------------------------


def test_transferring_away_returns_the_sender_to_their_queue_with_a_message(world, client):
    issue = world.submit()
    client.force_login(world.handler)

    response = client.post(
        f"/issues/{issue.pk}/transfer/",
        {
            "next": f"{ISSUES}{issue.pk}/change/",
            "department": world.other_office.pk,
            "reason": "不在本街道",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == ISSUES
    page = client.get(response["Location"])
    assert page.status_code == 200
    said = [str(m) for m in get_messages(page.wsgi_request)]
    assert any("玉海街道办事处" in m for m in said)
    issue.refresh_from_db()
    assert issue.department == world.other_office


def test_transferring_from_the_issue_page_lands_on_the_issue_list(world, client):
    issue = world.submit()
    client.force_login(world.handler)

    response = client.post(
        f"/issues/{issue.pk}/transfer/",
        {"department": world.other_office.pk, "reason": "不在本街道"},
    )

    assert response["Location"] == "/issues/"
    assert client.get("/issues/").status_code == 200


def test_the_bureau_transferring_stays_on_the_issue(world, client):
    issue = world.submit()
    client.force_login(world.bureau)

    response = client.post(
        f"/issues/{issue.pk}/transfer/",
        {"department": world.other_office.pk, "reason": "改由玉海办理"},
    )

    assert response["Location"] == issue.get_absolute_url()


def test_due_at_follows_every_step(world):
    issue = world.submit()
    assert issue.due_at == issue.sign_for_due_at
    issue = services.accept_issue(issue, actor=world.handler)
    issue.refresh_from_db()
    assert issue.due_at == issue.rectify_due_at
    issue = services.rectify_issue(issue, actor=world.handler, text="好了", photos=[image_file()])
    issue.refresh_from_db()
    assert issue.due_at is None


# --- the issue list for a supervisor -----------------------------------------------------------


def test_a_supervisor_can_filter_the_list_by_any_project_theirs_first(world, client):
    """The list shows every issue of the programme, so any project can be chosen."""
    others = world.submit(reporter=world.bob, project=world.other_project, title="玉海的问题")
    world.submit(title="兴业的问题")
    client.force_login(world.alice)

    response = client.get("/issues/", {"project": world.other_project.pk})

    assert response.status_code == 200
    page = response.content.decode()
    assert [issue.pk for issue in response.context["page"]] == [others.pk]
    mine = page.index('<optgroup label="我监督的项目">')
    rest = page.index('<optgroup label="其他项目">')
    assert mine < page.index(world.project.name, mine) < rest
    assert page.index(world.other_project.name, rest) > rest


@pytest.mark.parametrize("status", [S.SUBMITTED, S.ACCEPTED, S.IN_PROGRESS])
def test_the_panels_issue_page_answers_in_at_most_12_queries(
    world, client, status, django_assert_max_num_queries
):
    issue = world.issue_in(status)
    client.force_login(world.handler)
    panel_page(client, issue)
    with django_assert_max_num_queries(12):
        assert panel_page(client, issue).status_code == 200


def test_a_public_issue_shows_its_problem_photo_before_the_fix(world, client):
    issue = world.issue_in(S.CLOSED)
    services.publish_issue(issue, actor=world.bureau, public=True)

    page = client.get(world.project.get_absolute_url()).content.decode()

    assert page.index('<figcaption class="small">问题照片') < page.index(
        '<figcaption class="small">整改照片'
    )


def test_a_search_in_the_panel_says_it_searched_everything(world, client):
    """Searching from the queue finds finished issues too: the sidebar then marks 「全部」, not
    「待办理」, and 「未办结」 narrows the search to what is unfinished."""
    done = services.submit_issue(
        reporter=world.alice,
        project=world.project,
        category="quality",
        title="外墙空鼓已修好",
        description="三楼外墙空鼓",
        photos=[image_file()],
    )
    Issue.objects.filter(pk=done.pk).update(status=Issue.Status.CLOSED, due_at=None)
    client.force_login(world.handler)
    page = client.get("/panel/supervision/issue/", {"q": "空鼓"}).content.decode()
    assert "外墙空鼓已修好" in page
    selected = re.findall(r'<li class="selected">\s*<a[^>]*>([^<]+)</a>', page)
    assert "全部（含已办结）" in selected and "待办理" not in selected
    narrowed = client.get("/panel/supervision/issue/", {"q": "空鼓", "queue": "open"})
    assert "外墙空鼓已修好" not in narrowed.content.decode()
