"""What the JSON API takes and gives, as pydantic schemas (django-ninja).

Inputs forbid unknown fields, so that a typo in a field name is an error rather than a silently
ignored value. The rules on the values themselves (who may do what, which states, how long a
text may be, which department may be chosen) stay in the forms and services the pages use; the
document still states the ones a schema can state (``documented``), so that it says exactly what
the server takes.
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from supervision.models import Department, Issue, IssueEvent, Photo, Project, ScopeItem
from supervision.services import MAX_TEXT, needs_photo

# Ids are bounded so that a huge number is a 4xx, never a database overflow.
MAX_ID = 10**18 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

# Python's whitespace (``str.isspace``), which the forms and services strip before they check
# that a text was given, spelled out: ``\s`` means fewer characters in a JSON Schema's regex.
SPACE = r"\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# NUL is refused in every value before any view reads it (supervision.security, StrictJsonParser).
NO_NUL = r"^[^\x00]*$"
# A text that must be given: no NUL, and something besides whitespace.
NOT_BLANK = rf"^[^\x00]*[^\x00{SPACE}][^\x00]*$"


def documented(pattern: str, *, required: bool = False) -> Any:
    """A text's pattern, for the document alone: the middleware, the forms and the services
    enforce it, each in its own words, so pydantic does not. A text that must be given loses the
    default pydantic keeps for the service's sake (see IssueIn)."""

    def document(schema: dict) -> None:
        schema["pattern"] = pattern
        if required:
            schema.pop("default", None)

    return Field(json_schema_extra=document)


def form_optional(schema: dict) -> None:
    """A form field that may be left out is never null (multipart has no null): the document
    gives the value it takes when sent."""
    (value,) = [branch for branch in schema.pop("anyOf") if branch.get("type") != "null"]
    schema.update(value)
    schema.pop("default", None)


Text = Annotated[str, Field(max_length=MAX_TEXT), documented(NO_NUL)]
RequiredText = Annotated[str, Field(max_length=MAX_TEXT), documented(NOT_BLANK, required=True)]
# Every cursor the pattern admits reads as a moment (17 digits of microseconds reach the year
# 5138; 18 may pass 9999, where ``keyset.parse_cursor`` gives up), so one is refused here or never.
CURSOR_PATTERN = r"^[0-9]{1,17}-[0-9]{1,18}$"
Cursor = Annotated[str, Field(pattern=CURSOR_PATTERN, max_length=40)]
Search = Annotated[str, Field(max_length=50), documented(NO_NUL)]


def _literal(choices: type) -> object:
    return Literal[tuple(choices.values)]


def _listed(choices: type) -> object:
    """One of ``choices`` as the document lists it, but checked by the service, not here."""
    values = list(choices.values)

    def document(schema: dict) -> None:
        schema["enum"] = values
        if schema.get("default") not in values:  # "": not given, which the service refuses
            schema.pop("default", None)

    return Annotated[str, Field(json_schema_extra=document)]


IssueStatus = _literal(Issue.Status)
IssueCategory = _literal(Issue.Category)
IssueUrgency = _literal(Issue.Urgency)
IssueRating = _literal(Issue.Rating)
SATISFIED = [r for r in Issue.Rating.values if r != Issue.Rating.UNSATISFIED]
EventKind = _literal(IssueEvent.Kind)
ProjectStatus = _literal(Project.Status)
AreaCode = _literal(ScopeItem.Area)
# For filing: an unknown value is refused by services.filing_problems, in its words.
FilingCategory = _listed(Issue.Category)
FilingUrgency = _listed(Issue.Urgency)


class Input(Schema):
    model_config = ConfigDict(extra="forbid")


# --- errors ------------------------------------------------------------------------------------


class FieldError(Schema):
    field: str = Field(description="出错的字段名；整个请求的问题为 `body`，权限或状态问题为空串")
    message: str


class ErrorOut(Schema):
    """The one error shape of the API."""

    detail: str = Field(description="给人看的中文说明")
    errors: list[FieldError] = Field(description="逐个字段的错误，可能为空")


# --- projects ----------------------------------------------------------------------------------


class DepartmentOut(Schema):
    id: int
    name: str
    kind: Literal[tuple(Department.Kind.values)]  # type: ignore[valid-type]


