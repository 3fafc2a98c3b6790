from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q


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
