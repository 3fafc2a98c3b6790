"""The access matrix: every URL pattern of the site (the panel's and the admin's included) × every
role, filled with objects of OTHER scopes, with the status each answer must have.

Roles: anonymous, supervisor A (alice, the reporter), supervisor B (bob), staff of department X
(handler, the 安阳 office the issues are routed to), staff of department Y (other_staff, the 玉海
office), contractor staff (builder, 宏程) and the bureau, all of 瑞安市 (under 温州市); beside
them, a second county-level programme of the same shape in 杭州市西湖区 (its objects' keys start
with "b"), with its bureau, a supervisor and an office's staff (bureau_b, alice_b, handler_b);
and the oversight (上级主管部门): the province (ob_province, 浙江省, above both counties) and the
city above Ruian (ob_city, 温州市, not above 西湖区). Each request runs in a savepoint that is
rolled back, so every row starts from the same scene; what a request changed is looked at inside
the savepoint, before the rollback.

Every Ruian role walks twice (``passes``): with objects of other scopes in Ruian, then with the
second county's objects, which are outside every Ruian scope (``CROSS``: the rows that turn into
denials). The province walks with the second county's objects (inside its region), 温州 with the
same (outside), the second county's people with Ruian's (outside). The issue pages and every
workflow step are tried on the issues of both counties by every role, and so are the JSON API
and Open311 with the role's own key (each issue, the lists, 签收 and 督办). On every page a role
gets, no SECRET title of an issue it may not read may appear (the leak count), nor a letter's
number, nor another county's supervisor's certificate number.

The table below is written from the code (views, ``services.STEP_RULES``, ``issue_visibility``,
the panel's permissions), not derived from it: where the design makes something visible on
purpose (supervisors read every issue and patrol, consultation results are public), the row says
so. A pattern the table does not know falls under a generic rule: never a server error, and for
an anonymous visitor a redirect to a login page or a 403/404/405.

``-s`` shows the one-line summary: ``ACCESS MATRIX: requests=…, denials=…, unexpected_allows=0``.
"""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.urls import URLPattern, URLResolver, resolve
from django.utils import timezone
from openpyxl import load_workbook

from accounts.models import User
from api.tokens import create_token
from supervision import letters, residents, services
from supervision.models import (
    CalendarChange,
    Consultation,
    ConsultationItem,
    Delivery,
    ExtensionRequest,
    Household,
    Issue,
    IssueEvent,
    Letter,
    Notification,
    Patrol,
    PatrolPhoto,
    Photo,
    Region,
    ResponseTemplate,
    RoutingRule,
    Survey,
    SurveyAnswer,
    VoiceNote,
)
from supervision.panel import panel
from supervision.urls import urlpatterns

from .factories import World, image_file, make_second_world, make_supervisor, make_user

S = Issue.Status
ROLES = ("anon", "alice", "bob", "handler", "other_staff", "builder", "bureau")
LOGGED_IN = ROLES[1:]
SUPERVISORS = ("alice", "bob")
STAFF = ("handler", "other_staff", "builder")
MISSING_PK = 999_999
LOGIN_PAGES = ("/accounts/login/", "/panel/login/", "/admin/login/")
# In every issue's title: no page may show it to someone who may not see the issue.
SECRET = "SECRET-{}-"


# --- the routes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    namespace: str  # "", "panel", "admin", or the namespace of another include
    name: str | None
    route: str  # the full route text, as ResolverMatch.route gives it
    defaults: tuple  # the pattern's default kwargs (the step of /issues/<pk>/<step>/)

    @property
    def label(self) -> str:
        return f"{self.namespace}:{self.name or '(unnamed)'} {self.route}"


def walk(patterns, prefix: str = "", namespace: str = ""):
    """Every leaf pattern under ``patterns``, the included ones too, with its full route."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(
                pattern.url_patterns,
                prefix + str(pattern.pattern),
                pattern.namespace or namespace,
            )
        elif isinstance(pattern, URLPattern):
            yield Route(
                namespace,
                pattern.name,
                prefix + str(pattern.pattern),
                tuple(sorted(pattern.default_args.items())),
            )


# <int:pk>, (?P<app_label>…), and an unnamed regex group (simple_history's admin pages), which
# is named by its position: "_0", "_1"….
PARAM = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)|\((?!\?)[^)]*\)")


def params(route: str) -> list[str]:
    return [m.group(1) or m.group(2) or f"_{i}" for i, m in enumerate(PARAM.finditer(route))]


def build(route: Route, values: dict) -> str:
    """The address of ``route`` with its parameters filled in (route and regex patterns alike)."""
    names = iter(params(route.route))
    path = PARAM.sub(lambda m: str(values[next(names)]), route.route)
    url = "/" + path.replace("^", "").replace("$", "")
    match = resolve(url)
    assert match.route.replace("^", "") == route.route.replace("^", ""), f"{url}: {match.route}"
    return url


def step_of(route: Route) -> str | None:
    return dict(route.defaults).get("step")


def model_of(route: Route) -> str:
    """``panel/supervision/issue/<path:object_id>/change/`` → ``issue``; '' for site pages."""
    match = re.match(rf"{route.namespace}/(\w+)/(\w+)/", route.route)
    return match.group(2) if match else ""


@pytest.fixture(autouse=True)
def _quiet_refusals():
    """Thousands of 403s, 404s and 405s are expected here: log only server errors."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


# --- the scene ---------------------------------------------------------------------------------


@dataclass
class Scene:
    """One county's programme: Ruian's (the world), or the second county's (``other``)."""

    world: World
    issues: dict[str, Issue]  # x_*: Alice's, routed to 安阳; y_*: Bob's, routed to 玉海
    photos: dict[str, Photo]
    notifications: dict[str, Notification]
    patrols: dict[str, Patrol]
    consultations: dict[str, Consultation]
    extensions: dict[str, ExtensionRequest]
    templates: dict[str, ResponseTemplate]
    rule: RoutingRule
    day_off: CalendarChange
    delivery: Delivery
    voices: dict[str, VoiceNote] = field(default_factory=dict)
    letters: dict[str, Letter] = field(default_factory=dict)  # a: 安阳's, b: 玉海's
    prefix: str = ""  # of its issues' keys: "" for Ruian, "b" for the second county
    # The second county (杭州市西湖区, keys "b…"), and the oversight: only in the ``both`` scene.
    other: Scene | None = None
    overseers: dict[str, User] = field(default_factory=dict)

    def user(self, role: str) -> User | None:
        if role == "anon":
            return None
        if role in self.overseers:
            return self.overseers[role]
        if role in SECOND:
            return getattr(self.other.world, SECOND[role])
        return getattr(self.world, role)

    def sides(self) -> list[Scene]:
        return [self] if self.other is None else [self, self.other]

    def all_issues(self) -> dict[str, Issue]:
        return {key: issue for side in self.sides() for key, issue in side.issues.items()}

    def side_of(self, issue: Issue) -> Scene:
        """The county ``issue`` belongs to."""
        return next(s for s in self.sides() if issue.pk in {i.pk for i in s.issues.values()})

    def side_of_project(self, project_id: int) -> Scene:
        return next(
            s for s in self.sides() if project_id in (s.world.project.pk, s.world.other_project.pk)
        )


def _y_issue(world: World, status: str, key: str) -> Issue:
    """Bob's issue on the 玉海 project, brought to ``status`` by the 玉海 office."""
    issue = world.submit(  # with the photo filing asks for (world.submit gives one)
        reporter=world.bob, project=world.other_project, title=SECRET.format(key)
    )
    if status == S.SUBMITTED:
        return issue
    if status == S.REJECTED:
        return services.reject_issue(issue, actor=world.other_staff, text="重复反映")
    issue = services.accept_issue(issue, actor=world.other_staff)
    if status == S.ACCEPTED:
        return issue
    issue = services.dispatch_issue(
        issue, actor=world.other_staff, department=world.other_contractor
    )
    if status == S.IN_PROGRESS:
        return issue
    return services.rectify_issue(
        issue, actor=world.other_staff, text="已整改", photos=[image_file()]
    )


def _patrol(world: World, supervisor: User, project, item: str) -> Patrol:
    checks = [
        residents.CheckInput(
            item=value,
            ok=value != item,
            note="围挡倒了" if value == item else "",
            photos=[image_file()] if value == item else [],
        )
        for value in Patrol.Check.values
    ]
    return residents.log_patrol(supervisor=supervisor, project=project, checks=checks)


def _consultation(project, title: str) -> Consultation:
    today = timezone.localdate()
    consultation = Consultation.objects.create(
        project=project,
        title=title,
        opens_on=today - timedelta(days=3),
        closes_on=today + timedelta(days=3),
    )
    ConsultationItem.objects.create(
        consultation=consultation, kind=ConsultationItem.Kind.SCOPE, area="building", text="外墙"
    )
    for room in ("101", "102"):
        Household.objects.create(
            consultation=consultation,
            building="1幢",
            unit="1单元",
            room=room,
            code=residents.new_code(),
        )
    # 问效: a satisfaction survey running on the project, asking its households.
    Survey.objects.create(
        project=project,
        opens_on=today - timedelta(days=1),
        closes_on=today + timedelta(days=3),
        areas=["building"],
    )
    return consultation


# Residents' letters, one on each side of each county, with a photo and a reply number, escalated
# past their limit (so that the offices' panel lists them). No page may ever show a number whole.
# Keys: the county's prefix ("" for Ruian, "b" for the second county) and the side.
LETTER_MOBILES = {
    "a": "13911110001",
    "b": "13922220002",
    "ba": "13933330003",
    "bb": "13944440004",
}


def _letters(world: World, prefix: str) -> dict[str, Letter]:
    sent = {
        side: letters.send_letter(
            project=project,
            summary=f"围挡倒了 {prefix}{side}",
            mobile=LETTER_MOBILES[prefix + side],
            photos=[image_file()],
            sender_address=f"10.0.{len(prefix)}.{n}",
        )
        for n, (side, project) in enumerate((("a", world.project), ("b", world.other_project)))
    }
    for letter in sent.values():
        letters.escalate_letter(letter, now=letters.escalation_due(letter) + timedelta(minutes=1))
    return sent


