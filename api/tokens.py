"""API keys: made, shown once, stored hashed, revoked; and the per-key rate limit.

Both the JSON API (``/api/v1/``) and Open311 (``/open311/v2/``) authenticate through
``user_for_key``; a key works only while its user could log in and, for a supervisor, only while
the appointment runs (a dismissed supervisor's keys stop at once). A new password, set by the
person or by an administrator, revokes the keys made under the old one, as it ends the other
sessions: a lost phone's mini-program stops with it.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from supervision.security import client_ip
from supervision.services import is_serving_supervisor

from .models import ApiToken

KEY_PREFIX = "qzjd_"


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(user, name: str) -> tuple[ApiToken, str]:
    """Make a key for ``user``; returns the row and the key, which is never retrievable again."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip()[:60] or "API", prefix=raw[:12], digest=_digest(raw)
    )
    return token, raw


def revoke_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def revoke_all(user) -> int:
    """Revoke every live key of ``user``; returns how many. Called on a new password
    (``accounts.passwords.new_password_set``) and on a dismissal
    (``supervision.residents.dismiss_supervisor``)."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def token_for_key(raw: str | None) -> ApiToken | None:
    """The live token for a key, or None: unknown, revoked, user inactive, supervisor dismissed."""
    if not raw or not raw.startswith(KEY_PREFIX) or len(raw) > 100:
        return None
    token = (
        ApiToken.objects.select_related("user", "user__supervisor", "user__department")
        .filter(digest=_digest(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    user = token.user
    if user.is_supervisor and not is_serving_supervisor(user):
        return None
    now = timezone.now()
    # At most one write a minute per key.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def user_for_key(raw: str | None):
    token = token_for_key(raw)
    return token.user if token else None


def _over_limit(identity: str, limit: int) -> bool:
    window = int(timezone.now().timestamp() // 60)
    key = f"ratelimit:{identity}:{window}"
    cache.add(key, 0, timeout=70)
    try:
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=70)
        count = 1
    return count > limit


def rate_limited(token: ApiToken) -> bool:
    """True when this key has used up its requests for the current minute.

    ``settings.API_RATE_LIMIT`` requests per minute per key (default 120), one quota for the JSON
    API and Open311 together, counted in the cache (Redis in production, so the count is shared
    by every app process).
    """
    return _over_limit(f"key:{token.pk}", getattr(settings, "API_RATE_LIMIT", 120))


def address_rate_limited(request) -> bool:
    """The same for requests without a (valid) key, per client address:
    ``settings.API_ANONYMOUS_RATE_LIMIT`` a minute (default 60)."""
    limit = getattr(settings, "API_ANONYMOUS_RATE_LIMIT", 60)
    return _over_limit(f"address:{client_ip(request)}", limit)
