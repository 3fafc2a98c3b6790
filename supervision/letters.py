"""Residents' letters (居民来信): a resident without an account writes to a project's supervisors,
who carry it — answer it, file it as an issue on the residents' behalf, add it as support (附议) to
an issue that already exists, or decline it with a reason.

Each step is one function, as an issue's steps are in ``services``: it checks who may act and from
which state, locks the letter, changes it inside one transaction, saves with ``update_fields`` and
writes exactly one ``LetterEvent``. A refusal is a ``WorkflowError`` a person can read (403: who,
409: the state, 400: what was sent, 429: one letter too many) and changes nothing. The sweep
(``sweep_letters``) reminds the supervisors, escalates to the subdistrict office, and erases reply
numbers once they are no longer needed.

A sender is known only by a keyed digest of their address (enough to refuse a repeat, not to find
them); the mobile number for a reply is shown masked and erased ``LETTER_MOBILE_KEEP_DAYS`` after
the letter was handled. Letters are in no export and no API answer.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import photos as photo_intake
from . import services
from .access import letters_for, watches
from .deliveries import enqueue_delivery
from .models import PROJECT_COUNTY, Delivery, Issue, Letter, LetterEvent, LetterPhoto, Project
from .notifications import absolute_url
from .residents import CODE_ALPHABET
from .services import WorkflowError
from .workdays import working_days_deadline

Status = Letter.Status
Kind = LetterEvent.Kind

MAX_PHOTOS = 3
PHOTO_COUNT_MESSAGE = gettext_lazy("最多附 %(max)d 张照片，您选了 %(n)d 张。")
MAX_SUMMARY = 100
MAX_DETAILS = services.MAX_TEXT
MAX_PLACE = 20
MAX_REASON = 300
CODE_LENGTH = 8  # 31 unambiguous characters (no 0/O, 1/I/L): about 40 bits
MOBILE = re.compile(r"1[0-9]{10}", re.ASCII)
HOUR = timedelta(hours=1)

# The four ways a letter is handled, by the name of their page address, with what it is called.
STEPS = {
    "answer": gettext_lazy("答复"),
    "file": gettext_lazy("转为问题"),
    "support": gettext_lazy("附议到问题"),
    "decline": gettext_lazy("不予采纳"),
}
DONE_AS = {
    Status.ANSWERED: gettext_lazy("答复"),
    Status.FILED: gettext_lazy("转为问题"),
    Status.SUPPORTED: gettext_lazy("附议到问题"),
    Status.DECLINED: gettext_lazy("作出不予采纳"),
}


# --- small helpers -----------------------------------------------------------------------------


def _invalid(message: str, field: str | None = None) -> WorkflowError:
    return WorkflowError(message, status_code=400, field=field)


def _forbid(message: str) -> WorkflowError:
    return WorkflowError(message, status_code=403)


def _text(value: str | None, *, limit: int, required: str | None, field: str) -> str:
    text = (value or "").strip()
    if required and not text:
        raise _invalid(required, field)
    if len(text) > limit:
        raise _invalid(_("这一项不能超过 %(n)d 个字。") % {"n": limit}, field)
    return text


def _digest(purpose: str, value: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def sender_digest(address: str) -> str:
    """Who sent a letter, as a keyed digest of their address: never the address itself."""
    return _digest("letter-sender", address or "")


def text_digest(summary: str, details: str) -> str:
    """The same words, whatever the spacing: for refusing a letter sent twice."""
    words = " ".join(f"{summary}\n{details}".split()).casefold()
    return _digest("letter-text", words)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    """「abcd-2345 」 → 「ABCD2345」; anything that cannot be a code comes out short."""
    return "".join(ch for ch in (code or "").upper() if ch in CODE_ALPHABET)[: CODE_LENGTH + 1]


def clean_mobile(mobile: str | None) -> str:
    """An optional reply number: 11 digits starting with 1 (full-width digits and spaces are
    forgiven), or empty."""
    text = unicodedata.normalize("NFKC", mobile or "")
    text = "".join(ch for ch in text if not ch.isspace() and ch != "-")
    if not text:
        return ""
    if not MOBILE.fullmatch(text):
        raise _invalid(_("手机号请填 11 位数字（以 1 开头），也可以不填。"), "mobile")
    return text


def _when(moment: datetime) -> str:
    local = timezone.localtime(moment)
    if local.date() == timezone.localdate():
        return local.strftime("%H:%M")
    return local.strftime("%m-%d %H:%M")


def _refresh(original: Letter, fresh: Letter) -> Letter:
    """Let the caller's instance show the new state too."""
    if original is not fresh:
        original.refresh_from_db()
    return fresh


