"""The filters of the issue list (django-filter)."""

from __future__ import annotations

from functools import partial

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, QuerySet
from django.forms.utils import flatatt
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from . import search
from .access import programme_at
from .fragments import cached_rows, model_choices
from .models import (
    PROJECT_COUNTY,
    Department,
    Issue,
    Project,
    Subdistrict,
    department_projects,
)


class PlainSelect(forms.Select):
    """A ``<select>`` built in Python. Django's renderer runs a template per option, which at
    province scale (hundreds of departments) cost a third of the issue list's time."""

    def render(self, name, value, attrs=None, renderer=None) -> str:
        chosen = set(self.format_value(value))

        def options(choices) -> str:
            return "".join(
                f'<optgroup label="{escape(key)}">{options(label)}</optgroup>'
                if isinstance(label, (list, tuple))
                else f'<option value="{escape(key)}"{" selected" if str(key) in chosen else ""}>'
                f"{escape(label)}</option>"
                for key, label in choices
            )

        options = options(self.choices)
        attributes = flatatt(self.build_attrs(self.attrs, {**(attrs or {}), "name": name}))
        return format_html("<select{}>{}</select>", attributes, mark_safe(options))


def programme_name(user) -> str:
    """A name for the choices ``programme_at`` gives, shared by everyone who has the same."""
    if user is None or not user.is_authenticated or user.is_superuser:
        return "all"
    if user.is_department_staff:
        return f"department-{user.department_id}"
    if user.is_bureau or user.is_supervisor or user.is_oversight:
        return f"{user.role}-{user.region_id}" if user.is_active else "none"
    return "all"


def projects_of(user) -> tuple[QuerySet[Project], str]:
    """The projects a person works with (not every project of the province), and a name for
    that set that everyone who sees the same projects shares."""
    projects = Project.objects.order_by("name").only("pk", "name")
    if user is not None and user.is_authenticated and user.is_department_staff:
        mine = department_projects(user.department_id)
        return projects.filter(mine).distinct(), f"department-{user.department_id}"
    condition = programme_at(user, PROJECT_COUNTY)
    if condition is not None:
        projects = projects.filter(condition)
    if user is not None and user.is_authenticated and user.is_supervisor:
        supervisor = getattr(user, "supervisor", None)
        if supervisor is not None:
            # The group is transparent: the issues of every project of the county are listed,
            # so every one can be chosen; their own come first (``IssueFilter``).
            return projects, f"supervisor-{supervisor.pk}-{user.region_id}"
    return projects, programme_name(user)


class IssueFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("字词"), method="search")
    project = django_filters.ModelChoiceFilter(
        label=_("项目"), queryset=Project.objects.order_by("name"), empty_label=_("全部项目")
    )
    subdistrict = django_filters.ModelChoiceFilter(
        label=_("街道"),
        field_name="project__neighbourhood__subdistrict",
        queryset=Subdistrict.objects.all(),
        empty_label=_("全部街道"),
    )
    status = django_filters.ChoiceFilter(
        label=_("状态"), choices=Issue.Status.choices, empty_label=_("全部状态")
    )
    category = django_filters.ChoiceFilter(
        label=_("类别"), choices=Issue.Category.choices, empty_label=_("全部类别")
    )
    department = django_filters.ModelChoiceFilter(
        label=_("承办部门"),
        queryset=Department.objects.filter(is_active=True).order_by("kind", "name"),
        empty_label=_("全部部门"),
    )
    overdue = django_filters.BooleanFilter(
        label=_("只看超期"), method="filter_overdue", widget=forms.CheckboxInput
    )
    mine = django_filters.BooleanFilter(
        label=_("只看我反映的"), method="filter_mine", widget=forms.CheckboxInput
    )

    class Meta:
        model = Issue
        fields = ["q", "project", "subdistrict", "status", "category", "department"]

    def __init__(self, *args, ranked: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        # The issue list finds and ranks the words itself (``search.page``): here they filter.
        self.ranked = ranked
        user = getattr(self.request, "user", None)
        self.filters["project"].queryset = projects_of(user)[0]
        # Subdistricts and departments of the person's county (the oversight's: below it).
        county = programme_at(user, "region")
        if county is not None:
            for name in ("subdistrict", "department"):
                self.filters[name].queryset = self.filters[name].queryset.filter(county)
        # Plain Bootstrap widgets: rendering them through crispy cost most of the page's time.
        for name, field in self.form.fields.items():
            css = (
                "form-check-input"
                if name in ("overdue", "mine")
                else ("form-select" if hasattr(field, "choices") else "form-control")
            )
            if type(field.widget) is forms.Select:
                # Projects, subdistricts and departments: their rows are read once per change.
                if name == "project" and self._supervisor():
                    # Read when the form is shown (the API only validates).
                    choices = partial(self._own_projects_first, field.empty_label)
                elif isinstance(field, forms.ModelChoiceField):
                    choices = model_choices(field)
                else:
                    choices = field.widget.choices
                field.widget = PlainSelect(attrs=field.widget.attrs, choices=choices)
            field.widget.attrs.setdefault("class", css)

    def _supervisor(self):
        user = getattr(self.request, "user", None)
        if user and user.is_authenticated and user.is_supervisor:
            return getattr(user, "supervisor", None)
        return None

    def _own_projects_first(self, empty_label: str) -> list:
        """Every project of their county, a supervisor's own in a group of their own above the
        others (one query, kept with the catalogue's version like the other choices)."""
        own = Exists(
            Project.supervisors.through.objects.filter(
                project=OuterRef("pk"), supervisor=self._supervisor()
            )
        )
        projects = self.filters["project"].queryset  # their county's (``projects_of``)
        rows = cached_rows(
            projects.annotate(own=own).order_by("name").values_list("pk", "name", "own")
        )
        groups: dict[bool, list] = {True: [], False: []}
        for pk, name, is_own in rows:
            groups[bool(is_own)].append((str(pk), name))
        if not groups[True]:
            return [("", empty_label), *groups[False]]
        return [
            ("", empty_label),
            (_("我监督的项目"), groups[True]),
            (_("其他项目"), groups[False]),
        ]

    def search(self, queryset: QuerySet[Issue], name: str, value: str) -> QuerySet[Issue]:
        """Words in the reference, title or description, through the search index."""
        if self.ranked or not value.strip():
            return queryset
        return search.matching(queryset, value)

    def filter_overdue(self, queryset: QuerySet[Issue], name: str, value) -> QuerySet[Issue]:
        return queryset.overdue() if value else queryset

    def filter_mine(self, queryset: QuerySet[Issue], name: str, value) -> QuerySet[Issue]:
        user = getattr(self.request, "user", None)
        if value and user is not None and user.is_authenticated:
            return queryset.filter(reporter=user)
        return queryset
