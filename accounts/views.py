from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .forms import LoginForm
from .passwords import new_password_set
from .two_factor import confirmed_device, hold_for_second_step, may_use_two_factor


def landing_url(user) -> str:
    """Where a person lands after logging in: a supervisor on their own tasks (我的), department
    staff on their queue in the panel, the bureau on the programme's figures."""
    if user.is_authenticated and user.is_active:
        if user.is_supervisor:
            return reverse("me")
        if user.is_bureau or user.is_oversight:
            return reverse("dashboard")
        if user.is_department_staff:
            return reverse("panel:supervision_issue_changelist")
    return reverse("home")


class LoginView(auth_views.LoginView):
    """Login by username or mobile. The limits (django-axes per account, LOGIN_FAILURES_PER_IP
    per address) are ``accounts.limits``', shared with every other login path."""

    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return landing_url(getattr(self, "_user", None) or self.request.user)

    def form_valid(self, form):
        user = self._user = form.get_user()
        if may_use_two_factor(user) and confirmed_device(user):
            return hold_for_second_step(self.request, user, self.get_success_url())
        return super().form_valid(form)


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, _("您已安全退出。"))
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"

    def form_valid(self, form):
        response = super().form_valid(form)
        if revoked := new_password_set(form.user):
            messages.info(
                self.request,
                _("原来的 %(n)d 个接口密钥已随旧密码作废，需要时请在「接口密钥」页重新生成。")
                % {"n": revoked},
            )
        return response


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"

    def get(self, request, *args, **kwargs):
        messages.success(request, _("密码已修改。"))
        return super().get(request, *args, **kwargs)
