"""The SMS code pages (accounts.sms): sign in, and reset a forgotten password, each in two
screens — the number and 「获取验证码」, then the code (and the new password) — so that signing in
is three taps from the login page plus typing the number and the code.

All four answer 404 while SMS is off. Whether a number has an account never shows: every number
gets the same pages and words (the services make sure of the rest).
"""

from __future__ import annotations

import re

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from supervision.security import safe_next

from .limits import account_locked, address_limited, refusal, refuse
from .models import SmsCode
from .sms import (
    CODE_MINUTES,
    SmsError,
    SmsLockedOut,
    reset_password,
    send_code,
    sms_enabled,
    verify_code,
)
from .two_factor import confirmed_device, hold_for_second_step, may_use_two_factor
from .views import landing_url

LOGIN, RESET = SmsCode.Purpose.LOGIN, SmsCode.Purpose.RESET
NEXT = "sms_next"
MOBILE = re.compile(r"^1[3-9]\d{9}$")
BACKEND = "accounts.backends.UsernameOrMobileBackend"


def _session_key(purpose: str) -> str:
    return f"sms_mobile_{purpose}"


class MobileForm(forms.Form):
    mobile = forms.CharField(
        label=gettext_lazy("手机号码"),
        max_length=20,
        widget=forms.TextInput(
            attrs={
                "type": "tel",
                "inputmode": "numeric",
                "autocomplete": "tel",
                "autofocus": True,
                "class": "form-control-lg",
                "placeholder": gettext_lazy("11 位手机号码"),
            }
        ),
        error_messages={"required": gettext_lazy("请输入手机号码。")},
    )

    def clean_mobile(self) -> str:
        mobile = re.sub(r"[\s\-()]", "", self.cleaned_data["mobile"])
        mobile = re.sub(r"^(\+?86)(?=1\d{10}$)", "", mobile)
        if not MOBILE.match(mobile):
            raise forms.ValidationError(_("请输入 11 位手机号码。"))
        return mobile


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("短信验证码"),
        max_length=12,
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "autofocus": True,
                "class": "form-control-lg",
                "placeholder": gettext_lazy("6 位数字"),
            }
        ),
        error_messages={"required": gettext_lazy("请输入短信里的 6 位验证码。")},
    )

    def clean_code(self) -> str:
        code = re.sub(r"\s", "", self.cleaned_data["code"])
        if not re.fullmatch(r"\d{6}", code):
            raise forms.ValidationError(_("请输入短信里的 6 位数字。"))
        return code


class ResetForm(CodeForm):
    new_password1 = forms.CharField(
        label=gettext_lazy("新密码"),
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(
            attrs={"autocomplete": "new-password", "class": "form-control-lg"}
        ),
        error_messages={"required": gettext_lazy("请输入新密码。")},
    )
    new_password2 = forms.CharField(
        label=gettext_lazy("再输一次新密码"),
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(
            attrs={"autocomplete": "new-password", "class": "form-control-lg"}
        ),
        error_messages={"required": gettext_lazy("请再输入一次新密码。")},
    )

    def clean(self) -> dict:
        data = super().clean()
        one, two = data.get("new_password1"), data.get("new_password2")
        if one and two and one != two:
            self.add_error("new_password2", _("两次输入的新密码不一致。"))
        return data


def _spaced(mobile: str) -> str:
    """13957700004 → 139 5770 0004, as people read a number back."""
    return f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}"


def _guard(request: HttpRequest) -> HttpResponse | None:
    """404 while SMS is off; a signed-in person goes where they work."""
    if not sms_enabled():
        raise Http404
    if request.user.is_authenticated:
        return redirect(landing_url(request.user))
    return None


