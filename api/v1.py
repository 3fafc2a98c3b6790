"""The JSON API, version 1 (``/api/v1/``), for the mini-program and other clients.

The API is another face of the pages, not a second application: it reads through the same
visibility rule (``Issue.objects.visible_to`` / ``issue_for``), validates each step with the
same form the issue page uses (``STEP_FORMS``), and changes issues only through the services.
What it adds is the transport: per-user keys (``Authorization: Bearer …``), a rate limit per
key, keyset pagination, and one error shape for every refusal::

    {"detail": "<中文说明>", "errors": [{"field": "title", "message": "…"}]}
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from ninja import File, Form, NinjaAPI, Path, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.files import UploadedFile
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.security import HttpBearer
from pydantic import Field

from supervision import keyset, notifications, services
from supervision.access import issue_for, watched_projects
from supervision.filters import IssueFilter
from supervision.forms import STEP_FORMS, IssueForm, ProjectFilterForm
from supervision.models import (
    ExtensionRequest,
    Issue,
    IssueEvent,
    Notification,
    Photo,
    Project,
)
from supervision.photos import MAX_PHOTOS, PhotoError

from . import schemas as s
from .tokens import address_rate_limited, rate_limited, token_for_key

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
Limit = Annotated[int, Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="每页条数")]
IssueId = Annotated[int, Path(ge=1, le=s.MAX_ID)]


class RateLimited(Exception):
    """This key has used up its requests for the current minute."""


class InvalidInput(Exception):
    """Fields a form refused: answered 400 with each field named."""

    def __init__(self, errors: dict[str, list[str]], detail: str | None = None) -> None:
        super().__init__(detail)
        self.errors = errors
        self.detail = detail


class StrictJsonParser(Parser):
    """JSON as ninja reads it, but a NUL character is refused: PostgreSQL cannot store it."""

    def parse_body(self, request: HttpRequest) -> Any:
        if b"\x00" in request.body or b"\\u0000" in request.body:
            raise ValueError("NUL in request body")
        return super().parse_body(request)


class ReadableJSONRenderer(JSONRenderer):
    """Chinese as itself rather than ``\\uXXXX`` escapes: easier to read in a debugger."""

    json_dumps_params = {"ensure_ascii": False}


class ApiKey(HttpBearer):
    """``Authorization: Bearer qzjd_…``: a live key of an active account (for a supervisor,
    one still in office). The key's user becomes ``request.user`` for the shared helpers."""

    def authenticate(self, request: HttpRequest, token: str):
        api_token = token_for_key(token.strip())
        if api_token is None:
            if address_rate_limited(request):  # guessing keys is limited per address
                raise RateLimited
            return None
        if rate_limited(api_token):
            raise RateLimited
        request.user = api_token.user
        request.api_token = api_token
        return api_token.user


def _anonymous(request: HttpRequest):
    """Public operations without a key: only when no Authorization header was sent at all
    (a wrong key is an error, not a quiet fall-back to the public view)."""
    if "Authorization" in request.headers:
        return None
    if address_rate_limited(request):
        raise RateLimited
    request.user = AnonymousUser()
    return request.user


api = NinjaAPI(
    title="群众监督 API",
    version="1",
    description=(
        "群众监督小程序和其他客户端使用的接口。除公开的项目接口外，都需要在请求头中带上"
        "`Authorization: Bearer <接口密钥>`；密钥由本人在网站「接口密钥」页面创建，只显示一次。"
        "每个密钥每分钟的请求数有上限，超过时返回 429 和 `Retry-After`。"
        "所有错误都返回 `{detail, errors:[{field, message}]}`。"
    ),
    urls_namespace="api-v1",
    docs_url="/docs",
    auth=ApiKey(),
    parser=StrictJsonParser(),
    renderer=ReadableJSONRenderer(),
)

PUBLIC = [ApiKey(), _anonymous]
# The document's word for PUBLIC: a key, or nothing at all. ninja lists ApiKey alone (it cannot
# describe ``_anonymous``) and adds an operation's openapi_extra lists to its own, so the empty
# requirement joins it: ``security: [{"ApiKey": []}, {}]``.
PUBLIC_DOCUMENT = {"security": [{}]}


def errors(*codes: int) -> dict[int, type[s.ErrorOut]]:
    return {code: s.ErrorOut for code in codes}


AUTHED = (400, 401, 429)
PUBLIC_ERRORS = (400, 401, 429)
STEP_ERRORS = (*AUTHED, 403, 404, 409)


