"""Where the works are and who watches them: administrative regions, subdistricts,
departments, neighbourhoods, projects and their scope, supervisors, and the calendar of working
days."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        abstract = True


class RegionQuerySet(models.QuerySet):
    def ruian(self) -> Region:
        """瑞安市 under 温州市 under 浙江省, made if missing: the one county-level region the
        product served before regions existed (migration 0025 placed everything under it), and
        where the demo, the scale data and the tests put their subdistricts and departments."""
        county = self.filter(code=RUIAN[-1][0]).first()
        if county is not None:
            return county
        parent = None
        for code, name, level in RUIAN:
            parent, _created = self.get_or_create(
                code=code, defaults={"name": name, "level": level, "parent": parent}
            )
        return parent


class Region(TimestampedModel):
    """行政区划: a province, a city (地级市) or a county-level division (区、县、县级市), with its
    GB/T 2260 code. Subdistricts and departments hang under a county-level one."""

    class Level(models.TextChoices):
        PROVINCE = "province", _("省")
        CITY = "city", _("市")
        COUNTY = "county", _("县级")

    # The level each one sits under.
    PARENT_LEVEL = {Level.CITY: Level.PROVINCE, Level.COUNTY: Level.CITY}

    name = models.CharField(_("名称"), max_length=50)
    level = models.CharField(_("级别"), max_length=10, choices=Level.choices)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("上级"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    code = models.CharField(
        _("区划代码"),
        max_length=6,
        unique=True,
        validators=[RegexValidator(r"^[0-9]{6}\Z", _("区划代码是 6 位数字。"))],
        help_text=_("GB/T 2260 的 6 位代码，例如 瑞安市 330381。"),
    )

    objects = RegionQuerySet.as_manager()

    class Meta:
        verbose_name = _("行政区划")
        verbose_name_plural = _("行政区划")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "name"], name="supervision_region_unique_name_in_parent"
            ),
            # A province has no parent, and NULLs are never equal in a unique index.
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(parent__isnull=True),
                name="supervision_region_unique_province_name",
            ),
            models.CheckConstraint(
                condition=Q(level="province", parent__isnull=True)
                | (~Q(level="province") & Q(parent__isnull=False)),
                name="supervision_region_only_provinces_at_the_top",
            ),
            models.CheckConstraint(
                condition=Q(level__in=["province", "city", "county"]),
                name="supervision_region_level_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """A city under a province, a county-level division under a city, and the code under
        its parent's (330381 under 330300 under 330000)."""
        errors = {}
        wanted = self.PARENT_LEVEL.get(self.level)
        if wanted is None and self.parent_id is not None:
            errors["parent"] = _("省没有上级。")
        elif wanted is not None and (self.parent is None or self.parent.level != wanted):
            errors["parent"] = _("上级应是%(level)s。") % {"level": wanted.label}
        elif wanted is not None and self.code:
            prefix = self.parent.code[:2] if wanted == self.Level.PROVINCE else self.parent.code[:4]
            if not self.code.startswith(prefix):
                errors["code"] = _("区划代码应以上级的 %(prefix)s 开头。") % {"prefix": prefix}
        if errors:
            raise ValidationError(errors)

    def ancestors(self) -> list[Region]:
        """The regions above, from the province down: [] for 浙江省, [浙江省, 温州市] for
        瑞安市. At most two queries; none when loaded with ``select_related("parent__parent")``."""
        chain = []
        region = self.parent
        while region is not None:
            chain.append(region)
            region = region.parent
        return chain[::-1]

    def full_name(self) -> str:
        """浙江省温州市瑞安市 (queries like ``ancestors``)."""
        return "".join(r.name for r in [*self.ancestors(), self])


# (code, name, level) from the province down: the seed of ``Region.objects.ruian()``.
RUIAN = [
    ("330000", "浙江省", Region.Level.PROVINCE),
    ("330300", "温州市", Region.Level.CITY),
    ("330381", "瑞安市", Region.Level.COUNTY),
]
COUNTY_LEVEL = {"level": Region.Level.COUNTY}


