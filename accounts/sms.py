"""SMS codes (短信验证码): signing in with one, and resetting a forgotten password with one.

Off unless ``SMS_BACKEND`` is set (``sms_enabled``). A code is 6 digits, valid 5 minutes, one
per number every 60 seconds, 5 tries; each number and each client address may ask for a few an
hour and a day (``SMS_CODES_PER_*``, counted from the ``SmsCode`` rows, so every app process
sees the same counts without a shared cache). Supervisors may always use it; staff and the
bureau only with ``SMS_STAFF_LOGIN`` (whoever has two-factor login still gives its code after).

A number that belongs to nobody who may use it is answered exactly like one that does: the same
row is written, the same limits count, the same page follows; only no message goes out. To keep
the time the same too, such a request waits as long as recent real sends took, and while the
provider is failing it is told that sending failed, like everybody else.

A wrong code is a failed login like a wrong password (``user_login_failed``): it counts against
the address and the account (``accounts.limits``) and is in the audit log. The audit log gets
each send and each use with the number masked (139****0004), never the code.

Providers sit behind one small interface, ``SmsBackend.send_code``: ``ConsoleBackend``,
``AliyunBackend`` (the official ``alibabacloud-dysmsapi20170525`` SDK) and ``TencentBackend``
(``tencentcloud-sdk-python-sms``), whose SDKs are imported only when that backend is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sys
import time
from datetime import timedelta
from typing import Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from supervision.security import client_ip, mask_mobile

from .limits import ADDRESS
from .models import SmsCode, User
from .passwords import new_password_set

audit = logging.getLogger("audit")

CODE_DIGITS = 6
CODE_MINUTES = 5
RESEND_SECONDS = 60
MAX_TRIES = 5
KEEP_DAYS = 2
# While the provider has failed within this many seconds, requests for numbers that get no
# message are told that sending failed too (else an outage would tell the two apart).
PROVIDER_DOWN_SECONDS = 300
LATENCY_KEY = "sms:latency"
DOWN_KEY = "sms:provider-down"


# --- providers ---------------------------------------------------------------------------------


class SmsDeliveryError(Exception):
    """The provider did not take the message: unreachable, too slow, an error answer."""


class SmsBackend(Protocol):
    name: str

    def send_code(self, mobile: str, code: str, minutes: int) -> None:
        """Send ``code`` to ``mobile`` (11 digits) or raise ``SmsDeliveryError``."""


def _endpoint(url: str) -> tuple[str, str]:
    """``https://dysmsapi.aliyuncs.com`` → ("https", "dysmsapi.aliyuncs.com"); a bare host is
    https."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    return parts.scheme or "https", parts.netloc


def _require(**values: str) -> None:
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ImproperlyConfigured(f"SMS: missing setting(s) {', '.join(missing)}")


class ConsoleBackend:
    """Prints the message, for development and the demo (as the console email backend does)."""

    name = "console"

    def send_code(self, mobile: str, code: str, minutes: int) -> None:
        sys.stdout.write(
            f"[SMS → {mask_mobile(mobile)}] 【{settings.SMS_SIGN_NAME}】验证码 {code}，"
            f"{minutes} 分钟内有效。如非本人操作，请忽略本短信。\n"
        )
        sys.stdout.flush()

    def send_notice(self, mobile: str, ref: str, what: str) -> None:
        sys.stdout.write(
            f"[SMS → {mask_mobile(mobile)}] 【{settings.SMS_SIGN_NAME}】{ref}：{what}\n"
        )
        sys.stdout.flush()