class ProjectItem(Schema):
    id: int
    name: str
    year: int
    status: ProjectStatus  # type: ignore[valid-type]
    status_label: str
    subdistrict: str
    neighbourhood: str
    progress: int = Field(ge=0, le=100, description="总体进度（%）")
    url: str


class ProjectPage(Schema):
    items: list[ProjectItem]
    next_cursor: str | None = Field(description="下一页的游标；没有更多时为 null")


class MilestoneOut(Schema):
    label: str
    planned: date | None
    actual: date | None
    late: bool


class ScopeItemOut(Schema):
    id: int
    area: AreaCode  # type: ignore[valid-type]
    description: str
    progress: int = Field(ge=0, le=100)
    budget: float | None = Field(description="投资（万元）")


class AreaProgress(Schema):
    area: AreaCode  # type: ignore[valid-type]
    label: str
    progress: int = Field(ge=0, le=100)
    items: list[ScopeItemOut]


class ProjectDetail(ProjectItem):
    address: str
    year_built: int | None
    households: int | None
    contractor: DepartmentOut | None
    budget: float | None = Field(description="投资（万元）")
    description: str
    to_complete_this_year: bool
    milestones: list[MilestoneOut]


class ProjectProgress(Schema):
    project: int
    progress: int = Field(ge=0, le=100)
    areas: list[AreaProgress]


# --- issues ------------------------------------------------------------------------------------


class PhotoOut(Schema):
    id: int
    kind: Literal[tuple(Photo.Kind.values)]  # type: ignore[valid-type]
    url: str
    thumbnail_url: str
    width: int
    height: int
    state: Literal[tuple(Photo.State.values)] = Field(  # type: ignore[valid-type]
        description=(
            "ready 可以查看；pending 处理中（HEIC 照片由后台转换，通常几秒内完成，"
            "此前两个地址返回「照片处理中」的 SVG 图块）；failed 无法处理（地址返回说明图块）"
        )
    )


class IssueItem(Schema):
    id: int
    reference: str = Field(description="编号，如 2023-00042")
    title: str
    status: IssueStatus  # type: ignore[valid-type]
    status_label: str
    category: IssueCategory  # type: ignore[valid-type]
    urgency: IssueUrgency  # type: ignore[valid-type]
    project: int
    project_name: str
    subdistrict: str
    department: DepartmentOut | None
    place: str
    created_at: datetime
    deadline: datetime | None = Field(description="当前在走的时限：签收时限或整改期限")
    is_overdue: bool
    is_public: bool
    support_count: int = Field(ge=0, description="附议数：其他监督员和居民来信说“我也遇到了”的次数")
    from_residents: bool = Field(description="居民反映：监督员根据居民来信代为反映")
    thumbnail_urls: list[str]
    url: str


class IssuePage(Schema):
    items: list[IssueItem]
    next_cursor: str | None = Field(description="下一页的游标；没有更多时为 null")


class EventOut(Schema):
    id: int
    issue: int
    kind: EventKind  # type: ignore[valid-type]
    kind_label: str
    actor: str | None = Field(description="操作人；系统自动操作时为 null")
    actor_department: str | None
    from_status: IssueStatus | Literal[""]  # type: ignore[valid-type]
    to_status: IssueStatus | Literal[""]  # type: ignore[valid-type]
    text: str
    department: DepartmentOut | None
    deadline: datetime | None
    rating: IssueRating | Literal[""]  # type: ignore[valid-type]
    photos: list[PhotoOut]
    created_at: datetime
    cursor: str


class ExtensionOut(Schema):
    id: int
    issue: int
    until: date
    reason: str
    status: Literal["pending", "granted", "refused"]
    status_label: str
    created_at: datetime
    decided_at: datetime | None
    decision_note: str


class IssueDetail(IssueItem):
    description: str
    building: str
    unit: str
    location: str
    households: int | None
    area: AreaCode | Literal[""]  # type: ignore[valid-type]
    reporter: str
    contractor: DepartmentOut | None
    sign_for_due_at: datetime | None
    rectify_due_at: datetime | None
    accepted_at: datetime | None
    rectified_at: datetime | None
    closed_at: datetime | None
    escalated_at: datetime | None
    rating: IssueRating | Literal[""]  # type: ignore[valid-type]
    photos: list[PhotoOut]
    events: list[EventOut]
    extensions: list[ExtensionOut]
    allowed_steps: list[str] = Field(
        description="当前账号现在可以做的步骤，如 accept、rectify、verify，客户端据此显示按钮"
    )


