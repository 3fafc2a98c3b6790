"""The public pages residents open from QR codes come from the cache for anonymous visitors,
and never say anything old: a change shows at once. Their forms work with each visitor's own
CSRF token, a browser that has the page gets a 304, and people logged in always get their own."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from supervision import services
from supervision.models import Project

from .factories import PASSWORD, image_file

pytestmark = pytest.mark.django_db


def pages(world) -> list[str]:
    project = world.project
    return [
        "/",
        "/projects/",
        project.get_absolute_url(),
        reverse("project-notice", args=[project.pk]),
    ]


def test_the_second_visit_is_served_from_the_cache(world, client, django_assert_max_num_queries):
    for url in pages(world):
        first = client.get(url)
        assert first.status_code == 200
        with django_assert_max_num_queries(1):  # the session's cookie check at most
            again = client.get(url)
        assert again.status_code == 200
        assert again.content.decode().count("兴业大厦") == first.content.decode().count("兴业大厦")


def test_a_change_shows_at_once(world, client):
    url = world.project.get_absolute_url()
    assert "兴业大厦" in client.get(url).content.decode()
    project = Project.objects.get(pk=world.project.pk)
    project.name = "兴业大厦改造（二期）"
    project.save()
    assert "兴业大厦改造（二期）" in client.get(url).content.decode()
    assert "兴业大厦改造（二期）" in client.get("/projects/").content.decode()


def test_an_issue_made_public_shows_on_the_project_page_at_once(world, client):
    url = world.project.get_absolute_url()
    issue = services.submit_issue(
        reporter=world.alice,
        project=world.project,
        category="quality",
        title="北面外墙空鼓",
        description="三楼外墙空鼓，敲起来是空的。",
        photos=[image_file()],
    )
    assert "北面外墙空鼓" not in client.get(url).content.decode()
    issue.is_public = True
    issue.save()
    assert "北面外墙空鼓" in client.get(url).content.decode()


def test_each_visitor_gets_their_own_csrf_token_and_the_forms_work(world):
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    first.get("/")
    page = second.get("/").content.decode()  # from the cache, built for the first visitor
    tokens = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page))
    assert tokens and "placeholder" not in page
    assert "csrftoken" in second.cookies
    switched = second.post(
        reverse("elder-mode"), {"csrfmiddlewaretoken": tokens.pop(), "next": "/"}
    )
    assert switched.status_code == 302
    assert second.cookies["elder"].value == "1"
    # 长辈模式 is its own page: the standard one is not served to her.
    body = re.search(r"<body[^>]*>", second.get("/").content.decode()).group(0)
    assert " elder" in body


def test_a_browser_that_has_the_page_gets_a_304(world, client):
    response = client.get("/")
    etag, modified = response["ETag"], response["Last-Modified"]
    assert client.get("/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert client.get("/", HTTP_IF_MODIFIED_SINCE=modified).status_code == 304
    project = Project.objects.get(pk=world.project.pk)
    project.name = "改了名字"
    project.save()
    changed = client.get("/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def test_people_logged_in_get_their_own_page_and_never_the_visitors(world, client):
    anonymous = Client()
    assert "登录" in anonymous.get("/").content.decode()
    client.login(username="alice", password=PASSWORD)
    mine = client.get("/")
    assert "ETag" not in mine
    assert "退出" in mine.content.decode()
    # And the visitor after her is not served her page.
    assert "退出" not in Client().get("/").content.decode()


def test_a_visitor_with_a_message_waiting_sees_it(world, client):
    client.login(username="alice", password=PASSWORD)
    Client().get("/")  # the cache holds the visitors' home page
    client.post(reverse("logout"))
    page = client.get("/").content.decode()
    assert "alert" in page  # 「您已退出」 or the like, shown once


def test_each_language_has_its_own_page(world):
    chinese = Client().get("/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    english = Client().get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "首页" in chinese and "Home" in english


def test_a_filing_changes_the_home_pages_figures_and_leaves_the_list_and_the_notice_cached(
    world, client, django_assert_max_num_queries
):
    """Supervisors file and departments answer all day: the project list and the site notice,
    which show no issue, stay in the cache; the home page counts the new issue at once."""
    for url in pages(world):
        client.get(url)
    home = client.get("/")["ETag"]
    issue = services.submit_issue(
        reporter=world.alice,
        project=world.project,
        category="quality",
        title="北面外墙空鼓",
        description="三楼外墙空鼓，敲起来是空的。",
        photos=[image_file()],
    )
    for url in pages(world)[1:]:
        if url != world.project.get_absolute_url():
            with django_assert_max_num_queries(1):  # the session's cookie check at most
                assert client.get(url).status_code == 200
    assert client.get("/")["ETag"] != home

    # A comment on an issue that is not public changes no public page at all.
    for url in pages(world):
        client.get(url)
    services.comment_on_issue(issue, actor=world.handler, text="我们明天上午到现场看。")
    for url in pages(world):
        with django_assert_max_num_queries(1):
            assert client.get(url).status_code == 200


def test_any_change_to_a_public_issue_renews_its_project_page(world, client):
    issue = services.submit_issue(
        reporter=world.alice,
        project=world.project,
        category="quality",
        title="北面外墙空鼓",
        description="三楼外墙空鼓，敲起来是空的。",
        photos=[image_file()],
    )
    issue.is_public = True
    issue.save()
    url = world.project.get_absolute_url()
    before = client.get(url)["ETag"]
    services.comment_on_issue(issue, actor=world.handler, text="我们明天上午到现场看。")
    assert client.get(url)["ETag"] != before
