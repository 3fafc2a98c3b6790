"""After the works: the warranty (保修) of each scope item, long-term management (长效管理), and
the return visits (回头看) supervisors pay.

The rules live here and nowhere else: how long an item is under warranty, whom an issue on a
finished project goes to (``after_works_route``, which ``services.route_issue`` asks first), which
回头看 are due. The changes of a project's warranty and manager are service functions below; each
refuses with a message a person can read (``WarrantyError``) and changes nothing then.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction
from django.db.models import (
    DateField,
    Exists,
    ExpressionWrapper,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from . import notifications
from .models import (
    PROJECT_COUNTY,
    Department,
    Issue,
    Patrol,
    Project,
    ReturnVisit,
    ScopeItem,
    in_programme,
    programme,
    project_county,
)

Area = ScopeItem.Area
Category = Issue.Category

# 建设工程质量管理条例 第四十条: the minimum warranty periods, by content area (months). Building
# works are mostly roof and wall waterproofing (5 years); pipes, electrics and heating/cooling
# (2 seasons) 2 years; decoration and the rest 2 years. Each item may set its own.
DEFAULT_MONTHS = {
    Area.BUILDING: 60,
    Area.ROADS: 24,
    Area.PIPES: 24,
    Area.LANDSCAPE: 24,
    Area.CARE: 24,
    Area.GOVERNANCE: 24,
}

# What the long-term manager looks after once the works are handed over (清洁、停车、绿化养护、
# 设施): there is no "cleaning" category, so 文明施工 (cleanliness of the site) and 其他 stand for
# it, and the areas of parking, greening and facilities bring any issue but a safety one.
MANAGED_CATEGORIES = {Category.CIVILISED, Category.OTHER}
MANAGED_AREAS = {Area.ROADS, Area.LANDSCAPE, Area.CARE, Area.GOVERNANCE}

REMIND_BEFORE = timedelta(days=30)  # 保修期满前 30 天提醒回头看
VISIT_AFTER_MONTHS = {ReturnVisit.Reason.SIX_MONTHS: 6, ReturnVisit.Reason.TWELVE_MONTHS: 12}
VISIT_WINDOW = timedelta(days=30)  # a patrol this long before the due date counts
VISIT_GRACE = timedelta(days=14)  # after the due date, then it is missed
# Visits due longer ago than this are not booked: the first sweep does not fill the bureau's list
# with the visits of projects accepted before 回头看 existed.
BOOK_BACK = timedelta(days=60)


class Manager:
    PROPERTY_MANAGER = "property_manager"
    OWNERS_COMMITTEE = "owners_committee"
    SELF_MANAGEMENT = "self_management"
    ALL = (PROPERTY_MANAGER, OWNERS_COMMITTEE, SELF_MANAGEMENT)


class WarrantyError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def warranty_months(item: ScopeItem) -> int:
    return item.warranty_months if item.warranty_months is not None else DEFAULT_MONTHS[item.area]


def warranty_ends(item: ScopeItem, project: Project) -> date | None:
    """The last day of the item's warranty, counted from the project's acceptance."""
    if not project.acceptance_actual:
        return None
    return add_months(project.acceptance_actual, warranty_months(item)) - timedelta(days=1)


def warranty_contractor(item: ScopeItem, project: Project) -> Department | None:
    return item.warranty_contractor or project.contractor


def items_in_warranty(project: Project, today: date) -> list[ScopeItem]:
    return [
        item
        for item in project.scope_items.all()
        if (end := warranty_ends(item, project)) is not None
        and project.acceptance_actual <= today <= end
    ]


def is_handed_over(project: Project, today: date) -> bool:
    return bool(project.manager_kind and project.handed_over_on and project.handed_over_on <= today)


@dataclass(frozen=True)
class Route:
    department: Department | None
    is_warranty: bool


def after_works_route(
    project: Project, category: str, area: str = "", today: date | None = None
) -> Route | None:
    """Whom an issue on an accepted project goes to, or None for the ordinary routing.

    A defect in an item still under warranty goes to its warranty contractor (保修); without an
    area, any item in warranty stands for the project (its contractor). Once handed over, what the
    manager looks after (``MANAGED_CATEGORIES``/``MANAGED_AREAS``) and is not a warranty defect
    goes to the manager: its property manager, or for an owners' committee or self-management the
    subdistrict office (ordinary routing; the issue page shows the contact).
    """
    today = today or timezone.localdate()
    if not project.acceptance_actual or project.acceptance_actual > today:
        return None  # not accepted yet (or, in the demo's replay, not yet at that moment)
    in_warranty = items_in_warranty(project, today)
    managed = (
        is_handed_over(project, today)
        and category != Category.SAFETY
        and (category in MANAGED_CATEGORIES or area in MANAGED_AREAS)
    )
    concerned = [item for item in in_warranty if item.area == area] if area else []
    if (
        not concerned
        and not area
        and in_warranty
        and not (managed and category in MANAGED_CATEGORIES)
    ):
        concerned = in_warranty
    if concerned:
        if area or not project.contractor:
            item = max(concerned, key=lambda i: warranty_ends(i, project))
            contractor = warranty_contractor(item, project)
        else:
            contractor = project.contractor
        if contractor is not None and contractor.is_active:
            return Route(contractor, True)
    if (
        managed
        and project.manager_kind == Manager.PROPERTY_MANAGER
        and project.manager_id
        and project.manager.is_active
    ):
        return Route(project.manager, False)
    return None


# --- changes of the project's warranty and manager (service functions) -------------------------


def set_warranty(
    item: ScopeItem, *, actor, months: int | None, contractor: Department | None
) -> ScopeItem:
    """The bureau of the item's county sets its warranty period and warranty contractor (a
    contractor of that county)."""
    if not (actor.is_active and actor.is_bureau):
        raise WarrantyError(_("只有市住建局可以修改保修期和保修单位。"))
    county = project_county(item.project_id)
    if not in_programme(actor, county):
        raise WarrantyError(_("这个项目不在本地的改造计划内。"))
    if months is not None and not 1 <= months <= 600:
        raise WarrantyError(_("保修期应在 1 到 600 个月之间。"))
    if contractor is not None and contractor.kind != Department.Kind.CONTRACTOR:
        raise WarrantyError(_("保修单位必须是施工单位。"))
    if contractor is not None and contractor.region_id != county:
        raise WarrantyError(_("保修单位应是项目所在县（市、区）的施工单位。"))
    with transaction.atomic():
        fresh = ScopeItem.objects.select_for_update().get(pk=item.pk)
        fresh.warranty_months = months
        fresh.warranty_contractor = contractor
        fresh.save(update_fields=["warranty_months", "warranty_contractor", "updated_at"])
    return fresh


def handover_problem(
    *,
    kind: str,
    manager: Department | None,
    contact: str,
    phone: str,
    on: date | None,
    accepted_on: date | None,
) -> tuple[str, str] | None:
    """What is wrong with a handover (the field, and why), or None: the one rule the service and
    the panel's project form both check."""
    if kind not in Manager.ALL:
        return "manager_kind", _("请选择长效管理方式：物业管理、业主委员会或居民自治。")
    if kind == Manager.PROPERTY_MANAGER:
        if manager is None or manager.kind != Department.Kind.PROPERTY_MANAGER:
            return "manager", _("物业管理须选择一家物业服务企业。")
    elif not contact.strip() or not phone.strip():
        return "manager_contact", _("业主委员会或居民自治须填写联系人和联系电话。")
    if not accepted_on:
        return "handed_over_on", _("项目尚未竣工验收，不能移交长效管理。")
    if on is None:
        return "handed_over_on", _("请填写移交日期。")
    if on < accepted_on:
        return "handed_over_on", _("移交日期不能早于竣工验收日期。")
    return None


