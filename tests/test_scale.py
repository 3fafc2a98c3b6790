"""What keeps pages fast as the data grows: the same number of queries at two data sizes, and
the issue list paging by keyset (a deep page costs what the first one does).

Times are measured by ``make bench`` (benchmarks/bench.py), never asserted here.
"""

import io
import re
from unittest import mock

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from supervision import fragments, keyset
from supervision.management.commands import generate_scale
from supervision.models import (
    Department,
    Issue,
    IssueEvent,
    Project,
    Region,
    Subdistrict,
    Supervisor,
)

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
        # The list of counties that programmes are checked against is read once a minute per
        # process, not per page (fragments.counties): as a page finds it.
        fragments.counties()
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


# --- the generated scale data (``manage.py generate_scale``) -----------------------------------


def test_the_province_profile_is_zhejiang_with_its_cities_and_counties():
    places = generate_scale.PROFILES["province"].places
    by_level = {level: [p for p in places if p.level == level] for level in Region.Level}
    assert [(p.code, p.name) for p in by_level[Region.Level.PROVINCE]] == [("330000", "浙江省")]
    assert len(by_level[Region.Level.CITY]) == 11
    assert len(by_level[Region.Level.COUNTY]) == 90
    codes = [p.code for p in places]
    assert len(set(codes)) == len(codes)
    parent = {p.code: p for p in places}
    for place in places:
        # What Region.clean() asks: six digits under the parent's prefix.
        Region(
            code=place.code,
            name=place.name,
            level=place.level,
            parent=Region(code=place.parent, level=parent[place.parent].level)
            if place.parent
            else None,
        ).clean()
    assert ("330381", "瑞安市") in [(p.code, p.name) for p in by_level[Region.Level.COUNTY]]
    country = generate_scale.PROFILES["country"]
    assert country.neighbourhoods == 10 * generate_scale.PROFILES["province"].neighbourhoods
    assert country.issues == 2_000_000
    assert len({p.code for p in country.places}) == len(country.places)


def test_the_spread_gives_every_county_its_share():
    assert generate_scale.spread(10, [1, 1, 2]) == [3, 3, 4]
    assert sum(generate_scale.spread(2_000, [0.4] * 89 + [1.6])) == 2_000
    assert generate_scale.spread(100, [0.01, 10, 10])[0] == 1


@pytest.fixture
def tiny_province(monkeypatch):
    """The province's shape at a few hundred issues: three counties of two cities."""
    profile = generate_scale.Profile(
        generate_scale.zhejiang(["330381", "330324", "330122"]),
        subdistricts_per_county=3,
        contractors_per_county=2,
        neighbourhoods=12,
        issues=300,
    )
    monkeypatch.setitem(generate_scale.PROFILES, "province", profile)
    monkeypatch.setattr(generate_scale, "BATCH", 70)  # several batches
    return profile


def test_generated_issues_stay_in_their_county(db, tiny_province):
    call_command("generate_scale", "--profile", "province", stdout=io.StringIO())
    assert Issue.objects.count() == 300
    assert IssueEvent.objects.count() == 300 * 5
    county = F("project__neighbourhood__subdistrict__region")
    assert not Issue.objects.exclude(department__region=county).exists()
    assert not Issue.objects.filter(contractor__isnull=False).exclude(contractor__region=county)
    assert not Project.objects.exclude(
        contractor__region=F("neighbourhood__subdistrict__region")
    ).exists()
    assert not Supervisor.objects.exclude(user__region=F("neighbourhood__subdistrict__region"))
    # Every county has its 住建局 and its coordinator; every county has issues.
    counties = Region.objects.filter(level=Region.Level.COUNTY)
    assert counties.count() == 3
    for region in counties:
        assert Department.objects.get(region=region, kind=Department.Kind.BUREAU)
        assert User.objects.get(role=User.Role.BUREAU, region=region)
        assert Issue.objects.filter(project__neighbourhood__subdistrict__region=region).exists()
    # 永嘉县 and 桐庐县 each have their own 城关街道.
    assert Subdistrict.objects.filter(name="城关街道").values("region").distinct().count() == 2
    oversight = dict(
        User.objects.filter(role=User.Role.OVERSIGHT).values_list("username", "region__code")
    )
    assert oversight == {"shengting": "330000", "wenzhou": "330300"}
    # Events follow their issue; the references count on.
    assert not IssueEvent.objects.exclude(issue__reporter=F("actor")).exclude(
        actor__department=F("issue__department")
    )
    assert Issue.objects.order_by("-sequence").first().reference.endswith("-000300")