def build_scene(world: World, capture, prefix: str = "") -> Scene:
    """Issues of both sides of ``world`` in every state a step starts from (keys and SECRET
    titles prefixed with ``prefix``), with photos, notifications, patrols, consultations,
    surveys, letters, extension requests, templates, a routing rule and a delivery of both
    subdistricts; photo files are written (on commit, through ``capture``)."""
    world.project.departments.add(world.office)
    world.other_project.departments.add(world.other_office)
    p = prefix
    with capture(execute=True):
        issues = {
            f"{p}x_sub": world.submit(title=SECRET.format(f"{p}x_sub"), photos=[image_file()]),
            f"{p}x_acc": world.issue_in(S.ACCEPTED, title=SECRET.format(f"{p}x_acc")),
            f"{p}x_prog": world.issue_in(S.IN_PROGRESS, title=SECRET.format(f"{p}x_prog")),
            f"{p}x_rect": world.issue_in(S.RECTIFIED, title=SECRET.format(f"{p}x_rect")),
            f"{p}x_rej": world.issue_in(S.REJECTED, title=SECRET.format(f"{p}x_rej")),
            f"{p}x_pub": world.issue_in(S.CLOSED, title=SECRET.format(f"{p}x_pub")),
        }
        for status, key in [
            (S.SUBMITTED, "y_sub"),
            (S.ACCEPTED, "y_acc"),
            (S.IN_PROGRESS, "y_prog"),
            (S.RECTIFIED, "y_rect"),
            (S.REJECTED, "y_rej"),
        ]:
            issues[p + key] = _y_issue(world, status, p + key)
        later = timezone.localdate() + timedelta(days=40)
        extensions = {
            "x": services.request_extension(
                issues[f"{p}x_acc"], actor=world.handler, until=later, text="雨季"
            ),
            "y": services.request_extension(
                issues[f"{p}y_acc"], actor=world.other_staff, until=later, text="材料未到"
            ),
        }
        patrols = {
            "a": _patrol(world, world.alice, world.project, Patrol.Check.FENCING),
            "b": _patrol(world, world.bob, world.other_project, Patrol.Check.DUST),
        }
    Issue.objects.filter(pk=issues[f"{p}x_pub"].pk).update(is_public=True)
    for issue in issues.values():
        issue.refresh_from_db()
    event_x = issues[f"{p}x_acc"].events.order_by("pk").last()
    event_y = issues[f"{p}y_acc"].events.order_by("pk").last()
    notifications = {
        "alice": Notification.objects.get_or_create(recipient=world.alice, event=event_x)[0],
        "bob": Notification.objects.get_or_create(recipient=world.bob, event=event_y)[0],
    }
    Notification.objects.update(read_at=None)
    photos = {
        "x": issues[f"{p}x_sub"].photos.get(),
        "y": issues[f"{p}y_sub"].photos.get(),
        "pub": issues[f"{p}x_pub"].photos.first(),
    }
    assert photos["pub"] is not None
    voices = {
        key: VoiceNote.objects.create(
            issue=issues[p + name],
            audio=default_storage.save(f"voice/matrix-{p}{key}.m4a", ContentFile(b"m4a")),
            seconds=3,
        )
        for key, name in (("x", "x_sub"), ("y", "y_sub"), ("pub", "x_pub"))
    }
    with capture(execute=True):
        sent = _letters(world, p)
    return Scene(
        prefix=p,
        letters=sent,
        voices=voices,
        world=world,
        issues=issues,
        photos=photos,
        notifications=notifications,
        patrols=patrols,
        consultations={
            "a": _consultation(world.project, f"{world.project.neighbourhood.name}改造意愿征询"),
            "b": _consultation(
                world.other_project, f"{world.other_project.neighbourhood.name}改造意愿征询"
            ),
        },
        extensions=extensions,
        templates={
            "x": ResponseTemplate.objects.create(
                department=world.office, title=f"{p}安阳", text="收到"
            ),
            "y": ResponseTemplate.objects.create(
                department=world.other_office, title=f"{p}玉海", text="收到"
            ),
        },
        rule=RoutingRule.objects.create(
            subdistrict=world.yuhai, category="", department=world.other_office
        ),
        # The calendar of working days is one for all (no county's own object).
        day_off=CalendarChange.objects.get_or_create(
            day=date(2090, 1, 3), defaults={"note": "台风停工"}
        )[0],
        # An email about an issue of the county: its subject names the issue (SECRET).
        delivery=Delivery.objects.create(
            channel=Delivery.Channel.EMAIL,
            target=f"{p}a@example.com",
            event=event_x,
            subject=issues[f"{p}x_acc"].title,
            body="b",
        ),
    )


@pytest.fixture
def scene(world: World, django_capture_on_commit_callbacks) -> Scene:
    """Ruian's programme alone (the tests of single steps below)."""
    cache.clear()
    return build_scene(world, django_capture_on_commit_callbacks)


# The city above Ruian (温州市) and the province (浙江省): the oversight (上级主管部门).
OVERSEERS = {"ob_province": "330000", "ob_city": "330300"}


@pytest.fixture
def both(world: World, django_capture_on_commit_callbacks) -> Scene:
    """Ruian's programme and, beside it, one of the same shape in 杭州市西湖区 (keys "b…"), with
    the province and 温州市 looking over them. 温州 pressed (督办) on Ruian's x_sub and the
    province on 西湖区's bx_sub: each county's bureau owes an answer (回复督办) on that one."""
    cache.clear()
    scene = build_scene(world, django_capture_on_commit_callbacks)
    scene.other = build_scene(make_second_world(), django_capture_on_commit_callbacks, "b")
    scene.overseers = {
        role: make_user(role, role=User.Role.OVERSIGHT, region=Region.objects.get(code=code))
        for role, code in OVERSEERS.items()
    }
    due = timezone.localdate() + timedelta(days=5)
    with django_capture_on_commit_callbacks(execute=True):
        for role, key in (("ob_city", "x_sub"), ("ob_province", "bx_sub")):
            issue = scene.all_issues()[key]
            services.escalate_issue(issue, actor=scene.overseers[role], text="请说明", deadline=due)
            issue.refresh_from_db()
            assert issue.oversight_due_at is not None
    Notification.objects.update(read_at=None)
    return scene


# Who may read which issue (``issue_visibility``): the group is transparent to supervisors and the
# bureau; a department sees what is routed or dispatched to it (x_prog, x_rect and x_pub were
# dispatched to 宏程, the builder's company; the y issues to 安居, where nobody of the world works).
VISIBLE = {
    "x_sub": {"alice", "bob", "handler", "bureau"},
    "x_acc": {"alice", "bob", "handler", "bureau"},
    "x_prog": {"alice", "bob", "handler", "builder", "bureau"},
    "x_rect": {"alice", "bob", "handler", "builder", "bureau"},
    "x_rej": {"alice", "bob", "handler", "bureau"},
    "x_pub": {"anon", "alice", "bob", "handler", "builder", "bureau"},
    "y_sub": {"alice", "bob", "other_staff", "bureau"},
    "y_acc": {"alice", "bob", "other_staff", "bureau"},
    "y_prog": {"alice", "bob", "other_staff", "bureau"},
    "y_rect": {"alice", "bob", "other_staff", "bureau"},
    "y_rej": {"alice", "bob", "other_staff", "bureau"},
}
# The roles above and beside Ruian: the province (浙江省) reads both counties, the city above Ruian
# (温州市) Ruian's only, the second county's bureau (西湖区住建局) its own. Of the second county's
# issues ("b…" keys) nobody of Ruian reads anything; its public issue is public as Ruian's is.
OVERSIGHT = ("ob_province", "ob_city")
# The second county's people, each with the Ruian role of the same desk: its bureau, a supervisor
# (its Alice) and the office the issues are routed to (its handler).
SECOND = {"bureau_b": "bureau", "alice_b": "alice", "handler_b": "handler"}
NEW_ROLES = (*OVERSIGHT, *SECOND)
ALL_ROLES = (*ROLES, *NEW_ROLES)
VISIBLE_B = {
    f"b{key}": {"ob_province"}
    | {theirs for theirs, ours in SECOND.items() if ours in who}
    | (who & {"anon"})
    for key, who in VISIBLE.items()
}
for _who in VISIBLE.values():
    _who.update(OVERSIGHT)
VISIBLE.update(VISIBLE_B)

# Each step, the state it is taken from, and who may take it on the x issue and on the y issue
# (read from STEP_RULES and the service functions, written out here).
DEPT_X, DEPT_Y = {"handler", "bureau"}, {"other_staff", "bureau"}
STEPS = {
    "accept": (S.SUBMITTED, DEPT_X, DEPT_Y),
    "answer": (S.SUBMITTED, DEPT_X, DEPT_Y),
    "dispatch": (S.ACCEPTED, DEPT_X, DEPT_Y),
    "rectify": (S.IN_PROGRESS, DEPT_X | {"builder"}, DEPT_Y),
    "transfer": (S.SUBMITTED, DEPT_X, DEPT_Y),
    "reject": (S.SUBMITTED, DEPT_X, DEPT_Y),
    "escalate": (S.SUBMITTED, DEPT_X, DEPT_Y),
    # 回复督办 waits for a 督办 from the province or the city: 温州 pressed on x_sub (in ``both``;
    # in ``scene`` nobody did, and the matrix runs on ``both``), so Ruian's bureau answers there.
    "reply": (S.SUBMITTED, {"bureau"}, set()),
    "verify": (S.RECTIFIED, {"alice"}, {"bob"}),
    "reopen": (S.RECTIFIED, {"alice"}, {"bob"}),
    "withdraw": (S.SUBMITTED, {"alice"}, {"bob"}),
    "extend": (S.IN_PROGRESS, DEPT_X | {"builder"}, DEPT_Y),
    "appeal": (S.REJECTED, {"alice"}, {"bob"}),
    "comment": (S.SUBMITTED, {"alice", "bob", "handler", "bureau"}, {"alice", "bob"} | DEPT_Y),
    # 附议 is for the project's other supervisors: Alice reported the x issues and Bob does not
    # watch their project (and the other way round for the y issues), so nobody of the matrix may;
    # test_a_supervisor_of_the_project_supports_its_issue below is the control.
    "support": (S.SUBMITTED, set(), set()),
}


def may_take(step: str, key: str) -> set[str]:
    """Who may take ``step`` on the issue ``key`` (of either county): the second county's bureau
    what Ruian's may on Ruian's (its own reply waits on bx_sub, which the province pressed on);
    the oversight 督办 on every issue it reads, and nothing else."""
    _state, may_x, may_y = STEPS[step]
    local = key.removeprefix("b")
    may = may_x if local.startswith("x") else may_y
    if key.startswith("b"):
        may = {theirs for theirs, ours in SECOND.items() if ours in may}
    if step == "escalate":
        may = may | set(OVERSIGHT)
    return may


STATE_KEY = {
    S.SUBMITTED: "sub",
    S.ACCEPTED: "acc",
    S.IN_PROGRESS: "prog",
    S.RECTIFIED: "rect",
    S.REJECTED: "rej",
}
# Fields nobody sets through a step: whatever a form posts, the issue keeps its own.
SMUGGLED = {
    "status": S.CLOSED,
    "is_public": "1",
    "reference": "2000-99999",
    "rating": Issue.Rating.SATISFIED,
    "reporter": "",  # filled with another user's id
    "department": "",  # filled with another department's id
    "contractor": "",
    "households": "9999",
}