def hand_over_project(
    project: Project,
    *,
    actor,
    kind: str,
    manager: Department | None = None,
    contact: str = "",
    phone: str = "",
    on: date | None = None,
) -> Project:
    """The project is handed over to its long-term manager (长效管理移交); simple_history keeps
    the record of who changed it, when."""
    if not (actor.is_active and actor.is_bureau):
        raise WarrantyError(_("只有市住建局可以登记长效管理移交。"))
    if not in_programme(actor, project_county(project)):
        raise WarrantyError(_("这个项目不在本地的改造计划内。"))
    on = on or timezone.localdate()
    if kind != Manager.PROPERTY_MANAGER:
        manager = None
    with transaction.atomic():
        fresh = Project.objects.select_for_update().get(pk=project.pk)
        problem = handover_problem(
            kind=kind,
            manager=manager,
            contact=contact,
            phone=phone,
            on=on,
            accepted_on=fresh.acceptance_actual,
        )
        if problem:
            raise WarrantyError(problem[1])
        fresh.manager_kind = kind
        fresh.manager = manager
        fresh.manager_contact = contact.strip()[:50]
        fresh.manager_phone = phone.strip()[:30]
        fresh.handed_over_on = on
        fresh._change_reason = _("长效管理移交")
        fresh.save(
            update_fields=[
                "manager_kind",
                "manager",
                "manager_contact",
                "manager_phone",
                "handed_over_on",
                "updated_at",
            ]
        )
    return fresh


