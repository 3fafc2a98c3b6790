from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q

from .limits import REFUSED, address_limited


class UsernameOrMobileBackend(ModelBackend):
    """Log in with the username or the mobile number, and the password."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if not username or password is None:
            return None
        user_model = get_user_model()
        login = username.strip()
        # A username wins over somebody else's mobile number that happens to be the same.
        candidates = user_model._default_manager.filter(Q(username=login) | Q(mobile=login))
        user = min(candidates, key=lambda u: (u.username != login, u.pk), default=None)
        if user is None:
            user_model().set_password(password)  # same cost as a real check: no timing oracle
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def get_user(self, user_id):
        """The signed-in person, read with their supervisor record: every page's layout asks
        whether they serve (the 「我要反映」 button), which would otherwise be a second query."""
        user_model = get_user_model()
        try:
            user = user_model._default_manager.select_related("supervisor").get(pk=user_id)
        except user_model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None


class LockoutBackend(AxesStandaloneBackend):
    """The login limits of ``accounts.limits`` for every ``authenticate()`` with a request: an
    address over the per-address limit is refused before any password is checked (the login
    pages refuse it even earlier, ``LoginLimitMiddleware``); then django-axes: 5 failures for
    one account lock it for 15 minutes, the right password too. Either refusal is answered 429
    by ``axes.middleware.AxesMiddleware`` through ``accounts.limits.lockout_response``.

    Logins without a request (the test client, management commands) are not web logins and pass
    through to the next backend.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        if address_limited(request):
            setattr(request, REFUSED, "address")
            request.axes_locked_out = True  # AxesMiddleware answers with the lockout page
            raise AxesBackendPermissionDenied("too many failed logins from this address")
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_username(request, credentials) -> str:
    """The account a login attempt is for: a mobile number counts as its account's username, so
    switching between the two does not earn five more tries."""
    login = ((credentials or {}).get("username") or "").strip()
    user = get_user_model()._default_manager.filter(mobile=login).only("username").first()
    return user.username if user else login
