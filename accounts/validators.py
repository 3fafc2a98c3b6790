"""Password rules. Residents get Django's validators (length, not common, not like the name):
that is what OWASP ASVS 2.1 asks for, and composition rules only push retirees to write passwords
down. Department staff and the bureau handle personal data of many residents: for them we follow
China's MLPS 2.0 (GB/T 22239-2019, 身份鉴别), which expects passwords of complexity — at least 10
characters with three of: upper case, lower case, digits, symbols."""

from __future__ import annotations

import string

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MIN_LENGTH = 10


class StaffComplexityValidator:
    def validate(self, password: str, user=None) -> None:
        if user is None or not (
            getattr(user, "is_department_staff", False)
            or getattr(user, "is_bureau", False)
            or getattr(user, "is_oversight", False)
        ):
            return
        classes = sum(
            [
                any(c in string.ascii_uppercase for c in password),
                any(c in string.ascii_lowercase for c in password),
                any(c.isdigit() for c in password),
                any(not c.isalnum() for c in password),
            ]
        )
        if len(password) < MIN_LENGTH or classes < 3:
            raise ValidationError(
                _("工作人员的密码至少 %(n)d 位，并包含大写字母、小写字母、数字、符号中的三种。")
                % {"n": MIN_LENGTH},
                code="password_too_simple",
            )

    def get_help_text(self) -> str:
        return _(
            "部门和住建局工作人员的密码至少 %(n)d 位，并包含大写字母、小写字母、数字、符号中的三种。"
        ) % {"n": MIN_LENGTH}