class AliyunBackend:
    """Aliyun SMS (dysmsapi 2017-05-25, ``SendSms``) through the official SDK; the template
    takes the code as ``${code}``."""

    name = "aliyun"

    def __init__(self) -> None:
        _require(
            SMS_ALIYUN_ACCESS_KEY_ID=settings.SMS_ALIYUN_ACCESS_KEY_ID,
            SMS_ALIYUN_ACCESS_KEY_SECRET=settings.SMS_ALIYUN_ACCESS_KEY_SECRET,
            SMS_TEMPLATE=settings.SMS_TEMPLATE,
        )

    def send_code(self, mobile: str, code: str, minutes: int) -> None:
        self._send(mobile, settings.SMS_TEMPLATE, {"code": code})

    def send_notice(self, mobile: str, ref: str, what: str) -> None:
        """A notice (消息提醒) with ``SMS_NOTICE_TEMPLATE``: ``${ref}`` and ``${what}``."""
        self._send(mobile, settings.SMS_NOTICE_TEMPLATE, {"ref": ref, "what": what})

    def _send(self, mobile: str, template: str, params: dict[str, str]) -> None:
        # Imported here: only a site configured for Aliyun loads its SDK.
        from alibabacloud_dysmsapi20170525 import models as sms_models  # noqa: PLC0415
        from alibabacloud_dysmsapi20170525.client import Client  # noqa: PLC0415
        from alibabacloud_tea_openapi import models as api_models  # noqa: PLC0415
        from alibabacloud_tea_util import models as util_models  # noqa: PLC0415

        scheme, host = _endpoint(settings.SMS_ALIYUN_ENDPOINT)
        millis = settings.SMS_TIMEOUT * 1000
        client = Client(
            api_models.Config(
                access_key_id=settings.SMS_ALIYUN_ACCESS_KEY_ID,
                access_key_secret=settings.SMS_ALIYUN_ACCESS_KEY_SECRET,
                endpoint=host,
                protocol=scheme,
                connect_timeout=millis,
                read_timeout=millis,
            )
        )
        request = sms_models.SendSmsRequest(
            phone_numbers=mobile,
            sign_name=settings.SMS_SIGN_NAME,
            template_code=template,
            template_param=json.dumps(params, ensure_ascii=False),
        )
        runtime = util_models.RuntimeOptions(
            autoretry=False, connect_timeout=millis, read_timeout=millis
        )
        try:
            body = client.send_sms_with_options(request, runtime).body
        except Exception as exc:  # the SDK raises many kinds: all of them mean "not sent"
            raise SmsDeliveryError(type(exc).__name__) from None
        if body is None or body.code != "OK":
            raise SmsDeliveryError(f"answer {getattr(body, 'code', None)}")


class TencentBackend:
    """Tencent Cloud SMS (2021-01-11, ``SendSms``) through the official SDK; the template takes
    the code as {1} and the minutes as {2}."""

    name = "tencent"

    def __init__(self) -> None:
        _require(
            SMS_TENCENT_SECRET_ID=settings.SMS_TENCENT_SECRET_ID,
            SMS_TENCENT_SECRET_KEY=settings.SMS_TENCENT_SECRET_KEY,
            SMS_TENCENT_SDK_APP_ID=settings.SMS_TENCENT_SDK_APP_ID,
            SMS_TEMPLATE=settings.SMS_TEMPLATE,
        )

    def send_code(self, mobile: str, code: str, minutes: int) -> None:
        self._send(mobile, settings.SMS_TEMPLATE, [code, str(minutes)])

    def send_notice(self, mobile: str, ref: str, what: str) -> None:
        """A notice (消息提醒) with ``SMS_NOTICE_TEMPLATE``: {1} the reference, {2} what."""
        self._send(mobile, settings.SMS_NOTICE_TEMPLATE, [ref, what])

    def _send(self, mobile: str, template: str, params: list[str]) -> None:
        # Imported here: only a site configured for Tencent Cloud loads its SDK.
        from tencentcloud.common import credential  # noqa: PLC0415
        from tencentcloud.common.profile.client_profile import ClientProfile  # noqa: PLC0415
        from tencentcloud.common.profile.http_profile import HttpProfile  # noqa: PLC0415
        from tencentcloud.sms.v20210111 import models, sms_client  # noqa: PLC0415

        scheme, host = _endpoint(settings.SMS_TENCENT_ENDPOINT)
        profile = ClientProfile(
            httpProfile=HttpProfile(protocol=scheme, endpoint=host, reqTimeout=settings.SMS_TIMEOUT)
        )
        client = sms_client.SmsClient(
            credential.Credential(settings.SMS_TENCENT_SECRET_ID, settings.SMS_TENCENT_SECRET_KEY),
            settings.SMS_TENCENT_REGION,
            profile,
        )
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [f"+86{mobile}"]
        request.SmsSdkAppId = settings.SMS_TENCENT_SDK_APP_ID
        request.SignName = settings.SMS_SIGN_NAME
        request.TemplateId = template
        request.TemplateParamSet = params
        try:
            answer = client.SendSms(request)
        except Exception as exc:  # the SDK raises many kinds: all of them mean "not sent"
            raise SmsDeliveryError(type(exc).__name__) from None
        statuses = answer.SendStatusSet or []
        if not statuses or statuses[0].Code != "Ok":
            raise SmsDeliveryError(f"answer {statuses[0].Code if statuses else None}")


