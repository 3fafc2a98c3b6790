"""Optional two-factor login (TOTP, django-otp) for the bureau and superusers.

Whoever has confirmed an authenticator app is asked, after the password, for its six-digit code;
the session is only logged in once the code is right. Setting it up: /accounts/otp/setup/.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from supervision.security import safe_next
from supervision.views import qr_svg

from .limits import account_locked, refusal, refuse

PENDING = "otp_pending_user"
PENDING_NEXT = "otp_pending_next"
PENDING_BACKEND = "otp_pending_backend"
TRIES = "otp_tries"
MAX_TRIES = 5


def may_use_two_factor(user) -> bool:
    return user.is_active and (user.is_superuser or user.is_bureau or user.is_oversight)


def confirmed_device(user):
    return next(devices_for_user(user, confirmed=True), None)


class CodeForm(forms.Form):
    code = forms.RegexField(
        label=gettext_lazy("验证码（身份验证器中的 6 位数字）"),
        regex=r"^\d{6}$",
        error_messages={"invalid": gettext_lazy("请输入 6 位数字。")},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


def hold_for_second_step(request: HttpRequest, user, next_url: str) -> HttpResponse:
    """Called by the login view instead of logging in, for a user with a confirmed device."""
    request.session[PENDING] = user.pk
    request.session[PENDING_BACKEND] = getattr(user, "backend", "")
    request.session[PENDING_NEXT] = next_url
    request.session[TRIES] = 0
    return redirect("login-otp")


@never_cache
def login_code(request: HttpRequest) -> HttpResponse:
    user_id = request.session.get(PENDING)
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first() if user_id else None
    device = confirmed_device(user) if user else None
    if device is None:
        return redirect("login")
    if request.method == "POST" and account_locked(request, user.username):
        return refuse(request, user.username, "account")  # the address: LoginLimitMiddleware
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        tries = request.session.get(TRIES, 0) + 1
        request.session[TRIES] = tries
        if tries > MAX_TRIES:
            request.session.flush()
            messages.error(request, _("验证码错误次数过多，请重新登录。"))
            return redirect("login")
        if device.verify_token(form.cleaned_data["code"]):
            next_url = request.session.get(PENDING_NEXT) or "/"
            user.backend = request.session.get(PENDING_BACKEND) or (
                "accounts.backends.UsernameOrMobileBackend"
            )
            for key in (PENDING, PENDING_NEXT, PENDING_BACKEND, TRIES):
                request.session.pop(key, None)
            login(request, user)
            otp_login(request, device)
            return HttpResponseRedirect(safe_next(request, next_url))
        # A wrong code is a failed login like a wrong password: it counts against the address
        # and the account (django-axes) and is in the audit log (accounts.signals).
        user_login_failed.send(
            sender=__name__, credentials={"username": user.username}, request=request
        )
        if getattr(request, "axes_locked_out", False):
            return refusal(request, "account")
        form.add_error("code", _("验证码不对，请看身份验证器里最新的数字。"))
    return render(
        request, "accounts/login_otp.html", {"form": form}, status=400 if form.errors else 200
    )


@login_required
@never_cache
def setup(request: HttpRequest) -> HttpResponse:
    """Connect an authenticator app: scan the QR code, confirm with one code."""
    user = request.user
    if not may_use_two_factor(user):
        raise PermissionDenied(_("两步验证供住建局和系统管理员使用。"))
    if confirmed_device(user):
        return render(request, "accounts/otp_setup.html", {"done": True})
    device = TOTPDevice.objects.filter(
        user=user, confirmed=False
    ).first() or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            messages.success(request, _("两步验证已开启，以后登录时需要输入验证码。"))
            return redirect("otp-setup")
        form.add_error("code", _("验证码不对，请看身份验证器里最新的数字。"))
    return render(
        request,
        "accounts/otp_setup.html",
        {"form": form, "qr": qr_svg(device.config_url, scale=4)},
    )