def step_data(scene: Scene, step: str, issue: Issue) -> dict:
    """Valid fields for ``step`` on ``issue``, plus fields the step must ignore."""
    world = scene.side_of(issue).world
    mine = issue.reporter_id == world.alice.pk
    today = timezone.localdate()
    data = {
        "accept": {"deadline": (today + timedelta(days=14)).isoformat(), "text": "签收"},
        "answer": {"text": "已纳入方案"},
        "dispatch": {"department": (world.contractor if mine else world.other_contractor).pk},
        "rectify": {"text": "已整改", "photos": image_file()},
        "transfer": {"department": world.bureau_dept.pk, "reason": "请住建局协调"},
        "reject": {"reason": "重复反映"},
        # The date only the oversight gives (and must): the others' form has no such field.
        "escalate": {"text": "请尽快处理", "deadline": (today + timedelta(days=3)).isoformat()},
        "reply": {"text": "已督促街道加快办理"},
        "verify": {"rating": Issue.Rating.SATISFIED, "text": ""},
        "reopen": {"reason": "还在漏水"},
        "withdraw": {"reason": "已自行解决"},
        "extend": {
            "until": (
                timezone.localtime(issue.rectify_due_at).date() + timedelta(days=10)
            ).isoformat(),
            "reason": "雨季无法施工",
        },
        "appeal": {"reason": "不是重复的问题"},
        "comment": {"text": "补充一张照片"},
        "support": {},
    }[step]
    smuggled = {
        **SMUGGLED,
        "reporter": (world.bob if mine else world.alice).pk,
        "department": (world.other_office if mine else world.office).pk,
        "contractor": world.other_contractor.pk,
    }
    return {**{k: v for k, v in smuggled.items() if k not in data}, **data}


def foreign(scene: Scene, role: str) -> dict:
    """For each kind of object an address names, one outside ``role``'s scope (for the
    bureau, whose scope is everything: the 安阳 side)."""
    w = scene.world
    a_side = role in ("anon", "bob", "other_staff", "builder", "bureau")
    side = "a" if a_side else "b"
    x_or_y = "x" if a_side else "y"
    patrol = scene.patrols[side]
    project = w.project if a_side else w.other_project
    if role == "builder":  # 宏程 builds the 安阳 project: it and its patrols are the builder's
        patrol, project = scene.patrols["b"], w.other_project
    return {
        "project": project,
        "photo": scene.photos[x_or_y],
        "voice_note": scene.voices[x_or_y],
        "notification": scene.notifications["bob" if role == "alice" else "alice"],
        "patrol": patrol,
        "check": patrol.checks.get(ok=False),
        "patrol_photo": PatrolPhoto.objects.get(check_item__patrol=patrol),
        "consultation": scene.consultations[side],
        "survey": Survey.objects.get(project=scene.consultations[side].project_id),
        "supervisor": (w.alice if a_side else w.bob).supervisor,
        # The panel's models (for the bureau: anything).
        "issue": scene.issues[f"{scene.prefix}{x_or_y}_acc"],
        "extensionrequest": scene.extensions[x_or_y],
        "responsetemplate": scene.templates[x_or_y],
        "department": w.office if a_side else w.other_office,
        "routingrule": scene.rule,
        "calendarchange": scene.day_off,
        "delivery": scene.delivery,
        "letter": scene.letters[side],
        "letter_photo": scene.letters[side].photos.get(),
    }


# --- expectations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    statuses: frozenset[int]
    locations: tuple[str, ...] = ()  # for a redirect: where it may point (prefixes)
    denial: bool = False  # the object or page is not for this role

    def matches(self, response) -> bool:
        if response.status_code not in self.statuses:
            return False
        if self.locations and response.status_code in (301, 302):
            return response["Location"].startswith(self.locations)
        return True

    def __str__(self) -> str:
        where = f" → {'|'.join(self.locations)}" if self.locations else ""
        return f"{'/'.join(map(str, sorted(self.statuses)))}{where}"


def status(*codes: int) -> Expect:
    return Expect(frozenset(codes), denial=all(c in (401, 403, 404, 405, 429) for c in codes))


def to(*prefixes: str, denial: bool = False) -> Expect:
    return Expect(frozenset({302}), prefixes, denial)


OK = status(200)
LOGIN = to(*LOGIN_PAGES, denial=True)
FORBIDDEN, NOT_FOUND, NOT_ALLOWED = status(403), status(404), status(405)
ANY = Expect(frozenset(range(200, 500)))  # not a server error; nothing more is known


def row(*expected: Expect) -> dict[str, Expect]:
    assert len(expected) == len(ROLES)
    return dict(zip(ROLES, expected, strict=True))


def everyone(expect: Expect) -> dict[str, Expect]:
    return dict.fromkeys(ROLES, expect)


def logged_in(expect: Expect) -> dict[str, Expect]:
    return {"anon": LOGIN, **dict.fromkeys(LOGGED_IN, expect)}


def for_supervisors(supervisors: Expect, others: Expect) -> dict[str, Expect]:
    return row(LOGIN, supervisors, supervisors, others, others, others, others)


def for_departments(departments: Expect, supervisors: Expect = FORBIDDEN) -> dict[str, Expect]:
    return row(LOGIN, supervisors, supervisors, departments, departments, departments, departments)


TO_ISSUES = to("/issues/", denial=True)  # /me/ is a supervisor's page: others go to the list
# GET with the objects of ``foreign``. Where a 200 is listed for an object outside the user's
# own work, the design makes it so (see the comment on the row).
SITE = {
    "home": everyone(OK),
    "project-list": everyone(OK),
    "project-detail": everyone(OK),  # projects are public; their issues are filtered
    "project-notice": everyone(OK),
    "healthz": everyone(OK),
    "elder-mode": everyone(NOT_ALLOWED),  # POST only (the POST is below)
    "me": for_supervisors(OK, TO_ISSUES),
    "issue-list": logged_in(OK),
    "issue-new": for_supervisors(OK, FORBIDDEN),
    # The filing form's duplicate hint: only a supervisor's own projects answer (empty otherwise).
    "issue-similar": for_supervisors(OK, NOT_FOUND),
    "feed": logged_in(OK),
    "digest": for_departments(OK),
    "consultation": everyone(OK),  # participation and results are public; voting needs a code
    "consultation-paper": for_supervisors(NOT_FOUND, FORBIDDEN),  # only their projects'
    "consultation-slips": row(LOGIN, *[NOT_FOUND] * 5, OK),
    "patrol-list": logged_in(OK),
    "patrol-new": for_supervisors(OK, FORBIDDEN),
    "patrol-stale": for_departments(OK),
    # Patrols, like issues, are transparent to supervisors; staff see their projects' only.
    "patrol-detail": row(LOGIN, OK, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK),
    "patrol-photo": row(LOGIN, OK, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK),
    "patrol-photo-thumbnail": row(LOGIN, OK, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK),
    "patrol-check-issue": logged_in(NOT_ALLOWED),  # POST only; the POST is below
    "supervisor-directory": for_departments(OK),
    "supervisor-certificate": row(LOGIN, *[NOT_FOUND] * 5, OK),
    "dashboard": for_departments(OK),
    "dashboard-export": for_departments(OK),
    "monthly-report": for_departments(OK),
    "notifications": logged_in(OK),
    "notifications-read": logged_in(NOT_ALLOWED),
    "notification-open": logged_in(NOT_ALLOWED),
    # A photo: for whom may see its issue; the public only those of public issues.
    "photo": row(NOT_FOUND, OK, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK),
    "photo-thumbnail": row(NOT_FOUND, OK, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK),
    # A voice note: the same rule as a photo.
    "voice-note": row(NOT_FOUND, OK, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK),
    # What the service worker keeps for a supervisor without a signal; nothing personal in it.
    "offline": everyone(OK),
    "service-worker": everyone(OK),
    "settings": logged_in(OK),  # one's own password, elder mode, language, keys
    "login": {"anon": OK, **dict.fromkeys(LOGGED_IN, to("/"))},
    "logout": everyone(NOT_ALLOWED),  # POST only
    # The second step of a login with two factors: without a password step pending, to the login.
    "login-otp": everyone(to("/accounts/login/", denial=True)),
    "otp-setup": row(LOGIN, *[FORBIDDEN] * 5, OK),  # the bureau (and superusers) only
    # Signing in or resetting a password by SMS code: off unless SMS_BACKEND is set (as here),
    # then not there at all, for anyone; tests/test_sms_login.py tries them switched on.
    "sms-login": everyone(NOT_FOUND),
    "sms-login-code": everyone(NOT_FOUND),
    "sms-reset": everyone(NOT_FOUND),
    "sms-reset-code": everyone(NOT_FOUND),
    "password_change": logged_in(OK),
    "password_change_done": logged_in(OK),
    "set_language": everyone(Expect(frozenset({204, 302}))),
    "bench-bare": everyone(OK),  # routed only with BENCHMARK_BARE_VIEW=1 (make bench)
    "api-keys": logged_in(OK),  # one's own API keys
    "api-key-revoke": logged_in(NOT_ALLOWED),  # POST only; tests/test_api.py posts it
    # 居民来信: anyone writes to a project (no account); the 查询码 is the key to a letter, as a
    # voting code is to a ballot, so whoever holds one reads the letter and its photos. Only the
    # project's serving supervisors find a letter by its id and triage it.
    "letter-new": everyone(OK),
    "letter-sent": everyone(to("/projects/")),  # nothing sent from this browser: the project
    "letter-track": everyone(OK),
    "letter-photo": everyone(OK),
    "letter-photo-thumbnail": everyone(OK),
    "letter-inbox": for_supervisors(OK, FORBIDDEN),
    "letter-triage": row(LOGIN, *[NOT_FOUND] * 6),
    "letter-answer": logged_in(NOT_ALLOWED),  # POST only (the POSTs are below)
    "letter-file": logged_in(NOT_ALLOWED),
    "letter-support": logged_in(NOT_ALLOWED),
    "letter-decline": logged_in(NOT_ALLOWED),
    # 回头看 nobody paid: the bureau's list; for everyone else there is no such page.
    "return-visits-missed": row(LOGIN, *[NOT_FOUND] * 5, OK),
    # The province's home (every county's programme), and choosing a county (the one of the
    # project of ``foreign``): a cookie, for anyone, then back to /.
    "regions": everyone(OK),
    "region-choose": everyone(to("/")),
    # Signing in with WeChat and choosing how to hear (accounts/wechat_views.py): off unless
    # WeChat (or SMS notices) is configured, as here: not there (404), or POST only (405).
    "wechat-login": everyone(NOT_FOUND),
    "wechat-callback": everyone(NOT_FOUND),
    "wechat-bind": logged_in(NOT_FOUND),
    "wechat-unbind": logged_in(NOT_ALLOWED),
    "message-choices": logged_in(NOT_ALLOWED),
}
# Routes of other includes that are public by design (the JSON API has its own tests,
# tests/test_api.py: every other operation there answers 401 without a key).
PUBLIC_INCLUDES = {
    ("api-v1", "openapi-json"): OK,
    ("api-v1", "openapi-view"): OK,
    ("api-v1", "project_list"): OK,  # projects are public, as on /projects/
}
# Includes with rows of their own: an export is its requester's alone (tests/test_exports.py
# walks every role against a real one); here, one that is not theirs is not found.
INCLUDE_ROWS = {
    ("exports", "detail"): logged_in(NOT_FOUND),
    ("exports", "download"): logged_in(NOT_FOUND),
}
# POSTs besides the steps, with the objects of ``foreign``.
SITE_POSTS = {
    "notification-open": logged_in(NOT_FOUND),  # another user's notification
    "patrol-check-issue": logged_in(NOT_FOUND),  # another supervisor's patrol
    "notifications-read": logged_in(to("/notifications/")),  # marks only one's own
    "consultation-paper": for_supervisors(NOT_FOUND, FORBIDDEN),
    "elder-mode": everyone(to("/")),  # a cookie, for anyone; back to a page of this site
    "login-otp": everyone(to("/accounts/login/", denial=True)),
    "otp-setup": row(LOGIN, *[FORBIDDEN] * 5, Expect(frozenset({200, 400}))),
    # Anyone may write a letter; it lands on the project of the address, whatever else is posted.
    "letter-new": everyone(to("/projects/")),
    # Another project's letter: not found, whatever is posted.
    "letter-answer": logged_in(NOT_FOUND),
    "letter-file": logged_in(NOT_FOUND),
    "letter-support": logged_in(NOT_FOUND),
    "letter-decline": logged_in(NOT_FOUND),
}

