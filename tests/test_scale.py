"""What keeps pages fast as the data grows: the same number of queries at two data sizes, and
the issue list paging by keyset (a deep page costs what the first one does).

Times are measured by ``make bench`` (benchmarks/bench.py), never asserted here.
"""

import re
from unittest import mock

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext

from supervision import keyset
from supervision.models import Issue, IssueEvent, Project

from .factories import make_neighbourhood, make_project

STATUSES = [
    Issue.Status.CLOSED,
    Issue.Status.SUBMITTED,
    Issue.Status.IN_PROGRESS,
    Issue.Status.ANSWERED,
    Issue.Status.REJECTED,
    Issue.Status.RECTIFIED,
]


def grow(world, issues: int, projects: int) -> None:
    for n in range(projects):
        make_project(make_neighbourhood(world.anyang, f"扩容小区{Project.objects.count()}-{n}"))
    for n in range(issues):
        world.issue_in(STATUSES[n % len(STATUSES)], title=f"问题{Issue.objects.count()}")


def page_urls(world) -> dict[str, tuple[object, str]]:
    closed = Issue.objects.filter(status=Issue.Status.CLOSED).order_by("-pk").first()
    oldest = IssueEvent.objects.order_by("created_at", "pk")[1]
    third = Issue.objects.order_by("created_at", "pk")[2]
    return {
        "home": (None, "/"),
        "projects": (None, "/projects/"),
        "project": (None, world.project.get_absolute_url()),
        "issue_list": (world.alice, "/issues/"),
        "issue_list_deep": (world.alice, f"/issues/?before={keyset.cursor_of(third)}"),
        "issue_list_filtered": (world.handler, "/issues/?status=closed&overdue=on"),
        "issue_detail": (world.alice, closed.get_absolute_url()),
        "feed": (world.alice, "/feed/"),
        "feed_oldest": (world.alice, f"/feed/?before={keyset.cursor_of(oldest)}"),
        "dashboard": (world.bureau, "/dashboard/"),
        "me": (world.alice, "/me/"),
    }


def query_counts(client, world) -> dict[str, int]:
    counts = {}
    for name, (user, url) in page_urls(world).items():
        if user is None:
            client.logout()
        else:
            client.force_login(user)
        for cache in caches.all():  # figures and cards computed, not read from the cache
            cache.clear()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, url
        counts[name] = len(queries)
    return counts


def test_key_pages_cost_the_same_queries_at_two_data_sizes(world, client):
    grow(world, issues=6, projects=2)
    small = query_counts(client, world)
    grow(world, issues=30, projects=25)
    large = query_counts(client, world)
    assert large == small
    # The budget of issue 8 (cached figures need fewer still).
    over = {name: n for name, n in large.items() if n > 12 and name != "dashboard"}
    assert not over, over


def listed(response) -> list[int]:
    return [issue.pk for issue in response.context["page"]]


def test_the_issue_list_pages_through_every_issue_once_and_back(world, client):
    grow(world, issues=45, projects=0)
    client.force_login(world.alice)
    expected = list(Issue.objects.order_by("-created_at", "-pk").values_list("pk", flat=True))
    pages, url = [], "/issues/"
    while url:
        response = client.get(url)
        pages.append(listed(response))
        older = response.context["page"].older
        url = f"/issues/?before={older}" if older else None
    assert [len(p) for p in pages] == [20, 20, 5]
    assert [pk for page in pages for pk in page] == expected
    # And back: 「较新」 from the last page shows the middle page again, then the first.
    last = client.get(f"/issues/?before={keyset.cursor_of(Issue.objects.get(pk=pages[1][-1]))}")
    assert listed(last) == pages[2]
    middle = client.get(f"/issues/?after={last.context['page'].newer}")
    assert listed(middle) == pages[1]
    first = client.get(f"/issues/?after={middle.context['page'].newer}")
    assert listed(first) == pages[0]
    assert first.context["page"].newer is None


def test_paging_links_keep_the_filters(world, client):
    grow(world, issues=48, projects=0)
    client.force_login(world.alice)
    response = client.get("/issues/", {"status": "closed"})
    page = response.content.decode()
    assert re.search(r'href="\?status=closed&(amp;)?before=\d+-\d+"', page) is None  # 8 closed only
    response = client.get("/issues/", {"category": "quality"})
    assert re.search(r'href="\?category=quality&(amp;)?before=\d+-\d+"', response.content.decode())
    older = response.context["page"].older
    second = client.get("/issues/", {"category": "quality", "before": older})
    assert all(Issue.objects.get(pk=pk).category == "quality" for pk in listed(second))


@pytest.mark.parametrize("cursor", ["", "abc", "1-2-3", "99999999999999999999-1", "-5", "１-２"])
def test_a_broken_cursor_shows_the_newest_page(world, client, cursor):
    grow(world, issues=3, projects=0)
    client.force_login(world.alice)
    newest = listed(client.get("/issues/"))
    assert listed(client.get("/issues/", {"before": cursor})) == newest
    assert listed(client.get("/issues/", {"after": cursor})) == newest


def test_the_count_stops_at_the_cap_and_says_so(world, client):
    grow(world, issues=12, projects=0)
    client.force_login(world.alice)
    assert "共 12 个问题" in client.get("/issues/").content.decode()
    with mock.patch.object(keyset, "COUNT_CAP", 10):
        page = client.get("/issues/").content.decode()
    assert "超过 10 个问题" in page