BACKENDS = {"console": ConsoleBackend, "aliyun": AliyunBackend, "tencent": TencentBackend}


def sms_enabled() -> bool:
    return bool(settings.SMS_BACKEND)


def get_backend() -> SmsBackend:
    name = settings.SMS_BACKEND
    backend_class = BACKENDS.get(name) or import_string(name)
    return backend_class()


def notices_enabled() -> bool:
    """SMS notices (消息提醒): the console backend, or a provider with SMS_NOTICE_TEMPLATE."""
    return sms_enabled() and (
        settings.SMS_BACKEND == "console" or bool(settings.SMS_NOTICE_TEMPLATE)
    )


def send_notice(mobile: str, ref: str, what: str) -> None:
    """One notice to ``mobile`` through the configured provider, or ``SmsDeliveryError`` (a
    provider that cannot send notices, or lacks settings, counts as a failure too)."""
    try:
        backend = get_backend()
        sender = getattr(backend, "send_notice", None)
        if sender is None or not notices_enabled():
            raise SmsDeliveryError("no notice template")
        sender(mobile, ref, what)
    except (ImproperlyConfigured, ImportError) as exc:
        raise SmsDeliveryError(type(exc).__name__) from None
    audit.info("sms notice sent user=%s backend=%s", mask_mobile(mobile), settings.SMS_BACKEND)


# --- codes -------------------------------------------------------------------------------------


class SmsError(Exception):
    """A request a person can correct or wait out; ``field`` is where the page shows it."""

    status = 400

    def __init__(self, message: str, field: str = "mobile") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class SmsLimited(SmsError):
    status = 429


class SmsUnavailable(SmsError):
    status = 503


