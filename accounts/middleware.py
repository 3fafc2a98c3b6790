"""Department staff and the bureau are logged out after a spell without any request (MLPS 2.0
asks for an idle timeout on systems that handle personal data); residents stay logged in on
their phones for the session's lifetime. And every login page refuses an address that has failed
too often (``LoginLimitMiddleware``, see ``accounts.limits``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from .limits import LOGIN_VIEWS, address_limited, refuse

KEY = "last_seen"
WRITE_EVERY = 60


class StaffIdleTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and (user.is_department_staff or user.is_bureau or user.is_oversight)
        ):
            now = time.time()
            last = request.session.get(KEY)
            if last is not None and now - last > settings.STAFF_IDLE_TIMEOUT:
                logout(request)
                messages.info(
                    request, _("您已较长时间没有操作，为保护数据已自动退出，请重新登录。")
                )
                return redirect(f"{reverse('login')}?next={request.path}")
            if last is None or now - last > WRITE_EVERY:
                request.session[KEY] = now  # written at most once a minute, not every request
        return self.get_response(request)


class LoginLimitMiddleware:
    """A POST to any login page (``accounts.limits.LOGIN_VIEWS``: the site's, the two-factor
    step, the panel's and the full admin's) from an address that has failed too often is
    answered 429 before the page checks a password or a code, the right one included."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable, view_args: tuple, view_kwargs: dict
    ) -> HttpResponse | None:
        match = request.resolver_match
        if (
            request.method == "POST"
            and match is not None
            and match.view_name in LOGIN_VIEWS
            and address_limited(request)
        ):
            return refuse(request, request.POST.get("username"), "address")
        return None
