"""Open311 GeoReport v2 under ``/open311/v2/``: the standard interface civic tools speak.

What is served (JSON and XML, as the specification requires):

- ``discovery.<fmt>``; ``services.<fmt>``; ``services/<code>.<fmt>`` (also ``service/<code>``, the
  path the PyPI ``open311`` client asks for); ``requests.<fmt>`` GET and POST;
  ``requests/<id>.<fmt>`` (also ``request/<id>``, the path in the Swagger file).
- service_code = our issue category; service_request_id = the issue's id (as in ``/issues/<id>/``;
  the human reference ``2023-00042`` is in ``service_notice``).
- status: our final states (``Issue.FINAL_STATUSES``: closed, rejected, withdrawn) are ``closed``,
  every other state ``open``; ``status_notes`` says our state in words.

Choices, for the next engineer:

- **Who reads what.** Without a key, a GET sees only public issues (``is_public``), the same rule
  as everywhere (``issue_visibility``). With a valid ``api_key`` a GET sees what the key's user may
  see under ``issue_visibility`` — so a supervisor's client can read back the request it just
  filed, which is not public until the bureau makes it so. Sessions are ignored: the interface
  authenticates by key only, so a cookie can never widen what a cross-site GET returns. Whoever
  asks, the output never carries the reporter (no name, account or mobile), and an issue seen
  only through a key gets its full description; an anonymous reader gets the one-line title, as
  on the public project page.
- **media_url** is the absolute address of the issue's first before-photo through ``/photos/<id>/``,
  and only for public issues: that view serves a public issue's photos to anyone, whereas for a
  non-public issue the address would need a session the Open311 client does not have.
- **POST.** Form-encoded (the specification); ``api_key`` and ``jurisdiction_id`` may also come in
  the query string (the ``open311`` client sends them there). Only a serving supervisor may file.
  ``media_url`` is never fetched (no requests from our server to addresses a client chooses): it
  is recorded as a link in the issue's description, like ``address_string``. A ``media`` file in
  a multipart POST goes through the one photo intake (``prepare_photos``). ``lat``/``long`` are the
  position only. Fields of the specification that identify the person (``email``, ``phone``,
  ``first_name``, ``last_name``, ``device_id``, ``account_id``) are accepted and dropped: the key
  says who files, and we keep no second copy of anyone's contact data. Any other field that is
  neither in the specification nor an ``attribute[...]`` of the service is refused with 400 naming
  it, so a typo never disappears silently.
- **Project.** ``attribute[project]`` carries the project id. At province scale (2,000 projects) a
  list of every project would be useless in a client, so the definition has a string attribute;
  when the request for the definition carries a supervisor's key, the attribute becomes a list of
  the projects that supervisor watches (usually one or two). Left out, it defaults to the
  supervisor's only project; with several, the answer names the field and lists their ids.
  Neighbourhoods have no coordinates, so ``lat``/``long`` cannot pick the project.

Errors are the specification's list, ``[{"code": 400, "description": "lat: …"}]`` (XML:
``<errors><error><code/><description/></error></errors>``), every description starting with the
field it is about; a malformed request is a 4xx, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import wraps
from typing import Any
from xml.etree import ElementTree as ET

from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    ValidationError,
)
from django.core.validators import URLValidator
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.datastructures import MultiValueDict
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from supervision import keyset, services
from supervision.access import watched_projects
from supervision.forms import IssueForm
from supervision.models import Issue, Photo, Project, ScopeItem, issue_visibility, issue_visible

from .models import ApiToken
from .tokens import address_rate_limited, rate_limited, token_for_key

Status = Issue.Status
CLOSED_STATUSES = frozenset(Issue.FINAL_STATUSES)
FORMATS = ("json", "xml")
MAX_RESULTS = 1000
DEFAULT_WINDOW = timedelta(days=90)
MAX_IDS = 1000
# When this interface last changed; clients compare it (discovery ``changeset``).
CHANGESET = "2026-11-30T00:00:00+08:00"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
KEY_PAGE = "/me/api-keys/"

COMMON_PARAMS = frozenset({"api_key", "jurisdiction_id"})
GET_REQUESTS_PARAMS = COMMON_PARAMS | {
    "service_request_id",
    "service_code",
    "start_date",
    "end_date",
    "status",
}
POST_PARAMS = COMMON_PARAMS | {
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "description",
    "media_url",
}
# In the specification, but who files is the key's user: accepted and never stored.
IDENTITY_PARAMS = frozenset(
    {"email", "device_id", "account_id", "first_name", "last_name", "phone"}
)
ATTRIBUTE = re.compile(r"^attribute\[([a-z_]{1,30})\]$")
MAX_ADDRESS = 200
MAX_MEDIA_URL = 500

# XML: the element each list's items get, per the GeoReport v2 examples.
CHILD_TAGS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}


class Open311Error(Exception):
    """A request we answer with a 4xx; ``errors`` are ``(field, message)`` pairs."""

    def __init__(self, status: int, errors: Iterable[tuple[str, str]]) -> None:
        self.status = status
        self.errors = list(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors))


def _fail(status: int, field: str, message: str) -> Open311Error:
    return Open311Error(status, [(field, message)])


# --- rendering ---------------------------------------------------------------------------------


# Characters XML 1.0 cannot carry at all (escaping does not help): dropped from the output.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return XML_ILLEGAL.sub("", str(value))


def _xml_fill(element: ET.Element, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _xml_fill(ET.SubElement(element, key), item)
    elif isinstance(value, list):
        tag = CHILD_TAGS.get(element.tag, "item")
        for item in value:
            _xml_fill(ET.SubElement(element, tag), item)
    else:
        element.text = _xml_value(value)


def to_xml(root: str, data: Any) -> bytes:
    """``data`` as GeoReport XML under ``root``: dicts become child elements, lists repeat the
    element ``CHILD_TAGS`` names, None is an empty element, booleans are ``true``/``false``."""
    element = ET.Element(root)
    _xml_fill(element, data)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="utf-8")


def _render(fmt: str, root: str, data: Any, status: int = 200) -> HttpResponse:
    if fmt == "xml":
        response = HttpResponse(
            to_xml(root, data), content_type="text/xml; charset=utf-8", status=status
        )
    else:
        response = JsonResponse(
            data,
            safe=False,
            status=status,
            json_dumps_params={"ensure_ascii": False},
            content_type="application/json; charset=utf-8",
        )
    add_never_cache_headers(response)
    return response


def error_response(fmt: str, error: Open311Error) -> HttpResponse:
    body = [
        {"code": error.status, "description": f"{field}: {message}"}
        for field, message in error.errors
    ]
    response = _render(fmt, "errors", body, status=error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = 'api_key realm="open311"'
    if error.status == 429:
        response["Retry-After"] = "60"
    return response


def open311_view(*methods: str) -> Callable:
    """Method check, and every refusal (ours, or Django's on a malformed body) as an error list."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, fmt: str, **kwargs) -> HttpResponse:
            allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())
            if fmt not in FORMATS:
                error = _fail(404, "format", _("只提供 json 和 xml 两种格式"))
                return error_response("json", error)
            try:
                if request.method not in allowed:
                    error = _fail(405, "method", _("不支持 %(m)s 请求") % {"m": request.method})
                    response = error_response(fmt, error)
                    response["Allow"] = ", ".join(sorted(allowed))
                    return response
                return view(request, *args, fmt=fmt, **kwargs)
            except Open311Error as error:
                return error_response(fmt, error)
            except RequestDataTooBig:
                return error_response(fmt, _fail(413, "body", _("请求体过大")))
            except TooManyFieldsSent:
                return error_response(fmt, _fail(400, "body", _("字段过多")))
            except (MultiPartParserError, SuspiciousOperation, UnicodeDecodeError):
                return error_response(fmt, _fail(400, "body", _("无法解析的请求体")))

        return wrapper

    return decorate


