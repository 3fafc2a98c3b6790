"""What the public sees: a project's milestones, progress, before/after photos and QR code, the
site notice, the programme's headline figures, and pages whose query count does not grow with
the number of projects."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import segno
from django.core.cache import cache, caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from supervision import services
from supervision.models import Issue, Photo, Project, ScopeItem

from .factories import image_file, make_neighbourhood, make_project

S = Issue.Status
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _fresh_figures():
    """Figures are cached across requests: no test may see another's."""
    cache.clear()
    yield
    cache.clear()


def detail_url(project) -> str:
    return f"/projects/{project.pk}/"


def notice_url(project) -> str:
    return f"/projects/{project.pk}/notice/"


def qr(url: str, scale: int) -> str:
    """The QR code as supervision.views.qr_svg draws it."""
    return segno.make(url, error="m").svg_inline(scale=scale, title=url, border=2, omitsize=True)


def public(issue: Issue) -> Issue:
    Issue.objects.filter(pk=issue.pk).update(is_public=True)
    issue.refresh_from_db()
    return issue


def closed_with_photos(world, capture, **fields) -> Issue:
    """Closed through the services with a before and an after photo (files written on commit)."""
    with capture(execute=True):
        return world.issue_in(S.CLOSED, photos=[image_file()], **fields)


# --- milestones and progress -------------------------------------------------------------------


def test_project_page_shows_each_milestone_planned_and_actual(world, client):
    Project.objects.filter(pk=world.project.pk).update(
        consultation_planned=date(2023, 3, 1),
        consultation_actual=date(2023, 3, 5),
        design_planned=date(2023, 4, 10),
        design_actual=date(2023, 4, 8),
        planned_start=date(2023, 5, 15),
        actual_start=date(2023, 5, 20),
        planned_end=date(2023, 11, 30),
        actual_end=date(2023, 11, 28),
        acceptance_planned=date(2023, 12, 20),
    )
    page = client.get(detail_url(world.project)).content.decode()
    expected = [
        ("征询", "2023-03-01", "2023-03-05"),
        ("设计", "2023-04-10", "2023-04-08"),
        ("开工", "2023-05-15", "2023-05-20"),
        ("完工", "2023-11-30", "2023-11-28"),
        ("验收", "2023-12-20", "—"),
    ]
    positions = []
    for label, planned, actual in expected:
        match = re.search(
            rf"<strong>{label}</strong>\s*<span>计划 {planned}</span>\s*<span>实际 {actual}</span>",
            page,
        )
        assert match, label
        positions.append(match.start())
    assert positions == sorted(positions)
    assert "已过计划日期" in page  # 验收 was planned for 2023 and has not happened
    assert page.count("晚于计划") == 2  # 征询 and 开工 came late


def test_milestones_without_dates_show_dashes(world, client):
    page = client.get(detail_url(world.project)).content.decode()
    for label in ("征询", "设计", "开工", "完工", "验收"):
        assert re.search(
            rf"<strong>{label}</strong>\s*<span>计划 —</span>\s*<span>实际 —</span>", page
        )


def test_project_progress_is_weighted_by_budget_per_area_and_overall(world, client):
    for description, area, budget, progress in [
        ("外立面整治", "building", 300, 100),
        ("屋面防水", "building", 100, 0),
        ("雨污分流", "pipes", 200, 40),
    ]:
        ScopeItem.objects.create(
            project=world.project,
            area=area,
            description=description,
            budget=budget,
            progress=progress,
        )
    response = client.get(detail_url(world.project))
    page = response.content.decode()
    assert response.context["progress"] == 63  # (300·100 + 100·0 + 200·40) / 600
    assert "<strong>63%</strong>" in page
    areas = {area["label"]: area["progress"] for area in response.context["areas"]}
    assert areas == {"建筑": 75, "管网通信": 40}
    assert '建筑 <span class="text-body-secondary">· 75%</span>' in page
    assert '管网通信 <span class="text-body-secondary">· 40%</span>' in page


def test_project_progress_counts_items_equally_when_a_budget_is_missing(world, client):
    for description, area, budget, progress in [
        ("外立面整治", "building", 300, 100),
        ("屋面防水", "building", 100, 0),
        ("雨污分流", "pipes", None, 40),
    ]:
        ScopeItem.objects.create(
            project=world.project,
            area=area,
            description=description,
            budget=budget,
            progress=progress,
        )
    response = client.get(detail_url(world.project))
    page = response.content.decode()
    assert response.context["progress"] == 47  # (100 + 0 + 40) / 3
    assert "<strong>47%</strong>" in page
    assert '建筑 <span class="text-body-secondary">· 75%</span>' in page  # budgets within 建筑
    assert '管网通信 <span class="text-body-secondary">· 40%</span>' in page


