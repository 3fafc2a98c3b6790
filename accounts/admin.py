from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.utils.translation import gettext_lazy as _

from .models import User
from .passwords import new_password_set


class PasswordChangeRevokingKeys(AdminPasswordChangeForm):
    """An administrator's new password for somebody also revokes their API keys."""

    def save(self, commit: bool = True):
        user = super().save(commit=commit)
        if commit:
            new_password_set(user)
        return user


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    change_password_form = PasswordChangeRevokingKeys
    list_display = ["username", "display_name", "mobile", "role", "department", "is_active"]
    list_filter = ["role", "department__kind", "is_active", "is_superuser"]
    search_fields = ["username", "display_name", "mobile"]
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        (_("群众监督"), {"fields": ("display_name", "mobile", "role", "department")}),
    )