# --- reading parameters ------------------------------------------------------------------------


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _params(request: HttpRequest, allowed: frozenset[str]) -> dict[str, str]:
    """One value per field, from the query string and (for a POST) the form body.

    A field given twice is refused (which one would count?), as is any field that is neither
    allowed here nor, on a POST, an identity field or an ``attribute[...]`` (whose codes the
    caller checks against the service)."""
    posting = request.method == "POST"
    values: dict[str, list[str]] = {}
    sources = [request.GET]
    if posting:
        # Never read the body of a form post here: a multipart upload may be large.
        if (request.content_type or "") not in _FORM_TYPES and request.body:
            raise _fail(
                415,
                "Content-Type",
                _("请用 application/x-www-form-urlencoded 或 multipart/form-data 提交"),
            )
        sources.append(request.POST)
    for source in sources:
        for key, items in source.lists():
            values.setdefault(key, []).extend(items)
    if posting:
        for key in request.FILES:
            if key != "media":
                values.setdefault(key, []).append("")

    def known(key: str) -> bool:
        return key in allowed or (
            posting and (key in IDENTITY_PARAMS or ATTRIBUTE.match(key) is not None)
        )

    unknown = sorted(key for key in values if not known(key))
    if unknown:
        raise Open311Error(400, [(name, _("不是本接口的参数")) for name in unknown])
    repeated = sorted(key for key, items in values.items() if len(items) > 1)
    if repeated:
        raise Open311Error(400, [(name, _("只能给一个值")) for name in repeated])
    return {key: items[0] for key, items in values.items()}