def test_project_without_scope_items_is_at_zero(world, client):
    response = client.get(detail_url(world.project))
    assert response.context["progress"] == 0
    assert "改造内容尚在征询、设计中。" in response.content.decode()


# --- issues and photos on the public page ------------------------------------------------------


def test_public_closed_issue_shows_its_before_and_after_thumbnails(
    world, client, django_capture_on_commit_callbacks
):
    issue = public(
        closed_with_photos(world, django_capture_on_commit_callbacks, title="楼道扶手松动")
    )
    before = issue.photos.get(kind=Photo.Kind.BEFORE)
    after = issue.photos.get(kind=Photo.Kind.AFTER)
    response = client.get(detail_url(world.project))
    page = response.content.decode()
    assert [(p["before"], p["after"]) for p in response.context["pairs"]] == [(before, after)]
    pairs = page[page.index("整改前后") : page.index("居民意见")]
    assert f'src="/photos/{before.pk}/thumb/"' in pairs
    assert f'src="/photos/{after.pk}/thumb/"' in pairs
    assert f"{issue.reference} 楼道扶手松动" in pairs
    for photo in (before, after):
        thumb = client.get(f"/photos/{photo.pk}/thumb/")
        assert thumb.status_code == 200
        assert thumb["Content-Type"] == "image/jpeg"
        assert b"".join(thumb.streaming_content)[:2] == b"\xff\xd8"


def test_private_issues_stay_off_the_public_page(world, client, django_capture_on_commit_callbacks):
    private = closed_with_photos(world, django_capture_on_commit_callbacks, title="未公开的整改")
    waiting = world.submit(title="未公开的新问题")
    response = client.get(detail_url(world.project))
    page = response.content.decode()
    assert response.context["pairs"] == []
    assert "整改前后" not in page
    for issue in (private, waiting):
        assert issue.title not in page
        assert issue.reference not in page
    for photo in private.photos.all():
        assert f"/photos/{photo.pk}/" not in page
        assert client.get(photo.thumbnail_url).status_code == 404
    assert "暂无公开的问题。" in page


