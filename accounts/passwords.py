"""What a new password does besides replacing the old one.

One rule, applied wherever a password is set anew — by the person (/accounts/password/) or by an
administrator for them (/admin/): the API keys made under the old password are revoked, as the
other sessions end. A lost phone's mini-program stops with it.
"""

from __future__ import annotations

from api.tokens import revoke_all

from .models import User


def new_password_set(user: User) -> int:
    """Apply the consequences of ``user``'s new password; returns how many API keys were revoked."""
    return revoke_all(user)