# --- who may triage ----------------------------------------------------------------------------


def may_triage(user, project: Project | int) -> bool:
    """A serving supervisor appointed to watch the letter's project."""
    return services.is_serving_supervisor(user) and watches(user, project)


def _who_handled(letter: Letter, step: str) -> str:
    """「这封来信已由李四于 10:42 转为问题（2023-00042），不能再答复。」 — so that the one who lost a
    race knows who won it and how."""
    if letter.handled_at is None:
        return _("这封来信已经%(status)s，不能再%(step)s。") % {
            "status": letter.get_status_display(),
            "step": STEPS[step],
        }
    handler = letter.handled_by
    what = str(DONE_AS.get(letter.status, letter.get_status_display()))
    if letter.issue_id and letter.status in (Status.FILED, Status.SUPPORTED):
        what += _("（%(ref)s）") % {"ref": letter.issue.reference}
    return _("这封来信已由%(who)s于 %(when)s %(what)s，不能再%(step)s。") % {
        "who": str(handler) if handler is not None else _("系统"),
        "when": _when(letter.handled_at),
        "what": what,
        "step": STEPS[step],
    }


def refusal(user, letter: Letter, step: str) -> WorkflowError | None:
    """Why ``user`` may not take ``step`` on ``letter`` as it stands, or None when they may.

    Pages ask before they read a step's fields or photos; each step asks again under the lock.
    """
    if not may_triage(user, letter.project_id):
        return _forbid(_("只有受聘监督这个项目的在任群众监督员可以处理它的居民来信。"))
    if letter.status != Status.NEW:
        return WorkflowError(_who_handled(letter, step))
    return None


def _check(user, letter: Letter, step: str) -> None:
    error = refusal(user, letter, step)
    if error is not None:
        raise error


def _lock(letter: Letter) -> Letter:
    return Letter.objects.select_for_update().get(pk=letter.pk)


def _record(
    letter: Letter, *, actor, kind: str, fields: Sequence[str], text: str = "", now: datetime
) -> LetterEvent:
    """Save the changed fields and write the one event of this step."""
    letter.save(update_fields=[*fields, "updated_at"])
    return LetterEvent.objects.create(
        letter=letter, kind=kind, actor=actor, text=text, created_at=now
    )


def _handled(letter: Letter, actor, now: datetime, status: str) -> list[str]:
    letter.status = status
    letter.handled_by = actor
    letter.handled_at = now
    return ["status", "handled_by", "handled_at"]


# --- a resident sends a letter -----------------------------------------------------------------


def _hotline() -> str:
    return settings.SUPERVISION["HOTLINE"]


def sending_refusal(
    project: Project, sender_address: str, now: datetime | None = None
) -> WorkflowError | None:
    """Why a letter from ``sender_address`` to ``project`` would be one too many now, or None.

    The page asks before it reads any photo; ``send_letter`` asks again inside its transaction.
    """
    since = (now or timezone.now()) - HOUR
    recent = Letter.objects.filter(created_at__gte=since)
    per_address = settings.LETTERS_PER_ADDRESS_PER_HOUR
    if recent.filter(sender_digest=sender_digest(sender_address)).count() >= per_address:
        return WorkflowError(
            _("您这一小时内已经发了 %(n)d 封来信，请过一会儿再发。急事请拨打监督热线 %(hotline)s。")
            % {"n": per_address, "hotline": _hotline()},
            status_code=429,
        )
    if recent.filter(project=project).count() >= settings.LETTERS_PER_PROJECT_PER_HOUR:
        return WorkflowError(
            _("这个项目这一小时收到的来信太多了，请过一会儿再发。急事请拨打监督热线 %(hotline)s。")
            % {"hotline": _hotline()},
            status_code=429,
        )
    return None


def _duplicate(sender: str, text: str, now: datetime) -> WorkflowError | None:
    earlier = (
        Letter.objects.filter(sender_digest=sender, text_digest=text, created_at__gte=now - HOUR)
        .only("code")
        .first()
    )
    if earlier is None:
        return None
    return WorkflowError(
        _(
            "您刚才已经发过内容相同的来信（查询码 %(code)s），监督员会处理，不用再发一次。"
            "想补充情况，请换个说法再写。"
        )
        % {"code": earlier.code},
        status_code=409,
    )


def _unique_code() -> str:
    for _attempt in range(10):
        code = new_code()
        if not Letter.objects.filter(code=code).exists():
            return code
    raise RuntimeError("no free letter code in 10 tries")  # pragma: no cover - 31**8 codes