def _token(
    params: dict[str, str], *, required: bool, request: HttpRequest | None = None
) -> ApiToken | None:
    """The live token of ``api_key``; a key that is given must be good (never silently ignored).
    Requests without a good key are limited per address instead."""
    raw = params.get("api_key", "").strip()
    token = token_for_key(raw) if raw else None
    if token is None and request is not None and address_rate_limited(request):
        raise _fail(429, "api_key", _("请求过于频繁，请一分钟后再试"))
    if not raw:
        if required:
            raise _fail(401, "api_key", _("缺少 API 密钥"))
        return None
    if token is None:
        raise _fail(
            401,
            "api_key",
            _("密钥无效：不存在、已吊销，或账号已停用、监督员已解聘"),
        )
    if rate_limited(token):
        raise _fail(429, "api_key", _("请求过于频繁，请一分钟后再试"))
    return token


def _when(params: dict[str, str], field: str, *, end: bool = False) -> datetime | None:
    """An ISO 8601 date-time (a bare date means the start, or the end, of that day here)."""
    raw = params.get(field, "").strip()
    if not raw:
        return None
    try:
        # A bare date first: parse_datetime would take "2023-04-19" as its midnight.
        day = parse_date(raw)
        moment = None if day else parse_datetime(raw)
    except ValueError:
        moment = day = None
    if day is not None:
        moment = datetime.combine(day, time.max if end else time.min)
    if moment is None or not 2000 <= moment.year <= 2100:
        raise _fail(400, field, _("应为 ISO 8601 日期时间，如 2023-04-19T14:37:38+08:00"))
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _codes(raw: str, field: str, allowed: Iterable[str]) -> list[str]:
    allowed = set(allowed)
    codes = [code.strip() for code in raw.split(",") if code.strip()]
    bad = [code for code in codes if code not in allowed]
    if bad or not codes:
        raise _fail(400, field, _("未知的值 %(v)s") % {"v": "、".join(bad) or raw})
    return codes


# --- services ----------------------------------------------------------------------------------


def _service_notice() -> str:
    limits = settings.SUPERVISION
    return _(
        "承办部门在 %(sign)d 个工作日内签收，%(rectify)d 个工作日内整改；"
        "紧急的安全问题 %(urgent)d 小时内签收。"
    ) % {
        "sign": limits["SIGN_FOR_WORKING_DAYS"],
        "rectify": limits["RECTIFY_WORKING_DAYS"],
        "urgent": limits["URGENT_SIGN_FOR_HOURS"],
    }


