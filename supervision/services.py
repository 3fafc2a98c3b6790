"""The issue's life: one function per step (派单→签收→办理→反馈→回访→办结).

Each step checks who may act and from which state, locks the issue row, changes it inside one
transaction, writes exactly one ``IssueEvent`` and queues notifications for after the commit.
Nothing else changes an issue's status. A step that is not allowed raises ``WorkflowError``
with a message a person can read, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import notifications, warranty
from . import photos as photo_intake
from . import voice as voice_intake
from .access import watches
from .models import (
    Department,
    ExtensionRequest,
    Issue,
    IssueCounter,
    IssueEvent,
    Photo,
    Project,
    RoutingRule,
    ScopeItem,
    Support,
    in_programme,
    issue_county,
    issue_visible,
)
from .unavailable import is_disk_full
from .workdays import end_of_working_day, working_days_deadline

Status = Issue.Status
Kind = IssueEvent.Kind

MAX_TEXT = 2000


class WorkflowError(Exception):
    """A step that may not happen: who is asking, or the state the issue is in, forbids it.

    ``status_code`` is 403 when the person may not take this step at all, 409 when the issue is
    not in a state that allows it, 400 when what they sent is incomplete. ``field`` names the
    field the message belongs beside (the form's, the JSON API's or Open311's), when there is one.
    """

    def __init__(self, message: str, *, status_code: int = 409, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.field = field


def _forbid(message: str) -> WorkflowError:
    return WorkflowError(message, status_code=403)


def _invalid(message: str, field: str | None = None) -> WorkflowError:
    return WorkflowError(message, status_code=400, field=field)


def _not_withdrawable(issue: Issue) -> WorkflowError:
    return WorkflowError(
        _("该问题当前状态为「%(status)s」，部门已经处理，不能撤回。")
        % {"status": issue.get_status_display()}
    )


# --- who may act -------------------------------------------------------------------------------


def _is_active(user) -> bool:
    return user is not None and user.is_authenticated and user.is_active


def is_serving_supervisor(user) -> bool:
    if not (_is_active(user) and user.is_supervisor):
        return False
    supervisor = getattr(user, "supervisor", None)
    return supervisor is not None and supervisor.is_serving()


def handles(user, issue: Issue) -> bool:
    """The bureau of the issue's county, or staff of the department the issue is routed to."""
    if not _is_active(user):
        return False
    if user.is_bureau:
        return in_programme(user, issue_county(issue))
    return user.is_department_staff and user.department_id == issue.department_id


def works_on(user, issue: Issue) -> bool:
    """Staff of the contractor the issue was dispatched to."""
    return (
        _is_active(user)
        and user.is_department_staff
        and issue.contractor_id is not None
        and user.department_id == issue.contractor_id
    )


def is_reporter(user, issue: Issue) -> bool:
    return _is_active(user) and user.pk == issue.reporter_id


def may_see(user, issue: Issue) -> bool:
    return issue_visible(user, issue)


# --- time limits -------------------------------------------------------------------------------


def _limits() -> dict:
    return settings.SUPERVISION


def sign_for_deadline(issue: Issue, now: datetime) -> datetime:
    if issue.urgency == Issue.Urgency.URGENT:
        return now + timedelta(hours=_limits()["URGENT_SIGN_FOR_HOURS"])
    return working_days_deadline(now, _limits()["SIGN_FOR_WORKING_DAYS"])


def reply_deadline(issue: Issue, now: datetime) -> datetime:
    return working_days_deadline(now, _limits()["FIRST_REPLY_WORKING_DAYS"])


def default_rectify_deadline(issue: Issue, now: datetime) -> datetime:
    key = (
        "URGENT_RECTIFY_WORKING_DAYS"
        if issue.urgency == Issue.Urgency.URGENT
        else "RECTIFY_WORKING_DAYS"
    )
    return working_days_deadline(now, _limits()[key])


# --- helpers -----------------------------------------------------------------------------------


def _lock(issue: Issue) -> Issue:
    return Issue.objects.select_for_update().get(pk=issue.pk)


def _require_status(issue: Issue, allowed: Sequence[str], step: str | Promise) -> None:
    if issue.status not in allowed:
        message = _("该问题当前状态为「%(status)s」，不能%(step)s。") % {
            "status": issue.get_status_display(),
            "step": step,
        }
        raise WorkflowError(f"{message}{_who_moved_it(issue)}")


def _check(step: str, actor, issue: Issue) -> None:
    """Raise the refusal of ``step`` for ``actor`` on ``issue`` as it stands, if there is one.

    The one place a step's rule (``STEP_RULES``) is enforced: every step function calls it under
    the row lock, and ``refusal`` asks it before a page reads the fields of a step.
    """
    error = refusal(actor, issue, step)
    if error is not None:
        raise error


def _who_moved_it(issue: Issue) -> str:
    """「该事项已由安阳街道办事处于 10:42 签收。」 — so that the one who lost a race knows why."""
    last = (
        issue.events.exclude(to_status="")
        .exclude(to_status=F("from_status"))
        .exclude(kind=Kind.SUBMITTED)
        .select_related("actor__department")
        .order_by("-created_at", "-pk")
        .first()
    )
    if last is None:
        return ""
    who = _("系统")
    if last.actor is not None:
        who = str(last.actor.department) if last.actor.department_id else str(last.actor)
    moment = timezone.localtime(last.created_at)
    when = (
        moment.strftime("%H:%M")
        if moment.date() == timezone.localdate()
        else moment.strftime("%m-%d %H:%M")
    )
    return _("该事项已由%(who)s于 %(when)s %(what)s。") % {
        "who": who,
        "when": when,
        "what": last.get_kind_display(),
    }


def _text(text: str | None, *, required: str | None = None, field: str | None = None) -> str:
    text = (text or "").strip()
    if required and not text:
        raise _invalid(required, field)
    if len(text) > MAX_TEXT:
        raise _invalid(_("内容不能超过 %(n)d 个字。") % {"n": MAX_TEXT}, field)
    return text


def _record(
    issue: Issue,
    *,
    actor,
    kind: str,
    from_status: str,
    fields: Sequence[str] = (),
    text: str = "",
    department: Department | None = None,
    deadline: datetime | None = None,
    rating: str = "",
    now: datetime | None = None,
) -> IssueEvent:
    """Save the changed fields and write the one event of this step."""
    issue.save(update_fields=[*fields, "updated_at"])
    event = IssueEvent.objects.create(
        issue=issue,
        kind=kind,
        actor=actor,
        from_status=from_status,
        to_status=issue.status,
        text=text,
        department=department,
        deadline=deadline,
        rating=rating,
        created_at=now or timezone.now(),
    )
    transaction.on_commit(lambda: notifications.issue_changed(issue.pk, event.pk))
    return event


def _sync(original: Issue, fresh: Issue) -> Issue:
    """Let the caller's instance show the new state too."""
    if original is not fresh:
        original.refresh_from_db()
    return fresh


def _mark_first_reply(issue: Issue, actor, now: datetime, fields: list[str]) -> None:
    if issue.first_reply_at is None and (handles(actor, issue) or works_on(actor, issue)):
        issue.first_reply_at = now
        fields.append("first_reply_at")


def _start_verify_clock(issue: Issue, now: datetime, fields: list[str]) -> None:
    """A fix or an answer waits for the reporter's check (回访): a reminder after a few working
    days, then it closes unrated (逾期未评价), as 12345 work orders do."""
    issue.verify_remind_at = working_days_deadline(now, _limits()["VERIFY_REMIND_WORKING_DAYS"])
    issue.verify_due_at = working_days_deadline(now, _limits()["VERIFY_CLOSE_WORKING_DAYS"])
    fields += ["verify_remind_at", "verify_due_at"]


def _stop_verify_clock(issue: Issue, fields: list[str]) -> None:
    issue.verify_remind_at = issue.verify_due_at = None
    fields += ["verify_remind_at", "verify_due_at"]


def _prepare_voice(voice) -> voice_intake.PreparedVoice | None:
    try:
        return voice_intake.prepare_voice(voice)
    except voice_intake.VoiceError as error:
        raise _invalid(str(error), "voice") from None


def needs_photo(category: str) -> bool:
    """Every issue comes with at least one photo of the site, except a residents' opinion (居民意见),
    which is about what people want rather than something to be seen."""
    return category != Issue.Category.OPINION


def route_department(project: Project, category: str) -> Department | None:
    """Where a new issue goes: the most specific routing rule the bureau keeps in the panel
    (subdistrict and category, then subdistrict, then category), else the subdistrict office of
    the project's subdistrict, else the bureau: all of them within the project's county."""
    subdistrict_id = project.neighbourhood.subdistrict_id
    county = project.neighbourhood.subdistrict.region_id
    rules = {
        (rule.subdistrict_id, rule.category): rule.department
        for rule in RoutingRule.objects.filter(
            Q(subdistrict_id=subdistrict_id) | Q(subdistrict__isnull=True),
            Q(category=category) | Q(category=""),
            department__is_active=True,
            department__region=county,
        ).select_related("department")
    }
    for key in ((subdistrict_id, category), (subdistrict_id, ""), (None, category), (None, "")):
        if key in rules:
            return rules[key]
    office = (
        Department.objects.filter(
            kind=Department.Kind.SUBDISTRICT_OFFICE,
            subdistrict_id=subdistrict_id,
            is_active=True,
        )
        .order_by("pk")
        .first()
    )
    if office:
        return office
    return bureau_department(county)


def route_issue(project: Project, category: str, area: str = "") -> warranty.Route:
    """Where a new issue goes and whether it is a warranty issue (保修): on an accepted project
    the warranty and long-term management rules first (``warranty.after_works_route``), else
    ``route_department``."""
    return warranty.after_works_route(project, category, area) or warranty.Route(
        route_department(project, category), False
    )


def bureau_department(county: int | None) -> Department | None:
    """The county's 住建局 (the first active one, should there be two)."""
    return (
        Department.objects.filter(kind=Department.Kind.BUREAU, is_active=True, region=county)
        .order_by("pk")
        .first()
    )


# What a person reads when a rule that guards filing is not met, by the field it belongs beside.
# The page's phone-side checks show the same words (issue_new.html reads this table).
FILING_MESSAGES = {
    "project": gettext_lazy("请选择是哪个项目。"),
    "category": gettext_lazy("请选择问题类别。"),
    "urgency": gettext_lazy("请选择紧急程度。"),
    "title": gettext_lazy("请用一句话说明问题。"),
    "description": gettext_lazy("请描述问题，或按住说话录一段语音。"),
    "building": gettext_lazy("居民意见请写明是哪一幢楼的居民。"),
    "households": gettext_lazy("居民意见请写明代表多少户居民。"),
    "households_min": gettext_lazy("涉及户数至少为 1。"),
    "photos": gettext_lazy("请至少拍一张现场照片。"),
}


def filing_problems(
    *,
    category: str,
    urgency: str = Issue.Urgency.NORMAL,
    title: str = "",
    description: str = "",
    building: str = "",
    households: int | None = None,
    photos_given: bool,
    voice_given: bool = False,
) -> list[WorkflowError]:
    """Every rule that guards filing, each as the refusal a person reads beside its field.

    The one home of these rules: ``submit_issue`` raises the first, and the filing form (which the
    page, the JSON API and Open311 all go through) shows all of them at once.
    """
    broken = []
    if category not in Issue.Category.values:
        broken.append(("category", "category"))
    if urgency not in Issue.Urgency.values:
        broken.append(("urgency", "urgency"))
    if not (title or "").strip():
        broken.append(("title", "title"))
    # A voice note (语音) may stand in for the written details; the title is still needed.
    if not (description or "").strip() and not voice_given:
        broken.append(("description", "description"))
    if category == Issue.Category.OPINION:
        if not (building or "").strip():
            broken.append(("building", "building"))
        if not households or households < 1:
            broken.append(("households", "households"))
    elif households is not None and households < 1:
        broken.append(("households", "households_min"))
    if needs_photo(category) and not photos_given:
        broken.append(("photos", "photos"))
    return [_invalid(str(FILING_MESSAGES[rule]), field) for field, rule in broken]


def _next_reference(year: int) -> tuple[int, str]:
    """The next sequence of ``year``, under a row lock held until the transaction ends."""
    IssueCounter.objects.bulk_create([IssueCounter(year=year, last=0)], ignore_conflicts=True)
    IssueCounter.objects.filter(year=year).update(last=F("last") + 1)
    sequence = IssueCounter.objects.select_for_update().get(year=year).last
    return sequence, f"{year}-{sequence:05d}"


STORAGE_FULL = gettext_lazy("服务器存储空间不足，照片没有保存，请稍后再试。")


class _PhotoFiles:
    """The photos of one step. As the outermost transaction, the step writes their files before
    its rows commit: a full disk then rolls the step back, and a worker killed after the commit
    leaves no row without its file. The files are removed again when the step fails before its
    commit; when the commit itself fails (the database gone as it answered) the rows may be
    there, so the files stay. Inside a caller's transaction, whose end the step cannot see, the
    files follow that transaction's commit (``photos.attach_photos``)."""

    def __init__(self, *, before_commit: bool) -> None:
        self.before_commit = before_commit
        self.written: list[str] = []
        self.finished = False  # the step's block ran to its end: only the commit was left

    def attach(self, issue: Issue, prepared: Sequence, *, kind: str, event) -> list[Photo]:
        write = self._write if self.before_commit else None
        return photo_intake.attach_photos(issue, prepared, kind=kind, event=event, write=write)

    def _write(self, name: str, data: bytes) -> None:
        self.written.append(name)  # first: a file the full disk cut short is removed too
        photo_intake.write_file(name, data)

    def discard(self) -> None:
        for name in self.written:
            with suppress(OSError):
                default_storage.delete(name)


@contextmanager
def _atomic_with_photos() -> Iterator[_PhotoFiles]:
    """``transaction.atomic()`` for a step that stores photos (see ``_PhotoFiles``). A full disk
    is told beside the photos with status 503: the phone keeps the issue and sends it again."""
    files = _PhotoFiles(before_commit=not transaction.get_connection().in_atomic_block)
    try:
        with transaction.atomic():
            yield files
            files.finished = True
    except BaseException as error:
        if not files.finished:  # rolled back for certain
            files.discard()
        if is_disk_full(error):
            raise WorkflowError(str(STORAGE_FULL), status_code=503, field="photos") from None
        raise


# A resend sooner than this may meet the first request still sending the notifications.
NOTIFY_AGAIN_AFTER = timedelta(seconds=10)


def _notify_again(issue: Issue) -> None:
    """A filing sent again (its answer never reached the phone): when the request that filed it
    died between the commit and the notifications, they go out now. ``issue_changed`` does
    nothing for an event it has handled before."""
    if timezone.now() - issue.created_at < NOTIFY_AGAIN_AFTER:
        return
    event = IssueEvent.objects.filter(issue=issue, kind=Kind.SUBMITTED).order_by("pk").first()
    if event is not None:
        notifications.issue_changed(issue.pk, event.pk)


# --- the steps ---------------------------------------------------------------------------------


def submit_issue(
    *,
    reporter,
    project: Project,
    category: str,
    title: str,
    description: str,
    urgency: str = Issue.Urgency.NORMAL,
    location: str = "",
    building: str = "",
    unit: str = "",
    households: int | None = None,
    area: str = "",
    photos: Sequence = (),
    idempotency_key: str | None = None,
    latitude=None,
    longitude=None,
    position_from_photos: bool = False,
    voice=None,
    from_residents: bool = False,
) -> Issue:
    """A supervisor files an issue on a project they watch (提交).

    With ``position_from_photos`` (the reporter's consent), the first photo that carries a GPS
    position places the issue; the stored photos never keep it.
    """
    if not is_serving_supervisor(reporter):
        raise _forbid(_("只有在任的群众监督员可以反映问题。"))
    if not watches(reporter, project):
        raise _forbid(_("您没有受聘监督这个项目，不能在此反映问题。"))
    if idempotency_key:
        existing = Issue.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.reporter_id != reporter.pk:
                raise _invalid(_("提交凭据无效，请刷新页面后重试。"))
            _notify_again(existing)
            return existing  # a retry of what was filed: that issue, once
    try:
        prepared = photo_intake.prepare_photos(photos, defer=True)
    except photo_intake.PhotoError as error:
        raise _invalid(str(error), "photos") from None
    spoken = _prepare_voice(voice)
    problems = filing_problems(
        category=category,
        urgency=urgency,
        title=title,
        description=description,
        building=building,
        households=households,
        photos_given=bool(prepared),
        voice_given=spoken is not None,
    )
    if problems:
        raise problems[0]
    title = _text(title, field="title")[:100]
    description = _text(description, field="description")
    building = (building or "").strip()[:20]
    if position_from_photos and latitude is None:
        position = next((p.position for p in prepared if p.position), None)
        if position:
            latitude, longitude = position

    area = area if area in ScopeItem.Area.values else ""
    route = route_issue(project, category, area)
    try:
        with _atomic_with_photos() as files:
            now = timezone.now()
            year = timezone.localtime(now).year
            sequence, reference = _next_reference(year)
            issue = Issue(
                reference=reference,
                year=year,
                sequence=sequence,
                project=project,
                reporter=reporter,
                category=category,
                urgency=urgency,
                title=title,
                description=description,
                building=building,
                unit=(unit or "").strip()[:20],
                location=(location or "").strip()[:100],
                households=households,
                area=area,
                latitude=latitude,
                longitude=longitude,
                status=Status.SUBMITTED,
                department=route.department,
                is_warranty=route.is_warranty,
                idempotency_key=idempotency_key or None,
                from_residents=from_residents,  # filed from a resident's letter (居民反映)
                created_at=now,
            )
            issue.sign_for_due_at = sign_for_deadline(issue, now)
            issue.reply_due_at = reply_deadline(issue, now)
            issue.save()
            event = IssueEvent.objects.create(
                issue=issue,
                kind=Kind.SUBMITTED,
                actor=reporter,
                to_status=Status.SUBMITTED,
                department=issue.department,
                deadline=issue.sign_for_due_at,
                created_at=now,
            )
            files.attach(issue, prepared, kind=Photo.Kind.BEFORE, event=event)
            voice_intake.attach_voice(issue, spoken, event=event)
            transaction.on_commit(lambda: notifications.issue_changed(issue.pk, event.pk))
    except IntegrityError:
        # Two taps with one token raced: the other one won, and that is the issue.
        if idempotency_key:
            existing = Issue.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None and existing.reporter_id == reporter.pk:
                return existing
        raise
    return issue


def accept_issue(issue: Issue, *, actor, deadline: date | None = None, text: str = "") -> Issue:
    """The department signs for the issue (签收) and sets the rectification deadline."""
    text = _text(text)
    with transaction.atomic():
        fresh = _lock(issue)
        _check("accept", actor, fresh)
        now = timezone.now()
        if deadline is None:
            due = default_rectify_deadline(fresh, now)
        else:
            if isinstance(deadline, datetime):
                deadline = timezone.localtime(deadline).date()
            if deadline < timezone.localdate(now):
                raise _invalid(_("整改期限不能早于今天。"))
            due = end_of_working_day(deadline)
            if due <= now:
                due = timezone.make_aware(
                    datetime.combine(deadline, datetime.max.time().replace(microsecond=0))
                )
        from_status = fresh.status
        fresh.status = Status.ACCEPTED
        fresh.accepted_at = now
        fresh.rectify_due_at = due
        fields = ["status", "accepted_at", "rectify_due_at"]
        _mark_first_reply(fresh, actor, now, fields)
        _record(
            fresh,
            actor=actor,
            kind=Kind.ACCEPTED,
            from_status=from_status,
            fields=fields,
            text=text,
            deadline=due,
            now=now,
        )
    return _sync(issue, fresh)


def answer_issue(issue: Issue, *, actor, text: str) -> Issue:
    """The department answers a question that needs no works (答复)."""
    text = _text(text, required=_("请填写答复内容。"))
    with transaction.atomic():
        fresh = _lock(issue)
        _check("answer", actor, fresh)
        now = timezone.now()
        from_status = fresh.status
        fresh.status = Status.ANSWERED
        fields = ["status"]
        _mark_first_reply(fresh, actor, now, fields)
        _start_verify_clock(fresh, now, fields)
        _record(
            fresh,
            actor=actor,
            kind=Kind.ANSWERED,
            from_status=from_status,
            fields=fields,
            text=text,
            now=now,
        )
    return _sync(issue, fresh)


def dispatch_issue(issue: Issue, *, actor, department: Department, text: str = "") -> Issue:
    """The department sends the works to a contractor (派单); the issue is then in progress."""
    text = _text(text)
    with transaction.atomic():
        fresh = _lock(issue)
        _check("dispatch", actor, fresh)
        if department is None or not department.is_contractor or not department.is_active:
            raise _invalid(_("请选择一家施工单位。"))
        if department.region_id != issue_county(fresh):
            raise _invalid(_("只能派给本县（市、区）的施工单位。"))
        if fresh.contractor_id == department.pk:
            raise WorkflowError(_("这个问题已经派给%(name)s。") % {"name": department.name})
        from_status = fresh.status
        fresh.status = Status.IN_PROGRESS
        fresh.contractor = department
        _record(
            fresh,
            actor=actor,
            kind=Kind.DISPATCHED,
            from_status=from_status,
            fields=["status", "contractor"],
            text=text,
            department=department,
            deadline=fresh.rectify_due_at,
        )
    return _sync(issue, fresh)


def transfer_issue(issue: Issue, *, actor, department: Department, text: str) -> Issue:
    """Send the issue to another department (转派): the status stays, the sign-for clock restarts."""
    text = _text(text, required=_("请说明转派原因。"))
    with transaction.atomic():
        fresh = _lock(issue)
        _check("transfer", actor, fresh)
        if department is None or not department.is_active or department.is_contractor:
            raise _invalid(_("请选择接收的部门（施工单位请用派单）。"))
        if department.region_id != issue_county(fresh):
            raise _invalid(_("只能转派给本县（市、区）的部门。"))
        if department.pk == fresh.department_id:
            raise _invalid(_("问题已经在%(name)s，不必转派。") % {"name": department.name})
        now = timezone.now()
        fresh.department = department
        fresh.sign_for_due_at = sign_for_deadline(fresh, now)
        _record(
            fresh,
            actor=actor,
            kind=Kind.TRANSFERRED,
            from_status=fresh.status,
            fields=["department", "sign_for_due_at"],
            text=text,
            department=department,
            deadline=fresh.sign_for_due_at,
            now=now,
        )
    return _sync(issue, fresh)


def reject_issue(issue: Issue, *, actor, text: str) -> Issue:
    """The department does not take the issue (不予受理): a duplicate or out of scope."""
    text = _text(text, required=_("请说明不予受理的原因。"))
    with transaction.atomic():
        fresh = _lock(issue)
        _check("reject", actor, fresh)
        now = timezone.now()
        from_status = fresh.status
        fresh.status = Status.REJECTED
        fresh.closed_at = now
        fields = ["status", "closed_at"]
        _mark_first_reply(fresh, actor, now, fields)
        _record(
            fresh,
            actor=actor,
            kind=Kind.REJECTED,
            from_status=from_status,
            fields=fields,
            text=text,
            now=now,
        )
    return _sync(issue, fresh)


def rectify_issue(issue: Issue, *, actor, text: str, photos: Sequence = ()) -> Issue:
    """The department or its contractor reports the fix with after-photos (整改完成)."""
    text = _text(text, required=_("请说明整改情况。"))
    try:
        prepared = photo_intake.prepare_photos(photos, defer=True)
    except photo_intake.PhotoError as error:
        raise _invalid(str(error), "photos") from None
    with _atomic_with_photos() as files:
        fresh = _lock(issue)
        _check("rectify", actor, fresh)
        if not prepared:
            raise _invalid(_("请至少上传一张整改后的照片。"), "photos")
        now = timezone.now()
        from_status = fresh.status
        fresh.status = Status.RECTIFIED
        fresh.rectified_at = now
        fields = ["status", "rectified_at"]
        _start_verify_clock(fresh, now, fields)
        event = _record(
            fresh,
            actor=actor,
            kind=Kind.RECTIFIED,
            from_status=from_status,
            fields=fields,
            text=text,
            now=now,
        )
        files.attach(fresh, prepared, kind=Photo.Kind.AFTER, event=event)
    return _sync(issue, fresh)


def verify_issue(issue: Issue, *, actor, rating: str, text: str = "") -> Issue:
    """The reporter checks the fix or accepts the answer and rates it (验证办结).

    满意 and 基本满意 close the issue. 不满意 needs a reason and sends the issue back, as
    ``reopen_issue`` does, with the rating kept on the event.
    """
    text = _text(text)
    with transaction.atomic():
        fresh = _lock(issue)
        _check("verify", actor, fresh)
        if rating not in Issue.Rating.values:
            raise _invalid(_("请选择满意、基本满意或不满意。"))
        if rating == Issue.Rating.UNSATISFIED:
            if not text:
                raise _invalid(_("选择“不满意”时，请写明哪里还不满意，问题会退回重新整改。"))
            _send_back(fresh, actor=actor, text=text, rating=rating)
            return _sync(issue, fresh)
        now = timezone.now()
        from_status = fresh.status
        fresh.status = Status.CLOSED
        fresh.rating = rating
        fresh.closed_at = now
        fields = ["status", "rating", "closed_at"]
        _stop_verify_clock(fresh, fields)
        _record(
            fresh,
            actor=actor,
            kind=Kind.VERIFIED,
            from_status=from_status,
            fields=fields,
            text=text,
            rating=rating,
            now=now,
        )
    return _sync(issue, fresh)


def reopen_issue(issue: Issue, *, actor, text: str) -> Issue:
    """The reporter sends the fix or the answer back (退回), with a reason.

    A rectified issue goes back to 整改中 with a fresh rectification deadline; an answered one
    goes back to 已签收 so that the department looks at it again.
    """
    text = _text(text, required=_("请说明退回的原因。"))
    with transaction.atomic():
        fresh = _lock(issue)
        _check("reopen", actor, fresh)
        _send_back(fresh, actor=actor, text=text)
    return _sync(issue, fresh)


def _send_back(fresh: Issue, *, actor, text: str, rating: str = "") -> None:
    now = timezone.now()
    from_status = fresh.status
    fields = ["status"]
    if from_status == Status.RECTIFIED:
        fresh.status = Status.IN_PROGRESS
        fresh.rectified_at = None
        fields.append("rectified_at")
    else:
        fresh.status = Status.ACCEPTED
    fresh.rectify_due_at = default_rectify_deadline(fresh, now)
    # Kept with the event, so that figures need no subquery per issue to know it was sent back.
    fresh.reopen_count += 1
    fields += ["rectify_due_at", "reopen_count"]
    _stop_verify_clock(fresh, fields)
    _record(
        fresh,
        actor=actor,
        kind=Kind.REOPENED,
        from_status=from_status,
        fields=fields,
        text=text,
        deadline=fresh.rectify_due_at,
        rating=rating,
        now=now,
    )


def withdraw_issue(issue: Issue, *, actor, text: str = "") -> Issue:
    """The reporter takes the issue back before a department signs for it (撤回)."""
    text = _text(text)
    with transaction.atomic():
        fresh = _lock(issue)
        _check("withdraw", actor, fresh)
        now = timezone.now()
        fresh.status = Status.WITHDRAWN
        fresh.closed_at = now
        _record(
            fresh,
            actor=actor,
            kind=Kind.WITHDRAWN,
            from_status=Status.SUBMITTED,
            fields=["status", "closed_at"],
            text=text,
            now=now,
        )
    return _sync(issue, fresh)


def comment_on_issue(
    issue: Issue, *, actor, text: str, photos: Sequence = (), voice=None
) -> IssueEvent:
    """Anyone taking part who may see the issue leaves a message (留言): words, a voice note
    (语音) instead of them, photos, or all three."""
    text = _text(text, required=None if voice else _("请填写留言内容。"))
    _check("comment", actor, issue)
    try:
        prepared = photo_intake.prepare_photos(photos, defer=True)
    except photo_intake.PhotoError as error:
        raise _invalid(str(error)) from None
    spoken = _prepare_voice(voice)
    with _atomic_with_photos() as files:
        fresh = _lock(issue)
        _check("comment", actor, fresh)
        now = timezone.now()
        fields: list[str] = []
        _mark_first_reply(fresh, actor, now, fields)
        event = _record(
            fresh,
            actor=actor,
            kind=Kind.COMMENTED,
            from_status=fresh.status,
            fields=fields,
            text=text,
            now=now,
        )
        kind = (
            Photo.Kind.AFTER
            if (handles(actor, fresh) or works_on(actor, fresh))
            else Photo.Kind.BEFORE
        )
        files.attach(fresh, prepared, kind=kind, event=event)
        voice_intake.attach_voice(fresh, spoken, event=event)
    _sync(issue, fresh)
    return event


def support_issue(issue: Issue, *, actor, letter=None) -> Support:
    """附议: "me too" on an issue still being worked on, once per person.

    Without ``letter``, a serving supervisor of the issue's project says it for themselves (not
    the reporter: it is their own issue). With ``letter``, a supervisor of the project adds a
    resident's letter as support (the letters service checks the letter's own state; this checks
    the issue's side). Either way the count on the issue goes up by one and the thread shows it.
    """
    with transaction.atomic():
        fresh = _lock(issue)
        if letter is None:
            _check("support", actor, fresh)
        else:
            _check_letter_support(actor, fresh, letter)
        now = timezone.now()
        try:
            with transaction.atomic():  # a savepoint: the refusal below leaves nothing behind
                support = Support.objects.create(
                    issue=fresh,
                    supporter=None if letter is not None else actor,
                    letter=letter,
                    created_at=now,
                )
        except IntegrityError:
            if letter is not None:
                raise WorkflowError(_("这封来信已经附议到一个问题了。")) from None
            raise WorkflowError(_("您已经附议过这个问题。")) from None
        fresh.support_count += 1  # the row is locked: no other support counts meanwhile
        _record(
            fresh,
            actor=actor,
            kind=Kind.SUPPORTED,
            from_status=fresh.status,
            fields=["support_count"],
            # Never the letter's words or its writer: the thread may be read widely.
            text=_("居民来信反映了同样的问题。") if letter is not None else "",
            now=now,
        )
    _sync(issue, fresh)
    return support


def _check_letter_support(actor, issue: Issue, letter) -> None:
    """The issue's side of adding a letter as support: a serving supervisor of the project
    (the reporter too: the support is the resident's), an issue of the letter's project, in a
    state that takes support."""
    if not (is_serving_supervisor(actor) and may_see(actor, issue)):
        raise _forbid(_("只有受聘监督这个项目的群众监督员可以处理居民来信。"))
    if not watches(actor, issue.project_id):
        raise _forbid(_("您没有受聘监督这个项目，不能把来信附议到这个问题。"))
    if letter.project_id != issue.project_id:
        raise _invalid(_("只能附议到同一个项目的问题。"), "issue")
    rule = STEP_RULES["support"]
    _require_status(issue, rule.states, rule.name)


def escalate_issue(issue: Issue, *, actor, text: str, deadline: date | None = None) -> Issue:
    """督办: the bureau presses on an open issue, or its department asks the bureau to; the
    province or the city above (上级主管部门) presses with a date by which the county's bureau
    must answer (``reply_to_oversight``).

    ``actor=None`` is the periodic job escalating an overdue issue.
    """
    text = _text(text, required=None if actor is None else _("请填写督办意见。"))
    from_above = actor is not None and _is_active(actor) and actor.is_oversight
    if from_above:
        if deadline is None:
            raise _invalid(_("请填写要求住建局回复的日期。"), "deadline")
        if deadline < timezone.localdate():
            raise _invalid(_("回复期限不能早于今天。"), "deadline")
    with transaction.atomic():
        fresh = _lock(issue)
        _check("escalate", actor, fresh)
        now = timezone.now()
        fresh.escalated_at = now
        fields = ["escalated_at"]
        due = None
        if from_above:
            fresh.oversight_due_at = due = end_of_working_day(deadline)
            fields.append("oversight_due_at")
        _record(
            fresh,
            actor=actor,
            kind=Kind.ESCALATED,
            from_status=fresh.status,
            fields=fields,
            text=text or _("已超过办理时限，系统自动提请住建局督办。"),
            deadline=due,
            now=now,
        )
    return _sync(issue, fresh)


def reply_to_oversight(issue: Issue, *, actor, text: str) -> Issue:
    """回复督办: the county's bureau answers the province's or the city's 督办; the issue no
    longer waits for it. The work itself goes on through the usual steps."""
    text = _text(text, required=_("请填写回复内容。"))
    with transaction.atomic():
        fresh = _lock(issue)
        _check("reply", actor, fresh)
        fresh.oversight_due_at = None
        _record(
            fresh,
            actor=actor,
            kind=Kind.OVERSIGHT_REPLIED,
            from_status=fresh.status,
            fields=["oversight_due_at"],
            text=text,
        )
    return _sync(issue, fresh)


def appeal_issue(issue: Issue, *, actor, text: str) -> Issue:
    """The reporter appeals a rejection to the bureau (申诉): the issue is filed again with the
    bureau as its department and a fresh sign-for clock."""
    text = _text(text, required=_("请说明申诉的理由。"))
    bureau = bureau_department(issue_county(issue))
    with transaction.atomic():
        fresh = _lock(issue)
        _check("appeal", actor, fresh)
        if bureau is None:
            raise WorkflowError(_("系统里还没有住建局，暂时不能申诉，请联系管理员。"))
        now = timezone.now()
        from_status = fresh.status
        fresh.status = Status.SUBMITTED
        fresh.department = bureau
        fresh.sign_for_due_at = sign_for_deadline(fresh, now)
        fresh.closed_at = None
        _record(
            fresh,
            actor=actor,
            kind=Kind.APPEALED,
            from_status=from_status,
            fields=["status", "department", "sign_for_due_at", "closed_at"],
            text=text,
            department=bureau,
            deadline=fresh.sign_for_due_at,
            now=now,
        )
    return _sync(issue, fresh)


def request_extension(issue: Issue, *, actor, until: date, text: str) -> ExtensionRequest:
    """The department or the contractor asks the bureau for more time (延期申请)."""
    text = _text(text, required=_("请说明延期的理由。"))
    with transaction.atomic():
        fresh = _lock(issue)
        _check("extend", actor, fresh)
        current = fresh.rectify_due_at and timezone.localtime(fresh.rectify_due_at).date()
        if current and until <= current:
            raise _invalid(_("延期后的日期要晚于现在的整改期限（%(date)s）。") % {"date": current})
        if until > timezone.localdate() + timedelta(days=366):
            raise _invalid(_("延期最长一年。"))
        if fresh.extensions.filter(status=ExtensionRequest.Status.PENDING).exists():
            raise WorkflowError(_("已有一份延期申请在等住建局审批，请勿重复申请。"))
        request = ExtensionRequest.objects.create(
            issue=fresh, requested_by=actor, until=until, reason=text
        )
        _record(
            fresh,
            actor=actor,
            kind=Kind.EXTENSION_REQUESTED,
            from_status=fresh.status,
            text=text,
            deadline=end_of_working_day(until),
        )
    _sync(issue, fresh)
    return request


def decide_extension(
    request: ExtensionRequest, *, actor, grant: bool, note: str = ""
) -> ExtensionRequest:
    """The bureau grants or refuses an extension; granted, the rectification deadline moves."""
    note = _text(note)[:200]
    with transaction.atomic():
        fresh_request = ExtensionRequest.objects.select_for_update().get(pk=request.pk)
        fresh = _lock(fresh_request.issue)
        if not is_bureau_of(actor, fresh):
            raise _forbid(_("只有住建局可以审批延期申请。"))
        if fresh_request.status != ExtensionRequest.Status.PENDING:
            raise WorkflowError(
                _("这份延期申请已经%(status)s。") % {"status": fresh_request.get_status_display()}
            )
        now = timezone.now()
        fresh_request.status = (
            ExtensionRequest.Status.GRANTED if grant else ExtensionRequest.Status.REFUSED
        )
        fresh_request.decided_by = actor
        fresh_request.decided_at = now
        fresh_request.decision_note = note
        fresh_request.save(
            update_fields=["status", "decided_by", "decided_at", "decision_note", "updated_at"]
        )
        fields = []
        deadline = None
        if grant and fresh.status in (Status.ACCEPTED, Status.IN_PROGRESS):
            fresh.rectify_due_at = deadline = end_of_working_day(fresh_request.until)
            fresh.escalated_at = None
            fields = ["rectify_due_at", "escalated_at"]
        _record(
            fresh,
            actor=actor,
            kind=Kind.EXTENSION_GRANTED if grant else Kind.EXTENSION_REFUSED,
            from_status=fresh.status,
            fields=fields,
            text=note,
            deadline=deadline,
            now=now,
        )
    return fresh_request


def publish_issue(issue: Issue, *, actor, public: bool = True, text: str = "") -> Issue:
    """The bureau makes an issue public on its project's page, or takes it back (公开/取消公开).

    The public page never shows who reported it. The decision is part of the issue's thread,
    with who took it and when: on a transparency product, what the public sees is on record.
    """
    text = _text(text)
    with transaction.atomic():
        fresh = _lock(issue)
        if not is_bureau_of(actor, fresh):
            raise _forbid(_("只有住建局可以决定公开或取消公开问题。"))
        if fresh.is_public == public:
            raise WorkflowError(
                _("这个问题已经公开。") if public else _("这个问题本来就没有公开。")
            )
        fresh.is_public = public
        _record(
            fresh,
            actor=actor,
            kind=Kind.PUBLISHED if public else Kind.UNPUBLISHED,
            from_status=fresh.status,
            fields=["is_public"],
            text=text,
        )
    return _sync(issue, fresh)


def remind_reporter(issue: Issue, *, now: datetime | None = None) -> Issue:
    """The system reminds the reporter that a fix or an answer waits for their check (提醒评价).
    Once per fix or answer; does nothing when the reporter acted meanwhile."""
    now = now or timezone.now()
    with transaction.atomic():
        fresh = _lock(issue)
        waiting = fresh.status in (Status.RECTIFIED, Status.ANSWERED)
        if not (waiting and fresh.verify_remind_at and fresh.verify_remind_at <= now):
            raise WorkflowError(_("这个问题不需要提醒评价。"))
        fresh.verify_remind_at = None
        _record(
            fresh,
            actor=None,
            kind=Kind.VERIFY_REMINDED,
            from_status=fresh.status,
            fields=["verify_remind_at"],
            text=_("整改或答复已经 %(n)d 个工作日了，请您到现场看看，评价是否满意。")
            % {"n": _limits()["VERIFY_REMIND_WORKING_DAYS"]},
            now=now,
        )
    return _sync(issue, fresh)


def expire_verification(issue: Issue, *, now: datetime | None = None) -> Issue:
    """The reporter did not check the fix or the answer in time: the issue closes unrated
    (逾期未评价). Figures count it as unrated, never as satisfied."""
    now = now or timezone.now()
    with transaction.atomic():
        fresh = _lock(issue)
        waiting = fresh.status in (Status.RECTIFIED, Status.ANSWERED)
        if not (waiting and fresh.verify_due_at and fresh.verify_due_at <= now):
            raise WorkflowError(_("这个问题还在等待反映人评价。"))
        from_status = fresh.status
        fresh.status = Status.CLOSED
        fresh.closed_at = now
        fields = ["status", "closed_at"]
        _stop_verify_clock(fresh, fields)
        _record(
            fresh,
            actor=None,
            kind=Kind.VERIFY_EXPIRED,
            from_status=from_status,
            fields=fields,
            text=_("反映人 %(n)d 个工作日内未评价，系统按「逾期未评价」办结。")
            % {"n": _limits()["VERIFY_CLOSE_WORKING_DAYS"]},
            now=now,
        )
    return _sync(issue, fresh)


def sweep_unverified(now: datetime | None = None) -> tuple[list[Issue], list[Issue]]:
    """The periodic job's second half: remind reporters, then close what waited too long.
    Returns (reminded, closed); running it again changes nothing."""
    now = now or timezone.now()
    waiting = Issue.objects.filter(status__in=[Status.RECTIFIED, Status.ANSWERED])
    closed = []
    for issue in waiting.filter(verify_due_at__lte=now).order_by("pk"):
        try:
            closed.append(expire_verification(issue, now=now))
        except WorkflowError:
            continue  # the reporter acted meanwhile
    reminded = []
    for issue in waiting.filter(verify_remind_at__lte=now).order_by("pk"):
        try:
            reminded.append(remind_reporter(issue, now=now))
        except WorkflowError:
            continue
    return reminded, closed


def escalate_overdue(now: datetime | None = None) -> list[Issue]:
    """The periodic job: escalate every issue that has become overdue since it was last
    escalated. Running it again changes nothing (idempotent)."""
    now = now or timezone.now()
    escalated = []
    candidates = (
        Issue.objects.open()
        .overdue(now)
        .filter(
            Q(escalated_at__isnull=True)
            | Q(status=Status.SUBMITTED, escalated_at__lt=F("sign_for_due_at"))
            | Q(
                status__in=[Status.ACCEPTED, Status.IN_PROGRESS],
                escalated_at__lt=F("rectify_due_at"),
            )
        )
        .order_by("pk")
    )
    for issue in candidates:
        try:
            escalated.append(escalate_issue(issue, actor=None, text=""))
        except WorkflowError:
            continue  # acted on meanwhile: no longer open
    return escalated


# --- what the issue page offers ----------------------------------------------------------------


def may_comment(user, issue: Issue) -> bool:
    taking_part = _is_active(user) and (
        user.is_bureau or is_serving_supervisor(user) or user.is_department_staff
    )
    return taking_part and may_see(user, issue)


def may_support(user, issue: Issue) -> bool:
    """附议: a serving supervisor who watches the issue's project, other than its reporter."""
    return (
        is_serving_supervisor(user)
        and not is_reporter(user, issue)
        and may_see(user, issue)
        and watches(user, issue.project_id)
    )


def _handles_or_works_on(user, issue: Issue) -> bool:
    return handles(user, issue) or works_on(user, issue)


def oversees(user, issue: Issue) -> bool:
    """The province or the city above the issue's county (上级主管部门): reads it, presses on it
    (督办), never takes a department's step."""
    return _is_active(user) and user.is_oversight and in_programme(user, issue_county(issue))


def is_bureau_of(user, issue: Issue) -> bool:
    """A coordinator of the bureau of the issue's county (or a superuser)."""
    return _is_active(user) and user.is_bureau and in_programme(user, issue_county(issue))


def _escalates(user, issue: Issue) -> bool:
    """督办 by the bureau or the department, by the province or the city above, or by the
    periodic job (``actor=None``)."""
    return user is None or handles(user, issue) or oversees(user, issue)


def _answers_oversight(user, issue: Issue) -> bool:
    """回复督办: the county's bureau, while a 督办 from above waits for its answer."""
    return issue.oversight_due_at is not None and is_bureau_of(user, issue)


@dataclass(frozen=True)
class Step:
    """One step of an issue's life: its name, who may take it, from which states, and what a
    person who may not take it is told. Names and messages are lazy: translated when shown."""

    name: Promise
    who: Callable[[object, Issue], bool]
    states: tuple[str, ...]
    forbidden: Promise


# The one table of who may take which step from which state. The step functions enforce it
# through ``_check``; the issue page and the API offer what ``allowed_steps`` reads from it. The
# order is the order the page shows the buttons in.
STEP_RULES: dict[str, Step] = {
    "accept": Step(
        gettext_lazy("签收"),
        handles,
        (Status.SUBMITTED,),
        gettext_lazy("只有承办部门或住建局可以签收这个问题。"),
    ),
    "answer": Step(
        gettext_lazy("答复"),
        handles,
        (Status.SUBMITTED, Status.ACCEPTED),
        gettext_lazy("只有承办部门或住建局可以答复这个问题。"),
    ),
    "dispatch": Step(
        gettext_lazy("派单"),
        handles,
        (Status.ACCEPTED, Status.IN_PROGRESS),
        gettext_lazy("只有承办部门或住建局可以派单。"),
    ),
    "rectify": Step(
        gettext_lazy("报告整改完成"),
        _handles_or_works_on,
        (Status.ACCEPTED, Status.IN_PROGRESS),
        gettext_lazy("只有承办部门、整改单位或住建局可以报告整改完成。"),
    ),
    "transfer": Step(
        gettext_lazy("转派"),
        handles,
        Issue.OPEN_STATUSES,
        gettext_lazy("只有承办部门或住建局可以转派这个问题。"),
    ),
    "reject": Step(
        gettext_lazy("不予受理"),
        handles,
        (Status.SUBMITTED, Status.ACCEPTED),
        gettext_lazy("只有承办部门或住建局可以作出不予受理。"),
    ),
    "escalate": Step(
        gettext_lazy("督办"),
        _escalates,
        Issue.OPEN_STATUSES,
        gettext_lazy("只有住建局、承办部门或上级主管部门可以督办。"),
    ),
    "reply": Step(
        gettext_lazy("回复督办"),
        _answers_oversight,
        tuple(Status.values),
        gettext_lazy("只有本县（市、区）住建局可以回复上级督办，且要有待回复的督办。"),
    ),
    "verify": Step(
        gettext_lazy("验证办结"),
        is_reporter,
        (Status.RECTIFIED, Status.ANSWERED),
        gettext_lazy("只有反映人本人可以验证办结。"),
    ),
    "reopen": Step(
        gettext_lazy("退回"),
        is_reporter,
        (Status.RECTIFIED, Status.ANSWERED),
        gettext_lazy("只有反映人本人可以退回。"),
    ),
    "withdraw": Step(
        gettext_lazy("撤回"),
        is_reporter,
        (Status.SUBMITTED,),
        gettext_lazy("只有反映人本人可以撤回。"),
    ),
    "extend": Step(
        gettext_lazy("申请延期"),
        _handles_or_works_on,
        (Status.ACCEPTED, Status.IN_PROGRESS),
        gettext_lazy("只有承办部门或整改单位可以申请延期。"),
    ),
    "appeal": Step(
        gettext_lazy("申诉"),
        is_reporter,
        (Status.REJECTED,),
        gettext_lazy("只有反映人本人可以申诉。"),
    ),
    "comment": Step(
        gettext_lazy("留言"),
        may_comment,
        tuple(Status.values),
        gettext_lazy("您不能在这个问题下留言。"),
    ),
    "support": Step(
        gettext_lazy("附议"),
        may_support,
        # Still being worked on, or waiting for the reporter's check; not once it is finished.
        (*Issue.OPEN_STATUSES, Status.RECTIFIED, Status.ANSWERED),
        gettext_lazy("只有受聘监督这个项目的群众监督员可以附议。"),
    ),
}


def allowed_steps(user, issue: Issue) -> list[str]:
    """The steps ``user`` may take on ``issue`` now, in the order the page shows them."""
    return [
        name
        for name, step in STEP_RULES.items()
        if issue.status in step.states and step.who(user, issue)
    ]


# The step each state calls for, in order of preference: what the page offers first and open.
NEXT_STEPS: dict[str, tuple[str, ...]] = {
    Status.SUBMITTED: ("accept",),
    Status.ACCEPTED: ("dispatch", "rectify"),
    Status.IN_PROGRESS: ("rectify",),
    Status.RECTIFIED: ("verify",),
    Status.ANSWERED: ("verify",),
    Status.REJECTED: ("appeal",),
}


def next_step(issue: Issue, steps: Sequence[str]) -> str | None:
    """Of the ``steps`` a person may take (``allowed_steps``), the one the work calls for now:
    签收 a new issue; then 派单整改 to a contractor, unless it has one already or the person
    rectifies it themselves; then 报告整改完成; the reporter's check; else a message. A 督办 from
    the province or the city waiting for the county's bureau comes first; the oversight's one
    step is its 督办."""
    if "reply" in steps:
        return "reply"
    if list(steps) == ["escalate"]:
        return "escalate"
    for step in NEXT_STEPS.get(issue.status, ()):
        if step == "dispatch" and issue.contractor_id is not None:
            continue
        if step in steps:
            return step
    return "comment" if "comment" in steps else None


def refusal(user, issue: Issue, step: str) -> WorkflowError | None:
    """Why ``user`` may not take ``step`` on ``issue`` now, or None when they may.

    Lets a page refuse before it checks the fields or reads the photos of a step that would be
    refused anyway; the step function asks again under the row lock (``_check``).
    """
    rule = STEP_RULES[step]
    if not rule.who(user, issue):
        if step == "support" and is_reporter(user, issue):
            return _forbid(_("这是您自己反映的问题，不用附议；有新情况可以在下面留言补充。"))
        return _forbid(str(rule.forbidden))
    if issue.status not in rule.states:
        if step == "withdraw":
            return _not_withdrawable(issue)
        try:
            _require_status(issue, rule.states, rule.name)
        except WorkflowError as error:
            return error
    return None
