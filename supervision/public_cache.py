"""The public pages residents open from QR codes (the home page, the project list, a project's
page and its notice), kept as rendered HTML for anonymous visitors.

An entry's key holds the *public versions* (``PublicVersion``, two rows) of what its page shows:
every committed save or deletion of that replaces them, so a change shows at once in the process
that made it, and within ``VERSION_SECONDS`` in every other (at once everywhere with a shared
cache, ``CACHE_URL``). The two parts:

- ``CATALOGUE``: projects and their places and works, departments and supervisors, acceptances,
  surveys, consultations, patrols, the calendar. Every page shows some of it.
- ``ISSUES``: issues and their photos, which only the home page (its figures) and a project's
  page (its public issues and residents' opinions) show. An issue that is not public changes
  them only when it moves the figures (``rollups.ISSUE_FIELDS``): a comment or a deadline on it
  does not. The project list and the site notice show no issue, so the day's filings and steps
  never throw theirs away.

Bulk loads that send no signals (``generate_scale``) call ``public_changed()`` themselves.
Entries live a minute at most, so the clock words (「3 小时前」, 「已超期」) never drift further.

The pages carry forms (长辈模式, the language switch) with a CSRF token: the cached HTML holds a
placeholder that each visitor's own token replaces. A visitor with a message waiting (after
logging out, say) is served fresh. Each answer has an ``ETag`` (the key and the minute) and a
``Last-Modified`` (the version's time): a browser that already has the page gets a 304.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.core.cache import caches
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.middleware.csrf import get_token
from django.utils import translation
from django.utils.http import http_date, parse_http_date_safe

from .models import Issue, PublicVersion
from .rollups import ISSUE_FIELDS

# What the home page's figures and a project's residents' opinions count of an issue.
FIGURE_FIELDS = frozenset(
    {*ISSUE_FIELDS, *(f"{name}_id" for name in ISSUE_FIELDS), "is_public", "area", "households"}
)

log = logging.getLogger(__name__)

CACHE = "fragments"
VERSION_KEY = "public-version"
VERSION_SECONDS = 5
# The parts of what the pages show, each a ``PublicVersion`` row (see the module's doc).
CATALOGUE, ISSUES = 1, 2
PAGE_SECONDS = 60
# Stands in the cached HTML where each visitor's CSRF token goes.
CSRF_PLACEHOLDER = "public-cache-csrf-token-placeholder"


def _cache():
    return caches[CACHE]


def _version_key(part: int) -> str:
    return VERSION_KEY if part == CATALOGUE else f"{VERSION_KEY}-{part}"


def public_version(parts: tuple[int, ...] = (CATALOGUE, ISSUES)) -> tuple[int, ...]:
    """Numbers, one per part, that change whenever something of that part may have."""
    keys = [_version_key(part) for part in parts]
    try:
        known = _cache().get_many(keys)
    except Exception as error:  # a cache that does not answer is a cache that is empty
        log.warning("public page cache unavailable: %s", error)
        known = {}
    missing = [part for part, key in zip(parts, keys, strict=True) if key not in known]
    if missing:
        stored = dict(PublicVersion.objects.filter(pk__in=missing).values_list("pk", "version"))
        for part in missing:
            known[_version_key(part)] = stored.get(part) or 0
            _set(_version_key(part), known[_version_key(part)], VERSION_SECONDS)
    return tuple(known[key] for key in keys)


def _set(key: str, value: Any, seconds: int) -> None:
    try:
        _cache().set(key, value, seconds)
    except Exception as error:
        log.warning("public page cache unavailable: %s", error)


def public_changed(part: int | None = None, **kwargs) -> None:
    """Signal receiver (and a call after bulk loads, for every part): the public pages showing
    ``part`` are old, now and once the change is committed."""
    if kwargs.get("action", "post_").startswith("pre_"):
        return  # m2m_changed: only after the rows have changed
    if kwargs.get("raw"):
        return  # loaddata (import_data), which calls this once at its end
    parts = (CATALOGUE, ISSUES) if part is None else (part,)

    def bump() -> None:
        version = time.time_ns()
        for each in parts:
            PublicVersion.objects.update_or_create(pk=each, defaults={"version": version})
            _set(_version_key(each), version, VERSION_SECONDS)

    bump()
    if transaction.get_connection().in_atomic_block:
        # A page another request builds from the old rows before the commit gets the version
        # just set; the second one, after the commit, leaves it behind.
        transaction.on_commit(bump)


def catalogue_changed(**kwargs) -> None:
    public_changed(CATALOGUE, **kwargs)


def issue_changed(sender, instance, created: bool = False, update_fields=None, **kwargs) -> None:
    """An issue saved or deleted: the home page's figures and its project's page are old, unless
    the issue is not public and nothing the figures count has changed."""
    quiet = not (created or update_fields is None or instance.is_public)
    if quiet and not FIGURE_FIELDS.intersection(update_fields):
        return
    public_changed(ISSUES, **kwargs)


def photo_changed(sender, instance, **kwargs) -> None:
    """Photos show on the public pages with their public issue only (read again: the issue may
    be going too)."""
    if Issue.objects.filter(pk=instance.issue_id, is_public=True).exists():
        public_changed(ISSUES, **kwargs)


def connect_signals(models: Iterable, through: Iterable, *, issue, photo) -> None:
    for model in models:
        uid = f"public-{model._meta.label_lower}"
        post_save.connect(catalogue_changed, sender=model, dispatch_uid=f"{uid}-save")
        post_delete.connect(catalogue_changed, sender=model, dispatch_uid=f"{uid}-delete")
    for model in through:
        uid = f"public-{model._meta.label_lower}"
        m2m_changed.connect(catalogue_changed, sender=model, dispatch_uid=f"{uid}-m2m")
    for model, receiver in ((issue, issue_changed), (photo, photo_changed)):
        uid = f"public-{model._meta.label_lower}"
        post_save.connect(receiver, sender=model, dispatch_uid=f"{uid}-save")
        post_delete.connect(receiver, sender=model, dispatch_uid=f"{uid}-delete")


def _fresh_only(request: HttpRequest) -> bool:
    """Who gets the page built for them: people logged in, and visitors with a message waiting
    (the messages framework keeps it in a cookie, or in the session)."""
    if request.method not in ("GET", "HEAD") or request.user.is_authenticated:
        return True
    if "messages" in request.COOKIES:
        return True
    session = getattr(request, "session", None)
    return bool(session is not None and request.COOKIES.get("sessionid") and "_messages" in session)


def cached_public_page(
    view: Callable[..., HttpResponse] | None = None, *, issues: bool = True
) -> Callable:
    """Serve ``view``'s page to anonymous visitors from the cache (see the module's doc); with
    ``issues=False`` for a page that shows no issue (``@cached_public_page(issues=False)``)."""
    if view is None:
        return lambda view: cached_public_page(view, issues=issues)
    shown = (CATALOGUE, ISSUES) if issues else (CATALOGUE,)

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if _fresh_only(request):
            return view(request, *args, **kwargs)
        version = public_version(shown)
        minute = int(time.time() // PAGE_SECONDS)
        parts = (
            request.get_host(),  # the QR codes hold the page's own address
            request.path,
            request.META.get("QUERY_STRING", ""),
            translation.get_language(),
            request.COOKIES.get("elder") == "1",
            request.COOKIES.get("region", ""),  # the county-level city chosen (views.home)
        )
        key = (
            "public:" + hashlib.blake2b(repr((parts, version)).encode(), digest_size=12).hexdigest()
        )
        etag = f'"{key[7:]}-{minute}"'
        modified = max(version) // 1_000_000_000 or None
        if etag in request.headers.get("If-None-Match", ""):
            return _not_modified(etag, modified)
        since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
        if since and modified and modified <= since and "If-None-Match" not in request.headers:
            return _not_modified(etag, modified)
        try:
            entry = _cache().get(key)
        except Exception as error:
            log.warning("public page cache unavailable: %s", error)
            entry = None
        if entry is None:
            request.public_cache_csrf = CSRF_PLACEHOLDER
            response = view(request, *args, **kwargs)
            if response.status_code != 200 or response.streaming:
                return response
            content_type = response.get("Content-Type", "text/html; charset=utf-8")
            entry = (response.content.decode(response.charset), content_type)
            _set(key, entry, PAGE_SECONDS)
        html, content_type = entry
        response = HttpResponse(
            html.replace(CSRF_PLACEHOLDER, get_token(request)), content_type=content_type
        )
        response["ETag"] = etag
        if modified:
            response["Last-Modified"] = http_date(modified)
        return response

    return wrapper


def _not_modified(etag: str, modified: int | None) -> HttpResponse:
    response = HttpResponseNotModified()
    response["ETag"] = etag
    if modified:
        response["Last-Modified"] = http_date(modified)
    return response
