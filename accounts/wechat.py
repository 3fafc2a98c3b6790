"""WeChat (微信公众号): signing in inside WeChat's browser, and template messages.

Off unless ``WECHAT_APP_ID`` and ``WECHAT_APP_SECRET`` are set (``wechat_enabled``); then a
supervisor binds their WeChat from 设置 (``begin`` → WeChat's authorize page → ``finish``), and an
anonymous GET of the login page from WeChat's browser (``MicroMessenger`` in the user agent) goes
once through WeChat's silent ``snsapi_base`` authorisation and signs in the account bound to that
openid. Staff accounts (department staff, the bureau, the oversight, superusers) cannot bind.

A thin client of the four documented HTTPS endpoints, not ``wechatpy``: its last release (1.8.18)
is of November 2021, declares Python up to 3.7, still carries Python 2 shims (``six``) and would
bring ``requests``, ``optionaldict``, ``xmltodict`` and ``python-dateutil`` for four GET/POSTs.
Here they are a few lines of ``urllib`` with our own timeout and base URLs as settings (the tests
point them at stand-ins on 127.0.0.1).

The openid is kept twice, never readable: an HMAC under the app's key for lookup
(``openid_digest``, also under each ``SECRET_KEY_FALLBACKS`` while a key rotates) and, because a
template message must name it, sealed with Fernet under a key derived from the app's key
(``seal``/``unseal``, a ``MultiFernet`` over the current key and the fallbacks). Nothing logs it.

State and nonce: ``begin`` keeps a random nonce, the purpose and the time in the session and
sends ``state`` = nonce + an HMAC of nonce and purpose (WeChat allows only [A-Za-z0-9] there).
``finish`` pops that entry (a callback works once), checks the state in constant time and the
age (``STATE_SECONDS``). Any failure — no entry, a wrong state, no ``code`` (cancelled), an
error answer — raises ``WeChatRefused``; the views then fall back to the password login page
with a Chinese message, and remember the refusal in the session (and ``?wechat=0``) so that the
login page never sends the person round again.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlencode

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from supervision.security import client_ip

from .models import User, WeChatBinding

audit = logging.getLogger("audit")

PENDING = "wechat_pending"
DECLINED = "wechat_declined"
STATE_SECONDS = 600
TOKEN_KEY = "wechat:access-token"
TOKEN_MARGIN = 300  # seconds before ``expires_in`` at which the cached token is dropped
# errcodes that mean the access token is no longer good: drop it, the next try fetches another.
STALE_TOKEN = {40001, 40014, 42001}
LOGIN, BIND = "login", "bind"


class WeChatError(Exception):
    """WeChat did not do it: unreachable, too slow, an HTTP error or an ``errcode`` answer. The
    message never holds an openid, a code or a secret."""


class WeChatRefused(Exception):
    """A sign-in or binding that cannot go on; ``message`` is for the person, ``reason`` for the
    audit log."""

    def __init__(self, reason: str, message: str, purpose: str = LOGIN) -> None:
        super().__init__(reason)
        self.reason, self.message, self.purpose = reason, message, purpose


def wechat_enabled() -> bool:
    return bool(settings.WECHAT_APP_ID and settings.WECHAT_APP_SECRET)


def messages_enabled() -> bool:
    return wechat_enabled() and bool(settings.WECHAT_TEMPLATE_ID)


def in_wechat(request: HttpRequest) -> bool:
    return "MicroMessenger" in request.headers.get("User-Agent", "")


def may_bind(user) -> bool:
    """Supervisors only: never department staff, the bureau, the oversight or a superuser."""
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_supervisor
        and not user.is_superuser
        and not user.is_staff
    )


# --- keeping the openid ------------------------------------------------------------------------


def _keys() -> list[str]:
    return [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]


def openid_digest(openid: str, secret: str | None = None) -> str:
    return salted_hmac(
        "accounts.wechat.openid", openid, secret=secret, algorithm="sha256"
    ).hexdigest()


def _fernet(secret: str) -> Fernet:
    raw = salted_hmac("accounts.wechat.seal", "fernet", secret=secret, algorithm="sha256").digest()
    return Fernet(base64.urlsafe_b64encode(raw))


def seal(openid: str) -> str:
    return MultiFernet([_fernet(key) for key in _keys()]).encrypt(openid.encode()).decode()


def unseal(sealed: str) -> str | None:
    try:
        return MultiFernet([_fernet(key) for key in _keys()]).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def binding_for_openid(openid: str) -> WeChatBinding | None:
    digests = [openid_digest(openid, key) for key in _keys()]
    return WeChatBinding.objects.select_related("user").filter(openid_digest__in=digests).first()


def bind(user: User, openid: str) -> WeChatBinding:
    """Bind ``openid`` to ``user`` (replacing their earlier WeChat). Raises ``WeChatRefused``
    for a staff account or a WeChat already bound to somebody else."""
    if not may_bind(user):
        raise WeChatRefused("staff", _("工作人员账号不能绑定微信。"), BIND)
    other = binding_for_openid(openid)
    if other is not None and other.user_id != user.pk:
        raise WeChatRefused(
            "bound elsewhere", _("这个微信已绑定其他账号，请先在那个账号里解除绑定。"), BIND
        )
    try:
        with transaction.atomic():
            binding, _created = WeChatBinding.objects.update_or_create(
                user=user,
                defaults={
                    "openid_digest": openid_digest(openid),
                    "openid_sealed": seal(openid),
                    "created_at": timezone.now(),
                },
            )
    except IntegrityError:  # the same WeChat bound elsewhere at the same moment
        raise WeChatRefused(
            "bound elsewhere", _("这个微信已绑定其他账号，请先在那个账号里解除绑定。"), BIND
        ) from None
    audit.info("wechat bound account=%s", user.username)
    return binding


def unbind(user: User) -> bool:
    deleted, _rows = WeChatBinding.objects.filter(user=user).delete()
    if deleted:
        audit.info("wechat unbound account=%s", user.username)
    return bool(deleted)


def openid_of(user: User) -> str | None:
    binding = WeChatBinding.objects.filter(user=user).only("openid_sealed").first()
    return unseal(binding.openid_sealed) if binding else None


# --- the endpoints -----------------------------------------------------------------------------


def _call(path: str, params: dict[str, str], body: dict | None = None) -> dict:
    """GET (or POST ``body`` as JSON to) ``WECHAT_API_URL + path``; the answer's JSON, or
    ``WeChatError`` for anything else, an ``errcode`` included."""
    url = f"{settings.WECHAT_API_URL}{path}?{urlencode(params)}"
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json; charset=utf-8"} if data else {},
        method="POST" if data else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.WECHAT_TIMEOUT) as response:
            raw = response.read(20_000)
    except urllib.error.HTTPError as error:
        raise WeChatError(f"HTTP {error.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise WeChatError(
            type(reason).__name__ if not isinstance(reason, str) else reason
        ) from None
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        raise WeChatError("not JSON") from None
    if not isinstance(answer, dict):
        raise WeChatError("not an object")
    errcode = answer.get("errcode", 0)
    if errcode:
        raise WeChatError(f"errcode {errcode}")
    return answer


def authorize_url(redirect_uri: str, state: str) -> str:
    query = urlencode(
        {
            "appid": settings.WECHAT_APP_ID,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
        }
    )
    return f"{settings.WECHAT_OPEN_URL}/connect/oauth2/authorize?{query}#wechat_redirect"


def openid_for_code(code: str) -> str:
    answer = _call(
        "/sns/oauth2/access_token",
        {
            "appid": settings.WECHAT_APP_ID,
            "secret": settings.WECHAT_APP_SECRET,
            "code": code,
            "grant_type": "authorization_code",
        },
    )
    openid = answer.get("openid")
    if not isinstance(openid, str) or not openid or len(openid) > 128:
        raise WeChatError("no openid")
    return openid


def access_token() -> str:
    """The 公众号's access token (``/cgi-bin/token``), cached until ``TOKEN_MARGIN`` seconds
    before it expires."""
    token = cache.get(TOKEN_KEY)
    if token:
        return token
    answer = _call(
        "/cgi-bin/token",
        {
            "grant_type": "client_credential",
            "appid": settings.WECHAT_APP_ID,
            "secret": settings.WECHAT_APP_SECRET,
        },
    )
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise WeChatError("no access_token")
    try:
        lifetime = int(answer.get("expires_in") or 7200)
    except (TypeError, ValueError):
        lifetime = 7200
    cache.set(TOKEN_KEY, token, max(lifetime - TOKEN_MARGIN, 60))
    return token


def send_template(openid: str, *, url: str, data: dict[str, str]) -> None:
    """One template message (``/cgi-bin/message/template/send``) or ``WeChatError``."""
    body = {
        "touser": openid,
        "template_id": settings.WECHAT_TEMPLATE_ID,
        "url": url,
        "data": {key: {"value": value} for key, value in data.items()},
    }
    try:
        _call("/cgi-bin/message/template/send", {"access_token": access_token()}, body)
    except WeChatError as error:
        if any(str(error) == f"errcode {code}" for code in STALE_TOKEN):
            cache.delete(TOKEN_KEY)
        raise


# --- signing in and binding --------------------------------------------------------------------


def _state(nonce: str, purpose: str) -> str:
    mac = salted_hmac("accounts.wechat.state", f"{nonce}:{purpose}", algorithm="sha256")
    return nonce + mac.hexdigest()[:32]


def begin(request: HttpRequest, purpose: str, next_url: str = "") -> str:
    """Remember a new nonce for ``purpose`` in the session; the authorize URL to send to."""
    nonce = secrets.token_hex(16)
    request.session[PENDING] = {
        "nonce": nonce,
        "purpose": purpose,
        "next": next_url,
        "user": request.user.pk if purpose == BIND else None,
        "at": int(time.time()),
    }
    redirect_uri = request.build_absolute_uri(reverse("wechat-callback"))
    return authorize_url(redirect_uri, _state(nonce, purpose))


def failed(purpose: str = LOGIN) -> str:
    if purpose == BIND:
        return _("微信绑定没有完成，请再试一次。")
    return _("微信登录没有完成，请用密码或短信验证码登录。")


def finish(request: HttpRequest) -> tuple[dict, str]:
    """Check the callback against the pending entry (popped: a callback works once) and ask
    WeChat for the openid of its ``code``. Returns (the entry, the openid) or raises
    ``WeChatRefused``."""
    pending = request.session.pop(PENDING, None)
    if not isinstance(pending, dict):
        raise WeChatRefused("no pending state", failed())
    purpose = pending.get("purpose") if pending.get("purpose") in (LOGIN, BIND) else LOGIN
    state = request.GET.get("state", "")
    expected = _state(str(pending.get("nonce", "")), purpose)
    if not constant_time_compare(state, expected):
        raise WeChatRefused("wrong state", failed(purpose), purpose)
    if time.time() - int(pending.get("at") or 0) > STATE_SECONDS:
        raise WeChatRefused("state too old", failed(purpose), purpose)
    code = request.GET.get("code", "")
    if not code or len(code) > 256:
        raise WeChatRefused("cancelled", failed(purpose), purpose)
    try:
        openid = openid_for_code(code)
    except WeChatError as error:
        audit.error("wechat code exchange failed ip=%s error=%s", client_ip(request), str(error))
        message = _("微信暂时无法登录，请用密码或短信验证码登录。")
        if purpose == BIND:
            message = _("微信暂时无法绑定，请稍后再试。")
        raise WeChatRefused("provider error", message, purpose) from None
    return pending, openid


def user_for_openid(openid: str) -> User | None:
    binding = binding_for_openid(openid)
    if binding is None or not may_bind(binding.user):
        return None
    WeChatBinding.objects.filter(pk=binding.pk).update(last_login_at=timezone.now())
    return binding.user


# --- the login page inside WeChat --------------------------------------------------------------


class WeChatSignInMiddleware:
    """An anonymous GET of the login page from WeChat's browser, WeChat configured, goes once
    through WeChat's silent authorisation (``wechat-login``). Never again in a session whose
    attempt failed or was cancelled (``DECLINED``), nor with ``?wechat=0`` (what a failure sends
    back to: no loop even without cookies)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method == "GET"
            and wechat_enabled()
            and request.path == reverse("login")
            and not request.user.is_authenticated
            and in_wechat(request)
            and request.GET.get("wechat") != "0"
            and not request.session.get(DECLINED)
        ):
            target = reverse("wechat-login")
            next_url = request.GET.get("next", "")
            return redirect(f"{target}?{urlencode({'next': next_url})}" if next_url else target)
        return self.get_response(request)