def _ask(request: HttpRequest, purpose: str, next_page: str) -> HttpResponse:
    if early := _guard(request):
        return early
    if request.method == "GET" and purpose == LOGIN:
        request.session[NEXT] = safe_next(request, request.GET.get("next"), "")
    form = MobileForm(request.POST or None)
    status = 200
    waiting = None
    if request.method == "POST":
        status = 400
        if form.is_valid():
            mobile = form.cleaned_data["mobile"]
            try:
                send_code(mobile, purpose, request=request)
            except SmsError as exc:
                form.add_error("mobile", exc.message)
                status = exc.status
                if request.session.get(_session_key(purpose)) == mobile:
                    waiting = reverse(next_page)  # the code already sent is still good
            else:
                request.session[_session_key(purpose)] = mobile
                return redirect(next_page)
    return render(
        request,
        "accounts/sms_mobile.html",
        {"form": form, "purpose": purpose, "waiting": waiting},
        status=status,
    )


def _code_page(request: HttpRequest, purpose: str, form_class: type[CodeForm], first: str):
    """The second screen's common part: the number from the first (else back to it), a resend.
    Returns a response, or the mobile and the bound form for the caller to finish."""
    if early := _guard(request):
        return early, None, None
    mobile = request.session.get(_session_key(purpose))
    if not mobile:
        return redirect(first), None, None
    if request.method == "POST" and "resend" in request.POST:
        try:
            send_code(mobile, purpose, request=request)
        except SmsError as exc:
            page = _render_code(request, purpose, form_class(), mobile, exc.message, exc.status)
            return page, None, None
        messages.success(request, _("新的验证码已发送。"))
        return redirect(request.path), None, None
    if request.method == "POST":
        # The limits of every login (accounts.limits): the address, then the account.
        if address_limited(request):
            return refuse(request, mobile, "address"), None, None
        if account_locked(request, mobile):
            return refuse(request, mobile, "account"), None, None
    return None, mobile, form_class(request.POST or None)


def _render_code(
    request: HttpRequest,
    purpose: str,
    form: CodeForm,
    mobile: str,
    resend_error: str | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "accounts/sms_code.html",
        {
            "form": form,
            "purpose": purpose,
            "mobile": _spaced(mobile),
            "minutes": CODE_MINUTES,
            "resend_error": resend_error,
        },
        status=status,
    )


@never_cache
def login_mobile(request: HttpRequest) -> HttpResponse:
    """/accounts/login/sms/: the number, then 「获取验证码」."""
    return _ask(request, LOGIN, "sms-login-code")


@never_cache
def login_code(request: HttpRequest) -> HttpResponse:
    """/accounts/login/sms/code/: the code, then 「登录」 (or the two-factor step for whoever
    has an authenticator)."""
    response, mobile, form = _code_page(request, LOGIN, CodeForm, "sms-login")
    if response is not None:
        return response
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                user = verify_code(mobile, LOGIN, form.cleaned_data["code"], request=request)
            except SmsLockedOut as exc:
                return refusal(request, exc.reason)
            except SmsError as exc:
                form.add_error(exc.field, exc.message)
                status = exc.status
            else:
                request.session.pop(_session_key(LOGIN), None)
                target = safe_next(request, request.session.pop(NEXT, ""), landing_url(user))
                user.backend = BACKEND
                if may_use_two_factor(user) and confirmed_device(user):
                    return hold_for_second_step(request, user, target)
                login(request, user)
                return redirect(target)
    return _render_code(request, LOGIN, form, mobile, status=status)


@never_cache
def reset_mobile(request: HttpRequest) -> HttpResponse:
    """/accounts/password/reset/: the number, then 「获取验证码」."""
    return _ask(request, RESET, "sms-reset-code")


@never_cache
def reset_code(request: HttpRequest) -> HttpResponse:
    """/accounts/password/reset/code/: the code and the new password twice."""
    response, mobile, form = _code_page(request, RESET, ResetForm, "sms-reset")
    if response is not None:
        return response
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                reset_password(
                    mobile,
                    form.cleaned_data["code"],
                    form.cleaned_data["new_password1"],
                    request=request,
                )
            except SmsLockedOut as exc:
                return refusal(request, exc.reason)
            except SmsError as exc:
                form.add_error(exc.field, exc.message)
                status = exc.status
            else:
                request.session.pop(_session_key(RESET), None)
                messages.success(request, _("密码已重设，请用新密码登录。"))
                return redirect("login")
    return _render_code(request, RESET, form, mobile, status=status)
