"""The pages of the foundation: programme overview, projects, login, health, error pages."""

from unittest import mock

from django.db import DatabaseError
from django.urls import reverse

from supervision.models import Issue, Project, ScopeItem

from .factories import PASSWORD, make_neighbourhood, make_project, make_supervisor


def test_home_shows_the_programme(world, client):
    ScopeItem.objects.create(
        project=world.project, area="building", description="外立面", progress=50
    )
    world.issue_in(Issue.Status.CLOSED)
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "兴业大厦改造" in page and "安阳街道" in page
    assert "2023 年实施改造项目 2 个" in page
    assert response.context["figures"]["closed"] == 1
    assert response.context["figures"]["satisfied_share"] == 100


def test_home_without_projects_still_answers(db, client):
    response = client.get("/")
    assert response.status_code == 200
    assert "还没有改造项目" in response.content.decode()


def test_home_query_count_does_not_grow_with_projects(world, client, django_assert_max_num_queries):
    for n in range(15):
        make_project(make_neighbourhood(world.anyang, f"小区{n}"))
    with django_assert_max_num_queries(12):
        assert client.get("/").status_code == 200


def test_home_progress_is_the_mean_of_the_projects_progress(world, client):
    """The batch's figure is computed in SQL; it must agree with Project.progress() per project."""
    from decimal import Decimal

    other = make_project(make_neighbourhood(world.anyang, "小区甲"))
    ScopeItem.objects.create(
        project=world.project,
        area="building",
        description="外立面",
        progress=50,
        budget=Decimal("300"),
    )
    ScopeItem.objects.create(
        project=world.project, area="roads", description="道路", progress=100, budget=Decimal("100")
    )
    # Without budgets on every item, items count equally.
    ScopeItem.objects.create(project=other, area="building", description="屋面", progress=35)
    ScopeItem.objects.create(
        project=other, area="pipes", description="管网", progress=80, budget=Decimal("10")
    )
    projects = list(Project.objects.filter(year=world.project.year))
    expected = round(sum(p.progress() for p in projects) / len(projects))
    assert client.get("/").context["progress"] == expected


def test_home_lists_recent_projects_and_links_to_the_whole_batch(world, client):
    for n in range(20):
        make_project(make_neighbourhood(world.anyang, f"小区{n}"))
    response = client.get("/")
    batch = Project.objects.filter(year=world.project.year).count()
    assert len(response.context["recent"]) == 12
    assert f"2023 年实施改造项目 {batch} 个" in response.content.decode()
    assert f"查看 2023 年全部 {batch} 个项目" in response.content.decode()


def test_project_list_filters_by_subdistrict_status_and_search(world, client):
    response = client.get("/projects/", {"subdistrict": world.yuhai.pk})
    names = [p.name for p in response.context["page"]]
    assert names == ["玉海楼小区改造"]
    Project.objects.filter(pk=world.project.pk).update(status=Project.Status.ACCEPTED)
    assert [p.name for p in client.get("/projects/", {"status": "accepted"}).context["page"]] == [
        "兴业大厦改造"
    ]
    assert [p.name for p in client.get("/projects/", {"q": "兴业"}).context["page"]] == [
        "兴业大厦改造"
    ]


def test_project_list_ignores_nonsense_filters(world, client):
    response = client.get("/projects/", {"year": "abc", "status": "zzz", "page": "x"})
    assert response.status_code == 200
    assert response.context["page"].paginator.count == 2


def test_project_list_query_count_is_bounded(world, client, django_assert_max_num_queries):
    for n in range(20):
        make_project(make_neighbourhood(world.yuhai, f"小区{n}"))
    with django_assert_max_num_queries(12):
        assert client.get("/projects/").status_code == 200