# --- the second county and the oversight -------------------------------------------------------
# A second pass walks every Ruian role through the site and the panel with the SECOND county's
# objects (``foreign(scene.other, "bureau")``): all of them lie outside every Ruian scope. Where a
# row above allows a Ruian role an object only because the object is in its county (the bureau
# reads everything of its county, supervisors every issue and patrol of it), the answer is now
# the denial; public pages (projects, notices, consultation and survey results, letters by their
# 查询码) stay public. A row not named here answers as above. The second county's people
# (``SECOND``: bureau_b, alice_b, handler_b) walk with Ruian's objects and answer as the Ruian
# role of the same desk does abroad.
NOT_IN_COUNTY = dict.fromkeys(("alice", "bob", "bureau"), NOT_FOUND)
CROSS = {
    "consultation-slips": {"bureau": NOT_FOUND},
    "patrol-detail": NOT_IN_COUNTY,
    "patrol-photo": NOT_IN_COUNTY,
    "patrol-photo-thumbnail": NOT_IN_COUNTY,
    "supervisor-certificate": {"bureau": NOT_FOUND},
    "photo": NOT_IN_COUNTY,
    "photo-thumbnail": NOT_IN_COUNTY,
    "voice-note": NOT_IN_COUNTY,
    "survey-open": {"bureau": NOT_FOUND},
}
CROSS_POSTS = {
    "survey-open": {"bureau": NOT_FOUND},
    "survey-close": {"bureau": NOT_FOUND},
}

# The oversight (省住建厅, 温州市住建局): reads what the bureau reads in every county below it
# (issues, photos, patrols, the figures, the digest, exports), presses (督办), and has no desk:
# no filing, no patrol, no paper ballot, no survey to open or close, no supervisor directory or
# certificate, no consultation slips, no letters to triage, no panel. A pair is (inside, outside)
# its region; the province walks with the second county's objects (inside), 温州 with the same
# ones (outside, under 杭州市).
INSIDE_ONLY = (OK, NOT_FOUND)
OVERSIGHT_SITE = {
    "home": OK,
    "regions": OK,
    "region-choose": to("/"),
    "project-list": OK,
    "project-detail": OK,
    "project-notice": OK,
    "healthz": OK,
    "elder-mode": NOT_ALLOWED,
    "me": TO_ISSUES,
    "issue-list": OK,
    "issue-new": FORBIDDEN,
    "issue-similar": NOT_FOUND,
    "feed": OK,
    "digest": OK,
    "consultation": OK,
    "consultation-paper": FORBIDDEN,
    "consultation-slips": NOT_FOUND,
    "patrol-list": OK,
    "patrol-new": FORBIDDEN,
    "patrol-stale": OK,
    "patrol-detail": INSIDE_ONLY,
    "patrol-photo": INSIDE_ONLY,
    "patrol-photo-thumbnail": INSIDE_ONLY,
    "patrol-check-issue": NOT_ALLOWED,
    "supervisor-directory": FORBIDDEN,
    "supervisor-certificate": NOT_FOUND,
    "dashboard": OK,
    "dashboard-export": OK,
    "monthly-report": OK,
    "notifications": OK,
    "notifications-read": NOT_ALLOWED,
    "notification-open": NOT_ALLOWED,
    "photo": INSIDE_ONLY,
    "photo-thumbnail": INSIDE_ONLY,
    "voice-note": INSIDE_ONLY,
    "offline": OK,
    "service-worker": OK,
    "settings": OK,
    "login": to("/"),
    "logout": NOT_ALLOWED,
    "login-otp": to("/accounts/login/", denial=True),
    "otp-setup": OK,  # two factors for the oversight as for the bureau
    "wechat-login": NOT_FOUND,
    "wechat-callback": NOT_FOUND,
    "wechat-bind": NOT_FOUND,
    "wechat-unbind": NOT_ALLOWED,
    "message-choices": NOT_ALLOWED,
    "sms-login": NOT_FOUND,
    "sms-login-code": NOT_FOUND,
    "sms-reset": NOT_FOUND,
    "sms-reset-code": NOT_FOUND,
    "password_change": OK,
    "password_change_done": OK,
    "set_language": Expect(frozenset({204, 302})),
    "bench-bare": OK,
    "api-keys": OK,
    "api-key-revoke": NOT_ALLOWED,
    "letter-new": OK,
    "letter-sent": to("/projects/"),
    "letter-track": OK,
    "letter-photo": OK,
    "letter-photo-thumbnail": OK,
    "letter-inbox": FORBIDDEN,
    "letter-triage": NOT_FOUND,
    "letter-answer": NOT_ALLOWED,
    "letter-file": NOT_ALLOWED,
    "letter-support": NOT_ALLOWED,
    "letter-decline": NOT_ALLOWED,
    "return-visits-missed": OK,
    "acceptance-record": NOT_FOUND,
    "acceptance-new": NOT_FOUND,
    "acceptance-sign": NOT_FOUND,
    "acceptance-opinion": NOT_FOUND,
    "acceptance-leftover": NOT_ALLOWED,
    "acceptance-close": NOT_ALLOWED,
    "acceptance-photo": NOT_FOUND,
    "acceptance-photo-thumbnail": NOT_FOUND,
    "survey": OK,
    "survey-paper": FORBIDDEN,
    "survey-open": FORBIDDEN,
    "survey-close": NOT_ALLOWED,
}
OVERSIGHT_POSTS = {
    "notification-open": NOT_FOUND,
    "patrol-check-issue": NOT_FOUND,
    "notifications-read": to("/notifications/"),
    "consultation-paper": FORBIDDEN,
    "elder-mode": to("/"),
    "login-otp": to("/accounts/login/", denial=True),
    "otp-setup": Expect(frozenset({200, 400})),
    "letter-new": to("/projects/"),
    "letter-answer": NOT_FOUND,
    "letter-file": NOT_FOUND,
    "letter-support": NOT_FOUND,
    "letter-decline": NOT_FOUND,
    "survey": status(400),
    "survey-paper": FORBIDDEN,
    "survey-open": FORBIDDEN,
    "survey-close": FORBIDDEN,
}


def site_expect(role: str, name: str, abroad: bool, posted: bool = False) -> Expect | None:
    """The row of ``name`` for ``role``: with its own scope's objects, or (``abroad``) with
    another county's; None when the route has no row (the generic rule applies)."""
    if role in OVERSIGHT:
        expect = (OVERSIGHT_POSTS if posted else OVERSIGHT_SITE).get(name)
        if isinstance(expect, tuple):
            expect = expect[1 if abroad else 0]
        return expect
    if role in SECOND:  # walks with Ruian's objects only: abroad
        role, abroad = SECOND[role], True
    table, cross = (SITE_POSTS, CROSS_POSTS) if posted else (SITE, CROSS)
    if abroad and role in cross.get(name, {}):
        return cross[name][role]
    return table.get(name, {}).get(role)


# Known bugs: (role, route name) → reason. The matrix accepts the buggy answer there (and counts
# it), and a strict xfail test below asserts the right one.
PAPER_BUG = (
    "BUG: supervision/resident_views.py consultation_paper() only checks "
    "is_serving_supervisor(); any supervisor opens the paper-ballot form (and the household list) "
    "of a consultation of a project they do not watch. residents.cast_ballot() refuses the POST "
    "(403), so no vote is taken, but the page should be refused too: check "
    "request.user.supervisor.projects.filter(pk=item.project_id).exists() and raise "
    "PermissionDenied (or 404)."
)
KNOWN_BUGS: dict = {}  # fixed: consultation_paper answers 404 outside the supervisor's projects

STAFF_MODELS = {"issue", "project", "extensionrequest", "responsetemplate"}
BUREAU_KEEPS = {"routingrule", "calendarchange", "department"}


# Panel pages of one object: another county's object is missing for a bureau (404), whatever
# the view (an object outside a department's scope is already so in the rows below). The
# calendar of working days is one for every county (``CalendarChange`` has no region): both
# scenes share its one day, and each bureau keeps it.
OBJECT_VIEWS = {"change", "history", "delete", "import"}
SHARED_MODELS = {"calendarchange"}


def panel_expect(role: str, route: Route, abroad: bool = False) -> Expect:
    """A GET of a panel address with the objects of ``foreign`` (``abroad``: of another
    county)."""
    name, model = route.name, model_of(route)
    if role == "anon":
        return to("/panel/", denial=True) if name == "logout" else LOGIN
    if role in SECOND:  # walks with Ruian's objects only
        role, abroad = SECOND[role], True
    # The panel is not theirs (``PanelSite.has_permission``: department staff and the bureau
    # only): its login sends them to 我的 (the oversight on to the issue list), every other
    # address to the login.
    if role in SUPERVISORS or role in OVERSIGHT:
        if name == "login":
            return to("/me/")
        return to("/panel/", denial=True) if name == "logout" else LOGIN
    if abroad and role == "bureau" and model and model not in SHARED_MODELS:
        view = name.rsplit("_", 1)[1] if name else "redirect"
        if view in OBJECT_VIEWS:
            return NOT_FOUND
    site_pages = {
        "index": OK,
        "app_list": OK,
        "password_change": OK,
        "password_change_done": OK,
        "jsi18n": OK,
        "login": to("/panel/"),
        "logout": NOT_ALLOWED,
        "autocomplete": FORBIDDEN,  # no field to complete
        # To the issue page, which decides (followed below).
        "view_on_site": to("/issues/", "http://testserver/issues/"),
    }
    if name in site_pages:
        return site_pages[name]
    if not model:  # the catch-all
        return NOT_FOUND
    view = name.rsplit("_", 1)[1] if name else "redirect"
    if view == "redirect":  # <object_id>/ → <object_id>/change/, which decides
        return to(f"/panel/supervision/{model}/")
    bureau = role == "bureau"
    if model in STAFF_MODELS:
        own_add = model == "responsetemplate"
        if view in ("add", "delete"):
            if bureau:
                return OK if own_add else FORBIDDEN
            return (OK if own_add else FORBIDDEN) if view == "add" else NOT_FOUND
        if view == "changelist" or bureau:
            return OK
        return NOT_FOUND  # change, history: outside their scope
    if model in BUREAU_KEEPS:
        return OK if bureau else FORBIDDEN
    if model == "delivery":
        return (FORBIDDEN if view in ("add", "delete") else OK) if bureau else FORBIDDEN
    if model == "consultation":  # the bureau and subdistrict offices, on their projects
        if bureau:
            return FORBIDDEN if view == "delete" else OK
        office = role in ("handler", "other_staff")
        if view in ("changelist", "add"):
            return OK if office else FORBIDDEN
        return NOT_FOUND  # change, history, delete, import: not their subdistrict's
    if model == "letter":  # escalated letters: the bureau's, and each office's own; read-only
        if view == "add":
            return FORBIDDEN
        if bureau:
            return FORBIDDEN if view == "delete" else OK
        if view == "changelist":
            return OK if role in ("handler", "other_staff") else FORBIDDEN
        return NOT_FOUND  # change, history, delete: not their subdistrict's
    if model == "supervisor":  # the bureau appoints and dismisses
        if bureau:
            return FORBIDDEN if view == "delete" else OK
        return FORBIDDEN
    # A model added to the panel since: never a server error, and an object address is refused
    # to those who may not see it; nothing more is known.
    return ANY


