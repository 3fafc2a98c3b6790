"""/panel/: the department panel. Staff see their department's issues (contractor staff: what was
dispatched to their company), the bureau sees everything and keeps routing rules, the calendar,
departments and deliveries. Anything outside a user's scope is a 404, and nothing a user may not
do changes anything. Each test checks the response, then what was saved, then the events, then
the notifications."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone
from openpyxl import load_workbook

from accounts.models import User
from supervision import services
from supervision.models import (
    CalendarChange,
    Delivery,
    ExtensionRequest,
    Issue,
    IssueEvent,
    Notification,
    ResponseTemplate,
    RoutingRule,
)
from supervision.panel import panel
from supervision.workdays import end_of_working_day

from .factories import PASSWORD, World

S = Issue.Status
Kind = IssueEvent.Kind
ISSUES = "/panel/supervision/issue/"
EXTENSIONS = "/panel/supervision/extensionrequest/"
TEMPLATES = "/panel/supervision/responsetemplate/"


# --- helpers -----------------------------------------------------------------------------------


def page_of(response) -> str:
    return response.content.decode()


def events_of(issue: Issue) -> list[str]:
    return list(issue.events.order_by("created_at", "pk").values_list("kind", flat=True))


def as_user(client, user):
    client.logout()
    if user is not None:
        client.force_login(user)
    return client


def listed(response) -> list[int]:
    """The primary keys on a changelist page, in the order shown."""
    return [obj.pk for obj in response.context["cl"].result_list]


def act(client, url: str, action: str, *objects, **extra):
    """Post a changelist action on ``objects``, as the panel's action bar does."""
    data = {"action": action, "_selected_action": [obj.pk for obj in objects], "index": "0"}
    data.update(extra)
    return client.post(url, data)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def sheet_rows(response) -> list[tuple]:
    assert response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    book = load_workbook(io.BytesIO(response.content))
    return list(book.active.iter_rows(values_only=True))


def notified(event: IssueEvent) -> set[str]:
    return set(
        Notification.objects.filter(event=event).values_list("recipient__username", flat=True)
    )


def snapshot() -> dict[str, list[dict]]:
    """Every row of the application and every account, to compare before and after."""
    models = [*apps.get_app_config("supervision").get_models(), User]
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in models}


def panel_routes(patterns=None, prefix: str = ""):
    """Every named URL pattern of the panel: (name, route)."""
    for pattern in panel.get_urls() if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from panel_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield pattern.name, prefix + str(pattern.pattern)


# --- the scene ---------------------------------------------------------------------------------


@dataclass
class Scene:
    mine: Issue  # Alice's, submitted, with the 安阳 office
    dispatched: Issue  # Alice's, accepted by the 安阳 office and dispatched to 宏程
    theirs: Issue  # Bob's, with the 玉海 office, accepted there
    anyang_extension: ExtensionRequest
    yuhai_extension: ExtensionRequest
    anyang_template: ResponseTemplate
    yuhai_template: ResponseTemplate
    rule: RoutingRule
    day_off: CalendarChange
    delivery: Delivery


@pytest.fixture
def scene(world: World) -> Scene:
    later = timezone.localdate() + timedelta(days=40)
    mine = world.submit(title="楼道灯不亮")
    dispatched = world.issue_in(S.IN_PROGRESS, title="雨水管脱落")
    theirs = services.accept_issue(
        world.submit(reporter=world.bob, project=world.other_project, title="玉海路面积水"),
        actor=world.other_staff,
    )
    return Scene(
        mine=mine,
        dispatched=dispatched,
        theirs=theirs,
        anyang_extension=services.request_extension(
            dispatched, actor=world.handler, until=later, text="雨季无法施工"
        ),
        yuhai_extension=services.request_extension(
            theirs, actor=world.other_staff, until=later, text="材料未到"
        ),
        anyang_template=ResponseTemplate.objects.create(
            department=world.office, title="已转施工单位", text="已转施工单位处理。"
        ),
        yuhai_template=ResponseTemplate.objects.create(
            department=world.other_office, title="玉海回复", text="玉海街道已收到。"
        ),
        rule=RoutingRule.objects.create(
            subdistrict=world.yuhai, category="", department=world.other_office
        ),
        day_off=CalendarChange.objects.create(day=date(2026, 9, 15), note="台风停工"),
        # About one of Ruian's issues: a county's bureau sees the deliveries of its own issues
        # and to its own people, not an email to nobody about nothing (test_panel_regions.py).
        delivery=Delivery.objects.create(
            channel=Delivery.Channel.EMAIL,
            target="a@example.com",
            subject="s",
            body="b",
            event=mine.events.first(),
        ),
    )


