"""The WeChat pages (accounts.wechat) and the message choices of 设置 (消息提醒).

All WeChat pages answer 404 while WeChat is off; 消息提醒 answers 404 while neither WeChat
messages nor SMS is configured. Starting an authorisation is a GET (the link 「绑定微信」, the
login page's redirect): the site's CSP allows forms to post only to itself, and a form's redirect
to WeChat would be blocked; what binds is the callback, which checks the state in the session.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from supervision.security import client_ip, safe_next

from . import sms, wechat
from .limits import account_locked, address_limited, refuse
from .models import MessageChoices, WeChatBinding
from .views import landing_url

BACKEND = "accounts.backends.UsernameOrMobileBackend"
Event = MessageChoices.Event


def _require_wechat() -> None:
    if not wechat.wechat_enabled():
        raise Http404


def _fallback(
    request: HttpRequest, refused: wechat.WeChatRefused, next_url: str = ""
) -> HttpResponse:
    """Back to the password login (or to 设置 for a binding) with the reason, never round again."""
    wechat.audit.warning(
        "wechat auth refused ip=%s purpose=%s reason=%s",
        client_ip(request),
        refused.purpose,
        refused.reason,
    )
    messages.error(request, refused.message)
    if refused.purpose == wechat.BIND and request.user.is_authenticated:
        return redirect("settings")
    request.session[wechat.DECLINED] = True
    query = {"wechat": "0"} | ({"next": next_url} if next_url else {})
    return redirect(f"{reverse('login')}?{urlencode(query)}")


@never_cache
@require_safe
def wechat_login(request: HttpRequest) -> HttpResponse:
    """/accounts/wechat/login/: off to WeChat's silent authorisation, back at the callback."""
    _require_wechat()
    if request.user.is_authenticated:
        return redirect(landing_url(request.user))
    next_url = safe_next(request, request.GET.get("next"), "")
    return redirect(wechat.begin(request, wechat.LOGIN, next_url))


@login_required
@never_cache
@require_safe
def wechat_bind(request: HttpRequest) -> HttpResponse:
    """/me/wechat/bind/: the link 「绑定微信」 in 设置 (supervisors only)."""
    _require_wechat()
    if not wechat.may_bind(request.user):
        raise PermissionDenied(_("工作人员账号不能绑定微信。"))
    return redirect(wechat.begin(request, wechat.BIND))


@login_required
@never_cache
@require_POST
def wechat_unbind(request: HttpRequest) -> HttpResponse:
    """/me/wechat/unbind/: 「解除绑定」."""
    _require_wechat()
    if wechat.unbind(request.user):
        messages.success(request, _("已解除微信绑定。在微信里打开时需要重新登录。"))
    return redirect("settings")


@never_cache
@require_safe
def wechat_callback(request: HttpRequest) -> HttpResponse:
    """/accounts/wechat/callback/: WeChat sends the person back here with ``code`` and
    ``state``."""
    _require_wechat()
    pending_next = ""
    pending = request.session.get(wechat.PENDING)
    if isinstance(pending, dict):
        pending_next = safe_next(request, str(pending.get("next") or ""), "")
    try:
        pending, openid = wechat.finish(request)
        if pending["purpose"] == wechat.BIND:
            if not request.user.is_authenticated or pending.get("user") != request.user.pk:
                raise wechat.WeChatRefused(
                    "bind without its account", wechat.failed(), wechat.LOGIN
                )
            wechat.bind(request.user, openid)
            messages.success(request, _("已绑定微信。以后在微信里打开本站会自动登录。"))
            return redirect("settings")
        user = wechat.user_for_openid(openid)
        if user is None:
            raise wechat.WeChatRefused(
                "not bound",
                _(
                    "这个微信还没有绑定账号。请先用密码或短信验证码登录，"
                    "再在「我的 · 设置」里绑定微信。"
                ),
            )
    except wechat.WeChatRefused as refused:
        return _fallback(request, refused, pending_next)
    # The limits of every other way in (accounts.limits): the address, then the account.
    if address_limited(request):
        return refuse(request, user.username, "address")
    if account_locked(request, user.username):
        return refuse(request, user.username, "account")
    if request.user.is_authenticated and request.user.pk != user.pk:
        from django.contrib.auth import logout  # noqa: PLC0415

        logout(request)
    user.backend = BACKEND
    login(request, user)
    request.session.pop(wechat.DECLINED, None)
    wechat.audit.info("wechat login ok account=%s ip=%s", user.username, client_ip(request))
    return redirect(pending_next or landing_url(user))


# --- 消息提醒 in 设置 ---------------------------------------------------------------------------


def channels(user) -> dict[str, bool]:
    """Which channels ``user`` may choose now: WeChat once bound (and messages configured), SMS
    with a mobile number (and SMS configured)."""
    bound = wechat.messages_enabled() and WeChatBinding.objects.filter(user=user).exists()
    return {
        "wechat": bool(wechat.may_bind(user) and bound),
        "sms": bool(
            user.is_authenticated and user.is_supervisor and user.mobile and sms.notices_enabled()
        ),
    }


class MessageChoicesForm(forms.Form):
    wechat = forms.MultipleChoiceField(
        label=gettext_lazy("微信提醒"),
        choices=Event.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": gettext_lazy("请从列出的事项里选择。")},
    )
    sms = forms.MultipleChoiceField(
        label=gettext_lazy("短信提醒"),
        choices=Event.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": gettext_lazy("请从列出的事项里选择。")},
    )


def current_choices(user) -> dict[str, list[str]]:
    row = MessageChoices.objects.filter(user=user).first()
    if row is None:
        return {"wechat": list(Event.values), "sms": []}
    return {"wechat": list(row.wechat), "sms": list(row.sms)}


def settings_context(request: HttpRequest, form: MessageChoicesForm | None = None) -> dict:
    """What 设置 shows about WeChat and 消息提醒 (``supervision.issue_views.account_settings``)."""
    user = request.user
    open_channels = channels(user)
    chosen = current_choices(user)
    rows = [
        {
            "value": value,
            "label": label,
            "wechat": value in chosen["wechat"],
            "sms": value in chosen["sms"],
        }
        for value, label in Event.choices
    ]
    return {
        "wechat_on": wechat.wechat_enabled(),
        "wechat_may_bind": wechat.may_bind(user),
        "wechat_binding": WeChatBinding.objects.filter(user=user).first()
        if wechat.wechat_enabled()
        else None,
        "message_channels": open_channels,
        "message_rows": rows if any(open_channels.values()) else [],
        "message_form": form,
    }


@login_required
@never_cache
@require_POST
def message_choices(request: HttpRequest) -> HttpResponse:
    """/me/messages/: save which events come by WeChat and by SMS (supervisors only)."""
    if not (wechat.messages_enabled() or sms.notices_enabled()):
        raise Http404
    if not request.user.is_supervisor:
        raise PermissionDenied(_("只有监督员可以设置消息提醒。"))
    form = MessageChoicesForm(request.POST)
    if not form.is_valid():
        context = settings_context(request, form)
        return render(request, "supervision/settings.html", context, status=400)
    open_channels = channels(request.user)
    chosen = current_choices(request.user)
    values = {
        name: (form.cleaned_data[name] if open_channels[name] else chosen[name])
        for name in ("wechat", "sms")
    }
    MessageChoices.objects.update_or_create(user=request.user, defaults=values)
    messages.success(request, _("消息提醒已保存。"))
    return redirect("settings")
