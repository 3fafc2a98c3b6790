"""The login limits, one mechanism for every way in.

- Per account: django-axes (``accounts.backends.LockoutBackend``, first in
  ``AUTHENTICATION_BACKENDS``) locks an account for 15 minutes after ``AXES_FAILURE_LIMIT``
  failures, the right password too; a mobile number counts as its account.
- Per address: one client address may fail ``LOGIN_FAILURES_PER_IP`` times in 15 minutes across
  accounts; then every login from it is refused until the window ends.

Failures are counted where Django reports them, the ``user_login_failed`` signal
(``accounts.signals``): the site's login, the full admin's, a wrong two-factor code
(``accounts.two_factor``), and whatever calls ``authenticate()`` with a request later. Refusals:
``LoginLimitMiddleware`` answers a POST to any login page (``LOGIN_VIEWS``) from an address over
the limit before the page checks anything; ``LockoutBackend`` refuses any other ``authenticate()``
from it; both, and axes' account lockout (``AXES_LOCKOUT_CALLABLE``), answer with
``refusal``: 429 and the same Chinese page.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from supervision.security import client_ip, mask_mobile

from .auditlog import safe_json

audit = logging.getLogger("audit")

WINDOW = 15 * 60
# The pages that check a password or a second factor (the panel's login sends to the site's, and
# is refused too, so that no login page answers differently).
# The SMS pages (accounts/sms_views.py) send and check codes: an address over the limit is
# refused there too, before anything is sent or compared.
SMS_VIEWS = frozenset({"sms-login", "sms-login-code", "sms-reset", "sms-reset-code"})
LOGIN_VIEWS = frozenset({"login", "login-otp", "admin:login", "panel:login", *SMS_VIEWS})
REFUSED = "login_refused"  # request attribute: "address" or "account"
MOBILE = re.compile(r"^1\d{10}$")
ADDRESS = re.compile(r"[0-9A-Fa-f.:]{1,45}")


def masked(login: str | None) -> str:
    """A login as the audit log writes it: trimmed, at most 150 characters, and a mobile number
    typed as the login as 139****0001, never in full."""
    login = (login or "").strip()[:150]
    return mask_mobile(login) if MOBILE.match(login) else login


def _key(request: HttpRequest) -> str:
    address = client_ip(request)
    if not ADDRESS.fullmatch(address):  # whatever a proxy header carried: a safe cache key
        address = hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()
    return f"login-failures:{address}"


def address_failures(request: HttpRequest) -> int:
    return cache.get(_key(request), 0)


def address_limited(request: HttpRequest) -> bool:
    """Whether this request's address has used up its failed logins for the window."""
    return address_failures(request) >= settings.LOGIN_FAILURES_PER_IP


def count_failure(request: HttpRequest) -> None:
    """One more failed login from this request's address (the window starts at the first)."""
    key = _key(request)
    cache.add(key, 0, WINDOW)
    try:
        cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, 1, WINDOW)


def account_locked(request: HttpRequest, username: str) -> bool:
    """Whether django-axes holds ``username``'s account locked (for a step that has no
    ``authenticate()`` call of its own, the two-factor code)."""
    from axes.handlers.proxy import AxesProxyHandler  # noqa: PLC0415  (needs the app registry)

    return not AxesProxyHandler.is_allowed(request, {"username": username})


def refuse(request: HttpRequest, login: str | None, reason: str = "address") -> HttpResponse:
    """The answer to a login refused before anything was checked (an address over the limit,
    or a locked account at the two-factor step), with one audit record for it."""
    setattr(request, REFUSED, reason)
    audit.warning(
        "login refused user=%s ip=%s path=%s reason=%s",
        masked(login),
        client_ip(request) or "-",
        request.path,
        reason,
    )
    return refusal(request, reason)


def refusal(request: HttpRequest, reason: str = "account") -> HttpResponse:
    """429 with the locked-out page: for ``"address"`` that this network has failed too often,
    for ``"account"`` that the account is locked; both say when to try again and whom to call."""
    return render(
        request,
        "accounts/locked_out.html",
        {
            "reason": reason,
            "minutes": WINDOW // 60,
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "hotline": settings.SUPERVISION["HOTLINE"],
        },
        status=429,
    )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: axes' lockout answered like ours (429, the hotline)."""
    return refusal(request, getattr(request, REFUSED, "account"))


def client_str(
    username: str | None,
    ip_address: str | None,
    user_agent: str | None,
    path_info: str | tuple | list | None,
    request: HttpRequest | None,
) -> str:
    """``AXES_CLIENT_STR_CALLABLE``: how django-axes names a client in its own log lines, with
    the typed username masked and escaped as in the audit log (axes would write it raw, and a
    CR/LF in it would start a line of its own)."""
    if isinstance(path_info, tuple | list):
        path_info = path_info[0] if path_info else ""
    parts = {"username": masked(username), "ip_address": ip_address, "path_info": path_info}
    return safe_json(json.dumps(parts, ensure_ascii=False, default=str))
