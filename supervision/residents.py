"""Residents decide (改不改、改什么、怎么改、如何管) and supervisors watch the works.

Services for consultations (household import, ballots, the 2/3 rule, adopting the result),
patrols (the checklist, and a problem turned into an issue with one tap) and the supervisors
themselves (appointed and dismissed by the bureau).
"""

from __future__ import annotations

import csv
import io
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import load_workbook

from accounts.models import User
from api.tokens import revoke_all

from . import photos as photo_intake
from . import services
from .access import watches
from .addresses import address
from .models import (
    Ballot,
    BallotAnswer,
    Consultation,
    ConsultationItem,
    Household,
    Issue,
    Neighbourhood,
    Patrol,
    PatrolCheck,
    PatrolPhoto,
    Project,
    ScopeItem,
    Supervisor,
    in_programme,
    project_county,
)
from .services import WorkflowError

audit = logging.getLogger("audit")

# 12 characters from 31 unambiguous ones: about 59 bits, printed in groups of four.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
MAX_HOUSEHOLDS = 5000


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch in CODE_ALPHABET)[:CODE_LENGTH]


# --- households --------------------------------------------------------------------------------


@dataclass
class ImportReport:
    created: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, why)


def _rows_from_upload(upload) -> list[list[str]]:
    data = upload.read(5 * 1024 * 1024 + 1)
    if len(data) > 5 * 1024 * 1024:
        raise WorkflowError(_("文件超过 5 MB，请分批导入。"), status_code=400)
    if data[:2] == b"PK":  # an .xlsx file is a zip archive
        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception:  # openpyxl raises many kinds for a damaged file
            raise WorkflowError(
                _("无法读取这个 Excel 文件，请另存为 .xlsx 或 .csv 后再导入。"), status_code=400
            ) from None
        sheet = book.worksheets[0]
        return [
            ["" if v is None else str(v).replace("\x00", "").strip() for v in row]
            for row in sheet.iter_rows(values_only=True)
        ]
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise WorkflowError(_("无法识别文件编码，请用 UTF-8 或 GBK 保存的 CSV。"), status_code=400)
    text = text.replace("\x00", "")  # NUL is never part of an address; PostgreSQL refuses it
    try:
        return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error:
        raise WorkflowError(
            _("CSV 文件格式有误，请用 Excel 另存为 CSV（UTF-8）后再导入。"), status_code=400
        ) from None


def import_households(consultation: Consultation, upload) -> ImportReport:
    """Households from an Excel or CSV file: columns 楼栋, 单元, 室 (a header row is skipped).
    Good rows are imported, each with a fresh code; bad rows are reported, none half-saved."""
    rows = _rows_from_upload(upload)
    report = ImportReport()
    existing = set(consultation.households.values_list("building", "unit", "room"))
    seen: set[tuple[str, str, str]] = set()
    fresh: list[Household] = []
    for number, row in enumerate(rows, start=1):
        cells = (row + ["", "", ""])[:3]
        building, unit, room = (c.strip() for c in cells)
        if number == 1 and building in ("楼栋", "楼号", "building", "幢"):
            continue
        if not any(cells) and len(row) <= 3:
            continue
        if not building or not room:
            report.rejected.append((number, _("楼栋和室号不能为空")))
            continue
        if len(building) > 20 or len(unit) > 20 or len(room) > 20:
            report.rejected.append((number, _("内容过长（每格最多 20 个字）")))
            continue
        key = (building, unit, room)
        if key in existing or key in seen:
            report.rejected.append((number, _("与已有住户重复：%(h)s") % {"h": address(*key)}))
            continue
        seen.add(key)
        fresh.append(
            Household(
                consultation=consultation, building=building, unit=unit, room=room, code=new_code()
            )
        )
    if len(existing) + len(fresh) > MAX_HOUSEHOLDS:
        raise WorkflowError(_("一次征询最多 %(n)d 户。") % {"n": MAX_HOUSEHOLDS}, status_code=400)
    with transaction.atomic():
        Household.objects.bulk_create(fresh)
    report.created = len(fresh)
    return report


# --- ballots -----------------------------------------------------------------------------------


