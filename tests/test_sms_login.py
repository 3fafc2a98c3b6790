"""Signing in with an SMS code, and resetting a forgotten password with one (accounts/sms.py),
against stand-ins of Aliyun's and Tencent Cloud's SendSms on 127.0.0.1 (tests/sms_standins.py)
and the console backend. Alice is a supervisor (13957700004); 13900000000 belongs to nobody."""

from __future__ import annotations

import json
import logging
import re
import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import SmsCode

from .factories import PASSWORD, make_user
from .sms_standins import StandIn
from .test_audit import audit_lines  # noqa: F401  (the fixture)

ALICE = "13957700004"
NOBODY = "13900000000"
STAFF = "13957700099"
BUREAU = "13957700098"
LOGIN, LOGIN_CODE = "/accounts/login/sms/", "/accounts/login/sms/code/"
RESET, RESET_CODE = "/accounts/password/reset/", "/accounts/password/reset/code/"
SMS_URLS = (LOGIN, LOGIN_CODE, RESET, RESET_CODE)


@pytest.fixture
def people(world):
    world.alice.mobile = ALICE
    world.alice.save(update_fields=["mobile"])
    world.handler.mobile = STAFF
    world.handler.save(update_fields=["mobile"])
    world.bureau.mobile = BUREAU
    world.bureau.save(update_fields=["mobile"])
    return world


@pytest.fixture
def console(settings):
    settings.SMS_BACKEND = "console"


def provider(settings, protocol: str, **kwargs) -> StandIn:
    stand_in = StandIn(protocol, **kwargs)
    settings.SMS_BACKEND = protocol
    settings.SMS_TEMPLATE = "SMS_000001" if protocol == "aliyun" else "1234567"
    settings.SMS_TIMEOUT = 1
    if protocol == "aliyun":
        settings.SMS_ALIYUN_ACCESS_KEY_ID = "LTAI-test"
        settings.SMS_ALIYUN_ACCESS_KEY_SECRET = "secret"
        settings.SMS_ALIYUN_ENDPOINT = stand_in.url
    else:
        settings.SMS_TENCENT_SECRET_ID = "AKID-test"
        settings.SMS_TENCENT_SECRET_KEY = "secret"
        settings.SMS_TENCENT_SDK_APP_ID = "1400000001"
        settings.SMS_TENCENT_ENDPOINT = stand_in.url
    return stand_in


@pytest.fixture(params=["aliyun", "tencent"])
def sms(request, settings):
    with provider(settings, request.param) as stand_in:
        yield stand_in


@pytest.fixture
def aliyun(settings):
    with provider(settings, "aliyun") as stand_in:
        yield stand_in


@pytest.fixture
def clock(monkeypatch):
    """``clock.advance(minutes=5)``: what ``timezone.now()`` answers moves on."""
    real = timezone.now
    offset = [timedelta(0)]

    class Clock:
        def advance(self, **delta) -> None:
            offset[0] += timedelta(**delta)

    monkeypatch.setattr(timezone, "now", lambda: real() + offset[0])
    return Clock()


def console_code(capsys) -> str:
    return re.findall(r"验证码 (\d{6})", capsys.readouterr().out)[-1]


def ask(client, mobile: str, url: str = LOGIN):
    return client.post(url, {"mobile": mobile})


def signed_in(client) -> str | None:
    return client.session.get("_auth_user_id")


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# --- off by default ---------------------------------------------------------------------------


