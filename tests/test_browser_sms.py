"""In Debian's Chromium, inside WeChat's browser (its user agent) on a 375 px phone: a supervisor
signs in by SMS code (console backend) in three taps plus typing, and the pages fit 320 px.

Screenshots go to ``screenshots/sms-*.png`` (git-ignored; SMS_SHOTS overrides the folder).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import F

from accounts.models import SmsCode

from .factories import make_supervisor, make_world

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("SMS_SHOTS") or Path(__file__).resolve().parent.parent / "screenshots")
WECHAT = (
    "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160083 "
    "MMWEBSDK/20231202 MMWEBID/4939 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 "
    "Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)
MOBILE = "13957700004"


@pytest.fixture
def wechat(browser_instance):
    def open_page(width: int = 375):
        context = browser_instance.new_context(
            viewport={"width": width, "height": 760},
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            user_agent=WECHAT,
        )
        contexts.append(context)
        return context.new_page()

    contexts: list = []
    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def jiandu04(transactional_db, settings):
    settings.SMS_BACKEND = "console"
    world = make_world()
    user = make_supervisor("jiandu04", world.project.neighbourhood, [world.project])
    user.mobile = MOBILE
    user.display_name = "林阿姨"
    user.save(update_fields=["mobile", "display_name"])
    return user


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"sms-{name}.png"), full_page=True)


def fits(page, width: int) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= width


def test_supervisor_signs_in_by_sms_code_in_three_taps(jiandu04, live_server, wechat, capsys):
    page = wechat(375)
    taps = 0

    def tap(selector: str) -> None:
        nonlocal taps
        taps += 1
        page.tap(selector)

    page.goto(f"{live_server.url}/accounts/login/")
    assert page.is_visible("text=短信验证码登录")
    assert page.is_visible("text=忘记密码？用短信验证码重设")
    shot(page, "01-login-page")

    tap("[data-sms-login]")
    page.wait_for_url("**/accounts/login/sms/")
    assert page.evaluate("document.activeElement.name") == "mobile"  # no tap to start typing
    assert page.get_attribute("input[name=mobile]", "inputmode") == "numeric"
    page.keyboard.type(MOBILE)
    shot(page, "02-number")
    tap("[data-sms-send]")
    page.wait_for_url("**/accounts/login/sms/code/")
    assert "验证码短信已发送到 139 5770 0004，5 分钟内有效。" in page.inner_text("[data-sms-sent]")
    assert page.evaluate("document.activeElement.name") == "code"
    assert page.get_attribute("input[name=code]", "autocomplete") == "one-time-code"
    code = re.findall(r"验证码 (\d{6})", capsys.readouterr().out)[-1]

    # A typo first: the error sits under the field and the page keeps what was typed.
    page.keyboard.type("12345")
    page.keyboard.press("Enter")
    page.wait_for_selector("#id_code_error")
    assert page.inner_text("#id_code_error") == "请输入短信里的 6 位数字。"
    assert page.input_value("input[name=code]") == "12345"
    shot(page, "03-code-typo")
    page.fill("input[name=code]", "")

    page.focus("input[name=code]")
    page.keyboard.type(code)
    shot(page, "04-code")
    tap("[data-sms-submit]")
    page.wait_for_url("**/me/")
    assert taps == 3
    shot(page, "05-signed-in")
    assert page.is_visible("nav.tabbar")  # the supervisor's bottom tab bar
    assert "我要反映" in page.inner_text("nav.tabbar")
    assert "林阿姨，您好" in page.inner_text("main")
    assert page.get_attribute("body", "data-user") == str(jiandu04.pk)


def test_sms_pages_fit_a_320_px_phone_and_say_when_sending_is_refused(
    jiandu04, live_server, wechat
):
    page = wechat(320)
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    assert fits(page, 320)
    page.goto(f"{base}/accounts/login/sms/")
    assert fits(page, 320)
    page.fill("input[name=mobile]", "1395770")
    page.tap("[data-sms-send]")
    page.wait_for_selector("#id_mobile_error")
    assert page.inner_text("#id_mobile_error") == "请输入 11 位手机号码。"
    assert page.input_value("input[name=mobile]") == "1395770"
    assert fits(page, 320)
    shot(page, "06-320-bad-number")
    page.fill("input[name=mobile]", MOBILE)
    page.tap("[data-sms-send]")
    page.wait_for_url("**/accounts/login/sms/code/")
    assert fits(page, 320)
    page.tap("[data-sms-resend]")  # within 60 s
    page.wait_for_selector("[data-resend-error]")
    assert "秒后再重新获取" in page.inner_text("[data-resend-error]")
    shot(page, "07-320-resend-too-soon")
    height = page.evaluate("document.querySelector('[data-sms-submit]').offsetHeight")
    assert height >= 44  # a big target

    # A minute later: a new password by SMS code; a weak one is refused next to its field.
    SmsCode.objects.update(created_at=F("created_at") - timedelta(seconds=61))
    page.goto(f"{base}/accounts/password/reset/")
    page.fill("input[name=mobile]", MOBILE)
    page.tap("[data-sms-send]")
    page.wait_for_url("**/accounts/password/reset/code/")
    page.fill("input[name=code]", "000000")
    page.fill("input[name=new_password1]", "123")
    page.fill("input[name=new_password2]", "123")
    page.tap("[data-sms-submit]")
    page.wait_for_selector(".invalid-feedback")
    assert page.input_value("input[name=code]") == "000000"
    assert fits(page, 320)
    shot(page, "08-320-reset-errors")