def _attach_photos(letter: Letter, prepared: Sequence[photo_intake.PreparedPhoto]) -> None:
    """``LetterPhoto`` rows; the files follow on commit. Inside the caller's transaction."""
    for item in prepared:
        web_name, thumb_name = photo_intake.store(item)
        LetterPhoto.objects.create(
            letter=letter,
            image=web_name,
            thumbnail=thumb_name,
            width=item.width,
            height=item.height,
        )


def send_letter(
    *,
    project: Project,
    summary: str,
    details: str = "",
    building: str = "",
    unit: str = "",
    mobile: str = "",
    photos: Sequence = (),
    sender_address: str,
) -> Letter:
    """A resident writes to the project's supervisors (居民来信). Nothing is stored when it is
    refused: too many from this address or to this project in the last hour, the same words
    again within the hour, a photo the intake refuses, or a field that is missing or too long."""
    summary = " ".join((summary or "").split())
    if not summary:
        raise _invalid(_("请用一句话说明您要反映的问题。"), "summary")
    if len(summary) > MAX_SUMMARY:
        raise _invalid(
            _("一句话说明不能超过 %(n)d 个字，详细情况请写在下面。") % {"n": MAX_SUMMARY},
            "summary",
        )
    details = _text(details, limit=MAX_DETAILS, required=None, field="details")
    building = _text(building, limit=MAX_PLACE, required=None, field="building")
    unit = _text(unit, limit=MAX_PLACE, required=None, field="unit")
    mobile = clean_mobile(mobile)
    files = [f for f in photos if f is not None]
    try:
        photo_intake.check_photos(files, limit=MAX_PHOTOS, message=PHOTO_COUNT_MESSAGE)
    except photo_intake.PhotoError as error:
        raise _invalid(str(error), "photos") from None
    sender = sender_digest(sender_address)
    words = text_digest(summary, details)
    refused = sending_refusal(project, sender_address) or _duplicate(sender, words, timezone.now())
    if refused is not None:
        raise refused
    try:
        prepared = photo_intake.prepare_photos(files, limit=MAX_PHOTOS, message=PHOTO_COUNT_MESSAGE)
    except photo_intake.PhotoError as error:
        raise _invalid(str(error), "photos") from None

    with transaction.atomic():
        # One letter to a project at a time: the hour's counts below hold under load.
        Project.objects.select_for_update().filter(pk=project.pk).exists()
        now = timezone.now()
        refused = sending_refusal(project, sender_address, now) or _duplicate(sender, words, now)
        if refused is not None:
            raise refused
        letter = Letter.objects.create(
            project=project,
            code=_unique_code(),
            summary=summary,
            details=details,
            building=building,
            unit=unit,
            mobile=mobile,
            triage_due_at=working_days_deadline(now, settings.LETTER_TRIAGE_WORKING_DAYS),
            sender_digest=sender,
            text_digest=words,
            created_at=now,
        )
        _attach_photos(letter, prepared)
        LetterEvent.objects.create(letter=letter, kind=Kind.SENT, created_at=now)
    return letter


# --- the supervisors triage --------------------------------------------------------------------


def answer_letter(letter: Letter, *, actor, text: str) -> Letter:
    """The supervisor answers the resident; the answer shows on the tracking page."""
    _check(actor, letter, "answer")
    text = _text(text, limit=MAX_DETAILS, required=_("请填写给居民的答复。"), field="text")
    with transaction.atomic():
        fresh = _lock(letter)
        _check(actor, fresh, "answer")
        now = timezone.now()
        fields = _handled(fresh, actor, now, Status.ANSWERED)
        fresh.answer = text
        _record(
            fresh, actor=actor, kind=Kind.ANSWERED, fields=[*fields, "answer"], text=text, now=now
        )
    return _refresh(letter, fresh)


def _stored_photos(letter: Letter) -> list:
    """The letter's photos as files again, read from storage (their web copies)."""
    files = []
    for photo in letter.photos.all():
        try:
            with default_storage.open(photo.image.name) as handle:
                files.append(photo_intake.named(handle.read(), "letter.jpg"))
        except (FileNotFoundError, OSError):
            continue  # a file lost from storage: the issue is filed without it
    return files