def foreign_objects(world: World, scene: Scene, role: str) -> dict:
    """For each panel model, an object outside ``role``'s scope (for the bureau: anything)."""
    if role == "other_staff":
        scoped = {
            "issue": scene.dispatched,
            "project": world.project,
            "extensionrequest": scene.anyang_extension,
            "responsetemplate": scene.anyang_template,
            "department": world.office,
        }
    else:
        scoped = {
            "issue": scene.theirs,
            "project": world.other_project,
            "extensionrequest": scene.yuhai_extension,
            "responsetemplate": scene.yuhai_template,
            "department": world.other_office,
        }
    return {
        **scoped,
        "routingrule": scene.rule,
        "calendarchange": scene.day_off,
        "delivery": scene.delivery,
    }


MISSING_PK = 999_999  # the object of a model this file does not know: one that does not exist


def model_of(name: str) -> str:
    """``supervision_issue_change`` → ``issue``; '' for the site's own pages."""
    return name.split("_")[1] if name.startswith("supervision_") else ""


def panel_url(name: str, route: str, objects: dict) -> str:
    if name == "app_list":
        return reverse("panel:app_list", args=["supervision"])
    if name == "view_on_site":
        issue = objects["issue"]
        return reverse(
            "panel:view_on_site", args=[ContentType.objects.get_for_model(Issue).pk, issue.pk]
        )
    model = model_of(name)
    pk = objects[model].pk if model in objects else MISSING_PK
    # Every parameter of a model's address names its object (object_id, or pk for a model's
    # own extra pages such as an import).
    kwargs = {param: pk for param in re.findall(r"<(?:\w+:)?(\w+)>", route)}
    return reverse(f"panel:{name}", kwargs=kwargs)


# --- walking every panel address as every role -------------------------------------------------

SITE_PAGES = {"index", "app_list", "password_change", "password_change_done", "jsi18n"}
KNOWN_MODELS = {
    "issue",
    "project",
    "routingrule",
    "calendarchange",
    "extensionrequest",
    "responsetemplate",
    "department",
    "delivery",
}
STAFF_MODELS = {"issue", "project", "extensionrequest", "responsetemplate"}
BUREAU_EDITS = {"routingrule", "calendarchange", "department", "responsetemplate"}
ANY_ANSWER = set(range(200, 500))  # not a server error; nothing more is known


def expected_get(role: str, name: str, route: str) -> set[int]:
    """What a GET answers to a department user or the bureau, outside their scope."""
    if name in SITE_PAGES:
        return {200}
    if name == "login":
        return {302, 404}  # never the login form to someone already logged in
    if name == "logout":
        return {405}  # POST only
    if name == "autocomplete":
        return {403}  # no field to complete
    if name == "view_on_site":
        return {302}  # to the issue page, which decides (see the test below)
    model, view = model_of(name), name.split("_", 2)[2]
    if model not in KNOWN_MODELS:
        # A model added to the panel since: its objects are addressed by MISSING_PK.
        return {403, 404} if "<" in route else ANY_ANSWER
    if role == "bureau":
        if view in ("changelist", "change", "history") or model in BUREAU_EDITS:
            return {200}
        return {403}
    if model not in STAFF_MODELS:
        return {403}
    if view == "changelist":
        return {200}
    if view == "add":
        return {200} if model == "responsetemplate" else {403}
    return {404}


def test_panel_routes_cover_every_registered_model():
    names = {name for name, _ in panel_routes()}
    for model in panel._registry:
        for view in ("changelist", "add", "change", "history", "delete"):
            assert f"supervision_{model._meta.model_name}_{view}" in names
    assert {"index", "login", "logout", "view_on_site", "app_list", "autocomplete"} <= names


