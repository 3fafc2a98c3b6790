"""``{% sms_enabled as sms_on %}``: whether the SMS code links belong on the login page."""

from django import template

from accounts.sms import sms_enabled as _sms_enabled

register = template.Library()


@register.simple_tag
def sms_enabled() -> bool:
    return _sms_enabled()
