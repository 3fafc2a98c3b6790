"""Photos fetched with an API key count against the key's quota like any API call (one quota with
/api/v1/ and Open311), and are answered as the API answers a key over it: 429, ``{detail,
errors}`` and ``Retry-After``. A browser's session is not counted; a key that is not valid counts
against the address, as key guessing does on the API."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from api.tokens import create_token

from .factories import image_file

LIMIT = 5


@pytest.fixture(autouse=True)
def _low_limit(settings):
    cache.clear()
    settings.API_RATE_LIMIT = LIMIT


@pytest.fixture
def photo(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # files are written on commit
        issue = world.submit(photos=[image_file()])  # not public
    return issue.photos.get()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_api_429(response) -> None:
    assert response.status_code == 429
    assert response.json() == {"detail": "请求太频繁了，请稍后再试。", "errors": []}
    assert 1 <= int(response["Retry-After"]) <= 60


@pytest.mark.parametrize("suffix", ["", "thumb/"])
def test_the_key_s_next_photo_after_its_quota_is_429(world, client, photo, suffix):
    key = create_token(world.alice, "小程序")[1]
    url = f"/photos/{photo.pk}/{suffix}"
    assert [client.get(url, headers=bearer(key)).status_code for _ in range(LIMIT)] == [200] * LIMIT

    assert_api_429(client.get(url, headers=bearer(key)))
    # Another key of the same person has its own quota.
    other = create_token(world.alice, "另一台手机")[1]
    assert client.get(url, headers=bearer(other)).status_code == 200


def test_photos_and_api_calls_share_one_quota(world, client, photo):
    key = create_token(world.alice, "小程序")[1]
    for _ in range(LIMIT - 1):
        assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
    assert client.get(f"/photos/{photo.pk}/", headers=bearer(key)).status_code == 200
    assert_api_429(client.get(f"/photos/{photo.pk}/", headers=bearer(key)))
    assert client.get("/api/v1/me", headers=bearer(key)).status_code == 429


def test_a_logged_in_browser_is_not_counted(world, client, photo):
    key = create_token(world.alice, "小程序")[1]
    for _ in range(LIMIT + 1):
        client.get(f"/photos/{photo.pk}/", headers=bearer(key))  # the key's quota is used up
    client.force_login(world.alice)
    statuses = [client.get(f"/photos/{photo.pk}/").status_code for _ in range(LIMIT * 3)]
    assert statuses == [200] * (LIMIT * 3)
    # A session wins over a header: the same browser sending the spent key is not refused.
    assert client.get(f"/photos/{photo.pk}/", headers=bearer(key)).status_code == 200


def test_a_wrong_key_counts_against_the_address(world, client, photo, settings):
    settings.API_ANONYMOUS_RATE_LIMIT = 3
    wrong = bearer("qzjd_" + "x" * 43)
    statuses = [client.get(f"/photos/{photo.pk}/", headers=wrong).status_code for _ in range(3)]
    assert statuses == [404] * 3  # an anonymous visitor's answer: not a public issue
    assert_api_429(client.get(f"/photos/{photo.pk}/", headers=wrong))
    # Browsers without any key (public photos on public pages) are not limited here.
    assert client.get(f"/photos/{photo.pk}/").status_code == 404
