"""The project's life after the works, for the project page: ``{% project_life project %}``."""

from django import template

from ..acceptance import life_stages

register = template.Library()


@register.inclusion_tag("supervision/acceptance/_life.html")
def project_life(project):
    """完工 → 竣工验收 → 保修期 → 长效管理, and the link to the latest acceptance record
    (one query: the latest acceptance)."""
    latest = project.acceptances.order_by("-held_on", "-pk").first()
    return {"project": project, "stages": life_stages(project), "latest": latest}
