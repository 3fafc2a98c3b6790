"""The tracked case: issues, their thread of events, photos, reference counters, routing rules,
response templates and extension requests; and who may read which issue."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from ..addresses import address
from .catalogue import (
    PROJECT_COUNTY,
    Department,
    Project,
    ScopeItem,
    Subdistrict,
    TimestampedModel,
    in_programme,
    programme,
    project_county,
)


def issue_visibility(user, prefix: str = "") -> Q | None:
    """The condition on issues (through ``prefix``, e.g. ``"issue__"``) that ``user`` may read;
    None when they may read every issue. The one place this rule lives.

    The group is transparent within a programme: supervisors and the bureau read every issue of
    their county, the oversight every issue below its province or city (``programme``)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Q(**{f"{prefix}is_public": True})
    if user.is_bureau or user.is_supervisor or user.is_oversight:
        return in_programme_projects(user, f"{prefix}project")
    if user.is_department_staff:
        return department_issues(user.department_id, prefix)
    return Q(**{f"{prefix}is_public": True})


def in_programme_projects(user, path: str = "project") -> Q | None:
    """``programme`` for rows that hang on a project (at ``path``): their project is one of the
    programme's. A subquery rather than joins, so that a list still walks its own index in its
    own order (the bureau's queue, the issue list) and checks each row against the projects."""
    condition = programme(user, PROJECT_COUNTY)
    if condition is None:
        return None
    return Q(**{f"{path}__in": Project.objects.filter(condition).values("pk")})


def department_issues(department_id: int | None, prefix: str = "") -> Q:
    """What a department's staff may read: the issues routed to it or dispatched to it."""
    return Q(**{f"{prefix}department_id": department_id}) | Q(
        **{f"{prefix}contractor_id": department_id}
    )