def test_project_page_shows_scope_progress_and_eligibility(world, client):
    ScopeItem.objects.create(
        project=world.project, area="building", description="外立面整治", budget=300, progress=100
    )
    ScopeItem.objects.create(
        project=world.project, area="pipes", description="雨污分流", budget=100, progress=0
    )
    response = client.get(reverse("project-detail", args=[world.project.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert response.context["progress"] == 75  # weighted by budget
    assert "外立面整治" in page and "管网通信" in page
    assert "符合改造条件" in page


def test_project_page_shows_public_issues_without_reporter_names(world, client):
    public = world.issue_in(Issue.Status.CLOSED, title="公开的问题标题")
    Issue.objects.filter(pk=public.pk).update(is_public=True)
    world.submit(title="未公开的问题标题")
    page = client.get(reverse("project-detail", args=[world.project.pk])).content.decode()
    assert "公开的问题标题" in page
    assert "未公开的问题标题" not in page
    assert "alice" not in page


def test_project_page_query_count_is_bounded(world, client, django_assert_max_num_queries):
    for _ in range(5):
        issue = world.issue_in(Issue.Status.CLOSED)
        Issue.objects.filter(pk=issue.pk).update(is_public=True)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("project-detail", args=[world.project.pk])).status_code == 200


def test_unknown_project_is_a_chinese_404(db, client):
    response = client.get("/projects/999999/")
    assert response.status_code == 404
    assert "找不到这个页面" in response.content.decode()


def test_login_by_username(world, client):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").context["user"] == world.alice


def test_login_by_mobile_number(world, client):
    world.alice.mobile = "13957712345"
    world.alice.save()
    response = client.post("/accounts/login/", {"username": "13957712345", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").context["user"] == world.alice


def test_wrong_password_says_so_in_chinese_and_keeps_the_username(world, client):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "不匹配" in page
    assert 'value="alice"' in page


def test_inactive_account_cannot_log_in(world, client):
    world.alice.is_active = False
    world.alice.save()
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_logout_needs_post_and_ends_the_session(world, client):
    client.force_login(world.alice)
    assert client.get("/accounts/logout/").status_code == 405
    assert "_auth_user_id" in client.session
    response = client.post("/accounts/logout/", follow=True)
    assert "您已安全退出" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_password_change(world, client):
    client.force_login(world.alice)
    response = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-better-one-42",
            "new_password2": "a-much-better-one-42",
        },
    )
    assert response.status_code == 302
    world.alice.refresh_from_db()
    assert world.alice.check_password("a-much-better-one-42")


def test_password_change_needs_login(db, client):
    response = client.get("/accounts/password/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_page_is_chinese(db, client):
    page = client.get("/accounts/login/").content.decode()
    assert "用户名或手机号" in page
    assert 'lang="zh-hans"' in page


def test_english_is_available(db, client):
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en")
    assert 'lang="en"' in response.content.decode()


def test_healthz_answers_200_when_the_database_answers(db, client):
    response = client.get("/healthz")
    assert response.status_code == 200


def test_healthz_answers_503_when_the_database_does_not(db, client):
    with mock.patch(
        "django.db.backends.utils.CursorWrapper.execute", side_effect=DatabaseError("down")
    ):
        response = client.get("/healthz")
    assert response.status_code == 503


def test_server_error_page_is_chinese(client, settings):
    from django.template.loader import render_to_string

    page = render_to_string("500.html")  # no request, no context processors
    assert "系统出了点问题" in page
    assert 'href="/projects/"' in page and 'href="/accounts/login/"' in page  # the way on


def test_layout_links_lead_where_their_names_say(client, world):
    client.force_login(world.alice)
    page = client.get("/issues/").content.decode()
    for href in (
        "/",
        "/projects/",
        "/issues/",
        "/feed/",
        "/me/",
        "/notifications/",
        "/issues/new/",
    ):
        assert f'href="{href}"' in page, href
    assert 'aria-current="page"' in page.split('class="tabbar')[1].split("问题")[0]


def test_403_page_is_chinese():
    from django.template.loader import render_to_string

    assert "没有权限" in render_to_string("403.html")


def test_supervisor_home_pages_need_no_special_data(world, client):
    other = make_supervisor("carol", world.project.neighbourhood, [world.project])
    client.force_login(other)
    assert client.get("/").status_code == 200
    assert client.get("/projects/").status_code == 200


def test_pages_refuse_post(db, client):
    assert client.post("/").status_code == 405
    assert client.post("/projects/").status_code == 405