# --- 回头看 ----------------------------------------------------------------------------------------


def schedule_return_visits(today: date | None = None) -> list[ReturnVisit]:
    """Book the 6- and 12-month visits of accepted projects, and a visit before each warranty
    runs out, from 30 days before its end (that booking is the supervisors' reminder on 我的).
    Idempotent: the sweep calls it every time."""
    today = today or timezone.localdate()
    wanted = []
    projects = Project.objects.filter(acceptance_actual__isnull=False).prefetch_related(
        "scope_items"
    )
    for project in projects:
        for reason, months in VISIT_AFTER_MONTHS.items():
            due_on = add_months(project.acceptance_actual, months)
            if due_on >= today - BOOK_BACK:
                wanted.append(ReturnVisit(project=project, reason=reason, due_on=due_on))
        for item in project.scope_items.all():
            end = warranty_ends(item, project)
            if end and end - REMIND_BEFORE <= today <= end:
                wanted.append(
                    ReturnVisit(
                        project=project,
                        reason=ReturnVisit.Reason.WARRANTY_ENDING,
                        scope_item=item,
                        due_on=end,
                    )
                )
    if not wanted:
        return []
    # One visit per project and day: items whose warranty ends together share one 回头看.
    before = set(ReturnVisit.objects.values_list("project_id", "reason", "due_on"))
    fresh = {}
    for visit in wanted:
        key = (visit.project_id, visit.reason, visit.due_on)
        if key not in before:
            fresh.setdefault(key, visit)
    ReturnVisit.objects.bulk_create(fresh.values(), ignore_conflicts=True)
    remind_due_visits(today)
    return list(fresh.values())


def remind_due_visits(today: date | None = None) -> int:
    """Tell each serving supervisor of the project, once, that a 回头看 is due: when its window
    opens (30 days before the due date) and it has not yet been done. The bell and 我的 show it."""
    today = today or timezone.localdate()
    visits = with_done(
        ReturnVisit.objects.filter(
            due_on__lte=today + VISIT_WINDOW, due_on__gte=today - VISIT_GRACE
        )
    ).filter(done=False)
    sent = 0
    for visit in visits.select_related("project", "scope_item"):
        supervisors = [
            s.user for s in visit.project.supervisors.select_related("user") if s.is_serving(today)
        ]
        if visit.reason == ReturnVisit.Reason.WARRANTY_ENDING and visit.scope_item:
            why = _("「%(item)s」的保修期 %(d)s 到期") % {
                "item": visit.scope_item.description,
                "d": visit.due_on,
            }
        else:
            why = visit.get_reason_display()
        sent += notifications.notify_about_project(
            supervisors,
            project=visit.project,
            text=_(
                "「%(project)s」该回头看了（%(why)s）：请在 %(d)s 前后去现场巡查一次，记下问题。"
            )
            % {"project": visit.project.name, "why": why, "d": visit.due_on},
            url=f"{reverse('patrol-new')}?project={visit.project_id}",
            topic=f"visit:{visit.pk}",
        )
    return sent