def cast_ballot(
    consultation: Consultation,
    household: Household,
    answers: dict[int, tuple[bool, str]],
    *,
    entered_by=None,
) -> Ballot:
    """Record (or change, until the close) a household's ballot. ``answers`` maps every item's
    id to (agree, chosen option). ``entered_by`` is the supervisor entering a paper ballot."""
    if household.consultation_id != consultation.pk:
        raise WorkflowError(_("投票码与本次征询不符。"), status_code=400)
    if not consultation.is_open():
        if consultation.is_closed():
            raise WorkflowError(
                _("征询已于 %(d)s 截止，不能再投票。") % {"d": consultation.closes_on}
            )
        raise WorkflowError(_("征询将于 %(d)s 开始，请届时再投票。") % {"d": consultation.opens_on})
    if entered_by is not None:
        if not services.is_serving_supervisor(entered_by):
            raise WorkflowError(_("只有在任的群众监督员可以代录纸质选票。"), status_code=403)
        if not watches(entered_by, consultation.project_id):
            raise WorkflowError(_("您没有受聘监督这个项目，不能代录它的选票。"), status_code=403)
        own = Ballot.objects.filter(household=household, entered_by__isnull=True).exists()
        if own:
            raise WorkflowError(_("这一户已经自己在线投票，不能用纸质选票覆盖。"))
    items = list(consultation.items.all())
    missing = [item.text for item in items if item.pk not in answers]
    if missing:
        raise WorkflowError(
            _("请对每一项都作出选择：%(items)s") % {"items": "、".join(missing)}, status_code=400
        )
    for item in items:
        agree, option = answers[item.pk]
        if option and option not in item.option_list():
            raise WorkflowError(
                _("“%(item)s”没有这个选项。") % {"item": item.text}, status_code=400
            )
    try:
        with transaction.atomic():
            ballot, created = Ballot.objects.select_for_update().get_or_create(
                household=household,
                defaults={"consultation": consultation, "entered_by": entered_by},
            )
            if not created:
                ballot.entered_by = entered_by
                ballot.save(update_fields=["entered_by", "updated_at"])
                ballot.answers.all().delete()
            BallotAnswer.objects.bulk_create(
                [
                    BallotAnswer(
                        ballot=ballot,
                        item=item,
                        agree=answers[item.pk][0],
                        option=answers[item.pk][1],
                    )
                    for item in items
                ]
            )
    except IntegrityError:
        # Two votes for one household at once: the other one was saved first; apply ours over it.
        return cast_ballot(consultation, household, answers, entered_by=entered_by)
    return ballot


@dataclass(frozen=True)
class ItemResult:
    item: ConsultationItem
    agree: int
    approval: Fraction | None
    # The rule applied to the ballots counted so far: what adopting the result would take.
    adopted: bool
    options: list[tuple[str, int]]
    # What a person is told: ``pending`` while the vote has not closed (never 「未通过」 for a
    # vote still open, or not yet open), then ``adopted`` or ``rejected``.
    verdict: str


@dataclass(frozen=True)
class Result:
    households: int
    ballots: int
    participation: Fraction | None
    quorum: bool
    items: list[ItemResult]
    paper_ballots: int
    # ``upcoming``, ``open`` or ``closed``: only a closed consultation has a result.
    state: str

    @property
    def closed(self) -> bool:
        return self.state == "closed"


def consultation_state(consultation: Consultation, today: date | None = None) -> str:
    """``upcoming`` before the first day, ``open`` through the last, ``closed`` after it."""
    if consultation.is_closed(today):
        return "closed"
    return "open" if consultation.is_open(today) else "upcoming"


def results(consultation: Consultation) -> Result:
    """Participation n/N and approval per item, by the consultation's rule (SQL counts).

    Items are 通过 or 未通过 only once the consultation has closed; until then each one's
    ``verdict`` is ``pending`` and the figures are the live count."""
    state = consultation_state(consultation)
    households = consultation.households.count()
    ballots = consultation.ballots.aggregate(
        n=Count("pk"), paper=Count("pk", filter=Q(entered_by__isnull=False))
    )
    n = ballots["n"]
    participation = Fraction(n, households) if households else None
    needed = Fraction(consultation.participation_numerator, consultation.participation_denominator)
    approval_needed = Fraction(consultation.approval_numerator, consultation.approval_denominator)
    quorum = participation is not None and participation >= needed
    agree_counts = dict(
        BallotAnswer.objects.filter(ballot__consultation=consultation, agree=True)
        .values("item")
        .annotate(c=Count("pk"))
        .values_list("item", "c")
    )
    option_counts: dict[int, list[tuple[str, int]]] = {}
    for item_id, option, count in (
        BallotAnswer.objects.filter(ballot__consultation=consultation)
        .exclude(option="")
        .values("item", "option")
        .annotate(c=Count("pk"))
        .order_by("item", "-c")
        .values_list("item", "option", "c")
    ):
        option_counts.setdefault(item_id, []).append((option, count))
    items = []
    for item in consultation.items.all():
        agree = agree_counts.get(item.pk, 0)
        approval = Fraction(agree, n) if n else None
        adopted = quorum and approval is not None and approval >= approval_needed
        verdict = "pending" if state != "closed" else ("adopted" if adopted else "rejected")
        items.append(
            ItemResult(item, agree, approval, adopted, option_counts.get(item.pk, []), verdict)
        )
    return Result(households, n, participation, quorum, items, ballots["paper"], state)


