"""Headers on every response, also in development (``check --deploy`` does not look at CSP)."""

from __future__ import annotations

from xml.sax.saxutils import escape

from django.conf import settings
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.http.multipartparser import MultiPartParserError
from django.utils.http import url_has_allowed_host_and_scheme

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",  # all JavaScript is in static files: no inline scripts, no eval
        "style-src 'self' 'unsafe-inline'",  # style attributes (progress bar widths)
        # Bootstrap's form controls draw their arrows as data: SVG; blob: shows the photos a
        # person chose, before they are sent.
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "media-src 'self' blob:",  # voice notes, and one's own recording before it is sent
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault(
            "Content-Security-Policy", getattr(settings, "CONTENT_SECURITY_POLICY", CSP)
        )
        response.setdefault("Referrer-Policy", "same-origin")
        response.setdefault("X-Content-Type-Options", "nosniff")
        response.setdefault(
            # The phone records voice notes (按住说话) on our own pages only.
            "Permissions-Policy",
            "camera=(self), geolocation=(self), microphone=(self)",
        )
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "Cache-Control" not in response:
            # Pages for a logged-in person show personal data: never kept by a shared cache.
            response["Cache-Control"] = "no-store"
        return response


def as_id(value) -> int | None:
    """A primary key from the query string, or None: ASCII digits only, at most 18 of them."""
    text = str(value or "")
    if text.isascii() and text.isdecimal() and len(text) <= 18:
        return int(text)
    return None


def client_ip(request: HttpRequest) -> str:
    """The visitor's address; behind TRUSTED_PROXY_COUNT reverse proxies, taken from the
    X-Forwarded-For entries those proxies appended."""
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies:
        hops = [
            h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()
        ]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def serve_private_file(
    field, *, content_type: str = "image/jpeg", public: bool = False
) -> HttpResponse:
    """A stored file after the view has checked who may see it: through nginx's internal
    location (X-Accel-Redirect) when MEDIA_ACCEL_REDIRECT is set, else streamed by Django.

    Only what anybody may see (``public``: a public issue's photos) is kept by browsers and
    caches, for a day; everything else is ``no-store``, so it is not on the device after logout.
    """
    prefix = getattr(settings, "MEDIA_ACCEL_REDIRECT", "")
    if prefix:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = f"{prefix.rstrip('/')}/{field.name}"
    else:
        try:
            response = FileResponse(field.open("rb"), content_type=content_type)
        except (FileNotFoundError, ValueError):
            raise Http404 from None
    response["Cache-Control"] = "public, max-age=86400" if public else "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def safe_next(request: HttpRequest, target: str | None, default: str = "/") -> str:
    """A local path to go back to: never another site, never a URL name to reverse."""
    target = target or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}
    ):
        return target
    return default


class RejectNulMiddleware:
    """A NUL character in a query or form value is never meant: answer 400 before any view
    (PostgreSQL refuses NUL in text, which would otherwise surface as a server error)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        values = list(request.GET.lists())
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            try:
                values += list(request.POST.lists())
            except MultiPartParserError:
                return self.refuse(request, "body", "请求体不是有效的表单数据。")
        for key, items in values:
            if "\x00" in key or any("\x00" in v for v in items):
                return self.refuse(request, key.replace("\x00", ""))
        return self.get_response(request)

    @staticmethod
    def refuse(
        request: HttpRequest, field: str, message: str = "请求中含有无效字符。"
    ) -> HttpResponse:
        """The interfaces get their machine-readable error shape, naming the field."""
        if request.path.startswith("/api/"):
            body = {"detail": message, "errors": [{"field": field, "message": message}]}
            return JsonResponse(body, status=400, json_dumps_params={"ensure_ascii": False})
        if request.path.startswith("/open311/"):
            description = f"{field}: {message}"
            if request.path.endswith(".xml"):
                xml = (
                    '<?xml version="1.0" encoding="utf-8"?><errors><error><code>400</code>'
                    f"<description>{escape(description)}</description></error></errors>"
                )
                return HttpResponseBadRequest(xml, content_type="text/xml; charset=utf-8")
            return JsonResponse(
                [{"code": 400, "description": description}],
                status=400,
                safe=False,
                json_dumps_params={"ensure_ascii": False},
            )
        return HttpResponseBadRequest(message)


def mask_mobile(mobile: str | None) -> str:
    """138****5678: staff see that a number exists, the bureau sees it."""
    if not mobile:
        return ""
    return f"{mobile[:3]}****{mobile[-4:]}" if len(mobile) >= 7 else "****"