class SmsLockedOut(Exception):
    """A wrong code that locked the account (django-axes): the view answers with the 429 page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def mobile_digest(mobile: str) -> str:
    return salted_hmac("accounts.sms.mobile", mobile, algorithm="sha256").hexdigest()


def code_digest(purpose: str, digest: str, code: str) -> str:
    return salted_hmac(
        "accounts.sms.code", f"{purpose}:{digest}:{code}", algorithm="sha256"
    ).hexdigest()


def _address(request: HttpRequest) -> str:
    address = client_ip(request) or "-"
    if not ADDRESS.fullmatch(address):
        address = hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()
    return address


def may_use_sms(user: User) -> bool:
    """Supervisors always; everybody else (staff, the bureau) when SMS_STAFF_LOGIN is on."""
    return user.is_active and (user.is_supervisor or settings.SMS_STAFF_LOGIN)


def eligible_user(mobile: str) -> User | None:
    """The account of ``mobile`` if it may use SMS codes (one query, whatever the number)."""
    user = get_user_model()._default_manager.filter(mobile=mobile).first()
    return user if user is not None and may_use_sms(user) else None


def _check_limits(digest: str, address: str, now) -> None:
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    by_number = SmsCode.objects.filter(mobile_digest=digest, created_at__gte=day).aggregate(
        day=Count("pk"),
        hour=Count("pk", filter=Q(created_at__gte=hour)),
        minute=Count("pk", filter=Q(created_at__gt=now - timedelta(seconds=RESEND_SECONDS))),
    )
    if by_number["minute"]:
        last = (
            SmsCode.objects.filter(mobile_digest=digest)
            .values_list("created_at", flat=True)
            .first()
        )
        wait = RESEND_SECONDS - int((now - last).total_seconds()) if last else RESEND_SECONDS
        raise SmsLimited(
            _("验证码已发出，请 %(n)d 秒后再重新获取。") % {"n": max(wait, 1)}, "mobile"
        )
    if (
        by_number["hour"] >= settings.SMS_CODES_PER_NUMBER_PER_HOUR
        or by_number["day"] >= settings.SMS_CODES_PER_NUMBER_PER_DAY
    ):
        raise SmsLimited(
            _("这个号码获取验证码的次数太多了，请稍后再试，或使用密码登录。"), "mobile"
        )
    by_address = SmsCode.objects.filter(address=address, created_at__gte=day).aggregate(
        day=Count("pk"), hour=Count("pk", filter=Q(created_at__gte=hour))
    )
    if (
        by_address["hour"] >= settings.SMS_CODES_PER_IP_PER_HOUR
        or by_address["day"] >= settings.SMS_CODES_PER_IP_PER_DAY
    ):
        raise SmsLimited(
            _("这个网络获取验证码的次数太多了，请稍后再试，或使用密码登录。"), "mobile"
        )


def _remember_latency(seconds: float) -> None:
    previous = cache.get(LATENCY_KEY)
    cache.set(LATENCY_KEY, seconds if previous is None else 0.8 * previous + 0.2 * seconds, None)


def send_code(mobile: str, purpose: str, *, request: HttpRequest) -> None:
    """Write a new code for ``mobile`` and send it if the number belongs to someone who may use
    it. Raises ``SmsLimited`` (too soon, too many) or ``SmsUnavailable`` (the provider failed)."""
    now = timezone.now()
    digest = mobile_digest(mobile)
    address = _address(request)
    shown = mask_mobile(mobile)
    try:
        _check_limits(digest, address, now)
    except SmsLimited:
        audit.warning(
            "sms code refused user=%s ip=%s purpose=%s reason=%s",
            shown,
            address,
            purpose,
            "limit",
        )
        raise
    user = eligible_user(mobile)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    SmsCode.objects.filter(created_at__lt=now - timedelta(days=KEEP_DAYS)).delete()
    SmsCode.objects.create(
        purpose=purpose,
        mobile_digest=digest,
        code_digest=code_digest(purpose, digest, code),
        address=address,
        created_at=now,
        expires_at=now + timedelta(minutes=CODE_MINUTES),
    )
    failed = _("短信发送失败，请稍后再试，或使用密码登录。")
    if user is None:
        # Nobody to send to: the same answer in about the same time, outages included.
        if cache.get(DOWN_KEY):
            raise SmsUnavailable(failed)
        time.sleep(min(cache.get(LATENCY_KEY) or 0.0, settings.SMS_TIMEOUT))
        audit.info(
            "sms code withheld user=%s ip=%s purpose=%s reason=%s",
            shown,
            address,
            purpose,
            "no account that may use sms",
        )
        return
    started = time.monotonic()
    try:
        get_backend().send_code(mobile, code, CODE_MINUTES)
    except (SmsDeliveryError, ImproperlyConfigured, ImportError) as exc:
        cache.set(DOWN_KEY, True, PROVIDER_DOWN_SECONDS)
        audit.error(
            "sms send failed user=%s ip=%s purpose=%s backend=%s error=%s",
            shown,
            address,
            purpose,
            settings.SMS_BACKEND,
            str(exc)[:200],
        )
        raise SmsUnavailable(failed) from None
    cache.delete(DOWN_KEY)
    _remember_latency(time.monotonic() - started)
    audit.info(
        "sms code sent user=%s ip=%s purpose=%s backend=%s account=%s",
        shown,
        address,
        purpose,
        settings.SMS_BACKEND,
        user.username,
    )


def verify_code(
    mobile: str, purpose: str, code: str, *, request: HttpRequest, consume: bool = True
) -> User:
    """The account whose latest code for ``purpose`` is ``code``, the code then used up (unless
    ``consume`` is false: the reset checks the new password first). A wrong code counts as a
    failed login. Raises ``SmsError`` on the ``code`` field, or ``SmsLockedOut`` when that
    failure locked the account or the address."""
    now = timezone.now()
    digest = mobile_digest(mobile)
    shown, address = mask_mobile(mobile), _address(request)
    user = eligible_user(mobile)
    with transaction.atomic():
        row = (
            SmsCode.objects.select_for_update()
            .filter(mobile_digest=digest, purpose=purpose)
            .order_by("-created_at", "-pk")
            .first()
        )
        if row is None or row.used_at is not None or row.expires_at <= now:
            outcome = "expired"
        elif row.tries >= MAX_TRIES:
            outcome = "exhausted"
        elif (
            constant_time_compare(row.code_digest, code_digest(purpose, digest, code))
            and user is not None
        ):
            outcome = "ok"
        else:
            outcome = "wrong"
            row.tries += 1
            row.save(update_fields=["tries"])
        if outcome == "ok" and consume:
            row.used_at = now
            row.save(update_fields=["used_at"])
    if outcome == "ok":
        if consume:
            audit.info(
                "sms code used user=%s ip=%s purpose=%s account=%s",
                shown,
                address,
                purpose,
                user.username,
            )
        return user
    audit.warning(
        "sms code refused user=%s ip=%s purpose=%s reason=%s", shown, address, purpose, outcome
    )
    if outcome == "expired":
        raise SmsError(_("验证码已失效，请重新获取。"), "code")
    if outcome == "exhausted":
        raise SmsError(_("验证码输错次数太多，已作废，请重新获取。"), "code")
    # Like a wrong password: the address's count, django-axes' count for the account, the log.
    user_login_failed.send(sender=__name__, credentials={"username": mobile}, request=request)
    if getattr(request, "axes_locked_out", False):
        raise SmsLockedOut("account")
    left = MAX_TRIES - row.tries
    if left <= 0:
        raise SmsError(_("验证码输错次数太多，已作废，请重新获取。"), "code")
    raise SmsError(_("验证码不对，还可以再试 %(n)d 次。") % {"n": left}, "code")


def reset_password(mobile: str, code: str, password: str, *, request: HttpRequest) -> User:
    """Set a new password for the account of ``mobile`` with an SMS code: the project's
    password rules apply (``SmsError`` on ``new_password1`` if it breaks one; the code stays
    good), then the code is used up, the old password's API keys revoked (``new_password_set``)
    and the event logged."""
    user = verify_code(mobile, SmsCode.Purpose.RESET, code, request=request, consume=False)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise SmsError(" ".join(exc.messages), "new_password1") from None
    with transaction.atomic():
        used = (
            SmsCode.objects.filter(
                mobile_digest=mobile_digest(mobile),
                purpose=SmsCode.Purpose.RESET,
                used_at__isnull=True,
                expires_at__gt=timezone.now(),
            )
            .order_by("-created_at", "-pk")
            .values_list("pk", flat=True)[:1]
        )
        if not SmsCode.objects.filter(pk__in=list(used)).update(used_at=timezone.now()):
            raise SmsError(_("验证码已失效，请重新获取。"), "code")  # used meanwhile
        user.set_password(password)
        user.save(update_fields=["password"])
        new_password_set(user)
    audit.info(
        "password reset by sms user=%s ip=%s account=%s",
        mask_mobile(mobile),
        _address(request),
        user.username,
    )
    return user