@pytest.mark.parametrize("role", [None, "alice"])
def test_anonymous_and_supervisors_get_nothing_from_any_panel_address(world, scene, client, role):
    as_user(client, getattr(world, role) if role else None)
    objects = foreign_objects(world, scene, "handler")
    before = snapshot()

    for name, route in panel_routes():
        url = panel_url(name, route, objects)
        for method in ("get", "post"):
            if method == "post" and name == "logout":
                continue
            response = getattr(client, method)(
                url, {"post": "yes", "action": "delete_selected", "_selected_action": 1}
            )
            where = f"{method.upper()} {url}"
            assert response.status_code != 200, where
            assert response.status_code < 500, where
            if role is None:
                assert response.status_code == 302, where
                assert response["Location"].startswith(
                    ("/panel/login/", "/accounts/login/", "/panel/")
                ), where

    assert snapshot() == before


@pytest.mark.parametrize("role", ["handler", "other_staff", "builder", "bureau"])
def test_every_panel_address_keeps_to_the_users_scope(world, scene, client, role):
    user = getattr(world, role)
    as_user(client, user)
    objects = foreign_objects(world, scene, role)
    before = snapshot()

    for name, route in panel_routes():
        url = panel_url(name, route, objects)
        response = client.get(url)
        assert response.status_code in expected_get(role, name, route), f"GET {url}"
        model = model_of(name)
        if name.endswith("_changelist") and model in objects and response.status_code == 200:
            shown = objects[model].pk in listed(response)
            assert shown == (role == "bureau"), f"GET {url}"

    if role != "bureau":  # the bureau may change these; everyone else posts in vain
        for name, route in panel_routes():
            model = model_of(name)
            if name in ("logout", "password_change", "supervision_responsetemplate_add"):
                continue  # their own session, password and template: tested elsewhere
            if name.endswith("_add") and model not in KNOWN_MODELS:
                continue  # staff may be allowed to add those; not this file's subject
            url = panel_url(name, route, objects)
            response = client.post(
                url,
                {
                    "post": "yes",
                    "action": "delete_selected",
                    "_selected_action": objects[model].pk if model in objects else MISSING_PK,
                    "title": "改过了",
                    "text": "改过了",
                    "note": "改过了",
                    "name": "改过了",
                    "department": user.department_id,
                    "position": 0,
                },
            )
            expected = expected_get(role, name, route)
            if expected <= {403, 404}:  # views that only answer GET may say 405
                assert response.status_code in expected | {405}, f"POST {url}"
            assert response.status_code < 500, f"POST {url}"

    assert snapshot() == before


def test_view_on_site_of_another_scopes_issue_reveals_nothing(world, scene, client):
    as_user(client, world.other_staff)
    url = panel_url("view_on_site", "", {"issue": scene.mine})

    response = client.get(url)
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 404


def test_autocomplete_finds_only_issues_in_scope(world, scene, client):
    query = {
        "app_label": "supervision",
        "model_name": "extensionrequest",
        "field_name": "issue",
        "term": scene.mine.reference,
    }
    as_user(client, world.other_staff)
    assert client.get("/panel/autocomplete/", query).json()["results"] == []
    as_user(client, world.handler)
    results = client.get("/panel/autocomplete/", query).json()["results"]
    assert [r["id"] for r in results] == [str(scene.mine.pk)]


