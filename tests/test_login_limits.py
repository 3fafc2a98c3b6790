"""The login limits hold on every login path (accounts/limits.py): 30 failures from one address
in 15 minutes, wherever they were made, and every login page refuses that address with 429, the
right password too; five failures for one account lock it on every page.

One row per login path: the site's login, the full admin's and the panel's (both send to the
site's and check no password themselves, so that nobody skips the two-factor step) and the
two-factor step. The API key pages take no
password (a logged-in person makes and revokes keys), so they have no row.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from .factories import PASSWORD, make_user

ADDRESS = "10.66.0.1"
LIMIT = 30  # the production default, LOGIN_FAILURES_PER_IP


@pytest.fixture(autouse=True)
def _fresh(settings):
    cache.clear()
    settings.LOGIN_FAILURES_PER_IP = LIMIT


@dataclass(frozen=True)
class LoginPath:
    path: str
    who: str  # the world's user whose right password (or code) is tried
    checks_passwords: bool = True


LOGIN_PATHS = [
    LoginPath("/accounts/login/", "bob"),
    LoginPath("/admin/login/", "admin", checks_passwords=False),
    LoginPath("/panel/login/", "handler", checks_passwords=False),
    LoginPath("/accounts/login/otp/", "bureau"),
]


def code_for(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def wrong_code(device: TOTPDevice) -> str:
    return "000000" if code_for(device) != "000000" else "111111"


@pytest.fixture
def admin(world):
    return make_user("admin", is_staff=True, is_superuser=True)


@pytest.fixture
def device(world):
    return TOTPDevice.objects.create(user=world.bureau, name="phone", confirmed=True)


def fail(client, path: str, n: int, address: str = ADDRESS) -> None:
    """``n`` failed logins from ``address`` through ``path``, each for another account (so that
    no account is locked and only the address limit can refuse)."""
    for i in range(n):
        response = client.post(
            path, {"username": f"nobody{i}", "password": "wrong-password"}, REMOTE_ADDR=address
        )
        assert response.status_code == 200, (path, i, response.status_code)


def right_attempt(client, world, row: LoginPath, address: str = ADDRESS):
    """The right password (or, at the two-factor step, the right code) through ``row``."""
    if row.path == "/accounts/login/otp/":
        device = TOTPDevice.objects.get(user=world.bureau)
        return client.post(row.path, {"code": code_for(device)}, REMOTE_ADDR=address)
    user = world.admin if row.who == "admin" else getattr(world, row.who)
    return client.post(
        row.path, {"username": user.username, "password": PASSWORD}, REMOTE_ADDR=address
    )


def hold_second_step(client, world) -> None:
    """The bureau's password step done (from another address): the code page waits."""
    response = client.post(
        "/accounts/login/",
        {"username": world.bureau.username, "password": PASSWORD},
        REMOTE_ADDR="10.66.9.9",
    )
    assert response["Location"].endswith("/accounts/login/otp/")


def assert_refused(response, reason: str = "address") -> None:
    assert response.status_code == 429
    html = response.content.decode()
    assert f'data-refused="{reason}"' in html
    if reason == "address":
        assert "登录失败次数过多" in html and "请 15 分钟后再试" in html
    else:
        assert "账号已暂时锁定" in html
    assert "0577-65800000" in html  # whom to call


@pytest.fixture
def scene(world, admin, device):
    world.admin = admin
    return world


@pytest.mark.parametrize("row", LOGIN_PATHS, ids=[r.path for r in LOGIN_PATHS])
def test_thirty_failures_from_one_address_close_every_login_path(scene, client, row):
    failed_on = "/accounts/login/"
    if row.path == "/accounts/login/otp/":
        hold_second_step(client, scene)
    fail(client, failed_on, LIMIT - 1)
    # Below the limit the right password still works (and is no failure).
    if row.path == "/accounts/login/":
        assert right_attempt(client, scene, row).status_code == 302
        client.logout()
    fail(client, failed_on, 1)

    refused = right_attempt(client, scene, row)

    assert_refused(refused)
    assert "_auth_user_id" not in client.session
    # Another address is not limited.
    if row.checks_passwords and row.path != "/accounts/login/otp/":
        assert right_attempt(client, scene, row, address="10.66.0.2").status_code == 302