def file_letter_as_issue(
    letter: Letter,
    *,
    actor,
    category: str,
    urgency: str = Issue.Urgency.NORMAL,
    title: str | None = None,
    description: str | None = None,
    building: str | None = None,
    households: int | None = None,
    photos: Sequence = (),
) -> Issue:
    """The supervisor files the letter as an issue on the residents' behalf (marked 居民反映):
    its text, building and unit, and its photos (prepared again from the stored copies), with
    any photo the supervisor adds. The letter then follows the issue."""
    _check(actor, letter, "file")
    try:
        prepared = photo_intake.prepare_photos(
            [*_stored_photos(letter), *(f for f in photos if f is not None)]
        )
    except photo_intake.PhotoError as error:
        raise _invalid(str(error), "photos") from None
    with transaction.atomic():
        fresh = _lock(letter)
        _check(actor, fresh, "file")
        issue = services.submit_issue(
            reporter=actor,
            project=fresh.project,
            category=category,
            urgency=urgency,
            title=(title or "").strip() or fresh.summary,
            description=(description or "").strip() or fresh.details or fresh.summary,
            building=fresh.building if building is None else building,
            unit=fresh.unit,
            households=households,
            photos=prepared,
            from_residents=True,
        )
        now = timezone.now()
        fields = _handled(fresh, actor, now, Status.FILED)
        fresh.issue = issue
        _record(
            fresh,
            actor=actor,
            kind=Kind.FILED,
            fields=[*fields, "issue"],
            text=issue.reference,
            now=now,
        )
    _refresh(letter, fresh)
    return issue


def add_letter_as_support(letter: Letter, *, actor, issue: Issue) -> Issue:
    """The letter says what an issue of the same project already says: it counts as support
    (附议) there, and the letter follows that issue."""
    _check(actor, letter, "support")
    if issue.project_id != letter.project_id:
        raise _invalid(_("只能附议到同一个项目的问题。"), "issue")
    with transaction.atomic():
        fresh = _lock(letter)
        _check(actor, fresh, "support")
        services.support_issue(issue, actor=actor, letter=fresh)
        now = timezone.now()
        fields = _handled(fresh, actor, now, Status.SUPPORTED)
        fresh.issue = issue
        _record(
            fresh,
            actor=actor,
            kind=Kind.SUPPORTED,
            fields=[*fields, "issue"],
            text=issue.reference,
            now=now,
        )
    _refresh(letter, fresh)
    issue.refresh_from_db()
    return issue


def decline_letter(letter: Letter, *, actor, reason: str) -> Letter:
    """Not taken up (不予采纳), with a reason the resident reads on the tracking page."""
    _check(actor, letter, "decline")
    reason = _text(reason, limit=MAX_REASON, required=_("请说明不予采纳的原因。"), field="reason")
    with transaction.atomic():
        fresh = _lock(letter)
        _check(actor, fresh, "decline")
        now = timezone.now()
        fields = _handled(fresh, actor, now, Status.DECLINED)
        fresh.decline_reason = reason
        _record(
            fresh,
            actor=actor,
            kind=Kind.DECLINED,
            fields=[*fields, "decline_reason"],
            text=reason,
            now=now,
        )
    return _refresh(letter, fresh)


def waiting_counts(user) -> dict[str, int]:
    """What 我的 shows in one query: the letters of the user's projects waiting for triage, and
    how many of them are past their limit."""
    return letters_for(user).aggregate(
        waiting=Count("pk", filter=Q(status=Status.NEW)),
        late=Count("pk", filter=Q(status=Status.NEW, triage_due_at__lt=timezone.now())),
    )


# --- the sweep ---------------------------------------------------------------------------------


def escalation_due(letter: Letter) -> datetime | None:
    """One working day after the triage limit: then an untriaged letter goes to the office."""
    if letter.triage_due_at is None:
        return None
    return working_days_deadline(letter.triage_due_at, 1)


def _supervisors_of(project_id: int):
    """The project's serving supervisors, of its county (``access.watched_projects``)."""
    today = timezone.localdate()
    county = Project.objects.filter(pk=project_id).values(f"{PROJECT_COUNTY}_id")[:1]
    return get_user_model().objects.filter(
        region=county,
        is_active=True,
        supervisor__projects=project_id,
        supervisor__is_active=True,
        supervisor__appointed_on__lte=today,
        supervisor__term_ends_on__gte=today,
    )


