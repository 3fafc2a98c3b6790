"""The audit log of logins: time (from the log record), account, address, page and outcome, one
JSON record per event (``accounts.auditlog``); and the count of failures per address that every
login path shares (``accounts.limits``)."""

from __future__ import annotations

import logging

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from supervision.security import client_ip

from .limits import REFUSED, count_failure, masked

audit = logging.getLogger("audit")


def _where(request) -> tuple[str, str]:
    if request is None:
        return "-", "-"
    return client_ip(request) or "-", request.path


@receiver(user_logged_in)
def logged_in(sender, request, user, **kwargs) -> None:
    ip, path = _where(request)
    audit.info("login ok user=%s ip=%s path=%s", user.username, ip, path)


@receiver(user_logged_out)
def logged_out(sender, request, user, **kwargs) -> None:
    ip, path = _where(request)
    audit.info("logout user=%s ip=%s path=%s", getattr(user, "username", "-"), ip, path)


@receiver(user_login_failed)
def login_failed(sender, credentials, request=None, **kwargs) -> None:
    ip, path = _where(request)
    login = masked(credentials.get("username", ""))
    if request is not None and getattr(request, REFUSED, "") == "address":
        # Refused before any password was checked: not one more failure of the address.
        audit.warning("login refused user=%s ip=%s path=%s reason=%s", login, ip, path, "address")
        return
    if request is not None:
        count_failure(request)
    audit.warning("login failed user=%s ip=%s path=%s", login, ip, path)
