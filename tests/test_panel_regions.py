"""/panel/ across counties (issue 23): a county's bureau keeps its own programme and sees
nothing of another county's. Another county's object is missing (404), is listed nowhere, is no
choice in any form or list filter, and a posted id of it is refused. 瑞安市 and 乐清市 (both
under 温州市) each have a 城关街道 with a 城关街道办事处, so that names tell nothing apart."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from openpyxl import load_workbook

from accounts.models import User
from supervision import services
from supervision.models import (
    CalendarChange,
    Consultation,
    Delivery,
    Department,
    ExtensionRequest,
    Issue,
    Letter,
    Project,
    Region,
    ResponseTemplate,
    RoutingRule,
    Subdistrict,
    Supervisor,
)

from .factories import (
    World,
    make_county,
    make_department,
    make_neighbourhood,
    make_project,
    make_subdistrict,
    make_supervisor,
    make_user,
)

PANEL = "/panel/supervision"


@dataclass
class County:
    """What one county holds, one of each kind the panel shows."""

    region: Region
    chengguan: Subdistrict
    office: Department
    contractor: Department
    bureau_dept: Department
    bureau: User
    project: Project
    supervisor: User
    issue: Issue
    extension: ExtensionRequest
    rule: RoutingRule
    template: ResponseTemplate
    consultation: Consultation
    letter: Letter
    delivery: Delivery


def fill(world: World, region: Region, *, bureau: User | None, suffix: str) -> County:
    """A 城关街道 (and a 城南街道) with its office, a contractor, a project on it with a supervisor and an issue
    (accepted, with an extension asked), a routing rule, a template, a consultation, an
    escalated letter and a delivery; the county's bureau (瑞安's is ``world``'s)."""
    chengguan = make_subdistrict("城关街道", "chengguan", region=region)
    office = make_department("城关街道办事处", subdistrict=chengguan)
    contractor = make_department(f"{suffix}建设", Department.Kind.CONTRACTOR, region=region)
    if bureau is None:
        bureau_dept = make_department(f"{suffix}住建局", Department.Kind.BUREAU, region=region)
        bureau = make_user(f"{suffix}-bureau", role=User.Role.BUREAU, department=bureau_dept)
    project = make_project(make_neighbourhood(chengguan, "东门小区"), contractor=contractor)
    project.departments.set([office])
    # A second subdistrict and project, so that the sidebar's filters have two to show.
    make_project(make_neighbourhood(make_subdistrict("城南街道", "chengnan", region), "西门小区"))
    supervisor = make_supervisor(f"{suffix}-jiandu", project.neighbourhood, [project])
    staff = make_user(f"{suffix}-cg", role=User.Role.STAFF, department=office)
    issue = world.submit(reporter=supervisor, project=project, title=f"{suffix}东门楼道渗水")
    assert issue.department == office  # routed within its county
    issue = services.accept_issue(issue, actor=staff)
    extension = services.request_extension(
        issue, actor=staff, until=timezone.localdate() + timedelta(days=40), text="材料未到"
    )
    today = timezone.localdate()
    consultation = Consultation.objects.create(
        project=project,
        title=f"{suffix}东门小区改造意愿征询",
        opens_on=today - timedelta(days=3),
        closes_on=today + timedelta(days=3),
    )
    return County(
        region=region,
        chengguan=chengguan,
        office=office,
        contractor=contractor,
        bureau_dept=bureau.department,
        bureau=bureau,
        project=project,
        supervisor=supervisor,
        issue=issue,
        extension=extension,
        rule=RoutingRule.objects.create(
            subdistrict=chengguan, category="safety", department=office
        ),
        template=ResponseTemplate.objects.create(
            department=office, title=f"{suffix}回复", text="已收到。"
        ),
        consultation=consultation,
        letter=Letter.objects.create(
            project=project,
            code=f"{suffix[:2].upper()}001",
            summary="楼道灯不亮",
            escalated_at=timezone.now(),
        ),
        delivery=Delivery.objects.create(
            channel=Delivery.Channel.EMAIL,
            target=f"{suffix}@example.com",
            subject=f"{suffix} 新问题",
            body="b",
            event=issue.events.first(),
        ),
    )