def _email_reminder(letter_id: int) -> None:
    """After the reminder committed: one email to each of the project's serving supervisors who
    gave an address (the reminder itself shows on 我的). Never the resident's number."""
    letter = Letter.objects.select_related("project").filter(pk=letter_id).first()
    if letter is None:
        return
    subject = _("【群众监督】居民来信待处理：%(summary)s") % {"summary": letter.summary}
    body = "\n".join(
        [
            _("项目：%(project)s") % {"project": letter.project},
            _("来信：%(summary)s") % {"summary": letter.summary},
            _("这封居民来信已超过处理时限，请尽快答复、转为问题、附议或说明不予采纳的原因。"),
            absolute_url(reverse("letter-triage", args=[letter.pk])),
        ]
    )
    for user in _supervisors_of(letter.project_id).exclude(email="").order_by("pk"):
        delivery = Delivery.objects.create(
            channel=Delivery.Channel.EMAIL, target=user.email, subject=subject, body=body
        )
        enqueue_delivery(delivery.pk)
    from . import outbound  # noqa: PLC0415  (see notifications.issue_changed)

    outbound.queue_letter_messages(letter)  # WeChat and SMS, for those who chose them


def remind_letter(letter: Letter, *, now: datetime | None = None) -> Letter:
    """The triage limit passed: the supervisors are reminded, once."""
    now = now or timezone.now()
    with transaction.atomic():
        fresh = _lock(letter)
        due = fresh.triage_due_at
        if not (fresh.status == Status.NEW and fresh.reminded_at is None and due and due <= now):
            raise WorkflowError(_("这封来信不需要提醒。"))
        fresh.reminded_at = now
        _record(
            fresh,
            actor=None,
            kind=Kind.REMINDED,
            fields=["reminded_at"],
            text=_("已超过 %(n)d 个工作日的处理时限，提醒监督员尽快处理。")
            % {"n": settings.LETTER_TRIAGE_WORKING_DAYS},
            now=now,
        )
        transaction.on_commit(lambda: _email_reminder(fresh.pk))
    return _refresh(letter, fresh)


def escalate_letter(letter: Letter, *, now: datetime | None = None) -> Letter:
    """Still untriaged a working day after the limit: shown on the subdistrict office's panel."""
    now = now or timezone.now()
    with transaction.atomic():
        fresh = _lock(letter)
        due = escalation_due(fresh)
        if not (fresh.status == Status.NEW and fresh.escalated_at is None and due and due <= now):
            raise WorkflowError(_("这封来信不需要转街道督促。"))
        fresh.escalated_at = now
        _record(
            fresh,
            actor=None,
            kind=Kind.ESCALATED,
            fields=["escalated_at"],
            text=_("超过处理时限仍未处理，已转街道办事处督促。"),
            now=now,
        )
    return _refresh(letter, fresh)


def erase_mobile(letter: Letter, *, now: datetime | None = None) -> Letter:
    """The reply number is no longer needed: erased, and the erasure recorded."""
    now = now or timezone.now()
    keep = timedelta(days=settings.LETTER_MOBILE_KEEP_DAYS)
    with transaction.atomic():
        fresh = _lock(letter)
        handled = fresh.handled_at
        if not (fresh.mobile and fresh.status != Status.NEW and handled and handled <= now - keep):
            raise WorkflowError(_("这封来信的联系电话还不到删除的时候。"))
        fresh.mobile = ""
        _record(
            fresh,
            actor=None,
            kind=Kind.ERASED,
            fields=["mobile"],
            text=_("来信处理满 %(n)d 天，联系电话已删除。")
            % {"n": settings.LETTER_MOBILE_KEEP_DAYS},
            now=now,
        )
    return _refresh(letter, fresh)


def sweep_letters(
    now: datetime | None = None,
) -> tuple[list[Letter], list[Letter], list[Letter]]:
    """The periodic job's part for letters: remind, escalate, erase. Returns (reminded,
    escalated, erased); running it again changes nothing."""
    now = now or timezone.now()
    untriaged = Letter.objects.filter(status=Status.NEW, triage_due_at__lte=now)
    reminded = []
    for letter in untriaged.filter(reminded_at__isnull=True).order_by("pk"):
        try:
            reminded.append(remind_letter(letter, now=now))
        except WorkflowError:
            continue  # triaged meanwhile
    escalated = []
    for letter in untriaged.filter(escalated_at__isnull=True).order_by("pk"):
        due = escalation_due(letter)
        if due is None or due > now:
            continue
        try:
            escalated.append(escalate_letter(letter, now=now))
        except WorkflowError:
            continue
    erased = []
    keep = timedelta(days=settings.LETTER_MOBILE_KEEP_DAYS)
    handled = (
        Letter.objects.exclude(status=Status.NEW)
        .exclude(mobile="")
        .filter(handled_at__lte=now - keep)
        .order_by("pk")
    )
    for letter in handled:
        try:
            erased.append(erase_mobile(letter, now=now))
        except WorkflowError:
            continue
    return reminded, escalated, erased