def test_sms_is_off_by_default_no_links_no_pages_no_connections(people, client, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to connect")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    page = client.get("/accounts/login/").content.decode()
    assert "短信" not in page and "忘记密码请联系住建局" in page
    for url in SMS_URLS:
        assert client.get(url).status_code == 404
        assert client.post(url, {"mobile": ALICE, "code": "123456"}).status_code == 404
    assert not SmsCode.objects.exists()


def test_login_page_offers_sms_when_configured(people, client, console):
    page = client.get("/accounts/login/?next=/issues/").content.decode()
    assert "短信验证码登录" in page and 'href="/accounts/login/sms/?next=/issues/"' in page
    assert "忘记密码？用短信验证码重设" in page and 'href="/accounts/password/reset/"' in page


# --- signing in --------------------------------------------------------------------------------


def test_supervisor_signs_in_with_a_code_through_each_provider(people, client, sms):
    first = client.get(LOGIN)
    html = first.content.decode()
    assert 'inputmode="numeric"' in html and 'type="tel"' in html
    sent = ask(client, ALICE)
    assert sent.status_code == 302 and sent["Location"] == LOGIN_CODE
    assert sms.numbers() == [ALICE]
    request = sms.requests[0]
    assert request.action == "SendSms" and "authorization" in request.headers
    if sms.protocol == "aliyun":
        assert request.params["SignName"] == "群众监督"
        assert request.params["TemplateCode"] == "SMS_000001"
    else:
        assert request.body["SmsSdkAppId"] == "1400000001"
        assert request.body["TemplateParamSet"][1] == "5"  # minutes
    code = sms.last_code()
    assert re.fullmatch(r"\d{6}", code)
    page = client.get(LOGIN_CODE).content.decode()
    assert 'autocomplete="one-time-code"' in page and "139 5770 0004" in page
    done = client.post(LOGIN_CODE, {"code": code})
    assert done.status_code == 302 and done["Location"] == "/me/"
    assert signed_in(client) == str(people.alice.pk)
    # Stored hashed: neither the code nor the number is in the row.
    row = SmsCode.objects.get()
    assert code not in row.code_digest and ALICE not in row.mobile_digest
    assert row.used_at is not None


def test_a_code_works_once(people, client, aliyun):
    ask(client, ALICE)
    code = aliyun.last_code()
    client.post(LOGIN_CODE, {"code": code})
    client.post("/accounts/logout/")
    client.cookies.clear()
    session = client.session
    session["sms_mobile_login"] = ALICE
    session.save()
    again = client.post(LOGIN_CODE, {"code": code})
    assert again.status_code == 400 and "验证码已失效" in again.content.decode()
    assert signed_in(client) is None


def test_console_backend_prints_the_code_and_next_is_kept(people, client, console, capsys):
    client.get(LOGIN + "?next=/issues/")
    ask(client, "139 5770 0004")  # spaces as people type them
    printed = capsys.readouterr().out
    assert "139****0004" in printed and ALICE not in printed
    code = re.findall(r"验证码 (\d{6})", printed)[-1]
    done = client.post(LOGIN_CODE, {"code": f" {code} "})
    assert done["Location"] == "/issues/"


def test_next_to_another_site_is_ignored(people, client, console, capsys):
    client.get(LOGIN + "?next=https://evil.example/")
    ask(client, ALICE)
    done = client.post(LOGIN_CODE, {"code": console_code(capsys)})
    assert done["Location"] == "/me/"


def test_code_page_without_a_number_goes_back(people, client, console):
    assert client.get(LOGIN_CODE)["Location"] == LOGIN
    assert client.post(LOGIN_CODE, {"code": "123456"})["Location"] == LOGIN


def test_signed_in_person_is_sent_to_their_page(people, client, console):
    client.force_login(people.alice)
    assert client.get(LOGIN)["Location"] == "/me/"


def test_code_expires_after_five_minutes(people, client, aliyun, clock):
    ask(client, ALICE)
    clock.advance(minutes=5, seconds=1)
    late = client.post(LOGIN_CODE, {"code": aliyun.last_code()})
    assert late.status_code == 400 and "验证码已失效，请重新获取" in late.content.decode()
    assert signed_in(client) is None


def test_code_still_good_just_before_five_minutes(people, client, aliyun, clock):
    ask(client, ALICE)
    clock.advance(minutes=4, seconds=50)
    assert client.post(LOGIN_CODE, {"code": aliyun.last_code()}).status_code == 302
    assert signed_in(client) == str(people.alice.pk)


def test_resend_within_60_seconds_is_refused(people, client, aliyun, clock):
    ask(client, ALICE)
    again = ask(client, ALICE)
    assert again.status_code == 429
    html = again.content.decode()
    assert "秒后再重新获取" in html and "is-invalid" in html and f'value="{ALICE}"' in html
    button = client.post(LOGIN_CODE, {"resend": "1"})
    assert button.status_code == 429 and "秒后再重新获取" in button.content.decode()
    assert len(aliyun.requests) == 1
    clock.advance(seconds=61)
    assert client.post(LOGIN_CODE, {"resend": "1"}).status_code == 302
    assert len(aliyun.requests) == 2
    # Only the newest code counts.
    old = json.loads(aliyun.requests[0].params["TemplateParam"])["code"]
    if old != aliyun.last_code():
        assert client.post(LOGIN_CODE, {"code": old}).status_code == 400
    assert client.post(LOGIN_CODE, {"code": aliyun.last_code()}).status_code == 302


def test_five_wrong_codes_use_the_code_up(people, client, aliyun):
    ask(client, ALICE)
    code = aliyun.last_code()
    for left in (4, 3, 2, 1):
        answer = client.post(LOGIN_CODE, {"code": wrong(code)})
        assert answer.status_code == 400
        assert f"还可以再试 {left} 次" in answer.content.decode()
    fifth = client.post(LOGIN_CODE, {"code": wrong(code)})
    assert fifth.status_code == 429  # the account's failed logins too (django-axes)
    assert client.post(LOGIN_CODE, {"code": code}).status_code == 429
    assert signed_in(client) is None
    assert SmsCode.objects.get().tries == 5
    # Even once the account's lock has passed, that code stays used up.
    from axes.models import AccessAttempt

    AccessAttempt.objects.all().delete()
    after = client.post(LOGIN_CODE, {"code": code})
    assert after.status_code == 400 and "已作废" in after.content.decode()
    assert signed_in(client) is None


def test_wrong_codes_count_against_the_address(people, client, aliyun, settings):
    settings.LOGIN_FAILURES_PER_IP = 2
    ask(client, ALICE)
    code = aliyun.last_code()
    client.post(LOGIN_CODE, {"code": wrong(code)})
    client.post(LOGIN_CODE, {"code": wrong(code)})
    refused = client.post(LOGIN_CODE, {"code": code})
    assert refused.status_code == 429 and 'data-refused="address"' in refused.content.decode()
    assert signed_in(client) is None


def _normalised(html: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    return re.sub(r"1\d{2} ?\d{4} ?\d{4}|1\d{2}\*{4}\d{4}", "NUMBER", html)


@pytest.mark.parametrize("other", [NOBODY, STAFF, "inactive"])
def test_a_number_without_an_account_looks_the_same(people, client, aliyun, other, audit_lines):  # noqa: F811
    if other == "inactive":
        make_user("gone", role="supervisor", mobile="13957700077", is_active=False)
        other = "13957700077"
    known, unknown = client, type(client)()
    answers = [ask(known, ALICE), ask(unknown, other)]
    assert [a.status_code for a in answers] == [302, 302]
    assert answers[0]["Location"] == answers[1]["Location"]
    pages = [_normalised(c.get(LOGIN_CODE).content.decode()) for c in (known, unknown)]
    assert pages[0] == pages[1]
    assert aliyun.numbers() == [ALICE]  # nobody else gets a message
    # The same refusals follow: too soon again, and a wrong code.
    assert ask(known, ALICE).status_code == ask(unknown, other).status_code == 429
    guesses = [c.post(LOGIN_CODE, {"code": "000000"}) for c in (known, unknown)]
    assert [g.status_code for g in guesses] == [400, 400]
    assert _normalised(guesses[0].content.decode()) == _normalised(guesses[1].content.decode())
    assert SmsCode.objects.count() == 2
    records = [json.loads(line) for line in audit_lines().splitlines()]
    withheld = [r for r in records if r["event"] == "sms code withheld"]
    assert withheld and withheld[0]["user"] == f"{other[:3]}****{other[-4:]}"


def test_staff_cannot_sign_in_by_code_unless_allowed(people, client, aliyun):
    ask(client, STAFF)
    assert aliyun.requests == []
    assert client.post(LOGIN_CODE, {"code": "123456"}).status_code == 400
    assert signed_in(client) is None


def test_staff_may_sign_in_by_code_when_allowed(people, client, aliyun, settings):
    settings.SMS_STAFF_LOGIN = True
    ask(client, STAFF)
    done = client.post(LOGIN_CODE, {"code": aliyun.last_code()})
    assert done.status_code == 302 and signed_in(client) == str(people.handler.pk)


def test_bureau_with_two_factor_still_gives_its_code(people, client, aliyun, settings):
    settings.SMS_STAFF_LOGIN = True
    TOTPDevice.objects.create(user=people.bureau, name="phone", confirmed=True)
    ask(client, BUREAU)
    done = client.post(LOGIN_CODE, {"code": aliyun.last_code()})
    assert done.status_code == 302 and done["Location"] == "/accounts/login/otp/"
    assert signed_in(client) is None
    assert "两步验证" in client.get(done["Location"]).content.decode()


# --- limits ------------------------------------------------------------------------------------


def test_limit_per_number_per_hour_and_per_day(people, client, aliyun, clock, settings):
    settings.SMS_CODES_PER_NUMBER_PER_HOUR = 2
    settings.SMS_CODES_PER_NUMBER_PER_DAY = 3
    assert ask(client, ALICE).status_code == 302
    clock.advance(seconds=61)
    assert ask(client, ALICE).status_code == 302
    clock.advance(seconds=61)
    refused = ask(client, ALICE)
    assert refused.status_code == 429 and "这个号码获取验证码的次数太多" in refused.content.decode()
    clock.advance(hours=1)
    assert ask(client, ALICE).status_code == 302
    clock.advance(hours=1)
    assert ask(client, ALICE).status_code == 429  # 3 today
    clock.advance(hours=23)
    assert ask(client, ALICE).status_code == 302
    assert len(aliyun.requests) == 4


def test_limit_per_address(people, client, aliyun, settings, clock):
    settings.SMS_CODES_PER_IP_PER_HOUR = 2
    settings.SMS_CODES_PER_IP_PER_DAY = 3
    assert ask(client, ALICE).status_code == 302
    assert ask(client, NOBODY).status_code == 302
    refused = ask(client, "13900000001")
    assert refused.status_code == 429 and "这个网络获取验证码的次数太多" in refused.content.decode()
    other_address = client.post(LOGIN, {"mobile": "13900000001"}, REMOTE_ADDR="10.0.0.9")
    assert other_address.status_code == 302
    clock.advance(hours=1, seconds=1)
    assert ask(client, "13900000002").status_code == 302
    assert ask(client, "13900000003").status_code == 429  # 3 today


# --- outages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["aliyun", "tencent"])
@pytest.mark.parametrize("mode", ["error", "slow", "refuse"])
def test_provider_failure_is_told_plainly(people, client, settings, protocol, mode, audit_lines):  # noqa: F811
    with provider(settings, protocol, mode=mode, delay=2.5) as stand_in:
        answer = ask(client, ALICE)
        assert len(stand_in.requests) == 1
    assert answer.status_code == 503
    html = answer.content.decode()
    assert "短信发送失败，请稍后再试，或使用密码登录" in html and f'value="{ALICE}"' in html
    assert "sms_mobile_login" not in client.session
    records = [json.loads(line) for line in audit_lines().splitlines()]
    failed = [r for r in records if r["event"] == "sms send failed"]
    assert failed and failed[0]["user"] == "139****0004" and failed[0]["level"] == "ERROR"
    # While the provider is failing, a number without an account is told the same.
    assert ask(type(client)(), NOBODY).status_code == 503
    # The rest of the site goes on.
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/").status_code == 200


def test_missing_credentials_is_an_outage_not_a_crash(people, client, settings):
    settings.SMS_BACKEND = "aliyun"
    settings.SMS_ALIYUN_ACCESS_KEY_ID = ""
    assert ask(client, ALICE).status_code == 503


# --- resetting a forgotten password ------------------------------------------------------------


def test_reset_password_by_code(people, client, sms, audit_lines):  # noqa: F811
    assert "用短信验证码重设密码" in client.get(RESET).content.decode()
    assert ask(client, ALICE, RESET)["Location"] == RESET_CODE
    code = sms.last_code()
    page = client.get(RESET_CODE).content.decode()
    assert 'autocomplete="new-password"' in page
    weak = client.post(RESET_CODE, {"code": code, "new_password1": "123", "new_password2": "123"})
    html = weak.content.decode()
    assert weak.status_code == 400 and "new_password1" in html and f'value="{code}"' in html
    mismatch = client.post(
        RESET_CODE,
        {"code": code, "new_password1": "Lanting-2024", "new_password2": "Lanting-2025"},
    )
    assert "两次输入的新密码不一致" in mismatch.content.decode()
    done = client.post(
        RESET_CODE,
        {"code": code, "new_password1": "Lanting-2024", "new_password2": "Lanting-2024"},
    )
    assert done.status_code == 302 and done["Location"] == "/accounts/login/"
    people.alice.refresh_from_db()
    assert people.alice.check_password("Lanting-2024")
    assert not people.alice.check_password(PASSWORD)
    assert signed_in(client) is None
    assert "密码已重设" in client.get("/accounts/login/").content.decode()
    # The code is used up.
    session = client.session
    session["sms_mobile_reset"] = ALICE
    session.save()
    again = client.post(
        RESET_CODE, {"code": code, "new_password1": "Other-2024x", "new_password2": "Other-2024x"}
    )
    assert again.status_code == 400
    records = [json.loads(line) for line in audit_lines().splitlines()]
    reset = [r for r in records if r["event"] == "password reset by sms"]
    assert reset == [reset[0]] and reset[0]["user"] == "139****0004"
    assert reset[0]["account"] == "alice"


def test_reset_for_staff_follows_the_staff_password_rules(people, client, aliyun, settings):
    settings.SMS_STAFF_LOGIN = True
    ask(client, STAFF, RESET)
    code = aliyun.last_code()
    simple = client.post(
        RESET_CODE, {"code": code, "new_password1": "lanting2024", "new_password2": "lanting2024"}
    )
    assert simple.status_code == 400 and "工作人员的密码至少" in simple.content.decode()
    strong = client.post(
        RESET_CODE, {"code": code, "new_password1": "Lanting#2024", "new_password2": "Lanting#2024"}
    )
    assert strong.status_code == 302
    people.handler.refresh_from_db()
    assert people.handler.check_password("Lanting#2024")


def test_reset_code_cannot_sign_in_and_login_code_cannot_reset(people, client, aliyun, clock):
    ask(client, ALICE, RESET)
    reset_code = aliyun.last_code()
    session = client.session
    session["sms_mobile_login"] = ALICE
    session.save()
    assert client.post(LOGIN_CODE, {"code": reset_code}).status_code == 400
    assert signed_in(client) is None


# --- the audit log and other logs ----------------------------------------------------------------


def test_each_send_and_use_is_in_the_audit_log_masked(people, client, aliyun, audit_lines):  # noqa: F811
    ask(client, ALICE)
    client.post(LOGIN_CODE, {"code": wrong(aliyun.last_code())})
    client.post(LOGIN_CODE, {"code": aliyun.last_code()})
    records = [json.loads(line) for line in audit_lines().splitlines()]
    events = [r["event"] for r in records]
    assert events == [
        "sms code sent",
        "sms code refused",
        "login failed",
        "sms code used",
        "login ok",
    ]
    for record in records[:4]:
        assert record["user"] == "139****0004" and record["ip"] == "127.0.0.1"
    assert records[0]["backend"] == "aliyun" and records[1]["reason"] == "wrong"
    assert records[3]["account"] == "alice" and records[3]["purpose"] == "login"
    code = aliyun.last_code()
    assert ALICE not in audit_lines() and code not in audit_lines()


def test_no_full_number_in_any_captured_log(people, client, settings, caplog, capsys, clock):  # noqa: F811
    """Everything logged at DEBUG while the flows run, SDKs and HTTP libraries included."""
    caplog.set_level(logging.DEBUG)
    for protocol in ("aliyun", "tencent"):
        for mode in ("ok", "error"):
            with provider(settings, protocol, mode=mode) as stand_in:
                fresh = type(client)()
                ask(fresh, ALICE)
                if mode == "ok":
                    fresh.post(LOGIN_CODE, {"code": wrong(stand_in.last_code())})
                    fresh.post(LOGIN_CODE, {"code": stand_in.last_code()})
                ask(fresh, NOBODY, RESET)
                clock.advance(seconds=61)
    settings.SMS_BACKEND = "console"
    ask(client, ALICE, RESET)
    captured = capsys.readouterr()
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "sms code sent" in logged and "139****0004" in logged
    for number in (ALICE, NOBODY):
        assert number not in logged
        assert number not in captured.out and number not in captured.err


# --- no input gives a server error ---------------------------------------------------------------

FIELD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "1" * 11, "+8613957700004", "13957700004", "0" * 6, "１２３４５６"]),
)


@pytest.fixture
def fuzz_client(people, console):
    from django.test import Client

    return Client


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    url=st.sampled_from(SMS_URLS),
    data=st.dictionaries(
        st.sampled_from(["mobile", "code", "new_password1", "new_password2", "resend", "next"]),
        FIELD_TEXT,
        max_size=5,
    ),
    with_number=st.booleans(),
)
def test_no_input_gives_a_server_error(fuzz_client, url, data, with_number):
    client = fuzz_client()
    if with_number:
        session = client.session
        session["sms_mobile_login"] = session["sms_mobile_reset"] = ALICE
        session.save()
    data = {k: v.replace("\x00", "") for k, v in data.items()}
    assert client.post(url, data).status_code < 500
    assert client.get(url, {k: v for k, v in data.items() if k == "next"}).status_code < 500
