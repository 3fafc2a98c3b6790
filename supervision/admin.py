"""The full Django admin for bureau administrators. (The scoped department panel at /panel/
comes with the departments' side.)"""

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from simple_history.admin import SimpleHistoryAdmin

from .models import (
    Department,
    Issue,
    IssueEvent,
    Neighbourhood,
    Photo,
    Project,
    Region,
    ScopeItem,
    Subdistrict,
    Supervisor,
)
from .panel import login_target


def login(request: HttpRequest, extra_context=None) -> HttpResponse:
    """/admin/login/ is /accounts/login/: the same limits and, for whoever has set it up, the
    two-factor code, which Django's own admin login form would skip. Back to the admin page
    asked for; a signed-in person who may not use the admin is refused (403), not sent round."""
    target = login_target(request, "admin")
    if not request.user.is_authenticated:
        return redirect_to_login(target)
    if not admin.site.has_permission(request):
        raise PermissionDenied
    return redirect(target)


admin.site.login = login


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    """行政区划: 省 → 市 → 县（市、区）; subdistricts and departments hang under the last."""

    list_display = ["name", "code", "level", "parent"]
    list_filter = ["level", ("parent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "code"]
    list_select_related = ["parent"]


@admin.register(Subdistrict)
class SubdistrictAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "region", "stats_code"]
    list_filter = ["region"]
    search_fields = ["name", "code", "stats_code"]
    list_select_related = ["region"]


@admin.register(Department)
class DepartmentAdmin(SimpleHistoryAdmin):
    list_display = ["name", "kind", "region", "subdistrict", "phone", "is_active"]
    list_filter = ["kind", "region", "subdistrict", "is_active"]
    search_fields = ["name"]
    list_select_related = ["region", "subdistrict"]


@admin.register(Neighbourhood)
class NeighbourhoodAdmin(SimpleHistoryAdmin):
    list_display = ["name", "subdistrict", "year_built", "buildings", "households"]
    list_filter = ["subdistrict"]
    search_fields = ["name", "address"]


class ScopeItemInline(admin.TabularInline):
    model = ScopeItem
    extra = 0


@admin.register(Project)
class ProjectAdmin(SimpleHistoryAdmin):
    list_display = ["name", "year", "neighbourhood", "status", "contractor", "planned_end"]
    list_filter = ["year", "status", "neighbourhood__subdistrict"]
    search_fields = ["name", "neighbourhood__name"]
    list_select_related = ["neighbourhood", "contractor"]
    filter_horizontal = ["departments"]
    inlines = [ScopeItemInline]


@admin.register(Supervisor)
class SupervisorAdmin(SimpleHistoryAdmin):
    list_display = [
        "user",
        "certificate_number",
        "neighbourhood",
        "appointed_on",
        "term_ends_on",
        "is_active",
    ]
    list_filter = ["is_active", "neighbourhood__subdistrict"]
    search_fields = ["user__display_name", "user__username", "certificate_number"]
    list_select_related = ["user", "neighbourhood"]
    filter_horizontal = ["projects"]
    # Dismissal is a service (residents.dismiss_supervisor: the account closes, keys are
    # revoked); the panel's action takes it. Here it is shown, not edited.
    readonly_fields = ["is_active", "dismissed_on"]


# An issue's workflow fields: only the steps in supervision/services.py change them, each with
# its IssueEvent. In /admin/ they are shown, never edited.
WORKFLOW_FIELDS = [
    "status",
    "category",
    "urgency",
    "is_public",
    "department",
    "contractor",
    "sign_for_due_at",
    "reply_due_at",
    "rectify_due_at",
    "verify_remind_at",
    "verify_due_at",
    "accepted_at",
    "first_reply_at",
    "rectified_at",
    "closed_at",
    "escalated_at",
    "rating",
    "reopen_count",
]


class IssueEventInline(admin.TabularInline):
    """The issue's history: read only, as it is the record of who did what."""

    model = IssueEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "actor", "from_status", "to_status", "text"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Issue)
class IssueAdmin(admin.ModelAdmin):
    """Read-mostly: the wording and place of an issue can be corrected here; its workflow fields
    are read only and there are no bulk actions that change them."""

    list_display = [
        "reference",
        "title",
        "project",
        "category",
        "urgency",
        "status",
        "department",
        "created_at",
    ]
    list_filter = ["status", "category", "urgency", "department", "is_public"]
    search_fields = ["reference", "title", "description"]
    list_select_related = ["project", "department"]
    readonly_fields = ["reference", "project", "reporter", *WORKFLOW_FIELDS, "created_at"]
    exclude = ["latitude", "longitude"]
    inlines = [IssueEventInline]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        """Save only the fields this form changed, so a step the workflow took meanwhile is not
        overwritten by this page's older copy of the issue."""
        changed = [name for name in form.changed_data if name not in WORKFLOW_FIELDS]
        if changed:
            obj.save(update_fields=[*changed, "updated_at"])


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = ["issue", "kind", "state", "width", "height", "created_at"]
    list_filter = ["kind", "state"]
    raw_id_fields = ["issue", "event"]
