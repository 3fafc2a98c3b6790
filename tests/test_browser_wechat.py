"""In Debian's Chromium with WeChat's user agent on a 375 px phone, against the WeChat stand-in
(tests/wechat_standins.py) and the console SMS backend: ``jiandu04`` opens the login page (WeChat
does not know them yet: back to the login page, once, with a word), signs in by SMS code, binds
WeChat in 设置, and on the next visit — a new browser without the session cookie, the same
WeChat authorising the same openid — is signed in without typing anything.

Screenshots go to ``screenshots/wechat-*.png`` (git-ignored; WECHAT_SHOTS overrides the folder).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from accounts.models import WeChatBinding

from .factories import make_supervisor, make_world
from .wechat_standins import WeChatStandIn

pytestmark = pytest.mark.browser

SHOTS = Path(
    os.environ.get("WECHAT_SHOTS") or Path(__file__).resolve().parent.parent / "screenshots"
)
WECHAT = (
    "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160083 "
    "MMWEBSDK/20231202 MMWEBID/4939 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 "
    "Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)
MOBILE = "13957700004"
OPENID = "oJ4Vd5Yk_jiandu04_standin_0001"


@pytest.fixture
def phone(browser_instance):
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
def stand_in(transactional_db, settings):
    with WeChatStandIn(OPENID) as wx:
        wx.configure(settings)
        settings.SMS_BACKEND = "console"
        yield wx


@pytest.fixture
def jiandu04(stand_in):
    world = make_world()
    user = make_supervisor("jiandu04", world.project.neighbourhood, [world.project])
    user.mobile = MOBILE
    user.display_name = "林阿姨"
    user.save(update_fields=["mobile", "display_name"])
    return user


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"wechat-{name}.png"), full_page=True)


def fits(page, width: int) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= width


def test_jiandu04_signs_in_by_sms_binds_wechat_and_is_signed_in_next_time(
    jiandu04, stand_in, live_server, phone, capsys
):
    base = live_server.url
    page = phone(375)
    taps = 0

    def tap(selector: str) -> None:
        nonlocal taps
        taps += 1
        page.tap(selector)

    # WeChat does not know this openid yet: one silent round trip, back to the login page.
    page.goto(f"{base}/accounts/login/")
    page.wait_for_url(re.compile(r".*/accounts/login/\?wechat=0.*"))
    assert "这个微信还没有绑定账号" in page.inner_text("main")
    assert stand_in.paths().count("/connect/oauth2/authorize") == 1
    shot(page, "01-login-not-bound")

    tap("[data-sms-login]")
    page.wait_for_url("**/accounts/login/sms/**")
    page.keyboard.type(MOBILE)
    tap("[data-sms-send]")
    page.wait_for_url("**/accounts/login/sms/code/")
    code = re.findall(r"验证码 (\d{6})", capsys.readouterr().out)[-1]
    page.keyboard.type(code)
    tap("[data-sms-submit]")
    page.wait_for_url("**/me/")
    assert taps == 3  # SMS sign-in: three taps plus typing the number and the code
    assert page.get_attribute("body", "data-user") == str(jiandu04.pk)

    # 设置 → 「绑定微信」: one tap, WeChat authorises silently, back in 设置.
    page.goto(f"{base}/me/settings/")
    assert fits(page, 375)
    shot(page, "02-settings-before")
    taps = 0
    tap("[data-wechat-bind]")
    page.wait_for_selector("[data-wechat-bound]")
    assert taps == 1
    assert "已绑定微信。以后在微信里打开本站会自动登录。" in page.inner_text("main")
    assert WeChatBinding.objects.get().user == jiandu04
    assert page.is_visible("[data-message-choices]")  # 消息提醒 appears once bound
    assert fits(page, 375)
    shot(page, "03-settings-bound")

    # The next visit: a new browser (no session cookie), the same WeChat, nothing to type.
    later = phone(375)
    later.goto(f"{base}/me/")
    # (The browser keeps the authorize URL's #wechat_redirect through the redirects back.)
    later.wait_for_url(re.compile(rf"^{re.escape(base)}/me/(#wechat_redirect)?$"))
    assert later.get_attribute("body", "data-user") == str(jiandu04.pk)
    assert "林阿姨，您好" in later.inner_text("main")
    assert later.is_visible("nav.tabbar")
    shot(later, "04-next-visit-signed-in")
    assert OPENID not in later.content()


def test_settings_with_wechat_fit_a_320_px_phone_and_unbinding_works(
    jiandu04, stand_in, live_server, phone
):
    base = live_server.url
    page = phone(320)
    context = page.context
    # Signed in as the SMS flow would leave it (its own test above covers the taps).
    from django.test import Client  # noqa: PLC0415

    client = Client()
    client.force_login(jiandu04)
    context.add_cookies(
        [
            {
                "name": "sessionid",
                "value": client.cookies["sessionid"].value,
                "url": base,
            }
        ]
    )
    page.goto(f"{base}/me/settings/")
    page.tap("[data-wechat-bind]")
    page.wait_for_selector("[data-wechat-bound]")
    assert fits(page, 320)
    checkbox = page.locator("input[name=wechat][value=rectified]")
    assert checkbox.is_checked()
    page.locator("input[name=wechat][value=accepted]").locator("xpath=..").tap()
    page.tap("[data-message-save]")
    page.wait_for_selector("text=消息提醒已保存。")
    assert not page.locator("input[name=wechat][value=accepted]").is_checked()
    assert fits(page, 320)
    shot(page, "05-320-choices-saved")
    page.tap("[data-wechat-unbind]")
    page.wait_for_selector("[data-wechat-bind]")
    assert "已解除微信绑定" in page.inner_text("main")
    assert not WeChatBinding.objects.exists()
    shot(page, "06-320-unbound")
