"""附议 (me too): a supervisor of the project supports an issue with one tap, a resident's letter
counts too; the count shows on the issue, its card, the queue, the figures and the API; the
filing form hints at open issues like the one being filed, so that people support instead of
filing it again."""

import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.tokens import create_token
from supervision import services
from supervision.models import Issue, IssueEvent, Letter, Notification, Support
from supervision.services import WorkflowError

from .factories import image_file, make_project, make_supervisor, make_world

S = Issue.Status
Kind = IssueEvent.Kind
pytestmark = pytest.mark.django_db


@pytest.fixture
def carol(world):
    """Another supervisor of Alice's project."""
    return make_supervisor("carol", world.project.neighbourhood, [world.project])


def letter_of(project, code="ABCD2345") -> Letter:
    return Letter.objects.create(project=project, code=code, summary="3 幢楼道灯不亮")


def hint(client, project, category="quality", building=""):
    query = {"project": project.pk, "category": category, "building": building}
    return client.get("/issues/similar/", query)


# --- supporting --------------------------------------------------------------------------------


def test_a_supervisor_of_the_project_supports_with_one_tap(world, carol, client):
    issue = world.submit(title="外墙脚手架松动")
    client.force_login(carol)
    page = client.get(issue.get_absolute_url()).content.decode()
    assert f'action="/issues/{issue.pk}/support/"' in page  # the one-tap button

    response = client.post(f"/issues/{issue.pk}/support/", follow=True)

    assert response.redirect_chain == [(issue.get_absolute_url(), 302)]
    page = response.content.decode()
    assert "已附议" in page
    assert "1 位居民/监督员附议" in page
    assert "您已附议" in page and f'action="/issues/{issue.pk}/support/"' not in page
    issue.refresh_from_db()
    assert issue.support_count == 1 and issue.status == S.SUBMITTED
    assert list(issue.supports.values_list("supporter", "letter")) == [(carol.pk, None)]
    event = issue.events.get(kind=Kind.SUPPORTED)
    assert (event.actor, event.from_status, event.to_status) == (carol, S.SUBMITTED, S.SUBMITTED)
    assert re.search(r"carol\s*<span[^>]*>[^<]*</span>\s*·[^<]*</div>\s*<div[^>]*>附议", page)


def test_the_reporter_hears_of_a_support_and_the_department_reads_the_count(
    world, carol, django_capture_on_commit_callbacks
):
    issue = world.submit()
    with django_capture_on_commit_callbacks(execute=True):
        services.support_issue(issue, actor=carol)
    event = issue.events.get(kind=Kind.SUPPORTED)
    notified = set(Notification.objects.filter(event=event).values_list("recipient", flat=True))
    assert notified == {world.alice.pk}


def test_support_shows_in_the_feed_on_the_card_and_in_the_api(world, carol, client):
    issue = world.submit(title="围挡倒了没人扶")
    client.force_login(world.bob)
    assert "位附议" not in client.get("/issues/").content.decode()  # the card is now cached
    services.support_issue(issue, actor=carol)

    cards = client.get("/issues/").content.decode()
    assert "1 位附议" in cards  # the support changed updated_at, so the card is new
    feed = client.get("/feed/").content.decode()
    assert re.search(r"carol.*?附议", feed, re.S)

    _token, key = create_token(world.bob, "测试")
    headers = {"Authorization": f"Bearer {key}"}
    listed = client.get("/api/v1/issues", headers=headers).json()["items"]
    detail = client.get(f"/api/v1/issues/{issue.pk}", headers=headers).json()
    assert [(row["id"], row["support_count"]) for row in listed] == [(issue.pk, 1)]
    assert detail["support_count"] == 1 and detail["from_residents"] is False
    assert any(e["kind"] == "supported" for e in detail["events"])


def test_a_supervisor_supports_through_the_api(world, carol, client):
    issue = world.submit()
    _token, key = create_token(carol, "测试")
    headers = {"Authorization": f"Bearer {key}"}
    assert (
        "support"
        in client.get(f"/api/v1/issues/{issue.pk}", headers=headers).json()["allowed_steps"]
    )

    first = client.post(
        f"/api/v1/issues/{issue.pk}/support", "{}", content_type="application/json", headers=headers
    )
    again = client.post(
        f"/api/v1/issues/{issue.pk}/support", "{}", content_type="application/json", headers=headers
    )

    assert first.status_code == 200 and first.json()["support_count"] == 1
    assert again.status_code == 409 and again.json()["detail"] == "您已经附议过这个问题。"