def with_done(visits: QuerySet[ReturnVisit]) -> QuerySet[ReturnVisit]:
    """Annotate ``done``: a patrol of the project logged from 30 days before the due date on."""
    patrols = Patrol.objects.filter(project=OuterRef("project"))
    return visits.annotate(
        done=Exists(
            patrols.filter(
                created_at__date__gte=ExpressionWrapper(
                    OuterRef("due_on") - VISIT_WINDOW, output_field=DateField()
                )
            )
        )
    )


def due_visits_for(user, today: date | None = None) -> list[ReturnVisit]:
    """The 回头看 a supervisor should pay now: on their projects, window open, not done."""
    today = today or timezone.localdate()
    visits = ReturnVisit.objects.filter(
        project__supervisors__user=user,
        due_on__lte=today + VISIT_WINDOW,
        due_on__gte=today - VISIT_GRACE,
    )
    return list(with_done(visits).filter(done=False).select_related("project", "scope_item"))


def with_due_visits(
    projects: QuerySet[Project], today: date | None = None
) -> tuple[list[Project], list[ReturnVisit]]:
    """``projects``, each once, and the 回头看 due on them now and not yet done (as
    ``due_visits_for``), fetched in the projects' own query: 我的 stays within its budget."""
    today = today or timezone.localdate()
    window = Q(
        return_visits__due_on__lte=today + VISIT_WINDOW,
        return_visits__due_on__gte=today - VISIT_GRACE,
    )
    rows = projects.annotate(
        due=FilteredRelation("return_visits", condition=window),
        visit_id=F("due__id"),
        visit_reason=F("due__reason"),
        visit_due_on=F("due__due_on"),
        visit_item_id=F("due__scope_item_id"),
        last_patrol=Subquery(
            Patrol.objects.filter(project=OuterRef("pk"))
            .order_by("-created_at")
            .values("created_at")[:1]
        ),
    )
    unique: dict[int, Project] = {}
    visits = []
    for row in rows:
        project = unique.setdefault(row.pk, row)
        if row.visit_id is None:
            continue
        done = row.last_patrol is not None and (
            timezone.localdate(row.last_patrol) >= row.visit_due_on - VISIT_WINDOW
        )
        if not done:
            items = {item.pk: item for item in project.scope_items.all()}
            visits.append(
                ReturnVisit(
                    pk=row.visit_id,
                    project=project,
                    reason=row.visit_reason,
                    due_on=row.visit_due_on,
                    scope_item=items.get(row.visit_item_id),
                )
            )
    return list(unique.values()), sorted(visits, key=lambda v: (v.due_on, v.pk))


def missed_visits(today: date | None = None, user=None) -> QuerySet[ReturnVisit]:
    """Visits past their due date and grace with no patrol: the bureau's list (with ``user``,
    only those of their programme: a county's bureau sees its county's)."""
    today = today or timezone.localdate()
    visits = ReturnVisit.objects.filter(due_on__lt=today - VISIT_GRACE)
    county = programme(user, f"project__{PROJECT_COUNTY}") if user is not None else None
    if county is not None:
        visits = visits.filter(county)
    return (
        with_done(visits)
        .filter(done=False)
        .select_related("project", "project__neighbourhood__subdistrict", "scope_item")
        .order_by("due_on", "pk")
    )
