from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

mobile_validator = RegexValidator(r"^1[3-9]\d{9}$", _("请输入 11 位手机号码。"))


class User(AbstractUser):
    """A person who logs in: a supervisor, department staff or a bureau coordinator."""

    class Role(models.TextChoices):
        SUPERVISOR = "supervisor", _("群众监督员")
        STAFF = "staff", _("部门工作人员")
        BUREAU = "bureau", _("住建局协调员")
        OVERSIGHT = "oversight", _("上级主管部门")

    # The roles that belong to a region's programme: a supervisor and a bureau to a county-level
    # one, the oversight (省住建厅, a city's 住建局 above its counties) to a province or a city.
    REGIONAL_ROLES = (Role.SUPERVISOR, Role.BUREAU, Role.OVERSIGHT)

    role = models.CharField(_("角色"), max_length=20, choices=Role.choices, blank=True)
    department = models.ForeignKey(
        "supervision.Department",
        verbose_name=_("所属部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
    )
    region = models.ForeignKey(
        "supervision.Region",
        verbose_name=_("所属区划"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="users",
        help_text=_(
            "监督员和住建局协调员属于一个县（市、区）的改造工作；上级主管部门属于省或设区的市，"
            "看得到下面所有县（市、区）。"
        ),
    )
    mobile = models.CharField(
        _("手机号码"),
        max_length=11,
        unique=True,
        null=True,
        blank=True,
        validators=[mobile_validator],
        help_text=_("可用手机号码代替用户名登录。"),
    )
    display_name = models.CharField(_("姓名"), max_length=50, blank=True)

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")
        ordering = ["username"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(role="staff") | Q(department__isnull=False),
                name="accounts_user_staff_has_department",
            ),
            models.CheckConstraint(
                condition=~Q(role__in=["supervisor", "bureau", "oversight"])
                | Q(region__isnull=False),
                name="accounts_user_regional_role_has_region",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def is_supervisor(self) -> bool:
        return self.role == self.Role.SUPERVISOR

    @property
    def is_department_staff(self) -> bool:
        return self.role == self.Role.STAFF and self.department_id is not None

    @property
    def is_bureau(self) -> bool:
        return self.role == self.Role.BUREAU or self.is_superuser

    @property
    def is_oversight(self) -> bool:
        """省住建厅 or a city's 住建局 above its counties: reads every programme below its region,
        escalates (督办), never takes a department's step."""
        return self.role == self.Role.OVERSIGHT and self.region_id is not None


class SmsCode(models.Model):
    """One SMS code asked for (短信验证码): for signing in or for resetting a password.

    Neither the number nor the code is stored: the number as an HMAC under the app's key (a
    typed number that belongs to nobody is never kept readable), the code as an HMAC of itself
    with the purpose and the number. A row is written for every request, known number or not,
    so that the limits (accounts.sms) count the same for both and the pages cannot tell them
    apart; rows older than two days are deleted as new ones are written.
    """

    class Purpose(models.TextChoices):
        LOGIN = "login", _("登录")
        RESET = "reset", _("重设密码")

    purpose = models.CharField(_("用途"), max_length=10, choices=Purpose.choices)
    mobile_digest = models.CharField(_("手机号摘要"), max_length=64)
    code_digest = models.CharField(_("验证码摘要"), max_length=64)
    address = models.CharField(_("来源地址"), max_length=64)
    tries = models.PositiveSmallIntegerField(_("输错次数"), default=0)
    created_at = models.DateTimeField(_("发送时间"))
    expires_at = models.DateTimeField(_("失效时间"))
    used_at = models.DateTimeField(_("使用时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("短信验证码")
        verbose_name_plural = _("短信验证码")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["mobile_digest", "created_at"], name="accounts_sms_mobile_idx"),
            models.Index(fields=["address", "created_at"], name="accounts_sms_address_idx"),
            models.Index(fields=["created_at"], name="accounts_sms_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="accounts_smscode_expires_after_created",
            ),
            models.CheckConstraint(
                condition=Q(tries__lte=5), name="accounts_smscode_tries_within_limit"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {self.created_at:%Y-%m-%d %H:%M}"


# --- WeChat (微信公众号网页授权) and message choices, issue 24 ------------------------------------


class WeChatBinding(models.Model):
    """A supervisor's WeChat, bound from 设置 to sign in without a password inside WeChat.

    The openid is never stored readable for lookup: ``openid_digest`` is an HMAC under the app's
    key (``accounts.wechat.openid_digest``), unique, so one WeChat signs in one account. WeChat
    messages need the openid itself, so ``openid_sealed`` keeps it encrypted (Fernet, with a key
    derived from the app's key: ``accounts.wechat.seal``); nothing shows or logs it.
    """

    user = models.OneToOneField(
        "accounts.User",
        verbose_name=_("用户"),
        on_delete=models.CASCADE,
        related_name="wechat_binding",
    )
    openid_digest = models.CharField(_("微信标识摘要"), max_length=64, unique=True)
    openid_sealed = models.TextField(_("加密的微信标识"))
    created_at = models.DateTimeField(_("绑定时间"))
    last_login_at = models.DateTimeField(_("最近微信登录"), null=True, blank=True)

    class Meta:
        verbose_name = _("微信绑定")
        verbose_name_plural = _("微信绑定")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.user} · {_('微信')}"


class MessageChoices(models.Model):
    """Which events a person hears about by WeChat and by SMS (消息提醒); in-app is always on.

    Each list holds ``Event`` values. Without a row: WeChat for every event (once bound), no SMS
    (``accounts.wechat.DEFAULT_CHOICES``).
    """

    class Event(models.TextChoices):
        ACCEPTED = "accepted", _("问题已签收")
        ANSWERED = "answered", _("问题已答复")
        RECTIFIED = "rectified", _("问题已整改，请去验收")
        REMINDER = "reminder", _("验证提醒")
        LETTER = "letter", _("有居民来信待处理")

    user = models.OneToOneField(
        "accounts.User",
        verbose_name=_("用户"),
        on_delete=models.CASCADE,
        related_name="message_choices",
    )
    wechat = models.JSONField(_("微信提醒的事项"), default=list, blank=True)
    sms = models.JSONField(_("短信提醒的事项"), default=list, blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("消息提醒设置")
        verbose_name_plural = _("消息提醒设置")
        ordering = ["user"]

    def __str__(self) -> str:
        return f"{self.user} · {_('消息提醒')}"