# --- refusals ----------------------------------------------------------------------------------


def assert_unchanged(issue: Issue, events: int) -> None:
    issue.refresh_from_db()
    assert issue.support_count == 0
    assert not Support.objects.filter(issue=issue).exists()
    assert issue.events.count() == events


def test_the_reporter_is_told_kindly_that_it_is_their_own(world, client):
    issue = world.submit()
    client.force_login(world.alice)
    assert (
        f'action="/issues/{issue.pk}/support/"'
        not in client.get(issue.get_absolute_url()).content.decode()
    )

    response = client.post(f"/issues/{issue.pk}/support/")

    assert response.status_code == 403
    assert "这是您自己反映的问题，不用附议" in response.content.decode()
    assert_unchanged(issue, 1)


def test_a_supervisor_of_another_project_may_read_but_not_support(world, client):
    issue = world.submit()
    client.force_login(world.bob)
    assert client.get(issue.get_absolute_url()).status_code == 200  # the group is transparent

    response = client.post(f"/issues/{issue.pk}/support/")

    assert response.status_code == 403
    assert "只有受聘监督这个项目的群众监督员可以附议" in response.content.decode()
    assert_unchanged(issue, 1)


@pytest.mark.parametrize(
    ("role", "status"),
    [("handler", 403), ("bureau", 403), ("other_staff", 404), ("builder", 404)],
)
def test_departments_and_the_bureau_do_not_support(world, client, role, status):
    issue = world.submit()
    client.force_login(getattr(world, role))
    assert client.post(f"/issues/{issue.pk}/support/").status_code == status
    assert_unchanged(issue, 1)


