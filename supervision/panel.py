"""/panel/: the department panel, a Django AdminSite of its own for department staff and the bureau.

Staff see only the issues routed to their department (contractor staff: dispatched to their
company) and the projects they are responsible for; the bureau sees everything of its county's
programme (``models.programme``; a superuser everything) and keeps the routing rules, the
calendar changes and the extension requests. Anything outside a user's scope is a 404 — list,
change page, actions, exports — and no form, list filter or search offers another county's
subdistricts, departments, neighbourhoods or projects (``county_condition``). The steps
themselves are taken on the issue page (``/issues/<id>/<action>/``), which the panel links to.
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User

from . import (
    acceptance,
    export_views,
    exports,
    residents,
    search,
    services,
    surveys,
    warranty,
)
from .access import consultation_projects, consultations_managed_by, letter_escalations_for
from .consultation_forms import (
    DEFAULT_APPROVAL,
    DEFAULT_PARTICIPATION,
    ConsultationChangeForm,
    ConsultationStartForm,
    open_consultation,
    rule_sentence,
)
from .issue_views import issue_page_context
from .models import (
    ISSUE_COUNTY,
    PROJECT_COUNTY,
    CalendarChange,
    Consultation,
    ConsultationItem,
    Delivery,
    Department,
    ExtensionRequest,
    Household,
    Issue,
    Letter,
    Neighbourhood,
    Project,
    Region,
    ResponseTemplate,
    RoutingRule,
    ScopeItem,
    Subdistrict,
    Supervisor,
    department_projects,
    programme,
)
from .templatetags.supervision_tags import deadline_text
from .xlsx import issues_workbook


def login_target(request: HttpRequest, site: str) -> str:
    """The page of the admin site named ``site`` (``admin``, ``panel``) that the login page
    should return to: ``?next=`` when it is one of the site's own, its index otherwise."""
    index = reverse(f"{site}:index")
    target = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return index
    return target if target.startswith(index) else index


class PanelSite(admin.AdminSite):
    site_header = gettext_lazy("群众监督 · 部门工作台")
    site_title = gettext_lazy("部门工作台")
    index_title = gettext_lazy("待办与管理")
    site_url = "/issues/"
    enable_nav_sidebar = False
    empty_value_display = gettext_lazy("未指定")

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return user.is_active and (user.is_department_staff or user.is_bureau)

    def login(self, request: HttpRequest, extra_context=None):
        """One login page for everyone (/accounts/login/); back to the panel page asked for."""
        target = login_target(request, "panel")
        if request.user.is_authenticated:
            if self.has_permission(request):
                return redirect(target)
            return self._elsewhere(request)
        return redirect_to_login(target)

    def _elsewhere(self, request: HttpRequest) -> HttpResponse:
        """A supervisor (or anybody else without a desk) has no panel: to 我的, saying why."""
        messages.info(request, _("部门工作台供部门工作人员使用，已为您打开“我的”。"))
        return redirect("me")


panel = PanelSite(name="panel")


