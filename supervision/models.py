"""The domain of 群众监督: where the works are, who watches them, and the issues they raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        abstract = True


class Subdistrict(TimestampedModel):
    """街道: 安阳、玉海、锦湖、上望 …"""

    name = models.CharField(_("名称"), max_length=50, unique=True)
    code = models.SlugField(_("代码"), max_length=30, unique=True)

    class Meta:
        verbose_name = _("街道")
        verbose_name_plural = _("街道")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Department(TimestampedModel):
    """部门/单位: the bureau, a subdistrict office, a contractor, a utility …"""

    class Kind(models.TextChoices):
        BUREAU = "bureau", _("住建局")
        SUBDISTRICT_OFFICE = "subdistrict_office", _("街道办事处")
        CONTRACTOR = "contractor", _("施工单位")
        SUPERVISING_ENGINEER = "supervising_engineer", _("监理单位")
        UTILITY = "utility", _("管线单位")
        PROPERTY_MANAGER = "property_manager", _("物业")

    name = models.CharField(_("名称"), max_length=100, unique=True)
    kind = models.CharField(_("类型"), max_length=30, choices=Kind.choices)
    subdistrict = models.ForeignKey(
        Subdistrict,
        verbose_name=_("街道"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="departments",
    )
    phone = models.CharField(_("公开电话"), max_length=30, blank=True)
    is_active = models.BooleanField(_("在用"), default=True)
    webhook_url = models.URLField(
        _("企业微信群机器人地址"),
        max_length=300,
        blank=True,
        help_text=_("填写后，新问题、超期和办结会推送到该部门的企业微信群。"),
    )

    # Who changed what, when (django-simple-history): the audit trail of master data.
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("部门/单位")
        verbose_name_plural = _("部门/单位")
        ordering = ["kind", "name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="subdistrict_office") | Q(subdistrict__isnull=False),
                name="supervision_department_office_has_subdistrict",
            ),
            models.CheckConstraint(
                condition=Q(
                    kind__in=[
                        "bureau",
                        "subdistrict_office",
                        "contractor",
                        "supervising_engineer",
                        "utility",
                        "property_manager",
                    ]
                ),
                name="supervision_department_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_contractor(self) -> bool:
        return self.kind == self.Kind.CONTRACTOR


@dataclass(frozen=True)
class Eligibility:
    """Whether a neighbourhood may be renovated, and why (the article's 相关链接)."""

    qualifies: bool
    reasons: list[str] = field(default_factory=list)


ELIGIBILITY_YEAR = 2000


class Neighbourhood(TimestampedModel):
    """小区: a residential community."""

    name = models.CharField(_("名称"), max_length=100)
    subdistrict = models.ForeignKey(
        Subdistrict, verbose_name=_("街道"), on_delete=models.PROTECT, related_name="neighbourhoods"
    )
    address = models.CharField(_("地址"), max_length=200, blank=True)
    year_built = models.PositiveSmallIntegerField(
        _("建成年份"), validators=[MinValueValidator(1900), MaxValueValidator(2100)]
    )
    buildings = models.PositiveSmallIntegerField(_("楼栋数"), default=0)
    households = models.PositiveIntegerField(_("户数"), default=0)
    in_shantytown_plan = models.BooleanField(_("已列入棚改计划"), default=False)
    expropriation_within_5_years = models.BooleanField(_("5 年内列入征收计划"), default=False)
    incomplete_facilities = models.BooleanField(
        _("使用功能不齐全、配套设施不完备或物业管理不健全"), default=False
    )
    strong_resident_wish = models.BooleanField(_("居民改造意愿强烈"), default=False)

    # Who changed what, when (django-simple-history): the audit trail of master data.
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("小区")
        verbose_name_plural = _("小区")
        ordering = ["subdistrict__code", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["subdistrict", "name"], name="supervision_neighbourhood_unique_name"
            ),
            models.CheckConstraint(
                condition=Q(year_built__gte=1900) & Q(year_built__lte=2100),
                name="supervision_neighbourhood_year_built_plausible",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def eligibility(self) -> Eligibility:
        """The verdict of the 2023 rule, with the reasons a person can check."""
        if self.year_built < ELIGIBILITY_YEAR:
            reasons = [_("%(year)s 年建成，早于 2000 年") % {"year": self.year_built}]
            blockers = []
            if self.in_shantytown_plan:
                blockers.append(_("已列入棚改计划"))
            if self.expropriation_within_5_years:
                blockers.append(_("5 年内列入征收计划"))
            if blockers:
                return Eligibility(False, reasons + blockers)
            reasons.append(_("未列入棚改计划，5 年内未列入征收计划"))
            return Eligibility(True, reasons)

        reasons = [_("%(year)s 年建成，2000 年及以后") % {"year": self.year_built}]
        if self.incomplete_facilities and self.strong_resident_wish:
            reasons += [
                _("使用功能不齐全、配套设施不完备或物业管理不健全"),
                _("居民改造意愿强烈"),
            ]
            return Eligibility(True, reasons)
        if not self.incomplete_facilities:
            reasons.append(_("功能、设施和物业管理没有明显不足"))
        if not self.strong_resident_wish:
            reasons.append(_("居民改造意愿不强烈"))
        return Eligibility(False, reasons)


@dataclass(frozen=True)
class Milestone:
    label: str
    planned: date | None
    actual: date | None
    late: bool


class Project(TimestampedModel):
    """改造项目: one renovation of one neighbourhood in one year's batch."""

    class Status(models.TextChoices):
        PLANNING = "planning", _("规划")
        CONSULTING = "consulting", _("征询")
        CONSTRUCTION = "construction", _("施工")
        COMPLETED = "completed", _("完工")
        ACCEPTED = "accepted", _("验收")

    name = models.CharField(_("项目名称"), max_length=150)
    year = models.PositiveSmallIntegerField(_("年度批次"))
    neighbourhood = models.ForeignKey(
        Neighbourhood, verbose_name=_("小区"), on_delete=models.PROTECT, related_name="projects"
    )
    status = models.CharField(
        _("状态"), max_length=20, choices=Status.choices, default=Status.PLANNING
    )
    to_complete_this_year = models.BooleanField(_("列入当年完工计划"), default=True)
    contractor = models.ForeignKey(
        Department,
        verbose_name=_("施工单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="contracted_projects",
        limit_choices_to={"kind": Department.Kind.CONTRACTOR},
    )
    departments = models.ManyToManyField(
        Department,
        verbose_name=_("责任部门"),
        blank=True,
        related_name="projects",
    )
    budget = models.DecimalField(
        _("投资（万元）"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    description = models.TextField(_("简介"), blank=True)
    consultation_planned = models.DateField(_("计划征询"), null=True, blank=True)
    consultation_actual = models.DateField(_("实际征询"), null=True, blank=True)
    design_planned = models.DateField(_("计划完成设计"), null=True, blank=True)
    design_actual = models.DateField(_("实际完成设计"), null=True, blank=True)
    planned_start = models.DateField(_("计划开工"), null=True, blank=True)
    planned_end = models.DateField(_("计划完工"), null=True, blank=True)
    actual_start = models.DateField(_("实际开工"), null=True, blank=True)
    actual_end = models.DateField(_("实际完工"), null=True, blank=True)
    acceptance_planned = models.DateField(_("计划验收"), null=True, blank=True)
    acceptance_actual = models.DateField(_("实际验收"), null=True, blank=True)

    # Who changed what, when (django-simple-history): the audit trail of master data.
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("改造项目")
        verbose_name_plural = _("改造项目")
        ordering = ["-year", "neighbourhood__subdistrict__code", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["neighbourhood", "year"], name="supervision_project_one_per_year"
            ),
            models.CheckConstraint(
                condition=Q(planned_end__isnull=True)
                | Q(planned_start__isnull=True)
                | Q(planned_end__gte=F("planned_start")),
                name="supervision_project_planned_end_after_start",
            ),
            models.CheckConstraint(
                condition=Q(actual_end__isnull=True)
                | Q(actual_start__isnull=True)
                | Q(actual_end__gte=F("actual_start")),
                name="supervision_project_actual_end_after_start",
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=["planning", "consulting", "construction", "completed", "accepted"]
                ),
                name="supervision_project_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("project-detail", args=[self.pk])

    def milestones(self) -> list[Milestone]:
        """征询、设计、开工、完工、验收: planned against actual."""
        today = timezone.localdate()
        pairs = [
            (_("征询"), self.consultation_planned, self.consultation_actual),
            (_("设计"), self.design_planned, self.design_actual),
            (_("开工"), self.planned_start, self.actual_start),
            (_("完工"), self.planned_end, self.actual_end),
            (_("验收"), self.acceptance_planned, self.acceptance_actual),
        ]
        return [
            Milestone(
                label=label,
                planned=planned,
                actual=actual,
                late=bool(
                    planned and ((actual and actual > planned) or (not actual and planned < today))
                ),
            )
            for label, planned, actual in pairs
        ]

    def progress(self) -> int:
        """Overall progress in percent: scope items weighted by budget, or equally without one.

        Uses the prefetched ``scope_items`` when the caller prefetched them.
        """
        return weighted_progress(list(self.scope_items.all()))

    def progress_by_area(self) -> list[dict]:
        """Per content area that has scope items: ``area``, ``label``, ``items``, ``progress``."""
        items = list(self.scope_items.all())
        areas = []
        for value, label in ScopeItem.Area.choices:
            in_area = [item for item in items if item.area == value]
            if in_area:
                areas.append(
                    {
                        "area": value,
                        "label": label,
                        "items": in_area,
                        "progress": weighted_progress(in_area),
                    }
                )
        return areas


def weighted_progress(items: list[ScopeItem]) -> int:
    if not items:
        return 0
    if all(item.budget for item in items):
        total = sum((item.budget for item in items), Decimal(0))
        done = sum((item.budget * item.progress for item in items), Decimal(0))
        return round(done / total)
    return round(sum(item.progress for item in items) / len(items))


class ScopeItem(TimestampedModel):
    """改造内容: a line of work in one of the six content areas."""

    class Area(models.TextChoices):
        BUILDING = "building", _("建筑")
        ROADS = "roads", _("道路交通和停车")
        PIPES = "pipes", _("管网通信")
        LANDSCAPE = "landscape", _("景观绿化")
        CARE = "care", _("养老托育服务设施")
        GOVERNANCE = "governance", _("社区治理和服务体系")

    project = models.ForeignKey(
        Project, verbose_name=_("项目"), on_delete=models.CASCADE, related_name="scope_items"
    )
    area = models.CharField(_("改造方面"), max_length=20, choices=Area.choices)
    description = models.CharField(_("内容"), max_length=200)
    budget = models.DecimalField(
        _("投资（万元）"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    progress = models.PositiveSmallIntegerField(
        _("进度（%）"), default=0, validators=[MaxValueValidator(100)]
    )

    class Meta:
        verbose_name = _("改造内容")
        verbose_name_plural = _("改造内容")
        ordering = ["project", "area", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="supervision_scopeitem_progress_max_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_area_display()}：{self.description}"


class Supervisor(TimestampedModel):
    """群众监督员: a resident appointed (聘任) by the bureau."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("账号"),
        on_delete=models.PROTECT,
        related_name="supervisor",
    )
    neighbourhood = models.ForeignKey(
        Neighbourhood,
        verbose_name=_("居住小区"),
        on_delete=models.PROTECT,
        related_name="supervisors",
    )
    projects = models.ManyToManyField(
        Project, verbose_name=_("监督项目"), blank=True, related_name="supervisors"
    )
    appointed_on = models.DateField(_("聘任日期"))
    term_ends_on = models.DateField(_("聘期届满"))
    certificate_number = models.CharField(_("聘书编号"), max_length=30, unique=True)
    is_active = models.BooleanField(_("在任"), default=True)
    dismissed_on = models.DateField(_("解聘日期"), null=True, blank=True)

    # Who changed what, when (django-simple-history): the audit trail of master data.
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("群众监督员")
        verbose_name_plural = _("群众监督员")
        ordering = ["certificate_number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(term_ends_on__gt=F("appointed_on")),
                name="supervision_supervisor_term_after_appointment",
            ),
            models.CheckConstraint(
                condition=Q(is_active=True) | Q(dismissed_on__isnull=False),
                name="supervision_supervisor_dismissed_has_date",
            ),
        ]

    def __str__(self) -> str:
        return str(self.user)

    def is_serving(self, on=None) -> bool:
        """Appointed, not dismissed, and within the term."""
        on = on or timezone.localdate()
        return self.is_active and self.appointed_on <= on <= self.term_ends_on


def issue_visibility(user, prefix: str = "") -> Q | None:
    """The condition on issues (through ``prefix``, e.g. ``"issue__"``) that ``user`` may read;
    None when they may read every issue. The one place this rule lives."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Q(**{f"{prefix}is_public": True})
    if user.is_bureau or user.is_supervisor:
        return None
    if user.is_department_staff:
        return department_issues(user.department_id, prefix)
    return Q(**{f"{prefix}is_public": True})


def department_issues(department_id: int | None, prefix: str = "") -> Q:
    """What a department's staff may read: the issues routed to it or dispatched to it."""
    return Q(**{f"{prefix}department_id": department_id}) | Q(
        **{f"{prefix}contractor_id": department_id}
    )


def department_projects(department_id: int | None) -> Q:
    """The projects a department works on: as one of the project's departments, or as its
    contractor (use with ``.distinct()``: a project may list the department twice)."""
    return Q(departments=department_id) | Q(contractor=department_id)


def issue_visible(user, issue) -> bool:
    """The same rule as ``issue_visibility``, for one issue already in hand (no query)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return issue.is_public
    if user.is_bureau or user.is_supervisor:
        return True
    if user.is_department_staff:
        return user.department_id is not None and user.department_id in (
            issue.department_id,
            issue.contractor_id,
        )
    return issue.is_public


class IssueRelatedQuerySet(models.QuerySet):
    """Events and photos: visible when their issue is."""

    def visible_to(self, user) -> models.QuerySet:
        condition = issue_visibility(user, "issue__")
        return self if condition is None else self.filter(condition)


class IssueQuerySet(models.QuerySet):
    def visible_to(self, user) -> IssueQuerySet:
        """What this user may read: the group is transparent to supervisors and the bureau,
        departments see what is routed or dispatched to them, the public what was made public."""
        condition = issue_visibility(user)
        return self if condition is None else self.filter(condition)

    def open(self) -> IssueQuerySet:
        return self.filter(status__in=Issue.OPEN_STATUSES)

    def overdue(self, now=None) -> IssueQuerySet:
        """Past the time limit they are running against: signing for, or rectifying."""
        now = now or timezone.now()
        S = Issue.Status
        return self.filter(
            Q(status=S.SUBMITTED, sign_for_due_at__lt=now)
            | Q(status__in=[S.ACCEPTED, S.IN_PROGRESS], rectify_due_at__lt=now)
        )


class Issue(TimestampedModel):
    """问题/监督事项: one problem a supervisor files on a project; the tracked case."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("已提交")
        ACCEPTED = "accepted", _("已签收")
        IN_PROGRESS = "in_progress", _("整改中")
        RECTIFIED = "rectified", _("已整改")
        CLOSED = "closed", _("已办结")
        ANSWERED = "answered", _("已答复")
        REJECTED = "rejected", _("不予受理")
        WITHDRAWN = "withdrawn", _("已撤回")

    class Category(models.TextChoices):
        QUALITY = "quality", _("质量")
        PROGRESS = "progress", _("进度")
        SAFETY = "safety", _("安全")
        CIVILISED = "civilised", _("文明施工")
        OPINION = "opinion", _("居民意见")
        OTHER = "other", _("其他")

    class Urgency(models.TextChoices):
        NORMAL = "normal", _("一般")
        URGENT = "urgent", _("紧急")

    class Rating(models.TextChoices):
        SATISFIED = "satisfied", _("满意")
        BASICALLY_SATISFIED = "basically_satisfied", _("基本满意")
        UNSATISFIED = "unsatisfied", _("不满意")

    # Waiting for a department to act.
    OPEN_STATUSES = (Status.SUBMITTED, Status.ACCEPTED, Status.IN_PROGRESS)
    # Finished, one way or another.
    FINAL_STATUSES = (Status.CLOSED, Status.REJECTED, Status.WITHDRAWN)

    reference = models.CharField(_("编号"), max_length=20, unique=True, editable=False)
    year = models.PositiveSmallIntegerField(_("年份"), editable=False)
    sequence = models.PositiveIntegerField(_("序号"), editable=False)
    project = models.ForeignKey(
        Project, verbose_name=_("项目"), on_delete=models.PROTECT, related_name="issues"
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("反映人"),
        on_delete=models.PROTECT,
        related_name="reported_issues",
    )
    category = models.CharField(_("类别"), max_length=20, choices=Category.choices)
    urgency = models.CharField(
        _("紧急程度"), max_length=10, choices=Urgency.choices, default=Urgency.NORMAL
    )
    title = models.CharField(_("标题"), max_length=100)
    description = models.TextField(_("问题描述"))
    building = models.CharField(_("楼栋"), max_length=20, blank=True)
    unit = models.CharField(_("单元"), max_length=20, blank=True)
    location = models.CharField(
        _("具体部位"), max_length=100, blank=True, help_text=_("如：北面外墙、3 楼楼道")
    )
    households = models.PositiveIntegerField(
        _("涉及户数"), null=True, blank=True, help_text=_("居民意见：代表多少户居民")
    )
    area = models.CharField(
        _("涉及方面"),
        max_length=20,
        choices=ScopeItem.Area.choices,
        blank=True,
        help_text=_("居民意见：属于改造内容的哪个方面"),
    )
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    status = models.CharField(
        _("状态"), max_length=20, choices=Status.choices, default=Status.SUBMITTED
    )
    department = models.ForeignKey(
        Department,
        verbose_name=_("承办部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="issues",
    )
    contractor = models.ForeignKey(
        Department,
        verbose_name=_("整改单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="dispatched_issues",
    )
    sign_for_due_at = models.DateTimeField(_("签收时限"), null=True, blank=True)
    reply_due_at = models.DateTimeField(_("答复时限"), null=True, blank=True)
    rectify_due_at = models.DateTimeField(_("整改期限"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("签收时间"), null=True, blank=True)
    first_reply_at = models.DateTimeField(_("首次答复时间"), null=True, blank=True)
    rectified_at = models.DateTimeField(_("整改完成时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("督办时间"), null=True, blank=True)
    rating = models.CharField(_("满意度"), max_length=20, choices=Rating.choices, blank=True)
    is_public = models.BooleanField(_("公开"), default=False)
    # How many times the reporter sent the fix or answer back (退回重办): the REOPENED events,
    # counted by services._send_back.
    reopen_count = models.PositiveSmallIntegerField(_("退回次数"), default=0, editable=False)
    idempotency_key = models.CharField(
        max_length=64, null=True, blank=True, unique=True, editable=False
    )

    objects = IssueQuerySet.as_manager()

    class Meta:
        verbose_name = _("问题")
        verbose_name_plural = _("问题")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["year", "sequence"], name="supervision_issue_unique_sequence"
            ),
            models.CheckConstraint(
                condition=Q(rectify_due_at__isnull=True) | Q(rectify_due_at__gt=F("created_at")),
                name="supervision_issue_deadline_after_created",
            ),
            models.CheckConstraint(
                condition=~Q(category="opinion") | Q(households__gte=1),
                name="supervision_issue_opinion_has_households",
            ),
            models.CheckConstraint(
                condition=Q(rating="") | Q(status="closed"),
                name="supervision_issue_rating_only_when_closed",
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "submitted",
                        "accepted",
                        "in_progress",
                        "rectified",
                        "closed",
                        "answered",
                        "rejected",
                        "withdrawn",
                    ]
                ),
                name="supervision_issue_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    category__in=["quality", "progress", "safety", "civilised", "opinion", "other"]
                ),
                name="supervision_issue_category_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="supervision_issue_status_idx"),
            models.Index(fields=["department", "status"], name="supervision_issue_dept_idx"),
            # The lists page newest first by keyset over (created_at, id), whole or filtered.
            models.Index(fields=["-created_at", "-id"], name="supervision_issue_recent_idx"),
            models.Index(fields=["project", "-created_at"], name="supervision_issue_proj_rec_idx"),
            models.Index(fields=["reporter", "-created_at"], name="supervision_issue_rep_rec_idx"),
            models.Index(
                fields=["department", "-created_at"], name="supervision_issue_dep_rec_idx"
            ),
            models.Index(
                fields=["contractor", "-created_at"], name="supervision_issue_con_rec_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("issue-detail", args=[self.pk])

    @property
    def place(self) -> str:
        """Where in the neighbourhood, as people say it: 「5 幢 2 单元 北面外墙」."""
        return " ".join(part for part in (self.building, self.unit, self.location) if part)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def next_deadline(self):
        """The time limit the issue is running against now, if any."""
        if self.status == self.Status.SUBMITTED:
            return self.sign_for_due_at
        if self.status in (self.Status.ACCEPTED, self.Status.IN_PROGRESS):
            return self.rectify_due_at
        return None

    @property
    def is_overdue(self) -> bool:
        deadline = self.next_deadline
        return deadline is not None and deadline < timezone.now()


class IssueEvent(models.Model):
    """处理记录: one entry in an issue's thread."""

    class Kind(models.TextChoices):
        SUBMITTED = "submitted", _("提交问题")
        ACCEPTED = "accepted", _("签收")
        ANSWERED = "answered", _("答复")
        DISPATCHED = "dispatched", _("派单")
        TRANSFERRED = "transferred", _("转派")
        REJECTED = "rejected", _("不予受理")
        RECTIFIED = "rectified", _("整改完成")
        VERIFIED = "verified", _("验证办结")
        REOPENED = "reopened", _("退回重办")
        WITHDRAWN = "withdrawn", _("撤回")
        COMMENTED = "commented", _("留言")
        ESCALATED = "escalated", _("督办")
        APPEALED = "appealed", _("申诉")
        EXTENSION_REQUESTED = "extension_requested", _("申请延期")
        EXTENSION_GRANTED = "extension_granted", _("同意延期")
        EXTENSION_REFUSED = "extension_refused", _("不同意延期")

    issue = models.ForeignKey(
        Issue, verbose_name=_("问题"), on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(_("类型"), max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("操作人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="issue_events",
    )
    from_status = models.CharField(
        _("原状态"), max_length=20, choices=Issue.Status.choices, blank=True
    )
    to_status = models.CharField(
        _("新状态"), max_length=20, choices=Issue.Status.choices, blank=True
    )
    text = models.TextField(_("内容"), blank=True)
    department = models.ForeignKey(
        Department,
        verbose_name=_("相关部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    deadline = models.DateTimeField(_("期限"), null=True, blank=True)
    rating = models.CharField(_("满意度"), max_length=20, choices=Issue.Rating.choices, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)

    objects = IssueRelatedQuerySet.as_manager()

    class Meta:
        verbose_name = _("处理记录")
        verbose_name_plural = _("处理记录")
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["issue", "created_at"], name="supervision_event_issue_idx")]

    def __str__(self) -> str:
        return f"{self.issue.reference} {self.get_kind_display()}"

    @property
    def is_status_change(self) -> bool:
        return bool(self.to_status) and self.to_status != self.from_status


def photo_path(instance: Photo, filename: str) -> str:
    # The photo module names files; this only keeps Django's FileField contract.
    return filename


class Photo(models.Model):
    """照片: a web copy and a thumbnail, before (问题照片) or after (整改照片)."""

    class Kind(models.TextChoices):
        BEFORE = "before", _("问题照片")
        AFTER = "after", _("整改照片")

    issue = models.ForeignKey(
        Issue, verbose_name=_("问题"), on_delete=models.CASCADE, related_name="photos"
    )
    event = models.ForeignKey(
        IssueEvent,
        verbose_name=_("处理记录"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="photos",
    )
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices, default=Kind.BEFORE)
    # Plain FileFields: the photo module has already measured and re-encoded the image.
    image = models.FileField(_("照片"), upload_to=photo_path, max_length=200)
    thumbnail = models.FileField(_("缩略图"), upload_to=photo_path, max_length=200)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    objects = IssueRelatedQuerySet.as_manager()

    class Meta:
        verbose_name = _("照片")
        verbose_name_plural = _("照片")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.issue.reference} {self.get_kind_display()}"

    def get_absolute_url(self) -> str:
        return reverse("photo", args=[self.pk])

    @property
    def thumbnail_url(self) -> str:
        return reverse("photo-thumbnail", args=[self.pk])


class IssueCounter(models.Model):
    """The last reference sequence used per year; locked by ``submit_issue``."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("编号计数器")
        verbose_name_plural = _("编号计数器")
        ordering = ["year"]

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


class CatalogueVersion(models.Model):
    """One row: a number that changes whenever subdistricts, departments, neighbourhoods,
    projects or who works on a project change. Cached option lists and pages
    (``supervision/fragments.py``) hold it in their keys; every app process reads it from here."""

    version = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("目录版本")
        verbose_name_plural = _("目录版本")

    def __str__(self) -> str:
        return str(self.version)


class RoutingRule(TimestampedModel):
    """分派规则: which department a new issue goes to, by subdistrict and category.

    The most specific rule wins (subdistrict and category, then subdistrict, then category);
    without any, the subdistrict office of the project's subdistrict.
    """

    subdistrict = models.ForeignKey(
        Subdistrict,
        verbose_name=_("街道"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text=_("留空表示所有街道"),
    )
    category = models.CharField(
        _("问题类别"),
        max_length=20,
        choices=Issue.Category.choices,
        blank=True,
        help_text=_("留空表示所有类别"),
    )
    department = models.ForeignKey(
        Department, verbose_name=_("分派给"), on_delete=models.PROTECT, related_name="+"
    )
    note = models.CharField(_("说明"), max_length=200, blank=True)

    # Who changed what, when (django-simple-history): the audit trail of master data.
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("分派规则")
        verbose_name_plural = _("分派规则")
        ordering = ["subdistrict__name", "category"]
        constraints = [
            models.UniqueConstraint(
                fields=["subdistrict", "category"],
                condition=Q(subdistrict__isnull=False),
                name="supervision_routingrule_unique",
            ),
            models.UniqueConstraint(
                fields=["category"],
                condition=Q(subdistrict__isnull=True),
                name="supervision_routingrule_unique_any_subdistrict",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subdistrict or _('所有街道')} · {self.get_category_display() or _('所有类别')} → {self.department}"


class CalendarChange(models.Model):
    """本地调整: a day that differs from the national calendar (a typhoon day off, or next
    year's schedule before the ``holidays`` package carries it)."""

    day = models.DateField(_("日期"), unique=True)
    is_working_day = models.BooleanField(_("上班"), default=False)
    note = models.CharField(_("原因"), max_length=100)

    class Meta:
        verbose_name = _("工作日调整")
        verbose_name_plural = _("工作日调整")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day} {_('上班') if self.is_working_day else _('休息')}"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        from .workdays import forget_local_changes

        forget_local_changes()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        from .workdays import forget_local_changes

        forget_local_changes()
        return result


class ResponseTemplate(models.Model):
    """常用回复: text a department inserts into a reply with one tap."""

    department = models.ForeignKey(
        Department,
        verbose_name=_("部门"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="response_templates",
        help_text=_("留空表示所有部门都可用"),
    )
    title = models.CharField(_("名称"), max_length=30)
    text = models.TextField(_("内容"), max_length=1000)
    position = models.PositiveSmallIntegerField(_("排序"), default=0)

    class Meta:
        verbose_name = _("常用回复")
        verbose_name_plural = _("常用回复")
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.title


class ExtensionRequest(TimestampedModel):
    """延期申请: a department asks the bureau for more time to rectify."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待审批")
        GRANTED = "granted", _("已同意")
        REFUSED = "refused", _("未同意")

    issue = models.ForeignKey(
        Issue, verbose_name=_("问题"), on_delete=models.CASCADE, related_name="extensions"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("申请人"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    until = models.DateField(_("延期至"))
    reason = models.TextField(_("理由"), max_length=1000)
    status = models.CharField(
        _("状态"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("审批人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("审批时间"), null=True, blank=True)
    decision_note = models.CharField(_("审批意见"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("延期申请")
        verbose_name_plural = _("延期申请")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["issue"],
                condition=Q(status="pending"),
                name="supervision_extension_one_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.issue.reference} → {self.until}"


class NotificationQuerySet(models.QuerySet):
    def readable_by(self, user) -> NotificationQuerySet:
        """Those about issues ``user`` may still read: after a transfer, the old department's
        notifications would otherwise still show the events of an issue now hidden from it."""
        condition = issue_visibility(user, "event__issue__")
        return self if condition is None else self.filter(condition)


class Notification(models.Model):
    """One recipient's copy of one event: the bell counts the unread ones."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("接收人"),
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    event = models.ForeignKey(
        IssueEvent, verbose_name=_("处理记录"), on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(_("时间"), default=timezone.now)
    read_at = models.DateTimeField(_("已读时间"), null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "event"], name="supervision_notification_once"
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="supervision_notif_unread_idx"),
            # The bell's list, newest first: the bureau receives every escalation of a province.
            models.Index(
                fields=["recipient", "-created_at", "-id"], name="supervision_notif_recent_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recipient} · {self.event}"


class Delivery(models.Model):
    """An email or a WeCom webhook post, with its attempts: failures are shown in the panel."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("邮件")
        WEBHOOK = "webhook", _("企业微信群")

    class Status(models.TextChoices):
        PENDING = "pending", _("待发送")
        SENT = "sent", _("已发送")
        FAILED = "failed", _("发送失败")

    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    target = models.CharField(_("发送到"), max_length=300)
    event = models.ForeignKey(
        IssueEvent,
        verbose_name=_("处理记录"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    subject = models.CharField(_("标题"), max_length=200)
    body = models.TextField(_("内容"))
    status = models.CharField(
        _("状态"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    last_error = models.CharField(_("最近错误"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("消息推送")
        verbose_name_plural = _("消息推送")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} → {self.target}"


# --- residents decide: consultations ------------------------------------------------------------


class Consultation(TimestampedModel):
    """意愿征询: residents decide 改不改、改什么、怎么改、如何管, one ballot per household."""

    project = models.ForeignKey(
        Project, verbose_name=_("项目"), on_delete=models.CASCADE, related_name="consultations"
    )
    title = models.CharField(_("标题"), max_length=100)
    opens_on = models.DateField(_("开始日期"))
    closes_on = models.DateField(_("截止日期"))
    # The rule: at least participation of the households vote, and at least approval of those
    # who voted agree, for an item to be adopted. Default 2/3 and 2/3.
    participation_numerator = models.PositiveSmallIntegerField(_("参与率分子"), default=2)
    participation_denominator = models.PositiveSmallIntegerField(_("参与率分母"), default=3)
    approval_numerator = models.PositiveSmallIntegerField(_("同意率分子"), default=2)
    approval_denominator = models.PositiveSmallIntegerField(_("同意率分母"), default=3)
    applied_at = models.DateTimeField(_("结果采纳时间"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("发起人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("意愿征询")
        verbose_name_plural = _("意愿征询")
        ordering = ["-opens_on", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_on__gte=F("opens_on")),
                name="supervision_consultation_closes_after_opening",
            ),
            models.CheckConstraint(
                condition=Q(participation_denominator__gt=0)
                & Q(approval_denominator__gt=0)
                & Q(participation_numerator__lte=F("participation_denominator"))
                & Q(approval_numerator__lte=F("approval_denominator")),
                name="supervision_consultation_rule_is_a_fraction",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("consultation", args=[self.pk])

    def is_open(self, today: date | None = None) -> bool:
        today = today or timezone.localdate()
        return self.opens_on <= today <= self.closes_on

    def is_closed(self, today: date | None = None) -> bool:
        return (today or timezone.localdate()) > self.closes_on


class ConsultationItem(models.Model):
    """One question of a consultation: whether to renovate, a proposed scope item (how, by its
    options), or how the community will be managed afterwards."""

    class Kind(models.TextChoices):
        RENOVATE = "renovate", _("是否改造")
        SCOPE = "scope", _("改造内容")
        MANAGEMENT = "management", _("改造后管理")

    consultation = models.ForeignKey(
        Consultation, verbose_name=_("征询"), on_delete=models.CASCADE, related_name="items"
    )
    kind = models.CharField(_("类型"), max_length=12, choices=Kind.choices, default=Kind.SCOPE)
    area = models.CharField(
        _("改造方面"), max_length=20, choices=ScopeItem.Area.choices, blank=True
    )
    text = models.CharField(_("内容"), max_length=200)
    options = models.TextField(
        _("方案选项"), blank=True, help_text=_("每行一个选项，如：真石漆 / 普通涂料；可不填")
    )
    budget = models.DecimalField(
        _("估算投资（万元）"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    position = models.PositiveSmallIntegerField(_("排序"), default=0)

    class Meta:
        verbose_name = _("征询事项")
        verbose_name_plural = _("征询事项")
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="scope") | ~Q(area=""),
                name="supervision_consultationitem_scope_has_area",
            ),
        ]

    def __str__(self) -> str:
        return self.text

    def option_list(self) -> list[str]:
        return [line.strip() for line in self.options.splitlines() if line.strip()]


class Household(models.Model):
    """One household of a consultation, with its one-time voting code."""

    consultation = models.ForeignKey(
        Consultation, verbose_name=_("征询"), on_delete=models.CASCADE, related_name="households"
    )
    building = models.CharField(_("楼栋"), max_length=20)
    unit = models.CharField(_("单元"), max_length=20, blank=True)
    room = models.CharField(_("室"), max_length=20)
    code = models.CharField(_("投票码"), max_length=20, unique=True)

    class Meta:
        verbose_name = _("住户")
        verbose_name_plural = _("住户")
        ordering = ["building", "unit", "room"]
        constraints = [
            models.UniqueConstraint(
                fields=["consultation", "building", "unit", "room"],
                name="supervision_household_unique_address",
            ),
        ]

    def __str__(self) -> str:
        return " ".join(part for part in (self.building, self.unit, self.room) if part)


class Ballot(TimestampedModel):
    """A household's one ballot (a resident may change it until the close)."""

    household = models.OneToOneField(
        Household, verbose_name=_("住户"), on_delete=models.CASCADE, related_name="ballot"
    )
    consultation = models.ForeignKey(
        Consultation, verbose_name=_("征询"), on_delete=models.CASCADE, related_name="ballots"
    )
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("代录人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("纸质选票由监督员代录时记录其姓名"),
    )

    class Meta:
        verbose_name = _("选票")
        verbose_name_plural = _("选票")
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return str(self.household)


class BallotAnswer(models.Model):
    ballot = models.ForeignKey(Ballot, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey(ConsultationItem, on_delete=models.CASCADE, related_name="answers")
    agree = models.BooleanField(_("同意"))
    option = models.CharField(_("选择的方案"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("选票内容")
        verbose_name_plural = _("选票内容")
        constraints = [
            models.UniqueConstraint(fields=["ballot", "item"], name="supervision_answer_once"),
        ]

    def __str__(self) -> str:
        return f"{self.item}: {self.agree}"


# --- patrols -----------------------------------------------------------------------------------


class Patrol(models.Model):
    """巡查记录: a supervisor's site visit with its checklist."""

    class Check(models.TextChoices):
        QUALITY = "quality", _("施工质量")
        PROGRESS = "progress", _("进度是否按计划")
        SAFETY = "safety", _("安全措施")
        FENCING = "fencing", _("围挡")
        DUST = "dust", _("扬尘")
        NOISE = "noise", _("噪声")
        DEBRIS = "debris", _("建筑垃圾")
        ACCESS = "access", _("居民通行")

    project = models.ForeignKey(
        Project, verbose_name=_("项目"), on_delete=models.CASCADE, related_name="patrols"
    )
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("监督员"),
        on_delete=models.PROTECT,
        related_name="patrols",
    )
    note = models.TextField(_("总体情况"), blank=True)
    created_at = models.DateTimeField(_("巡查时间"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("巡查记录")
        verbose_name_plural = _("巡查记录")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.project} {timezone.localtime(self.created_at):%Y-%m-%d}"

    def get_absolute_url(self) -> str:
        return reverse("patrol-detail", args=[self.pk])


class PatrolCheck(models.Model):
    patrol = models.ForeignKey(Patrol, on_delete=models.CASCADE, related_name="checks")
    item = models.CharField(_("检查项"), max_length=20, choices=Patrol.Check.choices)
    ok = models.BooleanField(_("正常"), default=True)
    note = models.CharField(_("问题说明"), max_length=500, blank=True)
    issue = models.OneToOneField(
        Issue,
        verbose_name=_("转为问题"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="patrol_check",
    )

    class Meta:
        verbose_name = _("巡查项")
        verbose_name_plural = _("巡查项")
        ordering = ["patrol", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["patrol", "item"], name="supervision_patrol_item_once"),
            models.CheckConstraint(
                condition=Q(ok=True) | ~Q(note=""), name="supervision_patrol_problem_has_note"
            ),
        ]

    def __str__(self) -> str:
        return self.get_item_display()


class PatrolPhoto(models.Model):
    check_item = models.ForeignKey(PatrolCheck, on_delete=models.CASCADE, related_name="photos")
    image = models.FileField(upload_to=photo_path, max_length=200)
    thumbnail = models.FileField(upload_to=photo_path, max_length=200)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("巡查照片")
        verbose_name_plural = _("巡查照片")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.image.name