def admin_expect(role: str, route: Route) -> Expect:
    """The full admin is for ``is_staff`` accounts; nobody in the world is one."""
    if route.name == "login":  # the site's login (limits, two factors); no admin for them
        return to("/accounts/login/", denial=True) if role == "anon" else FORBIDDEN
    if route.name == "logout":
        return to("/admin/", denial=True)
    return LOGIN


def generic_expect(role: str) -> Expect:
    if role == "anon":
        return Expect(frozenset({302, 401, 403, 404, 405}), LOGIN_PAGES, denial=True)
    return ANY


# --- running it --------------------------------------------------------------------------------


@dataclass
class Tally:
    requests: int = 0
    denials: int = 0
    allows: int = 0
    unexpected_allows: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    known_bugs: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"ACCESS MATRIX: requests={self.requests}, denials={self.denials}, "
            f"allows={self.allows}, unexpected_allows={len(self.unexpected_allows)}, "
            f"mismatches={len(self.mismatches)}, server_errors={len(self.server_errors)}, "
            f"leaks={len(self.leaks)}, known_bugs={len(self.known_bugs)}"
        )


def allowed(response) -> bool:
    """Did the request get somewhere: a page, a file, or a redirect that is not to a login."""
    if 200 <= response.status_code < 300:
        return True
    if response.status_code in (301, 302, 303, 307, 308):
        location = response["Location"]
        return not location.startswith(LOGIN_PAGES) and location not in ("/panel/", "/admin/")
    return False


def page_text(response) -> str:
    kind = response.get("Content-Type", "")
    if kind.startswith(("text/", "application/json", "application/xml")):
        return response.content.decode(errors="replace")
    if "spreadsheetml" in kind:
        book = load_workbook(io.BytesIO(response.content), read_only=True)
        return " ".join(
            str(cell)
            for sheet in book.worksheets
            for row_ in sheet.iter_rows(values_only=True)
            for cell in row_
            if cell is not None
        )
    return ""


def login_as(client, scene: Scene, role: str) -> None:
    client.logout()
    user = scene.user(role)
    if user is not None:
        client.force_login(user)


@dataclass(frozen=True)
class Pass:
    """One walk of one role: with which county's objects, whether they are outside the role's
    county (``abroad``), and whether it also walks what does not depend on them (issue pages and
    steps of every issue of both counties, the admin, the other includes)."""

    role: str
    objects: dict
    abroad: bool
    full: bool


def passes(scene: Scene) -> list[Pass]:
    """Each Ruian role twice: with objects of other scopes in Ruian (``foreign``), then with the
    second county's; the province with the second county's objects (inside its region), 温州
    with the same (outside), the second county's people with Ruian's (outside)."""
    other = scene.other
    assert other is not None, "the matrix runs on the ``both`` scene"
    walks = []
    for role in ROLES:
        walks.append(Pass(role, foreign(scene, role), abroad=False, full=True))
        walks.append(Pass(role, foreign(other, "bureau"), abroad=True, full=False))
    walks.append(Pass("ob_province", foreign(other, "bureau"), abroad=False, full=True))
    walks.append(Pass("ob_city", foreign(other, "bureau"), abroad=True, full=True))
    for role in SECOND:
        walks.append(Pass(role, foreign(scene, "bureau"), abroad=True, full=True))
    return walks