class Subdistrict(TimestampedModel):
    """街道: 安阳、玉海、锦湖、上望 … in a county-level region (a province has many 城关街道)."""

    region = models.ForeignKey(
        Region,
        verbose_name=_("县（市、区）"),
        on_delete=models.PROTECT,
        related_name="subdistricts",
        limit_choices_to=COUNTY_LEVEL,
    )
    name = models.CharField(_("名称"), max_length=50)
    # A slug for people and fixtures (the demo finds its subdistricts by it); every link and
    # filter uses the pk, so nothing needs it unique beyond its region.
    code = models.SlugField(_("代码"), max_length=30)
    stats_code = models.CharField(
        _("统计用区划代码"),
        max_length=12,
        blank=True,
        validators=[RegexValidator(r"^[0-9]{12}\Z", _("统计用区划代码是 12 位数字。"))],
        help_text=_("国家统计局的 12 位统计用区划代码，可不填。"),
    )

    class Meta:
        verbose_name = _("街道")
        verbose_name_plural = _("街道")
        ordering = ["region__code", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["region", "name"], name="supervision_subdistrict_unique_name_in_region"
            ),
            models.UniqueConstraint(
                fields=["region", "code"], name="supervision_subdistrict_unique_code_in_region"
            ),
            models.UniqueConstraint(
                fields=["stats_code"],
                condition=~Q(stats_code=""),
                name="supervision_subdistrict_unique_stats_code",
            ),
        ]

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

    region = models.ForeignKey(
        Region,
        verbose_name=_("县（市、区）"),
        on_delete=models.PROTECT,
        related_name="departments",
        limit_choices_to=COUNTY_LEVEL,
        help_text=_("部门服务的县级行政区；名称在同一县（市、区）内不重复。"),
    )
    name = models.CharField(_("名称"), max_length=100)
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
            models.UniqueConstraint(
                fields=["region", "name"], name="supervision_department_unique_name_in_region"
            ),
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

    def clean(self) -> None:
        if (
            self.subdistrict_id is not None
            and self.region_id is not None
            and self.subdistrict.region_id != self.region_id
        ):
            raise ValidationError({"subdistrict": _("街道应在部门所在的县（市、区）内。")})

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
    # 长效管理: who runs the neighbourhood after handover (the consultation's 如何管), recorded
    # by warranty.hand_over_project. Owners' committee and self-management name a contact.
    manager_kind = models.CharField(
        _("长效管理方式"),
        max_length=20,
        blank=True,
        choices=[
            ("property_manager", _("物业管理")),
            ("owners_committee", _("业主委员会")),
            ("self_management", _("居民自治")),
        ],
    )
    manager = models.ForeignKey(
        Department,
        verbose_name=_("物业服务企业"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="managed_projects",
        limit_choices_to={"kind": Department.Kind.PROPERTY_MANAGER},
    )
    manager_contact = models.CharField(_("长效管理联系人"), max_length=50, blank=True)
    manager_phone = models.CharField(_("联系电话"), max_length=30, blank=True)
    handed_over_on = models.DateField(_("移交日期"), null=True, blank=True)

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
            (pgettext_lazy("milestone", "验收"), self.acceptance_planned, self.acceptance_actual),
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
    # 保修: months from the project's acceptance (empty: the default for its area, see
    # supervision/warranty.py) and who answers for it (empty: the project's contractor).
    warranty_months = models.PositiveSmallIntegerField(
        _("保修期（月）"), null=True, blank=True, validators=[MaxValueValidator(600)]
    )
    warranty_contractor = models.ForeignKey(
        Department,
        verbose_name=_("保修单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="warranty_items",
        limit_choices_to={"kind": Department.Kind.CONTRACTOR},
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


# Where a row's county-level region is, by what it hangs on: the paths ``programme`` takes.
PROJECT_COUNTY = "neighbourhood__subdistrict__region"
ISSUE_COUNTY = f"project__{PROJECT_COUNTY}"


def programme(user, path: str) -> Q | None:
    """The condition on rows whose county-level region sits at ``path`` (``"region"`` for a
    department, ``PROJECT_COUNTY`` for a project, ``ISSUE_COUNTY`` for an issue) that belong to
    ``user``'s programme: their county for a supervisor or a bureau coordinator, every county
    below a province or a city for the oversight. None when nothing is out of reach (a
    superuser). The one place this rule lives; a county's bureau sees nothing of another county.
    No query: ``user.region_id`` and the role say it all."""
    if user.is_superuser:
        return None
    region = user.region_id if user.is_active else None
    if region is None:
        return Q(pk__in=[])
    if _covers_every_county(user):
        return None  # one programme on the site (one city's install): nothing to filter
    if user.role == user.Role.OVERSIGHT:
        return Q(**{f"{path}__parent": region}) | Q(**{f"{path}__parent__parent": region})
    return Q(**{path: region})


def _covers_every_county(user) -> bool:
    """Whether ``user``'s programme holds every county that has subdistricts (no query: the
    list is cached under the catalogue version)."""
    from ..fragments import counties  # noqa: PLC0415  (fragments imports the models)

    return all(user.region_id in county for county in counties())


def in_programme(user, county_id: int | None) -> bool:
    """``programme`` for one county-level region id already in hand: no query for a county's
    people, one for the oversight (is it below their province or city?)."""
    if user.is_superuser:
        return True
    if not user.is_active or user.region_id is None or county_id is None:
        return False
    if user.role == user.Role.OVERSIGHT:
        from ..fragments import counties  # noqa: PLC0415

        known = {county[0]: county for county in counties()}
        if county_id in known:
            return user.region_id in known[county_id][1:]
        return Region.objects.filter(
            Q(parent=user.region_id) | Q(parent__parent=user.region_id), pk=county_id
        ).exists()
    return county_id == user.region_id


def project_county(project: Project | int | None) -> int | None:
    """The county-level region of a project (through its neighbourhood's subdistrict): no query
    when those are loaded with ``select_related``, one otherwise, remembered on the instance."""
    if project is None:
        return None
    if isinstance(project, int):
        return (
            Project.objects.filter(pk=project)
            .values_list(f"{PROJECT_COUNTY}_id", flat=True)
            .first()
        )
    known = getattr(project, "_county_id", None)
    if known is not None:
        return known
    hood = project._state.fields_cache.get("neighbourhood")
    if hood is not None and "subdistrict" in hood._state.fields_cache:
        county = hood.subdistrict.region_id
    else:
        county = project_county(project.pk)
    project._county_id = county
    return county


def department_projects(department_id: int | None, prefix: str = "") -> Q:
    """The condition on projects (through ``prefix``, e.g. ``"project__"``) a department works
    on: as one of the project's departments, or as its contractor. Use with ``.distinct()``: a
    project may list the department twice. The one place this rule lives."""
    return Q(**{f"{prefix}departments": department_id}) | Q(
        **{f"{prefix}contractor": department_id}
    )


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


class PublicVersion(models.Model):
    """One row: a number (nanoseconds since the epoch) that changes whenever anything the public
    pages show may have changed. Their cached HTML (``supervision/public_cache.py``) holds it in
    its keys and ETags; every app process reads it from here."""

    version = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("公开页面版本")
        verbose_name_plural = _("公开页面版本")

    def __str__(self) -> str:
        return str(self.version)


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
