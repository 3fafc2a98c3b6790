"""The rules that guard filing live in one place (services.filing_problems, raised by
services.submit_issue): the page, the JSON API and Open311 show the service's words beside the
field they belong to, and a patrol problem is held to them too."""

from __future__ import annotations

import pytest

from api.tokens import create_token
from supervision import residents, services
from supervision.models import Issue, Patrol, Photo

from .factories import image_file
from .test_issue_pages import field_errors, filing

OPINION_NO_BUILDING = "居民意见请写明是哪一幢楼的居民。"
HOUSEHOLDS_FOR_AN_OPINION = "居民意见请写明代表多少户居民。"
PHOTO_NEEDED = "请至少拍一张现场照片。"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"category": ""}, "category", "请选择问题类别。"),
        ({"category": "nonsense"}, "category", "请选择问题类别。"),
        ({"urgency": "very"}, "urgency", "请选择紧急程度。"),
        ({"title": "  "}, "title", "请用一句话说明问题。"),
        ({"description": ""}, "description", "请描述问题，或按住说话录一段语音。"),
        ({"category": "opinion", "households": 3}, "building", OPINION_NO_BUILDING),
        ({"category": "opinion", "building": "3"}, "households", HOUSEHOLDS_FOR_AN_OPINION),
        ({"households": 0}, "households", "涉及户数至少为 1。"),
        ({"photos": []}, "photos", PHOTO_NEEDED),
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


AN_OPINION = {"category": "opinion", "building": "3", "households": "4", "photos": []}
WITHOUT_PHOTO = {"media": None}  # Open311: the multipart ``media`` left out

# One row per rule: its field, its words, what the page and the JSON API send to break it, and
# what an Open311 client sends to break it, with the Open311 name the refusal comes under (None:
# the rule cannot be reached through Open311).
RULES = [
    pytest.param(
        "category",
        "请选择问题类别。",
        {"category": ""},
        ({"service_code": ""}, "service_code"),
        id="no-category",
    ),
    pytest.param(
        "category",
        "请选择问题类别。",
        {"category": "parking"},
        ({"service_code": "parking"}, "service_code"),
        id="unknown-category",
    ),
    pytest.param(
        "urgency",
        "请选择紧急程度。",
        {"urgency": "very"},
        ({"attribute[urgency]": "very"}, "attribute[urgency]"),
        id="unknown-urgency",
    ),
    pytest.param(
        "title",
        "请用一句话说明问题。",
        {"title": "  "},
        # Open311 takes the title from the description's first line when none is given.
        ({"attribute[title]": "  ", "description": ""}, "attribute[title]"),
        id="no-title",
    ),
    pytest.param(
        "description",
        "请描述问题，或按住说话录一段语音。",
        {"description": ""},
        ({"attribute[title]": "墙面开裂", "description": ""}, "description"),
        id="no-description",
    ),
    pytest.param(
        "building",
        OPINION_NO_BUILDING,
        {**AN_OPINION, "building": ""},
        (
            {"service_code": "opinion", "attribute[households]": "4", **WITHOUT_PHOTO},
            "attribute[building]",
        ),
        id="opinion-without-building",
    ),
    pytest.param(
        "households",
        HOUSEHOLDS_FOR_AN_OPINION,
        {**AN_OPINION, "households": ""},
        (
            {"service_code": "opinion", "attribute[building]": "3", **WITHOUT_PHOTO},
            "attribute[households]",
        ),
        id="opinion-without-households",
    ),
    pytest.param(
        "households",
        HOUSEHOLDS_FOR_AN_OPINION,
        {**AN_OPINION, "households": "0"},
        (
            {
                "service_code": "opinion",
                "attribute[building]": "3",
                "attribute[households]": "0",
                **WITHOUT_PHOTO,
            },
            "attribute[households]",
        ),
        id="opinion-of-no-households",
    ),
    pytest.param(
        "households",
        "涉及户数至少为 1。",
        {"households": "-2"},
        None,  # Open311 asks for households only in an opinion
        id="fewer-than-one-household",
    ),
    pytest.param(
        "photos",
        PHOTO_NEEDED,
        {"photos": []},
        (WITHOUT_PHOTO, "media"),
        id="quality-without-photo",
    ),
]


def _api_data(world, changes: dict) -> dict:
    """The page's data as a JSON API client sends it: what is not given is left out."""
    data = filing(world, **changes)
    data.pop("token")
    return {name: value for name, value in data.items() if value not in ("", [])}


