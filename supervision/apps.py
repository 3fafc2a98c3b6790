from functools import partialmethod

from django.apps import AppConfig, apps
from django.db.models.signals import post_delete, post_save
from django.utils.encoding import force_str
from django.utils.translation import gettext_lazy as _


def _quick_display(field):
    labels = dict(field.flatchoices)

    def display(self):
        value = getattr(self, field.attname)
        return force_str(labels.get(value, value), strings_only=True)

    display.__name__ = f"get_{field.name}_display"
    return display


def quicken_choice_labels(app_labels: tuple[str, ...]) -> None:
    """Make ``get_FOO_display()`` a dictionary lookup.

    Django's version rebuilds a dictionary of every choice on each call, hashing (and so
    translating) every lazy label: about 0.4 ms a call, which on the feed's 30 events was a fifth
    of the page. Only Django's own generated methods are replaced.
    """
    for label in app_labels:
        for model in apps.get_app_config(label).get_models():
            for field in model._meta.fields:
                name = f"get_{field.name}_display"
                if field.choices and isinstance(model.__dict__.get(name), partialmethod):
                    setattr(model, name, _quick_display(field))


class SupervisionConfig(AppConfig):
    name = "supervision"
    verbose_name = _("群众监督")

    def ready(self) -> None:
        quicken_choice_labels(("supervision", "accounts"))
        # Word search: its tokeniser on each SQLite connection, its triggers back after migrate.
        from . import search  # noqa: PLC0415

        search.connect()
        # Models and what imports them load only once the app registry is ready: this is
        # Django's place for it, not a cycle.
        from . import fragments, public_cache, rollups, workdays  # noqa: PLC0415
        from .models import (  # noqa: PLC0415
            Acceptance,
            AcceptanceView,
            Ballot,
            CalendarChange,
            Consultation,
            ConsultationItem,
            Department,
            Issue,
            Neighbourhood,
            Patrol,
            Photo,
            Project,
            Region,
            ScopeItem,
            Subdistrict,
            Supervisor,
            Survey,
            SurveyAnswer,
        )

        # The dashboard's rollups follow every change of an issue, a patrol or a project's place.
        rollups.connect_signals()
        # A day changed in the panel, one by one or in bulk, moves deadlines at once here (other
        # processes reread the table within ``workdays.CHANGES_TTL``).
        post_save.connect(workdays.forget_local_changes, sender=CalendarChange)
        post_delete.connect(workdays.forget_local_changes, sender=CalendarChange)
        for model in (Subdistrict, Region):
            post_save.connect(fragments.counties_changed, sender=model)
            post_delete.connect(fragments.counties_changed, sender=model)
        fragments.connect_signals(
            (Subdistrict, Department, Neighbourhood, Project),
            (Project.departments.through, Supervisor.projects.through),
            Photo,
        )
        # What the public pages show: a change to any of it makes their cached HTML old (issues
        # and photos only for the pages that show them).
        public_cache.connect_signals(
            (
                Subdistrict,
                Department,
                Neighbourhood,
                Project,
                ScopeItem,
                Supervisor,
                Acceptance,
                AcceptanceView,
                Survey,
                SurveyAnswer,
                Consultation,
                ConsultationItem,
                Ballot,
                Patrol,
                CalendarChange,
            ),
            (Project.departments.through, Supervisor.projects.through),
            issue=Issue,
            photo=Photo,
        )
