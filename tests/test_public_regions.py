"""Public pages when more than one county-level city runs a programme: the province's list of
them, the city a visitor chose (remembered in a cookie), and each project's page naming its city
and its own hotline."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from supervision.models import Department


@pytest.fixture(autouse=True)
def _clear():
    cache.clear()


@pytest.fixture
def two(world, xihu):
    Department.objects.filter(pk=xihu["bureau"].department_id).update(phone="0571-87000000")
    Department.objects.filter(pk=world.bureau_dept.pk).update(phone="0577-65800000")
    return xihu


def test_one_programme_keeps_the_city_home(client, world):
    page = client.get("/")
    assert page.status_code == 200
    assert "全市一览" in page.content.decode()


def test_the_province_lists_its_programmes_until_one_is_chosen(client, world, two):
    page = client.get("/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "全省一览" in html
    assert 'data-region="330381"' in html and 'data-region="330106"' in html
    assert "杭州市" in html and "西湖区" in html and "瑞安市" in html


def test_choosing_a_city_remembers_it_and_shows_its_programme_only(client, world, two):
    chosen = client.get("/regions/330106/")
    assert chosen.status_code == 302 and chosen["Location"] == "/"
    assert chosen.cookies["region"].value == "330106"
    html = client.get("/").content.decode()
    assert "西湖区一览" in html
    assert "西湖新村" in html and "兴业大厦" not in html
    assert "0571-87000000" in html  # its own bureau's hotline
    assert "切换县（市、区）" in html
    client.get("/regions/330381/")
    html = client.get("/").content.decode()
    assert "瑞安市一览" in html and "兴业大厦" in html and "西湖新村" not in html
    assert "0577-65800000" in html


def test_an_unknown_or_non_county_code_is_not_found(client, world, two):
    assert client.get("/regions/999999/").status_code == 404
    assert client.get("/regions/330100/").status_code == 404  # a city, not a county
    client.cookies["region"] = "999999"
    assert "全省一览" in client.get("/").content.decode()


def test_a_project_page_from_its_qr_names_its_city_and_its_notice_its_hotline(client, world, two):
    project = two["issues"][0].project
    page = client.get(f"/projects/{project.pk}/").content.decode()
    assert 'href="/regions/330106/"' in page and "西湖区" in page
    notice = client.get(f"/projects/{project.pk}/notice/")
    assert notice.status_code == 200
    assert "0571-87000000" in notice.content.decode()


def test_the_province_page_counts_each_citys_projects_and_issues(client, world, two):
    page = client.get("/regions/")
    rows = {row["county"].code: row for _city, rows in page.context["cities"] for row in rows}
    assert rows["330106"]["issues"]["filed"] == 3
    assert rows["330381"]["projects"] == 2 and rows["330106"]["projects"] == 1


def test_the_project_list_filters_by_city_and_names_each_citys_subdistricts(client, world, two):
    page = client.get("/projects/?region=330106")
    html = page.content.decode()
    assert "西湖新村" in html and "兴业大厦" not in html
    assert "西湖区 · 城关街道" in html and "瑞安市 · 城关街道" not in html  # the choices
    everything = client.get("/projects/").content.decode()
    assert "瑞安市 · 城关街道" in everything and "西湖区 · 城关街道" in everything
    assert "杭州市 · 西湖区" in everything


def test_one_citys_project_list_has_no_city_choice(client, world):
    assert 'name="region"' not in client.get("/projects/").content.decode()