def issue_visible(user, issue) -> bool:
    """The same rule as ``issue_visibility``, for one issue already in hand: no query when its
    project's neighbourhood and subdistrict are loaded (and for the oversight one more)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return issue.is_public
    if user.is_bureau or user.is_supervisor or user.is_oversight:
        return in_programme(user, issue_county(issue))
    if user.is_department_staff:
        return user.department_id is not None and user.department_id in (
            issue.department_id,
            issue.contractor_id,
        )
    return issue.is_public


def issue_county(issue) -> int | None:
    """The county-level region an issue belongs to (its project's): no query when the project,
    its neighbourhood and subdistrict are loaded; else one, remembered on the issue."""
    known = getattr(issue, "_county_id", None)
    if known is None:
        project = issue._state.fields_cache.get("project")
        known = project_county(project if project is not None else issue.project_id)
        issue._county_id = known
    return known


def overdue(now: datetime, prefix: str = "") -> Q:
    """The condition on issues (through ``prefix``) that are overdue at ``now``: past the time
    limit they are running against, signing for (已提交) or rectifying (已签收, 整改中). The one
    place this rule lives: the lists, the panel's queue and its order, the sweep, the digest, the
    API and the figures all use it; ``Issue.is_overdue`` is the same rule for one issue in hand."""
    S = Issue.Status
    return Q(**{f"{prefix}status": S.SUBMITTED, f"{prefix}sign_for_due_at__lt": now}) | Q(
        **{
            f"{prefix}status__in": [S.ACCEPTED, S.IN_PROGRESS],
            f"{prefix}rectify_due_at__lt": now,
        }
    )


class IssueRelatedQuerySet(models.QuerySet):
    """Events, photos and extension requests: visible when their issue is."""

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
        return self.filter(overdue(now or timezone.now()))


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
    # The department's clock, kept by ``save()`` from the two above: the limit the issue runs
    # against now (``next_deadline``), empty once it waits on the reporter or is finished. The
    # queue sorts and filters on it through an index (urgent first, then the nearest deadline).
    due_at = models.DateTimeField(_("下一期限"), null=True, blank=True, editable=False)
    accepted_at = models.DateTimeField(_("签收时间"), null=True, blank=True)
    first_reply_at = models.DateTimeField(_("首次答复时间"), null=True, blank=True)
    rectified_at = models.DateTimeField(_("整改完成时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("督办时间"), null=True, blank=True)
    # 上级督办: the province or the city pressed on this issue and the county's bureau owes it an
    # answer by then; cleared when the bureau answers (回复督办).
    oversight_due_at = models.DateTimeField(_("上级督办回复期限"), null=True, blank=True)
    # The reporter's check (回访) of a fix or an answer has a clock too: a reminder, then the
    # issue closes unrated (逾期未评价). Both are cleared once the reporter acts.
    verify_remind_at = models.DateTimeField(_("提醒评价时间"), null=True, blank=True)
    verify_due_at = models.DateTimeField(_("评价期限"), null=True, blank=True)
    rating = models.CharField(_("满意度"), max_length=20, choices=Rating.choices, blank=True)
    is_public = models.BooleanField(_("公开"), default=False)
    # How many times the reporter sent the fix or answer back (退回重办): the REOPENED events,
    # counted by services._send_back.
    reopen_count = models.PositiveSmallIntegerField(_("退回次数"), default=0, editable=False)
    # 附议: how many supervisors and residents' letters said "me too" (kept by the support step).
    support_count = models.PositiveIntegerField(_("附议数"), default=0, editable=False)
    # Filed by a supervisor on the residents' behalf, from a resident's letter (居民反映).
    from_residents = models.BooleanField(_("居民反映"), default=False, editable=False)
    # 保修: filed on a project in warranty and routed to the warranty contractor (warranty.py).
    is_warranty = models.BooleanField(_("保修"), default=False, editable=False)
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
            # The work queue: what waits on a department (what has a deadline running), urgent
            # first, then the nearest deadline (the most overdue first), then the oldest (admin
            # adds -pk to break ties). The condition has no parameter, so that SQLite can prove
            # the query's ``due_at IS NOT NULL`` implies it (a bound ``status IN (?)`` cannot).
            models.Index(
                F("urgency").desc(),  # 「urgent」 sorts after 「normal」
                F("due_at").asc(),
                F("created_at").asc(),
                F("id").desc(),
                name="supervision_issue_queue_idx",
                condition=Q(due_at__isnull=False),
            ),
            # The dashboard's limits passed now (``stats``): open issues with a limit running,
            # per department, read from the index alone.
            models.Index(
                fields=[
                    "department",
                    "status",
                    "created_at",
                    "due_at",
                    "accepted_at",
                    "sign_for_due_at",
                    "rectified_at",
                    "rectify_due_at",
                ],
                name="supervision_issue_overdue_idx",
                condition=Q(due_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def oversight_overdue(self) -> bool:
        """A 督办 from the province or the city past its date without the bureau's answer."""
        return self.oversight_due_at is not None and self.oversight_due_at < timezone.now()

    # The fields ``due_at`` follows.
    CLOCK_FIELDS = frozenset({"status", "sign_for_due_at", "rectify_due_at"})

    def save(self, *args, **kwargs) -> None:
        """Keep ``due_at`` equal to ``next_deadline`` (derived data, not a step: the steps live in
        services and save with ``update_fields``, which gains ``due_at`` when its inputs change)."""
        self.due_at = self.next_deadline
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and self.CLOCK_FIELDS.intersection(update_fields):
            kwargs["update_fields"] = {*update_fields, "due_at"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("issue-detail", args=[self.pk])

    @property
    def place(self) -> str:
        """Where in the neighbourhood, as people say it: 「5 幢 2 单元 北面外墙」."""
        return address(self.building, self.unit, location=self.location)

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
        """``overdue(now)`` for this issue, without a query (a test holds the two together)."""
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
        PUBLISHED = "published", _("公开")
        UNPUBLISHED = "unpublished", _("取消公开")
        VERIFY_REMINDED = "verify_reminded", _("提醒评价")
        VERIFY_EXPIRED = "verify_expired", _("逾期未评价")
        SUPPORTED = "supported", _("附议")
        OVERSIGHT_REPLIED = "oversight_replied", _("回复督办")

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


class StoredPhoto(models.Model):
    """A photo as the intake (``supervision.photos``) stored it: a web copy and a thumbnail,
    already measured and re-encoded. Patrols, letters and acceptance views keep theirs so."""

    image = models.FileField(upload_to=photo_path, max_length=200)
    thumbnail = models.FileField(upload_to=photo_path, max_length=200)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.image.name


class Photo(models.Model):
    """照片: a web copy and a thumbnail, before (问题照片) or after (整改照片)."""

    class Kind(models.TextChoices):
        BEFORE = "before", _("问题照片")
        AFTER = "after", _("整改照片")

    class State(models.TextChoices):
        READY = "ready", _("可查看")
        PENDING = "pending", _("处理中")
        FAILED = "failed", _("无法处理")

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
    # Plain FileFields: the photo module has already measured and re-encoded the image. While
    # ``pending`` (a HEIC photo the worker has yet to convert), ``image`` is the file as sent,
    # never served, and there is no thumbnail.
    image = models.FileField(_("照片"), upload_to=photo_path, max_length=200)
    thumbnail = models.FileField(_("缩略图"), upload_to=photo_path, blank=True, max_length=200)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    state = models.CharField(_("状态"), max_length=10, choices=State.choices, default=State.READY)
    # The file's name as sent, for telling its sender which photo failed.
    name = models.CharField(_("文件名"), max_length=100, blank=True)
    failure = models.CharField(_("无法处理的原因"), max_length=200, blank=True)
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

    @property
    def is_ready(self) -> bool:
        return self.state == self.State.READY


class VoiceNote(models.Model):
    """语音: a spoken note on an issue or one of its events, re-encoded to AAC in MP4."""

    issue = models.ForeignKey(
        Issue, verbose_name=_("问题"), on_delete=models.CASCADE, related_name="voice_notes"
    )
    event = models.ForeignKey(
        IssueEvent,
        verbose_name=_("处理记录"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="voice_notes",
    )
    audio = models.FileField(_("语音"), upload_to=photo_path, max_length=200)
    seconds = models.DecimalField(_("时长（秒）"), max_digits=4, decimal_places=1)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    objects = IssueRelatedQuerySet.as_manager()

    class Meta:
        verbose_name = _("语音")
        verbose_name_plural = _("语音")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.issue.reference} {self.seconds}″"

    def get_absolute_url(self) -> str:
        return reverse("voice-note", args=[self.pk])


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


# The department's steps that carry a message, as the issue page names them.
STEP_CHOICES = [
    ("accept", _("签收")),
    ("answer", _("答复")),
    ("dispatch", _("派单整改")),
    ("rectify", _("报告整改完成")),
    ("transfer", _("转派")),
    ("reject", _("不予受理")),
    ("escalate", _("督办")),
    ("comment", _("留言")),
]


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
    # The step a template is written for: 「感谢反映」 suits a reply, not a rectification report.
    # Empty: offered with every step that takes a message.
    step = models.CharField(
        _("用于"),
        max_length=20,
        choices=STEP_CHOICES,
        blank=True,
        help_text=_("留空表示所有办理步骤都可用"),
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

    # Who may see a request: whoever may see its issue (``visible_to``), as for events and photos.
    objects = IssueRelatedQuerySet.as_manager()

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
