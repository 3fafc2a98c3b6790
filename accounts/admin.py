from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "display_name", "mobile", "role", "department", "is_active"]
    list_filter = ["role", "department__kind", "is_active", "is_superuser"]
    search_fields = ["username", "display_name", "mobile"]
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        (_("群众监督"), {"fields": ("display_name", "mobile", "role", "department")}),
    )
