"""Figures as pages write them: ``{{ row.reopen_rate|rate }}`` gives 「12.5%」 or 「—」."""

from django import template

from supervision.stats import format_rate

register = template.Library()


@register.filter
def rate(value) -> str:
    return format_rate(value)