class Matrix:
    def __init__(self, client, scene: Scene):
        self.client = client
        self.scene = scene
        self.tally = Tally()
        self.abroad = False

    def hidden_titles(self, role: str, public: bool = False) -> list[str]:
        """What no page may show ``role``; with ``public``, public issues are not hidden."""
        hidden = [
            SECRET.format(k)
            for k, who in VISIBLE.items()
            if role not in who and not (public and "anon" in who)
        ]
        # Another county's supervisors: not even a certificate number (RAJD-<username>).
        if role in SECOND:
            hidden += ["RAJD-alice", "RAJD-bob"]
        elif role != "ob_province":
            hidden.append("RAJD-xh-")
        return hidden + list(LETTER_MOBILES.values())  # a letter's number: never whole

    def send(
        self,
        role,
        method,
        url,
        data,
        expect: Expect,
        label,
        after=None,
        bug=None,
        headers=None,
        public=False,
    ):
        """One request in a savepoint: compare with ``expect``; ``after(response)`` inspects the
        database before the rollback and returns what is wrong, if anything. ``public``: the
        address serves public issues to anyone (Open311), so their titles are no leak there."""
        tally = self.tally
        tally.requests += 1
        where = f"{role:11} {method} {url} [{label}{' abroad' if self.abroad else ''}]"
        with transaction.atomic():
            if method == "POST" and isinstance(data, str):  # a JSON body (the API)
                response = self.client.post(
                    url, data, content_type="application/json", headers=headers
                )
            elif method == "POST":
                response = self.client.post(url, data or {}, headers=headers)
            else:
                response = self.client.get(url, data or {}, headers=headers)
            problem = after(response) if after else None
            transaction.set_rollback(True)
        got = f"{response.status_code}"
        if response.status_code in (301, 302):
            got += f" → {response['Location']}"
        if response.status_code >= 500:
            tally.server_errors.append(f"{where}: {got}")
        if bug is not None and not expect.matches(response):
            tally.known_bugs.append(f"{where}: expected {expect}, got {got}")
            return response
        if expect.matches(response):
            if expect.denial:
                tally.denials += 1
            else:
                tally.allows += 1
        elif expect.denial and allowed(response):
            tally.unexpected_allows.append(f"{where}: expected {expect}, got {got}")
        else:
            tally.mismatches.append(f"{where}: expected {expect}, got {got}")
        if problem:
            tally.mismatches.append(f"{where}: {problem}")
        if response.status_code == 200:
            text = page_text(response)
            for title in self.hidden_titles(role, public):
                if title in text:
                    tally.leaks.append(f"{where}: shows {title}")
        return response

    # The rows.

    def site_route(self, role: str, route: Route, walk_: Pass) -> None:
        name, objects = route.name, walk_.objects
        if name == "issue-detail":
            if walk_.full:
                for key, issue in self.scene.all_issues().items():
                    expect = LOGIN if role == "anon" else OK if role in VISIBLE[key] else NOT_FOUND
                    self.send(role, "GET", build(route, {"pk": issue.pk}), None, expect, key)
            return
        step = step_of(route)
        if step is not None:
            if walk_.full:
                self.step_route(role, route, step)
            return
        values = self.values(route, objects)
        url = build(route, values)
        expect = site_expect(role, name, walk_.abroad) or generic_expect(role)
        bug = KNOWN_BUGS.get((role, name, "GET"))
        self.send(role, "GET", url, None, expect, "GET", bug=bug)
        if name in SITE_POSTS:
            if name == "survey":
                cache.clear()  # wrong codes are counted per address: each try starts afresh
            self.send(
                role,
                "POST",
                url,
                self.post_data(name, objects),
                site_expect(role, name, walk_.abroad, posted=True) or generic_expect(role),
                "POST",
                after=self.post_check(role, name),
                bug=KNOWN_BUGS.get((role, name, "POST")),
            )

    def values(self, route: Route, objects: dict) -> dict:
        name = route.name or ""
        kinds = {
            "project-detail": "project",
            "project-notice": "project",
            "consultation": "consultation",
            "consultation-paper": "consultation",
            "consultation-slips": "consultation",
            "survey": "survey",
            "survey-paper": "survey",
            "survey-close": "survey",
            "survey-open": "project",
            "patrol-detail": "patrol",
            "patrol-check-issue": "patrol",
            "patrol-photo": "patrol_photo",
            "patrol-photo-thumbnail": "patrol_photo",
            "supervisor-certificate": "supervisor",
            "notification-open": "notification",
            "photo": "photo",
            "photo-thumbnail": "photo",
            "voice-note": "voice_note",
            "letter-new": "project",
            "letter-sent": "project",
            "letter-triage": "letter",
            "letter-answer": "letter",
            "letter-file": "letter",
            "letter-support": "letter",
            "letter-decline": "letter",
            "letter-photo": "letter_photo",
            "letter-photo-thumbnail": "letter_photo",
        }
        values = {}
        for param in params(route.route):
            if param == "check":
                values[param] = objects["check"].pk
            elif name == "region-choose":  # the county of the project
                values[param] = objects["project"].neighbourhood.subdistrict.region.code
            elif param == "code":  # a letter's 查询码
                values[param] = objects["letter"].code
            elif name in kinds:
                values[param] = objects[kinds[name]].pk
            else:
                values[param] = MISSING_PK
        return values

    def post_data(self, name: str, objects: dict) -> dict:
        if name == "elder-mode":
            return {"next": "//evil.example/"}  # not followed off the site
        if name in ("login-otp", "otp-setup"):
            return {"code": "123456"}
        if name.startswith("letter-"):
            side = self.scene.side_of_project(objects["letter"].project_id)
            w = side.world
            ours = objects["letter"].project_id == w.project.pk
            issue = side.issues[f"{side.prefix}x_sub" if ours else f"{side.prefix}y_sub"]
            elsewhere = w.other_project if objects["project"] == w.project else w.project
            return {
                "summary": "楼道灯坏了",
                "text": "已答复",
                "reason": "不予采纳",
                "category": Issue.Category.SAFETY,
                "title": "围挡倒了",
                "issue": issue.pk,
                "status": "answered",
                "project": elsewhere.pk,  # not taken: the address names the project
            }
        if name.startswith("survey"):
            # A household of another project: its code does not open this survey.
            survey = objects["survey"]
            stranger = Household.objects.exclude(consultation__project=survey.project_id).first()
            return {
                "household": survey.project.consultations.get().households.first().pk,
                "code": stranger.code,
                "overall": "satisfied",
                "conduct": "satisfied",
                "area-building": "satisfied",
            }
        if name == "consultation-paper":
            consultation = objects["consultation"]
            item = consultation.items.get()
            return {"household": consultation.households.first().pk, f"item-{item.pk}": "yes"}
        return {}

    def post_check(self, role: str, name: str):
        def unread_of_others(response):
            others = Notification.objects.exclude(recipient=self.scene.user(role))
            if others.filter(read_at__isnull=False).exists():
                return "marked another user's notifications read"
            return None

        def nothing_cast(response):
            cast = Consultation.objects.filter(ballots__isnull=False).exists()
            return "a ballot was cast" if cast else None

        def no_issue_made(response):
            from supervision.models import PatrolCheck

            return (
                "a patrol check became an issue"
                if PatrolCheck.objects.filter(issue__isnull=False).exists()
                else None
            )

        def letters_untouched(response):
            if Letter.objects.exclude(status=Letter.Status.NEW).exists():
                return "a letter of another project was triaged"
            if Issue.objects.filter(from_residents=True).exists():
                return "a letter of another project became an issue"
            return None

        def one_letter_on_the_project(response):
            scene_letters = [x.pk for side in self.scene.sides() for x in side.letters.values()]
            new = Letter.objects.exclude(pk__in=scene_letters)
            if response.status_code != 302:
                return None
            project = int(response["Location"].split("/")[2])  # /projects/<id>/letters/sent/
            if list(new.values_list("project", "status")) != [(project, Letter.Status.NEW)]:
                return "not one new letter on the project of the address"
            return None

        def no_survey_answer(response):
            return "a survey answer was saved" if SurveyAnswer.objects.exists() else None

        def survey_open_unless_bureau(response):
            own_bureau = role == "bureau" and not self.abroad
            if not own_bureau and Survey.objects.filter(closed_at__isnull=False).exists():
                return "a survey was closed"
            return None

        def stays_on_the_site(response):
            if response.status_code == 302 and response["Location"] != "/":
                return f"redirected to {response['Location']}"
            return None

        return {
            "elder-mode": stays_on_the_site,
            "notifications-read": unread_of_others,
            "consultation-paper": nothing_cast,
            "survey": no_survey_answer,
            "survey-paper": no_survey_answer,
            "survey-close": survey_open_unless_bureau,
            "survey-open": survey_open_unless_bureau,
            "patrol-check-issue": no_issue_made,
            **dict.fromkeys(
                ("letter-answer", "letter-file", "letter-support", "letter-decline"),
                letters_untouched,
            ),
            "letter-new": one_letter_on_the_project,
        }.get(name)

    def step_route(self, role: str, route: Route, step: str) -> None:
        # GET: POST only (after the login), before any lookup of the issue.
        issue = self.scene.issues["x_sub"]
        expect = LOGIN if role == "anon" else NOT_ALLOWED
        self.send(role, "GET", build(route, {"pk": issue.pk}), None, expect, f"{step} GET")
        state = STEPS[step][0]
        for side in self.scene.sides():
            for x_or_y in ("x", "y"):
                key = f"{side.prefix}{x_or_y}_{STATE_KEY[state]}"
                issue = side.issues[key]
                may = may_take(step, key)
                if role == "anon":
                    expect = LOGIN
                elif role not in VISIBLE[key]:
                    expect = NOT_FOUND
                elif role in may and step == "transfer" and SECOND.get(role, role) in STAFF:
                    expect = to("/issues/")  # transferred away: back to their queue
                elif role in may:
                    expect = to(issue.get_absolute_url())
                else:
                    expect = FORBIDDEN
                self.send(
                    role,
                    "POST",
                    build(route, {"pk": issue.pk}),
                    step_data(self.scene, step, issue),
                    expect,
                    f"{step} on {key}",
                    after=self.step_check(role, step, issue, expect),
                )

    def step_check(self, role: str, step: str, issue: Issue, expect: Expect):
        before = Issue.objects.filter(pk=issue.pk).values().get()
        events = IssueEvent.objects.filter(issue=issue).count()
        world = self.scene.side_of(issue).world

        def check(response):
            now = Issue.objects.filter(pk=issue.pk).values().get()
            # Taken: a redirect to the page, or the API's 200; anything else is a refusal.
            if expect.denial or response.status_code not in (200, 302):
                if now != before:
                    return f"a refused step changed the issue: {before} → {now}"
                if IssueEvent.objects.filter(issue=issue).count() != events:
                    return "a refused step recorded an event"
                return None
            for name in ("reference", "reporter_id", "is_public", "project_id", "households"):
                if now[name] != before[name]:
                    return f"the step set {name}: {before[name]!r} → {now[name]!r}"
            moved_to = {
                "transfer": world.bureau_dept.pk,  # where step_data sends it
                "appeal": world.bureau_dept.pk,  # an appeal goes to the bureau
            }.get(step, before["department_id"])
            if now["department_id"] != moved_to:
                return f"the step moved the issue to department {now['department_id']}"
            if step != "verify" and (now["status"] == S.CLOSED or now["rating"]):
                return f"the step closed or rated the issue: {now['status']} {now['rating']!r}"
            smuggled = now["contractor_id"] == world.other_contractor.pk
            if step == "dispatch" and smuggled and issue.reporter_id == world.alice.pk:
                return "the smuggled contractor was taken"
            # 上级督办 sets the date the county's bureau owes its answer; 回复督办 settles it;
            # nothing else (the bureau's own 督办 neither) touches it.
            due, was = now["oversight_due_at"], before["oversight_due_at"]
            if step == "escalate" and role in OVERSIGHT:
                if due is None or due == was:
                    return "the oversight's 督办 set no date to answer by"
            elif step == "reply":
                if due is not None:
                    return "回复督办 left the issue waiting for an answer"
            elif due != was:
                return f"the step changed the date owed to the oversight: {was} → {due}"
            return None

        return check

    def panel_route(self, role: str, route: Route, walk_: Pass) -> None:
        objects = walk_.objects
        model = model_of(route)
        values = {}
        for param in params(route.route):
            if param == "app_label":
                values[param] = "supervision"
            elif param == "url":
                values[param] = "no-such-page/"
            elif param == "content_type_id":
                values[param] = ContentType.objects.get_for_model(Issue).pk
            elif route.name == "view_on_site":
                values[param] = objects["issue"].pk
            else:
                values[param] = objects[model].pk if model in objects else MISSING_PK
        expect = panel_expect(role, route, walk_.abroad)
        response = self.send(role, "GET", build(route, values), None, expect, "panel")
        if route.name == "view_on_site" and response.status_code == 302:
            key = next(k for k, v in self.scene.all_issues().items() if v.pk == objects["issue"].pk)
            target = OK if role in VISIBLE[key] else NOT_FOUND
            location = response["Location"]
            if location.startswith(("/issues/", "http://testserver/issues/")):
                self.send(role, "GET", location, None, target, "panel view_on_site")

    def keyed_reads(self, role: str) -> None:
        """The JSON API and Open311 with the role's own key (none for the anonymous): every
        issue of both counties answers as its page does (the API asks for a key: 401 without
        one; Open311 reads public issues without one), and their lists show nothing the role
        may not read."""
        user = self.scene.user(role)
        key = create_token(user, "matrix")[1] if user is not None else None
        headers = {"Authorization": f"Bearer {key}"} if key else None
        open311 = {"api_key": key} if key else None
        for name, issue in self.scene.all_issues().items():
            readable = OK if role in VISIBLE[name] else NOT_FOUND
            api = status(401) if key is None else readable
            url = f"/api/v1/issues/{issue.pk}"
            self.send(role, "GET", url, None, api, f"api {name}", headers=headers)
            # Open311 reads a public issue for anyone, with a key or without (GeoReport's rule,
            # api/georeport.py): of any county, whoever's key it is.
            public = "anon" in VISIBLE[name]
            url = f"/open311/v2/requests/{issue.pk}.json"
            expect = OK if public else readable
            self.send(role, "GET", url, open311, expect, f"open311 {name}", public=True)
        lists = ("/api/v1/issues", "/api/v1/feed", "/api/v1/notifications", "/api/v1/extensions")
        for url in lists:
            # Read for their leaks; who may list extension requests is test_api.py's business.
            expect = status(401) if key is None else Expect(frozenset({200, 403}))
            self.send(role, "GET", url, None, expect, "api list", headers=headers)
        url = "/open311/v2/requests.json"
        self.send(role, "GET", url, open311, OK, "open311 list", public=True)
        # Two steps through the API, on the new issue of each side of each county: 签收 (a
        # department's step, never the oversight's) and 督办.
        body = {
            "accept": {"deadline": (timezone.localdate() + timedelta(days=14)).isoformat()},
            "escalate": {"text": "请尽快处理"},
        }
        for name, issue in self.scene.all_issues().items():
            if not name.endswith("_sub"):
                continue
            for step, data in body.items():
                if key is None:
                    expect = status(401)
                elif role not in VISIBLE[name]:
                    expect = NOT_FOUND
                elif role in OVERSIGHT and step == "escalate":
                    # The API's 督办 has no field for the date the county's bureau owes its
                    # answer (api/v1.py: TextIn), so the oversight's is refused there (400),
                    # changing nothing; 200 once it has one.
                    expect = Expect(frozenset({200, 400}))
                else:
                    expect = OK if role in may_take(step, name) else FORBIDDEN
                self.send(
                    role,
                    "POST",
                    f"/api/v1/issues/{issue.pk}/{step}",
                    json.dumps(data),
                    expect,
                    f"api {step} on {name}",
                    headers=headers,
                    after=self.step_check(role, step, issue, expect),
                )

    def admin_route(self, role: str, route: Route) -> None:
        values = {}
        for param in params(route.route):
            if param == "app_label":
                values[param] = "supervision"
            elif param == "url":
                values[param] = "no-such-page/"
            elif param == "content_type_id":
                values[param] = ContentType.objects.get_for_model(Issue).pk
            else:
                values[param] = self.admin_object(route)
        self.send(role, "GET", build(route, values), None, admin_expect(role, route), "admin")

    def admin_object(self, route: Route):
        match = re.match(r"admin/(\w+)/(\w+)/", route.route)
        if not match:
            return MISSING_PK
        try:
            model = apps.get_model(match.group(1), match.group(2))
        except LookupError:
            return MISSING_PK
        obj = model._default_manager.order_by("pk").first()
        return obj.pk if obj is not None else MISSING_PK

    def run(self) -> Tally:
        routes = list(walk(urlpatterns))
        for walk_ in passes(self.scene):
            role = walk_.role
            self.abroad = walk_.abroad
            login_as(self.client, self.scene, role)
            if walk_.full:
                self.keyed_reads(role)
            # Without a desk the panel answers the same whatever the object: walked once.
            panel_objects = walk_.full or role in (*STAFF, "bureau")
            for route in routes:
                if route.namespace == "panel":
                    if panel_objects:
                        self.panel_route(role, route, walk_)
                elif route.namespace == "":
                    self.site_route(role, route, walk_)
                elif not walk_.full:  # the admin and the includes name no scene object
                    continue
                elif route.namespace == "admin":
                    self.admin_route(role, route)
                else:  # an include this file does not know (i18n has no namespace)
                    values = dict.fromkeys(params(route.route), MISSING_PK)
                    expect = PUBLIC_INCLUDES.get((route.namespace, route.name))
                    rows = INCLUDE_ROWS.get((route.namespace, route.name))
                    rows = rows and (rows.get(role) or rows["bureau"])
                    expect = expect or rows or generic_expect(role)
                    self.send(role, "GET", build(route, values), None, expect, "?")
        self.abroad = False
        self.walked = {walk_.role for walk_ in passes(self.scene)}
        return self.tally


# --- the tests ---------------------------------------------------------------------------------


