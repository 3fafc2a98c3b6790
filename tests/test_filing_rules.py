"""The rules that guard filing live in one place (services.filing_problems, raised by
services.submit_issue): the page, the JSON API and Open311 show the service's words beside the
field they belong to, and a patrol problem is held to them too."""

from __future__ import annotations

import pytest

from api.tokens import create_token
from supervision import residents, services
from supervision.models import Issue, Patrol

from .factories import image_file
from .test_issue_pages import field_errors, filing

OPINION_NO_BUILDING = "居民意见请写明是哪一幢楼的居民。"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"category": "nonsense"}, "category", "请选择问题类别。"),
        ({"urgency": "very"}, "urgency", "请选择紧急程度。"),
        ({"title": "  "}, "title", "请用一句话说明问题。"),
        ({"description": ""}, "description", "请描述问题，或按住说话录一段语音。"),
        ({"category": "opinion", "households": 3}, "building", OPINION_NO_BUILDING),
        ({"category": "opinion", "building": "3"}, "households", "居民意见请写明代表多少户居民。"),
        ({"households": 0}, "households", "涉及户数至少为 1。"),
        ({"photos": []}, "photos", "请至少拍一张现场照片。"),
    ],
)
def test_the_service_refuses_each_rule_naming_its_field(world, fields, field, message):
    with pytest.raises(services.WorkflowError) as refused:
        world.submit(**fields)

    assert (refused.value.field, refused.value.message) == (field, message)
    assert refused.value.status_code == 400
    assert not Issue.objects.exists()


def test_an_opinion_needs_no_photo(world):
    issue = world.submit(category="opinion", building="3", households=4, photos=[])
    assert issue.category == "opinion"


def _opinion_without_building(world):
    data = filing(world)
    data.update(category="opinion", households="4", building="")
    data.pop("photos", None)
    return data


def test_the_page_shows_the_services_words_beside_the_field(world, client):
    client.force_login(world.alice)
    response = client.post("/issues/new/", _opinion_without_building(world))

    assert response.status_code == 400
    assert OPINION_NO_BUILDING in field_errors(response.content.decode(), "building")
    assert not Issue.objects.exists()


def test_the_json_api_names_the_field_with_the_same_words(world, client):
    _token, key = create_token(world.alice, "test")
    data = _opinion_without_building(world)
    data.pop("token", None)
    response = client.post("/api/v1/issues", data, headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 400, response.content.decode()
    assert {"field": "building", "message": OPINION_NO_BUILDING} in response.json()["errors"]


def test_open311_names_the_field_with_the_same_words(world, client):
    _token, key = create_token(world.alice, "test")
    response = client.post(
        "/open311/v2/requests.json",
        {
            "api_key": key,
            "service_code": "opinion",
            "description": "希望加装电梯",
            "attribute[households]": "4",
        },
    )

    assert response.status_code == 400
    assert {
        "code": 400,
        "description": f"attribute[building]: {OPINION_NO_BUILDING}",
    } in response.json()


def test_open311_files_through_the_same_form_as_the_page(world, client):
    _token, key = create_token(world.alice, "test")
    response = client.post(
        "/open311/v2/requests.json",
        {"api_key": key, "service_code": "quality", "description": "墙面开裂"},
    )
    assert response.status_code == 400
    assert {"code": 400, "description": "media: 请至少拍一张现场照片。"} in response.json()


def _patrol_with_a_problem(world, photos):
    checks = [
        residents.CheckInput(
            item=value,
            ok=value != Patrol.Check.QUALITY,
            note="外墙空鼓" if value == Patrol.Check.QUALITY else "",
            photos=photos if value == Patrol.Check.QUALITY else [],
        )
        for value in Patrol.Check.values
    ]
    patrol = residents.log_patrol(supervisor=world.alice, project=world.project, checks=checks)
    return patrol.checks.get(ok=False)


def test_a_patrol_problem_without_a_photo_is_not_filed_as_a_quality_issue(world, client):
    check = _patrol_with_a_problem(world, photos=[])
    client.force_login(world.alice)

    response = client.post(f"/patrols/{check.patrol_id}/checks/{check.pk}/issue/", follow=True)

    assert "请至少拍一张现场照片。" in response.content.decode()
    assert not Issue.objects.exists()
    check.refresh_from_db()
    assert check.issue is None


def test_a_patrol_problem_with_its_photo_is_filed(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        check = _patrol_with_a_problem(world, photos=[image_file()])
    with django_capture_on_commit_callbacks(execute=True):
        issue = residents.patrol_problem_to_issue(check, actor=world.alice)
    assert issue.category == "quality" and issue.photos.count() == 1