@pytest.fixture
def ruian(world: World) -> County:
    return fill(world, Region.objects.ruian(), bureau=world.bureau, suffix="ra")


@pytest.fixture
def yueqing(world: World, ruian: County) -> County:
    return fill(world, make_county("乐清市", "330382"), bureau=None, suffix="yq")


def objects_of(county: County) -> dict[str, object]:
    """Each panel model's object of ``county``."""
    return {
        "issue": county.issue,
        "project": county.project,
        "department": county.office,
        "supervisor": county.supervisor.supervisor,
        "routingrule": county.rule,
        "responsetemplate": county.template,
        "extensionrequest": county.extension,
        "consultation": county.consultation,
        "letter": county.letter,
        "delivery": county.delivery,
    }


def changelist(model: str) -> str:
    """A model's changelist, for the issues every one of them (not only the work queue)."""
    return f"{PANEL}/{model}/" + ("?queue=all" if model == "issue" else "")


def listed(response) -> set[int]:
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def choices(response, field: str) -> set[int]:
    """The primary keys a form's select offers."""
    form = response.context["adminform"].form
    return {int(value.value) for value, _label in form.fields[field].choices if value}


def filter_choices(response, title: str) -> list[str]:
    """The labels of a list filter in the changelist's sidebar."""
    for spec in response.context["cl"].filter_specs:
        if str(spec.title) == title:
            shown = [str(c["display"]) for c in spec.choices(response.context["cl"])][1:]
            return [label for label in shown if label != "未指定"]  # the empty choice
    return []  # not shown: one choice or none (Django hides such a filter)


SIDES = [("ruian", "yueqing"), ("yueqing", "ruian")]


# --- lists and pages ---------------------------------------------------------------------------


@pytest.mark.parametrize(("mine", "theirs"), SIDES)
def test_each_changelist_lists_the_own_county_only(client, ruian, yueqing, mine, theirs):
    counties = {"ruian": ruian, "yueqing": yueqing}
    client.force_login(counties[mine].bureau)
    own, other = objects_of(counties[mine]), objects_of(counties[theirs])
    for model in own:
        shown = listed(client.get(changelist(model)))
        assert own[model].pk in shown, model
        assert other[model].pk not in shown, model


@pytest.mark.parametrize(("mine", "theirs"), SIDES)
def test_another_countys_objects_are_missing(client, ruian, yueqing, mine, theirs):
    counties = {"ruian": ruian, "yueqing": yueqing}
    client.force_login(counties[mine].bureau)
    for model, obj in objects_of(counties[theirs]).items():
        for view in ("change", "history", "delete"):
            url = f"{PANEL}/{model}/{obj.pk}/{view}/"
            assert client.get(url).status_code in (403, 404), url
        assert client.get(f"{PANEL}/{model}/{obj.pk}/change/").status_code == 404, model
    own = objects_of(counties[mine])
    for model in ("issue", "project", "department", "supervisor", "routingrule", "letter"):
        assert client.get(f"{PANEL}/{model}/{own[model].pk}/change/").status_code == 200


def test_consultation_import_page_of_another_county_is_missing(client, ruian, yueqing):
    client.force_login(ruian.bureau)
    url = f"{PANEL}/consultation/{yueqing.consultation.pk}/import/"
    assert client.get(url).status_code == 404
    assert client.get(f"{PANEL}/consultation/{ruian.consultation.pk}/import/").status_code == 200