def test_the_walk_covers_the_panel_and_the_admin():
    routes = list(walk(urlpatterns))
    walked = {(r.namespace, r.name) for r in routes}
    for site, namespace in ((panel, "panel"), (admin.site, "admin")):
        names = {p.name for p in walk(site.get_urls()) if p.name}
        assert {(namespace, name) for name in names} <= walked
    steps = {step_of(r) for r in routes if step_of(r)}
    assert steps == set(STEPS) == set(services.STEP_RULES)
    # Every name of the site itself is in the table (new pages must be added to it).
    site_names = {r.name for r in routes if r.namespace == "" and r.name}
    listed = set(SITE) | {"issue-detail"} | {f"issue-{s}" for s in STEPS}
    assert site_names <= listed, site_names - listed
    # … and in the oversight's, which names every page of the site's table and no other.
    assert set(OVERSIGHT_SITE) == set(SITE), set(SITE) ^ set(OVERSIGHT_SITE)
    assert set(OVERSIGHT_POSTS) == set(SITE_POSTS), set(SITE_POSTS) ^ set(OVERSIGHT_POSTS)
    assert set(CROSS) <= set(SITE) and set(CROSS_POSTS) <= set(SITE_POSTS)


def test_access_matrix(both, client):
    """Every address × every role of both counties and above them (``passes``)."""
    client.raise_request_exception = False
    matrix = Matrix(client, both)
    tally = matrix.run()
    assert matrix.walked == set(ALL_ROLES)
    print("\n" + tally.summary())
    for title, rows in [
        ("UNEXPECTED ALLOWS", tally.unexpected_allows),
        ("MISMATCHES", tally.mismatches),
        ("SERVER ERRORS", tally.server_errors),
        ("LEAKS", tally.leaks),
        ("KNOWN BUGS (xfail below)", tally.known_bugs),
    ]:
        if rows:
            print(f"{title}:\n  " + "\n  ".join(rows))
    assert tally.requests > 4000  # every pass ran
    assert tally.server_errors == []
    assert len(tally.unexpected_allows) == 0, tally.unexpected_allows
    assert tally.mismatches == []
    assert tally.leaks == []


# The control of the leak check: the lists the matrix reads do show each role the SECRET titles
# of its own county (and the province both), so finding none of the other county's means
# something. Page → roles it is checked for.
LIST_PAGES = {
    "/issues/?status=": ("alice", "bureau", "bureau_b", "ob_province", "ob_city"),
    "/feed/": ("alice", "bureau", "bureau_b", "ob_province", "ob_city"),
    "/dashboard/export.xlsx": ("bureau", "bureau_b", "ob_province", "ob_city"),
    "/panel/supervision/issue/": ("bureau", "bureau_b"),
    "/panel/supervision/delivery/": ("bureau", "bureau_b"),
}


@pytest.mark.parametrize("role", ["alice", "bureau", "bureau_b", "ob_province", "ob_city"])
def test_each_list_shows_its_own_county_and_nothing_of_the_other(both, client, role):
    login_as(client, both, role)
    for url, roles in LIST_PAGES.items():
        if role not in roles:
            continue
        response = client.get(url)
        assert response.status_code == 200, url
        text = page_text(response)
        shown = {key for key in VISIBLE if SECRET.format(key) in text}
        assert shown, (url, "shows no SECRET title at all")
        assert all(role in VISIBLE[key] for key in shown), (url, shown)
        counties = {key.startswith("b") for key in shown}
        expected = {False, True} if role == "ob_province" else {role == "bureau_b"}
        if url.startswith("/panel/supervision/delivery/"):
            expected = {role == "bureau_b"}  # one delivery each county, its bureau's
        assert counties == expected, (url, shown)
    if role in ("bureau", "bureau_b"):  # the directory: its own county's certificates only
        page = client.get("/supervisors/").content.decode()
        own, other = (
            ("RAJD-xh-alice", "RAJD-alice") if role == "bureau_b" else ("RAJD-alice", "RAJD-xh-")
        )
        assert own in page and other not in page


@pytest.mark.parametrize(
    "role",
    SUPERVISORS,
)
def test_paper_ballot_form_of_a_project_not_watched_is_refused(scene, client, role):
    login_as(client, scene, role)
    consultation = foreign(scene, role)["consultation"]
    response = client.get(f"/consultations/{consultation.pk}/paper/")
    assert response.status_code in (403, 404)


@pytest.mark.parametrize("role", SUPERVISORS)
def test_paper_ballot_of_a_project_not_watched_is_not_taken(scene, client, role):
    """What the form above lets through is refused when posted: no ballot is recorded."""
    login_as(client, scene, role)
    consultation = foreign(scene, role)["consultation"]
    item = consultation.items.get()
    household = consultation.households.first()
    response = client.post(
        f"/consultations/{consultation.pk}/paper/",
        {"household": household.pk, f"item-{item.pk}": "yes"},
    )
    assert response.status_code == 404
    assert not consultation.ballots.exists()


def test_own_objects_are_reachable(scene, client):
    """The controls of the matrix: the same addresses with objects in scope do answer, so the
    404s above are about scope, not about a wrong address."""
    w = scene.world
    client.raise_request_exception = False
    checks = [
        ("anon", "GET", f"/photos/{scene.photos['pub'].pk}/", 200),
        ("anon", "GET", f"/photos/{scene.photos['pub'].pk}/thumb/", 200),
        ("handler", "GET", f"/photos/{scene.photos['x'].pk}/", 200),
        ("other_staff", "GET", f"/photos/{scene.photos['y'].pk}/", 200),
        ("handler", "GET", f"/patrols/{scene.patrols['a'].pk}/", 200),
        ("builder", "GET", f"/patrols/{scene.patrols['a'].pk}/", 200),
        ("other_staff", "GET", f"/patrols/{scene.patrols['b'].pk}/", 200),
        ("handler", "GET", f"/consultations/{scene.consultations['a'].pk}/slips/", 200),
        ("other_staff", "GET", f"/consultations/{scene.consultations['b'].pk}/slips/", 200),
        ("alice", "GET", f"/consultations/{scene.consultations['a'].pk}/paper/", 200),
        ("handler", "GET", f"/panel/supervision/issue/{scene.issues['x_acc'].pk}/change/", 200),
        ("other_staff", "GET", f"/panel/supervision/issue/{scene.issues['y_acc'].pk}/change/", 200),
        ("builder", "GET", f"/panel/supervision/issue/{scene.issues['x_prog'].pk}/change/", 200),
        (
            "handler",
            "GET",
            f"/panel/supervision/consultation/{scene.consultations['a'].pk}/change/",
            200,
        ),
        ("alice", "POST", f"/notifications/{scene.notifications['alice'].pk}/", 302),
        ("alice", "GET", f"/me/letters/{scene.letters['a'].pk}/", 200),
        ("bob", "GET", f"/me/letters/{scene.letters['b'].pk}/", 200),
        ("handler", "GET", f"/panel/supervision/letter/{scene.letters['a'].pk}/change/", 200),
        ("other_staff", "GET", f"/panel/supervision/letter/{scene.letters['b'].pk}/change/", 200),
    ]
    patrol = scene.patrols["a"]
    check = patrol.checks.get(ok=False)
    checks.append(("alice", "POST", f"/patrols/{patrol.pk}/checks/{check.pk}/issue/", 302))
    for role, method, url, expected in checks:
        login_as(client, scene, role)
        response = client.post(url) if method == "POST" else client.get(url)
        assert response.status_code == expected, f"{role} {method} {url}"
    assert w.alice.notifications.get(pk=scene.notifications["alice"].pk).read_at is not None


def test_a_supervisor_of_the_project_supports_its_issue(scene, client):
    """The control of the support row: a third supervisor who watches the 安阳 project supports
    Alice's issue there, and not Bob's on the 玉海 project (which she may read)."""
    w = scene.world
    carol = make_supervisor("carol", w.project.neighbourhood, [w.project])
    client.force_login(carol)
    mine, other = scene.issues["x_sub"], scene.issues["y_sub"]

    response = client.post(f"/issues/{mine.pk}/support/", step_data(scene, "support", mine))
    refused = client.post(f"/issues/{other.pk}/support/", step_data(scene, "support", other))

    assert response.status_code == 302 and response["Location"] == mine.get_absolute_url()
    assert refused.status_code == 403
    mine.refresh_from_db()
    other.refresh_from_db()
    assert (mine.support_count, other.support_count) == (1, 0)
    assert mine.status == S.SUBMITTED and mine.reporter_id == w.alice.pk
    assert mine.events.order_by("pk").last().kind == IssueEvent.Kind.SUPPORTED
    # Another project's hint answers nothing, even to a supervisor who reads every issue.
    hint = client.get("/issues/similar/", {"project": w.other_project.pk, "category": "quality"})
    assert hint.status_code == 200 and SECRET.format("y_sub") not in hint.content.decode()


# --- fields a role may not set -----------------------------------------------------------------


def test_a_comment_cannot_set_the_issues_fields(scene, client):
    w = scene.world
    issue = scene.issues["x_sub"]
    before = Issue.objects.filter(pk=issue.pk).values().get()
    client.force_login(w.alice)

    response = client.post(
        f"/issues/{issue.pk}/comment/",
        {
            "text": "补充情况",
            "status": S.CLOSED,
            "is_public": "1",
            "department": w.other_office.pk,
            "reporter": w.bob.pk,
            "rating": Issue.Rating.SATISFIED,
            "reference": "2000-00001",
            "contractor": w.other_contractor.pk,
        },
    )

    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == S.SUBMITTED
    assert issue.department_id == w.office.pk
    assert issue.reporter_id == w.alice.pk
    assert issue.is_public is False
    assert issue.rating == ""
    assert issue.reference == before["reference"]
    assert issue.contractor_id is None
    assert issue.events.order_by("pk").last().kind == IssueEvent.Kind.COMMENTED


def test_filing_an_issue_ignores_status_reporter_and_department(scene, client):
    w = scene.world
    client.force_login(w.alice)
    routed = services.route_department(w.project, Issue.Category.QUALITY)

    response = client.post(
        "/issues/new/",
        {
            "project": w.project.pk,
            "category": Issue.Category.QUALITY,
            "urgency": Issue.Urgency.NORMAL,
            "title": "楼道扶手松动",
            "description": "3 楼扶手一推就晃。",
            "photos": image_file(),
            "status": S.CLOSED,
            "reporter": w.bob.pk,
            "department": w.other_office.pk,
            "contractor": w.other_contractor.pk,
            "is_public": "1",
            "rating": Issue.Rating.SATISFIED,
            "reference": "2000-00001",
        },
    )

    assert response.status_code == 302
    issue = Issue.objects.get(title="楼道扶手松动")
    assert response["Location"] == issue.get_absolute_url()
    assert issue.status == S.SUBMITTED
    assert issue.reporter_id == w.alice.pk
    assert routed == w.office and issue.department_id == routed.pk
    assert issue.contractor_id is None
    assert issue.is_public is False
    assert issue.rating == ""
    assert issue.reference != "2000-00001"
    assert re.fullmatch(r"\d{4}-\d{5}", issue.reference)


def test_filing_on_a_project_not_watched_is_refused(scene, client):
    w = scene.world
    client.force_login(w.alice)
    count = Issue.objects.count()
    response = client.post(
        "/issues/new/",
        {
            "project": w.other_project.pk,
            "category": Issue.Category.QUALITY,
            "urgency": Issue.Urgency.NORMAL,
            "title": "不是我的项目",
            "description": "试一试",
            "photos": image_file(),
        },
    )
    assert response.status_code == 400
    assert Issue.objects.count() == count


