"""Department staff and the bureau are logged out after a spell without any request (MLPS 2.0
asks for an idle timeout on systems that handle personal data); residents stay logged in on
their phones for the session's lifetime."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

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
            and (user.is_department_staff or user.is_bureau)
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
