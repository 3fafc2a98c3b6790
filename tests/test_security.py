"""Security: login lockout, headers on every response, CSP without inline scripts, staff idle
timeout, and a production configuration that `check --deploy` passes."""

import os
import re
import subprocess
import sys
import time

import pytest
from django.core.cache import cache

from accounts.middleware import KEY as LAST_SEEN

from .factories import PASSWORD, image_file


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()


def attempt(client, username, password, address="10.0.0.1"):
    return client.post(
        "/accounts/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def test_five_failures_lock_the_account_even_for_the_right_password(world, client):
    for _ in range(4):
        assert attempt(client, "alice", "wrong-password").status_code == 200
    attempt(client, "alice", "wrong-password")  # the fifth locks the account
    locked = attempt(client, "alice", PASSWORD)
    assert locked.status_code in (403, 429)
    assert "账号已暂时锁定" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_mobile_number_counts_as_its_account(world, client):
    world.alice.mobile = "13900000001"
    world.alice.save(update_fields=["mobile"])
    for i in range(5):
        attempt(client, "alice" if i % 2 else "13900000001", "wrong-password")
    assert attempt(client, "13900000001", PASSWORD).status_code in (403, 429)


def test_other_accounts_are_not_locked_by_one_accounts_failures(world, client):
    for _ in range(5):
        attempt(client, "alice", "wrong-password")
    response = attempt(client, "bob", PASSWORD)
    assert response.status_code == 302


def test_one_address_is_limited_across_accounts(world, client, settings):
    settings.LOGIN_FAILURES_PER_IP = 6
    for i in range(6):
        attempt(client, f"nobody{i}", "wrong-password", address="10.9.9.9")
    refused = attempt(client, "bob", PASSWORD, address="10.9.9.9")
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session
    assert attempt(client, "bob", PASSWORD, address="10.1.1.1").status_code == 302


@pytest.mark.parametrize("path", ["/", "/projects/", "/accounts/login/", "/healthz"])
def test_headers_on_every_response(world, client, path):
    response = client.get(path)
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"]


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)


def test_no_page_carries_inline_javascript(world, client):
    issue = world.issue_in("rectified")
    pages = ["/", "/projects/", f"/projects/{world.project.pk}/", "/accounts/login/"]
    for user, paths in [
        (None, pages),
        (world.alice, ["/me/", "/issues/", "/issues/new/", issue.get_absolute_url(), "/feed/"]),
        (world.handler, ["/panel/", "/panel/supervision/issue/", "/dashboard/", "/digest/"]),
    ]:
        if user is not None:
            client.force_login(user)
        for path in paths:
            html = client.get(path).content.decode()
            assert not INLINE_SCRIPT.search(html), path
            assert not INLINE_HANDLER.search(html), path


def test_pages_with_personal_data_are_not_cached(world, client):
    client.force_login(world.alice)
    assert "no-store" in client.get("/me/")["Cache-Control"]
    assert "no-store" in client.get("/issues/")["Cache-Control"]


def test_staff_are_logged_out_after_being_idle(world, client, settings):
    client.force_login(world.handler)
    assert client.get("/issues/").status_code == 200
    session = client.session
    session[LAST_SEEN] = time.time() - settings.STAFF_IDLE_TIMEOUT - 5
    session.save()
    response = client.get("/issues/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert "_auth_user_id" not in client.session


def test_residents_are_not_logged_out_by_the_staff_timeout(world, client, settings):
    client.force_login(world.alice)
    session = client.session
    session[LAST_SEEN] = time.time() - settings.STAFF_IDLE_TIMEOUT - 5
    session.save()
    assert client.get("/issues/").status_code == 200


def test_production_settings_pass_check_deploy():
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "x" * 30 + "-production-secret-key-for-the-check-0123456789",
        "DJANGO_ALLOWED_HOSTS": "jiandu.example.cn",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_staff_passwords_need_complexity_residents_do_not(world):
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    validate_password("quiet garden walk", user=world.alice)  # a resident's passphrase is fine
    with pytest.raises(ValidationError, match="三种"):
        validate_password("quiet garden walk", user=world.handler)
    validate_password("Quiet-garden-7", user=world.handler)
    with pytest.raises(ValidationError):
        validate_password("Short-7a", user=world.bureau)


def test_behind_nginx_photos_go_out_through_an_internal_location(world, client, settings):
    issue = world.issue_in("submitted", photos=[image_file()])
    photo = issue.photos.get()
    settings.MEDIA_ACCEL_REDIRECT = "/protected-media/"
    client.force_login(world.alice)
    response = client.get(f"/photos/{photo.pk}/")
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/{photo.image.name}"
    client.force_login(world.other_staff)
    assert client.get(f"/photos/{photo.pk}/").status_code == 404


def test_a_nul_answers_each_interface_in_its_own_error_shape(client):
    api = client.get("/api/v1/projects", {"q": "a\x00b"})
    assert api.status_code == 400
    assert api.json()["errors"] == [{"field": "q", "message": "请求中含有无效字符。"}]
    georeport = client.get("/open311/v2/requests.json", {"service_code": "x\x00"})
    assert georeport.status_code == 400
    assert georeport.json() == [{"code": 400, "description": "service_code: 请求中含有无效字符。"}]
    xml = client.get("/open311/v2/requests.xml", {"status": "\x00"})
    assert xml.status_code == 400 and b"<description>status: " in xml.content


def test_a_broken_multipart_body_is_a_named_error_for_the_interfaces(client):
    broken = {"content_type": "multipart/form-data", "data": b"--x\r\nnot a form"}
    api = client.post("/api/v1/issues", **broken)
    assert api.status_code == 400 and api.json()["errors"][0]["field"] == "body"
    georeport = client.post("/open311/v2/requests.json", **broken)
    assert georeport.status_code == 400
    assert georeport.json()[0]["description"].startswith("body: ")