@pytest.mark.parametrize(("field", "message", "changes", "open311"), RULES)
def test_the_page_shows_the_services_words_beside_the_field(
    world, client, field, message, changes, open311
):
    client.force_login(world.alice)
    response = client.post("/issues/new/", filing(world, **changes))

    assert response.status_code == 400
    assert message in field_errors(response.content.decode(), field)
    assert not Issue.objects.exists()


@pytest.mark.parametrize(("field", "message", "changes", "open311"), RULES)
def test_the_json_api_names_the_field_with_the_same_words(
    world, client, field, message, changes, open311
):
    _token, key = create_token(world.alice, "test")
    response = client.post(
        "/api/v1/issues", _api_data(world, changes), headers={"Authorization": f"Bearer {key}"}
    )

    assert response.status_code == 400, response.content.decode()
    assert {"field": field, "message": message} in response.json()["errors"]
    assert not Issue.objects.exists()


@pytest.mark.parametrize(("field", "message", "changes", "open311"), RULES)
def test_open311_names_the_field_with_the_same_words(
    world, client, field, message, changes, open311
):
    if open311 is None:
        pytest.skip("not a rule an Open311 request can break")
    params, name = open311
    _token, key = create_token(world.alice, "test")
    request = {"api_key": key, "service_code": "quality", "description": "墙面开裂"}
    request.update({"media": image_file(), **params})
    response = client.post(
        "/open311/v2/requests.json", {k: v for k, v in request.items() if v is not None}
    )

    assert response.status_code == 400, response.content.decode()
    assert {"code": 400, "description": f"{name}: {message}"} in response.json()
    assert not Issue.objects.exists()


def test_the_words_shown_are_the_services_own():
    """The words the three ways in show (RULES) are the service's (FILING_MESSAGES), one a rule."""
    words = {str(message) for message in services.FILING_MESSAGES.values()}
    assert {param.values[1] for param in RULES} <= words


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


def test_a_patrol_problem_without_a_photo_is_refused_by_the_service_and_nothing_is_saved(world):
    check = _patrol_with_a_problem(world, photos=[])

    with pytest.raises(services.WorkflowError) as refused:
        residents.patrol_problem_to_issue(check, actor=world.alice)

    assert (refused.value.field, refused.value.message) == ("photos", PHOTO_NEEDED)
    assert refused.value.status_code == 400
    assert not Issue.objects.exists()
    assert not Photo.objects.exists()
    check.refresh_from_db()
    assert check.issue is None


def test_the_patrol_page_asks_for_a_photo_where_the_problem_has_none(world, client):
    check = _patrol_with_a_problem(world, photos=[])
    client.force_login(world.alice)

    page = client.get(f"/patrols/{check.patrol_id}/").content.decode()

    assert f'name="check-{check.pk}-photos"' in page
    assert "巡查时没有拍照；反映问题需要至少一张现场照片。" in page


def test_the_patrol_page_asks_for_no_photo_where_the_problem_has_one(world, client):
    check = _patrol_with_a_problem(world, photos=[image_file()])
    client.force_login(world.alice)

    page = client.get(f"/patrols/{check.patrol_id}/").content.decode()

    assert "转为问题反映" in page
    assert f'name="check-{check.pk}-photos"' not in page


def test_a_patrol_problem_without_a_photo_is_refused_beside_its_photo_picker(world, client):
    check = _patrol_with_a_problem(world, photos=[])
    client.force_login(world.alice)

    response = client.post(f"/patrols/{check.patrol_id}/checks/{check.pk}/issue/")

    assert response.status_code == 400
    page = response.content.decode()
    assert PHOTO_NEEDED in field_errors(page, "photos", prefix=f"id_check-{check.pk}-")
    assert "外墙空鼓" in page  # the problem as written on patrol, still there to file
    assert not Issue.objects.exists()
    check.refresh_from_db()
    assert check.issue is None


def test_a_photo_added_when_turning_a_patrol_problem_into_an_issue_goes_with_it(
    world, client, django_capture_on_commit_callbacks
):
    check = _patrol_with_a_problem(world, photos=[])
    client.force_login(world.alice)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/patrols/{check.patrol_id}/checks/{check.pk}/issue/",
            {f"check-{check.pk}-photos": image_file()},
        )

    issue = Issue.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/issues/{issue.pk}/"
    assert (issue.category, issue.description) == ("quality", "外墙空鼓")
    assert issue.photos.count() == 1
    check.refresh_from_db()
    assert check.issue == issue


def test_a_patrol_problem_with_its_photo_is_filed(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        check = _patrol_with_a_problem(world, photos=[image_file()])
    with django_capture_on_commit_callbacks(execute=True):
        issue = residents.patrol_problem_to_issue(check, actor=world.alice)
    assert issue.category == "quality" and issue.photos.count() == 1