def apply_result(consultation: Consultation, *, actor) -> list[ScopeItem]:
    """After the close, the adopted scope items become the project's scope items (once)."""
    if not (actor.is_active and (actor.is_bureau or actor.is_department_staff)):
        raise WorkflowError(_("只有住建局或街道可以采纳征询结果。"), status_code=403)
    if actor.is_bureau and not in_programme(actor, project_county(consultation.project_id)):
        raise WorkflowError(_("这次征询不在本地的改造计划内。"), status_code=404)
    if not consultation.is_closed():
        raise WorkflowError(_("征询还没有截止，截止后才能采纳结果。"))
    with transaction.atomic():
        locked = Consultation.objects.select_for_update().get(pk=consultation.pk)
        if locked.applied_at:
            raise WorkflowError(_("这次征询的结果已经采纳过了。"))
        outcome = results(locked)
        created = [
            ScopeItem.objects.create(
                project=locked.project,
                area=result.item.area,
                description=_scope_text(result),
                budget=result.item.budget,
            )
            for result in outcome.items
            if result.adopted and result.item.kind == ConsultationItem.Kind.SCOPE
        ]
        locked.applied_at = timezone.now()
        locked.save(update_fields=["applied_at", "updated_at"])
    consultation.applied_at = locked.applied_at
    return created


def _scope_text(result: ItemResult) -> str:
    if result.options:
        return f"{result.item.text}（{result.options[0][0]}）"[:200]
    return result.item.text


# --- patrols -----------------------------------------------------------------------------------

CHECK_CATEGORY = {
    Patrol.Check.QUALITY: Issue.Category.QUALITY,
    Patrol.Check.PROGRESS: Issue.Category.PROGRESS,
    Patrol.Check.SAFETY: Issue.Category.SAFETY,
    Patrol.Check.FENCING: Issue.Category.SAFETY,
    Patrol.Check.DUST: Issue.Category.CIVILISED,
    Patrol.Check.NOISE: Issue.Category.CIVILISED,
    Patrol.Check.DEBRIS: Issue.Category.CIVILISED,
    Patrol.Check.ACCESS: Issue.Category.OTHER,
}


@dataclass(frozen=True)
class CheckInput:
    item: str
    ok: bool
    note: str = ""
    photos: Sequence = ()


def log_patrol(
    *, supervisor, project: Project, checks: Iterable[CheckInput], note: str = ""
) -> Patrol:
    """A supervisor's site visit; each problem has a note and may have photos."""
    if not services.is_serving_supervisor(supervisor):
        raise WorkflowError(_("只有在任的群众监督员可以记录巡查。"), status_code=403)
    if not watches(supervisor, project):
        raise WorkflowError(_("您没有受聘监督这个项目，不能记录它的巡查。"), status_code=403)
    checks = list(checks)
    for check in checks:
        if not check.ok and not check.note.strip():
            raise WorkflowError(
                _("“%(item)s”有问题时请写明情况。") % {"item": Patrol.Check(check.item).label},
                status_code=400,
            )
    prepared = {}
    try:
        # One count and one pixel budget for the whole patrol, before any photo is decoded.
        photo_intake.check_photos([photo for check in checks for photo in check.photos])
        for check in checks:
            prepared[check.item] = photo_intake.prepare_photos(check.photos)
    except photo_intake.PhotoError as error:
        raise WorkflowError(str(error), status_code=400) from None
    with transaction.atomic():
        patrol = Patrol.objects.create(
            project=project, supervisor=supervisor, note=note.strip()[:2000]
        )
        for check in checks:
            row = PatrolCheck.objects.create(
                patrol=patrol, item=check.item, ok=check.ok, note=check.note.strip()[:500]
            )
            for photo in prepared[check.item]:
                web, thumb = photo_intake.store(photo)
                PatrolPhoto.objects.create(
                    check_item=row,
                    image=web,
                    thumbnail=thumb,
                    width=photo.width,
                    height=photo.height,
                )
    return patrol


def _stored_patrol_photos(check: PatrolCheck) -> list:
    """The check's photos as files again, read from storage (their web copies)."""
    files = []
    for photo in check.photos.all():
        try:
            with default_storage.open(photo.image.name) as handle:
                files.append(photo_intake.named(handle.read(), "patrol.jpg"))
        except OSError:
            continue  # a file lost from storage: the issue goes without it
    return files


def patrol_needs_photo(check: PatrolCheck) -> bool:
    """Whether turning the problem into an issue asks for a photo the patrol did not take: the
    issue's category needs one (``services.needs_photo``) and the check has none."""
    return services.needs_photo(CHECK_CATEGORY[check.item]) and not check.photos.all()