def test_anonymous_is_sent_to_the_login(world, client):
    issue = world.submit()
    response = client.post(f"/issues/{issue.pk}/support/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert_unchanged(issue, 1)


def test_a_dismissed_supervisor_does_not_support(world, carol, client):
    issue = world.submit()
    type(carol.supervisor).objects.filter(user=carol).update(
        is_active=False, dismissed_on=timezone.localdate()
    )
    client.force_login(carol)
    assert client.post(f"/issues/{issue.pk}/support/").status_code == 403
    assert_unchanged(issue, 1)


@pytest.mark.parametrize("state", [S.CLOSED, S.REJECTED, S.WITHDRAWN])
def test_a_finished_issue_takes_no_support(world, carol, client, state):
    issue = world.issue_in(state)
    events = issue.events.count()
    client.force_login(carol)
    assert (
        f'action="/issues/{issue.pk}/support/"'
        not in client.get(issue.get_absolute_url()).content.decode()
    )

    response = client.post(f"/issues/{issue.pk}/support/")

    assert response.status_code == 409
    assert "不能附议" in response.content.decode()
    assert_unchanged(issue, events)


@pytest.mark.parametrize("state", [S.ACCEPTED, S.IN_PROGRESS, S.RECTIFIED, S.ANSWERED])
def test_an_issue_being_worked_on_or_waiting_takes_support(world, carol, state):
    issue = world.issue_in(state)
    services.support_issue(issue, actor=carol)
    assert issue.support_count == 1 and issue.status == state  # the caller's instance too


def test_supporting_twice_is_refused_and_counted_once(world, carol, client):
    issue = world.submit()
    services.support_issue(issue, actor=carol)
    client.force_login(carol)

    response = client.post(f"/issues/{issue.pk}/support/")

    assert response.status_code == 409
    assert "您已经附议过这个问题。" in response.content.decode()
    with pytest.raises(WorkflowError) as again:
        services.support_issue(issue, actor=carol)
    assert again.value.status_code == 409
    issue.refresh_from_db()
    assert issue.support_count == 1 == issue.supports.count()
    assert issue.events.filter(kind=Kind.SUPPORTED).count() == 1


# --- a resident's letter as support -------------------------------------------------------------


def test_a_letter_counts_as_support_even_on_the_carriers_own_issue(world, carol):
    """The support is the resident's: Alice may add a letter to the issue she filed."""
    issue = world.submit()
    services.support_issue(issue, actor=carol)
    support = services.support_issue(issue, actor=world.alice, letter=letter_of(world.project))

    assert support.supporter is None and support.letter.code == "ABCD2345"
    issue.refresh_from_db()
    assert issue.support_count == 2
    event = issue.events.filter(kind=Kind.SUPPORTED).order_by("pk").last()
    assert event.actor == world.alice
    assert event.text == "居民来信反映了同样的问题。"  # never the letter's words or number


def test_a_letter_supports_one_issue_of_its_own_project(world):
    issue = world.submit()
    other = world.submit()
    letter = letter_of(world.project)
    services.support_issue(issue, actor=world.alice, letter=letter)

    with pytest.raises(WorkflowError) as twice:
        services.support_issue(other, actor=world.alice, letter=letter)
    assert twice.value.status_code == 409

    elsewhere = world.submit(reporter=world.bob, project=world.other_project)
    with pytest.raises(WorkflowError) as foreign:
        services.support_issue(
            elsewhere, actor=world.bob, letter=letter_of(world.project, "EFGH6789")
        )
    assert foreign.value.status_code == 400
    with pytest.raises(WorkflowError) as not_mine:
        services.support_issue(
            elsewhere, actor=world.alice, letter=letter_of(world.other_project, "PQRS2345")
        )
    assert not_mine.value.status_code == 403
    assert Issue.objects.filter(support_count__gt=0).count() == 1
    closed = world.issue_in(S.CLOSED)
    with pytest.raises(WorkflowError) as finished:
        services.support_issue(
            closed, actor=world.alice, letter=letter_of(world.project, "JKMN2345")
        )
    assert finished.value.status_code == 409


# --- the queue and the figures -----------------------------------------------------------------


def test_the_panel_queue_sorts_by_support(world, carol, client):
    dave = make_supervisor("dave", world.project.neighbourhood, [world.project])
    quiet, loud, some = (world.submit(title=t) for t in ("没人附议", "两人附议", "一人附议"))
    for supporter in (carol, dave):
        services.support_issue(loud, actor=supporter)
    services.support_issue(some, actor=carol)
    client.force_login(world.handler)

    default = client.get("/panel/supervision/issue/")
    column = default.context["cl"].list_display.index("support_column")
    assert [i.pk for i in default.context["cl"].result_list] == [quiet.pk, loud.pk, some.pk]
    assert "附议" in default.content.decode()
    most = client.get(f"/panel/supervision/issue/?o={column}")
    least = client.get(f"/panel/supervision/issue/?o=-{column}")

    assert [i.pk for i in most.context["cl"].result_list] == [loud.pk, some.pk, quiet.pk]
    assert [i.pk for i in least.context["cl"].result_list] == [quiet.pk, some.pk, loud.pk]


def test_the_dashboard_counts_supported_issues(world, carol, client):
    issue = world.submit()
    world.submit()
    services.support_issue(issue, actor=carol)
    client.force_login(world.bureau)
    page = client.get("/dashboard/").content.decode()
    assert 'data-supported="1"' in page
    assert "个问题有其他监督员或居民附议" in page


# --- the duplicate hint while filing -----------------------------------------------------------


def test_the_hint_shows_open_issues_of_the_same_project_and_category(world, carol, client):
    match = world.submit(title="东侧围挡倒了")
    world.issue_in(S.CLOSED, title="已经办结的围挡")
    world.submit(title="工地扬尘大", category=Issue.Category.CIVILISED)
    old = world.submit(title="一个多月前的围挡")
    Issue.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    client.force_login(carol)

    html = hint(client, world.project).content.decode()

    assert "是不是这个问题？附议即可" in html
    assert "东侧围挡倒了" in html and match.reference in html
    for absent in ("已经办结的围挡", "工地扬尘大", "一个多月前的围挡"):
        assert absent not in html
    # The 附议即可 button posts a form (with CSRF) to the issue's support step.
    form = re.search(
        rf'<form id="similar-support-{match.pk}" method="post" '
        rf'action="/issues/{match.pk}/support/"[^>]*>(.*?)</form>',
        html,
        re.S,
    )
    assert form and 'name="csrfmiddlewaretoken"' in form.group(1)
    assert f'form="similar-support-{match.pk}"' in html
    assert f'src="/photos/{match.photos.get().pk}/thumb/"' in html


def test_choosing_a_hint_supports_instead_of_filing(world, carol, client):
    match = world.submit(title="东侧围挡倒了")
    client.force_login(carol)
    assert 'data-similar="/issues/similar/"' in client.get("/issues/new/").content.decode()
    html = hint(client, world.project).content.decode()
    action = re.search(r'<form id="similar-support-\d+" method="post" action="([^"]+)"', html)

    response = client.post(action.group(1), follow=True)

    assert response.redirect_chain[-1][0] == match.get_absolute_url()
    assert "已附议" in response.content.decode()
    assert Issue.objects.count() == 1
    match.refresh_from_db()
    assert match.support_count == 1
    assert "您已附议" in hint(client, world.project).content.decode()


def test_the_hint_puts_the_same_building_first_and_shows_five_at_most(world, carol, client):
    for n in range(6):
        world.submit(title=f"别的楼 {n}", building="7幢")
    same = world.submit(title="同一幢的", building="3")
    newest_elsewhere = world.submit(title="最新的别的楼", building="8")
    client.force_login(carol)

    html = hint(client, world.project, building="3 幢").content.decode()
    titles = re.findall(r'class="fw-semibold d-block text-truncate" href="[^"]+">([^<]+)<', html)

    assert titles[0] == same.title
    assert titles[1] == newest_elsewhere.title
    assert len(titles) == 5


def test_the_hint_marks_ones_own_issue_without_a_button(world, client):
    mine = world.submit(title="我自己反映的")
    client.force_login(world.alice)
    html = hint(client, world.project).content.decode()
    assert "我自己反映的" in html and "您反映的" in html
    assert f"similar-support-{mine.pk}" not in html


def test_the_hint_answers_only_a_supervisor_on_their_own_projects(world, client):
    world.submit(reporter=world.bob, project=world.other_project, title="玉海的围挡")
    client.force_login(world.alice)
    assert hint(client, world.other_project).content.decode().strip() == ""
    assert client.get("/issues/similar/", {"project": "x", "category": "?"}).status_code == 200
    for user in (world.handler, world.bureau, world.builder):
        client.force_login(user)
        assert hint(client, world.other_project).status_code == 404
    client.logout()
    assert hint(client, world.other_project).status_code == 302


def test_the_hint_costs_the_same_queries_whatever_the_data(world, carol, client):
    client.force_login(carol)

    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert hint(client, world.project, building="1").status_code == 200
        return len(queries)

    world.submit(building="1")
    small = cost()
    for n in range(12):
        issue = world.submit(title=f"问题 {n}", building=str(n % 3), photos=[image_file()] * 2)
        if n % 2:
            services.support_issue(issue, actor=carol)
    make_project(world.project.neighbourhood, year=2024)
    assert cost() == small
    assert small <= 6


# --- two at once -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_twenty_taps_at_once_count_each_supporter_once(on_postgres):
    """Four supervisors tap 附议 five times each, all at once: four supports, a count of four,
    four events; every other tap is told it was already counted."""
    world = make_world()
    issue = world.submit()
    supporters = [
        make_supervisor(f"s{n}", world.project.neighbourhood, [world.project]) for n in range(4)
    ]
    barrier = threading.Barrier(20)
    outcomes, errors = [], []

    def tap(user):
        try:
            barrier.wait()
            outcomes.append(services.support_issue(Issue.objects.get(pk=issue.pk), actor=user))
        except WorkflowError as refusal:
            outcomes.append(refusal)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=tap, args=(supporters[n % 4],)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors
    refusals = [o for o in outcomes if isinstance(o, WorkflowError)]
    assert len(refusals) == 16
    assert {(r.status_code, r.message) for r in refusals} == {(409, "您已经附议过这个问题。")}
    issue.refresh_from_db()
    assert issue.support_count == 4 == issue.supports.count()
    assert issue.events.filter(kind=Kind.SUPPORTED).count() == 4
