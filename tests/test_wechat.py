"""WeChat sign-in (snsapi_base) and 消息提醒 by WeChat template message or SMS (accounts/wechat.py,
accounts/wechat_views.py, supervision/outbound.py), against a stand-in of WeChat on 127.0.0.1
(tests/wechat_standins.py) and the SMS stand-ins. Alice is a supervisor (13957700004) and the
reporter of the world's issues; the handler is department staff, bob another supervisor."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import urllib.request
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts import wechat
from accounts.models import MessageChoices, WeChatBinding
from supervision import deliveries, notifications, outbound, services
from supervision.models import Delivery, IssueEvent

from .factories import image_file, make_user
from .sms_standins import StandIn
from .test_audit import audit_lines  # noqa: F401  (the fixture)
from .wechat_standins import APP_ID, WeChatStandIn

OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
OTHER_OPENID = "o6_bmjrPTlm6_XXXXOTHERXXXXXXX"
ALICE = "13957700004"
UA = (
    "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160083 "
    "MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN"
)
WECHAT_URLS = (
    "/accounts/wechat/login/",
    "/accounts/wechat/callback/",
    "/me/wechat/bind/",
    "/me/wechat/unbind/",
    "/me/messages/",
)
Kind = IssueEvent.Kind


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    cache.delete(wechat.TOKEN_KEY)


@pytest.fixture
def people(world):
    world.alice.mobile = ALICE
    world.alice.save(update_fields=["mobile"])
    return world


@pytest.fixture
def wx(settings):
    with WeChatStandIn(OPENID) as stand_in:
        stand_in.configure(settings)
        yield stand_in


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def in_wechat() -> Client:
    return Client(HTTP_USER_AGENT=UA)


def through_wechat(client: Client, response):
    """Follow a redirect to the stand-in's authorize page (as WeChat's browser would) and come
    back to the callback: the callback's response."""
    assert response.status_code == 302, response
    location = response["Location"]
    assert location.endswith("#wechat_redirect")

    class NoFollow(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoFollow)
    try:
        opener.open(location.removesuffix("#wechat_redirect"), timeout=5)
    except urllib.error.HTTPError as answer:
        assert answer.code == 302
        back = answer.headers["Location"]
    else:  # pragma: no cover
        raise AssertionError("the stand-in did not redirect")
    parts = urlsplit(back)
    assert parts.path == "/accounts/wechat/callback/"
    return client.get(f"{parts.path}?{parts.query}")


def bind_alice(people, wx) -> Client:
    client = Client()
    client.force_login(people.alice)
    done = through_wechat(client, client.get("/me/wechat/bind/"))
    assert done.status_code == 302 and done["Location"] == "/me/settings/"
    return client


def signed_in(client) -> str | None:
    return client.session.get("_auth_user_id")


# --- off by default ----------------------------------------------------------------------------