class PlainChoices:
    """For the panel's forms: a select opens on 「请选择」, not the admin's 「---------」."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if isinstance(field, forms.ModelChoiceField) and field.empty_label is not None:
            field.empty_label = _("请选择")
        elif isinstance(field, forms.ChoiceField) and not isinstance(field, forms.ModelChoiceField):
            field.choices = [
                ("", _("请选择")) if value == "" else (value, label)
                for value, label in field.choices
            ]
        return field


def _is_bureau(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.is_bureau


# --- a county's programme ----------------------------------------------------------------------

# Where each model's county-level region is, from the model itself (``models.programme``'s
# paths). A model not named here is global by nature (the calendar of working days).
COUNTY_PATHS: dict[type[models.Model], str] = {
    Region: "pk",
    Subdistrict: "region",
    Department: "region",
    Neighbourhood: "subdistrict__region",
    Project: PROJECT_COUNTY,
    Issue: ISSUE_COUNTY,
    ExtensionRequest: f"issue__{ISSUE_COUNTY}",
    Letter: f"project__{PROJECT_COUNTY}",
    Consultation: f"project__{PROJECT_COUNTY}",
    # A supervisor belongs to the county of their account (as ``residents.dismiss_supervisor``
    # checks), which is their neighbourhood's.
    Supervisor: "user__region",
    RoutingRule: "department__region",
    # Shared templates (no department) are added below: offered to every department.
    ResponseTemplate: "department__region",
}


def _at_county(request: HttpRequest, path: str) -> Q | None:
    """Rows whose county-level region is at ``path`` and is the user's: the bureau's programme
    (``models.programme``; None when it holds every county there is), a department's own county
    for its staff (a subquery, no query)."""
    user = request.user
    if user.is_bureau:
        return programme(user, path)
    county = Department.objects.filter(pk=user.department_id).values("region")[:1]
    return Q(**{path: Subquery(county)})


def county_condition(request: HttpRequest, model: type[models.Model]) -> Q | None:
    """The condition on ``model``'s rows within the user's county; None when nothing is out of
    reach (a superuser, or a model global by nature)."""
    user = request.user
    if user.is_superuser:
        return None
    if model is Delivery:
        # An issue's deliveries follow the issue; the others (an export is ready, a letter
        # waits) follow whom they were sent to: an account of the county.
        of_issue = _at_county(request, f"event__issue__{ISSUE_COUNTY}")
        if of_issue is None:
            return None
        people = User.objects.filter(_at_county(request, "region")) | User.objects.filter(
            _at_county(request, "department__region")
        )
        return of_issue | Q(event__isnull=True, target__in=people.exclude(email="").values("email"))
    path = COUNTY_PATHS.get(model)
    if path is None:
        return None
    condition = _at_county(request, path)
    if condition is not None and model is ResponseTemplate:
        condition |= Q(department__isnull=True)
    return condition


def in_county(request: HttpRequest, queryset: QuerySet) -> QuerySet:
    """``queryset`` within the bureau's programme: what a county's bureau lists, changes, acts
    on and exports. (Department staff are held to their department by each panel's own rule.)"""
    if not _is_bureau(request):
        return queryset
    condition = county_condition(request, queryset.model)
    return queryset if condition is None else queryset.filter(condition)


def narrow_choices(request: HttpRequest, field: forms.Field | None) -> forms.Field | None:
    """A choice of subdistricts, departments, neighbourhoods, projects … offers the user's
    county only; another county's id posted anyway is 「not one of the choices」."""
    queryset = getattr(field, "queryset", None)
    if queryset is None:
        return field
    condition = county_condition(request, queryset.model)
    if condition is not None:
        field.queryset = queryset.filter(condition)
    return field


class CountyChoices:
    """For the panel's model admins and inlines: every foreign key and many-to-many choice
    within the user's county."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return narrow_choices(request, field)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        return narrow_choices(request, field)


class CountyRelatedFilter(admin.RelatedFieldListFilter):
    """A list filter on a relation that lists the user's county's subdistricts, departments …
    only (Django's lists every row of the related table)."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        condition = county_condition(request, field.related_model)
        if condition is None:
            return field.get_choices(include_blank=False, ordering=ordering)
        limit = field.get_limit_choices_to() if hasattr(field, "get_limit_choices_to") else None
        if limit:
            condition &= limit if isinstance(limit, Q) else Q(**limit)
        return field.get_choices(include_blank=False, ordering=ordering, limit_choices_to=condition)


class PanelAdmin(CountyChoices, admin.ModelAdmin):
    """Permissions by role, not by Django's per-model permissions; missing objects are 404.
    A county's bureau reaches its programme only (``in_county``): another county's object is
    missing, hence 404."""

    bureau_edits = False
    staff_sees = True

    class Media:
        css = {"all": ["css/panel.css"]}

    def get_queryset(self, request):
        return in_county(request, super().get_queryset(request))

    def get_list_filter(self, request):
        """Filters on a relation named by their path list the user's county's rows only."""
        filters = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and get_fields_from_path(self.model, item)[-1].is_relation:
                item = (item, CountyRelatedFilter)
            filters.append(item)
        return filters

    def has_module_permission(self, request):
        return panel.has_permission(request) and (self.staff_sees or _is_bureau(request))

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return self.bureau_edits and _is_bureau(request)

    def has_change_permission(self, request, obj=None):
        return self.bureau_edits and _is_bureau(request)

    def has_delete_permission(self, request, obj=None):
        return self.bureau_edits and _is_bureau(request)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404
        return obj


# --- issues ------------------------------------------------------------------------------------


class OverdueFilter(admin.SimpleListFilter):
    title = gettext_lazy("是否超期")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("已超期")), ("no", _("未超期"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.overdue()
        if self.value() == "no":
            return queryset.exclude(pk__in=Issue.objects.overdue().values("pk"))
        return queryset


class QueueFilter(admin.SimpleListFilter):
    """The panel opens on the work: what waits on a department (待办理: to sign for, to rectify),
    in the work order. 「未办结」 adds what waits on the reporter's check; 「全部」 the finished
    ones too (at province scale 70 % of 200,000 issues), newest first."""

    title = gettext_lazy("办理情况")
    parameter_name = "queue"
    # Choosing a status or the escalation list says what to show; the default then stands back.
    explicit = ("status__exact", "escalated", "q")

    def __init__(self, request, params, model, model_admin):
        # A search or a chosen status shows everything it finds: the sidebar says 「全部」.
        self.searching = any(request.GET.get(name) for name in self.explicit)
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [("open", _("未办结（含待评价）")), ("all", _("全部（含已办结）"))]

    def choices(self, changelist):
        shown = self.value() or ("all" if self.searching else None)
        yield {
            "selected": shown is None,
            "query_string": changelist.get_query_string(
                remove=[self.parameter_name, *self.explicit]
            ),
            "display": _("待办理"),
        }
        for value, label in self.lookup_choices:
            yield {
                "selected": shown == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    @classmethod
    def is_work_queue(cls, request: HttpRequest) -> bool:
        """The default view: only issues running against a department's clock."""
        return request.GET.get(cls.parameter_name) is None and not any(
            request.GET.get(name) for name in cls.explicit
        )

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.exclude(status__in=Issue.FINAL_STATUSES)
        if self.value() == "all" or self.searching:
            return queryset
        # A deadline is running exactly while it waits on a department (``Issue.due_at``);
        # written as the queue index's condition, so that the index serves it.
        return queryset.filter(due_at__isnull=False)


class ProjectFilter(admin.RelatedFieldListFilter):
    """The projects a person works with: a department's, or all of its county's for the bureau
    while they fit in a sidebar. (RelatedOnlyFieldListFilter read every visible issue to find
    them: 0.3 s a view at province scale.)"""

    LIMIT = 100

    def field_choices(self, field, request, model_admin):
        user = request.user
        projects = Project.objects.order_by("name").only("pk", "name")
        if not user.is_bureau:
            projects = projects.filter(department_projects(user.department_id)).distinct()
        projects = in_county(request, projects)
        projects = list(projects[: self.LIMIT + 1])
        if len(projects) > self.LIMIT:
            return []  # too many to list: the search box finds a project by name
        return [(project.pk, project.name) for project in projects]


class EscalatedFilter(admin.SimpleListFilter):
    """The bureau's escalation list (督办): issues escalated and still open."""

    title = gettext_lazy("督办")
    parameter_name = "escalated"

    def lookups(self, request, model_admin):
        return [("open", _("督办中（未办结）")), ("all", _("全部督办过的"))]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.open().filter(escalated_at__isnull=False)
        if self.value() == "all":
            return queryset.filter(escalated_at__isnull=False)
        return queryset


@admin.register(Issue, site=panel)
class IssuePanel(PanelAdmin):
    list_display = [
        "reference",
        "title_link",
        "project",
        "subdistrict",
        "category",
        "urgency_badge",
        "status_badge",
        "support_column",
        "waiting",
        "deadline",
    ]
    list_display_links = ["reference"]
    list_filter = [
        QueueFilter,
        "status",
        "category",
        "is_public",
        OverdueFilter,
        EscalatedFilter,
        "urgency",
        ("project", ProjectFilter),
        "project__neighbourhood__subdistrict",
        "department",
    ]
    search_fields = ["reference", "title", "description", "project__name"]
    list_select_related = ["project__neighbourhood__subdistrict", "department"]
    list_per_page = 50
    # "共 N 条" of the filtered list only: a second count of every visible issue is not worth it.
    show_full_result_count = False
    actions = ["accept_selected", "export_xlsx", "make_public", "make_private"]
    readonly_fields = [
        "reference",
        "status",
        "project",
        "category",
        "urgency",
        "title",
        "description",
        "building",
        "unit",
        "location",
        "households",
        "department",
        "contractor",
        "sign_for_due_at",
        "rectify_due_at",
        "accepted_at",
        "rectified_at",
        "closed_at",
        "escalated_at",
        "rating",
        "created_at",
    ]
    # What the clerk reads before acting, a few rows high, so that the step the work calls for
    # is on the first screen at 1366 × 768; the times fold away.
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("reference", "status", "urgency", "category"),
                    ("project", "department", "contractor"),
                    "title",
                    "description",
                    ("building", "unit", "location", "households"),
                ]
            },
        ),
        (
            gettext_lazy("期限与时间"),
            {
                "classes": ["collapse"],
                "fields": [
                    ("created_at", "sign_for_due_at", "accepted_at", "rectify_due_at"),
                    ("rectified_at", "closed_at", "escalated_at", "rating"),
                ],
            },
        ),
    ]
    view_on_site = True
    change_form_template = "panel/issue_change.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The steps are the issue page's forms, posting to /issues/<id>/<action>/ and coming
        # back here; the thread shows what happened so far.
        issue = self.get_object(request, object_id)
        context = issue_page_context(request, issue)
        context.update(extra_context or {})
        return super().change_view(request, object_id, form_url, context)

    def get_object(self, request, object_id, from_field=None):
        """Read once per request, with what the page shows beside it (the change view asks
        twice: for the steps' context, then for the form)."""
        cached = getattr(request, "_panel_issue", None)
        if cached is not None and str(cached.pk) == str(object_id):
            return cached
        issue = super().get_object(request, object_id, from_field)
        request._panel_issue = issue
        return issue

    # The work order, served by ``supervision_issue_queue_idx``: urgent first, then the nearest
    # deadline (the most overdue first), then the oldest. Other views list the newest first.
    WORK_ORDER = ["-urgency", "due_at", "created_at"]

    def get_queryset(self, request):
        return Issue.objects.visible_to(request.user).select_related(
            "project__neighbourhood__subdistrict", "project__contractor", "department", "contractor"
        )

    def get_search_results(self, request, queryset, search_term):
        """Words in the reference, title or description through the search index
        (supervision/search.py), or a project's name; newest first, like the other views."""
        if not search_term.strip():
            return queryset, False
        found = search.matching(queryset, search_term)
        named = in_county(request, Project.objects.filter(name__icontains=search_term.strip()))
        projects = list(named.values_list("pk", flat=True)[: ProjectFilter.LIMIT])
        if projects:
            found = found | queryset.filter(project_id__in=projects)
        return found, False

    def get_list_display(self, request):
        """An office's issues are all in its own subdistrict: no column to say so."""
        department = request.user.department
        if department is not None and department.kind == Department.Kind.SUBDISTRICT_OFFICE:
            return [name for name in self.list_display if name != "subdistrict"]
        return self.list_display

    def get_ordering(self, request):
        return self.WORK_ORDER if QueueFilter.is_work_queue(request) else ["-created_at"]

    @admin.display(description=gettext_lazy("标题"))
    def title_link(self, issue: Issue):
        return format_html('<a href="{}">{}</a>', issue.get_absolute_url(), issue.title)

    @admin.display(description=gettext_lazy("街道"), ordering="project__neighbourhood__subdistrict")
    def subdistrict(self, issue: Issue):
        return issue.project.neighbourhood.subdistrict

    @admin.display(description=gettext_lazy("状态"), ordering="status")
    def status_badge(self, issue: Issue):
        return format_html(
            '<span class="status status-{}">{}</span>', issue.status, issue.get_status_display()
        )

    # 附议: how many supervisors and residents said "me too"; sorting puts the most first. (Not
    # named ``supports``: that is the reverse relation, which the admin would sort by, joined.)
    @admin.display(description=gettext_lazy("附议"), ordering="-support_count")
    def support_column(self, issue: Issue):
        return issue.support_count or "—"

    @admin.display(description=gettext_lazy("紧急程度"), ordering="-urgency")
    def urgency_badge(self, issue: Issue):
        if issue.urgency == Issue.Urgency.URGENT:
            return format_html('<span class="badge-urgent">{}</span>', issue.get_urgency_display())
        return format_html('<span class="text-muted">{}</span>', issue.get_urgency_display())

    @admin.display(description=gettext_lazy("已等待"), ordering="created_at")
    def waiting(self, issue: Issue):
        """Since filing, until it was finished."""
        return _waited(issue.created_at, issue.closed_at or timezone.now())

    @admin.display(description=gettext_lazy("下一期限"), ordering="due_at")
    def deadline(self, issue: Issue):
        """One marker: when it is due, or how late in the limit's own unit, in red words."""
        if issue.next_deadline is None:
            return "—"
        if issue.is_overdue:
            return format_html(
                '<span class="status status-overdue">{}</span>', deadline_text(issue)
            )
        return deadline_text(issue)

    @admin.action(description=gettext_lazy("签收所选问题（默认整改期限）"))
    def accept_selected(self, request, queryset: QuerySet[Issue]):
        done, refused = [], []
        skipped = queryset.exclude(status=Issue.Status.SUBMITTED).count()
        for issue in queryset.filter(status=Issue.Status.SUBMITTED).order_by("pk"):
            try:
                services.accept_issue(issue, actor=request.user)
                done.append(issue.reference)
            except services.WorkflowError as error:
                refused.append(f"{issue.reference}：{error.message}")
        if done:
            self.message_user(
                request,
                _("已签收 %(n)d 个问题：%(refs)s") % {"n": len(done), "refs": "、".join(done)},
            )
        if skipped:
            self.message_user(
                request,
                _("%(n)d 个问题不是“已提交”状态，未签收。") % {"n": skipped},
                messages.WARNING,
            )
        for line in refused:
            self.message_user(request, line, messages.ERROR)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not _is_bureau(request):
            actions.pop("make_public", None)
            actions.pop("make_private", None)
        return actions

    @admin.action(description=gettext_lazy("公开所选问题（项目页可见，不含反映人信息）"))
    def make_public(self, request, queryset):
        self._publish(request, queryset, public=True)

    @admin.action(description=gettext_lazy("取消公开所选问题"))
    def make_private(self, request, queryset):
        self._publish(request, queryset, public=False)

    def _publish(self, request, queryset: QuerySet[Issue], *, public: bool) -> None:
        """One service step per issue, so that each decision is in its thread."""
        if not _is_bureau(request):
            raise Http404
        done = 0
        for issue in queryset.filter(is_public=not public).order_by("pk"):
            try:
                services.publish_issue(issue, actor=request.user, public=public)
                done += 1
            except services.WorkflowError:
                continue  # changed meanwhile by somebody else: nothing to do
        message = _("已公开 %(n)d 个问题。") if public else _("已取消公开 %(n)d 个问题。")
        self.message_user(request, message % {"n": done})

    @admin.action(description=gettext_lazy("导出所选问题（Excel）"))
    def export_xlsx(self, request, queryset: QuerySet[Issue]) -> HttpResponse:
        """The selected issues (or all the filtered ones) at once, up to EXPORT_INLINE_MAX_ROWS;
        more are written in the background and followed on the export's page."""
        rows = queryset.order_by("created_at", "pk")
        total = rows.count()
        filename = f"issues-{timezone.localtime().strftime('%Y%m%d-%H%M')}.xlsx"
        if exports.is_large(total):
            return export_views.start_issues_export(request, rows, total=total, filename=filename)
        response = HttpResponse(
            issues_workbook(rows),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


def _waited(start: datetime, end: datetime) -> str:
    minutes = int((end - start).total_seconds() // 60)
    if minutes < 60:
        return _("%(n)d 分钟") % {"n": max(minutes, 0)}
    if minutes < 60 * 24:
        return _("%(n)d 小时") % {"n": minutes // 60}
    return _("%(n)d 天") % {"n": minutes // (60 * 24)}


# --- projects ----------------------------------------------------------------------------------


class ScopeItemWarrantyInline(PlainChoices, CountyChoices, admin.TabularInline):
    """保修: each item's warranty period (empty: the regulation's default) and contractor."""

    model = ScopeItem
    extra = 0
    can_delete = False
    fields = ["area", "description", "warranty_months", "warranty_contractor"]
    readonly_fields = ["area", "description"]
    verbose_name_plural = gettext_lazy(
        "改造内容的保修期（空着即按规定默认：建筑 60 个月，其余 24 个月）"
    )

    def has_view_permission(self, request, obj=None):
        return panel.has_permission(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return _is_bureau(request)


class ProjectPanelForm(forms.ModelForm):
    """The bureau's project form: a handover to long-term management is checked by the same rule
    as ``warranty.hand_over_project``."""

    MANAGER_FIELDS = ("manager_kind", "manager", "manager_contact", "manager_phone")

    def clean(self):
        data = super().clean()
        if not any(data.get(name) for name in (*self.MANAGER_FIELDS, "handed_over_on")):
            return data  # no handover recorded
        problem = warranty.handover_problem(
            kind=data.get("manager_kind") or "",
            manager=data.get("manager"),
            contact=data.get("manager_contact") or "",
            phone=data.get("manager_phone") or "",
            on=data.get("handed_over_on"),
            accepted_on=data.get("acceptance_actual") or self.instance.acceptance_actual,
        )
        if problem:
            field, message = problem
            self.add_error(field if field in self.fields else None, message)
        return data


@admin.register(Project, site=panel)
class ProjectPanel(PlainChoices, PanelAdmin):
    form = ProjectPanelForm
    list_display = ["name", "year", "neighbourhood", "status", "contractor", "planned_end"]
    list_filter = ["year", "status", "neighbourhood__subdistrict"]
    search_fields = ["name", "neighbourhood__name"]
    list_select_related = ["neighbourhood", "contractor"]
    view_on_site = True
    bureau_edits = True
    filter_horizontal = ["departments"]
    exclude = ["created_at", "updated_at"]
    inlines = [ScopeItemWarrantyInline]
    change_form_template = "panel/project_change.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The life after the works is run from the site's pages (the acceptance record, the
        survey): the project's page in the panel leads to them, with what may be done now."""
        project = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if project is not None:
            user = request.user
            latest = project.acceptances.order_by("-created_at", "-pk").first()
            survey = project.surveys.order_by("-opens_on", "-pk").first()
            context["after_works"] = {
                "acceptance": latest,
                "may_schedule": (
                    acceptance.may_manage(user, project)
                    and project.status == Project.Status.COMPLETED
                    and not (latest and latest.is_open)
                ),
                "survey": survey,
                "may_open_survey": (
                    user.is_bureau
                    and surveys.is_accepted(project)
                    and not (survey and not survey.is_closed())
                ),
            }
        return super().change_view(request, object_id, form_url, context)

    def get_queryset(self, request):
        projects = super().get_queryset(request)  # the bureau's: its county's (in_county)
        user = request.user
        if user.is_bureau:
            return projects
        return projects.filter(department_projects(user.department_id)).distinct()

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- what the bureau keeps ---------------------------------------------------------------------


@admin.register(RoutingRule, site=panel)
class RoutingRulePanel(PlainChoices, PanelAdmin):
    count_word = gettext_lazy("条")
    list_display = ["subdistrict", "category", "department", "note"]
    list_filter = ["subdistrict", "category"]
    bureau_edits = True
    staff_sees = False
    fields = ["subdistrict", "category", "department", "note"]


@admin.register(CalendarChange, site=panel)
class CalendarChangePanel(PlainChoices, PanelAdmin):
    count_word = gettext_lazy("条")
    list_display = ["day", "is_working_day", "note"]
    bureau_edits = True
    staff_sees = False


@admin.register(ExtensionRequest, site=panel)
class ExtensionRequestPanel(PlainChoices, PanelAdmin):
    count_word = gettext_lazy("份")
    list_display = ["issue", "until", "reason", "requested_by", "status", "decided_by"]
    list_filter = ["status"]
    list_select_related = ["issue", "requested_by", "decided_by"]
    readonly_fields = [
        "issue",
        "until",
        "reason",
        "requested_by",
        "status",
        "decided_by",
        "decided_at",
        "decision_note",
    ]
    fields = readonly_fields
    actions = ["grant", "refuse"]

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not _is_bureau(request):
            actions.pop("grant", None)
            actions.pop("refuse", None)
        return actions

    def _decide(self, request, queryset, grant: bool):
        if not _is_bureau(request):
            raise Http404
        for extension in queryset.filter(status=ExtensionRequest.Status.PENDING):
            try:
                services.decide_extension(extension, actor=request.user, grant=grant)
            except services.WorkflowError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("%(ref)s：%(decision)s")
                    % {
                        "ref": extension.issue.reference,
                        "decision": _("已同意延期") if grant else _("未同意延期"),
                    },
                )

    @admin.action(description=gettext_lazy("同意所选延期申请"))
    def grant(self, request, queryset):
        self._decide(request, queryset, True)

    @admin.action(description=gettext_lazy("不同意所选延期申请"))
    def refuse(self, request, queryset):
        self._decide(request, queryset, False)


@admin.register(ResponseTemplate, site=panel)
class ResponseTemplatePanel(PlainChoices, PanelAdmin):
    """常用回复: staff keep their department's; the bureau keeps everyone's and the shared ones."""

    count_word = gettext_lazy("条")

    list_display = ["title", "step", "department", "position"]
    list_filter = ["step"]
    fields = ["title", "step", "text", "department", "position"]

    def get_queryset(self, request):
        templates = super().get_queryset(request)  # the bureau's: its county's and the shared
        if request.user.is_bureau:
            return templates
        return templates.filter(department=request.user.department_id)

    def _own(self, request, obj=None) -> bool:
        """Staff keep their department's; a county's bureau its county's (the list holds no
        other), the shared ones, offered in every county, are a superuser's to change (or the
        bureau's of the one county there is)."""
        if not panel.has_permission(request):
            return False
        user = request.user
        if obj is None or county_condition(request, ResponseTemplate) is None:
            return user.is_bureau or obj is None or obj.department_id == user.department_id
        if user.is_bureau:
            return obj.department_id is not None
        return obj.department_id == user.department_id

    def get_form(self, request, obj=None, change=False, **kwargs):
        """A county's bureau writes for one of its departments: a shared template would be
        offered in every county."""
        form = super().get_form(request, obj, change=change, **kwargs)
        shares = county_condition(request, ResponseTemplate) is None  # one county there is
        if request.user.is_bureau and not shares and "department" in form.base_fields:
            form.base_fields["department"].required = True
            form.base_fields["department"].help_text = ""
        return form

    def has_add_permission(self, request):
        return self._own(request)

    def has_change_permission(self, request, obj=None):
        return self._own(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._own(request, obj)

    def get_fields(self, request, obj=None):
        if request.user.is_bureau:
            return self.fields
        return ["title", "step", "text", "position"]

    def save_model(self, request, obj, form, change):
        if not request.user.is_bureau:
            obj.department_id = request.user.department_id
        super().save_model(request, obj, form, change)


@admin.register(Department, site=panel)
class DepartmentPanel(PlainChoices, PanelAdmin):
    """The bureau sets each department's public phone and WeCom group robot here."""

    list_display = ["name", "kind", "subdistrict", "phone", "has_webhook", "is_active"]
    list_filter = ["kind", "subdistrict", "is_active"]
    fields = ["region", "name", "kind", "subdistrict", "phone", "webhook_url", "is_active"]
    bureau_edits = True
    staff_sees = False

    def get_changeform_initial_data(self, request):
        """A new department serves where the bureau does (the only county its form offers)."""
        initial = super().get_changeform_initial_data(request)
        user = request.user
        county = user.region_id or (user.department.region_id if user.department_id else None)
        if county:
            initial.setdefault("region", county)
        return initial

    def save_model(self, request, obj, form, change):
        """Into the bureau's county, whatever was posted (the form offers no other)."""
        if not request.user.is_superuser and request.user.region_id:
            obj.region_id = request.user.region_id
        super().save_model(request, obj, form, change)

    @admin.display(description=gettext_lazy("企业微信群"), boolean=True)
    def has_webhook(self, department: Department) -> bool:
        return bool(department.webhook_url)


@admin.register(Delivery, site=panel)
class DeliveryPanel(PlainChoices, PanelAdmin):
    """Email and WeCom deliveries, so that a failing webhook is seen and fixed."""

    count_word = gettext_lazy("条")

    list_display = [
        "created_at",
        "channel",
        "target_short",
        "subject",
        "status",
        "attempts",
        "last_error",
    ]
    list_filter = ["status", "channel"]
    readonly_fields = [
        "channel",
        "target",
        "subject",
        "body",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "sent_at",
    ]
    fields = readonly_fields
    staff_sees = False

    @admin.display(description=gettext_lazy("发送到"))
    def target_short(self, delivery: Delivery) -> str:
        return delivery.target if len(delivery.target) < 48 else delivery.target[:45] + "…"


def panel_issue_url(issue: Issue) -> str:
    return reverse("panel:supervision_issue_change", args=[issue.pk])


# --- residents' letters ------------------------------------------------------------------------


@admin.register(Letter, site=panel)
class LetterPanel(PlainChoices, PanelAdmin):
    """转街道督促: residents' letters the supervisors left untriaged a working day past their
    limit, for the subdistrict office to press on (and the bureau). Read-only; the reply number is
    masked and there is no export: a letter holds personal data."""

    count_word = gettext_lazy("封")

    list_display = [
        "code",
        "summary",
        "project",
        "status_badge",
        "created_at",
        "triage_due_at",
        "escalated_at",
        "mobile_masked",
    ]
    list_display_links = ["code", "summary"]
    list_filter = ["status"]
    search_fields = ["code", "summary", "project__name"]
    list_select_related = ["project"]
    list_per_page = 50
    actions = None
    readonly_fields = [
        "code",
        "project",
        "status",
        "summary",
        "details",
        "building",
        "unit",
        "mobile_masked",
        "created_at",
        "triage_due_at",
        "reminded_at",
        "escalated_at",
        "handled_at",
        "answer",
        "decline_reason",
        "issue",
    ]
    fields = readonly_fields

    def has_module_permission(self, request):
        user = request.user
        return panel.has_permission(request) and (
            user.is_bureau
            or (user.department_id and user.department.kind == Department.Kind.SUBDISTRICT_OFFICE)
        )

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def get_queryset(self, request):
        letters = letter_escalations_for(request.user).select_related("project", "issue")
        return in_county(request, letters)

    def get_ordering(self, request):
        return ["-escalated_at", "-pk"]

    @admin.display(description=gettext_lazy("状态"), ordering="status")
    def status_badge(self, letter: Letter):
        return format_html(
            '<span class="status status-{}">{}</span>', letter.status, letter.get_status_display()
        )

    @admin.display(description=gettext_lazy("联系电话"))
    def mobile_masked(self, letter: Letter) -> str:
        return letter.masked_mobile or "—"


# --- residents decide --------------------------------------------------------------------------


class ConsultationItemInline(PlainChoices, CountyChoices, admin.TabularInline):
    """The questions; whoever may edit the consultation may edit them (role-based, as above)."""

    model = ConsultationItem

    def has_view_permission(self, request, obj=None):
        return panel.has_permission(request)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission

    extra = 1
    fields = ["kind", "area", "text", "options", "budget"]
    formfield_overrides = {
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 24})},
        models.CharField: {"widget": forms.TextInput(attrs={"size": 28})},
    }


class HouseholdImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("住户名单（Excel 或 CSV）"),
        help_text=gettext_lazy("三列：楼栋、单元、室；第一行可以是表头。"),
    )