def _service(code: str, label: str) -> dict:
    return {
        "service_code": code,
        "service_name": str(label),
        "description": _("老旧小区改造中的%(label)s问题") % {"label": label},
        "metadata": True,
        "type": "realtime",
        # The GeoReport v2 schema allows null here, but clients that follow the
        # spec's prose ("keywords separated by comma") expect a string; give one.
        "keywords": ",".join((str(label), str(_("老旧小区改造")))),
        "group": _("老旧小区改造"),
    }


def _choices(choices: Iterable[tuple[str, Any]]) -> list[dict]:
    return [{"key": str(key), "name": str(name)} for key, name in choices]


def _attribute(code: str, datatype: str, description: str, order: int, **extra) -> dict:
    return {
        "variable": True,
        "code": code,
        "datatype": datatype,
        "required": extra.pop("required", False),
        "datatype_description": extra.pop("datatype_description", None),
        "order": order,
        "description": description,
        **extra,
    }


def service_attributes(code: str, projects: list[Project] | None = None) -> list[dict]:
    """The attributes of one category; ``projects`` (a key holder's) turn the project into a list."""
    opinion = code == Issue.Category.OPINION
    if projects:
        project = _attribute(
            "project",
            "singlevaluelist",
            _("反映的是哪个改造项目（只有一个时可不填）"),
            1,
            required=len(projects) > 1,
            values=_choices((p.pk, p.name) for p in projects),
        )
    else:
        project = _attribute(
            "project",
            "string",
            _("改造项目编号，即项目页地址 /projects/<编号>/ 中的数字；只监督一个项目时可不填"),
            1,
            datatype_description=_("整数"),
        )
    attributes = [
        project,
        _attribute("title", "string", _("一句话说明问题（最多 100 字）；不填则取描述的第一行"), 2),
        _attribute(
            "urgency",
            "singlevaluelist",
            _("紧急程度；危及安全、需要马上处理的选“紧急”，不填为“一般”"),
            3,
            values=_choices(Issue.Urgency.choices),
        ),
        _attribute(
            "building",
            "string",
            _("楼栋（最多 20 字）") + (_("：居民意见请写明是哪一幢楼的居民") if opinion else ""),
            4,
            required=opinion,
        ),
        _attribute("unit", "string", _("单元（最多 20 字）"), 5),
        _attribute("location", "string", _("具体部位，如：北面外墙、3 楼楼道（最多 100 字）"), 6),
    ]
    if opinion:
        attributes += [
            _attribute(
                "households",
                "number",
                _("代表多少户居民"),
                7,
                required=True,
                datatype_description=_("1 到 10000 的整数"),
            ),
            _attribute(
                "area",
                "singlevaluelist",
                _("属于改造内容的哪个方面"),
                8,
                values=_choices(ScopeItem.Area.choices),
            ),
        ]
    return attributes


def _category(code: str, *, status: int = 400) -> str:
    if code not in Issue.Category.values:
        raise _fail(
            status,
            "service_code",
            _("未知的类别 %(code)s") % {"code": code},
        )
    return code


def _watched(user) -> list[Project]:
    return list(watched_projects(user).order_by("pk")[:200])