def test_a_department_step_cannot_set_the_reporter_the_rating_or_publish(scene, client):
    w = scene.world
    issue = scene.issues["x_sub"]
    client.force_login(w.handler)

    response = client.post(
        f"/issues/{issue.pk}/accept/",
        {
            "text": "签收",
            "status": S.CLOSED,
            "is_public": "1",
            "reporter": w.bob.pk,
            "rating": Issue.Rating.UNSATISFIED,
            "department": w.other_office.pk,
            "reference": "2000-00001",
        },
    )

    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == S.ACCEPTED
    assert (issue.reporter_id, issue.department_id) == (w.alice.pk, w.office.pk)
    assert issue.is_public is False and issue.rating == ""


@pytest.mark.parametrize(
    "step, data",
    [
        ("dispatch", {"department": "office"}),  # not a contractor
        ("transfer", {"department": "contractor", "reason": "转给施工单位"}),  # a contractor
        ("verify", {"rating": "excellent"}),  # not a rating
        ("accept", {"deadline": "2999-01-01"}),  # more than a year
    ],
)
def test_a_step_refuses_values_outside_its_choices(scene, client, step, data):
    w = scene.world
    state = STEPS[step][0]
    issue = scene.issues[f"x_{STATE_KEY[state]}"]
    actor = w.alice if step == "verify" else w.handler
    data = {k: getattr(w, v).pk if k == "department" else v for k, v in data.items()}
    before = Issue.objects.filter(pk=issue.pk).values().get()
    client.force_login(actor)

    response = client.post(f"/issues/{issue.pk}/{step}/", data)

    assert response.status_code == 400
    assert Issue.objects.filter(pk=issue.pk).values().get() == before


@pytest.mark.parametrize("role", ["handler", "builder"])
def test_only_the_bureau_publishes_issues(scene, client, role):
    """The panel's 公开 actions are the bureau's: a department posting them publishes nothing."""
    issue = scene.issues["x_prog"]  # in the handler's and the builder's scope
    client.force_login(getattr(scene.world, role))
    for action in ("make_public", "make_private"):
        response = client.post(
            "/panel/supervision/issue/",
            {"action": action, "_selected_action": [issue.pk], "index": "0"},
        )
        assert response.status_code in (200, 302, 404)
        issue.refresh_from_db()
        assert issue.is_public is False
    public = scene.issues["x_pub"]
    client.post(
        "/panel/supervision/issue/",
        {"action": "make_private", "_selected_action": [public.pk], "index": "0"},
    )
    public.refresh_from_db()
    assert public.is_public is True


def test_the_bureau_publishes_an_issue_from_the_panel(scene, client):
    issue = scene.issues["x_prog"]
    client.force_login(scene.world.bureau)
    response = client.post(
        "/panel/supervision/issue/",
        {"action": "make_public", "_selected_action": [issue.pk], "index": "0"},
    )
    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.is_public is True


def test_the_panel_change_form_of_an_issue_saves_nothing(scene, client):
    w = scene.world
    issue = scene.issues["x_sub"]
    before = Issue.objects.filter(pk=issue.pk).values().get()
    for user in (w.handler, w.bureau):
        client.force_login(user)
        response = client.post(
            f"/panel/supervision/issue/{issue.pk}/change/",
            {"status": S.CLOSED, "is_public": "on", "reporter": w.bob.pk, "title": "改过了"},
        )
        assert response.status_code == 403
    assert Issue.objects.filter(pk=issue.pk).values().get() == before


# 竣工验收 (tests/test_acceptance.py walks every role against a real acceptance): here, with
# objects that do not exist, nothing answers but a 404, the login, or 405 for the POST-only steps.
SITE.update(
    {
        "acceptance-record": everyone(NOT_FOUND),  # public for a real project
        "acceptance-new": logged_in(NOT_FOUND),
        "acceptance-sign": everyone(NOT_FOUND),  # public for a real acceptance; needs a code
        "acceptance-opinion": logged_in(NOT_FOUND),
        "acceptance-leftover": logged_in(NOT_ALLOWED),  # POST only
        "acceptance-close": logged_in(NOT_ALLOWED),  # POST only
        "acceptance-photo": logged_in(NOT_FOUND),
        "acceptance-photo-thumbnail": logged_in(NOT_FOUND),
    }
)


# 问效: the survey's results are public and answering needs a household's code (another
# project's code opens nothing); paper forms only for the project's serving supervisors; the
# bureau alone opens and closes (here it closes the 安阳 one, as it may).
SITE.update(
    {
        "survey": everyone(OK),
        "survey-paper": for_supervisors(NOT_FOUND, FORBIDDEN),
        "survey-open": row(LOGIN, *[FORBIDDEN] * 5, OK),
        "survey-close": logged_in(NOT_ALLOWED),  # POST only (the POST is below)
    }
)
SITE_POSTS.update(
    {
        "survey": everyone(status(400)),
        "survey-paper": for_supervisors(NOT_FOUND, FORBIDDEN),
        "survey-open": row(LOGIN, *[FORBIDDEN] * 5, status(400)),
        "survey-close": row(LOGIN, *[FORBIDDEN] * 5, to("/surveys/")),
    }
)


# --- the supervisor directory: who sees whom, and which fields --------------------------------
# The bureau sees every supervisor with every field (the mobile number whole); a subdistrict
# office sees the supervisors who live in its subdistrict (mobile masked) and, by name only, the
# serving supervisors of its projects who live elsewhere; any other department (contractor,
# supervising engineer, utility, property manager, warranty contractor) the names of the serving
# supervisors of its own projects, nothing else. FULL: every field; MASKED: every field, the
# mobile masked; NAME: the name and nothing else; "" (absent): not listed at all.
FULL, MASKED, NAME, ABSENT = "full", "masked", "name", ""
DIRECTORY_MOBILES = {
    "alice": "13900000001",  # lives in 安阳, watches the 安阳 project (宏程 builds it)
    "bob": "13800000002",  # lives in 玉海, watches the 玉海 project (安居 builds it)
    "carol": "13700000003",  # lives in 玉海, watches the 安阳 project
    "dave": "13600000004",  # lives in 安阳, watched the 安阳 project, dismissed
}
DIRECTORY = {
    # viewer: what each of alice, bob, carol, dave shows
    "bureau": {"alice": FULL, "bob": FULL, "carol": FULL, "dave": FULL},
    "handler": {"alice": MASKED, "bob": ABSENT, "carol": NAME, "dave": MASKED},  # 安阳 office
    "other_staff": {"alice": ABSENT, "bob": MASKED, "carol": MASKED, "dave": ABSENT},  # 玉海
    "builder": {"alice": NAME, "bob": ABSENT, "carol": NAME, "dave": ABSENT},  # 宏程 contractor
    "other_contractor": {"alice": ABSENT, "bob": NAME, "carol": ABSENT, "dave": ABSENT},
    "engineer": {"alice": NAME, "bob": ABSENT, "carol": NAME, "dave": ABSENT},  # on 安阳's
    "utility": {"alice": ABSENT, "bob": NAME, "carol": ABSENT, "dave": ABSENT},  # on 玉海's
    "estate": {"alice": ABSENT, "bob": ABSENT, "carol": ABSENT, "dave": ABSENT},  # no project
    "warranty": {"alice": NAME, "bob": ABSENT, "carol": NAME, "dave": ABSENT},  # a 安阳 item
}
NEIGHBOURHOODS = ("兴业大厦", "玉海楼小区")


@pytest.fixture
def directory(world: World):
    from supervision.models import Department, ScopeItem

    from .factories import make_department, make_user

    world.project.departments.add(world.office)
    world.other_project.departments.add(world.other_office)
    make_supervisor("carol", world.other_project.neighbourhood, [world.project])
    dave = make_supervisor("dave", world.project.neighbourhood, [world.project])
    residents.dismiss_supervisor(dave.supervisor, actor=world.bureau)
    for name, mobile in DIRECTORY_MOBILES.items():
        User.objects.filter(username=name).update(mobile=mobile)
    K = Department.Kind
    departments = {
        "engineer": make_department("正衡监理", K.SUPERVISING_ENGINEER),
        "utility": make_department("瑞安水务", K.UTILITY),
        "estate": make_department("瑞安物业", K.PROPERTY_MANAGER),
        "warranty": make_department("保修防水公司", K.CONTRACTOR),
    }
    world.project.departments.add(departments["engineer"])
    world.other_project.departments.add(departments["utility"])
    ScopeItem.objects.create(
        project=world.project,
        area="building",
        description="屋面防水",
        warranty_contractor=departments["warranty"],
    )
    viewers = {
        "bureau": world.bureau,
        "handler": world.handler,
        "other_staff": world.other_staff,
        "builder": world.builder,
        "other_contractor": make_user(
            "anju", role=User.Role.STAFF, department=world.other_contractor
        ),
        **{
            role: make_user(f"staff-{role}", role=User.Role.STAFF, department=department)
            for role, department in departments.items()
        },
    }
    return viewers


def directory_table(response) -> tuple[str, dict[str, str]]:
    """The directory's table and its rows by the name in their header cell."""
    html = response.content.decode()
    table = html[html.index("<table") : html.index("</table>")]
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        name = re.search(r'<th scope="row">([^<]*)</th>', tr)
        if name:
            rows[name.group(1)] = tr
    return table, rows


@pytest.mark.parametrize("viewer", list(DIRECTORY))
def test_the_supervisor_directory_shows_each_desk_only_its_own(directory, client, viewer):
    client.force_login(directory[viewer])
    response = client.get("/supervisors/")
    assert response.status_code == 200
    table, rows = directory_table(response)
    expected = DIRECTORY[viewer]
    assert set(rows) == {name for name, level in expected.items() if level}, viewer
    for name, level in expected.items():
        if not level:
            continue
        row, mobile = rows[name], DIRECTORY_MOBILES[name]
        masked = f"{mobile[:3]}****{mobile[-4:]}"
        if level == NAME:
            assert f"RAJD-{name}" not in row and mobile not in row and masked not in row
            assert not any(n in row for n in NEIGHBOURHOODS) and "改造" not in row
            continue
        assert f"RAJD-{name}" in row and any(n in row for n in NEIGHBOURHOODS)
        assert "改造" in row  # the watched projects
        assert (mobile in row) == (level == FULL) and (masked in row) == (level == MASKED)
    if not any(level in (FULL, MASKED) for level in expected.values()):
        # Names only: no personal column at all, and no mobile, certificate or home anywhere.
        for word in ("手机", "居住小区", "监督项目", "证号", "RAJD-", "****", "/certificate/"):
            assert word not in table, (viewer, word)
        page = response.content.decode()
        assert not any(mobile in page for mobile in DIRECTORY_MOBILES.values())
        assert not any(n in page for n in NEIGHBOURHOODS)
    assert ("/certificate/" in table) == (viewer == "bureau")


@pytest.mark.parametrize("viewer", ["alice", "bob"])
def test_supervisors_and_the_public_have_no_directory(directory, client, world, viewer):
    assert client.get("/supervisors/").status_code == 302  # to the login
    client.force_login(getattr(world, viewer))
    response = client.get("/supervisors/")
    assert response.status_code == 403
    assert not any(m in response.content.decode() for m in DIRECTORY_MOBILES.values())