def test_logged_out_staff_land_on_the_panel_page_they_asked_for_after_login(world, client):
    response = client.get(ISSUES, follow=True)
    login_url = response.redirect_chain[-1][0]
    assert login_url.startswith("/accounts/login/")

    response = client.post(login_url, {"username": "anyang", "password": PASSWORD}, follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == ISSUES


# --- issues: scope -----------------------------------------------------------------------------


def test_handler_sees_the_departments_issue_in_the_list_and_its_page(world, scene, client):
    as_user(client, world.handler)
    response = client.get(ISSUES)
    assert response.status_code == 200
    assert scene.mine.pk in listed(response)
    assert scene.theirs.pk not in listed(response)

    response = client.get(reverse("panel:supervision_issue_change", args=[scene.mine.pk]))
    assert response.status_code == 200
    assert scene.mine.reference in page_of(response)


def test_other_departments_staff_do_not_find_the_issue_anywhere(world, scene, client):
    issue = scene.mine
    as_user(client, world.other_staff)

    assert client.get(f"{ISSUES}{issue.pk}/change/").status_code == 404
    assert client.get(f"{ISSUES}{issue.pk}/history/").status_code == 404
    assert issue.pk not in listed(client.get(ISSUES))
    for term in (issue.reference, issue.title, "楼道", str(issue.pk)):
        response = client.get(ISSUES, {"q": term})
        assert response.status_code == 200
        assert issue.pk not in listed(response), term


def test_other_departments_staff_cannot_accept_or_export_the_issue(
    world, scene, client, django_capture_on_commit_callbacks
):
    issue = scene.mine
    as_user(client, world.other_staff)
    before = snapshot()

    with django_capture_on_commit_callbacks(execute=True):
        response = act(client, ISSUES, "accept_selected", issue)
    assert response.status_code == 302
    exported = act(client, ISSUES, "export_xlsx", issue)

    assert exported.status_code == 200
    rows = sheet_rows(exported)
    assert len(rows) == 1  # the header only
    assert all(issue.reference not in (row[0] or "") for row in rows)
    issue.refresh_from_db()
    assert issue.status == S.SUBMITTED
    assert events_of(issue) == [Kind.SUBMITTED]
    assert snapshot() == before


def test_contractor_staff_see_only_what_was_dispatched_to_their_company(world, scene, client):
    as_user(client, world.builder)
    response = client.get(ISSUES)

    assert listed(response) == [scene.dispatched.pk]
    assert client.get(f"{ISSUES}{scene.dispatched.pk}/change/").status_code == 200
    assert client.get(f"{ISSUES}{scene.mine.pk}/change/").status_code == 404
    assert client.get(f"{ISSUES}{scene.theirs.pk}/change/").status_code == 404


def test_bureau_sees_every_issue(world, scene, client):
    as_user(client, world.bureau)
    response = client.get(ISSUES)

    assert set(listed(response)) == {scene.mine.pk, scene.dispatched.pk, scene.theirs.pk}


# --- issues: actions ---------------------------------------------------------------------------


def test_bulk_accept_signs_for_submitted_issues_and_skips_the_others(
    world, client, django_capture_on_commit_callbacks
):
    first, second = world.submit(title="一号楼"), world.submit(title="二号楼")
    accepted = world.issue_in(S.ACCEPTED, title="三号楼")
    as_user(client, world.handler)

    with django_capture_on_commit_callbacks(execute=True):
        response = act(client, ISSUES, "accept_selected", first, second, accepted)

    assert response.status_code == 302
    said = messages_of(response)
    assert f"已签收 2 个问题：{first.reference}、{second.reference}" in said
    assert any("不是“已提交”状态，未签收。" in m for m in said)
    for issue in (first, second):
        issue.refresh_from_db()
        assert issue.status == S.ACCEPTED
        assert issue.rectify_due_at == services.default_rectify_deadline(issue, issue.accepted_at)
        assert events_of(issue) == [Kind.SUBMITTED, Kind.ACCEPTED]
        event = issue.events.get(kind=Kind.ACCEPTED)
        assert (event.actor, event.deadline) == (world.handler, issue.rectify_due_at)
        assert notified(event) == {"alice"}
    accepted.refresh_from_db()
    assert events_of(accepted) == [Kind.SUBMITTED, Kind.ACCEPTED]  # untouched


def test_bulk_accept_says_how_many_it_skipped(world, client):
    first, second = world.submit(title="一号楼"), world.submit(title="二号楼")
    accepted = world.issue_in(S.ACCEPTED, title="三号楼")
    as_user(client, world.handler)

    response = act(client, ISSUES, "accept_selected", first, second, accepted)

    assert "1 个问题不是“已提交”状态，未签收。" in messages_of(response)


def test_export_has_a_header_and_one_row_per_selected_visible_issue(world, scene, client):
    as_user(client, world.handler)
    response = act(client, ISSUES, "export_xlsx", scene.mine, scene.dispatched, scene.theirs)

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="issues-')
    header, *rows = sheet_rows(response)
    assert header[:3] == ("编号", "标题", "项目")
    assert sorted(row[0] for row in rows) == sorted(
        [scene.mine.reference, scene.dispatched.reference]
    )
    by_reference = {row[0]: row for row in rows}
    assert by_reference[scene.mine.reference][1] == "楼道灯不亮"
    assert by_reference[scene.mine.reference][6] == "已提交"


def test_overdue_issues_come_before_older_ones(world, client):
    older = world.submit(title="早些的问题")
    overdue = world.submit(title="超期的问题")
    late = timezone.now() - timedelta(minutes=5)
    Issue.objects.filter(pk=overdue.pk).update(sign_for_due_at=late, due_at=late)
    as_user(client, world.handler)

    response = client.get(ISSUES)

    assert listed(response) == [overdue.pk, older.pk]
    assert "已超期" in page_of(response)


def test_list_filters_by_status_overdue_and_reference(world, client):
    submitted = world.submit(title="新问题")
    accepted = world.issue_in(S.ACCEPTED, title="签收了的")
    overdue = world.submit(title="超期了的")
    Issue.objects.filter(pk=overdue.pk).update(sign_for_due_at=timezone.now() - timedelta(hours=1))
    as_user(client, world.handler)

    assert set(listed(client.get(ISSUES, {"status": "submitted"}))) == {submitted.pk, overdue.pk}
    assert listed(client.get(ISSUES, {"status__exact": "accepted"})) == [accepted.pk]
    assert listed(client.get(ISSUES, {"overdue": "yes"})) == [overdue.pk]
    assert set(listed(client.get(ISSUES, {"overdue": "no"}))) == {submitted.pk, accepted.pk}
    assert listed(client.get(ISSUES, {"q": accepted.reference})) == [accepted.pk]


def test_bureau_lists_the_escalated_open_issues(world, client):
    escalated = world.submit(title="被督办的")
    quiet = world.submit(title="没督办的")
    services.escalate_issue(escalated, actor=world.bureau, text="请尽快签收")
    closed = world.issue_in(S.CLOSED, title="办结了的")
    Issue.objects.filter(pk=closed.pk).update(escalated_at=timezone.now())
    as_user(client, world.bureau)

    assert listed(client.get(ISSUES, {"escalated": "open"})) == [escalated.pk]
    assert set(listed(client.get(ISSUES, {"escalated": "all"}))) == {escalated.pk, closed.pk}
    assert quiet.pk not in listed(client.get(ISSUES, {"escalated": "all"}))


@pytest.mark.parametrize(
    "query",
    [
        "o=99",
        "o=abc",
        "p=abc",
        "overdue=maybe",
        "status=nonsense",
        "escalated=x",
        "project__id__exact=abc",
        "department__id__exact=abc",
        "reporter__username=alice",
        "_to_field=reporter",
    ],
)
def test_nonsense_in_the_list_address_is_not_a_server_error(world, scene, client, query):
    client.raise_request_exception = False
    as_user(client, world.handler)

    response = client.get(f"{ISSUES}?{query}")

    assert response.status_code in (200, 302, 400)
    if response.status_code == 200:
        assert scene.theirs.pk not in listed(response)


@pytest.mark.parametrize("who", ["handler", "bureau"])
def test_unknown_or_malformed_ids_in_the_panel_are_404(world, client, who):
    as_user(client, getattr(world, who))

    for url in (f"{ISSUES}abc/change/", f"{ISSUES}99999/change/", f"{EXTENSIONS}abc/change/"):
        assert client.get(url).status_code == 404, url


# --- issues: the steps from the panel page -----------------------------------------------------


def test_handler_accepts_from_the_panel_page_and_comes_back_to_it(
    world, client, django_capture_on_commit_callbacks
):
    issue = world.submit()
    url = f"{ISSUES}{issue.pk}/change/"
    as_user(client, world.handler)
    page = page_of(client.get(url))
    assert 'id="step-accept"' in page
    assert f'<input type="hidden" name="next" value="{url}">' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/issues/{issue.pk}/accept/", {"next": url, "text": "马上处理"})

    assert response.status_code == 302
    assert response["Location"] == url
    issue.refresh_from_db()
    assert issue.status == S.ACCEPTED
    assert events_of(issue) == [Kind.SUBMITTED, Kind.ACCEPTED]
    assert notified(issue.events.get(kind=Kind.ACCEPTED)) == {"alice"}


@pytest.mark.parametrize(
    "target", ["https://evil.example/panel/", "//evil.example/panel/", "/issues/"]
)
def test_a_step_goes_back_only_to_a_panel_address_on_this_site(world, client, target):
    issue = world.submit()
    as_user(client, world.handler)

    response = client.post(f"/issues/{issue.pk}/accept/", {"next": target})

    assert response.status_code == 302
    assert response["Location"] == issue.get_absolute_url()


# --- what the bureau keeps ---------------------------------------------------------------------


@pytest.mark.parametrize("model", ["routingrule", "calendarchange", "department", "delivery"])
def test_bureau_pages_are_the_bureaus(world, scene, client, model):
    url = f"/panel/supervision/{model}/"
    for user in (world.handler, world.builder, world.other_staff):
        as_user(client, user)
        assert client.get(url).status_code in (403, 404)
    as_user(client, world.bureau)
    assert client.get(url).status_code == 200


def test_bureau_adds_a_routing_rule_and_new_issues_follow_it(world, client):
    as_user(client, world.bureau)
    response = client.post(
        "/panel/supervision/routingrule/add/",
        {"subdistrict": world.anyang.pk, "category": "quality", "department": world.bureau_dept.pk},
    )

    assert response.status_code == 302
    rule = RoutingRule.objects.get()
    assert (rule.subdistrict, rule.category, rule.department) == (
        world.anyang,
        "quality",
        world.bureau_dept,
    )
    assert world.submit().department == world.bureau_dept


def test_staff_cannot_add_a_routing_rule_or_a_day_off(world, client):
    as_user(client, world.handler)
    response = client.post(
        "/panel/supervision/routingrule/add/",
        {"subdistrict": world.anyang.pk, "category": "", "department": world.office.pk},
    )
    assert response.status_code == 403
    response = client.post(
        "/panel/supervision/calendarchange/add/", {"day": "2026-09-15", "note": "台风"}
    )
    assert response.status_code == 403
    assert not RoutingRule.objects.exists()
    assert not CalendarChange.objects.exists()


def test_bureau_adds_a_day_off_and_new_deadlines_skip_it(world, client):
    as_user(client, world.bureau)
    tomorrow = timezone.localdate() + timedelta(days=1)
    response = client.post(
        "/panel/supervision/calendarchange/add/", {"day": tomorrow.isoformat(), "note": "台风"}
    )

    assert response.status_code == 302
    assert CalendarChange.objects.get().is_working_day is False
    due = timezone.localtime(world.submit().sign_for_due_at)
    assert due.date() > tomorrow


# --- response templates ------------------------------------------------------------------------


def test_staff_see_only_their_departments_templates(world, scene, client):
    shared = ResponseTemplate.objects.create(department=None, title="通用", text="已收到。")
    as_user(client, world.handler)
    assert listed(client.get(TEMPLATES)) == [scene.anyang_template.pk]

    as_user(client, world.bureau)
    assert set(listed(client.get(TEMPLATES))) == {
        scene.anyang_template.pk,
        scene.yuhai_template.pk,
        shared.pk,
    }


def test_staff_add_a_template_for_their_own_department_whatever_they_post(world, client):
    as_user(client, world.handler)
    response = client.post(
        f"{TEMPLATES}add/",
        {
            "title": "已现场查看",
            "text": "已安排人员现场查看。",
            "position": 1,
            "department": world.other_office.pk,
        },
    )

    assert response.status_code == 302
    template = ResponseTemplate.objects.get()
    assert (template.title, template.department) == ("已现场查看", world.office)


def test_staff_cannot_open_or_change_another_departments_template(world, scene, client):
    url = f"{TEMPLATES}{scene.yuhai_template.pk}/change/"
    as_user(client, world.handler)

    assert client.get(url).status_code == 404
    assert client.post(url, {"title": "改掉", "text": "改掉", "position": 0}).status_code == 404
    assert (
        client.post(f"{TEMPLATES}{scene.yuhai_template.pk}/delete/", {"post": "yes"}).status_code
        == 404
    )
    scene.yuhai_template.refresh_from_db()
    assert scene.yuhai_template.title == "玉海回复"

    as_user(client, world.bureau)
    assert client.get(url).status_code == 200


def test_issue_page_offers_the_departments_and_the_shared_templates(world, scene, client):
    shared = ResponseTemplate.objects.create(department=None, title="通用", text="已收到。")
    as_user(client, world.handler)

    response = client.get(scene.mine.get_absolute_url())

    assert response.status_code == 200
    offered = {t.pk for form in response.context["step_forms"] for t in form.response_templates}
    assert offered == {scene.anyang_template.pk, shared.pk}
    assert "已转施工单位" in page_of(response)
    assert "玉海回复" not in page_of(response)


# --- extension requests ------------------------------------------------------------------------


def test_bureau_grants_an_extension_and_the_deadline_moves(
    world, scene, client, django_capture_on_commit_callbacks
):
    extension = scene.anyang_extension
    issue = scene.dispatched
    as_user(client, world.bureau)
    assert "grant" in dict(client.get(EXTENSIONS).context["action_form"].fields["action"].choices)

    with django_capture_on_commit_callbacks(execute=True):
        response = act(client, EXTENSIONS, "grant", extension)

    assert response.status_code == 302
    assert any("已同意延期" in m for m in messages_of(response))
    extension.refresh_from_db()
    assert (extension.status, extension.decided_by) == ("granted", world.bureau)
    issue.refresh_from_db()
    assert issue.rectify_due_at == end_of_working_day(extension.until)
    granted = issue.events.filter(kind=Kind.EXTENSION_GRANTED)
    assert granted.count() == 1
    assert granted.get().deadline == issue.rectify_due_at
    assert notified(granted.get()) == {"alice", "anyang", "shigong"}


def test_staff_cannot_grant_their_own_extension(world, scene, client):
    extension = scene.anyang_extension
    issue = scene.dispatched
    due = issue.rectify_due_at
    as_user(client, world.handler)
    page = client.get(EXTENSIONS)
    assert page.status_code == 200
    assert extension.pk in listed(page)
    assert scene.yuhai_extension.pk not in listed(page)
    action_form = page.context["action_form"]  # None: no action is left for staff
    assert action_form is None or "grant" not in dict(action_form.fields["action"].choices)

    response = act(client, EXTENSIONS, "grant", extension)

    assert response.status_code in (200, 302)  # the list again: there is no such action
    extension.refresh_from_db()
    assert extension.status == ExtensionRequest.Status.PENDING
    issue.refresh_from_db()
    assert issue.rectify_due_at == due
    assert not issue.events.filter(kind=Kind.EXTENSION_GRANTED).exists()


def test_bureau_refuses_an_extension_and_the_deadline_stays(
    world, scene, client, django_capture_on_commit_callbacks
):
    extension = scene.anyang_extension
    issue = scene.dispatched
    due = issue.rectify_due_at
    as_user(client, world.bureau)

    with django_capture_on_commit_callbacks(execute=True):
        response = act(client, EXTENSIONS, "refuse", extension)

    assert response.status_code == 302
    assert any("未同意延期" in m for m in messages_of(response))
    extension.refresh_from_db()
    assert (extension.status, extension.decided_by) == ("refused", world.bureau)
    issue.refresh_from_db()
    assert issue.rectify_due_at == due
    refused = issue.events.get(kind=Kind.EXTENSION_REFUSED)
    assert refused.deadline is None
    assert not issue.events.filter(kind=Kind.EXTENSION_GRANTED).exists()
    assert notified(refused) == {"alice", "anyang", "shigong"}


def test_deciding_an_extension_twice_changes_nothing_the_second_time(world, scene, client):
    extension = scene.anyang_extension
    as_user(client, world.bureau)
    act(client, EXTENSIONS, "grant", extension)
    issue = Issue.objects.get(pk=scene.dispatched.pk)
    before = events_of(issue)

    response = act(client, EXTENSIONS, "refuse", extension)

    assert response.status_code == 302
    extension.refresh_from_db()
    assert extension.status == ExtensionRequest.Status.GRANTED
    assert events_of(issue) == before


def test_the_issue_queue_opens_on_the_departments_work(world, client):
    waiting = world.issue_in(Issue.Status.SUBMITTED)
    fixed = world.issue_in(Issue.Status.RECTIFIED)
    closed = world.issue_in(Issue.Status.CLOSED)
    client.force_login(world.handler)
    url = "/panel/supervision/issue/"

    def listed(**query):
        return {issue.pk for issue in client.get(url, query).context["cl"].result_list}

    # 待办理: what waits on the department; the fix waits on the reporter's check.
    assert listed() == {waiting.pk}
    assert listed(queue="open") == {waiting.pk, fixed.pk}
    assert listed(queue="all") == {waiting.pk, fixed.pk, closed.pk}
    # Asking for a status (or searching) shows what was asked for.
    assert listed(status__exact="closed") == {closed.pk}
    assert listed(q=closed.reference) == {closed.pk}