def test_a_superuser_sees_every_county(client, ruian, yueqing):
    admin = User.objects.create_superuser("root", password="x" * 12)
    client.force_login(admin)
    for model in objects_of(ruian):
        shown = listed(client.get(changelist(model)))
        assert {objects_of(ruian)[model].pk, objects_of(yueqing)[model].pk} <= shown, model


# --- the queue ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("mine", "theirs"), SIDES)
def test_the_queue_and_its_filters_keep_to_the_county(client, ruian, yueqing, mine, theirs):
    counties = {"ruian": ruian, "yueqing": yueqing}
    own, other = counties[mine], counties[theirs]
    client.force_login(own.bureau)

    response = client.get(f"{PANEL}/issue/")  # the work queue
    assert own.issue.pk in listed(response)
    assert other.issue.pk not in listed(response)
    assert (
        response.context["cl"].result_count
        == Issue.objects.filter(
            project__neighbourhood__subdistrict__region=own.region, due_at__isnull=False
        ).count()
    )
    # One 城关街道 in the sidebar, the own one; the own departments and projects only.
    subdistricts = filter_choices(response, "街道")
    assert subdistricts.count("城关街道") == 1
    own_subdistricts = set(
        Subdistrict.objects.filter(region=own.region).values_list("name", flat=1)
    )
    assert set(subdistricts) == own_subdistricts
    departments = filter_choices(response, "承办部门")
    assert set(departments) == set(
        Department.objects.filter(region=own.region).values_list("name", flat=True)
    )
    projects = filter_choices(response, "项目")
    assert own.project.name in projects  # both are 东门小区改造: count them
    assert projects.count(own.project.name) == 1

    # Asking for the other county's subdistrict or project finds nothing.
    for query in (
        f"project__neighbourhood__subdistrict__id__exact={other.chengguan.pk}",
        f"project__id__exact={other.project.pk}",
        f"department__id__exact={other.office.pk}",
        f"q={other.issue.reference}",
        "q=东门",
    ):
        assert other.issue.pk not in listed(client.get(f"{PANEL}/issue/?{query}")), query
    assert own.issue.pk in listed(client.get(f"{PANEL}/issue/?q=东门"))


def test_other_changelists_filters_list_the_own_county_only(client, ruian, yueqing):
    client.force_login(ruian.bureau)
    own_names = set(Subdistrict.objects.filter(region=ruian.region).values_list("name", flat=True))
    for model in ("project", "supervisor", "routingrule", "department"):
        response = client.get(f"{PANEL}/{model}/")
        subdistricts = filter_choices(response, "街道")
        assert subdistricts.count("城关街道") == 1, model
        assert set(subdistricts) == own_names, model


# --- actions and exports -----------------------------------------------------------------------


def act(client, model: str, action: str, *objects, **extra):
    data = {"action": action, "_selected_action": [o.pk for o in objects], "index": "0"}
    data.update(extra)
    return client.post(f"{PANEL}/{model}/", data)


def test_actions_on_another_countys_rows_do_nothing(client, world, ruian, yueqing):
    client.force_login(ruian.bureau)
    fresh = world.submit(reporter=yueqing.supervisor, project=yueqing.project, title="乐清新问题")
    act(client, "issue", "accept_selected", fresh)
    act(client, "issue", "make_public", yueqing.issue)
    act(client, "extensionrequest", "grant", yueqing.extension)
    act(client, "supervisor", "dismiss", yueqing.supervisor.supervisor)

    fresh.refresh_from_db()
    yueqing.issue.refresh_from_db()
    yueqing.extension.refresh_from_db()
    assert fresh.status == Issue.Status.SUBMITTED
    assert yueqing.issue.is_public is False
    assert yueqing.extension.status == ExtensionRequest.Status.PENDING
    assert Supervisor.objects.get(user=yueqing.supervisor).is_active


def test_the_export_holds_the_own_county_only(client, ruian, yueqing):
    client.force_login(ruian.bureau)
    response = act(client, "issue", "export_xlsx", ruian.issue, yueqing.issue, select_across="1")
    rows = list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    cells = {str(cell) for row in rows for cell in row}
    assert ruian.issue.reference in cells
    assert yueqing.issue.reference not in cells


