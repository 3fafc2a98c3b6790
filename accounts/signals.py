"""The audit log of logins: time (from the log record), account, address and outcome."""

from __future__ import annotations

import logging
import re

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from supervision.security import client_ip, mask_mobile

audit = logging.getLogger("audit")
MOBILE = re.compile(r"^1\d{10}$")


def masked(login: str) -> str:
    """A mobile number typed as the login is logged as 139****0001, never in full."""
    login = (login or "").strip()[:150]
    return mask_mobile(login) if MOBILE.match(login) else login


@receiver(user_logged_in)
def logged_in(sender, request, user, **kwargs) -> None:
    audit.info("login ok user=%s ip=%s", user.username, client_ip(request) if request else "-")


@receiver(user_logged_out)
def logged_out(sender, request, user, **kwargs) -> None:
    audit.info(
        "logout user=%s ip=%s",
        getattr(user, "username", "-"),
        client_ip(request) if request else "-",
    )


@receiver(user_login_failed)
def login_failed(sender, credentials, request=None, **kwargs) -> None:
    audit.warning(
        "login failed login=%s ip=%s",
        masked(credentials.get("username", "")),
        client_ip(request) if request else "-",
    )
