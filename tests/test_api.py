"""/api/v1/: the JSON API for the mini-program. The same rules as the pages — who sees which
issue, who may take which step from which state — answered as JSON with one error shape:
``{"detail": …, "errors": [{"field": …, "message": …}]}``; never a server error.

Alice reports on the 安阳 project, Bob supervises another one; ``anyang`` is the 安阳 office,
``yuhai`` the 玉海 office that must not touch it; ``shigong`` works for the contractor; the
bureau is ``zhujianju`` (see ``factories.World``). The whole life of an issue runs on the demo
data as ``jiandu06``, ``anyang``, ``shigong01`` and ``zhujianju``.
"""

import hashlib
import json
import re
from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts.models import User
from api.models import ApiToken
from api.tokens import create_token
from supervision import services
from supervision.models import (
    Issue,
    Notification,
    Photo,
    Supervisor,
)

from .factories import image_file

S = Issue.Status
API = "/api/v1"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


class Api:
    """A client that speaks JSON with one person's key."""

    def __init__(self, user=None, key: str | None = None) -> None:
        self.client = Client()
        self.user = user
        if key is None and user is not None:
            _token, key = create_token(user, "测试")
        self.key = key

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def get(self, path: str, **params):
        return self.client.get(API + path, params, headers=self._headers())

    def post(self, path: str, body=None, *, raw: str | bytes | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(
            API + path, data, content_type="application/json", headers=self._headers()
        )

    def upload(self, path: str, fields: dict, photos=()):
        data = {**fields}
        if photos:
            data["photos"] = list(photos)
        return self.client.post(API + path, data, headers=self._headers())


def assert_error(response, status: int, field: str | None = None) -> dict:
    """The one error shape, with ``field`` among the named fields."""
    assert response.status_code == status, response.content.decode()
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert set(body) == {"detail", "errors"}
    assert isinstance(body["detail"], str) and body["detail"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


def events_of(issue: Issue) -> list[str]:
    return list(issue.events.order_by("created_at", "pk").values_list("kind", flat=True))


def snapshot(issue: Issue) -> tuple:
    fresh = Issue.objects.get(pk=issue.pk)
    return (
        fresh.status,
        fresh.department_id,
        fresh.contractor_id,
        fresh.rectify_due_at,
        fresh.escalated_at,
        fresh.events.count(),
        fresh.photos.count(),
    )


def new_issue_fields(project, **fields) -> dict:
    return {
        "project": project.pk,
        "category": "quality",
        "title": "外墙涂料起皮",
        "description": "北面外墙涂料起皮，一碰就掉。",
        **fields,
    }


# --- the whole life, on the demo data ----------------------------------------------------------


def test_whole_life_of_an_issue_through_the_api(demo, settings):
    settings.API_RATE_LIMIT = 1000
    jiandu06 = Api(User.objects.get(username="jiandu06"))
    anyang = Api(User.objects.get(username="anyang"))
    shigong = Api(User.objects.get(username="shigong01"))
    bureau = Api(User.objects.get(username="zhujianju"))

    me = jiandu06.get("/me").json()
    assert me["role"] == "supervisor" and me["is_serving_supervisor"]
    project = jiandu06.user.supervisor.projects.filter(
        neighbourhood__subdistrict__code="anyang"
    ).first()
    assert project is not None, "jiandu06 watches an 安阳 project in the demo"

    # jiandu06 files an issue with a photo, twice with one token (a retry): one issue.
    fields = new_issue_fields(project, title="3 幢楼道扶手松动", token="retry-token-1")
    filed = jiandu06.upload("/issues", fields, [image_file("a.jpg")])
    assert filed.status_code == 201, filed.content.decode()
    again = jiandu06.upload("/issues", fields, [image_file("a.jpg")])
    assert again.status_code == 200
    issue = filed.json()
    assert again.json()["id"] == issue["id"]
    assert Issue.objects.filter(title="3 幢楼道扶手松动").count() == 1
    assert issue["status"] == "submitted"
    assert issue["department"]["name"] == "安阳街道办事处"
    assert len(issue["photos"]) == 1 and issue["photos"][0]["url"].endswith(
        f"/photos/{issue['photos'][0]['id']}/"
    )
    assert "withdraw" in issue["allowed_steps"] and "accept" not in issue["allowed_steps"]
    pk = issue["id"]

    # The office sees it, with the buttons it may press.
    listed = anyang.get("/issues", status="submitted").json()
    assert pk in [row["id"] for row in listed["items"]]
    detail = anyang.get(f"/issues/{pk}").json()
    assert {"accept", "answer", "transfer", "reject", "comment"} <= set(detail["allowed_steps"])

    deadline = timezone.localdate() + timedelta(days=10)
    accepted = anyang.post(f"/issues/{pk}/accept", {"deadline": deadline.isoformat()})
    assert accepted.status_code == 200, accepted.content.decode()
    assert accepted.json()["status"] == "accepted"
    contractor = shigong.user.department
    dispatched = anyang.post(f"/issues/{pk}/dispatch", {"department": contractor.pk})
    assert dispatched.json()["status"] == "in_progress", dispatched.content.decode()

    # The contractor asks for more time; the bureau grants it.
    until = deadline + timedelta(days=7)
    asked = shigong.post(f"/issues/{pk}/extend", {"until": until.isoformat(), "reason": "材料未到"})
    assert asked.status_code == 200, asked.content.decode()
    pending = bureau.get("/extensions", status="pending").json()
    extension = next(x for x in pending if x["issue"] == pk)
    refused = anyang.post(f"/extensions/{extension['id']}/decision", {"grant": True})
    assert_error(refused, 403)
    granted = bureau.post(
        f"/extensions/{extension['id']}/decision", {"grant": True, "note": "同意"}
    )
    assert granted.status_code == 200 and granted.json()["status"] == "granted"
    assert timezone.localtime(Issue.objects.get(pk=pk).rectify_due_at).date() == until

    # The bureau presses (督办), then the contractor reports the fix with an after-photo.
    pressed = bureau.post(f"/issues/{pk}/escalate", {"text": "请本周内完成"})
    assert pressed.status_code == 200
    rectified = shigong.upload(
        f"/issues/{pk}/rectify", {"text": "已更换扶手"}, [image_file("after.jpg")]
    )
    assert rectified.status_code == 200, rectified.content.decode()
    assert rectified.json()["status"] == "rectified"
    assert [p["kind"] for p in rectified.json()["photos"]] == ["before", "after"]

    # jiandu06 sees it in the feed and the notifications, and closes it.
    feed = jiandu06.get("/feed").json()
    assert feed["items"][0]["issue"] == pk and feed["items"][0]["kind"] == "rectified"
    notes = jiandu06.get("/notifications", unread=True).json()
    assert notes["unread"] >= 1
    assert any(n["event"]["issue"] == pk for n in notes["items"])
    read = jiandu06.post(f"/notifications/{notes['items'][0]['id']}/read")
    assert read.status_code == 200 and read.json()["read_at"]
    verified = jiandu06.post(f"/issues/{pk}/verify", {"rating": "satisfied", "text": "修好了"})
    assert verified.status_code == 200, verified.content.decode()
    closed = verified.json()
    assert closed["status"] == "closed" and closed["rating"] == "satisfied"
    assert closed["allowed_steps"] == ["comment"]
    assert [e["kind"] for e in closed["events"]] == [
        "submitted",
        "accepted",
        "dispatched",
        "extension_requested",
        "extension_granted",
        "escalated",
        "rectified",
        "verified",
    ]
    assert Issue.objects.get(pk=pk).status == S.CLOSED


# --- keys: missing, wrong, revoked, dismissed, rate-limited ------------------------------------


def test_missing_key_is_401_with_the_error_shape(world):
    issue = world.submit()
    for response in (
        Api().get("/issues"),
        Api().get(f"/issues/{issue.pk}"),
        Api().post(f"/issues/{issue.pk}/accept", {}),
    ):
        body = assert_error(response, 401, "Authorization")
        assert response["WWW-Authenticate"] == "Bearer"
        assert "Authorization" in body["detail"]
    assert snapshot(issue)[0] == S.SUBMITTED


@pytest.mark.parametrize(
    "header",
    ["Bearer qzjd_not-a-real-key", "Bearer ", "Token abc", "Basic YWxpY2U6eA==", "x" * 300],
)
def test_wrong_key_is_401(world, header):
    client = Client()
    response = client.get(f"{API}/issues", headers={"Authorization": header})
    assert_error(response, 401, "Authorization")


def test_a_logged_in_session_is_not_a_key(world, client):
    client.force_login(world.alice)
    assert_error(client.get(f"{API}/issues"), 401)


def test_revoked_key_stops_at_once(world):
    token, key = create_token(world.alice, "手机")
    alice = Api(key=key)
    assert alice.get("/issues").status_code == 200
    token.revoked_at = timezone.now()
    token.save()
    assert_error(alice.get("/issues"), 401, "Authorization")


def test_a_new_password_revokes_the_keys_made_under_the_old_one(world, client):
    """A lost phone: the supervisor changes the password, and the phone's key stops with it."""
    world.alice.set_password("old-password-1")
    world.alice.save()
    phone = Api(world.alice)
    assert phone.get("/me").status_code == 200
    client.force_login(world.alice)

    wrong = client.post(
        "/accounts/password/",
        {
            "old_password": "wrong",
            "new_password1": "Xq7!long-pass",
            "new_password2": "Xq7!long-pass",
        },
    )
    assert wrong.status_code == 200  # refused: nothing revoked
    assert phone.get("/me").status_code == 200

    changed = client.post(
        "/accounts/password/",
        {
            "old_password": "old-password-1",
            "new_password1": "Xq7!long-pass",
            "new_password2": "Xq7!long-pass",
        },
        follow=True,
    )
    assert changed.status_code == 200
    assert "原来的 1 个接口密钥已随旧密码作废" in changed.content.decode()
    assert_error(phone.get("/me"), 401, "Authorization")
    assert Api(world.alice).get("/me").status_code == 200  # a key made afterwards works


def test_an_administrators_new_password_revokes_the_keys(world, client):
    from accounts.models import User

    phone = Api(world.bob)
    admin = User.objects.create_superuser("root", password="root-pass-1")
    client.force_login(admin)
    response = client.post(
        f"/admin/accounts/user/{world.bob.pk}/password/",
        {"password1": "Xq7!long-pass", "password2": "Xq7!long-pass", "usable_password": "true"},
    )
    assert response.status_code == 302
    assert_error(phone.get("/me"), 401, "Authorization")
    assert Api(world.alice).get("/me").status_code == 200  # nobody else's keys


def test_the_new_password_rule_revokes_only_that_persons_live_keys(world):
    from accounts.passwords import new_password_set

    phone, _ = create_token(world.alice, "手机")
    old, _ = create_token(world.alice, "旧手机")
    old.revoked_at = timezone.now() - timedelta(days=3)
    old.save(update_fields=["revoked_at"])
    bobs, _ = create_token(world.bob, "手机")

    assert new_password_set(world.alice) == 1

    phone.refresh_from_db()
    old.refresh_from_db()
    bobs.refresh_from_db()
    assert phone.revoked_at is not None
    assert old.revoked_at < phone.revoked_at  # an old revocation keeps its date
    assert bobs.revoked_at is None


def test_dismissed_supervisors_key_stops_working(world, client):
    alice = Api(world.alice)
    issue = world.submit()
    assert alice.get(f"/issues/{issue.pk}").status_code == 200
    client.force_login(world.bureau)
    dismissed = client.post(
        "/panel/supervision/supervisor/",
        {"action": "dismiss", "_selected_action": [world.alice.supervisor.pk], "index": "0"},
    )
    assert dismissed.status_code == 302
    assert_error(alice.get(f"/issues/{issue.pk}"), 401)
    assert_error(alice.post(f"/issues/{issue.pk}/withdraw", {}), 401)
    assert Issue.objects.get(pk=issue.pk).status == S.SUBMITTED


def test_key_of_a_supervisor_out_of_office_but_with_an_active_account_is_refused(world):
    alice = Api(world.alice)
    Supervisor.objects.filter(user=world.alice).update(
        is_active=False, dismissed_on=timezone.localdate()
    )
    assert User.objects.get(pk=world.alice.pk).is_active
    assert_error(alice.get("/me"), 401)
    Supervisor.objects.filter(user=world.bob).update(
        term_ends_on=timezone.localdate() - timedelta(days=1)
    )
    assert_error(Api(world.bob).get("/me"), 401)


def test_rate_limit_per_key_answers_429_with_retry_after(world, settings):
    settings.API_RATE_LIMIT = 3
    alice, bob = Api(world.alice), Api(world.bob)
    assert [alice.get("/me").status_code for _ in range(3)] == [200, 200, 200]
    response = alice.get("/me")
    assert_error(response, 429)
    assert 1 <= int(response["Retry-After"]) <= 60
    assert bob.get("/me").status_code == 200  # per key, not for everyone


def test_requests_without_a_valid_key_are_limited_per_address(world, client, settings):
    """Public reads and key guessing share a per-address quota; a key has its own."""
    settings.API_ANONYMOUS_RATE_LIMIT = 3
    assert [client.get("/api/v1/projects").status_code for _ in range(2)] == [200, 200]
    wrong = {"Authorization": "Bearer qzjd_" + "x" * 43}
    assert client.get("/api/v1/me", headers=wrong).status_code == 401
    assert_error(client.get("/api/v1/projects"), 429)
    assert_error(client.get("/api/v1/me", headers=wrong), 429)
    assert client.get("/open311/v2/requests.json").status_code == 429  # the same quota
    assert Api(world.alice).get("/me").status_code == 200


def test_one_quota_per_key_for_both_interfaces(world, client, settings):
    from api.tokens import create_token

    settings.API_RATE_LIMIT = 2
    key = create_token(world.alice, "x")[1]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.get("/open311/v2/requests.json", {"api_key": key}).status_code == 200
    assert client.get("/open311/v2/requests.json", {"api_key": key}).status_code == 429


# --- what each role may see and do -------------------------------------------------------------


def test_issue_outside_the_scope_is_404_for_reading_and_every_step(world):
    issue = world.submit()
    before = snapshot(issue)
    yuhai = Api(world.other_staff)
    assert_error(yuhai.get(f"/issues/{issue.pk}"), 404)
    assert issue.pk not in [row["id"] for row in yuhai.get("/issues").json()["items"]]
    for step, body in [
        ("accept", {}),
        ("answer", {"text": "答复"}),
        ("reject", {"reason": "重复"}),
        ("escalate", {"text": "督办"}),
        ("withdraw", {}),
    ]:
        assert_error(yuhai.post(f"/issues/{issue.pk}/{step}", body), 404)
    assert_error(yuhai.upload(f"/issues/{issue.pk}/comment", {"text": "看看"}), 404)
    # The contractor sees the issue only once it is dispatched to it.
    assert_error(Api(world.builder).get(f"/issues/{issue.pk}"), 404)
    assert snapshot(issue) == before


@pytest.mark.parametrize(
    "role, state, step, body, status",
    [
        ("bob", S.SUBMITTED, "accept", {}, 403),
        ("alice", S.SUBMITTED, "accept", {}, 403),
        ("alice", S.SUBMITTED, "escalate", {"text": "快点"}, 403),
        ("handler", S.RECTIFIED, "verify", {"rating": "satisfied"}, 403),
        ("bob", S.RECTIFIED, "verify", {"rating": "satisfied"}, 403),
        ("handler", S.SUBMITTED, "withdraw", {}, 403),
        ("builder", S.IN_PROGRESS, "accept", {}, 403),
        ("builder", S.IN_PROGRESS, "dispatch", {"department": "contractor"}, 403),
        ("bureau", S.ACCEPTED, "verify", {"rating": "satisfied"}, 403),
        ("handler", S.CLOSED, "accept", {}, 409),
        ("handler", S.ACCEPTED, "accept", {}, 409),
        ("alice", S.ACCEPTED, "withdraw", {}, 409),
        ("alice", S.SUBMITTED, "verify", {"rating": "satisfied"}, 409),
        ("bureau", S.CLOSED, "reject", {"reason": "重复"}, 409),
        ("alice", S.CLOSED, "appeal", {"reason": "不服"}, 409),
    ],
)
def test_step_not_allowed_is_refused_and_changes_nothing(world, role, state, step, body, status):
    issue = world.issue_in(state)
    if body.get("department") == "contractor":
        body = {**body, "department": world.contractor.pk}
    before = snapshot(issue)
    user = {
        "alice": world.alice,
        "bob": world.bob,
        "handler": world.handler,
        "builder": world.builder,
        "bureau": world.bureau,
    }[role]
    response = Api(user).post(f"/issues/{issue.pk}/{step}", body)
    body = assert_error(response, status)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"])  # a sentence in Chinese
    assert snapshot(issue) == before


def test_refusal_comes_before_the_fields(world):
    """A step the user may not take says so, even with nonsense fields: 403, not 400."""
    issue = world.submit()
    response = Api(world.bob).post(f"/issues/{issue.pk}/accept", {"deadline": "2020-01-01"})
    assert_error(response, 403)


def test_allowed_steps_follow_the_role(world):
    issue = world.issue_in(S.RECTIFIED)
    steps = {
        name: Api(user).get(f"/issues/{issue.pk}").json()["allowed_steps"]
        for name, user in [("alice", world.alice), ("handler", world.handler)]
    }
    assert steps["alice"] == services.allowed_steps(world.alice, issue)
    assert {"verify", "reopen"} <= set(steps["alice"])
    assert "verify" not in steps["handler"]


def test_reporter_withdraws_and_appeals_through_the_api(world):
    alice = Api(world.alice)
    issue = world.submit()
    withdrawn = alice.post(f"/issues/{issue.pk}/withdraw", {"reason": "已自行解决"})
    assert withdrawn.json()["status"] == "withdrawn"
    rejected = world.issue_in(S.REJECTED)
    appealed = alice.post(f"/issues/{rejected.pk}/appeal", {"reason": "不是重复反映"})
    assert appealed.status_code == 200
    assert appealed.json()["status"] == "submitted"
    assert appealed.json()["department"]["name"] == "市住建局"


# --- bad input: always a 4xx that names the field ----------------------------------------------


def test_malformed_json_is_400(world):
    issue = world.submit()
    handler = Api(world.handler)
    for raw in ['{"text": ', "not json", "", '{"text": "a\\u0000b"}']:
        assert_error(handler.post(f"/issues/{issue.pk}/answer", raw=raw), 400, "body")
    assert snapshot(issue)[0] == S.SUBMITTED


@pytest.mark.parametrize(
    "step, body, field",
    [
        ("dispatch", {"department": "宏程"}, "department"),
        ("dispatch", {"department": [1]}, "department"),
        ("accept", {"deadline": "next week"}, "deadline"),
        ("accept", {"deadline": 20230401}, "deadline"),
        ("answer", {"text": 42}, "text"),
        ("answer", {}, "text"),
        ("answer", {"text": "好", "txet": "好"}, "txet"),
        ("reject", {"text": "重复"}, "text"),  # the field is ``reason``
        ("transfer", {"department": 1}, "reason"),
        ("escalate", ["text"], "body"),
        ("answer", {"text": "x" * (services.MAX_TEXT + 1)}, "text"),
    ],
)
def test_wrong_types_unknown_and_missing_fields_are_400_naming_the_field(world, step, body, field):
    issue = world.issue_in(S.ACCEPTED if step == "dispatch" else S.SUBMITTED)
    before = snapshot(issue)
    assert_error(Api(world.handler).post(f"/issues/{issue.pk}/{step}", body), 400, field)
    assert snapshot(issue) == before


@pytest.mark.parametrize(
    "step, body, field",
    [
        ("dispatch", {"department": "other_office"}, "department"),  # not a contractor
        ("transfer", {"department": "contractor", "reason": "x"}, "department"),
        ("accept", {"deadline": "2099-01-01"}, "deadline"),  # more than a year
        ("answer", {"text": "   "}, "text"),
    ],
)
def test_the_pages_form_rules_apply_to_the_api(world, step, body, field):
    issue = world.issue_in(S.ACCEPTED if step == "dispatch" else S.SUBMITTED)
    if isinstance(body.get("department"), str):
        body = {**body, "department": getattr(world, body["department"]).pk}
    before = snapshot(issue)
    assert_error(Api(world.handler).post(f"/issues/{issue.pk}/{step}", body), 400, field)
    assert snapshot(issue) == before


def test_unsatisfied_without_a_reason_is_400_on_text(world):
    issue = world.issue_in(S.RECTIFIED)
    response = Api(world.alice).post(f"/issues/{issue.pk}/verify", {"rating": "unsatisfied"})
    assert_error(response, 400, "text")
    bad = Api(world.alice).post(f"/issues/{issue.pk}/verify", {"rating": "happy"})
    assert_error(bad, 400, "rating")
    assert snapshot(issue)[0] == S.RECTIFIED


def big_file() -> SimpleUploadedFile:
    return SimpleUploadedFile("huge.jpg", b"\xff\xd8\xff" + b"0" * (20 * 1024 * 1024), "image/jpeg")


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.mark.parametrize(
    "photo",
    [
        pytest.param(big_file, id="oversized"),
        pytest.param(lambda: SimpleUploadedFile("x.svg", SVG, "image/svg+xml"), id="svg"),
        pytest.param(lambda: SimpleUploadedFile("x.jpg", SVG, "image/jpeg"), id="svg-as-jpeg"),
        pytest.param(lambda: SimpleUploadedFile("a.jpg", b"not an image", "image/jpeg"), id="text"),
        pytest.param(lambda: SimpleUploadedFile("e.jpg", b"", "image/jpeg"), id="empty"),
        pytest.param(lambda: image_file("g.gif", "GIF"), id="gif"),
    ],
)
def test_hostile_photos_are_refused_by_the_photo_module(world, photo):
    issue = world.issue_in(S.IN_PROGRESS)
    before = snapshot(issue)
    response = Api(world.builder).upload(
        f"/issues/{issue.pk}/rectify", {"text": "已整改"}, [photo()]
    )
    body = assert_error(response, 400, "photos")
    assert any(e["field"] == "photos" and e["message"] for e in body["errors"])
    assert snapshot(issue) == before
    filed = Api(world.alice).upload("/issues", new_issue_fields(world.project), [photo()])
    assert_error(filed, 400, "photos")
    assert Issue.objects.count() == 1


def test_too_many_photos_and_unknown_upload_fields(world):
    issue = world.issue_in(S.IN_PROGRESS)
    builder = Api(world.builder)
    ten = [image_file(f"{n}.jpg") for n in range(10)]
    assert_error(builder.upload(f"/issues/{issue.pk}/rectify", {"text": "好"}, ten), 400, "photos")
    extra = builder.upload(
        f"/issues/{issue.pk}/rectify", {"text": "好", "rating": "x"}, [image_file()]
    )
    assert_error(extra, 400, "rating")
    no_photo = builder.upload(f"/issues/{issue.pk}/rectify", {"text": "好"})
    assert_error(no_photo, 400, "photos")
    assert snapshot(issue)[0] == S.IN_PROGRESS


# --- filing ------------------------------------------------------------------------------------


def test_only_a_serving_supervisor_files_and_only_on_watched_projects(world):
    fields = new_issue_fields(world.project)
    assert_error(Api(world.handler).upload("/issues", fields, [image_file()]), 403)
    assert_error(Api(world.bob).upload("/issues", fields, [image_file()]), 400, "project")
    assert_error(Api(world.alice).upload("/issues", fields), 400, "photos")
    opinion = new_issue_fields(world.project, category="opinion")
    assert_error(Api(world.alice).upload("/issues", opinion), 400, "building")
    unknown = {**fields, "status": "closed"}
    assert_error(Api(world.alice).upload("/issues", unknown, [image_file()]), 400, "status")
    wrong = {**fields, "households": "many"}
    assert_error(Api(world.alice).upload("/issues", wrong, [image_file()]), 400, "households")
    assert not Issue.objects.exists()
    filed = Api(world.alice).upload("/issues", fields, [image_file()])
    assert filed.status_code == 201
    assert filed.json()["reporter"] == "alice"
    assert Photo.objects.filter(issue_id=filed.json()["id"], kind="before").count() == 1


# --- lists, feed, notifications, projects ------------------------------------------------------


def test_issue_list_filters_like_the_page_and_pages_by_cursor(world):
    issues = [world.submit(title=f"问题{n}") for n in range(5)]
    world.issue_in(S.CLOSED, title="已办结的")
    alice = Api(world.alice)
    first = alice.get("/issues", status="submitted", limit=2).json()
    assert [row["id"] for row in first["items"]] == [issues[4].pk, issues[3].pk]
    second = alice.get("/issues", status="submitted", limit=2, cursor=first["next_cursor"]).json()
    third = alice.get("/issues", status="submitted", limit=2, cursor=second["next_cursor"]).json()
    assert [row["id"] for row in second["items"] + third["items"]] == [
        issues[2].pk,
        issues[1].pk,
        issues[0].pk,
    ]
    assert third["next_cursor"] is None
    assert alice.get("/issues", q="已办结").json()["items"][0]["status"] == "closed"
    assert len(alice.get("/issues", mine=True).json()["items"]) == 6
    assert_error(alice.get("/issues", cursor="yesterday"), 400, "cursor")
    assert_error(alice.get("/issues", cursor="99999999999999999999-1"), 400, "cursor")
    assert_error(alice.get("/issues", status="lost"), 400, "status")
    assert_error(alice.get("/issues", limit=1000), 400, "limit")
    # The filter's own rule: a supervisor filters by the projects they watch.
    # The group is transparent: any project's issues (the page's filter offers them all).
    assert alice.get("/issues", project=world.other_project.pk).status_code == 200


def test_issue_list_never_counts_or_offsets(world, django_assert_max_num_queries):
    for n in range(3):
        world.submit(title=f"问题{n}")
    alice = Api(world.alice)
    with django_assert_max_num_queries(8):
        response = alice.get("/issues", limit=2)
    assert response.status_code == 200


def test_feed_after_and_before_cursors(world):
    issue = world.submit()
    alice = Api(world.alice)
    page = alice.get("/feed").json()
    assert page["items"][0]["kind"] == "submitted"
    newest = page["newest"]
    assert alice.get("/feed", after=newest).json()["items"] == []
    services.accept_issue(issue, actor=world.handler)
    services.comment_on_issue(issue, actor=world.handler, text="今天去现场")
    newer = alice.get("/feed", after=newest).json()
    assert [e["kind"] for e in newer["items"]] == ["commented", "accepted"]
    older = alice.get("/feed", before=newer["newest"], limit=1).json()
    assert [e["kind"] for e in older["items"]] == ["accepted"]
    assert older["older"]
    assert_error(alice.get("/feed", after="abc"), 400, "after")
    # The other office sees none of it.
    assert Api(world.other_staff).get("/feed").json()["items"] == []


def test_notifications_list_and_mark_read(world, django_capture_on_commit_callbacks):
    issue = world.submit()
    with django_capture_on_commit_callbacks(execute=True):
        services.accept_issue(issue, actor=world.handler)
        services.comment_on_issue(issue, actor=world.handler, text="今天去现场")
    alice = Api(world.alice)
    page = alice.get("/notifications").json()
    assert page["unread"] >= 1
    note = page["items"][0]
    assert note["event"]["issue"] == issue.pk and note["read_at"] is None
    assert_error(Api(world.bob).post(f"/notifications/{note['id']}/read"), 404)
    assert Notification.objects.get(pk=note["id"]).read_at is None
    assert alice.post(f"/notifications/{note['id']}/read").json()["read_at"]
    marked = alice.post("/notifications/read").json()["marked"]
    assert marked == page["unread"] - 1
    assert alice.get("/notifications", unread=True).json()["items"] == []


def test_notifications_of_an_issue_no_longer_visible_drop_out(
    world, django_capture_on_commit_callbacks
):
    """After a transfer, the first office's notifications must not carry the issue's events."""
    with django_capture_on_commit_callbacks(execute=True):
        issue = world.submit()
    office = Api(world.handler)

    def about_it():
        return [
            n
            for n in office.get("/notifications").json()["items"]
            if n["event"]["issue"] == issue.pk
        ]

    assert about_it()
    with django_capture_on_commit_callbacks(execute=True):
        services.transfer_issue(
            issue, actor=world.handler, department=world.other_office, text="属玉海街道"
        )
    assert about_it() == []


def test_projects_are_public_and_progress_is_by_area(world):
    world.project.scope_items.create(area="building", description="外墙", progress=50)
    world.project.scope_items.create(area="pipes", description="雨污分流", progress=100)
    public = Api()
    listed = public.get("/projects").json()
    assert {p["id"] for p in listed["items"]} == {world.project.pk, world.other_project.pk}
    detail = public.get(f"/projects/{world.project.pk}").json()
    assert detail["progress"] == 75 and len(detail["milestones"]) == 5
    progress = public.get(f"/projects/{world.project.pk}/progress").json()
    assert [(a["area"], a["progress"]) for a in progress["areas"]] == [
        ("building", 50),
        ("pipes", 100),
    ]
    assert_error(public.get("/projects/999999"), 404)
    assert_error(public.get("/projects", year="soon"), 400, "year")
    assert_error(Api(key="qzjd_wrong").get("/projects"), 401)  # a wrong key is not anonymous
    first = public.get("/projects", limit=1).json()
    second = public.get("/projects", limit=1, cursor=first["next_cursor"]).json()
    assert first["items"][0]["id"] != second["items"][0]["id"]


# --- every error class has its handler: never a 500 --------------------------------------------


@pytest.mark.parametrize(
    "make, status",
    [
        (
            lambda: __import__("ninja.errors").errors.ValidationError(
                [{"loc": ("body", "payload", "x"), "msg": "m", "type": "missing"}]
            ),
            400,
        ),
        (lambda: __import__("api.v1").v1.InvalidInput({"title": ["必填"]}), 400),
        (lambda: __import__("ninja.errors").errors.AuthenticationError(), 401),
        (lambda: __import__("api.v1").v1.RateLimited(), 429),
        (
            lambda: __import__("ninja.errors").errors.HttpError(400, "Cannot parse request body"),
            400,
        ),
        (lambda: __import__("django.http").http.Http404(), 404),
        (lambda: __import__("django.core.exceptions").core.exceptions.PermissionDenied(), 403),
        (lambda: services.WorkflowError("不能签收", status_code=409), 409),
        (lambda: services.WorkflowError("不是你", status_code=403), 403),
        (lambda: services.WorkflowError("请填写", status_code=400), 400),
        (lambda: __import__("supervision.photos").photos.PhotoError(["a.jpg：是空文件"]), 400),
    ],
)
def test_each_error_class_answers_json_with_its_status(rf, make, status):
    from api.v1 import api

    response = api.on_exception(rf.get("/api/v1/issues"), make())
    assert response.status_code == status
    body = json.loads(response.content)
    assert set(body) == {"detail", "errors"} and body["detail"]


# --- the key page ------------------------------------------------------------------------------

KEYS = "/me/api-keys/"


def test_key_page_needs_login(world, client):
    response = client.get(KEYS)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_new_key_is_shown_once_and_stored_only_as_its_digest(world, client):
    client.force_login(world.handler)
    created = client.post(KEYS, {"name": "监督小程序"})
    assert created.status_code == 200
    key = created.context["new_key"]
    assert key.startswith("qzjd_") and key in created.content.decode()
    assert "只显示这一次" in created.content.decode()
    token = ApiToken.objects.get(user=world.handler)
    assert token.name == "监督小程序" and key.startswith(token.prefix)
    assert token.digest == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    again = client.get(KEYS).content.decode()
    assert key not in again and token.prefix in again and "监督小程序" in again
    assert Api(key=key).get("/me").json()["username"] == "anyang"


def test_key_name_is_required(world, client):
    client.force_login(world.alice)
    assert client.post(KEYS, {"name": ""}).status_code == 400
    assert not ApiToken.objects.exists()


def test_revoking_my_key_stops_it(world, client):
    token, key = create_token(world.alice, "旧手机")
    client.force_login(world.alice)
    response = client.post(f"{KEYS}{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert_error(Api(key=key).get("/me"), 401)
    assert "已于" in client.get(KEYS).content.decode()


def test_another_users_key_cannot_be_revoked(world, client):
    token, key = create_token(world.bob, "bob 的手机")
    client.force_login(world.alice)
    assert client.post(f"{KEYS}{token.pk}/revoke/").status_code == 404
    assert client.get(f"{KEYS}{token.pk}/revoke/").status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None
    assert "bob 的手机" not in client.get(KEYS).content.decode()
    assert Api(key=key).get("/me").status_code == 200


def test_the_settings_page_links_to_the_keys(world, client):
    """Keys are for apps, not for the resident's everyday page: they sit under 设置."""
    client.force_login(world.alice)
    assert "/me/settings/" in client.get("/me/").content.decode()
    assert KEYS in client.get("/me/settings/").content.decode()


# --- the document and the interactive docs -----------------------------------------------------


def test_openapi_document_and_docs_work_offline_under_the_csp(client):
    document = client.get(f"{API}/openapi.json").json()
    assert document["info"]["title"] == "群众监督 API"
    assert "/api/v1/issues/{issue_id}/accept" in document["paths"]
    docs = client.get(f"{API}/docs")
    assert docs.status_code == 200
    assert "script-src 'self'" in docs["Content-Security-Policy"]
    html = docs.content.decode()
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all("src=" in attrs or "application/json" in attrs for attrs in scripts)
    assert "cdn" not in html.lower() and "//" not in "".join(re.findall(r'src="([^"]*)"', html))
    for src in re.findall(r'(?:src|href)="(/static/[^"]*)"', html):
        assert finders.find(src.removeprefix("/static/")), src


def test_photo_urls_from_the_api_open_with_the_key(
    client, world, django_capture_on_commit_callbacks
):
    """The mini-program has no session: the photo addresses the API gives work with its key."""
    from api.tokens import create_token, revoke_token

    from .factories import image_file

    with django_capture_on_commit_callbacks(execute=True):  # files are written on commit
        issue = world.submit(photos=[image_file()])  # not public
    photo = issue.photos.get()
    token, key = create_token(world.alice, "小程序")
    url = f"/photos/{photo.pk}/"
    assert client.get(url).status_code == 404
    assert client.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    other = create_token(world.other_staff, "x")[1]  # another office may not see it
    assert client.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 404
    revoke_token(token)
    assert client.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 404


def test_a_heic_photo_filed_through_the_api_is_pending_until_the_worker_converts_it(
    world, django_capture_on_commit_callbacks
):
    """The mini-program gets its answer at once; the photo's ``state`` says when it is ready."""
    import pillow_heif
    from PIL import Image

    from .worker import run_worker

    pillow_heif.register_heif_opener()
    heic = image_file("IMG_0001.HEIC", "HEIF")
    api = Api(world.alice)
    with django_capture_on_commit_callbacks(execute=True):
        filed = api.upload("/issues", new_issue_fields(world.project), [heic])
    assert filed.status_code == 201, filed.content
    photo = filed.json()["photos"][0]
    assert photo["state"] == "pending"
    run_worker()
    again = api.get(f"/issues/{filed.json()['id']}").json()["photos"][0]
    assert again["state"] == "ready" and again["id"] == photo["id"]
    assert Image.open(Photo.objects.get(pk=photo["id"]).image.open()).format == "JPEG"
