"""发起意愿征询 in /panel/: the bureau or a subdistrict office opens a consultation through a guided
form (project, dates, 改不改 · 改什么 · 怎么改 · 如何管, the rule in words), never the raw admin
form; only on the projects they may consult on; mistakes are said in Chinese beside the field and
nothing typed is lost. And the consultation list counts each household once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from supervision.models import Consultation, ConsultationItem, Household

from .factories import World

ADD = "/panel/supervision/consultation/add/"
LIST = "/panel/supervision/consultation/"
Kind = ConsultationItem.Kind


def today():
    return timezone.localdate()


def filled(project, **changes) -> dict:
    """What a person types: 改不改, two areas with options and a budget, 如何管, the dates."""
    data = {
        "project": str(project.pk),
        "title": "",
        "opens_on": today().isoformat(),
        "closes_on": (today() + timedelta(days=14)).isoformat(),
        "participation": "2/3",
        "approval": "3/4",
        "ask_renovate": "on",
        "renovate_text": "是否同意对本小区进行改造？",
        "building_text": "外立面整治",
        "building_options": "真石漆\n普通涂料\n",
        "building_budget": "120.5",
        "landscape_text": "补种绿化",
        "ask_management": "on",
        "management_text": "改造后由谁来管理小区？",
        "management_ways": ["物业服务企业管理", "居民自治管理"],
        "management_other": "社区托管",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def page(response) -> str:
    return response.content.decode()


# --- the form ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["bureau", "handler"])
def test_the_add_page_is_the_guided_form_in_words(world: World, client, who):
    client.force_login(getattr(world, who))
    response = client.get(ADD)
    assert response.status_code == 200
    assert "panel/consultation_start.html" in [t.name for t in response.templates]
    html = page(response)
    for words in [
        "改不改",
        "改什么、怎么改",
        "如何管",
        "参与户数达到",
        "参与户数的",
        "以上，该事项通过",
    ]:
        assert words in html
    for jargon in ["分子", "分母", "participation_numerator", "---------"]:
        assert jargon not in html
    # Defaults: today to two weeks on, 2/3 take part, 3/4 of them agree.
    form = response.context["form"]
    assert form["opens_on"].value() == today()
    assert form["participation"].value() == "2/3" and form["approval"].value() == "3/4"
    assert f'value="{today().isoformat()}"' in html


def test_the_bureau_opens_a_consultation_with_its_items(world: World, client):
    client.force_login(world.bureau)
    response = client.post(ADD, filled(world.other_project))

    consultation = Consultation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}{consultation.pk}/import/"
    assert consultation.project == world.other_project
    assert consultation.title == "玉海楼小区改造 改造意愿征询"
    assert consultation.created_by == world.bureau
    assert (consultation.participation_numerator, consultation.participation_denominator) == (2, 3)
    assert (consultation.approval_numerator, consultation.approval_denominator) == (3, 4)
    items = list(consultation.items.order_by("position"))
    assert [(i.kind, i.area, i.text) for i in items] == [
        (Kind.RENOVATE, "", "是否同意对本小区进行改造？"),
        (Kind.SCOPE, "building", "外立面整治"),
        (Kind.SCOPE, "landscape", "补种绿化"),
        (Kind.MANAGEMENT, "", "改造后由谁来管理小区？"),
    ]
    assert items[1].option_list() == ["真石漆", "普通涂料"]
    assert items[1].budget == Decimal("120.50")
    assert items[2].option_list() == [] and items[2].budget is None
    assert items[3].option_list() == ["物业服务企业管理", "居民自治管理", "社区托管"]
    followed = client.get(response["Location"])
    assert "已发起「玉海楼小区改造 改造意愿征询」，共 4 个事项" in page(followed)


def test_an_office_opens_one_on_its_own_project_with_its_own_title_and_rule(world: World, client):
    client.force_login(world.handler)
    response = client.post(
        ADD,
        filled(
            world.project,
            title="兴业大厦征求意见",
            participation="1/2",
            approval="2/3",
            ask_management=None,
            landscape_text="",
        ),
    )
    assert response.status_code == 302
    consultation = Consultation.objects.get()
    assert (consultation.project, consultation.title) == (world.project, "兴业大厦征求意见")
    assert (consultation.participation_numerator, consultation.participation_denominator) == (1, 2)
    assert (consultation.approval_numerator, consultation.approval_denominator) == (2, 3)
    assert consultation.created_by == world.handler
    assert list(consultation.items.values_list("kind", flat=True)) == [Kind.RENOVATE, Kind.SCOPE]


def test_an_office_is_offered_only_its_projects_and_another_offices_is_refused(
    world: World, client
):
    client.force_login(world.handler)
    offered = list(client.get(ADD).context["form"].fields["project"].queryset)
    assert offered == [world.project]

    response = client.post(ADD, filled(world.other_project))
    assert response.status_code == 200
    assert not Consultation.objects.exists()
    assert "请从列表里选择一项。" in page(response)


@pytest.mark.parametrize("who", ["builder", "alice"])
def test_a_contractor_or_a_supervisor_cannot_open_one(world: World, client, who):
    client.force_login(getattr(world, who))
    response = client.post(ADD, filled(world.project))
    assert response.status_code in (302, 403)
    if response.status_code == 302:  # a supervisor: off to 我的 by way of the login
        assert "/login/" in response["Location"]
    assert not Consultation.objects.exists()


# --- mistakes ------------------------------------------------------------------------------------


def test_mistakes_are_said_beside_the_field_and_nothing_typed_is_lost(world: World, client):
    client.force_login(world.bureau)
    data = filled(
        world.project,
        title="兴业大厦意愿征询",
        opens_on=(today() + timedelta(days=5)).isoformat(),
        closes_on=(today() + timedelta(days=2)).isoformat(),
        building_budget="一百万",
        roads_options="沥青路面",  # options with no sentence
        management_text="",
    )
    response = client.post(ADD, data)

    assert response.status_code == 200
    assert not Consultation.objects.exists()
    form = response.context["form"]
    assert form.errors["closes_on"] == ["截止日期不能早于开始日期。"]
    assert form.errors["building_budget"] == ["请填写数字，如 120.5。"]
    assert form.errors["roads_text"] == ["请写明这一方面拟改造的内容。"]
    assert form.errors["management_text"] == ["请写明要居民选择的问题。"]
    html = page(response)
    assert "请改正下面标红的地方，已填的内容都还在。" in html
    # The error sits in the same table row as its area's fields.
    row = html.split('id="area-roads"')[1].split("</tr>")[0]
    assert "请写明这一方面拟改造的内容。" in row
    # Everything typed comes back.
    for typed in [
        "兴业大厦意愿征询",
        "外立面整治",
        "真石漆\n普通涂料",
        "一百万",
        "补种绿化",
        "社区托管",
    ]:
        assert typed in html, typed
    assert 'value="居民自治管理" id="id_management_ways_2" checked' in html or (
        form["management_ways"].value() == ["物业服务企业管理", "居民自治管理"]
    )


def test_a_consultation_with_no_question_is_refused(world: World, client):
    client.force_login(world.bureau)
    data = filled(
        world.project,
        ask_renovate=None,
        ask_management=None,
        building_text="",
        building_options="",
        building_budget="",
        landscape_text="",
    )
    response = client.post(ADD, data)
    assert response.status_code == 200
    assert not Consultation.objects.exists()
    assert "请至少征询一项" in page(response)


def test_a_closing_date_already_past_is_refused(world: World, client):
    client.force_login(world.bureau)
    past = (today() - timedelta(days=1)).isoformat()
    response = client.post(
        ADD,
        filled(world.project, opens_on=(today() - timedelta(days=9)).isoformat(), closes_on=past),
    )
    assert response.context["form"].errors["closes_on"] == [
        "截止日期已经过去了，请选今天或以后的日期。"
    ]


def test_a_share_that_is_not_offered_is_refused(world: World, client):
    client.force_login(world.bureau)
    response = client.post(ADD, filled(world.project, participation="0/1"))
    assert "participation" in response.context["form"].errors
    assert not Consultation.objects.exists()


# --- the change page -----------------------------------------------------------------------------


def test_the_change_page_shows_the_rule_as_choices_not_fractions(world: World, client):
    consultation = Consultation.objects.create(
        project=world.project,
        title="兴业大厦改造意愿征询",
        opens_on=today(),
        closes_on=today() + timedelta(days=7),
        participation_numerator=3,
        participation_denominator=5,
    )
    client.force_login(world.handler)
    url = f"{LIST}{consultation.pk}/change/"
    html = page(client.get(url))
    assert "分子" not in html and "分母" not in html
    assert "参与户数达到 3/5 以上，且同意户数达到参与户数的 2/3 以上" in html
    response = client.post(
        url,
        {
            "project": world.project.pk,
            "title": "兴业大厦改造意愿征询",
            "opens_on": today().isoformat(),
            "closes_on": (today() + timedelta(days=7)).isoformat(),
            "participation": "2/3",
            "approval": "3/4",
            "items-TOTAL_FORMS": "0",
            "items-INITIAL_FORMS": "0",
            "items-MIN_NUM_FORMS": "0",
            "items-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    consultation.refresh_from_db()
    assert (consultation.participation_numerator, consultation.participation_denominator) == (2, 3)
    assert (consultation.approval_numerator, consultation.approval_denominator) == (3, 4)


# --- the household count -------------------------------------------------------------------------


def test_an_office_sees_the_same_household_count_as_the_bureau(world: World, client):
    """A project worked on by several departments: counting households over the scope's join
    gave each household once per department (anyang saw 30 where the bureau saw 6)."""
    world.project.departments.set([world.office, world.contractor, world.bureau_dept])
    consultation = Consultation.objects.create(
        project=world.project,
        title="兴业大厦改造意愿征询",
        opens_on=today(),
        closes_on=today() + timedelta(days=7),
    )
    for room in range(101, 107):
        Household.objects.create(
            consultation=consultation, building="1幢", room=str(room), code=f"C{room}"
        )
    counts = {}
    for who in ("bureau", "handler"):
        client.force_login(getattr(world, who))
        response = client.get(LIST)
        [row] = response.context["cl"].result_list
        counts[who] = row.households_n
    assert counts == {"bureau": 6, "handler": 6}
