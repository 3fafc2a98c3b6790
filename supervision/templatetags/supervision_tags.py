"""Times as people say them (「3 小时前」「明天 17:30 前」), the feed's avatars and badges, and
the layout's links."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from django import template
from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from ..workdays import working_days_elapsed

register = template.Library()

# The addresses the layout links to on every page, by the name base.html uses.
NAV = {
    "home": "home",
    "project_list": "project-list",
    "issue_list": "issue-list",
    "issue_new": "issue-new",
    "feed": "feed",
    "me": "me",
    "notifications": "notifications",
    "dashboard": "dashboard",
    "panel": "panel:index",
    "admin": "admin:index",
    "password_change": "password_change",
    "settings": "settings",
    "patrol_list": "patrol-list",
    "supervisor_directory": "supervisor-directory",
    "api_keys": "api-keys",
    "login": "login",
    "logout": "logout",
    "set_language": "set_language",
    "elder_mode": "elder-mode",
}


@cache
def _nav_urls(prefix: str, urlconf: object) -> dict[str, str]:
    return {key: reverse(name) for key, name in NAV.items()}


@register.simple_tag
def nav_urls() -> dict[str, str]:
    """The layout's links, reversed once per process (and script prefix): ``{% url %}`` costs
    about 30 µs a link, and the layout has eighteen on every page. Works where a page is
    rendered without a request, such as the 500 page."""
    return _nav_urls(get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)


@register.filter
def ago(moment: datetime | None) -> str:
    """「刚刚」「5 分钟前」「3 小时前」「昨天 14:20」「11月3日 14:20」."""
    if not moment:
        return ""
    now = timezone.localtime()
    local = timezone.localtime(moment)
    seconds = (now - local).total_seconds()
    if seconds < 60:
        return _("刚刚")
    if seconds < 3600:
        return _("%(n)d 分钟前") % {"n": seconds // 60}
    if local.date() == now.date():
        return _("%(n)d 小时前") % {"n": seconds // 3600}
    if (now.date() - local.date()).days == 1:
        return _("昨天 %(time)s") % {"time": local.strftime("%H:%M")}
    if local.year == now.year:
        return _("%(month)d月%(day)d日 %(time)s") % {
            "month": local.month,
            "day": local.day,
            "time": local.strftime("%H:%M"),
        }
    return local.strftime("%Y-%m-%d %H:%M")


@register.filter
def due(deadline: datetime | None, urgent: bool = False) -> str:
    """「今天 17:30 前」「明天 17:30 前」「11月30日 17:30 前」, or how late: ``overdue_by``."""
    if not deadline:
        return ""
    now = timezone.localtime()
    local = timezone.localtime(deadline)
    if local < now:
        return overdue_by(local, now, urgent=urgent)
    time = local.strftime("%H:%M")
    days = (local.date() - now.date()).days
    if days == 0:
        return _("今天 %(time)s 前") % {"time": time}
    if days == 1:
        return _("明天 %(time)s 前") % {"time": time}
    if days == 2:
        return _("后天 %(time)s 前") % {"time": time}
    return _("%(month)d月%(day)d日 %(time)s 前") % {
        "month": local.month,
        "day": local.day,
        "time": time,
    }


def overdue_by(deadline: datetime, now: datetime, *, urgent: bool = False) -> str:
    """How late, in the unit of the limit: urgent limits are hours (「已超期 3 小时」), the others
    working days (「已超期 2 个工作日」); under one working day, the minutes or hours of the same
    day, or 「已超期，不到 1 个工作日」 across a night or a weekend."""
    minutes = int((now - deadline).total_seconds() // 60)
    if minutes < 60:
        return _("已超期 %(n)d 分钟") % {"n": max(minutes, 1)}
    if urgent:
        return _("已超期 %(n)d 小时") % {"n": minutes // 60}
    days = working_days_elapsed(deadline, now)
    if days >= 1:
        return _("已超期 %(n)d 个工作日") % {"n": days}
    if timezone.localtime(deadline).date() == timezone.localtime(now).date():
        return _("已超期 %(n)d 小时") % {"n": minutes // 60}
    return _("已超期，不到 1 个工作日")


@register.filter
def deadline_text(issue) -> str:
    """The issue's running limit as people say it, late in the limit's own unit."""
    return due(issue.next_deadline, issue.urgency == issue.Urgency.URGENT)


@register.filter
def initial(user) -> str:
    """The avatar's character: the surname, as Chinese chat apps show it."""
    if user is None:
        return _("系")
    name = str(user).strip()
    return name[:1].upper() or "?"


@register.filter
def badge(user) -> str:
    """Who is speaking: 监督员, 住建局, 上级主管部门, or the department's name."""
    if user is None:
        return _("系统")
    if user.is_supervisor:
        return _("监督员")
    if user.department_id:
        return str(user.department)
    if user.is_bureau:
        return _("住建局")
    if user.is_oversight:
        return _("上级主管部门")
    return ""


@register.filter
def side(event) -> str:
    """Chat bubbles: the reporter on the right, departments on the left, status lines centred."""
    if event.actor_id is None or (event.is_status_change and not event.text):
        return "system"
    if event.actor_id == event.issue.reporter_id:
        return "mine"
    return "theirs"