def patrol_problem_to_issue(check: PatrolCheck, *, actor, photos: Sequence = ()) -> Issue:
    """One tap: the problem found on patrol becomes an issue, with its note and photos, and any
    photo the supervisor adds now. Held to the rules that guard filing (``submit_issue``): a
    problem whose category needs a photo is refused without one, beside ``photos``."""
    patrol = check.patrol
    if actor.pk != patrol.supervisor_id:
        raise WorkflowError(_("只有记录这次巡查的监督员可以把问题转为反映。"), status_code=403)
    if check.ok:
        raise WorkflowError(_("这一项巡查正常，没有问题可以反映。"), status_code=400)
    if check.issue_id:
        return check.issue
    try:
        prepared = photo_intake.prepare_photos(
            [*_stored_patrol_photos(check), *(f for f in photos if f is not None)]
        )
    except photo_intake.PhotoError as error:
        raise WorkflowError(str(error), status_code=400, field="photos") from None
    issue = services.submit_issue(
        reporter=actor,
        project=patrol.project,
        category=CHECK_CATEGORY[check.item],
        title=_("巡查发现：%(item)s") % {"item": check.get_item_display()},
        description=check.note,
        photos=prepared,
        idempotency_key=f"patrol-check-{check.pk}",
    )
    PatrolCheck.objects.filter(pk=check.pk, issue__isnull=True).update(issue=issue)
    return issue


# --- supervisors -------------------------------------------------------------------------------


def _refuse_unless_bureau(actor, message: str) -> None:
    if not (actor is not None and actor.is_active and actor.is_bureau):
        raise WorkflowError(message, status_code=403)


def appoint_supervisor(
    *,
    actor: User,
    display_name: str,
    username: str,
    mobile: str,
    password: str,
    neighbourhood: Neighbourhood,
    projects: Iterable[Project],
    appointed_on: date,
    term_ends_on: date,
    certificate_number: str,
) -> Supervisor:
    """聘任: the bureau makes the account and the appointment together, or neither.

    The form has checked that the username, mobile and certificate number are free and that the
    term ends after it starts. The appointment's history row names ``actor``. A county's bureau
    appoints residents of its own county to watch its own county's projects, nothing else.
    """
    _refuse_unless_bureau(actor, _("只有住建局可以聘任群众监督员。"))
    projects = list(projects)
    county = neighbourhood.subdistrict.region_id
    if not in_programme(actor, county):
        raise WorkflowError(
            _("这个小区不在本地的改造计划内，不能在这里聘任。"),
            status_code=403,
            field="neighbourhood",
        )
    if any(project_county(project) != county for project in projects):
        raise WorkflowError(
            _("监督的项目应在监督员所住小区的县（市、区）内。"), status_code=400, field="projects"
        )
    with transaction.atomic():
        user = User.objects.create_user(
            username=username,
            password=password,
            display_name=display_name,
            mobile=mobile,
            role=User.Role.SUPERVISOR,
            region=neighbourhood.subdistrict.region,
        )
        supervisor = Supervisor(
            user=user,
            neighbourhood=neighbourhood,
            appointed_on=appointed_on,
            term_ends_on=term_ends_on,
            certificate_number=certificate_number,
        )
        supervisor._history_user = actor
        supervisor.save()
        supervisor.projects.set(projects)
    audit.info(
        "supervisor appointed user=%s certificate=%s by=%s",
        user.username,
        certificate_number,
        actor.username,
    )
    return supervisor


def dismiss_supervisor(supervisor: Supervisor, *, actor: User, on: date | None = None) -> bool:
    """解聘: the appointment ends ``on`` (today by default), the account is deactivated and its
    API keys are revoked; issues and patrols stay on record. The history row names ``actor``.

    Returns False, changing nothing, when the supervisor was already dismissed (a second click).
    """
    _refuse_unless_bureau(actor, _("只有住建局可以解聘群众监督员。"))
    if not in_programme(actor, supervisor.user.region_id):
        raise WorkflowError(_("这名监督员不在本地的改造计划内。"), status_code=404)
    on = on or timezone.localdate()
    with transaction.atomic():
        locked = Supervisor.objects.select_for_update().select_related("user").get(pk=supervisor.pk)
        if not locked.is_active:
            return False
        locked.is_active = False
        locked.dismissed_on = on
        locked._history_user = actor
        locked.save(update_fields=["is_active", "dismissed_on", "updated_at"])
        locked.user.is_active = False
        locked.user.save(update_fields=["is_active"])
        revoked = revoke_all(locked.user)
    audit.info(
        "supervisor dismissed user=%s certificate=%s keys_revoked=%d by=%s",
        locked.user.username,
        locked.certificate_number,
        revoked,
        actor.username,
    )
    supervisor.is_active, supervisor.dismissed_on = False, on
    return True