def test_public_issue_that_is_not_closed_has_no_before_after_pair(
    world, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        issue = public(world.issue_in(S.RECTIFIED, photos=[image_file()], title="正在整改的问题"))
    response = client.get(detail_url(world.project))
    assert response.context["pairs"] == []
    page = response.content.decode()
    assert f"{issue.reference} 正在整改的问题" in page  # listed, without a pair
    assert "整改前后" not in page


def test_reporter_names_never_appear_on_the_public_page(
    world, client, django_capture_on_commit_callbacks
):
    world.alice.display_name = "张阿丽"
    world.alice.mobile = "13957712345"
    world.alice.save()
    public(closed_with_photos(world, django_capture_on_commit_callbacks))
    public(world.submit(title="另一个公开问题"))
    page = client.get(detail_url(world.project)).content.decode()
    assert "另一个公开问题" in page
    for trace in ("张阿丽", "alice", "13957712345"):
        assert trace not in page
    notice = client.get(notice_url(world.project)).content.decode()
    assert "张阿丽" not in notice and "alice" not in notice


def test_opinions_are_summed_on_the_project_page(world, client):
    for households in (12, 30):
        world.submit(category=Issue.Category.OPINION, building="5 幢", households=households)
    world.issue_in(S.ANSWERED, category=Issue.Category.OPINION, building="6 幢", households=8)
    page = client.get(detail_url(world.project)).content.decode()
    assert "监督员收集居民意见 3 条，涉及 50 户，已答复或办结 1 条。" in page


@pytest.mark.parametrize("url", ["/projects/999999/", "/projects/999999/notice/"])
def test_unknown_projects_are_404(db, client, url):
    assert client.get(url).status_code == 404


# --- QR codes and the site notice --------------------------------------------------------------


def test_project_page_qr_encodes_its_own_address(world, client):
    url = f"http://testserver/projects/{world.project.pk}/"
    page = client.get(detail_url(world.project)).content.decode()
    assert qr(url, scale=3) in page
    assert qr(f"http://testserver/projects/{world.other_project.pk}/", scale=3) not in page


def test_notice_qr_encodes_the_project_page_address(world, client):
    url = f"http://testserver/projects/{world.project.pk}/"
    page = client.get(notice_url(world.project)).content.decode()
    assert qr(url, scale=8) in page
    assert qr(f"http://testserver{notice_url(world.project)}", scale=8) not in page


def test_qr_follows_the_scheme_the_page_was_served_with(world, client):
    page = client.get(detail_url(world.project), secure=True).content.decode()
    assert qr(f"https://testserver/projects/{world.project.pk}/", scale=3) in page


def test_notice_invites_residents_and_gives_the_hotline(world, client, settings):
    settings.SUPERVISION = {**settings.SUPERVISION, "HOTLINE": "0577-66889900"}
    Project.objects.filter(pk=world.project.pk).update(
        planned_start=date(2023, 5, 15), planned_end=date(2023, 11, 30)
    )
    response = client.get(notice_url(world.project))
    assert response.status_code == 200
    page = response.content.decode()
    assert "扫码查看进度、反映问题" in page
    assert "0577-66889900" in page
    assert "兴业大厦改造" in page and "宏程建设" in page
    assert "2023年5月15日 — 2023年11月30日" in page


def test_notice_shows_the_default_hotline(world, client, settings):
    page = client.get(notice_url(world.project)).content.decode()
    assert settings.SUPERVISION["HOTLINE"] in page


# --- the home page's figures -------------------------------------------------------------------


def test_home_shows_headline_figures_computed_from_the_data(world, client):
    start = timezone.now() - 20 * DAY
    for days_taken, rating in [
        (1, Issue.Rating.SATISFIED),
        (2.5, Issue.Rating.SATISFIED),
        (4, Issue.Rating.BASICALLY_SATISFIED),
    ]:
        issue = world.submit()
        issue.created_at = start
        issue.status = S.CLOSED
        issue.accepted_at = start + timedelta(hours=1)
        issue.rectified_at = start + days_taken * DAY
        issue.closed_at = start + 5 * DAY
        issue.rating = rating
        issue.save()  # saved, not updated: the figures' rollups follow saves
    world.submit()  # still open
    response = client.get("/")
    figures = response.context["figures"]
    assert (figures["filed"], figures["closed"], figures["open"]) == (4, 3, 1)
    assert figures["satisfied_share"] == 67
    assert figures["median_days_to_fix"] == 2.5
    page = re.sub(r"\s+", " ", response.content.decode())
    assert '反映问题</div> <div class="figure">4</div>' in page
    assert "已办结 3 · 办理中 1" in page
    assert '群众满意率</div> <div class="figure">67%</div>' in page
    assert "3 件已评价" in page
    assert '<div class="figure">2.5 天</div>' in page
    assert "一半的问题在 2.5 天内整改完" in page and "中位数" not in page  # plain words


def test_home_without_issues_shows_dashes(world, client):
    page = re.sub(r"\s+", " ", client.get("/").content.decode())
    assert '反映问题</div> <div class="figure">0</div>' in page
    assert '群众满意率</div> <div class="figure">—</div>' in page
    assert '整改快慢</div> <div class="figure">—</div>' in page
    assert "还没有整改完的问题" in page


def test_home_figures_follow_new_issues(world, client, django_capture_on_commit_callbacks):
    assert client.get("/").context["figures"]["filed"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        world.submit()
    assert client.get("/").context["figures"]["filed"] == 1


# --- query counts ------------------------------------------------------------------------------


def grow(world, capture, total: int) -> None:
    """Projects up to ``total``, each with two scope items and an issue; the first project gets
    one public issue per project, every fifth of them closed with before/after photos."""
    have = Project.objects.count()
    for n in range(have, total):
        subdistrict = world.anyang if n % 2 else world.yuhai
        contractor = world.contractor if n % 2 else world.other_contractor
        project = make_project(make_neighbourhood(subdistrict, f"小区{n}"), contractor=contractor)
        ScopeItem.objects.create(project=project, area="building", description="外立面", budget=10)
        ScopeItem.objects.create(project=project, area="roads", description="道路", progress=50)
        world.alice.supervisor.projects.add(project)
        world.submit(project=project)
        if n % 5 == 0:
            public(closed_with_photos(world, capture))
        else:
            public(world.submit(photos=[image_file()]))


def count_queries(client, url: str) -> int:
    for kept in caches.all():  # the figures, and the public pages' HTML (built, not served)
        kept.clear()
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_page_queries_do_not_grow_with_projects(world, client, django_capture_on_commit_callbacks):
    """/, /projects/ and /projects/<id>/ for anyone, /dashboard/ for the bureau: the same number
    of queries with 5 projects as with 50 (cache cleared before each measurement)."""
    bureau = Client()
    bureau.force_login(world.bureau)
    pages = {
        "/": client,
        "/projects/": client,
        detail_url(world.project): client,
        "/dashboard/": bureau,
    }
    grow(world, django_capture_on_commit_callbacks, 5)
    for url, visitor in pages.items():
        visitor.get(url)  # the first request of a staff session records its start
    few = {url: count_queries(visitor, url) for url, visitor in pages.items()}
    grow(world, django_capture_on_commit_callbacks, 50)
    many = {url: count_queries(visitor, url) for url, visitor in pages.items()}
    assert many == few
    public_pages = ["/", "/projects/", detail_url(world.project)]
    assert all(many[url] <= 12 for url in public_pages), many


def test_private_opinions_and_their_answers_stay_off_the_public_page(world, client):
    opinion = world.submit(
        category=Issue.Category.OPINION, building="5 幢", households=12, title="未公开的居民意见"
    )
    services.answer_issue(opinion, actor=world.handler, text="未公开的答复内容")
    page = client.get(detail_url(world.project)).content.decode()
    assert "监督员收集居民意见 1 条，涉及 12 户，已答复或办结 1 条。" in page
    assert "未公开的居民意见" not in page
    assert "未公开的答复内容" not in page


# --- publishing is on record -------------------------------------------------------------------


def test_publishing_writes_an_event_with_who_and_when(world, client):
    issue = world.issue_in(S.CLOSED)
    before = timezone.now()

    services.publish_issue(issue, actor=world.bureau, text="典型问题，向社会公开")

    issue.refresh_from_db()
    assert issue.is_public is True
    event = issue.events.order_by("-created_at", "-pk").first()
    assert event.kind == "published"
    assert event.actor == world.bureau
    assert before <= event.created_at <= timezone.now()
    assert event.from_status == event.to_status == S.CLOSED  # no change of state
    # In the issue's thread, for whom follows the issue …
    client.force_login(world.alice)
    page = client.get(f"/issues/{issue.pk}/").content.decode()
    assert f'id="event-{event.pk}"' in page
    assert "典型问题，向社会公开" in page
    # … and in the audit trail the superuser reads in /admin/.
    admin = type(world.bureau).objects.create_superuser("root", "root@example.cn", "x")
    client.force_login(admin)
    trail = client.get(f"/admin/supervision/issue/{issue.pk}/change/")
    assert trail.status_code == 200
    assert "典型问题，向社会公开" in trail.content.decode()


def test_unpublishing_is_on_record_too_and_refused_twice(world):
    issue = world.issue_in(S.CLOSED)
    services.publish_issue(issue, actor=world.bureau)
    services.publish_issue(issue, actor=world.bureau, public=False)
    with pytest.raises(services.WorkflowError) as again:
        services.publish_issue(issue, actor=world.bureau, public=False)

    assert again.value.status_code == 409
    kinds = list(issue.events.values_list("kind", flat=True))
    assert kinds[-2:] == ["published", "unpublished"]
    issue.refresh_from_db()
    assert issue.is_public is False


@pytest.mark.parametrize("role", ["alice", "handler", "builder", "other_staff"])
def test_only_the_bureau_may_publish(world, role):
    issue = world.issue_in(S.CLOSED)
    events = issue.events.count()
    with pytest.raises(services.WorkflowError) as refused:
        services.publish_issue(issue, actor=getattr(world, role))

    assert refused.value.status_code == 403
    issue.refresh_from_db()
    assert issue.is_public is False and issue.events.count() == events


def test_the_panels_publish_action_records_one_event_per_issue(world, client):
    issues = [world.issue_in(S.CLOSED), world.issue_in(S.CLOSED)]
    client.force_login(world.bureau)

    client.post(
        "/panel/supervision/issue/?queue=all",  # finished issues show under 全部
        {"action": "make_public", "_selected_action": [i.pk for i in issues], "index": "0"},
    )

    for issue in issues:
        assert issue.events.filter(kind="published", actor=world.bureau).count() == 1
