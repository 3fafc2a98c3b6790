"""The supervisors' pages: filing, the issue page and its steps, the list, the 监督群 feed, photos,
my page. Each test checks the response, then what was saved, then the events written."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from unittest import mock

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image

from supervision import services
from supervision.models import Issue, IssueEvent, Photo

from .factories import image_file, make_neighbourhood, make_project, make_supervisor

S = Issue.Status
Kind = IssueEvent.Kind
FEED_PAGE = 30
# A residents' opinion: filed without a photo.
OPINION = {"category": Issue.Category.OPINION, "building": "3", "households": 4, "photos": []}


# --- helpers -----------------------------------------------------------------------------------


def page_of(response) -> str:
    return response.content.decode()


def field_errors(page: str, name: str, prefix: str = "id_") -> str:
    """The error block crispy renders under a field (empty when the field has none). Step forms
    prefix their ids with the step (``comment-text``)."""
    pattern = rf'<div id="{prefix}{name}_error" class="invalid-feedback">(.*?)</div>'
    match = re.search(pattern, page, re.S)
    return match.group(1) if match else ""


def refusal(page: str) -> str:
    match = re.search(r"<div [^>]*data-refusal>(.*?)</div>", page, re.S)
    return match.group(1) if match else ""


def filing(world, token: str = "tok-filing-1", **fields) -> dict:
    data = {
        "token": token,
        "project": world.project.pk,
        "category": Issue.Category.QUALITY,
        "urgency": Issue.Urgency.NORMAL,
        "title": "5 幢北面外墙涂料起皮",
        "description": "北面外墙涂料大面积起皮，一碰就掉，楼下是儿童游乐区。",
        "building": "5 幢",
        "location": "北面外墙",
        "photos": [image_file()],
    }
    data.update(fields)
    return data


def step(client, user, issue: Issue, action: str, **data):
    client.force_login(user)
    return client.post(f"/issues/{issue.pk}/{action}/", data)


def events_of(issue: Issue) -> list[str]:
    return list(issue.events.order_by("created_at", "pk").values_list("kind", flat=True))


def listed(response) -> set[int]:
    return {issue.pk for issue in response.context["page"]}


def feed_ids(response) -> list[int]:
    return [event.pk for event in response.context["events"]]


def cursor(event: IssueEvent) -> str:
    """The feed's cursor: microseconds since the epoch and the event's id."""
    return f"{int(event.created_at.timestamp() * 1_000_000)}-{event.pk}"


def section(page: str, heading_id: str) -> str:
    """The HTML of the ``<section>`` labelled by ``heading_id``."""
    start = page.index(f'id="{heading_id}"')
    return page[start : page.index("</section>", start)]


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries.captured_queries)


# --- filing: the form --------------------------------------------------------------------------


def test_new_issue_form_offers_the_camera_and_the_album_and_carries_a_token(world, client):
    """Both, always: 「拍照」 opens the back camera, 「从相册选」 the album, several at once."""
    client.force_login(world.alice)
    response = client.get("/issues/new/")
    assert response.status_code == 200
    page = page_of(response)
    inputs = re.findall(r'<input type="file" name="photos"[^>]*>', page)
    assert len(inputs) == 2
    camera, album = inputs
    assert 'capture="environment"' in camera and " multiple" not in camera
    assert " multiple" in album and "capture" not in album and 'accept="image/*' in album
    assert ">拍照</label>" in page and ">从相册选</label>" in page
    token = re.search(r'<input type="hidden" name="token" value="([^"]+)"', page).group(1)
    assert len(token) >= 20
    again = re.search(r'name="token" value="([^"]+)"', page_of(client.get("/issues/new/")))
    assert again.group(1) != token  # each form a fresh token
    # Alice watches one project: it is chosen for her, and the form says which.
    assert f'<input type="hidden" name="project" value="{world.project.pk}">' in page
    assert f"反映到：<strong>{world.project.name}</strong>" in page


def test_project_in_the_address_is_preselected_when_watched(world, client):
    unwatched = make_project(make_neighbourhood(world.anyang, "新村"))
    world.alice.supervisor.projects.add(world.other_project)
    client.force_login(world.alice)

    page = page_of(client.get("/issues/new/", {"project": world.other_project.pk}))
    assert f'<option value="{world.other_project.pk}" selected>' in page
    assert f'<option value="{world.project.pk}" selected>' not in page

    page = page_of(client.get("/issues/new/", {"project": unwatched.pk}))
    assert f'<option value="{unwatched.pk}"' not in page  # not even offered
    assert '<option value="" selected>' in page


def test_new_issue_needs_login(world, client):
    response = client.get("/issues/new/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/issues/new/")


@pytest.mark.parametrize("who", ["handler", "bureau", "dismissed", "term_over"])
def test_only_serving_supervisors_may_file(world, client, who):
    if who == "dismissed":
        user = make_supervisor(
            "dave",
            world.project.neighbourhood,
            [world.project],
            is_active=False,
            dismissed_on=date(2024, 1, 1),
        )
    elif who == "term_over":
        user = make_supervisor(
            "erin",
            world.project.neighbourhood,
            [world.project],
            appointed_on=date(2020, 1, 1),
            term_ends_on=date(2022, 12, 31),
        )
    else:
        user = getattr(world, who)
    client.force_login(user)
    assert client.get("/issues/new/").status_code == 403
    response = client.post("/issues/new/", filing(world))
    assert response.status_code == 403
    assert "没有权限" in page_of(response)
    assert not Issue.objects.exists()


# --- filing: posting ---------------------------------------------------------------------------


def test_filing_lands_on_the_new_issue(world, client):
    client.force_login(world.alice)
    response = client.post("/issues/new/", filing(world))

    issue = Issue.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/issues/{issue.pk}/"
    page = page_of(client.get(response["Location"]))
    assert issue.reference in page
    assert f"已提交，编号 {issue.reference}" in page
    assert page.count('data-status="submitted"') == 1

    assert issue.reporter == world.alice
    assert issue.status == S.SUBMITTED
    assert issue.department == world.office
    assert (issue.building, issue.location) == ("5 幢", "北面外墙")
    assert issue.photos.count() == 1
    assert events_of(issue) == [Kind.SUBMITTED]


def test_double_submit_files_one_issue(world, client):
    client.force_login(world.alice)
    first = client.post("/issues/new/", filing(world, token="same-token"))
    second = client.post("/issues/new/", filing(world, token="same-token"))

    issue = Issue.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/issues/{issue.pk}/"
    assert issue.photos.count() == 1
    assert events_of(issue) == [Kind.SUBMITTED]


def test_retry_by_the_upload_script_gets_the_address_of_the_same_issue(world, client):
    client.force_login(world.alice)
    first = client.post(
        "/issues/new/", filing(world, token="xhr-token"), HTTP_X_REQUESTED_WITH="XMLHttpRequest"
    )
    retry = client.post(
        "/issues/new/", filing(world, token="xhr-token"), HTTP_X_REQUESTED_WITH="XMLHttpRequest"
    )

    issue = Issue.objects.get()
    for response in (first, retry):
        assert response.status_code == 200
        assert response["X-Location"] == f"/issues/{issue.pk}/"
    assert events_of(issue) == [Kind.SUBMITTED]


def test_a_token_of_someone_else_is_refused(world, client):
    world.bob.supervisor.projects.add(world.project)
    client.force_login(world.alice)
    client.post("/issues/new/", filing(world, token="alice-token"))
    client.force_login(world.bob)
    response = client.post("/issues/new/", filing(world, token="alice-token", title="鲍勃的问题"))

    assert response.status_code == 400
    assert "提交凭据无效" in page_of(response)
    assert list(Issue.objects.values_list("reporter__username", flat=True)) == ["alice"]


@pytest.mark.parametrize("missing", ["title", "description", "category"])
def test_missing_field_is_refused_and_what_was_typed_is_kept(world, client, missing):
    client.force_login(world.alice)
    data = filing(world)
    del data[missing]
    response = client.post("/issues/new/", data)

    assert response.status_code == 400
    page = page_of(response)
    # The service's own words for its rule, beside the field (services.filing_problems).
    assert {
        "title": "请用一句话说明问题。",
        "description": "请描述问题，或按住说话录一段语音。",
        "category": "请选择问题类别。",
    }[missing] in field_errors(page, missing)
    assert "您填写的文字都已保留" in page
    if missing != "description":
        assert "北面外墙涂料大面积起皮，一碰就掉，楼下是儿童游乐区。" in page
    if missing != "title":
        assert 'value="5 幢北面外墙涂料起皮"' in page
    assert 'value="北面外墙"' in page
    assert not Issue.objects.exists()


def test_issue_other_than_an_opinion_needs_a_photo(world, client):
    client.force_login(world.alice)
    response = client.post("/issues/new/", filing(world, photos=[]))
    assert response.status_code == 400
    assert "请至少拍一张现场照片。" in field_errors(page_of(response), "photos")
    assert not Issue.objects.exists()


def test_residents_opinion_needs_building_and_households(world, client):
    client.force_login(world.alice)
    response = client.post(
        "/issues/new/",
        filing(world, category=Issue.Category.OPINION, building="", households="", photos=[]),
    )
    assert response.status_code == 400
    page = page_of(response)
    assert "居民意见请写明是哪一幢楼的居民。" in field_errors(page, "building")
    assert "请写明代表多少户居民。" in field_errors(page, "households")
    assert not Issue.objects.exists()


def test_residents_opinion_is_saved_with_building_and_households(world, client):
    client.force_login(world.alice)
    response = client.post(
        "/issues/new/",
        filing(
            world,
            category=Issue.Category.OPINION,
            building="3 幢",
            households="12",
            title="希望加装电梯",
            photos=[],
        ),
    )
    issue = Issue.objects.get()
    assert response.status_code == 302
    assert (issue.category, issue.building, issue.households) == (
        Issue.Category.OPINION,
        "3 幢",
        12,
    )
    assert not issue.photos.exists()
    assert "12 户" in page_of(client.get(issue.get_absolute_url()))


# --- steps -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "state", "data", "reason"),
    [
        ("verify", S.RECTIFIED, {"rating": "satisfied"}, "只有反映人本人可以验证办结。"),
        ("reopen", S.RECTIFIED, {"reason": "墙还是起皮"}, "只有反映人本人可以退回。"),
        ("withdraw", S.SUBMITTED, {"reason": "不需要了"}, "只有反映人本人可以撤回。"),
    ],
)
def test_another_supervisor_cannot_take_the_reporters_steps(
    world, client, action, state, data, reason
):
    issue = world.issue_in(state)
    before = events_of(issue)
    response = step(client, world.bob, issue, action, **data)

    assert response.status_code == 403
    assert refusal(page_of(response)) == reason
    issue.refresh_from_db()
    assert issue.status == state
    assert events_of(issue) == before


@pytest.mark.parametrize(
    ("who", "action", "state", "data", "reason"),
    [
        ("alice", "verify", S.SUBMITTED, {"rating": "satisfied"}, "不能验证办结"),
        ("alice", "reopen", S.CLOSED, {"reason": "又坏了"}, "不能退回"),
        ("alice", "withdraw", S.ACCEPTED, {"reason": "不需要了"}, "部门已经处理，不能撤回"),
        ("handler", "accept", S.ACCEPTED, {}, "不能签收"),
        ("handler", "dispatch", S.SUBMITTED, {"department": "contractor"}, "不能派单"),
    ],
)
def test_step_from_the_wrong_state_is_a_conflict(world, client, who, action, state, data, reason):
    issue = world.issue_in(state)
    if data.get("department") == "contractor":
        data = {"department": world.contractor.pk}
    before = events_of(issue)
    response = step(client, getattr(world, who), issue, action, **data)

    assert response.status_code == 409
    message = refusal(page_of(response))
    assert reason in message and issue.get_status_display() in message
    issue.refresh_from_db()
    assert issue.status == state
    assert events_of(issue) == before


def test_reporter_verifies_a_rectified_issue_as_satisfied(world, client):
    issue = world.issue_in(S.RECTIFIED)
    response = step(client, world.alice, issue, "verify", rating="satisfied", text="修得很好")

    assert response.status_code == 302
    assert response["Location"] == issue.get_absolute_url()
    issue.refresh_from_db()
    assert (issue.status, issue.rating) == (S.CLOSED, "satisfied")
    assert issue.closed_at is not None
    event = issue.events.latest("created_at", "pk")
    assert (event.kind, event.rating, event.text) == (Kind.VERIFIED, "satisfied", "修得很好")
    assert (event.from_status, event.to_status) == (S.RECTIFIED, S.CLOSED)


def test_unsatisfied_without_a_reason_is_refused(world, client):
    issue = world.issue_in(S.RECTIFIED)
    before = events_of(issue)
    response = step(client, world.alice, issue, "verify", rating="unsatisfied", text="  ")

    assert response.status_code == 400
    page = page_of(response)
    assert "选择“不满意”时，请写明哪里还不满意。" in field_errors(page, "text", prefix="verify-")
    assert "请按提示修改后再提交。" in refusal(page)
    issue.refresh_from_db()
    assert (issue.status, issue.rating) == (S.RECTIFIED, "")
    assert events_of(issue) == before


def test_unsatisfied_with_a_reason_sends_the_issue_back(world, client):
    issue = world.issue_in(S.RECTIFIED)
    before = events_of(issue)
    response = step(client, world.alice, issue, "verify", rating="unsatisfied", text="墙还是起皮")

    assert response.status_code == 302
    issue.refresh_from_db()
    assert (issue.status, issue.rating) == (S.IN_PROGRESS, "")
    assert issue.rectified_at is None
    assert events_of(issue) == [*before, Kind.REOPENED]
    event = issue.events.get(kind=Kind.REOPENED)
    assert (event.rating, event.text) == ("unsatisfied", "墙还是起皮")


def test_reporter_reopens_with_a_reason(world, client):
    issue = world.issue_in(S.RECTIFIED)
    response = step(client, world.alice, issue, "reopen", reason="雨后又渗水")

    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == S.IN_PROGRESS
    assert issue.events.get(kind=Kind.REOPENED).text == "雨后又渗水"


def test_reporter_withdraws_a_submitted_issue_with_a_reason(world, client):
    issue = world.issue_in(S.SUBMITTED)
    response = step(client, world.alice, issue, "withdraw", reason="已自行解决")

    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == S.WITHDRAWN
    assert events_of(issue) == [Kind.SUBMITTED, Kind.WITHDRAWN]
    assert issue.events.get(kind=Kind.WITHDRAWN).text == "已自行解决"


def test_reporter_comments_with_text_and_a_photo(world, client, django_capture_on_commit_callbacks):
    issue = world.issue_in(S.SUBMITTED)
    with django_capture_on_commit_callbacks(execute=True):
        response = step(
            client, world.alice, issue, "comment", text="今天又掉了一块", photos=[image_file()]
        )

    assert response.status_code == 302
    event = issue.events.get(kind=Kind.COMMENTED)
    assert event.text == "今天又掉了一块"
    assert event.actor == world.alice
    photo = event.photos.get()
    assert (photo.issue, photo.kind) == (issue, Photo.Kind.BEFORE)
    page = page_of(client.get(issue.get_absolute_url()))
    assert "今天又掉了一块" in page and photo.thumbnail_url in page


def test_comment_without_text_is_refused(world, client):
    issue = world.issue_in(S.SUBMITTED)
    response = step(client, world.alice, issue, "comment", text="")
    assert response.status_code == 400
    assert "请填写留言内容，或按住说话录一段语音。" in field_errors(
        page_of(response), "text", prefix="comment-"
    )
    assert events_of(issue) == [Kind.SUBMITTED]


def test_department_accepts_with_a_deadline_then_dispatches_to_the_contractor(world, client):
    issue = world.issue_in(S.SUBMITTED)
    deadline = timezone.localdate() + timedelta(days=20)
    response = step(client, world.handler, issue, "accept", deadline=deadline.isoformat())

    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == S.ACCEPTED
    assert timezone.localtime(issue.rectify_due_at).date() == deadline
    accepted = issue.events.get(kind=Kind.ACCEPTED)
    assert (accepted.actor, accepted.deadline) == (world.handler, issue.rectify_due_at)

    response = step(client, world.handler, issue, "dispatch", department=world.contractor.pk)
    assert response.status_code == 302
    issue.refresh_from_db()
    assert (issue.status, issue.contractor) == (S.IN_PROGRESS, world.contractor)
    assert events_of(issue) == [Kind.SUBMITTED, Kind.ACCEPTED, Kind.DISPATCHED]
    assert issue.events.get(kind=Kind.DISPATCHED).department == world.contractor


def test_a_deadline_in_the_past_is_refused(world, client):
    issue = world.issue_in(S.SUBMITTED)
    yesterday = timezone.localdate() - timedelta(days=1)
    response = step(client, world.handler, issue, "accept", deadline=yesterday.isoformat())
    assert response.status_code == 400
    assert "整改期限不能早于今天。" in refusal(page_of(response))
    issue.refresh_from_db()
    assert issue.status == S.SUBMITTED


def test_unknown_step_is_404(world, client):
    issue = world.issue_in(S.SUBMITTED)
    client.force_login(world.alice)
    assert client.post(f"/issues/{issue.pk}/approve/", {"text": "x"}).status_code == 404
    assert client.get(f"/issues/{issue.pk}/approve/").status_code == 404
    assert events_of(issue) == [Kind.SUBMITTED]


def test_steps_need_post(world, client):
    issue = world.issue_in(S.SUBMITTED)
    client.force_login(world.alice)
    assert client.get(f"/issues/{issue.pk}/withdraw/").status_code == 405


def test_another_departments_staff_do_not_see_the_issue_at_all(world, client):
    issue = world.issue_in(S.SUBMITTED)
    client.force_login(world.other_staff)
    assert client.get(issue.get_absolute_url()).status_code == 404
    for action, data in [("accept", {}), ("comment", {"text": "我来看看"})]:
        assert step(client, world.other_staff, issue, action, **data).status_code == 404
    issue.refresh_from_db()
    assert issue.status == S.SUBMITTED
    assert events_of(issue) == [Kind.SUBMITTED]


def test_anonymous_visitor_is_sent_to_login_from_the_issue_page(world, client):
    issue = world.issue_in(S.SUBMITTED)
    response = client.get(issue.get_absolute_url())
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    response = client.post(f"/issues/{issue.pk}/withdraw/", {"reason": "x"})
    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == S.SUBMITTED


# --- what the issue page offers ----------------------------------------------------------------


def offered_steps(page: str) -> set[str]:
    return set(re.findall(r'<details class="card mb-2" id="step-([a-z]+)"', page))


def test_reporter_is_offered_verify_and_reopen_on_a_rectified_issue(world, client):
    issue = world.issue_in(S.RECTIFIED)
    client.force_login(world.alice)
    page = page_of(client.get(issue.get_absolute_url()))
    assert offered_steps(page) == {"verify", "reopen", "comment"}
    assert f'action="/issues/{issue.pk}/verify/"' in page
    assert f'action="/issues/{issue.pk}/reopen/"' in page
    assert f'action="/issues/{issue.pk}/accept/"' not in page
    assert 'name="rating"' in page


def test_another_supervisor_is_offered_only_a_comment(world, client):
    issue = world.issue_in(S.RECTIFIED)
    client.force_login(world.bob)
    page = page_of(client.get(issue.get_absolute_url()))
    assert offered_steps(page) == {"comment"}
    for action in ("verify", "reopen", "withdraw"):
        assert f'action="/issues/{issue.pk}/{action}/"' not in page


def test_page_offers_what_allowed_steps_allows(world, client):
    issue = world.issue_in(S.SUBMITTED)
    for user in (world.alice, world.bob, world.handler, world.bureau):
        client.force_login(user)
        page = page_of(client.get(issue.get_absolute_url()))
        assert offered_steps(page) == set(services.allowed_steps(user, issue)), user


# --- the list ----------------------------------------------------------------------------------


@pytest.fixture
def some_issues(world):
    """Alice: a quality issue past its sign-for time, a closed safety issue; Bob: one on 玉海."""
    late = world.submit(title="楼道灯不亮", category=Issue.Category.QUALITY)
    Issue.objects.filter(pk=late.pk).update(sign_for_due_at=timezone.now() - timedelta(hours=1))
    closed = world.issue_in(S.CLOSED, title="围挡倒了", category=Issue.Category.SAFETY)
    bobs = world.submit(
        reporter=world.bob,
        project=world.other_project,
        title="工期拖延",
        category=Issue.Category.PROGRESS,
    )
    return late, closed, bobs


def test_issue_list_filters(world, client, some_issues):
    late, closed, bobs = some_issues
    client.force_login(world.alice)
    assert listed(client.get("/issues/")) == {late.pk, closed.pk, bobs.pk}
    assert listed(client.get("/issues/", {"status": "closed"})) == {closed.pk}
    assert listed(client.get("/issues/", {"category": "safety"})) == {closed.pk}
    assert listed(client.get("/issues/", {"overdue": "on"})) == {late.pk}
    assert listed(client.get("/issues/", {"mine": "on"})) == {late.pk, closed.pk}
    assert listed(client.get("/issues/", {"q": bobs.reference})) == {bobs.pk}
    assert listed(client.get("/issues/", {"q": "围挡"})) == {closed.pk}
    assert listed(client.get("/issues/", {"status": "submitted", "mine": "on"})) == {late.pk}
    response = client.get("/issues/", {"q": bobs.reference})
    assert bobs.reference in page_of(response) and "工期拖延" in page_of(response)


def test_issue_list_ignores_nonsense_filters(world, client, some_issues):
    client.force_login(world.alice)
    response = client.get("/issues/", {"status": "zzz", "page": "x"})
    assert response.status_code == 200
    assert len(listed(response)) == 3


def test_staff_see_only_their_departments_issues(world, client, some_issues):
    late, closed, bobs = some_issues
    client.force_login(world.handler)
    assert listed(client.get("/issues/")) == {late.pk, closed.pk}
    client.force_login(world.other_staff)
    assert listed(client.get("/issues/")) == {bobs.pk}
    assert listed(client.get("/issues/", {"q": late.reference})) == set()
    client.force_login(world.builder)  # the contractor: what was dispatched to it
    assert listed(client.get("/issues/")) == {closed.pk}
    client.force_login(world.bureau)
    assert listed(client.get("/issues/")) == {late.pk, closed.pk, bobs.pk}


# Cards and the filter form come from the cache (supervision/fragments.py); nothing may show
# what has changed since, or what the viewer may not see.


def cards_on(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'issue-card" href="/issues/(\d+)/"', page_of(response))]


def filter_options(response, name: str) -> dict[str, str]:
    select = re.search(rf"<select[^>]* name=\"{name}\".*?</select>", page_of(response), re.S)[0]
    return dict(re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select))


def test_a_card_shows_a_step_at_once(world, client):
    issue = world.submit(title="楼道扶手松动")
    client.force_login(world.alice)
    assert '<span class="status status-submitted">已提交</span>' in page_of(client.get("/issues/"))
    services.accept_issue(issue, actor=world.handler)
    page = page_of(client.get("/issues/"))
    assert '<span class="status status-accepted">已签收</span>' in page
    assert "status-submitted" not in page


def test_cards_never_show_what_the_viewer_may_not_see(world, client, some_issues):
    late, closed, bobs = some_issues
    client.force_login(world.bureau)  # every card is now in the cache
    assert sorted(cards_on(client.get("/issues/"))) == sorted([late.pk, closed.pk, bobs.pk])
    client.force_login(world.other_staff)
    assert cards_on(client.get("/issues/")) == [bobs.pk]
    client.force_login(world.builder)
    response = client.get("/issues/")
    assert cards_on(response) == [closed.pk]
    assert "楼道灯不亮" not in page_of(response) and "工期拖延" not in page_of(response)


def test_cards_and_filters_follow_a_renamed_project_at_once(world, client, some_issues):
    client.force_login(world.alice)
    before = client.get("/issues/")
    assert world.project.name in page_of(before)
    assert filter_options(before, "project")[str(world.project.pk)] == world.project.name
    world.project.name = "城东小区二期改造"
    world.project.save()
    after = client.get("/issues/")
    assert "城东小区二期改造" in page_of(after)
    assert filter_options(after, "project")[str(world.project.pk)] == "城东小区二期改造"


def test_other_processes_follow_the_catalogue_within_seconds(world, client, some_issues):
    """Another app process renamed the project: this one reads the new catalogue version from
    the database once its own copy (a few seconds) runs out."""
    from supervision import fragments
    from supervision.models import CatalogueVersion, Project

    client.force_login(world.alice)
    client.get("/issues/")
    Project.objects.filter(pk=world.project.pk).update(name="城东小区二期改造")
    CatalogueVersion.objects.update_or_create(pk=1, defaults={"version": 42})
    assert "城东小区二期改造" not in page_of(client.get("/issues/"))  # this process's copy
    caches["fragments"].delete(fragments.VERSION_KEY)  # what VERSION_SECONDS does
    page = page_of(client.get("/issues/"))
    assert "城东小区二期改造" in page
    assert f'<option value="{world.project.pk}">城东小区二期改造</option>' in page


def test_a_supervisors_new_project_is_in_their_filter_at_once(world, client):
    def own_group() -> str:
        page = page_of(client.get("/issues/"))
        start = page.index('<optgroup label="我监督的项目">')
        return page[start : page.index("</optgroup>", start)]

    client.force_login(world.alice)
    assert world.other_project.name not in own_group()
    world.alice.supervisor.projects.add(world.other_project)
    assert world.other_project.name in own_group()


def test_cards_follow_the_language(world, client):
    world.submit(title="楼道扶手松动", category=Issue.Category.QUALITY)
    client.force_login(world.alice)
    assert " · 质量" in page_of(client.get("/issues/"))
    english = page_of(client.get("/issues/", HTTP_ACCEPT_LANGUAGE="en"))
    assert " · Quality" in english and "质量" not in english


def test_a_wrong_filter_says_why_and_keeps_the_words(world, client, some_issues):
    client.force_login(world.alice)
    client.get("/issues/", {"status": "closed"})  # this form is now kept, without an error
    response = client.get("/issues/", {"status": "closed", "q": "围挡", "project": "999999"})
    assert response.status_code == 200
    page = page_of(response)
    assert re.search(r'<input type="text" name="q" value="围挡"', page)
    assert 'class="invalid-feedback d-block">请从列表里选择一项' in page
    assert 'value="closed" selected' in page
    again = page_of(client.get("/issues/", {"status": "closed"}))
    assert 'class="invalid-feedback d-block"' not in again
    assert 'name="q" value="围挡"' not in again


def test_a_photo_removed_in_the_admin_leaves_the_card_at_once(world, client):
    issue = world.submit(title="楼道扶手松动", photos=[image_file()])
    thumbnail = issue.photos.get().thumbnail_url
    client.force_login(world.alice)
    assert thumbnail in page_of(client.get("/issues/"))
    issue.photos.get().delete()
    assert thumbnail not in page_of(client.get("/issues/"))


def test_the_list_works_when_the_cache_does_not(world, client, some_issues):
    from django.core.cache import caches as all_caches

    fragments_cache = all_caches["fragments"]
    client.force_login(world.alice)
    with (
        mock.patch.object(fragments_cache, "get_many", side_effect=ConnectionError("down")),
        mock.patch.object(fragments_cache, "set_many", side_effect=ConnectionError("down")),
    ):
        response = client.get("/issues/")
    assert response.status_code == 200
    assert len(cards_on(response)) == 3
    assert 'name="project"' in page_of(response)


def test_issue_list_needs_login(world, client):
    response = client.get("/issues/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- the 监督群 feed ----------------------------------------------------------------------------


def test_feed_shows_only_what_the_viewer_may_see(world, client, some_issues):
    late, closed, bobs = some_issues
    alices = set(IssueEvent.objects.filter(issue__in=[late, closed]).values_list("pk", flat=True))
    bobs_events = set(bobs.events.values_list("pk", flat=True))

    client.force_login(world.other_staff)
    response = client.get("/feed/")
    assert set(feed_ids(response)) == bobs_events
    assert late.reference not in page_of(response)

    for supervisor in (world.alice, world.bob):
        client.force_login(supervisor)
        assert set(feed_ids(client.get("/feed/"))) == alices | bobs_events


def test_feed_poll_returns_only_newer_events(world, client, some_issues):
    late, _closed, bobs = some_issues
    client.force_login(world.other_staff)
    newest = client.get("/feed/").context["newest"]

    services.comment_on_issue(late, actor=world.alice, text="安阳的新留言")
    services.comment_on_issue(bobs, actor=world.bob, text="玉海的新留言")
    response = client.get("/feed/", {"after": newest})
    assert response.status_code == 200
    assert [e.text for e in response.context["events"]] == ["玉海的新留言"]

    again = client.get("/feed/", {"after": response.context["newest"]})
    assert feed_ids(again) == []
    assert again.context["newest"] == response.context["newest"]


def test_feed_pages_backwards_and_forwards_by_keyset(world, client):
    issue = world.submit()
    base = timezone.now() - timedelta(days=1)
    # 70 events, two to a moment: the id breaks ties.
    IssueEvent.objects.bulk_create(
        IssueEvent(
            issue=issue,
            kind=Kind.COMMENTED,
            actor=world.alice,
            text=f"第 {n} 条",
            created_at=base + timedelta(seconds=n // 2),
        )
        for n in range(70)
    )
    expected = list(IssueEvent.objects.order_by("-created_at", "-pk").values_list("pk", flat=True))
    assert len(expected) == 71

    client.force_login(world.alice)
    first = client.get("/feed/")
    seen = feed_ids(first)
    older = first.context["older"]
    pages = 1
    while older:
        response = client.get("/feed/", {"before": older})
        assert response.status_code == 200
        assert [t.name for t in response.templates][0] == "supervision/_feed_page.html"
        seen += feed_ids(response)
        older = response.context["older"]
        pages += 1
    assert [len(seen[i : i + FEED_PAGE]) for i in range(0, 71, FEED_PAGE)] == [30, 30, 11]
    assert pages == 3
    assert seen == expected  # newest first, nothing twice, nothing lost
    assert "已经到底了" in page_of(response)

    # Polling from the oldest: 30 at a time, oldest first, each batch shown newest first.
    oldest = IssueEvent.objects.get(pk=expected[-1])
    response = client.get("/feed/", {"after": cursor(oldest)})
    batch = feed_ids(response)
    assert batch == expected[-31:-1]
    response = client.get("/feed/", {"after": response.context["newest"]})
    assert feed_ids(response) == expected[-61:-31]
    response = client.get("/feed/", {"after": response.context["newest"]})
    assert feed_ids(response) == expected[:-61]
    response = client.get("/feed/", {"after": response.context["newest"]})
    assert feed_ids(response) == []


def test_feed_ignores_a_broken_cursor(world, client):
    world.submit()
    client.force_login(world.alice)
    for value in ("", "abc", "12-", "-3", "99999999999999999999999-1"):
        response = client.get("/feed/", {"before": value})
        assert response.status_code == 200
        assert len(feed_ids(response)) == 1


def test_feed_needs_login(db, client):
    response = client.get("/feed/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- photos ------------------------------------------------------------------------------------


@pytest.fixture
def filed_photo(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        issue = world.submit(photos=[image_file(size=(800, 600))])
    return issue.photos.get()


def fetch(client, url: str):
    response = client.get(url)
    # Reading the stream to its end closes the file (the test client wraps it); closing the
    # response again would fire request_finished and drop the test's database connection.
    body = b"".join(response.streaming_content) if response.status_code == 200 else b""
    return response, body


@pytest.mark.parametrize("who", ["alice", "bureau", "handler", "bob"])
def test_who_may_see_the_issue_gets_its_photos(world, client, filed_photo, who):
    client.force_login(getattr(world, who))
    for url, longest in [
        (filed_photo.get_absolute_url(), 800),
        (filed_photo.thumbnail_url, 400),
    ]:
        response, body = fetch(client, url)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert response["X-Content-Type-Options"] == "nosniff"
        # Not kept on the device after logout (a private issue's photo).
        assert response["Cache-Control"] == "private, no-store"
        assert body.startswith(b"\xff\xd8")
        assert max(Image.open(io.BytesIO(body)).size) == longest


def test_anonymous_gets_a_photo_only_of_a_public_issue(world, client, filed_photo):
    for url in (filed_photo.get_absolute_url(), filed_photo.thumbnail_url):
        assert fetch(client, url)[0].status_code == 404
    Issue.objects.filter(pk=filed_photo.issue_id).update(is_public=True)
    for url in (filed_photo.get_absolute_url(), filed_photo.thumbnail_url):
        response, body = fetch(client, url)
        assert response.status_code == 200
        assert body.startswith(b"\xff\xd8")
        assert response["Cache-Control"] == "public, max-age=86400"  # anybody's: kept a day


def test_another_departments_staff_get_404_for_a_photo(world, client, filed_photo):
    client.force_login(world.other_staff)
    for url in (filed_photo.get_absolute_url(), filed_photo.thumbnail_url):
        assert fetch(client, url)[0].status_code == 404


def test_photo_whose_file_is_missing_is_404(world, client):
    issue = world.submit(photos=[image_file()])  # on-commit never ran: no file written
    client.force_login(world.alice)
    assert fetch(client, issue.photos.get().get_absolute_url())[0].status_code == 404
    assert fetch(client, "/photos/999999/")[0].status_code == 404


# --- query counts ------------------------------------------------------------------------------


def test_issue_list_query_count_does_not_grow(world, client):
    def add(n):
        for i in range(n):
            # Half with a photo, half residents' opinions (which need none).
            world.submit(title=f"问题 {i}", **({} if i % 2 else OPINION))

    def cold_and_warm():
        for cache in caches.all():  # every card built from the database, then from the cache
            cache.clear()
        return count_queries(client, "/issues/"), count_queries(client, "/issues/")

    add(5)
    client.force_login(world.alice)
    client.get("/issues/")
    five = cold_and_warm()
    add(45)
    fifty = cold_and_warm()
    assert fifty == five
    cold, warm = five
    assert warm < cold <= 12


@pytest.mark.parametrize("who", ["alice", "handler"])
def test_issue_page_query_count_does_not_grow(world, client, who):
    issue = world.issue_in(S.ACCEPTED)
    actors = [world.alice, world.handler, world.bob]

    def add(n):
        for i in range(n):
            services.comment_on_issue(
                issue,
                actor=actors[i % 3],
                text=f"留言 {i}",
                photos=[image_file()] if i % 4 == 0 else [],
            )

    add(5 - issue.events.count())
    assert issue.events.count() == 5
    client.force_login(getattr(world, who))
    url = issue.get_absolute_url()
    client.get(url)
    five = count_queries(client, url)
    add(45)
    assert issue.events.count() == 50
    fifty = count_queries(client, url)
    assert fifty == five <= 12


def test_feed_query_count_does_not_grow(world, client):
    issues = [world.submit(title=f"问题 {i}", photos=[image_file()]) for i in range(5)]
    client.force_login(world.alice)
    client.get("/feed/")
    five = count_queries(client, "/feed/")
    for i in range(45):
        services.comment_on_issue(
            issues[i % 5],
            actor=[world.bob, world.handler, world.bureau][i % 3],
            text=f"留言 {i}",
            photos=[image_file()] if i % 5 == 0 else [],
        )
    assert IssueEvent.objects.count() == 50
    fifty = count_queries(client, "/feed/")
    assert fifty == five <= 12


def test_my_page_query_count_does_not_grow(world, client):
    world.alice.supervisor.projects.add(world.other_project)

    def add(n):
        for i in range(n):
            issue = world.submit(title=f"问题 {i}", **({} if i % 3 == 0 else OPINION))
            if i % 2:  # waiting for her: answered by the department
                services.answer_issue(issue, actor=world.handler, text=f"答复 {i}")

    add(5)
    client.force_login(world.alice)
    client.get("/me/")
    five = count_queries(client, "/me/")
    add(45)
    fifty = count_queries(client, "/me/")
    assert fifty == five <= 12


# --- my page -----------------------------------------------------------------------------------


def test_my_page_shows_what_waits_for_me_my_open_issues_and_my_projects(world, client):
    rectified = world.issue_in(S.RECTIFIED, title="外墙已重新粉刷")
    open_issue = world.issue_in(S.ACCEPTED, title="雨水管堵塞")
    closed = world.issue_in(S.CLOSED, title="早已办结的问题")
    bobs = world.submit(reporter=world.bob, project=world.other_project, title="鲍勃的问题")

    client.force_login(world.alice)
    response = client.get("/me/")
    assert response.status_code == 200
    page = page_of(response)
    waiting = section(page, "waiting-heading")
    assert "等我验收" in waiting
    assert rectified.reference in waiting and open_issue.reference not in waiting
    mine_open = section(page, "open-heading")
    assert open_issue.reference in mine_open
    assert rectified.reference not in mine_open and closed.reference not in mine_open
    projects = section(page, "projects-heading")
    assert world.project.name in projects and world.other_project.name not in projects
    assert f'href="/issues/new/?project={world.project.pk}"' in projects
    assert bobs.reference not in page
    activity = section(page, "activity-heading")
    assert "已整改" in activity  # the department's report on her issue


def test_my_page_is_for_supervisors(world, client):
    client.force_login(world.handler)
    response = client.get("/me/")
    assert response.status_code == 302
    assert response["Location"] == "/issues/"


def test_my_page_needs_login(db, client):
    response = client.get("/me/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- odd addresses never break a page -----------------------------------------------------------

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "url",
    [
        f"/issues/new/?project={HUGE}",
        f"/issues/?project={HUGE}",
        f"/issues/?department={HUGE}&subdistrict={HUGE}",
        "/issues/?overdue=maybe&mine=perhaps&category=none",
        f"/feed/?before=1700000000000000-{HUGE}",
        f"/feed/?after=1700000000000000-{HUGE}",
        f"/feed/?after={HUGE}9999-1",
        "/feed/?before=-5-1",
    ],
)
def test_nonsense_in_the_address_is_not_a_server_error(world, client, url):
    world.submit()
    client.force_login(world.alice)
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", [f"/issues/{HUGE}/", f"/photos/{HUGE}/", "/issues/0/"])
def test_unknown_ids_are_404(world, client, url):
    client.force_login(world.alice)
    assert client.get(url).status_code == 404


# --- bugs found while writing these tests --------------------------------------------------------


def test_transfer_takes_the_message_as_text_as_design_md_names_it(world, client):
    issue = world.issue_in(S.SUBMITTED)
    response = step(
        client, world.handler, issue, "transfer", department=world.other_office.pk, text="属地调整"
    )
    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.department == world.other_office


def test_transfer_with_reason_moves_the_issue(world, client):
    issue = world.issue_in(S.SUBMITTED)
    response = step(
        client,
        world.handler,
        issue,
        "transfer",
        department=world.other_office.pk,
        reason="属地调整",
    )
    assert response.status_code == 302
    issue.refresh_from_db()
    assert (issue.department, issue.status) == (world.other_office, S.SUBMITTED)
    assert issue.events.get(kind=Kind.TRANSFERRED).text == "属地调整"


def test_transfer_form_offers_only_departments_that_can_receive_the_issue(world, client):
    issue = world.issue_in(S.SUBMITTED)
    client.force_login(world.handler)
    page = page_of(client.get(issue.get_absolute_url()))
    transfer = page[page.index('id="step-transfer"') :]
    transfer = transfer[: transfer.index("</details>")]
    assert f'<option value="{world.other_office.pk}"' in transfer
    assert f'<option value="{world.contractor.pk}"' not in transfer


@pytest.mark.parametrize(
    ("who", "action", "state", "status", "reason"),
    [
        ("bob", "reopen", S.RECTIFIED, 403, "只有反映人本人可以退回。"),
        ("alice", "verify", S.SUBMITTED, 409, "不能验证办结"),
    ],
)
def test_refusal_comes_before_field_checks(world, client, who, action, state, status, reason):
    issue = world.issue_in(state)
    response = step(client, getattr(world, who), issue, action)
    assert response.status_code == status
    assert reason in refusal(page_of(response))


def test_form_posted_without_its_token_is_still_filed_once(world, client):
    # An old page or a client without the token: what the person wrote is not refused.
    client.force_login(world.alice)
    data = filing(world)
    del data["token"]
    response = client.post("/issues/new/", data)
    assert response.status_code == 302
    assert Issue.objects.filter(reporter=world.alice).count() == 1


def test_dismissed_supervisor_is_not_offered_filing(world, client):
    dismissed = make_supervisor(
        "dave",
        world.project.neighbourhood,
        [world.project],
        is_active=False,
        dismissed_on=date(2024, 1, 1),
    )
    client.force_login(dismissed)
    for url in ("/me/", "/issues/"):
        page = page_of(client.get(url))
        assert "/issues/new/" not in page, url