# --- forms: choices and posted ids -------------------------------------------------------------


@pytest.mark.parametrize(("mine", "theirs"), SIDES)
def test_forms_offer_the_own_county_only(client, ruian, yueqing, mine, theirs):
    counties = {"ruian": ruian, "yueqing": yueqing}
    own, other = counties[mine], counties[theirs]
    client.force_login(own.bureau)
    own_departments = set(Department.objects.filter(region=own.region).values_list("pk", flat=1))
    own_subdistricts = set(Subdistrict.objects.filter(region=own.region).values_list("pk", flat=1))

    department = client.get(f"{PANEL}/department/add/")
    assert choices(department, "region") == {own.region.pk}
    assert department.context["adminform"].form.initial["region"] == own.region.pk
    assert choices(department, "subdistrict") == own_subdistricts

    rule = client.get(f"{PANEL}/routingrule/add/")
    assert choices(rule, "subdistrict") == own_subdistricts
    assert choices(rule, "department") == own_departments

    project = client.get(f"{PANEL}/project/{own.project.pk}/change/")
    assert other.project.neighbourhood.pk not in choices(project, "neighbourhood")
    assert own.project.neighbourhood.pk in choices(project, "neighbourhood")
    assert choices(project, "contractor") <= own_departments
    assert own.contractor.pk in choices(project, "contractor")
    assert choices(project, "departments") == own_departments
    warranty = project.context["inline_admin_formsets"][0].formset.forms
    assert all(
        {int(v.value) for v, _ in form.fields["warranty_contractor"].choices if v}
        <= own_departments
        for form in warranty
    )

    template = client.get(f"{PANEL}/responsetemplate/add/")
    assert choices(template, "department") == own_departments

    appoint = client.get(f"{PANEL}/supervisor/add/")
    assert own.project.neighbourhood.pk in choices(appoint, "neighbourhood")
    assert other.project.neighbourhood.pk not in choices(appoint, "neighbourhood")
    assert own.project.pk in choices(appoint, "projects")
    assert other.project.pk not in choices(appoint, "projects")

    consultation = client.get(f"{PANEL}/consultation/{own.consultation.pk}/change/")
    assert own.project.pk in choices(consultation, "project")
    assert other.project.pk not in choices(consultation, "project")


