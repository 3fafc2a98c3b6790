"""One province, many counties (issue 23): each county runs its own programme. 瑞安's bureau and
supervisors reach nothing of 平阳县's — its issue, photos, steps, patrols, consultations,
surveys, supervisors, letters, in the pages, the filters, the exports, the JSON API and Open311
(404, as if it did not exist) — and hear nothing of it. The oversight of 温州市 above both reads
both, presses (督办) with a date, never takes a department's step; 平阳's bureau answers (回复督办)
and the oversight hears the answer.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.utils import timezone
from openpyxl import load_workbook

from accounts.models import User
from api.tokens import create_token
from supervision import exports, letters, residents, services, stats, surveys
from supervision.access import (
    consultation_projects,
    consultations_managed_by,
    letter_escalations_for,
    patrols_for,
    watched_projects,
)
from supervision.filters import IssueFilter, projects_of
from supervision.models import (
    Consultation,
    ConsultationItem,
    Department,
    Household,
    Issue,
    IssueEvent,
    Letter,
    Notification,
    Patrol,
    Photo,
    Project,
    Region,
    Subdistrict,
    Survey,
)

from .factories import (
    World,
    image_file,
    make_county,
    make_department,
    make_neighbourhood,
    make_project,
    make_subdistrict,
    make_supervisor,
    make_user,
)

S = Issue.Status
SECRET_B = "平阳县的秘密问题"
SECRET_A = "瑞安的城关问题"


@dataclass
class CountyB:
    """平阳县 under 温州市, beside 瑞安市: its own 城关街道, bureau, office, contractor, supervisor,
    project, and on it a non-public issue with a photo, an escalated letter, a consultation, a
    survey and a patrol. 瑞安 has a 城关街道 too, with an issue of its own."""

    county: Region
    chengguan: Subdistrict
    ruian_chengguan: Subdistrict
    bureau_dept: Department
    office: Department
    contractor: Department
    project: Project
    ruian_project: Project
    supervisor: User
    bureau: User
    office_staff: User
    issue: Issue
    ruian_issue: Issue
    photo: Photo
    letter: Letter
    consultation: Consultation
    survey: Survey
    patrol: Patrol


def _patrol(supervisor: User, project: Project) -> Patrol:
    checks = [
        residents.CheckInput(
            item=value,
            ok=value != Patrol.Check.FENCING,
            note="围挡倒了" if value == Patrol.Check.FENCING else "",
            photos=[image_file()] if value == Patrol.Check.FENCING else [],
        )
        for value in Patrol.Check.values
    ]
    return residents.log_patrol(supervisor=supervisor, project=project, checks=checks)


@pytest.fixture
def b(world: World, django_capture_on_commit_callbacks) -> CountyB:
    cache.clear()
    county = make_county("平阳县", "330326")
    chengguan = make_subdistrict("城关街道", "chengguan", region=county)
    ruian_chengguan = make_subdistrict("城关街道", "chengguan")
    bureau_dept = make_department("平阳县住房和城乡建设局", Department.Kind.BUREAU, region=county)
    office = make_department("城关街道办事处", subdistrict=chengguan)
    ruian_office = make_department("城关街道办事处", subdistrict=ruian_chengguan)
    contractor = make_department("平阳建工", Department.Kind.CONTRACTOR, region=county)
    project = make_project(make_neighbourhood(chengguan, "鳌江小区"), contractor=contractor)
    project.departments.add(office)
    ruian_project = make_project(make_neighbourhood(ruian_chengguan, "城关老街"))
    ruian_project.departments.add(ruian_office)
    world.alice.supervisor.projects.add(ruian_project)
    supervisor = make_supervisor("pingyang-jiandu", project.neighbourhood, [project])
    bureau = make_user("pingyang-zhujianju", role=User.Role.BUREAU, department=bureau_dept)
    office_staff = make_user("pingyang-chengguan", role=User.Role.STAFF, department=office)
    with django_capture_on_commit_callbacks(execute=True):
        issue = world.submit(
            reporter=supervisor, project=project, title=SECRET_B, photos=[image_file()]
        )
        ruian_issue = world.submit(project=ruian_project, title=SECRET_A)
        patrol = _patrol(supervisor, project)
        letter = letters.send_letter(
            project=project,
            summary="平阳的来信",
            mobile="13933330003",
            photos=[image_file()],
            sender_address="10.0.0.9",
        )
        letters.escalate_letter(letter, now=letters.escalation_due(letter) + timedelta(minutes=1))
    assert issue.department == office and not issue.is_public
    today = timezone.localdate()
    consultation = Consultation.objects.create(
        project=project,
        title="鳌江小区改造意愿征询",
        opens_on=today - timedelta(days=3),
        closes_on=today + timedelta(days=3),
    )
    ConsultationItem.objects.create(
        consultation=consultation, kind=ConsultationItem.Kind.SCOPE, area="building", text="外墙"
    )
    Household.objects.create(
        consultation=consultation,
        building="1幢",
        unit="1单元",
        room="101",
        code=residents.new_code(),
    )
    survey = Survey.objects.create(
        project=project,
        opens_on=today - timedelta(days=1),
        closes_on=today + timedelta(days=3),
        areas=["building"],
    )
    return CountyB(
        county=county,
        chengguan=chengguan,
        ruian_chengguan=ruian_chengguan,
        bureau_dept=bureau_dept,
        office=office,
        contractor=contractor,
        project=project,
        ruian_project=ruian_project,
        supervisor=supervisor,
        bureau=bureau,
        office_staff=office_staff,
        issue=issue,
        ruian_issue=ruian_issue,
        photo=issue.photos.get(),
        letter=letter,
        consultation=consultation,
        survey=survey,
        patrol=patrol,
    )


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _oversight(code: str = "330300") -> User:
    """温州市 (above 瑞安 and 平阳) or 浙江省: the oversight (上级主管部门)."""
    return make_user(
        f"oversight-{code}", role=User.Role.OVERSIGHT, region=Region.objects.get(code=code)
    )


RUIAN_PEOPLE = ("bureau", "alice")


# --- one issue of another county does not exist ------------------------------------------------


@pytest.mark.parametrize("who", RUIAN_PEOPLE)
def test_ruians_people_get_404_on_the_other_countys_issue_and_photo(world, b, who):
    client = _client(getattr(world, who))

    assert client.get(f"/issues/{b.issue.pk}/").status_code == 404
    assert client.get(f"/photos/{b.photo.pk}/").status_code == 404
    assert client.get(f"/photos/{b.photo.pk}/thumb/").status_code == 404
    # Their own county's 城关街道 issue they do see.
    page = client.get(f"/issues/{b.ruian_issue.pk}/")
    assert page.status_code == 200 and SECRET_A in page.content.decode()


@pytest.mark.parametrize("who", RUIAN_PEOPLE)
def test_ruians_people_take_no_step_on_the_other_countys_issue(world, b, who):
    client = _client(getattr(world, who))
    deadline = (timezone.localdate() + timedelta(days=7)).isoformat()
    steps = {
        "accept": {"deadline": deadline},
        "answer": {"text": "已纳入方案"},
        "reject": {"text": "重复"},
        "escalate": {"text": "请尽快处理", "deadline": deadline},
        "reply": {"text": "已督促"},
        "comment": {"text": "我也看到了"},
        "transfer": {"department": world.other_office.pk, "text": "转派"},
        "dispatch": {"department": world.contractor.pk},
        "support": {},
    }
    for step, data in steps.items():
        response = client.post(f"/issues/{b.issue.pk}/{step}/", data)
        assert response.status_code == 404, step
    b.issue.refresh_from_db()
    assert b.issue.status == S.SUBMITTED and b.issue.department == b.office
    assert b.issue.escalated_at is None
    assert list(b.issue.events.values_list("kind", flat=True)) == [IssueEvent.Kind.SUBMITTED]


def test_ruians_bureau_reaches_none_of_the_other_countys_project_pages(world, b):
    client = _client(world.bureau)
    acceptance_new = f"/projects/{b.project.pk}/acceptance/new/"
    assert client.get(acceptance_new).status_code == 404
    assert client.get(f"/projects/{b.project.pk}/survey/new/").status_code == 404
    assert client.post(f"/surveys/{b.survey.pk}/close/").status_code == 404
    assert client.get(f"/consultations/{b.consultation.pk}/slips/").status_code == 404
    assert client.get(f"/patrols/{b.patrol.pk}/").status_code == 404
    photo = b.patrol.checks.get(ok=False).photos.get()
    assert client.get(f"/patrols/photos/{photo.pk}/").status_code == 404
    certificate = f"/supervisors/{b.supervisor.supervisor.pk}/certificate/"
    assert client.get(certificate).status_code == 404
    b.survey.refresh_from_db()
    assert not b.survey.is_closed()
    # Its own county's are there.
    assert client.get(f"/projects/{world.project.pk}/survey/new/").status_code == 200
    own = f"/supervisors/{world.alice.supervisor.pk}/certificate/"
    assert client.get(own).status_code == 200
    # 平阳's bureau reaches its own.
    mine = _client(b.bureau)
    assert mine.get(f"/projects/{b.project.pk}/survey/new/").status_code == 200
    assert mine.get(f"/consultations/{b.consultation.pk}/slips/").status_code == 200
    assert mine.get(certificate).status_code == 200


def test_the_access_helpers_stay_within_the_county(world, b):
    for helper in (consultations_managed_by, consultation_projects, letter_escalations_for):
        assert b.project.pk not in {
            getattr(row, "project_id", row.pk) for row in helper(world.bureau)
        }, helper.__name__
    assert set(consultations_managed_by(b.bureau)) == {b.consultation}
    assert set(letter_escalations_for(b.bureau)) == {b.letter}
    assert set(consultation_projects(b.bureau)) == {b.project}
    for user in (world.bureau, world.alice):
        assert b.patrol not in set(patrols_for(user))
    assert set(patrols_for(b.bureau)) == {b.patrol}
    # An appointment on another county's project (made by mistake) gives nothing there.
    world.alice.supervisor.projects.add(b.project)
    assert b.project not in set(watched_projects(world.alice))
    with pytest.raises(services.WorkflowError):
        world.submit(project=b.project)
    form = _client(world.alice).get("/issues/new/").context["form"]
    assert b.project not in set(form.fields["project"].queryset)
    assert world.project in set(form.fields["project"].queryset)


# --- lists, filters, feed, exports ---------------------------------------------------------------


@pytest.mark.parametrize("who", RUIAN_PEOPLE)
def test_lists_and_the_feed_hold_nothing_of_the_other_county(world, b, who):
    client = _client(getattr(world, who))
    for path in ("/issues/", "/feed/", "/patrols/", "/issues/?q=秘密"):
        page = client.get(path).content.decode()
        assert SECRET_B not in page, path
        assert "鳌江小区" not in page, path
    assert SECRET_A in client.get("/issues/").content.decode()
    if who == "bureau":
        for path in ("/supervisors/", "/patrols/stale/", "/digest/", "/return-visits/missed/"):
            response = client.get(path)
            assert response.status_code == 200, path
            page = response.content.decode()
            assert "pingyang-jiandu" not in page and "鳌江小区" not in page, path


@pytest.mark.parametrize("who", RUIAN_PEOPLE)
def test_the_issue_lists_filters_offer_only_the_countys_choices(world, b, who):
    user = getattr(world, who)
    request = RequestFactory().get("/issues/")
    request.user = user
    form = IssueFilter(None, queryset=Issue.objects.all(), request=request).form
    subdistricts = set(form.fields["subdistrict"].queryset)
    departments = set(form.fields["department"].queryset)
    projects = set(form.fields["project"].queryset)
    assert b.chengguan not in subdistricts and b.ruian_chengguan in subdistricts
    assert not departments & {b.office, b.bureau_dept, b.contractor}
    assert world.office in departments
    assert b.project not in projects and b.ruian_project in projects
    assert b.project not in set(projects_of(user)[0])
    # The page: 平阳's 城关街道 and project are not among the options (瑞安's are).
    page = _client(user).get("/issues/", {"status": "submitted"}).content.decode()
    options = _options(page, "subdistrict")
    assert str(b.chengguan.pk) not in options and str(b.ruian_chengguan.pk) in options
    assert str(b.project.pk) not in _options(page, "project")
    assert str(b.office.pk) not in _options(page, "department")
    # Choosing the other county's subdistrict anyway is not a valid choice.
    refused = IssueFilter(
        {"subdistrict": b.chengguan.pk}, queryset=Issue.objects.all(), request=request
    )
    assert not refused.is_valid() and "subdistrict" in refused.errors


def _options(page: str, name: str) -> set[str]:
    """The values offered by the ``<select name=…>`` of the page."""
    found = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert found, name
    return set(re.findall(r'<option value="([^"]*)"', found.group(1)))


def test_the_oversight_chooses_among_the_counties_below_it(world, b):
    request = RequestFactory().get("/issues/")
    request.user = _oversight()
    form = IssueFilter(None, queryset=Issue.objects.all(), request=request).form
    assert {b.chengguan, b.ruian_chengguan} <= set(form.fields["subdistrict"].queryset)
    assert {b.project, b.ruian_project} <= set(form.fields["project"].queryset)


def _workbook_text(content: bytes) -> str:
    book = load_workbook(io.BytesIO(content), read_only=True)
    return "\n".join(
        str(cell)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for cell in row
        if cell is not None
    )


def test_an_export_by_ruians_bureau_holds_only_ruians_rows(world, b):
    response = _client(world.bureau).get("/dashboard/export.xlsx")
    assert response.status_code == 200
    text = _workbook_text(response.content)
    assert SECRET_A in text and SECRET_B not in text

    # The background writer narrows again to the requester, whatever the scope it is given.
    out = io.BytesIO()
    written = exports.write_dashboard(
        out,
        summary={"rows": [], "bold": []},
        scope="all",
        period=stats.Period(None, None, "全部"),
        requester=world.bureau,
    )
    text = _workbook_text(out.getvalue())
    assert SECRET_A in text and SECRET_B not in text
    assert written == Issue.objects.visible_to(world.bureau).count()
    # The oversight exports too, every county below it.
    oversight = _oversight()
    assert exports.may_export(oversight)
    out = io.BytesIO()
    exports.write_dashboard(
        out,
        summary={"rows": [], "bold": []},
        scope="all",
        period=stats.Period(None, None, "全部"),
        requester=oversight,
    )
    text = _workbook_text(out.getvalue())
    assert SECRET_A in text and SECRET_B in text


def test_a_coordinator_moved_to_another_county_loses_the_old_countys_export(world, b):
    job, created = exports.start_export(
        requester=world.bureau,
        kind="issues",
        issues=Issue.objects.visible_to(world.bureau),
        total=1,
        filename="x.xlsx",
    )
    assert created and exports.may_have(job, world.bureau)
    world.bureau.region = b.county
    world.bureau.save(update_fields=["region"])
    assert not exports.may_have(job, world.bureau)


def test_the_survey_ranking_of_a_bureau_is_its_countys(world, b):
    home = b.consultation.households.get()
    rating = surveys.Rating.SATISFIED
    surveys.answer_survey(b.survey, home, surveys.Answers(rating, rating, {"building": rating}))
    assert surveys.rankings(world.bureau) == {"contractors": [], "subdistricts": []}
    theirs = surveys.rankings(b.bureau)
    assert [row["name"] for row in theirs["subdistricts"]] == ["城关街道"]
    assert [row["name"] for row in theirs["contractors"]] == ["平阳建工"]
    assert surveys.rankings(_oversight())["subdistricts"] == theirs["subdistricts"]


# --- the JSON API and Open311 ------------------------------------------------------------------


def test_a_ruian_key_gets_404_on_the_other_countys_issue_in_the_api(world, b):
    _token, key = create_token(world.bureau, "测试")
    headers = {"Authorization": f"Bearer {key}"}
    client = Client()
    assert client.get(f"/api/v1/issues/{b.issue.pk}", headers=headers).status_code == 404
    own = client.get(f"/api/v1/issues/{b.ruian_issue.pk}", headers=headers)
    assert own.status_code == 200
    deadline = (timezone.localdate() + timedelta(days=7)).isoformat()
    accept = client.post(
        f"/api/v1/issues/{b.issue.pk}/accept",
        {"deadline": deadline},
        content_type="application/json",
        headers=headers,
    )
    assert accept.status_code == 404
    listed = client.get("/api/v1/issues", headers=headers).content.decode()
    assert SECRET_B not in listed and SECRET_A in listed
    assert client.get(f"/photos/{b.photo.pk}/", headers=headers).status_code == 404

    open311 = client.get(f"/open311/v2/requests/{b.issue.pk}.json", {"api_key": key})
    assert open311.status_code == 404
    own = client.get(f"/open311/v2/requests/{b.ruian_issue.pk}.json", {"api_key": key})
    assert own.status_code == 200
    rows = client.get("/open311/v2/requests.json", {"api_key": key}).json()
    assert str(b.issue.pk) not in {row["service_request_id"] for row in rows}

    # 平阳's bureau's key reads it.
    _token, mine = create_token(b.bureau, "测试")
    response = client.get(
        f"/api/v1/issues/{b.issue.pk}", headers={"Authorization": f"Bearer {mine}"}
    )
    assert response.status_code == 200


# --- notifications -------------------------------------------------------------------------------


def test_the_other_countys_news_reaches_its_own_bureau_only(
    world, b, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.escalate_issue(b.issue, actor=b.office_staff, text="请住建局协调")
        services.escalate_issue(b.ruian_issue, actor=None, text="")  # the overdue sweep
    pressed_b = b.issue.events.get(kind=IssueEvent.Kind.ESCALATED)
    pressed_a = b.ruian_issue.events.get(kind=IssueEvent.Kind.ESCALATED)
    assert Notification.objects.filter(event=pressed_b, recipient=b.bureau).exists()
    assert not Notification.objects.filter(event=pressed_b, recipient=world.bureau).exists()
    assert Notification.objects.filter(event=pressed_a, recipient=world.bureau).exists()
    assert not Notification.objects.filter(event=pressed_a, recipient=b.bureau).exists()
    assert not Notification.objects.filter(recipient=world.bureau, event__issue=b.issue).exists()


# --- the oversight -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["330300", "330000"])
def test_the_oversight_reads_both_counties_presses_and_hears_the_answer(
    world, b, code, django_capture_on_commit_callbacks
):
    oversight = _oversight(code)
    client = _client(oversight)
    assert client.get(f"/issues/{b.issue.pk}/").status_code == 200
    assert client.get(f"/issues/{b.ruian_issue.pk}/").status_code == 200
    assert client.get(f"/photos/{b.photo.pk}/").status_code == 200
    listed = client.get("/issues/").content.decode()
    assert SECRET_A in listed and SECRET_B in listed

    # Never a department's step.
    deadline = timezone.localdate() + timedelta(days=7)
    refused = client.post(f"/issues/{b.issue.pk}/accept/", {"deadline": deadline.isoformat()})
    assert refused.status_code == 403
    b.issue.refresh_from_db()
    assert b.issue.status == S.SUBMITTED

    # 督办 with a date for the county's bureau to answer by.
    with django_capture_on_commit_callbacks(execute=True):
        pressed = client.post(
            f"/issues/{b.issue.pk}/escalate/",
            {"text": "请平阳县住建局本周内回复", "deadline": deadline.isoformat()},
        )
    assert pressed.status_code in (200, 302)
    b.issue.refresh_from_db()
    assert b.issue.oversight_due_at is not None
    event = b.issue.events.get(kind=IssueEvent.Kind.ESCALATED)
    assert event.actor == oversight
    assert Notification.objects.filter(event=event, recipient=b.bureau).exists()
    assert not Notification.objects.filter(event=event, recipient=world.bureau).exists()

    # 瑞安's bureau cannot answer for 平阳; 平阳's bureau sees the reply step and answers.
    assert (
        _client(world.bureau).post(f"/issues/{b.issue.pk}/reply/", {"text": "x"}).status_code == 404
    )
    bureau = _client(b.bureau)
    page = bureau.get(f"/issues/{b.issue.pk}/")
    assert any(form.step == "reply" for form in page.context["step_forms"])
    with django_capture_on_commit_callbacks(execute=True):
        replied = bureau.post(f"/issues/{b.issue.pk}/reply/", {"text": "已督促街道三日内整改"})
    assert replied.status_code in (200, 302)
    b.issue.refresh_from_db()
    assert b.issue.oversight_due_at is None
    answer = b.issue.events.get(kind=IssueEvent.Kind.OVERSIGHT_REPLIED)
    assert Notification.objects.filter(event=answer, recipient=oversight).exists()
    assert not Notification.objects.filter(event=answer, recipient=world.bureau).exists()


# --- appointing supervisors ------------------------------------------------------------------------


def _appointment(neighbourhood, projects, n: int) -> dict:
    return {
        "display_name": f"新监督员{n}",
        "username": f"new-jiandu-{n}",
        "mobile": f"1390000000{n}",
        "password": "correct-horse-7",
        "neighbourhood": neighbourhood,
        "projects": projects,
        "appointed_on": timezone.localdate(),
        "term_ends_on": timezone.localdate() + timedelta(days=365),
        "certificate_number": f"RAJD-NEW-{n}",
    }


def test_a_bureau_appoints_only_within_its_county(world, b):
    with pytest.raises(services.WorkflowError) as refused:
        residents.appoint_supervisor(
            actor=world.bureau, **_appointment(b.project.neighbourhood, [b.project], 1)
        )
    assert refused.value.status_code == 403
    with pytest.raises(services.WorkflowError) as refused:
        residents.appoint_supervisor(
            actor=world.bureau,
            **_appointment(world.project.neighbourhood, [world.project, b.project], 2),
        )
    assert refused.value.field == "projects"
    assert not User.objects.filter(username__startswith="new-jiandu").exists()
    with pytest.raises(services.WorkflowError):
        residents.dismiss_supervisor(b.supervisor.supervisor, actor=world.bureau)
    appointed = residents.appoint_supervisor(
        actor=b.bureau, **_appointment(b.project.neighbourhood, [b.project], 3)
    )
    assert appointed.user.region == b.county


def test_the_oversight_presses_and_the_bureau_answers_through_the_api(db, client):
    """上级督办 and 回复督办 as an app would send them: a date is asked of the oversight."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import User
    from api.tokens import create_token
    from supervision.models import Issue, Region

    from .factories import make_second_county, make_user, make_world

    make_world()
    county = make_second_county()
    issue = county["issues"][1]
    shengting = make_user(
        "shengting-api", role=User.Role.OVERSIGHT, region=Region.objects.get(code="330000")
    )
    _token, token = create_token(shengting, "省厅")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    url = f"/api/v1/issues/{issue.pk}/escalate"
    undated = client.post(url, {"text": "请尽快签收"}, content_type="application/json", **auth)
    assert undated.status_code == 400
    due = (timezone.localdate() + timedelta(days=3)).isoformat()
    pressed = client.post(
        url, {"text": "请尽快签收", "deadline": due}, content_type="application/json", **auth
    )
    assert pressed.status_code == 200, pressed.content
    issue.refresh_from_db()
    assert issue.oversight_due_at is not None
    refused = client.post(
        f"/api/v1/issues/{issue.pk}/accept", {}, content_type="application/json", **auth
    )
    assert refused.status_code == 403
    _token, bureau_token = create_token(county["bureau"], "西湖")
    answered = client.post(
        f"/api/v1/issues/{issue.pk}/reply",
        {"text": "已督促街道今天签收"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {bureau_token}",
    )
    assert answered.status_code == 200, answered.content
    assert Issue.objects.get(pk=issue.pk).oversight_due_at is None