def test_wechat_is_off_by_default_no_button_no_redirect_no_connections(people, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to connect")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    client = in_wechat()
    assert client.get("/accounts/login/").status_code == 200  # no redirect to WeChat
    for url in WECHAT_URLS:
        assert client.get(url).status_code in (404, 302), url  # 302: log in first
    client.force_login(people.alice)
    page = client.get("/me/settings/").content.decode()
    assert "微信" not in page and "消息提醒" not in page
    for url in WECHAT_URLS:
        assert client.get(url).status_code in (404, 405), url
        assert client.post(url, {"wechat": "accepted"}).status_code in (404, 405), url
    assert outbound.chosen_channels(people.alice, "accepted") == []
    assert not WeChatBinding.objects.exists()


# --- binding and unbinding ---------------------------------------------------------------------


def test_supervisor_binds_and_unbinds_wechat_and_the_openid_is_never_stored_plain(people, wx):
    client = Client()
    client.force_login(people.alice)
    page = client.get("/me/settings/").content.decode()
    assert 'href="/me/wechat/bind/"' in page and "绑定微信" in page
    start = client.get("/me/wechat/bind/")
    query = parse_qs(urlsplit(start["Location"]).query)
    assert start["Location"].startswith(f"{wx.url}/connect/oauth2/authorize?")
    assert query["appid"] == [APP_ID] and query["scope"] == ["snsapi_base"]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["http://testserver/accounts/wechat/callback/"]
    assert query["state"][0].isalnum() and len(query["state"][0]) == 64
    done = through_wechat(client, start)
    assert done["Location"] == "/me/settings/"
    binding = WeChatBinding.objects.get(user=people.alice)
    assert OPENID not in binding.openid_digest and OPENID not in binding.openid_sealed
    assert wechat.unseal(binding.openid_sealed) == OPENID
    assert wechat.openid_of(people.alice) == OPENID
    page = client.get("/me/settings/").content.decode()
    assert "已绑定微信" in page and "解除绑定" in page and OPENID not in page
    assert "以后在微信里打开本站会自动登录" in page

    gone = client.post("/me/wechat/unbind/")
    assert gone.status_code == 302 and gone["Location"] == "/me/settings/"
    assert not WeChatBinding.objects.exists()
    assert "已解除微信绑定" in client.get("/me/settings/").content.decode()
    assert client.get("/me/wechat/unbind/").status_code == 405


def test_one_wechat_binds_one_account(people, wx):
    bind_alice(people, wx)
    client = Client()
    client.force_login(people.bob)
    refused = through_wechat(client, client.get("/me/wechat/bind/"))
    assert refused["Location"] == "/me/settings/"
    assert "这个微信已绑定其他账号" in client.get("/me/settings/").content.decode()
    assert list(WeChatBinding.objects.values_list("user__username", flat=True)) == ["alice"]


def test_binding_again_replaces_the_old_wechat(people, wx):
    bind_alice(people, wx)
    wx.openid = OTHER_OPENID
    bind_alice(people, wx)
    assert wechat.openid_of(people.alice) == OTHER_OPENID
    assert WeChatBinding.objects.count() == 1


@pytest.mark.parametrize("who", ["handler", "builder", "bureau"])
def test_staff_cannot_bind(people, wx, who):
    client = Client()
    user = getattr(people, who)
    client.force_login(user)
    page = client.get("/me/settings/").content.decode()
    assert "/me/wechat/bind/" not in page and "工作人员账号不能绑定微信" in page
    assert client.get("/me/wechat/bind/").status_code == 403
    with pytest.raises(wechat.WeChatRefused):
        wechat.bind(user, OPENID)
    assert not WeChatBinding.objects.exists()
    assert wx.paths() == []


def test_superuser_and_oversight_cannot_bind(people, wx):
    admin = make_user("root", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(admin)
    assert client.get("/me/wechat/bind/").status_code == 403
    assert not wechat.may_bind(admin)


def test_a_binding_started_by_one_account_cannot_finish_in_another(people, wx):
    client = Client()
    client.force_login(people.alice)
    start = client.get("/me/wechat/bind/")
    client.force_login(people.bob)  # another account in the same browser meanwhile
    done = through_wechat(client, start)
    assert done.status_code == 302 and not WeChatBinding.objects.exists()


# --- signing in inside WeChat ------------------------------------------------------------------


def test_bound_supervisor_is_signed_in_automatically_on_the_next_visit(people, wx, audit_lines):  # noqa: F811
    bind_alice(people, wx)
    client = in_wechat()
    me = client.get("/me/")
    assert me.status_code == 302 and me["Location"] == "/accounts/login/?next=/me/"
    login_page = client.get(me["Location"])
    assert login_page["Location"] == "/accounts/wechat/login/?next=%2Fme%2F"
    done = through_wechat(client, client.get(login_page["Location"]))
    assert done.status_code == 302 and done["Location"] == "/me/"
    assert signed_in(client) == str(people.alice.pk)
    assert client.get("/me/").status_code == 200
    assert WeChatBinding.objects.get().last_login_at is not None
    records = [json.loads(line) for line in audit_lines().splitlines()]
    ok = [r for r in records if r["event"] == "wechat login ok"]
    assert ok and ok[0]["account"] == "alice"


def test_outside_wechat_the_login_page_stays(people, wx):
    bind_alice(people, wx)
    assert Client().get("/accounts/login/").status_code == 200
    assert wx.paths().count("/connect/oauth2/authorize") == 1  # the binding only


def test_signed_in_person_is_not_sent_to_wechat(people, wx):
    client = in_wechat()
    client.force_login(people.alice)
    assert client.get("/accounts/wechat/login/")["Location"] == "/me/"


def test_wrong_state_is_refused_and_falls_back_to_the_login_page(people, wx, audit_lines):  # noqa: F811
    bind_alice(people, wx)
    traded = wx.paths().count("/sns/oauth2/access_token")
    client = in_wechat()
    start = client.get("/accounts/wechat/login/?next=/issues/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    forged = "0" * len(state)
    refused = client.get(f"/accounts/wechat/callback/?code=abc&state={forged}")
    assert refused.status_code == 302
    assert refused["Location"] == "/accounts/login/?wechat=0&next=%2Fissues%2F"
    assert signed_in(client) is None
    assert wx.paths().count("/sns/oauth2/access_token") == traded  # the code was never traded
    page = client.get(refused["Location"])
    assert page.status_code == 200 and "微信登录没有完成，请用密码或短信验证码登录" in (
        page.content.decode()
    )
    # Remembered: the login page does not send the person round again.
    assert client.get("/accounts/login/").status_code == 200
    records = [json.loads(line) for line in audit_lines().splitlines()]
    assert any(
        r["event"] == "wechat auth refused" and r["reason"] == "wrong state" for r in records
    )


def test_a_callback_works_once(people, wx):
    bind_alice(people, wx)
    client = in_wechat()
    start = client.get("/accounts/wechat/login/")
    done = through_wechat(client, start)
    assert signed_in(client) == str(people.alice.pk)
    client.logout()
    replay = client.get(done.request["PATH_INFO"] + "?" + done.request["QUERY_STRING"])
    assert replay.status_code == 302 and replay["Location"].startswith("/accounts/login/?wechat=0")
    assert signed_in(client) is None


def test_callback_without_a_pending_state_is_refused(people, wx):
    client = in_wechat()
    refused = client.get("/accounts/wechat/callback/?code=abc&state=abc")
    assert refused["Location"] == "/accounts/login/?wechat=0"
    assert client.get("/accounts/login/").status_code == 200


def test_cancelled_authorisation_falls_back(people, wx):
    bind_alice(people, wx)
    wx.cancel = True
    client = in_wechat()
    refused = through_wechat(client, client.get(client.get("/accounts/login/")["Location"]))
    assert refused["Location"] == "/accounts/login/?wechat=0"
    assert signed_in(client) is None


def test_provider_error_falls_back_with_a_message(people, wx, audit_lines):  # noqa: F811
    client = in_wechat()
    start = client.get("/accounts/wechat/login/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    refused = client.get(f"/accounts/wechat/callback/?code=not-a-code&state={state}")
    assert refused["Location"] == "/accounts/login/?wechat=0"
    assert "微信暂时无法登录" in client.get(refused["Location"]).content.decode()
    assert "errcode 40029" in audit_lines()


def test_unbound_wechat_is_told_to_sign_in_and_bind(people, wx):
    client = in_wechat()
    first = client.get("/accounts/login/")
    done = through_wechat(client, client.get(first["Location"]))
    assert done["Location"] == "/accounts/login/?wechat=0"
    assert "这个微信还没有绑定账号" in client.get(done["Location"]).content.decode()
    assert client.get("/accounts/login/").status_code == 200  # once only


def test_no_loop_without_cookies(people, wx):
    """A browser that keeps no cookie: the failure's ?wechat=0 stops the round trip."""
    client = in_wechat()
    assert client.get("/accounts/login/?wechat=0").status_code == 200


def test_a_bound_account_made_staff_no_longer_signs_in_by_wechat(people, wx):
    bind_alice(people, wx)
    people.alice.role = "staff"
    people.alice.department = people.office
    people.alice.save(update_fields=["role", "department"])
    client = in_wechat()
    done = through_wechat(client, client.get("/accounts/wechat/login/"))
    assert done["Location"].startswith("/accounts/login/?wechat=0") and signed_in(client) is None


def test_a_locked_account_or_address_is_not_signed_in_by_wechat(people, wx, settings):
    bind_alice(people, wx)
    settings.LOGIN_FAILURES_PER_IP = 0  # this address has used up its failed logins
    client = in_wechat()
    refused = through_wechat(client, client.get("/accounts/wechat/login/"))
    assert refused.status_code == 429 and signed_in(client) is None


def test_openid_is_found_under_an_old_key_while_rotating(people, wx, settings):
    bind_alice(people, wx)
    old = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-key-" + "x" * 40, [old]
    assert wechat.binding_for_openid(OPENID).user == people.alice
    assert wechat.openid_of(people.alice) == OPENID


# --- 消息提醒: choices, deliveries, retries ----------------------------------------------------


def issue_events(people, committed, *steps, hooked: bool = False):
    """The events of ``steps`` on a new issue, committed; the notification hook's own WeChat
    and SMS queueing held back (``queue`` below does it where a test looks), unless
    ``hooked``."""
    issue = people.submit()
    events = []
    for step in steps:
        held = (
            contextlib.nullcontext()
            if hooked
            else mock.patch.object(outbound, "queue_event_messages", return_value=[])
        )
        with held, committed():
            if step == "accept":
                services.accept_issue(issue, actor=people.handler)
            elif step == "answer":
                services.answer_issue(issue, actor=people.handler, text="按规范答复。")
            elif step == "rectify":
                services.rectify_issue(
                    issue, actor=people.handler, text="已重新涂刷。", photos=[image_file()]
                )
        issue.refresh_from_db()
        events.append(IssueEvent.objects.filter(issue=issue).latest("created_at", "pk"))
    return events


def queue(event) -> list[Delivery]:
    return outbound.queue_event_messages(event, notifications.recipients(event))


def test_signed_for_issue_reaches_the_reporter_by_wechat(people, wx, committed):
    bind_alice(people, wx)
    (accepted,) = issue_events(people, committed, "accept")
    made = queue(accepted)
    assert [(d.channel, d.target) for d in made] == [("wechat", "alice · 微信")]
    assert queue(accepted) == []  # handled once
    delivery = made[0]
    assert OPENID not in delivery.body and OPENID not in delivery.target
    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.SENT
    (message,) = wx.sent
    assert message["touser"] == OPENID and message["template_id"] == "TPL-standin-0001"
    assert message["url"].endswith(f"/issues/{accepted.issue_id}/")
    assert message["data"]["first"]["value"] == "您反映的问题已签收"
    assert accepted.issue.reference in message["data"]["keyword1"]["value"]


def test_a_step_queues_the_reporters_wechat_message_through_the_notifications(
    people, wx, committed
):
    bind_alice(people, wx)
    (accepted,) = issue_events(people, committed, "accept", hooked=True)
    made = Delivery.objects.filter(channel=Delivery.Channel.WECHAT)
    assert [(d.channel, d.target) for d in made] == [("wechat", "alice · 微信")]
    assert queue(accepted) == []  # the notification hook queued it already: once


def test_rectified_says_please_check_and_staff_get_no_wechat(people, wx, committed):
    bind_alice(people, wx)
    accepted, rectified = issue_events(people, committed, "accept", "rectify")
    made = queue(rectified)
    assert len(made) == 1 and made[0].subject.startswith("您反映的问题已整改，请去验收")
    # The submission, heard by staff only, gives no WeChat message to anybody.
    submitted = IssueEvent.objects.get(issue=accepted.issue, kind=Kind.SUBMITTED)
    assert queue(submitted) == []


def test_message_retried_after_500_and_errcode_then_delivered(people, wx, committed):
    bind_alice(people, wx)
    wx.send_script = [500, "45009"]
    (accepted,) = issue_events(people, committed, "accept")
    (delivery,) = queue(accepted)
    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.PENDING
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_error) == (1, "HTTP 500")
    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.PENDING
    delivery.refresh_from_db()
    assert delivery.last_error == "errcode 45009"
    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.SENT
    assert len(wx.sent) == 1 and wx.tokens_issued == 1  # the token was cached


def test_message_given_up_after_three_tries(people, wx, committed):
    bind_alice(people, wx)
    wx.send_script = [500, 500, 500, 500]
    (accepted,) = issue_events(people, committed, "accept")
    (delivery,) = queue(accepted)
    for _ in range(3):
        deliveries.deliver.call(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 3, "HTTP 500")
    assert deliveries.deliver.call(delivery.pk) == "gone" and wx.sent == []


def test_a_stale_access_token_is_dropped_and_fetched_again(people, wx, committed):
    bind_alice(people, wx)
    (accepted,) = issue_events(people, committed, "accept")
    (delivery,) = queue(accepted)
    cache.set(wechat.TOKEN_KEY, "expired-token", 60)
    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.PENDING
    delivery.refresh_from_db()
    assert delivery.last_error == "errcode 40001" and cache.get(wechat.TOKEN_KEY) is None
    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.SENT


def test_the_token_is_cached_until_shortly_before_it_expires(wx, monkeypatch):
    seen = {}
    real_set = cache.set

    def spy(key, value, timeout=None, *args, **kwargs):
        seen[key] = timeout
        return real_set(key, value, timeout, *args, **kwargs)

    monkeypatch.setattr(cache, "set", spy)
    token = wechat.access_token()
    assert wechat.access_token() == token and wx.tokens_issued == 1
    assert seen[wechat.TOKEN_KEY] == 7200 - wechat.TOKEN_MARGIN


def test_each_person_chooses_their_channels(people, wx, settings, committed, capsys):
    settings.SMS_BACKEND = "console"
    bind_alice(people, wx)
    client = Client()
    client.force_login(people.alice)
    page = client.get("/me/settings/").content.decode()
    assert "消息提醒" in page and 'name="sms"' in page and 'name="wechat"' in page
    saved = client.post("/me/messages/", {"wechat": ["rectified"], "sms": ["accepted"]})
    assert saved.status_code == 302 and saved["Location"] == "/me/settings/"
    row = MessageChoices.objects.get(user=people.alice)
    assert (row.wechat, row.sms) == (["rectified"], ["accepted"])

    accepted, answered = issue_events(people, committed, "accept", "answer")
    assert [d.channel for d in queue(accepted)] == ["sms"]
    assert queue(answered) == []
    (sms_delivery,) = Delivery.objects.filter(channel="sms")
    assert sms_delivery.target == "alice · 139****0004" and ALICE not in sms_delivery.body
    assert deliveries.deliver.call(sms_delivery.pk) == Delivery.Status.SENT
    printed = capsys.readouterr().out
    assert "139****0004" in printed and ALICE not in printed and "您反映的问题已签收" in printed

    _accepted, rectified = issue_events(people, committed, "accept", "rectify")
    assert [d.channel for d in queue(rectified)] == ["wechat"]

    # Nothing chosen: in-app only.
    client.post("/me/messages/", {})
    assert MessageChoices.objects.get(user=people.alice).wechat == []
    assert outbound.chosen_channels(people.alice, "rectified") == []


def test_choices_refuse_unknown_events_and_staff(people, wx, settings):
    settings.SMS_BACKEND = "console"
    bind_alice(people, wx)
    client = Client()
    client.force_login(people.alice)
    bad = client.post("/me/messages/", {"wechat": ["everything"]})
    assert bad.status_code == 400 and "请从列出的事项里选择" in bad.content.decode()
    assert not MessageChoices.objects.exists()
    client.force_login(people.handler)
    assert client.post("/me/messages/", {"wechat": ["accepted"]}).status_code == 403


def test_a_waiting_letter_is_sent_to_who_chose_it(people, wx, settings):
    bind_alice(people, wx)
    from supervision.letters import send_letter  # noqa: PLC0415

    letter = send_letter(
        project=people.project,
        summary="楼道堆满装修垃圾",
        details="3 幢楼道堆满装修垃圾，老人进出不便。",
        sender_address="10.1.2.3",
    )
    (delivery,) = outbound.queue_letter_messages(letter, [people.alice, people.handler])
    assert delivery.target == "alice · 微信"
    assert deliveries.deliver.call(delivery.pk) == Delivery.Status.SENT
    assert wx.sent[0]["data"]["first"]["value"] == "有居民来信等您处理"
    assert wx.sent[0]["url"].endswith(f"/me/letters/{letter.pk}/")


def test_sms_notice_through_a_provider_is_retried_and_given_up(people, settings, committed):
    with StandIn("aliyun", mode="error") as stand_in:
        settings.SMS_BACKEND = "aliyun"
        settings.SMS_TEMPLATE = "SMS_000001"
        settings.SMS_NOTICE_TEMPLATE = "SMS_000002"
        settings.SMS_TIMEOUT = 1
        settings.SMS_ALIYUN_ACCESS_KEY_ID = "LTAI-test"
        settings.SMS_ALIYUN_ACCESS_KEY_SECRET = "secret"
        settings.SMS_ALIYUN_ENDPOINT = stand_in.url
        MessageChoices.objects.create(user=people.alice, wechat=[], sms=["accepted"])
        (accepted,) = issue_events(people, committed, "accept")
        (delivery,) = queue(accepted)
        assert deliveries.deliver.call(delivery.pk) == Delivery.Status.PENDING
        stand_in.mode = "ok"
        assert deliveries.deliver.call(delivery.pk) == Delivery.Status.SENT
        sent = stand_in.requests[-1].params
        assert sent["TemplateCode"] == "SMS_000002" and sent["PhoneNumbers"] == ALICE
        assert json.loads(sent["TemplateParam"]) == {
            "ref": accepted.issue.reference,
            "what": "您反映的问题已签收",
        }
        stand_in.mode = "error"
        other = Delivery.objects.create(
            channel="sms", target="alice · 139****0004", subject="x", body=delivery.body
        )
        for _ in range(3):
            deliveries.deliver.call(other.pk)
        other.refresh_from_db()
        assert other.status == "failed" and other.attempts == 3


# --- no openid, no number in any log ------------------------------------------------------------


def test_no_openid_and_no_number_in_any_log(
    people,
    wx,
    settings,
    committed,
    caplog,
    capsys,
    audit_lines,  # noqa: F811
):
    caplog.set_level(logging.DEBUG)
    settings.SMS_BACKEND = "console"
    bind_alice(people, wx)
    MessageChoices.objects.create(user=people.alice, wechat=["accepted"], sms=["accepted"])
    client = in_wechat()
    through_wechat(client, client.get("/accounts/wechat/login/"))  # signs in
    bad = in_wechat()
    bad.get("/accounts/wechat/login/")
    bad.get("/accounts/wechat/callback/?code=x&state=y")  # refused
    wx.send_script = [500, 500, 500]
    (accepted,) = issue_events(people, committed, "accept")
    for delivery in queue(accepted):
        for _ in range(3):
            deliveries.deliver.call(delivery.pk)
    assert Delivery.objects.filter(channel="wechat", status="failed").exists()
    client.force_login(people.alice)
    client.post("/me/wechat/unbind/")
    captured = capsys.readouterr()
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records) + audit_lines()
    assert "wechat bound" in logged and "wechat login ok" in logged and "failed after" in logged
    for secret in (OPENID, ALICE):
        assert secret not in logged
        assert secret not in captured.out and secret not in captured.err
    for row in Delivery.objects.values("target", "subject", "body", "last_error"):
        assert OPENID not in str(row) and ALICE not in str(row)


# --- no input gives a server error ---------------------------------------------------------------

TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["", "accepted", "rectified", "letter", "0" * 64, "/issues/", "//evil.example"]
    ),
)


@pytest.fixture
def fuzz_world(people, wx, settings):
    settings.SMS_BACKEND = "console"
    return people


@hypothesis_settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    url=st.sampled_from(WECHAT_URLS),
    data=st.dictionaries(
        st.sampled_from(["wechat", "sms", "code", "state", "next", "wechat_x"]),
        st.one_of(TEXT, st.lists(TEXT, max_size=4)),
        max_size=4,
    ),
    who=st.sampled_from([None, "alice", "handler", "bureau"]),
    pending=st.booleans(),
)
def test_no_input_gives_a_server_error(fuzz_world, url, data, who, pending):
    client = in_wechat()
    if who:
        client.force_login(getattr(fuzz_world, who))
    if pending:
        session = client.session
        session[wechat.PENDING] = {"nonce": "n", "purpose": "bind", "at": 0, "user": 1}
        session.save()

    def clean(value):
        if isinstance(value, list):
            return [v.replace("\x00", "") for v in value]
        return value.replace("\x00", "")

    data = {k: clean(v) for k, v in data.items()}
    assert client.post(url, data).status_code < 500
    assert client.get(url, data).status_code < 500