@open311_view("GET")
def discovery(request: HttpRequest, fmt: str) -> HttpResponse:
    _params(request, COMMON_PARAMS)
    base = request.build_absolute_uri(reverse("open311:discovery", kwargs={"fmt": "json"}))
    data = {
        "changeset": CHANGESET,
        "contact": _("%(org)s 监督热线 %(phone)s")
        % {"org": _("市住建局"), "phone": settings.SUPERVISION["HOTLINE"]},
        "key_service": _("群众监督员登录后在 %(url)s 生成 API 密钥")
        % {"url": request.build_absolute_uri(KEY_PAGE)},
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": base.rsplit("/", 1)[0],
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    return _render(fmt, "discovery", data)


@open311_view("GET")
def service_list(request: HttpRequest, fmt: str) -> HttpResponse:
    _params(request, COMMON_PARAMS)
    data = [_service(code, label) for code, label in Issue.Category.choices]
    return _render(fmt, "services", data)


@open311_view("GET")
def service_definition(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    params = _params(request, COMMON_PARAMS)
    _category(code, status=404)
    token = _token(params, required=False, request=request)
    projects = _watched(token.user) if token else None
    data = {"service_code": code, "attributes": service_attributes(code, projects)}
    return _render(fmt, "service_definition", data)


# --- requests: reading -------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return timezone.localtime(moment).isoformat(timespec="seconds") if moment else None


class Words:
    """The words of one answer, translated once per request rather than once per row (a
    thousand rows would otherwise translate every choice label again and again)."""

    def __init__(self) -> None:
        self.status = {value: str(label) for value, label in Status.choices}
        self.category = {value: str(label) for value, label in Issue.Category.choices}
        self.rating = {value: str(label) for value, label in Issue.Rating.choices}
        self.waiting = {
            Status.SUBMITTED: _("待承办部门签收"),
            Status.RECTIFIED: _("待反映人验证"),
            Status.ANSWERED: _("待反映人确认答复"),
        }
        self.deadline = _("整改期限 %(day)s")
        self.rated = _("评价：%(rating)s")
        self.overdue = _("已超期")
        self.reference = _("编号 %(ref)s")


def status_notes(issue: Issue, words: Words | None = None) -> str:
    """Our state in words, with the one fact a citizen asks next (deadline, rating, overdue)."""
    words = words or Words()
    notes = [words.status[issue.status]]
    if issue.status in words.waiting:
        notes.append(words.waiting[issue.status])
    elif issue.status in (Status.ACCEPTED, Status.IN_PROGRESS) and issue.rectify_due_at:
        notes.append(words.deadline % {"day": timezone.localdate(issue.rectify_due_at).isoformat()})
    elif issue.status == Status.CLOSED and issue.rating:
        notes.append(words.rated % {"rating": words.rating[issue.rating]})
    if issue.is_overdue:
        notes.append(words.overdue)
    return "；".join(notes)


def _address(issue: Issue) -> str:
    neighbourhood = issue.project.neighbourhood
    parts = [issue.place, neighbourhood.name, neighbourhood.address, neighbourhood.subdistrict.name]
    return "，".join(part for part in parts if part)


def request_data(
    issue: Issue,
    request: HttpRequest,
    *,
    full: bool,
    position: bool = False,
    words: Words | None = None,
) -> dict:
    """One issue as a GeoReport request. ``full``: the reader may see the issue beyond what is
    public, so the description is the whole text rather than the title. ``position``: the
    reader handles the issue or works on it. The coordinates come from the reporter's own photo
    (with consent, "so that the department finds the spot"): where the supervisor stood, so only
    those who go to the site get them. Never the reporter."""
    words = words or Words()
    closed = issue.status in CLOSED_STATUSES
    photos = getattr(issue, "open311_photos", None)
    if photos is None:
        photos = [p for p in issue.photos.all() if p.kind == Photo.Kind.BEFORE]
    media_url = None
    if issue.is_public and photos:
        media_url = request.build_absolute_uri(reverse("photo", args=[photos[0].pk]))
    updated = issue.closed_at if issue.status == Status.CLOSED and issue.closed_at else None
    return {
        "service_request_id": str(issue.pk),
        "status": "closed" if closed else "open",
        "status_notes": status_notes(issue, words),
        "service_name": words.category[issue.category],
        "service_code": issue.category,
        "description": (issue.description if full else issue.title)[:4000],
        "agency_responsible": issue.department.name if issue.department_id else None,
        "service_notice": words.reference % {"ref": issue.reference},
        "requested_datetime": _iso(issue.created_at),
        "updated_datetime": _iso(updated or issue.updated_at),
        "expected_datetime": _iso(issue.rectify_due_at),
        "address": _address(issue),
        "address_id": None,
        "zipcode": None,
        "lat": float(issue.latitude) if position and issue.latitude is not None else None,
        "long": float(issue.longitude) if position and issue.longitude is not None else None,
        "media_url": media_url,
    }


# What ``request_data`` and ``issue_visible`` read; nothing about the reporter is even loaded.
FIELDS = (
    "reference",
    "category",
    "status",
    "title",
    "description",
    "building",
    "unit",
    "location",
    "latitude",
    "longitude",
    "is_public",
    "rating",
    "created_at",
    "updated_at",
    "closed_at",
    "sign_for_due_at",
    "rectify_due_at",
    "department_id",
    "contractor_id",
    "department__name",
    "project__neighbourhood__name",
    "project__neighbourhood__address",
    "project__neighbourhood__subdistrict__name",
    "project__neighbourhood__subdistrict__region",
)


def _readable(user) -> QuerySet[Issue]:
    """What the public may read, and with a key also what the key's user may read."""
    public = issue_visibility(None)
    condition = issue_visibility(user) if user is not None else public
    issues = Issue.objects.all() if condition is None else Issue.objects.filter(condition | public)
    return (
        issues.select_related("project__neighbourhood__subdistrict", "department")
        .only(*FIELDS)
        .prefetch_related(
            Prefetch(
                "photos",
                queryset=Photo.objects.filter(kind=Photo.Kind.BEFORE)
                .only("pk", "issue_id")
                .order_by("created_at", "pk"),
                to_attr="open311_photos",
            )
        )
    )


def _request_list(issues: Iterable[Issue], request: HttpRequest, user) -> list[dict]:
    words = Words()
    return [
        request_data(
            issue,
            request,
            full=user is not None and issue_visible(user, issue),
            position=user is not None
            and (services.handles(user, issue) or services.works_on(user, issue)),
            words=words,
        )
        for issue in issues
    ]


def _search(params: dict[str, str], user) -> QuerySet[Issue]:
    issues = _readable(user)
    if params.get("service_request_id", "").strip():
        # The specification: ids override every other argument.
        raw = [part.strip() for part in params["service_request_id"].split(",") if part.strip()]
        if len(raw) > MAX_IDS or not all(
            part.isascii() and part.isdigit() and len(part) < 12 for part in raw
        ):
            raise _fail(
                400, "service_request_id", _("应为逗号分隔的编号，最多 %(n)d 个") % {"n": MAX_IDS}
            )
        return issues.filter(pk__in=[int(part) for part in raw]).order_by("-created_at", "-pk")
    if params.get("service_code", "").strip():
        codes = _codes(params["service_code"], "service_code", Issue.Category.values)
        issues = issues.filter(category__in=codes)
    wanted = {"open", "closed"}
    if params.get("status", "").strip():
        wanted = set(_codes(params["status"], "status", ("open", "closed")))
    # Always a list of states, even all of them: with the date window it lets the database use
    # the (status, created_at) index instead of reading every issue.
    issues = issues.filter(
        status__in=[
            value
            for value in Status.values
            if ("closed" if value in CLOSED_STATUSES else "open") in wanted
        ]
    )
    start = _when(params, "start_date")
    end = _when(params, "end_date", end=True)
    if start and end and end < start:
        raise _fail(400, "end_date", _("不能早于 start_date"))
    if start is None and end is None:
        start = timezone.now() - DEFAULT_WINDOW
    elif start is None:
        start = end - DEFAULT_WINDOW
    issues = issues.filter(created_at__gte=start)
    if end is not None:
        issues = issues.filter(created_at__lte=end)
    return issues.order_by("-created_at", "-pk")


@csrf_exempt
@open311_view("GET", "POST")
def requests(request: HttpRequest, fmt: str) -> HttpResponse:
    if request.method == "POST":
        return _create(request, fmt)
    params = _params(request, GET_REQUESTS_PARAMS)
    token = _token(params, required=False, request=request)
    user = token.user if token else None
    issues = keyset.first_rows(_search(params, user), ("-created_at", "-pk"), MAX_RESULTS)
    return _render(fmt, "service_requests", _request_list(issues, request, user))


@open311_view("GET")
def request_detail(request: HttpRequest, request_id: str, fmt: str) -> HttpResponse:
    params = _params(request, COMMON_PARAMS)
    token = _token(params, required=False, request=request)
    user = token.user if token else None
    issue = None
    if request_id.isascii() and request_id.isdigit() and len(request_id) < 12:
        issue = _readable(user).filter(pk=int(request_id)).first()
    if issue is None:
        raise _fail(404, "service_request_id", _("没有编号为 %(id)s 的请求") % {"id": request_id})
    return _render(fmt, "service_requests", _request_list([issue], request, user))


# --- requests: filing --------------------------------------------------------------------------


def _decimal(params: dict[str, str], field: str, limit: int) -> Decimal | None:
    raw = params.get(field, "").strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or len(raw) > 30:
        raise _fail(400, field, _("应为十进制数"))
    if not -limit <= value <= limit:
        raise _fail(400, field, _("应在 -%(n)d 到 %(n)d 之间（WGS-84 度）") % {"n": limit})
    return value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def _text(params: dict[str, str], field: str, limit: int) -> str:
    value = params.get(field, "").strip()
    if len(value) > limit:
        raise _fail(400, field, _("不能超过 %(n)d 个字") % {"n": limit})
    return value


def _pick_project(user, raw: str) -> Project:
    field = "attribute[project]"
    watched = _watched(user)
    if raw:
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 11:
            raise _fail(400, field, _("应为项目编号（整数）"))
        project = next((p for p in watched if p.pk == int(raw)), None)
        if project is not None:
            return project
        if Project.objects.filter(pk=int(raw)).exists():
            raise _fail(403, field, _("您没有受聘监督这个项目，不能在此反映问题"))
        raise _fail(400, field, _("没有编号为 %(id)s 的项目") % {"id": raw})
    if len(watched) == 1:
        return watched[0]
    if not watched:
        raise _fail(403, field, _("您没有受聘监督任何项目"))
    raise _fail(
        400,
        field,
        _("您监督 %(n)d 个项目，请写明是哪一个：%(ids)s")
        % {"n": len(watched), "ids": "、".join(str(p.pk) for p in watched)},
    )


def _attributes(params: dict[str, str], code: str) -> dict[str, str]:
    known = {attribute["code"] for attribute in service_attributes(code)}
    values, unknown = {}, []
    for key, value in params.items():
        match = ATTRIBUTE.match(key)
        if match:
            if match.group(1) in known:
                values[match.group(1)] = value.strip()
            else:
                unknown.append(key)
    if unknown:
        raise Open311Error(
            400, [(key, _("类别 %(code)s 没有这个属性") % {"code": code}) for key in unknown]
        )
    return values


# The filing form's fields under Open311's names, for the refusals that come back from it.
OPEN311_NAMES = {
    "project": "attribute[project]",
    "category": "service_code",
    "urgency": "attribute[urgency]",
    "title": "attribute[title]",
    "description": "description",
    "building": "attribute[building]",
    "unit": "attribute[unit]",
    "location": "attribute[location]",
    "households": "attribute[households]",
    "area": "attribute[area]",
    "photos": "media",
    "latitude": "lat",
    "longitude": "long",
}


def _refusals(errors: dict) -> list[tuple[str, str]]:
    """A form's errors under Open311's names (a refusal without a field: ``service_request``)."""
    return [
        (OPEN311_NAMES.get(name, "service_request"), str(message))
        for name, messages in errors.items()
        for message in messages
    ]


def _filing(params: dict[str, str], files: list, user) -> IssueForm:
    """Open311's request as the filing form the page and the JSON API fill in: the same checks and
    the same words (the rules are ``services.filing_problems``), each refusal under the Open311
    name of its field, all of them at once where they are independent."""
    errors: list[tuple[str, str]] = []

    def check(function: Callable, *args):
        try:
            return function(*args)
        except Open311Error as error:
            errors.extend(error.errors)
            return None

    code = params.get("service_code", "").strip()
    if code not in Issue.Category.values:
        # The filing rule's words (a service's attributes depend on it, so it is checked first).
        raise _fail(400, "service_code", str(services.FILING_MESSAGES["category"]))
    attributes = _attributes(params, code)
    lat = check(_decimal, params, "lat", 90)
    long = check(_decimal, params, "long", 180)
    if (lat is None) != (long is None) and not errors:
        missing = "long" if long is None else "lat"
        errors.append((missing, _("lat 和 long 要一起给出")))
    description = check(_text, params, "description", services.MAX_TEXT) or ""
    address = check(_text, params, "address_string", MAX_ADDRESS) or ""
    address_id = check(_text, params, "address_id", 50)
    media_url = check(_text, params, "media_url", MAX_MEDIA_URL)
    if media_url:
        try:
            URLValidator(schemes=["http", "https"])(media_url)
        except ValidationError:
            errors.append(("media_url", _("应为 http 或 https 地址")))
    project = None
    try:
        project = _pick_project(user, attributes.get("project", ""))
    except Open311Error as error:
        if error.status == 403:
            raise
        errors.extend(error.errors)

    text = description
    extra = []
    if address:
        extra.append(_("地址：%(a)s") % {"a": address})
    if address_id:
        extra.append(_("地址编号：%(a)s") % {"a": address_id})
    if media_url:
        extra.append(_("附件链接（未下载，仅记录）：%(u)s") % {"u": media_url})
    if extra and text:
        text = "\n\n".join([text, "\n".join(extra)])
    if len(text) > services.MAX_TEXT:
        errors.append(
            ("description", _("连同地址和链接不能超过 %(n)d 个字") % {"n": services.MAX_TEXT})
        )
    title = attributes.get("title", "") or (
        description.splitlines()[0].strip() if description else ""
    )
    if len(title) > 30 and not attributes.get("title"):
        title = title[:29] + "…"
    data = {
        "project": project.pk if project else "",
        "category": code,
        "urgency": attributes.get("urgency") or Issue.Urgency.NORMAL,
        "title": title,
        "description": text,
        "building": attributes.get("building", ""),
        "unit": attributes.get("unit", ""),
        "location": attributes.get("location", "") or (address if len(address) <= 100 else ""),
        "households": attributes.get("households", ""),
        "area": attributes.get("area", ""),
    }
    if lat is not None and long is not None:
        data.update(share_position="on", latitude=str(lat), longitude=str(long))
    form = IssueForm(data, MultiValueDict({"photos": list(files)}), projects=watched_projects(user))
    if not form.is_valid():
        errors.extend(
            error for error in _refusals(form.errors) if error[0] != "attribute[project]" or project
        )
    if errors:
        raise Open311Error(400, errors)
    return form


def _create(request: HttpRequest, fmt: str) -> HttpResponse:
    params = _params(request, POST_PARAMS)
    token = _token(params, required=True, request=request)
    user = token.user
    if not services.is_serving_supervisor(user):
        raise _fail(403, "api_key", _("只有在任的群众监督员可以提交"))
    files = request.FILES.getlist("media")
    form = _filing(params, files, user)
    try:
        issue = form.submit(user)
    except services.WorkflowError as error:
        field = OPEN311_NAMES.get(error.field, "service_request")
        if error.status_code == 403:
            field = "api_key"
        raise _fail(error.status_code, field, error.message) from None
    data = [
        {
            "service_request_id": str(issue.pk),
            "service_notice": _("编号 %(ref)s。") % {"ref": issue.reference} + _service_notice(),
        }
    ]
    return _render(fmt, "service_requests", data, status=201)