def test_posting_another_countys_ids_is_refused(client, ruian, yueqing):
    client.force_login(ruian.bureau)
    rules = RoutingRule.objects.count()

    response = client.post(
        f"{PANEL}/routingrule/add/",
        {"subdistrict": yueqing.chengguan.pk, "category": "quality", "department": ruian.office.pk},
    )
    assert response.status_code == 200 and response.context["adminform"].form.errors
    response = client.post(
        f"{PANEL}/routingrule/add/",
        {"subdistrict": ruian.chengguan.pk, "category": "quality", "department": yueqing.office.pk},
    )
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert RoutingRule.objects.count() == rules

    response = client.post(
        f"{PANEL}/department/add/",
        {"region": yueqing.region.pk, "name": "乐清某单位", "kind": "utility", "is_active": "on"},
    )
    assert response.status_code == 200 and "region" in response.context["adminform"].form.errors
    response = client.post(
        f"{PANEL}/department/add/",
        {
            "region": ruian.region.pk,
            "name": "城关街道第二办事处",
            "kind": "subdistrict_office",
            "subdistrict": yueqing.chengguan.pk,
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "subdistrict" in response.context["adminform"].form.errors
    assert not Department.objects.filter(name__in=["乐清某单位", "城关街道第二办事处"]).exists()

    response = client.post(
        f"{PANEL}/responsetemplate/add/",
        {"title": "越界", "step": "", "text": "x", "department": yueqing.office.pk, "position": 0},
    )
    assert response.status_code == 200
    assert not ResponseTemplate.objects.filter(title="越界").exists()

    response = client.get(f"{PANEL}/project/{ruian.project.pk}/change/")
    form = response.context["adminform"].form
    data = {
        name: form[name].value() for name in form.fields if form[name].value() not in (None, "")
    }
    data["departments"] = [yueqing.office.pk]
    data["contractor"] = yueqing.contractor.pk
    prefix = response.context["inline_admin_formsets"][0].formset.prefix
    data.update(
        {f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 0}
    )
    response = client.post(f"{PANEL}/project/{ruian.project.pk}/change/", data)
    assert response.status_code == 200
    assert {"departments", "contractor"} <= set(response.context["adminform"].form.errors)
    ruian.project.refresh_from_db()
    assert ruian.project.contractor == ruian.contractor
    assert list(ruian.project.departments.all()) == [ruian.office]


def test_changing_another_countys_object_is_missing_and_changes_nothing(client, ruian, yueqing):
    client.force_login(ruian.bureau)
    response = client.post(
        f"{PANEL}/department/{yueqing.office.pk}/change/",
        {"region": ruian.region.pk, "name": "改过了", "kind": "utility", "is_active": "on"},
    )
    assert response.status_code == 404
    response = client.post(f"{PANEL}/routingrule/{yueqing.rule.pk}/delete/", {"post": "yes"})
    assert response.status_code == 404
    yueqing.office.refresh_from_db()
    assert yueqing.office.name == "城关街道办事处"
    assert RoutingRule.objects.filter(pk=yueqing.rule.pk).exists()


def test_what_a_countys_bureau_adds_lands_in_its_county(client, ruian, yueqing):
    client.force_login(yueqing.bureau)
    response = client.post(
        f"{PANEL}/department/add/",
        {"region": yueqing.region.pk, "name": "乐清水务", "kind": "utility", "is_active": "on"},
    )
    assert response.status_code == 302
    assert Department.objects.get(name="乐清水务").region == yueqing.region

    response = client.post(
        f"{PANEL}/supervisor/add/",
        {
            "display_name": "乐清监督员",
            "username": "yq-new",
            "mobile": "13900000001",
            "password": "renovate-2023",
            "neighbourhood": yueqing.project.neighbourhood.pk,
            "projects": [yueqing.project.pk],
            "appointed_on": "2026-01-05",
            "term_ends_on": "2028-01-04",
            "certificate_number": "YQJD-001",
        },
    )
    assert response.status_code == 302
    assert User.objects.get(username="yq-new").region == yueqing.region

    response = client.post(
        f"{PANEL}/supervisor/add/",
        {
            "display_name": "越界监督员",
            "username": "yq-wrong",
            "mobile": "13900000002",
            "password": "renovate-2023",
            "neighbourhood": ruian.project.neighbourhood.pk,
            "projects": [ruian.project.pk],
            "appointed_on": "2026-01-05",
            "term_ends_on": "2028-01-04",
            "certificate_number": "YQJD-002",
        },
    )
    assert response.status_code == 200
    assert {"neighbourhood", "projects"} <= set(response.context["adminform"].form.errors)
    assert not User.objects.filter(username="yq-wrong").exists()


# --- what is everyone's ------------------------------------------------------------------------


def test_shared_templates_are_read_by_every_county_and_changed_by_a_superuser(
    client, ruian, yueqing
):
    shared = ResponseTemplate.objects.create(department=None, title="通用", text="已收到。")
    for county in (ruian, yueqing):
        client.force_login(county.bureau)
        assert shared.pk in listed(client.get(f"{PANEL}/responsetemplate/"))
        response = client.post(
            f"{PANEL}/responsetemplate/{shared.pk}/change/",
            {"title": "改过了", "step": "", "text": "x", "position": 0},
        )
        assert response.status_code == 403
    shared.refresh_from_db()
    assert shared.title == "通用"


def test_the_calendar_is_everyones(client, ruian, yueqing):
    """The working-day calendar is one for the whole province (its model has no region): every
    county's bureau reads and keeps it."""
    day_off = CalendarChange.objects.create(day=date(2090, 1, 3), note="台风停工")
    for county in (ruian, yueqing):
        client.force_login(county.bureau)
        assert day_off.pk in listed(client.get(f"{PANEL}/calendarchange/"))


def test_deliveries_without_an_issue_follow_whom_they_were_sent_to(client, ruian, yueqing):
    yueqing.bureau.email = "yq-bureau@example.com"
    yueqing.bureau.save()
    export_ready = Delivery.objects.create(
        channel=Delivery.Channel.EMAIL, target=yueqing.bureau.email, subject="导出完成", body="b"
    )
    nobodys = Delivery.objects.create(
        channel=Delivery.Channel.EMAIL, target="x@example.com", subject="?", body="b"
    )
    client.force_login(yueqing.bureau)
    shown = listed(client.get(f"{PANEL}/delivery/"))
    assert export_ready.pk in shown and nobodys.pk not in shown
    client.force_login(ruian.bureau)
    shown = listed(client.get(f"{PANEL}/delivery/"))
    assert export_ready.pk not in shown and nobodys.pk not in shown


# --- the oversight -----------------------------------------------------------------------------


def test_the_oversight_has_no_panel(client, ruian, yueqing):
    wenzhou = Region.objects.get(code="330300")
    oversight = make_user("wz-oversight", role=User.Role.OVERSIGHT, region=wenzhou)
    client.force_login(oversight)
    pages = ["/panel/", *(changelist(model) for model in objects_of(ruian))]
    pages += [f"{PANEL}/issue/{ruian.issue.pk}/change/", f"{PANEL}/calendarchange/"]
    for url in pages:
        response = client.get(url, follow=True)
        # Round the panel's login to 我的 (and on to the issues): never a panel page.
        assert response.redirect_chain, url
        assert not response.request["PATH_INFO"].startswith("/panel/"), url
    before = Department.objects.count()
    client.post(
        f"{PANEL}/department/add/", {"region": ruian.region.pk, "name": "x", "kind": "utility"}
    )
    assert Department.objects.count() == before


# --- how the queue is read ---------------------------------------------------------------------


def queue_plan(client, user) -> str:
    """SQLite's plan of the work queue's listing as ``user`` sees it (one page of 50)."""
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"{PANEL}/issue/").status_code == 200
    listing = next(
        q["sql"]
        for q in queries.captured_queries
        if 'ORDER BY "supervision_issue"."urgency" DESC' in q["sql"]
    )
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {listing} LIMIT 50")
        return " ".join(str(row) for row in cursor.fetchall())


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL plans by statistics")
def test_the_whole_provinces_queue_is_read_through_the_queue_index(client, ruian, yueqing):
    admin = User.objects.create_superuser("root", password="x" * 12)
    plan = queue_plan(client, admin)
    assert "supervision_issue_queue_idx" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_starting_a_consultation_offers_the_own_countys_projects(client, ruian, yueqing):
    client.force_login(ruian.bureau)
    response = client.get(f"{PANEL}/consultation/add/")
    offered = {int(v.value) for v, _ in response.context["form"].fields["project"].choices if v}
    assert ruian.project.pk in offered
    assert yueqing.project.pk not in offered


def test_autocomplete_finds_the_own_countys_rows_only(client, ruian, yueqing):
    client.force_login(ruian.bureau)
    response = client.get(
        "/panel/autocomplete/",
        {
            "term": "东门",
            "app_label": "supervision",
            "model_name": "issue",
            "field_name": "project",
        },
    )
    found = {int(row["id"]) for row in response.json()["results"]}
    assert found == {ruian.project.pk}
