"""/panel/: the department panel, a Django AdminSite of its own for department staff and the bureau.

Staff see only the issues routed to their department (contractor staff: dispatched to their
company) and the projects they are responsible for; the bureau sees everything and keeps the
routing rules, the calendar changes and the extension requests. Anything outside a user's scope
is a 404 — list, change page, actions, exports. The steps themselves are taken on the issue page
(``/issues/<id>/<action>/``), which the panel links to.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from . import services
from .models import (
    CalendarChange,
    Delivery,
    Department,
    ExtensionRequest,
    Issue,
    Project,
    ResponseTemplate,
    RoutingRule,
)
from .templatetags.supervision_tags import due
from .xlsx import issues_workbook


def issue_page_context(request, issue):
    from .issue_views import _detail_context

    return _detail_context(request, issue)


class PanelSite(admin.AdminSite):
    site_header = _lazy("群众监督 · 部门工作台")
    site_title = _lazy("部门工作台")
    index_title = _lazy("待办与管理")
    site_url = "/issues/"
    enable_nav_sidebar = False

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return user.is_active and (user.is_department_staff or user.is_bureau)

    def login(self, request: HttpRequest, extra_context=None):
        # One login page for everyone; a supervisor who lands here is sent to their own pages.
        if request.user.is_authenticated:
            raise Http404
        return redirect_to_login(request.get_full_path())


panel = PanelSite(name="panel")


def _is_bureau(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.is_bureau


class PanelAdmin(admin.ModelAdmin):
    """Permissions by role, not by Django's per-model permissions; missing objects are 404."""

    bureau_edits = False
    staff_sees = True

    class Media:
        css = {"all": ["css/panel.css"]}

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
    title = _lazy("是否超期")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("已超期")), ("no", _("未超期"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.overdue()
        if self.value() == "no":
            return queryset.exclude(pk__in=Issue.objects.overdue().values("pk"))
        return queryset


class EscalatedFilter(admin.SimpleListFilter):
    """The bureau's escalation list (督办): issues escalated and still open."""

    title = _lazy("督办")
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
        "urgency",
        "status_badge",
        "waiting",
        "deadline",
    ]
    list_display_links = ["reference"]
    list_filter = [
        "status",
        "category",
        OverdueFilter,
        EscalatedFilter,
        "urgency",
        ("project", admin.RelatedOnlyFieldListFilter),
        ("project__neighbourhood__subdistrict", admin.RelatedOnlyFieldListFilter),
        ("department", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["reference", "title", "description"]
    list_select_related = ["project__neighbourhood__subdistrict", "department"]
    list_per_page = 50
    actions = ["accept_selected", "export_xlsx"]
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
    fields = readonly_fields
    view_on_site = True
    change_form_template = "panel/issue_change.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The steps are the issue page's forms, posting to /issues/<id>/<action>/ and coming
        # back here; the thread shows what happened so far.
        issue = self.get_object(request, object_id)
        context = issue_page_context(request, issue)
        context.update(extra_context or {})
        return super().change_view(request, object_id, form_url, context)

    def get_queryset(self, request):
        # Overdue first, then the oldest: the overdue rank is computed in SQL.
        return (
            Issue.objects.visible_to(request.user)
            .annotate(
                overdue_rank=Case(
                    When(_overdue_condition(timezone.now()), then=Value(0)),
                    default=Value(1),
                    output_field=IntegerField(),
                )
            )
            .order_by("overdue_rank", "created_at")
        )

    def get_ordering(self, request):
        return ["overdue_rank", "created_at"]

    @admin.display(description=_lazy("标题"))
    def title_link(self, issue: Issue):
        return format_html('<a href="{}">{}</a>', issue.get_absolute_url(), issue.title)

    @admin.display(description=_lazy("街道"), ordering="project__neighbourhood__subdistrict")
    def subdistrict(self, issue: Issue):
        return issue.project.neighbourhood.subdistrict

    @admin.display(description=_lazy("状态"), ordering="status")
    def status_badge(self, issue: Issue):
        return format_html(
            '<span class="status status-{}">{}</span>', issue.status, issue.get_status_display()
        )

    @admin.display(description=_lazy("已等待"), ordering="created_at")
    def waiting(self, issue: Issue):
        return _waited(issue.created_at, issue.closed_at or timezone.now())

    @admin.display(description=_lazy("下一期限"), ordering="overdue_rank")
    def deadline(self, issue: Issue):
        moment = issue.next_deadline
        if moment is None:
            return "—"
        if issue.is_overdue:
            return format_html(
                '<span class="status status-overdue">{}</span> {}', _("已超期"), due(moment)
            )
        return due(moment)

    @admin.action(description=_lazy("签收所选问题（默认整改期限）"))
    def accept_selected(self, request, queryset: QuerySet[Issue]):
        done, refused = [], []
        for issue in queryset.filter(status=Issue.Status.SUBMITTED).order_by("pk"):
            try:
                services.accept_issue(issue, actor=request.user)
                done.append(issue.reference)
            except services.WorkflowError as error:
                refused.append(f"{issue.reference}：{error.message}")
        skipped = queryset.exclude(status=Issue.Status.SUBMITTED).count()
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

    @admin.action(description=_lazy("导出所选问题（Excel）"))
    def export_xlsx(self, request, queryset: QuerySet[Issue]) -> HttpResponse:
        rows = queryset.select_related(
            "project__neighbourhood__subdistrict", "department", "contractor", "reporter"
        ).order_by("created_at")
        response = HttpResponse(
            issues_workbook(rows),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="issues-{stamp}.xlsx"'
        return response


def _overdue_condition(now: datetime) -> Q:
    S = Issue.Status
    return Q(status=S.SUBMITTED, sign_for_due_at__lt=now) | Q(
        status__in=[S.ACCEPTED, S.IN_PROGRESS], rectify_due_at__lt=now
    )


def _waited(start: datetime, end: datetime) -> str:
    minutes = int((end - start).total_seconds() // 60)
    if minutes < 60:
        return _("%(n)d 分钟") % {"n": max(minutes, 0)}
    if minutes < 60 * 24:
        return _("%(n)d 小时") % {"n": minutes // 60}
    return _("%(n)d 天") % {"n": minutes // (60 * 24)}


# --- projects ----------------------------------------------------------------------------------


@admin.register(Project, site=panel)
class ProjectPanel(PanelAdmin):
    list_display = ["name", "year", "neighbourhood", "status", "contractor", "planned_end"]
    list_filter = ["year", "status", "neighbourhood__subdistrict"]
    search_fields = ["name", "neighbourhood__name"]
    list_select_related = ["neighbourhood", "contractor"]
    view_on_site = True
    bureau_edits = True
    filter_horizontal = ["departments"]
    exclude = ["created_at", "updated_at"]

    def get_queryset(self, request):
        projects = super().get_queryset(request)
        user = request.user
        if user.is_bureau:
            return projects
        department = user.department_id
        return projects.filter(Q(departments=department) | Q(contractor=department)).distinct()

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- what the bureau keeps ---------------------------------------------------------------------


@admin.register(RoutingRule, site=panel)
class RoutingRulePanel(PanelAdmin):
    list_display = ["subdistrict", "category", "department", "note"]
    list_filter = ["subdistrict", "category"]
    bureau_edits = True
    staff_sees = False
    fields = ["subdistrict", "category", "department", "note"]


@admin.register(CalendarChange, site=panel)
class CalendarChangePanel(PanelAdmin):
    list_display = ["day", "is_working_day", "note"]
    bureau_edits = True
    staff_sees = False


@admin.register(ExtensionRequest, site=panel)
class ExtensionRequestPanel(PanelAdmin):
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
        requests = super().get_queryset(request)
        if request.user.is_bureau:
            return requests
        return requests.filter(issue__in=Issue.objects.visible_to(request.user).values("pk"))

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

    @admin.action(description=_lazy("同意所选延期申请"))
    def grant(self, request, queryset):
        self._decide(request, queryset, True)

    @admin.action(description=_lazy("不同意所选延期申请"))
    def refuse(self, request, queryset):
        self._decide(request, queryset, False)


@admin.register(ResponseTemplate, site=panel)
class ResponseTemplatePanel(PanelAdmin):
    """常用回复: staff keep their department's; the bureau keeps everyone's and the shared ones."""

    list_display = ["title", "department", "position"]
    fields = ["title", "text", "department", "position"]

    def get_queryset(self, request):
        templates = super().get_queryset(request)
        if request.user.is_bureau:
            return templates
        return templates.filter(department=request.user.department_id)

    def _own(self, request, obj=None) -> bool:
        if not panel.has_permission(request):
            return False
        return (
            request.user.is_bureau or obj is None or obj.department_id == request.user.department_id
        )

    def has_add_permission(self, request):
        return self._own(request)

    def has_change_permission(self, request, obj=None):
        return self._own(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._own(request, obj)

    def get_fields(self, request, obj=None):
        if request.user.is_bureau:
            return self.fields
        return ["title", "text", "position"]

    def save_model(self, request, obj, form, change):
        if not request.user.is_bureau:
            obj.department_id = request.user.department_id
        super().save_model(request, obj, form, change)


@admin.register(Department, site=panel)
class DepartmentPanel(PanelAdmin):
    """The bureau sets each department's public phone and WeCom group robot here."""

    list_display = ["name", "kind", "subdistrict", "phone", "has_webhook", "is_active"]
    list_filter = ["kind", "subdistrict", "is_active"]
    fields = ["name", "kind", "subdistrict", "phone", "webhook_url", "is_active"]
    bureau_edits = True
    staff_sees = False

    @admin.display(description=_lazy("企业微信群"), boolean=True)
    def has_webhook(self, department: Department) -> bool:
        return bool(department.webhook_url)


@admin.register(Delivery, site=panel)
class DeliveryPanel(PanelAdmin):
    """Email and WeCom deliveries, so that a failing webhook is seen and fixed."""

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

    @admin.display(description=_lazy("发送到"))
    def target_short(self, delivery: Delivery) -> str:
        return delivery.target if len(delivery.target) < 48 else delivery.target[:45] + "…"


def panel_issue_url(issue: Issue) -> str:
    return reverse("panel:supervision_issue_change", args=[issue.pk])