@admin.register(Consultation, site=panel)
class ConsultationPanel(PlainChoices, PanelAdmin):
    """意愿征询: the bureau or a subdistrict office opens one for a project."""

    count_word = gettext_lazy("次")

    list_display = ["title", "project", "opens_on", "closes_on", "household_count", "links"]
    list_select_related = ["project"]
    form = ConsultationChangeForm
    fields = ["project", "title", "opens_on", "closes_on", ("participation", "approval")]
    inlines = [ConsultationItemInline]
    actions = ["apply_results"]

    def add_view(self, request, form_url="", extra_context=None):
        """发起意愿征询: the guided form (supervision/consultation_forms.py), not the raw one."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ConsultationStartForm(request.POST or None, user=request.user)
        narrow_choices(request, form.fields["project"])
        if request.method == "POST" and form.is_valid():
            project = form.cleaned_data["project"]
            try:
                consultation = open_consultation(
                    actor=request.user,
                    project=project,
                    title=form.title_for(project),
                    opens_on=form.cleaned_data["opens_on"],
                    closes_on=form.cleaned_data["closes_on"],
                    participation=form.cleaned_data["participation"],
                    approval=form.cleaned_data["approval"],
                    items=form.items(),
                )
            except services.WorkflowError as refusal:
                form.add_error(refusal.field, refusal.message)
            else:
                self.log_addition(request, consultation, [{"added": {}}])
                self.message_user(
                    request,
                    _("已发起「%(c)s」，共 %(n)d 个事项。下一步：导入住户名单，生成投票码。")
                    % {"c": consultation, "n": consultation.items.count()},
                    messages.SUCCESS,
                )
                return redirect("panel:supervision_consultation_import", consultation.pk)
        participation = form["participation"].value() or DEFAULT_PARTICIPATION
        approval = form["approval"].value() or DEFAULT_APPROVAL
        context = {
            **self.admin_site.each_context(request),
            "title": _("发起意愿征询"),
            "form": form,
            "area_rows": form.area_rows(),
            "rule": rule_sentence(participation, approval),
            "opts": self.model._meta,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "panel/consultation_start.html", context)

    def _may_run(self, request) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return self._may_run(request)

    def has_change_permission(self, request, obj=None):
        return self._may_run(request) and (obj is None or self._in_scope(request, obj))

    def _in_scope(self, request, obj) -> bool:
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def get_queryset(self, request):
        # A subquery, not Count("households"): the scope's joins (a project's departments) would
        # multiply the households by the number of departments on the project.
        households = (
            Household.objects.filter(consultation=OuterRef("pk"))
            .order_by()
            .values("consultation")
            .annotate(n=Count("pk"))
            .values("n")
        )
        consultations = in_county(request, consultations_managed_by(request.user))
        return consultations.annotate(households_n=Coalesce(Subquery(households), 0))

    def has_module_permission(self, request):
        user = request.user
        return panel.has_permission(request) and (
            user.is_bureau
            or (user.department_id and user.department.kind == Department.Kind.SUBDISTRICT_OFFICE)
        )

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project":
            kwargs["queryset"] = consultation_projects(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=gettext_lazy("住户"))
    def household_count(self, consultation):
        return consultation.households_n

    @admin.display(description=gettext_lazy("链接"))
    def links(self, consultation):
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("panel:supervision_consultation_import", args=[consultation.pk]),
            _("导入住户"),
            reverse("consultation-slips", args=[consultation.pk]),
            _("打印通知单"),
            consultation.get_absolute_url(),
            _("结果"),
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/import/",
                self.admin_site.admin_view(self.import_households),
                name="supervision_consultation_import",
            ),
            *super().get_urls(),
        ]

    def import_households(self, request, pk):
        consultation = self.get_object(request, str(pk))
        report = None
        form = HouseholdImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                report = residents.import_households(consultation, form.cleaned_data["file"])
            except services.WorkflowError as refusal:
                form.add_error("file", refusal.message)
            else:
                self.message_user(
                    request,
                    _("已导入 %(n)d 户，拒绝 %(r)d 行。")
                    % {"n": report.created, "r": len(report.rejected)},
                    messages.SUCCESS if not report.rejected else messages.WARNING,
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("导入住户 · %(c)s") % {"c": consultation},
            "consultation": consultation,
            "form": form,
            "report": report,
            "households": consultation.households.count(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "panel/household_import.html", context)

    @admin.action(description=gettext_lazy("采纳所选征询的结果（通过的改造内容纳入项目）"))
    def apply_results(self, request, queryset):
        for consultation in queryset:
            try:
                created = residents.apply_result(consultation, actor=request.user)
            except services.WorkflowError as refusal:
                self.message_user(request, f"{consultation}：{refusal.message}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("%(c)s：%(n)d 项改造内容已纳入项目。")
                    % {"c": consultation, "n": len(created)},
                )


@admin.register(Supervisor, site=panel)
class SupervisorPanel(PlainChoices, PanelAdmin):
    """群众监督员: the bureau appoints, reassigns and dismisses; history is kept."""

    count_word = gettext_lazy("名")

    list_display = [
        "user",
        "certificate_number",
        "neighbourhood",
        "term_ends_on",
        "is_active",
        "issue_count",
        "patrol_count",
        "certificate",
    ]
    list_filter = ["is_active", "neighbourhood__subdistrict"]
    search_fields = ["user__display_name", "user__username", "certificate_number"]
    list_select_related = ["user", "neighbourhood"]
    filter_horizontal = ["projects"]
    fields = ["neighbourhood", "projects", "appointed_on", "term_ends_on", "certificate_number"]
    staff_sees = False
    actions = ["dismiss"]
    add_form_template = None

    def has_change_permission(self, request, obj=None):
        return _is_bureau(request)

    def has_add_permission(self, request):
        return _is_bureau(request)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                issues_n=Count("user__reported_issues", distinct=True),
                patrols_n=Count("user__patrols", distinct=True),
            )
        )

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:

            class CountyAppointForm(AppointForm):
                """聘任 within the bureau's county: its neighbourhoods and projects only."""

                def __init__(self, *args, **kwargs):
                    super().__init__(*args, **kwargs)
                    for field in self.fields.values():
                        narrow_choices(request, field)

            return CountyAppointForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return list(AppointForm.base_fields)
        return self.fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        appointed = residents.appoint_supervisor(actor=request.user, **form.cleaned_data)
        obj.pk = appointed.pk
        obj.user = appointed.user
        form.instance = appointed

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    @admin.display(description=gettext_lazy("反映问题"))
    def issue_count(self, supervisor):
        return supervisor.issues_n

    @admin.display(description=gettext_lazy("巡查"))
    def patrol_count(self, supervisor):
        return supervisor.patrols_n

    @admin.display(description=gettext_lazy("聘书"))
    def certificate(self, supervisor):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("supervisor-certificate", args=[supervisor.pk]),
            _("打印"),
        )

    @admin.action(description=gettext_lazy("解聘所选监督员（停用账号，保留记录）"))
    def dismiss(self, request, queryset):
        dismissed = 0
        for supervisor in queryset.filter(is_active=True):
            try:
                if residents.dismiss_supervisor(supervisor, actor=request.user):
                    dismissed += 1
            except services.WorkflowError as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
                return
        if dismissed:
            self.message_user(
                request,
                _("已解聘 %(n)d 名监督员，账号已停用，反映和巡查记录都已保留。") % {"n": dismissed},
            )
        else:
            self.message_user(request, _("所选监督员都已解聘，没有变化。"), messages.WARNING)


class AppointForm(forms.ModelForm):
    """聘任: creates the account and the appointment in one step."""

    display_name = forms.CharField(label=gettext_lazy("姓名"), max_length=50)
    username = forms.CharField(label=gettext_lazy("登录名"), max_length=150)
    mobile = forms.RegexField(
        label=gettext_lazy("手机号"),
        regex=r"^1\d{10}$",
        error_messages={"invalid": gettext_lazy("请填写 11 位手机号。")},
    )
    password = forms.CharField(
        label=gettext_lazy("初始密码"), min_length=8, widget=forms.PasswordInput(render_value=True)
    )

    class Meta:
        model = Supervisor
        fields = ["neighbourhood", "projects", "appointed_on", "term_ends_on", "certificate_number"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["neighbourhood"].empty_label = _("请选择")

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        if User.objects.filter(username=username).exists():
            raise forms.ValidationError(_("这个登录名已被使用。"))
        return username

    def clean_mobile(self):
        mobile = self.cleaned_data["mobile"]
        if User.objects.filter(mobile=mobile).exists():
            raise forms.ValidationError(_("这个手机号已有账号。"))
        return mobile
