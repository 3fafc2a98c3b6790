"""The dashboard by region: a county's bureau counts its own county only, from the rollups, and
the same as counting its issues; the province's oversight sees every county and a league table
of them; a city's oversight the counties below it."""

from __future__ import annotations

from django.utils import timezone

from accounts.models import User
from supervision import stats
from supervision.models import Issue, Patrol, Region

from .factories import (
    make_user,
)

S = Issue.Status


def _ruian_issues(world, n=2):
    return [world.issue_in(S.ACCEPTED, title=f"兴业大厦外墙 {i}") for i in range(n)]


def test_the_second_countys_issues_go_to_its_own_office(world, xihu):
    assert {i.department_id for i in xihu["issues"]} == {xihu["office"].pk}


def test_a_countys_bureau_counts_only_its_county_and_the_same_as_its_issues(world, xihu):
    _ruian_issues(world)
    client_scope = stats.county_scope([xihu["county"].pk])
    period = stats.Period(None, None, "")
    now = timezone.now()
    figures = stats.figures_of(stats.bureau_cube(period, now, [xihu["county"].pk]))
    issues = Issue.objects.filter(pk__in=[i.pk for i in xihu["issues"]])
    counted = stats.figures_of(
        stats.live_cube(issues, Patrol.objects.filter(project__name="西湖新村改造"), now)
    )
    assert figures["headline"] == counted["headline"]
    assert figures["departments"] == counted["departments"]
    assert figures["headline"]["filed"] == 3
    assert stats.dashboard_figures(client_scope, "", "")["headline"]["filed"] == 3


def test_ruians_bureau_sees_ruian_only_on_its_dashboard(client, world, xihu):
    _ruian_issues(world)
    client.force_login(world.bureau)
    page = client.get("/dashboard/?preset=all")
    assert page.status_code == 200
    assert page.context["headline"]["filed"] == 2
    assert "西湖区住建局" not in page.content.decode()
    assert "城关街道办事处" not in {r["department__name"] for r in page.context["departments"]}
    assert page.context["counties"] == []


def test_the_second_countys_bureau_sees_its_own(client, world, xihu):
    _ruian_issues(world)
    client.force_login(xihu["bureau"])
    page = client.get("/dashboard/?preset=all")
    assert page.context["headline"]["filed"] == 3
    assert {r["department__name"] for r in page.context["departments"]} == {"城关街道办事处"}


def test_the_province_sees_every_county_and_their_league_table(client, world, xihu):
    _ruian_issues(world)
    shengting = make_user(
        "shengting", role=User.Role.OVERSIGHT, region=Region.objects.get(code="330000")
    )
    client.force_login(shengting)
    page = client.get("/dashboard/?preset=all")
    assert page.status_code == 200
    assert page.context["headline"]["filed"] == 5
    league = {row["county"]: row for row in page.context["counties"]}
    assert set(league) == {"瑞安市", "西湖区"}
    assert league["西湖区"]["filed"] == 3 and league["西湖区"]["city"] == "杭州市"
    assert league["瑞安市"]["filed"] == 2
    html = page.content.decode()
    assert "各县（市、区）排行" in html and "西湖区" in html


def test_a_city_sees_the_counties_below_it_only(client, world, xihu):
    _ruian_issues(world)
    wenzhou = make_user(
        "wenzhou", role=User.Role.OVERSIGHT, region=Region.objects.get(code="330300")
    )
    client.force_login(wenzhou)
    page = client.get("/dashboard/?preset=all")
    assert page.context["headline"]["filed"] == 2
    assert "西湖" not in page.content.decode()


def test_an_oversight_account_without_a_programme_below_it_sees_nothing(client, world, xihu):
    _ruian_issues(world)
    province = Region.objects.get(code="330000")
    lonely = Region.objects.create(code="330200", name="宁波市", level="city", parent=province)
    ningbo = make_user("ningbo", role=User.Role.OVERSIGHT, region=lonely)
    client.force_login(ningbo)
    page = client.get("/dashboard/?preset=all")
    assert page.status_code == 200
    assert page.context["headline"]["filed"] == 0
