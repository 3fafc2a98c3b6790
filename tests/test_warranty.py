"""After the works: warranty issues go to the warranty contractor marked 保修; after the warranty
and the handover, what the manager looks after goes to the manager; 回头看 patrols are booked,
shown on 我的, and listed for the bureau when missed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from supervision import services, stats, warranty
from supervision.models import Department, Issue, Patrol, Project, ReturnVisit, ScopeItem

from .factories import PASSWORD, make_department, make_user, make_world

Area = ScopeItem.Area
pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    w = make_world()
    today = timezone.localdate()
    Project.objects.filter(pk=w.project.pk).update(
        status=Project.Status.ACCEPTED, acceptance_actual=today - timedelta(days=400)
    )
    w.project.refresh_from_db()
    w.roof = ScopeItem.objects.create(project=w.project, area=Area.BUILDING, description="屋面防水")
    w.greening = ScopeItem.objects.create(
        project=w.project, area=Area.LANDSCAPE, description="绿化补种"
    )
    w.pipes = ScopeItem.objects.create(
        project=w.project,
        area=Area.PIPES,
        description="雨污分流",
        warranty_contractor=w.other_contractor,
    )
    w.estate = make_department("瑞安物业", Department.Kind.PROPERTY_MANAGER)
    w.estate_staff = make_user("wuye", role=User.Role.STAFF, department=w.estate)
    return w


def accepted_ago(w, *, days: int) -> None:
    Project.objects.filter(pk=w.project.pk).update(
        acceptance_actual=timezone.localdate() - timedelta(days=days)
    )
    w.project.refresh_from_db()


def hand_over(w, kind=warranty.Manager.PROPERTY_MANAGER, **fields):
    if kind == warranty.Manager.PROPERTY_MANAGER:
        fields.setdefault("manager", w.estate)
    project = warranty.hand_over_project(w.project, actor=w.bureau, kind=kind, **fields)
    w.project.refresh_from_db()
    return project


# --- the rules -----------------------------------------------------------------------------------


def test_default_warranty_follows_the_regulation_and_an_item_may_set_its_own(world):
    accepted = world.project.acceptance_actual
    assert warranty.warranty_ends(world.roof, world.project) == (
        warranty.add_months(accepted, 60) - timedelta(days=1)
    )
    assert warranty.warranty_months(world.greening) == 24
    world.greening.warranty_months = 36
    assert warranty.warranty_months(world.greening) == 36


def test_issue_in_warranty_goes_to_the_project_contractor_marked_warranty(world):
    issue = world.submit(area=Area.BUILDING)
    assert issue.department == world.contractor
    assert issue.is_warranty
    assert issue.sign_for_due_at is not None  # the normal limits apply
    assert issue.events.get().department == world.contractor


def test_issue_on_an_item_goes_to_that_items_warranty_contractor(world):
    issue = world.submit(area=Area.PIPES)
    assert (issue.department, issue.is_warranty) == (world.other_contractor, True)


def test_warranty_contractor_can_sign_for_a_warranty_issue(world):
    issue = world.submit(area=Area.BUILDING)
    issue = services.accept_issue(issue, actor=world.builder)
    assert issue.status == Issue.Status.ACCEPTED


def test_issue_on_an_area_out_of_warranty_is_routed_as_usual(world):
    # 景观绿化 has 2 years; accepted 400 days ago it is still in: move acceptance back 3 years.
    accepted_ago(world, days=3 * 366)
    issue = world.submit(area=Area.LANDSCAPE)
    assert (issue.department, issue.is_warranty) == (world.office, False)


def test_issue_before_acceptance_is_not_a_warranty_issue(world):
    issue = world.submit(project=world.other_project, reporter=world.bob)
    assert not issue.is_warranty
    assert issue.department == world.other_office


def test_after_warranty_and_handover_cleaning_goes_to_the_property_manager(world):
    accepted_ago(world, days=6 * 366)
    hand_over(world)
    issue = world.submit(category=Issue.Category.CIVILISED, title="楼道垃圾没人清")
    assert (issue.department, issue.is_warranty) == (world.estate, False)
    assert world.estate_staff.department == issue.department


def test_after_handover_greening_upkeep_goes_to_the_manager_once_its_warranty_ends(world):
    hand_over(world)
    accepted_ago(world, days=3 * 366)
    issue = world.submit(area=Area.LANDSCAPE)
    assert issue.department == world.estate
    # the roof is still in its 5 years: a building defect goes to the contractor
    roof = world.submit(area=Area.BUILDING)
    assert (roof.department, roof.is_warranty) == (world.contractor, True)


def test_safety_issue_after_handover_is_not_sent_to_the_manager(world):
    accepted_ago(world, days=6 * 366)
    hand_over(world)
    issue = world.submit(category=Issue.Category.SAFETY, area=Area.LANDSCAPE)
    assert issue.department == world.office


def test_owners_committee_issue_goes_to_the_office_and_the_page_shows_the_contact(world, client):
    accepted_ago(world, days=6 * 366)
    hand_over(world, kind=warranty.Manager.OWNERS_COMMITTEE, contact="陈主任", phone="13800000001")
    issue = world.submit(category=Issue.Category.CIVILISED)
    assert issue.department == world.office
    client.login(username="alice", password=PASSWORD)
    page = client.get(reverse("issue-detail", args=[issue.pk])).content.decode()
    assert "data-manager-contact" in page and "陈主任" in page


def test_issue_page_and_card_show_the_warranty_mark(world, client):
    issue = world.submit(area=Area.BUILDING)
    client.login(username="alice", password=PASSWORD)
    page = client.get(reverse("issue-detail", args=[issue.pk])).content.decode()
    assert "data-warranty" in page and "保修" in page
    listing = client.get(reverse("issue-list")).content.decode()
    assert "data-warranty" in listing


# --- the services that change a project's warranty and manager --------------------------------


def test_handover_records_the_manager_with_history(world):
    project = hand_over(world, on=timezone.localdate())
    assert (project.manager_kind, project.manager) == ("property_manager", world.estate)
    assert project.history.first().history_change_reason == "长效管理移交"


def test_handover_is_refused_in_chinese_for_staff_and_wrong_input(world):
    with pytest.raises(warranty.WarrantyError, match="只有市住建局"):
        warranty.hand_over_project(world.project, actor=world.handler, kind="property_manager")
    with pytest.raises(warranty.WarrantyError, match="物业服务企业"):
        warranty.hand_over_project(
            world.project, actor=world.bureau, kind="property_manager", manager=world.contractor
        )
    with pytest.raises(warranty.WarrantyError, match="联系人"):
        warranty.hand_over_project(world.project, actor=world.bureau, kind="self_management")
    with pytest.raises(warranty.WarrantyError, match="尚未竣工验收"):
        warranty.hand_over_project(
            world.other_project, actor=world.bureau, kind="property_manager", manager=world.estate
        )
    world.project.refresh_from_db()
    assert world.project.manager_kind == ""


def test_set_warranty_changes_the_item_and_refuses_a_non_contractor(world):
    item = warranty.set_warranty(world.roof, actor=world.bureau, months=96, contractor=None)
    assert item.warranty_months == 96
    with pytest.raises(warranty.WarrantyError, match="施工单位"):
        warranty.set_warranty(world.roof, actor=world.bureau, months=60, contractor=world.estate)
    with pytest.raises(warranty.WarrantyError, match="只有市住建局"):
        warranty.set_warranty(world.roof, actor=world.builder, months=1, contractor=None)


# --- 回头看 ----------------------------------------------------------------------------------------


def test_return_visits_are_booked_once_at_6_and_12_months(world):
    accepted_ago(world, days=100)
    warranty.schedule_return_visits()
    warranty.schedule_return_visits()
    visits = ReturnVisit.objects.filter(project=world.project, scope_item__isnull=True)
    accepted = world.project.acceptance_actual
    assert sorted(visits.values_list("due_on", flat=True)) == [
        warranty.add_months(accepted, 6),
        warranty.add_months(accepted, 12),
    ]


def test_warranty_ending_within_30_days_books_a_visit_shown_on_me(world, client):
    # greening's 2 years end in 20 days
    ends = timezone.localdate() + timedelta(days=20)
    accepted = warranty.add_months(ends + timedelta(days=1), -24)
    Project.objects.filter(pk=world.project.pk).update(acceptance_actual=accepted)
    world.project.refresh_from_db()
    booked = warranty.schedule_return_visits()
    ending = [v for v in booked if v.reason == ReturnVisit.Reason.WARRANTY_ENDING]
    # greening and pipes both have 2 years: one 回头看 covers the day they end
    assert len(ending) == 1 and ending[0].scope_item in {world.greening, world.pipes}
    assert ending[0].due_on == ends
    client.login(username="alice", password=PASSWORD)
    page = client.get(reverse("me")).content.decode()
    assert "data-return-visits" in page and "保修期将满" in page


def test_a_patrol_completes_the_visit(world, client):
    today = timezone.localdate()
    ReturnVisit.objects.create(
        project=world.project, reason=ReturnVisit.Reason.SIX_MONTHS, due_on=today + timedelta(5)
    )
    assert len(warranty.due_visits_for(world.alice)) == 1
    Patrol.objects.create(project=world.project, supervisor=world.alice)
    assert warranty.due_visits_for(world.alice) == []


def test_missed_visits_are_listed_for_the_bureau_only(world, client):
    ReturnVisit.objects.create(
        project=world.project,
        reason=ReturnVisit.Reason.SIX_MONTHS,
        due_on=timezone.localdate() - timedelta(days=60),
    )
    url = reverse("return-visits-missed")
    client.login(username="zhujianju", password=PASSWORD)
    response = client.get(url)
    assert response.status_code == 200
    assert world.project.name in response.content.decode()
    client.login(username="anyang", password=PASSWORD)
    assert client.get(url).status_code == 404
    client.login(username="alice", password=PASSWORD)
    assert client.get(url).status_code == 404


# --- the scorecard -------------------------------------------------------------------------------


def test_scorecard_counts_warranty_issues_on_their_own(world):
    issue = world.submit(area=Area.BUILDING)
    services.accept_issue(issue, actor=world.builder)
    world.submit(area=Area.PIPES)
    world.submit(project=world.other_project, reporter=world.bob)
    rows = {row["department__name"]: row for row in stats.warranty_scorecard(Issue.objects.all())}
    assert set(rows) == {"宏程建设", "安居建筑"}
    assert rows["宏程建设"]["filed"] == 1
    assert rows["宏程建设"]["median_hours_to_sign"] is not None
    assert rows["安居建筑"]["median_hours_to_sign"] is None


def test_dashboard_shows_the_warranty_table(world, client):
    world.submit(area=Area.BUILDING)
    client.login(username="zhujianju", password=PASSWORD)
    page = client.get(reverse("dashboard")).content.decode()
    assert "data-warranty-scorecard" in page


def test_visits_long_past_are_not_booked(world):
    accepted_ago(world, days=3 * 366)
    warranty.schedule_return_visits()
    assert not ReturnVisit.objects.filter(project=world.project, scope_item__isnull=True).exists()


def test_months_are_added_to_the_end_of_a_short_month(world):
    assert isinstance(warranty.add_months(date(2024, 1, 31), 1), date)
    assert warranty.add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)


def test_issue_filed_on_a_date_before_acceptance_is_not_a_warranty_issue(world):
    accepted = world.project.acceptance_actual
    assert warranty.after_works_route(world.project, "quality", "", accepted - timedelta(1)) is None
    assert warranty.after_works_route(world.project, "quality", "", accepted).is_warranty


def test_the_panels_project_form_checks_a_handover_by_the_same_rule(world, rf):
    """Saving 物业管理 without a property manager in the panel is refused beside the field."""
    from django.forms.models import model_to_dict

    from supervision.panel import panel

    request = rf.get("/panel/")
    request.user = world.bureau
    form_class = panel._registry[Project].get_form(request, world.project)
    data = {k: v for k, v in model_to_dict(world.project).items() if v is not None}
    data["departments"] = [d.pk for d in data.get("departments", [])]
    data.update(manager_kind=warranty.Manager.PROPERTY_MANAGER, handed_over_on=timezone.localdate())

    form = form_class(data, instance=world.project)

    assert not form.is_valid()
    assert form.errors["manager"] == ["物业管理须选择一家物业服务企业。"]
    data["manager"] = world.estate.pk
    assert form_class(data, instance=world.project).is_valid()


def test_staff_of_the_property_manager_see_its_issues_in_their_queue(world, client):
    accepted_ago(world, days=3 * 365)
    hand_over(world, on=timezone.localdate() - timedelta(days=30))
    issue = world.submit(category=Issue.Category.CIVILISED, title="楼道堆满杂物")
    assert issue.department == world.estate

    client.force_login(world.estate_staff)
    response = client.get("/panel/supervision/issue/")

    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [issue.pk]