# --- errors: one shape everywhere --------------------------------------------------------------


def _error(
    request: HttpRequest,
    status: int,
    detail: str,
    fields: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> HttpResponse:
    body = {"detail": detail, "errors": [{"field": f, "message": m} for f, m in fields]}
    return api.create_response(request, body, status=status)


PYDANTIC_MESSAGES = {
    "missing": "必填。",
    "extra_forbidden": "不认识这个字段。",
    "int_parsing": "应为整数。",
    "int_type": "应为整数。",
    "int_from_float": "应为整数。",
    "int_parsing_size": "太大了。",
    "bool_parsing": "应为 true 或 false。",
    "bool_type": "应为 true 或 false。",
    "string_type": "应为字符串。",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD。",
    "date_parsing": "日期格式应为 YYYY-MM-DD。",
    "date_type": "日期格式应为 YYYY-MM-DD。",
    "date_from_datetime_inexact": "日期格式应为 YYYY-MM-DD。",
    "literal_error": "不是可选的值。",
    "enum": "不是可选的值。",
    "string_too_long": "太长了。",
    "string_pattern_mismatch": "格式不对。",
    "greater_than_equal": "太小了。",
    "less_than_equal": "太大了。",
    "model_attributes_type": "应为 JSON 对象。",
    "dict_type": "应为 JSON 对象。",
    "list_type": "应为列表。",
}
SOURCES = {"body", "query", "path", "form", "file", "header", "cookie"}


def _field_name(loc: tuple | list) -> str:
    parts = [str(part) for part in loc]
    source = parts[0] if parts and parts[0] in SOURCES else "body"
    if parts and parts[0] in SOURCES:
        parts = parts[1:]
    # ninja wraps a body schema in its parameter (``payload``) and query schemas in theirs.
    if parts and parts[0] in ("payload", "filters", "params"):
        parts = parts[1:]
    return ".".join(parts) or source


@api.exception_handler(ValidationError)
def _on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = []
    for item in exc.errors:
        message = PYDANTIC_MESSAGES.get(item.get("type", ""), "") or str(item.get("msg", ""))
        fields.append((_field_name(item.get("loc", ())), message))
    return _error(request, 400, _("请按提示修改后再提交。"), fields)


@api.exception_handler(InvalidInput)
def _on_invalid_input(request: HttpRequest, exc: InvalidInput) -> HttpResponse:
    fields = [
        ("body" if name == NON_FIELD_ERRORS else name, str(message))
        for name, messages in exc.errors.items()
        for message in messages
    ]
    return _error(request, 400, exc.detail or _("请按提示修改后再提交。"), fields)


@api.exception_handler(AuthenticationError)
def _on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _error(
        request,
        401,
        _("缺少有效的接口密钥：请在请求头中带上 Authorization: Bearer <接口密钥>。"),
        [("Authorization", _("密钥不存在、已吊销，或账号已停用。"))],
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(RateLimited)
def _on_rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    response = _error(request, 429, _("请求太频繁了，请稍后再试。"))
    response["Retry-After"] = str(60 - timezone.now().second)
    return response


@api.exception_handler(HttpError)
def _on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        return _error(
            request, 400, _("请求内容不是有效的 JSON。"), [("body", _("无法解析请求内容。"))]
        )
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(Http404)
def _on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, _("没有找到，或者您无权查看。"))


@api.exception_handler(PermissionDenied)
def _on_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _error(request, 403, str(exc) or _("您没有权限这样做。"))


@api.exception_handler(services.WorkflowError)
def _on_workflow_error(request: HttpRequest, exc: services.WorkflowError) -> HttpResponse:
    # A refusal that belongs beside a field names it, as the page shows it beside the field.
    fields = [(exc.field, str(exc.message))] if exc.field else []
    return _error(request, exc.status_code, str(exc.message), fields)


@api.exception_handler(PhotoError)
def _on_photo_error(request: HttpRequest, exc: PhotoError) -> HttpResponse:
    return _error(
        request,
        400,
        _("照片有问题，请换一张再传。"),
        [("photos", str(message)) for message in exc.messages],
    )


# --- helpers -----------------------------------------------------------------------------------


def _user(request: HttpRequest):
    return request.auth  # type: ignore[attr-defined]


def _absolute(request: HttpRequest, path: str) -> str:
    return request.build_absolute_uri(path)


def _keyset(value: str | None, field: str = "cursor") -> tuple[datetime, int] | None:
    if not value:
        return None
    parsed = keyset.parse_cursor(value)
    if parsed is None:
        raise InvalidInput({field: [_("游标无效，请使用上一页返回的游标。")]})
    return parsed


def _older_than(rows: QuerySet, cursor: tuple[datetime, int] | None) -> QuerySet:
    return rows if cursor is None else keyset.older_than(rows, cursor)


def _page(rows: QuerySet, limit: int) -> tuple[list, str | None]:
    """One keyset page, newest first: ``limit`` rows and the cursor of the next, if any."""
    items = keyset.first_rows(rows, ("-created_at", "-pk"), limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return items, (keyset.cursor_of(items[-1]) if more and items else None)


def _form_data(payload: Schema) -> dict[str, str]:
    """A validated schema as the form data the page would post."""
    data = {}
    for name, value in payload.model_dump().items():
        if value is None or value is False:
            continue
        data[name] = "on" if value is True else str(value)
    return data


def _department(department) -> dict | None:
    if department is None:
        return None
    return {"id": department.pk, "name": department.name, "kind": department.kind}


def _photo(request: HttpRequest, photo: Photo) -> dict:
    return {
        "id": photo.pk,
        "kind": photo.kind,
        "url": _absolute(request, photo.get_absolute_url()),
        "thumbnail_url": _absolute(request, photo.thumbnail_url),
        "width": photo.width,
        "height": photo.height,
        "state": photo.state,
    }


def _event(request: HttpRequest, event: IssueEvent) -> dict:
    actor = event.actor
    return {
        "id": event.pk,
        "issue": event.issue_id,
        "kind": event.kind,
        "kind_label": event.get_kind_display(),
        "actor": str(actor) if actor else None,
        "actor_department": (
            str(actor.department) if actor is not None and actor.department_id else None
        ),
        "from_status": event.from_status,
        "to_status": event.to_status,
        "text": event.text,
        "department": _department(event.department),
        "deadline": event.deadline,
        "rating": event.rating,
        "photos": [_photo(request, p) for p in event.photos.all()],
        "created_at": event.created_at,
        "cursor": keyset.cursor_of(event),
    }


def _feed_event(request: HttpRequest, event: IssueEvent) -> dict:
    return {
        **_event(request, event),
        "issue_reference": event.issue.reference,
        "issue_title": event.issue.title,
    }


def _events(queryset: QuerySet[IssueEvent]) -> QuerySet[IssueEvent]:
    return queryset.select_related("actor__department", "department", "issue").prefetch_related(
        "photos"
    )


def _issue_item(request: HttpRequest, issue: Issue, thumbnails: list[Photo] | None = None) -> dict:
    if thumbnails is None:
        thumbnails = [p for p in issue.photos.all() if p.kind == Photo.Kind.BEFORE]
    return {
        "id": issue.pk,
        "reference": issue.reference,
        "title": issue.title,
        "status": issue.status,
        "status_label": issue.get_status_display(),
        "category": issue.category,
        "urgency": issue.urgency,
        "project": issue.project_id,
        "project_name": issue.project.name,
        "subdistrict": issue.project.neighbourhood.subdistrict.name,
        "department": _department(issue.department),
        "place": issue.place,
        "created_at": issue.created_at,
        "deadline": issue.next_deadline,
        "is_overdue": issue.is_overdue,
        "is_public": issue.is_public,
        "support_count": issue.support_count,
        "from_residents": issue.from_residents,
        "thumbnail_urls": [_absolute(request, p.thumbnail_url) for p in thumbnails],
        "url": _absolute(request, issue.get_absolute_url()),
    }


def _issue_rows(queryset: QuerySet[Issue]) -> QuerySet[Issue]:
    return queryset.select_related(
        "project__neighbourhood__subdistrict", "department", "contractor", "reporter"
    )


def _extension(extension: ExtensionRequest) -> dict:
    return {
        "id": extension.pk,
        "issue": extension.issue_id,
        "until": extension.until,
        "reason": extension.reason,
        "status": extension.status,
        "status_label": extension.get_status_display(),
        "created_at": extension.created_at,
        "decided_at": extension.decided_at,
        "decision_note": extension.decision_note,
    }


def _issue_detail(request: HttpRequest, pk: int) -> dict:
    """The issue as its page shows it, if the key's user may see it (else 404)."""
    user = _user(request)
    issue = issue_for(user, pk, _issue_rows(Issue.objects.all()))
    photos = list(issue.photos.all())
    events = list(_events(issue.events.all()).order_by("created_at", "pk"))
    return {
        **_issue_item(request, issue, [p for p in photos if p.kind == Photo.Kind.BEFORE]),
        "description": issue.description,
        "building": issue.building,
        "unit": issue.unit,
        "location": issue.location,
        "households": issue.households,
        "area": issue.area,
        "reporter": str(issue.reporter),
        "contractor": _department(issue.contractor),
        "sign_for_due_at": issue.sign_for_due_at,
        "rectify_due_at": issue.rectify_due_at,
        "accepted_at": issue.accepted_at,
        "rectified_at": issue.rectified_at,
        "closed_at": issue.closed_at,
        "escalated_at": issue.escalated_at,
        "rating": issue.rating,
        "photos": [_photo(request, p) for p in photos],
        "events": [_event(request, e) for e in events],
        "extensions": [_extension(x) for x in issue.extensions.all()],
        "allowed_steps": services.allowed_steps(user, issue),
    }


# --- me ----------------------------------------------------------------------------------------


class MeOut(Schema):
    username: str
    name: str
    role: str
    role_label: str
    department: s.DepartmentOut | None
    is_serving_supervisor: bool
    unread_notifications: int


@api.get(
    "/me",
    response={200: MeOut, **errors(*AUTHED)},
    summary="当前账号",
    description="密钥所属的账号、角色和部门，以及未读通知数。",
    tags=["账号"],
)
def me(request: HttpRequest):
    user = _user(request)
    return {
        "username": user.username,
        "name": str(user),
        "role": user.role,
        "role_label": user.get_role_display() if user.role else "",
        "department": _department(user.department),
        "is_serving_supervisor": services.is_serving_supervisor(user),
        "unread_notifications": Notification.objects.for_reader(user)
        .filter(read_at__isnull=True)
        .count(),
    }


# --- projects (public) -------------------------------------------------------------------------


class ProjectQuery(Schema):
    subdistrict: s.Id | None = Field(None, description="街道 id")
    year: Annotated[int, Field(ge=2000, le=2100)] | None = Field(None, description="年度批次")
    status: s.ProjectStatus | None = None  # type: ignore[valid-type]
    q: s.Search | None = Field(None, description="项目或小区名称")
    cursor: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{1,18}$")] | None = Field(
        None, description="上一页返回的 next_cursor"
    )
    limit: Limit = DEFAULT_LIMIT


def _projects() -> QuerySet[Project]:
    return Project.objects.select_related(
        "neighbourhood__subdistrict", "contractor"
    ).prefetch_related("scope_items")


def _project_item(request: HttpRequest, project: Project) -> dict:
    return {
        "id": project.pk,
        "name": project.name,
        "year": project.year,
        "status": project.status,
        "status_label": project.get_status_display(),
        "subdistrict": project.neighbourhood.subdistrict.name,
        "neighbourhood": project.neighbourhood.name,
        "progress": project.progress(),
        "url": _absolute(request, project.get_absolute_url()),
    }


@api.get(
    "/projects",
    response={200: s.ProjectPage, **errors(*PUBLIC_ERRORS)},
    auth=PUBLIC,
    openapi_extra=PUBLIC_DOCUMENT,
    summary="改造项目列表",
    description="公开接口，可不带密钥。按年度从新到旧；用 next_cursor 翻页。",
    tags=["项目"],
)
def project_list(request: HttpRequest, filters: Query[ProjectQuery]):
    data = {
        k: str(v)
        for k, v in filters.model_dump(exclude={"cursor", "limit"}).items()
        if v not in (None, "")
    }
    form = ProjectFilterForm(data)
    if not form.is_valid():
        raise InvalidInput(form.errors)
    rows = form.filter(_projects()).order_by("-year", "-pk")
    if filters.cursor:
        year, pk = (int(part) for part in filters.cursor.split("-"))
        rows = rows.filter(Q(year__lt=year) | Q(year=year, pk__lt=pk))
    items = list(rows[: filters.limit + 1])
    more = len(items) > filters.limit
    items = items[: filters.limit]
    return {
        "items": [_project_item(request, p) for p in items],
        "next_cursor": f"{items[-1].year}-{items[-1].pk}" if more else None,
    }


def _project(pk: int) -> Project:
    return get_object_or_404(_projects(), pk=pk)


@api.get(
    "/projects/{project_id}",
    response={200: s.ProjectDetail, **errors(*PUBLIC_ERRORS, 404)},
    auth=PUBLIC,
    openapi_extra=PUBLIC_DOCUMENT,
    summary="项目详情",
    description="公开接口：项目概况、里程碑（计划与实际）和总体进度。",
    tags=["项目"],
)
def project_detail(request: HttpRequest, project_id: IssueId):
    project = _project(project_id)
    neighbourhood = project.neighbourhood
    return {
        **_project_item(request, project),
        "address": neighbourhood.address,
        "year_built": neighbourhood.year_built,
        "households": neighbourhood.households,
        "contractor": _department(project.contractor),
        "budget": float(project.budget) if project.budget is not None else None,
        "description": project.description,
        "to_complete_this_year": project.to_complete_this_year,
        "milestones": [
            {"label": str(m.label), "planned": m.planned, "actual": m.actual, "late": m.late}
            for m in project.milestones()
        ],
    }


@api.get(
    "/projects/{project_id}/progress",
    response={200: s.ProjectProgress, **errors(*PUBLIC_ERRORS, 404)},
    auth=PUBLIC,
    openapi_extra=PUBLIC_DOCUMENT,
    summary="项目分方面进度",
    description="公开接口：改造内容六大方面各自的进度和明细。",
    tags=["项目"],
)
def project_progress(request: HttpRequest, project_id: IssueId):
    project = _project(project_id)
    areas = [
        {
            "area": area["area"],
            "label": str(area["label"]),
            "progress": area["progress"],
            "items": [
                {
                    "id": item.pk,
                    "area": item.area,
                    "description": item.description,
                    "progress": item.progress,
                    "budget": float(item.budget) if item.budget is not None else None,
                }
                for item in area["items"]
            ],
        }
        for area in project.progress_by_area()
    ]
    return {"project": project.pk, "progress": project.progress(), "areas": areas}


# --- issues ------------------------------------------------------------------------------------


class IssueQuery(Schema):
    q: s.Search | None = Field(None, description="编号或标题")
    project: s.Id | None = None
    subdistrict: s.Id | None = None
    status: s.IssueStatus | None = None  # type: ignore[valid-type]
    category: s.IssueCategory | None = None  # type: ignore[valid-type]
    department: s.Id | None = None
    overdue: bool = Field(False, description="只看超期")
    mine: bool = Field(False, description="只看我反映的")
    cursor: s.Cursor | None = Field(None, description="上一页返回的 next_cursor")
    limit: Limit = DEFAULT_LIMIT


@api.get(
    "/issues",
    response={200: s.IssuePage, **errors(*AUTHED)},
    summary="问题列表",
    description=(
        "与网页「问题」列表相同的筛选条件和可见范围，从新到旧；用 next_cursor 翻页（按时间"
        "定位，不用页码，数据再多也一样快）。"
    ),
    tags=["问题"],
)
def issue_list(request: HttpRequest, filters: Query[IssueQuery]):
    user = _user(request)
    issues = _issue_rows(Issue.objects.visible_to(user)).prefetch_related(
        Prefetch("photos", queryset=Photo.objects.filter(kind=Photo.Kind.BEFORE), to_attr="before")
    )
    data = _form_data(IssueQuery(**filters.model_dump(exclude={"cursor", "limit"})))
    rows = issues
    if data:
        filterset = IssueFilter(data, queryset=issues, request=request)
        if not filterset.is_valid():
            raise InvalidInput(filterset.errors)
        rows = filterset.qs
    rows = _older_than(rows.order_by("-created_at", "-pk"), _keyset(filters.cursor))
    items, next_cursor = _page(rows, filters.limit)
    return {
        "items": [_issue_item(request, issue, issue.before) for issue in items],
        "next_cursor": next_cursor,
    }


def _issue_links(*statuses: int, detail: bool = True) -> dict:
    """openapi_extra: the issue these responses give is the one whose page and steps take its
    id (OpenAPI links: what a client may do next, and what schemathesis' stateful run follows)."""
    targets = [f"issue_{step}" for step in STEP_FORMS]  # the steps' operation ids (_json_step)
    if detail:
        targets.append("api_v1_issue_detail")  # ninja's id for issue_detail
    issue = {"issue_id": "$response.body#/id"}
    links = {target: {"operationId": target, "parameters": issue} for target in targets}
    return {"responses": {status: {"links": links} for status in statuses}}


@api.get(
    "/issues/{issue_id}",
    response={200: s.IssueDetail, **errors(*AUTHED, 404)},
    summary="问题详情",
    description=(
        "问题的全部信息、处理记录（含照片地址）、延期申请，以及当前账号现在可以做的步骤"
        "（allowed_steps）。看不到的问题一律返回 404。"
    ),
    tags=["问题"],
    openapi_extra=_issue_links(200, detail=False),
)
def issue_detail(request: HttpRequest, issue_id: IssueId):
    return _issue_detail(request, issue_id)


PHOTOS_DOC = "照片文件，可多张（最多 9 张），支持 JPEG、PNG、WebP、HEIC，每张不超过 20 MB。"
# The formats photos.ACCEPTED_FORMATS reads, as media types.
PHOTO_TYPES = "image/jpeg, image/png, image/webp, image/heic, image/heif"


def _form_document(*, required: Sequence[str] = (), min_photos: int = 0, **whole: Any) -> dict:
    """openapi_extra for a multipart operation: what ninja leaves out when it flattens the form's
    model into the body's fields. Unknown fields are refused (``_refuse_unknown_fields``), photos
    are images, at most MAX_PHOTOS of them; ``required`` adds to the fields ninja lists, and
    ``whole`` holds the rules between fields."""
    photos: dict[str, Any] = {"maxItems": MAX_PHOTOS}
    if min_photos:
        photos["minItems"] = min_photos
    schema = {"additionalProperties": False, "properties": {"photos": photos}, **whole}
    if required:
        schema["required"] = list(required)
    form = {"schema": schema, "encoding": {"photos": {"contentType": PHOTO_TYPES}}}
    return {"requestBody": {"content": {"multipart/form-data": form}}}


def _refuse_unknown_fields(request: HttpRequest, allowed: set[str]) -> None:
    unknown = [name for name in request.POST if name not in allowed]
    unknown += [name for name in request.FILES if name != "photos"]
    if unknown:
        raise InvalidInput({name: [_("不认识这个字段。")] for name in unknown})


@api.post(
    "/issues",
    response={200: s.IssueDetail, 201: s.IssueDetail, **errors(*AUTHED, 403)},
    summary="反映问题",
    description=(
        "在任的群众监督员在自己监督的项目上反映问题（multipart/form-data）。" + PHOTOS_DOC + " "
        "除“居民意见”外至少一张照片。带上 token 可防止重复提交：同一 token 再次提交返回"
        "已有的问题（200），新问题返回 201。"
    ),
    tags=["问题"],
    openapi_extra={
        # The form needs these too (services.filing_problems answers for them in its own words).
        **_form_document(required=["category", "title", "description"], anyOf=s.FILING_RULES),
        **_issue_links(200, 201),
    },
)
def issue_create(
    request: HttpRequest,
    payload: Form[s.IssueIn],
    photos: File[list[UploadedFile]] = None,  # type: ignore[assignment]
):
    user = _user(request)
    _refuse_unknown_fields(request, set(s.IssueIn.model_fields))
    if not services.is_serving_supervisor(user):
        raise services.WorkflowError(_("只有在任的群众监督员可以反映问题。"), status_code=403)
    form = IssueForm(
        _form_data(payload),
        MultiValueDict({"photos": list(photos or [])}),
        projects=watched_projects(user),
    )
    if not form.is_valid():
        raise InvalidInput(form.errors)
    existed = bool(payload.token) and Issue.objects.filter(idempotency_key=payload.token).exists()
    issue = form.submit(user)
    return Status(200 if existed else 201, _issue_detail(request, issue.pk))


# --- the workflow steps ------------------------------------------------------------------------


def _run_step(
    request: HttpRequest, issue_id: int, step: str, payload: Schema | None, photos=()
) -> dict:
    """One step, exactly as the issue page takes it: 404 outside the user's scope, refusal
    (403/409) before reading any field, the page's form for the fields, then the service."""
    user = _user(request)
    issue = issue_for(user, issue_id, _issue_rows(Issue.objects.all()))
    refused = services.refusal(user, issue, step)
    if refused is not None:
        raise refused
    data = _form_data(payload) if payload is not None else {}
    form = STEP_FORMS[step](
        data, MultiValueDict({"photos": list(photos or [])}), issue=issue, user=user
    )
    if not form.is_valid():
        raise InvalidInput(form.errors)
    form.run()
    return _issue_detail(request, issue.pk)


STEP_RESPONSES = {200: s.IssueDetail, **errors(*STEP_ERRORS)}
STEP_DOC = (
    "成功时返回更新后的问题。没有权限返回 403，当前状态不允许返回 409，字段有误返回 400，"
    "看不到的问题返回 404；被拒绝时什么都不会改变。"
)


def _json_step(step: str, schema: type[Schema], summary: str, who: str) -> None:
    def view(request: HttpRequest, issue_id: IssueId, payload: schema):  # type: ignore[valid-type]
        return _run_step(request, issue_id, step, payload)

    view.__name__ = f"issue_{step}"
    api.post(
        f"/issues/{{issue_id}}/{step}",
        response=STEP_RESPONSES,
        summary=summary,
        description=f"{who}。{STEP_DOC}",
        tags=["办理步骤"],
        operation_id=f"issue_{step}",
    )(view)


_json_step("accept", s.AcceptIn, "签收", "承办部门或住建局签收问题并定整改期限（deadline 可不填）")
_json_step("answer", s.TextIn, "答复", "承办部门或住建局答复不需要施工的问题")
_json_step(
    "dispatch", s.DepartmentIn, "派单", "承办部门或住建局派给施工单位（department 为施工单位 id）"
)
_json_step("transfer", s.TransferIn, "转派", "转给另一个部门（不是施工单位），写明原因")
_json_step("reject", s.ReasonIn, "不予受理", "承办部门或住建局不予受理，写明理由")
_json_step(
    "escalate",
    s.EscalateIn,
    "督办",
    "住建局或承办部门督办未办结的问题；上级主管部门督办时写明要求住建局回复的日期（deadline）",
)
_json_step("reply", s.TextIn, "回复督办", "县（市、区）住建局回复上级主管部门的督办")
_json_step(
    "verify", s.VerifyIn, "验证办结", "反映人评价：满意、基本满意办结；不满意须写明理由，问题退回"
)
_json_step("reopen", s.ReasonIn, "退回", "反映人退回整改或答复，写明原因")
_json_step("withdraw", s.OptionalReasonIn, "撤回", "反映人在部门签收前撤回")
_json_step("extend", s.ExtendIn, "申请延期", "承办部门或施工单位向住建局申请延期")
_json_step("appeal", s.ReasonIn, "申诉", "反映人对不予受理向住建局申诉")
_json_step(
    "support",
    s.SupportIn,
    "附议",
    "受聘监督这个项目的监督员（反映人本人除外）对未办结的问题附议，每人一次；再次附议返回 409",
)


@api.post(
    "/issues/{issue_id}/rectify",
    response=STEP_RESPONSES,
    summary="报告整改完成",
    description=(
        "承办部门、施工单位或住建局报告整改完成，附整改后照片（multipart/form-data，至少一张）。"
        + PHOTOS_DOC
        + STEP_DOC
    ),
    tags=["办理步骤"],
    operation_id="issue_rectify",
    openapi_extra=_form_document(required=["photos"], min_photos=1),
)
def issue_rectify(
    request: HttpRequest,
    issue_id: IssueId,
    payload: Form[s.StepTextForm],
    photos: File[list[UploadedFile]] = None,  # type: ignore[assignment]
):
    _refuse_unknown_fields(request, {"text"})
    return _run_step(request, issue_id, "rectify", payload, photos)


@api.post(
    "/issues/{issue_id}/comment",
    response=STEP_RESPONSES,
    summary="留言",
    description="能看到问题的参与者留言，可附照片（multipart/form-data）。" + PHOTOS_DOC + STEP_DOC,
    tags=["办理步骤"],
    operation_id="issue_comment",
    openapi_extra=_form_document(),
)
def issue_comment(
    request: HttpRequest,
    issue_id: IssueId,
    payload: Form[s.StepTextForm],
    photos: File[list[UploadedFile]] = None,  # type: ignore[assignment]
):
    _refuse_unknown_fields(request, {"text"})
    return _run_step(request, issue_id, "comment", payload, photos)


# --- extension requests (the bureau decides) ---------------------------------------------------


class ExtensionQuery(Schema):
    status: ExtensionRequest.Status | None = Field(None, description="pending、granted 或 refused")
    limit: Limit = DEFAULT_LIMIT


@api.get(
    "/extensions",
    response={200: list[s.ExtensionOut], **errors(*AUTHED)},
    summary="延期申请列表",
    description="能看到的问题上的延期申请，从新到旧；住建局用 status=pending 查看待审批的。",
    tags=["延期"],
)
def extension_list(request: HttpRequest, filters: Query[ExtensionQuery]):
    rows = ExtensionRequest.objects.visible_to(_user(request))
    if filters.status:
        rows = rows.filter(status=filters.status)
    return [_extension(x) for x in rows.order_by("-created_at", "-pk")[: filters.limit]]


@api.post(
    "/extensions/{extension_id}/decision",
    response={200: s.ExtensionOut, **errors(*AUTHED, 403, 404, 409)},
    summary="审批延期申请",
    description="住建局同意（grant=true）或不同意延期；同意后整改期限顺延。",
    tags=["延期"],
)
def extension_decide(request: HttpRequest, extension_id: IssueId, payload: s.DecisionIn):
    user = _user(request)
    rows = ExtensionRequest.objects.visible_to(user).select_related("issue")
    extension = get_object_or_404(rows, pk=extension_id)
    decided = services.decide_extension(
        extension, actor=user, grant=payload.grant, note=payload.note
    )
    return _extension(decided)


# --- the 监督群 feed ----------------------------------------------------------------------------


class FeedQuery(Schema):
    after: s.Cursor | None = Field(None, description="只要比这个游标新的动态（轮询用 newest）")
    before: s.Cursor | None = Field(None, description="只要比这个游标旧的动态（加载更早）")
    limit: Limit = DEFAULT_LIMIT


@api.get(
    "/feed",
    response={200: s.FeedPage, **errors(*AUTHED)},
    summary="监督群动态",
    description=(
        "能看到的所有处理记录，从新到旧。after=<newest> 取此后的新动态（一次最多 limit 条，"
        "从最早的新动态起，所以重复轮询不会漏）；before=<older> 加载更早的。"
    ),
    tags=["监督群"],
)
def feed(request: HttpRequest, filters: Query[FeedQuery]):
    events = _events(IssueEvent.objects.visible_to(_user(request)))
    _keyset(filters.after, "after")  # a malformed cursor is refused here, not read as none
    _keyset(filters.before, "before")
    page = keyset.stream_page(
        events, after=filters.after, before=filters.before, size=filters.limit
    )
    return {
        "items": [_feed_event(request, e) for e in page.rows],
        "newest": page.newest,
        "older": page.older,
    }


# --- notifications -----------------------------------------------------------------------------


class NotificationQuery(Schema):
    unread: bool = Field(False, description="只看未读")
    cursor: s.Cursor | None = Field(None, description="上一页返回的 next_cursor")
    limit: Limit = DEFAULT_LIMIT


def _notification(request: HttpRequest, item: Notification) -> dict:
    return {
        "id": item.pk,
        "created_at": item.created_at,
        "read_at": item.read_at,
        "event": _feed_event(request, item.event),
    }


def _notifications(user) -> QuerySet[Notification]:
    """The user's notifications about issues they may still read."""
    return (
        Notification.objects.for_reader(user)
        .select_related("event__issue", "event__actor__department", "event__department")
        .prefetch_related("event__photos")
    )


@api.get(
    "/notifications",
    response={200: s.NotificationPage, **errors(*AUTHED)},
    summary="我的通知",
    description="从新到旧；unread=true 只看未读；用 next_cursor 翻页。",
    tags=["通知"],
)
def notification_list(request: HttpRequest, filters: Query[NotificationQuery]):
    user = _user(request)
    rows = _notifications(user).order_by("-created_at", "-pk")
    if filters.unread:
        rows = rows.filter(read_at__isnull=True)
    items, next_cursor = _page(_older_than(rows, _keyset(filters.cursor)), filters.limit)
    return {
        "items": [_notification(request, n) for n in items],
        "unread": _notifications(user).filter(read_at__isnull=True).count(),
        "next_cursor": next_cursor,
    }


@api.post(
    "/notifications/read",
    response={200: s.ReadOut, **errors(*AUTHED)},
    summary="全部标为已读",
    tags=["通知"],
)
def notifications_read(request: HttpRequest):
    count = notifications.mark_read(_user(request))
    return {"marked": count}


@api.post(
    "/notifications/{notification_id}/read",
    response={200: s.NotificationOut, **errors(*AUTHED, 404)},
    summary="标为已读",
    description="只能标自己的通知；别人的通知返回 404。",
    tags=["通知"],
)
def notification_read(request: HttpRequest, notification_id: IssueId):
    user = _user(request)
    item = get_object_or_404(_notifications(user), pk=notification_id)
    if notifications.mark_read(user, item.pk):
        item.refresh_from_db(fields=["read_at"])
    return _notification(request, item)
