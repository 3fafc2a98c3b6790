"""Optional two-factor login (TOTP) for the bureau and superusers."""

import pytest
from django.core.cache import cache
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from .factories import PASSWORD, make_user


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


def code_for(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def test_bureau_with_an_authenticator_needs_the_code_after_the_password(world, client):
    device = TOTPDevice.objects.create(user=world.bureau, name="phone", confirmed=True)
    response = client.post(
        "/accounts/login/", {"username": world.bureau.username, "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"].endswith("/accounts/login/otp/")
    assert "_auth_user_id" not in client.session
    wrong = client.post(
        "/accounts/login/otp/", {"code": "000000" if code_for(device) != "000000" else "111111"}
    )
    assert wrong.status_code == 400 and "验证码不对" in wrong.content.decode()
    assert "_auth_user_id" not in client.session
    # django-otp pauses after a wrong code (throttling); let that pause pass.
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )
    right = client.post("/accounts/login/otp/", {"code": code_for(device)})
    assert right.status_code == 302
    assert client.session["_auth_user_id"] == str(world.bureau.pk)


def test_the_admin_login_page_cannot_skip_the_code(world, client):
    """/admin/login/ sends to the site's login (with the admin page asked for), which asks a
    superuser with an authenticator for the code; Django's own admin form would not have."""
    admin = make_user("root", is_staff=True, is_superuser=True)
    device = TOTPDevice.objects.create(user=admin, name="phone", confirmed=True)
    posted = client.post(
        "/admin/login/?next=/admin/auth/", {"username": "root", "password": PASSWORD}
    )
    assert posted.status_code == 302 and "_auth_user_id" not in client.session
    page = client.get("/admin/login/?next=/admin/auth/")
    assert page["Location"] == "/accounts/login/?next=/admin/auth/"
    password = client.post(page["Location"], {"username": "root", "password": PASSWORD})
    assert password["Location"].endswith("/accounts/login/otp/")
    assert "_auth_user_id" not in client.session
    code = client.post("/accounts/login/otp/", {"code": code_for(device)})
    assert code["Location"] == "/admin/auth/"
    assert client.get("/admin/auth/").status_code == 200
    # Signed in, the admin login page goes back to the admin; elsewhere never (no open redirect).
    assert client.get("/admin/login/?next=https://evil.example/")["Location"] == "/admin/"


def test_the_admin_login_page_refuses_whoever_may_not_use_the_admin(world, client):
    """A signed-in supervisor is refused there, not sent round between two pages."""
    client.force_login(world.alice)
    assert client.get("/admin/login/?next=/admin/").status_code == 403
    assert client.get("/admin/", follow=True).status_code == 403


def test_without_an_authenticator_the_password_is_enough(world, client):
    response = client.post(
        "/accounts/login/", {"username": world.bureau.username, "password": PASSWORD}
    )
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_the_code_page_without_a_password_step_goes_back_to_login(world, client):
    assert client.get("/accounts/login/otp/")["Location"].endswith("/accounts/login/")


def test_setting_up_an_authenticator(world, client):
    client.force_login(world.bureau)
    page = client.get("/accounts/otp/setup/")
    assert page.status_code == 200 and "<svg" in page.content.decode()
    device = TOTPDevice.objects.get(user=world.bureau)
    assert not device.confirmed
    client.post("/accounts/otp/setup/", {"code": code_for(device)})
    device.refresh_from_db()
    assert device.confirmed


def test_residents_and_staff_do_not_get_the_setup(world, client):
    client.force_login(world.alice)
    assert client.get("/accounts/otp/setup/").status_code == 403