class IssueIn(Input):
    """反映问题 (multipart/form-data, with the photos as ``photos`` files)."""

    project: Id
    # What the rules that guard filing check (services.filing_problems) is left to them, so that
    # a missing or unknown category, an unknown urgency, an empty title or description and fewer
    # than one household are answered in the service's words beside the field, as on the page.
    # The document states those rules all the same (and api.v1 the ones between fields).
    category: FilingCategory = ""  # type: ignore[valid-type]
    urgency: FilingUrgency = "normal"  # type: ignore[valid-type]
    title: Annotated[str, Field(max_length=100), documented(NOT_BLANK, required=True)] = ""
    description: RequiredText = ""
    building: Annotated[str, Field(max_length=20), documented(NO_NUL)] = ""
    unit: Annotated[str, Field(max_length=20), documented(NO_NUL)] = ""
    location: Annotated[str, Field(max_length=100), documented(NO_NUL)] = ""
    households: Annotated[int, Field(le=10000, json_schema_extra={"minimum": 1})] | None = Field(
        None, json_schema_extra=form_optional
    )
    area: AreaCode | Literal[""] = ""  # type: ignore[valid-type]
    share_position: bool = False
    token: Annotated[str, Field(max_length=64), documented(NO_NUL)] = Field(
        "", description="防重复提交凭据：同一凭据重复提交只会生成一个问题"
    )


# The rules between the fields of a filing (services.filing_problems), for the multipart body
# (api.v1): a residents' opinion names the building and the households; every other category
# comes with at least one photo.
FILING_RULES = [
    {
        "properties": {
            "category": {"const": Issue.Category.OPINION.value},
            "building": {"pattern": NOT_BLANK},
        },
        "required": ["building", "households"],
    },
    {
        "properties": {
            "category": {"enum": [c for c in Issue.Category.values if needs_photo(c)]},
            "photos": {"minItems": 1},
        },
        "required": ["photos"],
    },
]


# --- the steps (field names as in DESIGN.md) ---------------------------------------------------


class AcceptIn(Input):
    deadline: date | None = Field(None, description="整改期限；不填按默认期限")
    text: Text = ""


class TextIn(Input):
    text: RequiredText


class EscalateIn(Input):
    text: RequiredText
    deadline: date | None = Field(
        None, description="上级主管部门督办时必填：要求县（市、区）住建局回复的日期，不早于今天"
    )


class OptionalTextIn(Input):
    text: Text = ""


class DepartmentIn(Input):
    department: Id
    text: Text = ""


class TransferIn(Input):
    department: Id
    reason: RequiredText


class ReasonIn(Input):
    reason: RequiredText


class OptionalReasonIn(Input):
    reason: Text = ""


class SupportIn(Input):
    """附议 has no fields: an empty object."""


class VerifyIn(Input):
    # 不满意 needs a reason (VerifyForm.clean): the document states the two cases.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"properties": {"rating": {"enum": SATISFIED}}},
                {
                    "properties": {
                        "rating": {"const": Issue.Rating.UNSATISFIED.value},
                        "text": {"pattern": NOT_BLANK},
                    },
                    "required": ["text"],
                },
            ]
        },
    )

    rating: IssueRating  # type: ignore[valid-type]
    text: Text = ""


class ExtendIn(Input):
    until: date
    reason: RequiredText


class StepTextForm(Input):
    """rectify / comment: multipart/form-data with ``photos`` files."""

    text: RequiredText


class DecisionIn(Input):
    grant: bool
    note: Annotated[str, Field(max_length=200), documented(NO_NUL)] = ""


# --- feed and notifications --------------------------------------------------------------------


class FeedEvent(EventOut):
    issue_reference: str
    issue_title: str


class FeedPage(Schema):
    items: list[FeedEvent]
    newest: str = Field(description="下次用 after= 轮询新动态的游标")
    older: str | None = Field(description="用 before= 加载更早动态的游标；没有更多时为 null")


class NotificationOut(Schema):
    id: int
    created_at: datetime
    read_at: datetime | None
    event: FeedEvent


class NotificationPage(Schema):
    items: list[NotificationOut]
    unread: int
    next_cursor: str | None


class ReadOut(Schema):
    marked: int