@pytest.mark.parametrize("row", LOGIN_PATHS[1:3], ids=[r.path for r in LOGIN_PATHS[1:3]])
def test_the_admin_and_panel_logins_check_no_password(scene, client, row):
    """Their POST sends to the site's login page (where the limits and the two-factor step
    apply) and logs nobody in."""
    response = right_attempt(client, scene, row)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_wrong_two_factor_codes_count_against_the_address(scene, client, device):
    hold_second_step(client, scene)
    fail(client, "/accounts/login/", LIMIT - 3)
    for _ in range(3):
        TOTPDevice.objects.filter(pk=device.pk).update(
            throttling_failure_count=0, throttling_failure_timestamp=None
        )
        response = client.post(
            "/accounts/login/otp/", {"code": wrong_code(device)}, REMOTE_ADDR=ADDRESS
        )
        assert response.status_code == 400
    assert_refused(right_attempt(client, scene, LOGIN_PATHS[0]))


def test_a_locked_address_is_refused_before_any_password_is_checked(scene, client, caplog):
    fail(client, "/accounts/login/", LIMIT)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="audit"):
        for row in LOGIN_PATHS[:3]:
            assert_refused(right_attempt(client, scene, row))
    records = [r for r in caplog.records if r.name == "audit"]
    # One record per refused attempt, none a failure: the refusals do not extend the window.
    assert [r.getMessage().split(" path=")[0] for r in records] == [
        f"login refused user={u} ip={ADDRESS}" for u in ("bob", "admin", "anyang")
    ]
    assert cache.get(f"login-failures:{ADDRESS}") == LIMIT


# --- the per-account limit (django-axes), on every path ---------------------------------------


def test_five_failures_for_one_account_lock_it(scene, client):
    """From five addresses (no address limit is near): the account is locked, the right
    password refused. The other login pages check no password at all (above)."""
    failed_on = tried_on = "/accounts/login/"
    for i in range(5):
        client.post(
            failed_on,
            {"username": "admin", "password": "wrong-password"},
            REMOTE_ADDR=f"10.67.0.{i}",
        )
    response = client.post(
        tried_on, {"username": "admin", "password": PASSWORD}, REMOTE_ADDR="10.67.1.1"
    )
    assert_refused(response, "account")
    assert "_auth_user_id" not in client.session


def test_five_wrong_codes_lock_the_account(scene, client, device):
    hold_second_step(client, scene)
    for n in range(5):
        TOTPDevice.objects.filter(pk=device.pk).update(
            throttling_failure_count=0, throttling_failure_timestamp=None
        )
        response = client.post(
            "/accounts/login/otp/", {"code": wrong_code(device)}, REMOTE_ADDR=f"10.68.0.{n}"
        )
    assert_refused(response, "account")  # the fifth locks it
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )
    # The right code is refused now, and so is the right password on any page.
    right = client.post("/accounts/login/otp/", {"code": code_for(device)}, REMOTE_ADDR="10.68.1.1")
    assert_refused(right, "account")
    assert "_auth_user_id" not in client.session
    response = client.post(
        "/accounts/login/",
        {"username": scene.bureau.username, "password": PASSWORD},
        REMOTE_ADDR="10.68.1.2",
    )
    assert_refused(response, "account")


def test_a_wrong_code_is_one_failed_login_in_the_audit_log(scene, client, device):
    hold_second_step(client, scene)
    logger = logging.getLogger("audit")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        client.post("/accounts/login/otp/", {"code": wrong_code(device)}, REMOTE_ADDR=ADDRESS)
    finally:
        logger.removeHandler(handler)
    [record] = records
    line = json.loads(logger.handlers[0].formatter.format(record))
    assert (line["event"], line["user"], line["ip"], line["path"]) == (
        "login failed",
        scene.bureau.username,
        ADDRESS,
        "/accounts/login/otp/",
    )


def test_every_login_page_has_a_row():
    """A login page added later must join the limits (LOGIN_VIEWS) and this table."""
    from django.urls import reverse

    from accounts.limits import LOGIN_VIEWS, SMS_VIEWS
    from supervision.urls import urlpatterns

    from .test_access_matrix import LOGIN_PAGES, walk

    rows = {row.path for row in LOGIN_PATHS}
    # The SMS pages' limits and lockouts are tried in tests/test_sms_login.py.
    assert {reverse(name) for name in LOGIN_VIEWS - SMS_VIEWS} == rows
    assert set(LOGIN_PAGES) <= rows
    named = {
        f"{r.namespace}:{r.name}" if r.namespace else r.name
        for r in walk(urlpatterns)
        # WeChat's sign-in is a GET that takes no password; its callback keeps the limits
        # itself (tests/test_wechat.py).
        if r.name in ("login", "login-otp")
        or ((r.name or "").endswith("-login") and r.name != "wechat-login")
    }
    assert named <= set(LOGIN_VIEWS), named
