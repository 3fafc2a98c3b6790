"""When something the site stands on is away: 503 「系统繁忙，请稍后再试」, never a 500 page.

PostgreSQL restarting, Redis stopped, the photo disk full: each is a moment to wait, not a bug,
and the person should be told so in words they understand, with ``Retry-After``. The phone's
upload script (static/js/issue-form.js) keeps an issue on the phone and sends it again on any
5xx, so a 503 also tells it to hold on to what the person typed.

``ServiceUnavailableMiddleware`` answers for an error of this kind wherever it is raised:

- in a view (the usual case) through ``process_exception``, before Django logs it;
- in a middleware below this one (the session or the user looked up while the database is
  away): Django has already turned it into a 500 response by then, so the
  ``got_request_exception`` signal marks the request, and the 500 is replaced here.

The page is a self-contained template (templates/503.html): ``base.html`` asks the database for
the bell's count, and the database may be what is missing. The JSON API answers its own error
shape. Each such answer is logged as one line; the traceback Django would log for the second
case is left out (``_QuietOutages``), so that an outage of a minute does not bury the log.
"""

from __future__ import annotations

import errno
import logging
import sys

import redis
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10
BUSY = "系统繁忙，请稍后再试"
STORAGE_FULL = "服务器存储空间不足，刚才的照片没有保存。"
# Marks a request whose error was raised below this middleware (see the module's doc).
MARK = "_dependency_unavailable"

OUTAGES = (
    OperationalError,  # PostgreSQL refusing, restarting, or the pool timing out
    InterfaceError,  # a connection that died under us
    redis.exceptions.ConnectionError,  # Redis stopped (also BusyLoadingError while it loads)
    redis.exceptions.TimeoutError,
)


def is_outage(error: BaseException | None) -> bool:
    """Whether ``error`` means a dependency is away (so: wait and retry), not a bug."""
    return isinstance(error, OUTAGES) or is_disk_full(error)


def is_disk_full(error: BaseException | None) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def unavailable_response(request: HttpRequest, error: BaseException) -> HttpResponse:
    """The 503 a person (or an API client) gets while ``error``'s dependency is away."""
    log.warning(
        "503 %s %s: %s: %s",
        request.method,
        request.path,
        type(error).__name__,
        (str(error).strip().splitlines() or [""])[0][:200],
    )
    # Who is asking cannot be looked up now: the middleware above must not try again.
    request.user = AnonymousUser()
    note = STORAGE_FULL if is_disk_full(error) else ""
    if request.path.startswith("/api/"):
        detail = f"{note}{BUSY}。" if note else f"{BUSY}。"
        response = JsonResponse(
            {"detail": detail, "errors": []}, status=503, json_dumps_params={"ensure_ascii": False}
        )
    else:
        page = render_to_string(
            "503.html",
            {"busy": BUSY, "note": note, "hotline": settings.SUPERVISION["HOTLINE"]},
        )
        response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    response._has_been_logged = True  # the line above is its log line (django.utils.log)
    return response


class ServiceUnavailableMiddleware:
    """See the module's doc. Sits near the top of MIDDLEWARE, so that the session, the user and
    the counters below it are covered."""

    def __init__(self, get_response):
        self.get_response = get_response
        logging.getLogger("django.request").addFilter(QUIET_OUTAGES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        error = getattr(request, MARK, None)
        if error is not None and response.status_code == 500:
            return unavailable_response(request, error)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception):
        if is_outage(exception):
            return unavailable_response(request, exception)
        return None


def _mark(sender, request: HttpRequest | None = None, **kwargs) -> None:
    """Django is about to turn an error raised outside a view into a 500: remember an outage."""
    error = sys.exc_info()[1]
    if request is not None and is_outage(error):
        setattr(request, MARK, error)


got_request_exception.connect(_mark, dispatch_uid="supervision-unavailable")


class _QuietOutages(logging.Filter):
    """Drops Django's "Internal Server Error" record (with its traceback) for an outage: the
    middleware logs its own line for that request."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and is_outage(record.exc_info[1]))


QUIET_OUTAGES = _QuietOutages()
