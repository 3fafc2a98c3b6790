"""Who may reach what: the access helpers the pages, the panel, the API and Open311 share.

Each rule has one home. Issues: ``Issue.objects.visible_to`` (the rule itself lives in
``models.issue_visibility``); events, photos and extension requests follow their issue
(``IssueRelatedQuerySet.visible_to``). Projects: ``watched_projects`` / ``watches`` for a
supervisor, ``models.department_projects`` for a department. Residents' letters: ``letters_for``
(a supervisor's projects) and ``letter_escalations_for`` (the panel). Everything hangs on a
county's programme (``models.programme``): a county's bureau and supervisors reach nothing of
another county, the oversight every county below it (``in_programme_only``). The service
functions check again under the row lock; these only decide what a person is shown and what
answers 404.
"""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, Q, QuerySet
from django.shortcuts import get_object_or_404

from .models import (
    PROJECT_COUNTY,
    Consultation,
    Department,
    Issue,
    Letter,
    Patrol,
    Project,
    department_projects,
    programme,
)

M = TypeVar("M", bound=Model)


def in_programme_only(user, queryset: QuerySet[M], path: str) -> QuerySet[M]:
    """``queryset``'s rows whose county-level region (at ``path``: ``"region"`` for a department
    or a subdistrict, ``PROJECT_COUNTY`` for a project, ``"project__" + PROJECT_COUNTY`` for what
    hangs on a project) is in ``user``'s programme; all of them for a superuser."""
    condition = programme(user, path)
    return queryset if condition is None else queryset.filter(condition)


def programme_at(user, path: str) -> Q | None:
    """The condition on rows whose county-level region is at ``path`` (``"region"`` for a
    subdistrict or a department, ``PROJECT_COUNTY`` for a project) that a person chooses from:
    their county for a supervisor, a bureau coordinator or a department's staff, every county
    below it for the oversight (``programme``); no restriction (None) for a superuser and for
    the public and people of no role, who choose among public issues."""
    if user is None or not user.is_authenticated or user.is_superuser:
        return None
    if user.is_department_staff:
        # A department works in its county (a subquery: no query of its own).
        county = Department.objects.filter(pk=user.department_id).values("region")[:1]
        return Q(**{path: county})
    if user.is_bureau or user.is_supervisor or user.is_oversight:
        return programme(user, path)
    return None


def issue_for(user, pk: int, queryset: QuerySet[Issue] | None = None) -> Issue:
    """The issue if ``user`` may see it, else 404: another scope's issue does not exist for them."""
    queryset = queryset if queryset is not None else Issue.objects.all()
    return get_object_or_404(queryset.visible_to(user), pk=pk)


def watched_projects(user) -> QuerySet[Project]:
    """The projects a supervisor was appointed to watch (监督项目); none for anybody else.

    Whether the appointment still runs is ``services.is_serving_supervisor``'s question.
    """
    supervisor = getattr(user, "supervisor", None) if user.is_authenticated else None
    if supervisor is None or not user.is_supervisor:
        return Project.objects.none()
    # Within their county: an appointment on another county's project (made before regions,
    # or by mistake) gives no access there. A supervisor's county is their region: a plain
    # condition on their few projects, with no need to ask ``programme`` about other counties.
    return supervisor.projects.filter(**{PROJECT_COUNTY: user.region_id})


def watches(user, project: Project | int) -> bool:
    """Whether ``user`` was appointed to watch ``project``."""
    pk = project if isinstance(project, int) else project.pk
    return watched_projects(user).filter(pk=pk).exists()


def letters_for(user) -> QuerySet[Letter]:
    """The residents' letters a supervisor carries: those of the projects they watch. Nobody else
    reaches a letter through the site (the subdistrict office sees the escalated ones in the
    panel); the resident who wrote one follows it by its 查询码."""
    return Letter.objects.filter(project__in=watched_projects(user))


def letter_escalations_for(user) -> QuerySet[Letter]:
    """Untriaged letters escalated past their limit (转街道督促): every one of its county for the
    bureau; for a subdistrict office, those of its subdistrict or of the projects it works on."""
    escalated = Letter.objects.filter(escalated_at__isnull=False)
    if user.is_active and user.is_bureau:
        return in_programme_only(user, escalated, f"project__{PROJECT_COUNTY}")
    department = user.department if user.is_active and user.is_department_staff else None
    if department is None or department.kind != department.Kind.SUBDISTRICT_OFFICE:
        return escalated.none()
    return escalated.filter(
        department_projects(department.pk, "project__")
        | Q(project__neighbourhood__subdistrict=department.subdistrict_id)
    ).distinct()


def consultations_managed_by(user) -> QuerySet[Consultation]:
    """The bureau manages every consultation of its county; a subdistrict office those of the
    projects it works on or that lie in its subdistrict. Contractors never handle the residents'
    vote on their own works."""
    consultations = Consultation.objects.all()
    if user.is_active and user.is_bureau:
        return in_programme_only(user, consultations, f"project__{PROJECT_COUNTY}")
    department = user.department if user.is_active and user.is_department_staff else None
    if department is None or department.kind != department.Kind.SUBDISTRICT_OFFICE:
        return consultations.none()
    return consultations.filter(
        department_projects(department.pk, "project__")
        | Q(project__neighbourhood__subdistrict=department.subdistrict_id)
    ).distinct()


def consultation_projects(user) -> QuerySet[Project]:
    """The projects ``user`` may start a consultation on: the same rule as
    ``consultations_managed_by``, for projects."""
    if user.is_active and user.is_bureau:
        return in_programme_only(user, Project.objects.all(), PROJECT_COUNTY)
    department = user.department if user.is_active and user.is_department_staff else None
    if department is None or department.kind != department.Kind.SUBDISTRICT_OFFICE:
        return Project.objects.none()
    return Project.objects.filter(
        department_projects(department.pk) | Q(neighbourhood__subdistrict=department.subdistrict_id)
    ).distinct()


def patrols_for(user) -> QuerySet[Patrol]:
    """Supervisors and the bureau read every patrol of their county, the oversight every one
    below it; a department those on its projects."""
    patrols = Patrol.objects.all()
    if user.is_bureau or user.is_supervisor or user.is_oversight:
        return in_programme_only(user, patrols, f"project__{PROJECT_COUNTY}")
    if user.is_department_staff:
        return patrols.filter(department_projects(user.department_id, "project__")).distinct()
    return patrols.none()
