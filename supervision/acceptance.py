"""竣工验收 with residents (问效于民), and where a project stands after its works.

Services: ``schedule_acceptance`` (the bureau or the project's subdistrict office),
``record_view`` (an invited supervisor, a representative household by its code, or a supervisor
entering a paper form, 代录), ``file_leftover`` (a reservation becomes a 「验收遗留」 issue through
``services.submit_issue``) and ``close_acceptance`` (the rule of ``settings.ACCEPTANCE_MIN_AGREE``
decides). Each one checks who and from which state, locks the acceptance row, writes one
``AcceptanceEvent`` and leaves its trace in the audit log on commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from . import notifications, services, warranty
from . import photos as photo_intake
from .access import consultation_projects
from .models import (
    Acceptance,
    AcceptanceEvent,
    AcceptancePhoto,
    AcceptanceView,
    Household,
    Issue,
    Project,
    Supervisor,
)
from .services import WorkflowError

audit = logging.getLogger("audit")

Opinion = AcceptanceView.Opinion
MAX_NOTE = 1000
# The shortest warranty of the regulation (建设工程质量管理条例 art. 40: electrical, plumbing and
# decoration, 2 years): the project's warranty end until its scope items carry their own.
DEFAULT_WARRANTY_YEARS = 2


def agree_rule() -> Fraction:
    """``settings.ACCEPTANCE_MIN_AGREE`` as a fraction ("2/3", "0.5", "1"); 2/3 when unreadable."""
    text = str(getattr(settings, "ACCEPTANCE_MIN_AGREE", "2/3")).strip()
    try:
        rule = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return Fraction(2, 3)
    return rule if 0 <= rule <= 1 else Fraction(2, 3)


def may_manage(user, project: Project | int) -> bool:
    """The bureau, or the subdistrict office of the project (``access.consultation_projects``:
    the same people who run its consultations)."""
    if not (user is not None and user.is_authenticated and user.is_active):
        return False
    pk = project if isinstance(project, int) else project.pk
    return consultation_projects(user).filter(pk=pk).exists()


def representative_choices(project: Project):
    """The households a representative may be chosen from: those imported for the project's
    consultations."""
    return Household.objects.filter(consultation__project=project).order_by(
        "building", "unit", "room", "pk"
    )


def _lock(acceptance: Acceptance) -> Acceptance:
    return Acceptance.objects.select_for_update().get(pk=acceptance.pk)


def _event(acceptance: Acceptance, kind: str, *, actor=None, view=None, text: str = ""):
    event = AcceptanceEvent.objects.create(
        acceptance=acceptance, kind=kind, actor=actor, view=view, text=text
    )
    transaction.on_commit(
        lambda: audit.info(
            "acceptance %s project=%s event=%s by=%s",
            acceptance.pk,
            acceptance.project_id,
            kind,
            getattr(actor, "username", "-"),
        )
    )
    return event


# --- scheduling --------------------------------------------------------------------------------


def schedule_acceptance(
    project: Project,
    *,
    actor,
    held_on: date,
    place: str,
    households: Iterable[Household],
) -> Acceptance:
    """安排验收: date, place and the residents' representatives; the project's serving
    supervisors are invited with them."""
    if not may_manage(actor, project):
        raise WorkflowError(_("只有住建局或项目所在街道可以安排竣工验收。"), status_code=403)
    place = (place or "").replace("\x00", "").strip()[:100]
    if not place:
        raise WorkflowError(_("请填写验收地点。"), status_code=400, field="place")
    households = list(households)
    if not households:
        raise WorkflowError(_("请至少选择一户居民代表。"), status_code=400, field="households")
    allowed = set(representative_choices(project).values_list("pk", flat=True))
    if any(h.pk not in allowed for h in households):
        raise WorkflowError(_("居民代表须是本项目征询名单中的住户。"), status_code=400)
    rule = agree_rule()
    try:
        with transaction.atomic():
            locked = Project.objects.select_for_update().get(pk=project.pk)
            if locked.status not in (Project.Status.COMPLETED,):
                raise WorkflowError(
                    _("项目当前状态为「%(s)s」，完工后才能安排竣工验收。")
                    % {"s": locked.get_status_display()}
                )
            if locked.acceptances.filter(status=Acceptance.Status.SCHEDULED).exists():
                raise WorkflowError(_("这个项目已经安排了一次验收，请先结束那一次。"))
            acceptance = Acceptance.objects.create(
                project=locked,
                held_on=held_on,
                place=place,
                agree_numerator=rule.numerator,
                agree_denominator=rule.denominator,
                no_open_urgent=bool(getattr(settings, "ACCEPTANCE_NO_OPEN_URGENT", True)),
                scheduled_by=actor,
            )
            today = timezone.localdate()
            supervisors = [
                s.user
                for s in Supervisor.objects.filter(projects=locked).select_related("user")
                if s.is_serving(today) and s.user.is_active
            ]
            AcceptanceView.objects.bulk_create(
                [
                    AcceptanceView(acceptance=acceptance, role="supervisor", user=user)
                    for user in supervisors
                ]
                + [
                    AcceptanceView(acceptance=acceptance, role="representative", household=h)
                    for h in {h.pk: h for h in households}.values()
                ]
            )
            _event(
                acceptance,
                AcceptanceEvent.Kind.SCHEDULED,
                actor=actor,
                text=_("%(d)s 在%(p)s") % {"d": held_on, "p": place},
            )
            notifications.notify_about_project(
                supervisors,
                project=locked,
                text=_("「%(project)s」定于 %(d)s 在%(p)s竣工验收，请到场查看并记录您的意见。")
                % {"project": locked.name, "d": held_on, "p": place},
                url=reverse("acceptance-opinion", args=[acceptance.pk]),
                topic=f"acceptance:{acceptance.pk}",
            )
    except IntegrityError:
        # Two schedulers at once: the one-scheduled-per-project constraint let one through.
        raise WorkflowError(_("这个项目已经安排了一次验收，请先结束那一次。")) from None
    return acceptance


# --- views -------------------------------------------------------------------------------------


def invited_view(acceptance: Acceptance, user) -> AcceptanceView | None:
    if not (user is not None and user.is_authenticated):
        return None
    return acceptance.views.filter(user=user).first()


def record_view(
    acceptance: Acceptance,
    *,
    opinion: str,
    note: str = "",
    photos: Sequence = (),
    actor=None,
    household: Household | None = None,
    entered_by=None,
) -> AcceptanceView:
    """记录意见: ``actor`` (an invited supervisor) speaks for themselves; ``household`` (proved by
    its code) for itself; ``household`` with ``entered_by`` is a paper form entered by an
    invited supervisor (代录). Once recorded, a view stands: a second one is refused."""
    if opinion not in (Opinion.AGREE, Opinion.RESERVATION):
        raise WorkflowError(_("请选择「同意验收」或「有保留意见」。"), status_code=400)
    note = (note or "").replace("\x00", "").strip()[:MAX_NOTE]
    if opinion == Opinion.RESERVATION and not note:
        raise WorkflowError(_("有保留意见时请写明哪里不满意。"), status_code=400, field="note")
    clerk = entered_by if household is not None else actor
    if clerk is not None and not services.is_serving_supervisor(clerk):
        raise WorkflowError(_("只有受邀参加验收的在任监督员可以记录意见。"), status_code=403)
    try:
        prepared = photo_intake.prepare_photos(photos)
    except photo_intake.PhotoError as error:
        raise WorkflowError(str(error), status_code=400, field="photos") from None
    with transaction.atomic():
        locked = _lock(acceptance)
        if clerk is not None and not locked.views.filter(user=clerk).exists():
            raise WorkflowError(_("您不在这次验收的受邀名单中，不能记录意见。"), status_code=403)
        if household is not None:
            view = locked.views.select_for_update().filter(household=household).first()
            if view is None:
                raise WorkflowError(_("这一户不是本次验收的居民代表。"), status_code=403)
        elif actor is not None:
            view = locked.views.select_for_update().get(user=actor)
        else:
            raise WorkflowError(_("请先登录，或输入居民代表的投票码。"), status_code=403)
        if not locked.is_open:
            raise WorkflowError(
                _("这次验收已经结束（%(s)s），不能再记录意见。")
                % {"s": locked.get_status_display()}
            )
        if view.opinion:
            raise WorkflowError(
                _("%(who)s 已经记录过意见，不能重复提交。") % {"who": view.public_name}
            )
        view.opinion = opinion
        view.note = note
        view.entered_by = entered_by if household is not None else None
        view.recorded_at = timezone.now()
        view.save(update_fields=["opinion", "note", "entered_by", "recorded_at"])
        for photo in prepared:
            web, thumb = photo_intake.store(photo)
            AcceptancePhoto.objects.create(
                view=view, image=web, thumbnail=thumb, width=photo.width, height=photo.height
            )
        text = view.get_opinion_display()
        if view.entered_by_id:
            text += _("（%(me)s 代录纸质意见）") % {"me": entered_by}
        _event(locked, AcceptanceEvent.Kind.RECORDED, actor=clerk, view=view, text=text)
    return view


# --- reservations become issues ----------------------------------------------------------------


def file_leftover(view: AcceptanceView, *, actor, deadline: date) -> Issue:
    """A reservation becomes an issue marked 「验收遗留」, filed by an invited supervisor through
    ``services.submit_issue`` (routing, numbering and the issue's own events stay there), with the
    deadline asked for its fix. Filing one twice gives back the same issue."""
    acceptance = view.acceptance
    if not services.is_serving_supervisor(actor) or invited_view(acceptance, actor) is None:
        raise WorkflowError(
            _("只有受邀参加验收的在任监督员可以把保留意见转为问题。"), status_code=403
        )
    if view.opinion != Opinion.RESERVATION:
        raise WorkflowError(_("这条意见不是保留意见，不需要转为问题。"), status_code=400)
    if view.issue_id:
        return view.issue
    if deadline is None or deadline < timezone.localdate():
        raise WorkflowError(_("整改期限不能早于今天。"), status_code=400, field="deadline")
    with transaction.atomic():
        locked = _lock(acceptance)
        fresh = AcceptanceView.objects.select_for_update().get(pk=view.pk)
        if fresh.issue_id:
            return fresh.issue
        photos = _stored_photos(fresh)
        issue = services.submit_issue(
            reporter=actor,
            project=locked.project,
            # With the site photos taken at the acceptance, a quality problem; a reservation
            # without one is a residents' opinion (居民意见), the category that needs no photo.
            category=Issue.Category.QUALITY if photos else Issue.Category.OPINION,
            photos=photos,
            title=(_("验收遗留：") + fresh.note.splitlines()[0])[:100],
            description=_("%(who)s 在 %(d)s 竣工验收时的保留意见：%(note)s\n要求整改期限：%(due)s")
            % {"who": fresh.public_name, "d": locked.held_on, "note": fresh.note, "due": deadline},
            building=fresh.household.building if fresh.household_id else _("全小区"),
            unit=fresh.household.unit if fresh.household_id else "",
            households=1,
            idempotency_key=f"acceptance-view-{fresh.pk}",
        )
        fresh.issue = issue
        fresh.deadline = deadline
        fresh.save(update_fields=["issue", "deadline"])
        _event(
            locked,
            AcceptanceEvent.Kind.LEFTOVER,
            actor=actor,
            view=fresh,
            text=_("%(ref)s，整改期限 %(due)s") % {"ref": issue.reference, "due": deadline},
        )
    view.issue, view.deadline = issue, deadline
    return issue


def _stored_photos(view: AcceptanceView) -> list:
    """The view's photos as files again, read from storage (their web copies)."""
    files = []
    for photo in view.photos.all():
        try:
            with default_storage.open(photo.image.name) as handle:
                files.append(photo_intake.named(handle.read(), "acceptance.jpg"))
        except OSError:
            continue  # a file lost from storage: the issue goes without it
    return files


# --- the tally and the close -------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    representatives: int
    agree: int
    reservations: int
    pending: int
    supervisors: int
    supervisors_agree: int
    supervisors_reservations: int
    open_urgent: int
    needed: Fraction
    passes: bool
    reasons: list[str]


def tally(acceptance: Acceptance, views: Sequence[AcceptanceView] | None = None) -> Tally:
    """The count and what the rule says of it (``views`` when the caller already has them)."""
    views = list(acceptance.views.all()) if views is None else list(views)
    reps = [v for v in views if v.role == AcceptanceView.Role.REPRESENTATIVE]
    sups = [v for v in views if v.role == AcceptanceView.Role.SUPERVISOR]
    agree = sum(v.opinion == Opinion.AGREE for v in reps)
    needed = Fraction(acceptance.agree_numerator, acceptance.agree_denominator)
    open_urgent = (
        Issue.objects.filter(project=acceptance.project_id, urgency=Issue.Urgency.URGENT)
        .open()
        .count()
    )
    reasons = []
    if not reps or Fraction(agree, len(reps)) < needed:
        reasons.append(
            _("同意验收的居民代表 %(a)d / %(n)d 户，未达到 %(rule)s。")
            % {"a": agree, "n": len(reps), "rule": f"{needed.numerator}/{needed.denominator}"}
        )
    if acceptance.no_open_urgent and open_urgent:
        reasons.append(_("项目还有 %(n)d 个紧急问题未办结。") % {"n": open_urgent})
    return Tally(
        representatives=len(reps),
        agree=agree,
        reservations=sum(v.opinion == Opinion.RESERVATION for v in reps),
        pending=sum(not v.opinion for v in views),
        supervisors=len(sups),
        supervisors_agree=sum(v.opinion == Opinion.AGREE for v in sups),
        supervisors_reservations=sum(v.opinion == Opinion.RESERVATION for v in sups),
        open_urgent=open_urgent,
        needed=needed,
        passes=not reasons,
        reasons=reasons,
    )


def close_acceptance(acceptance: Acceptance, *, actor) -> Acceptance:
    """结束验收: passed or failed by the rule, with the reasons; a passed one marks the project
    验收 with its date. Of two simultaneous closes exactly one wins."""
    if not may_manage(actor, acceptance.project_id):
        raise WorkflowError(_("只有住建局或项目所在街道可以结束验收。"), status_code=403)
    with transaction.atomic():
        locked = _lock(acceptance)
        if not locked.is_open:
            raise WorkflowError(
                _("这次验收已经结束（%(s)s）。") % {"s": locked.get_status_display()}
            )
        result = tally(locked)
        locked.status = Acceptance.Status.PASSED if result.passes else Acceptance.Status.FAILED
        locked.outcome = (
            _("同意验收的居民代表 %(a)d / %(n)d 户，无未办结的紧急问题，验收通过。")
            % {"a": result.agree, "n": result.representatives}
            if result.passes
            else " ".join(result.reasons) + _("可整改后重新组织验收。")
        )
        locked.closed_by = actor
        locked.closed_at = timezone.now()
        locked.save(update_fields=["status", "outcome", "closed_by", "closed_at", "updated_at"])
        if result.passes:
            project = Project.objects.select_for_update().get(pk=locked.project_id)
            project.status = Project.Status.ACCEPTED
            project.acceptance_actual = locked.held_on
            project._history_user = actor
            project.save(update_fields=["status", "acceptance_actual", "updated_at"])
        _event(
            locked,
            AcceptanceEvent.Kind.PASSED if result.passes else AcceptanceEvent.Kind.FAILED,
            actor=actor,
            text=locked.outcome,
        )
    acceptance.status, acceptance.outcome = locked.status, locked.outcome
    return acceptance


# --- the project's life after the works --------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    key: str
    label: str
    done: bool
    current: bool
    note: str


def warranty_ends_on(project: Project) -> date | None:
    """The end of the project's warranty: the last of its scope items' (``warranty.warranty_ends``,
    the one home of the periods), or the regulation's shortest period without items."""
    if not project.acceptance_actual:
        return None
    ends = [warranty.warranty_ends(item, project) for item in project.scope_items.all()]
    if ends:
        return max(ends)
    return warranty.add_months(project.acceptance_actual, 12 * DEFAULT_WARRANTY_YEARS)


def manager_label(project: Project) -> str:
    """Who runs the neighbourhood after handover: the property manager's name, or the way
    chosen with its contact."""
    if not project.manager_kind:
        return ""
    if project.manager_id:
        return str(project.manager)
    contact = " ".join(part for part in (project.manager_contact, project.manager_phone) if part)
    label = str(project.get_manager_kind_display())
    return f"{label}（{contact}）" if contact else label


def life_stages(project: Project, today: date | None = None) -> list[Stage]:
    """完工 → 竣工验收 → 保修期 → 长效管理: where the project stands after its works."""
    today = today or timezone.localdate()
    S = Project.Status
    completed = project.status in (S.COMPLETED, S.ACCEPTED)
    accepted = project.status == S.ACCEPTED
    ends = warranty_ends_on(project) if accepted else None
    # The warranty runs its course even when the manager takes over earlier; the manager is
    # named on the stage as soon as the handover is recorded.
    in_warranty = accepted and ends is not None and today <= ends
    managed = accepted and not in_warranty
    stages = [
        Stage(
            "completed",
            _("完工"),
            completed,
            project.status == S.COMPLETED,
            f"{project.actual_end:%Y-%m-%d}" if project.actual_end else "",
        ),
        Stage(
            "acceptance",
            _("竣工验收"),
            accepted,
            False,
            f"{project.acceptance_actual:%Y-%m-%d}" if project.acceptance_actual else "",
        ),
        Stage(
            "warranty",
            _("保修期"),
            managed,
            in_warranty,
            _("至 %(d)s") % {"d": f"{ends:%Y-%m-%d}"} if ends else "",
        ),
        Stage(
            "management",
            _("长效管理"),
            False,
            managed,
            manager_label(project),
        ),
    ]
    return stages
