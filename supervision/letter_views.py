"""Residents' letters (居民来信): a resident writes from the project page without an account and
follows the letter by its 查询码; the project's supervisors find their letters on 我的 and triage
each one (answer, file as an issue, add as support to an issue, decline).

Views are short: they call one service of ``supervision.letters`` and turn its ``WorkflowError``
into a message on the page. A letter's mobile number is shown (masked) on the triage page only.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from . import letters, services
from .access import letters_for
from .forms import PhotosField
from .models import Issue, Letter, LetterEvent, Photo, Project
from .security import client_ip, serve_private_file
from .services import WorkflowError

# The last code this browser sent, for the page that shows it after sending.
SENT_KEY = "letter_sent"
# Filled only by scripts: the field is hidden from people (and from screen readers).
HONEYPOT = "website"
# Wrong 查询码 per address, as with the voting codes.
GUESSES_ALLOWED = 10
GUESS_WINDOW = 15 * 60
WAITING_SHOWN = 100
HANDLED_SHOWN = 30
SUPPORT_CHOICES = 50


def _go(request: HttpRequest, url: str) -> HttpResponse:
    """After a successful POST: a redirect, or for the upload script (issue-form.js) the address
    to go to."""
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        response = HttpResponse(status=200)
        response["X-Location"] = url
        return response
    return redirect(url)


def _show(form: forms.Form, error: WorkflowError) -> None:
    """A refusal beside the field it is about, else above the form."""
    field = getattr(error, "field", None)
    form.add_error(field if field in form.fields else None, error.message)


def spaced(code: str) -> str:
    """「ABCD2345」 → 「ABCD 2345」: easier to read out and copy by hand."""
    return f"{code[:4]} {code[4:]}"


# --- a resident writes ------------------------------------------------------------------------


class LetterForm(forms.Form):
    """What a resident fills in on the phone: one sentence is enough."""

    summary = forms.CharField(
        label=gettext_lazy("一句话说明问题"),
        max_length=letters.MAX_SUMMARY,
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("如：3 幢门口的围挡倒了")}),
    )
    photos = PhotosField(  # up to three, refused by count before any is read
        max_photos=letters.MAX_PHOTOS,
        count_message=letters.PHOTO_COUNT_MESSAGE,
        label=gettext_lazy("照片（可不拍，最多 3 张）"),
        help_text=gettext_lazy("照片里的位置等信息会被去掉，不会公开。"),
    )
    details = forms.CharField(
        label=gettext_lazy("详细情况（可不填）"),
        required=False,
        max_length=letters.MAX_DETAILS,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": gettext_lazy("在哪里、从什么时候开始、影响到谁")}
        ),
    )
    building = forms.CharField(label=gettext_lazy("楼栋（可不填）"), max_length=20, required=False)
    unit = forms.CharField(label=gettext_lazy("单元（可不填）"), max_length=20, required=False)
    mobile = forms.CharField(
        label=gettext_lazy("手机号（可不填）"),
        max_length=20,
        required=False,
        help_text=gettext_lazy("留了号码，监督员可以打电话问您情况、告诉您结果。"),
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}),
    )
    website = forms.CharField(
        label=gettext_lazy("请不要填写这一项"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("building", "unit"):
            self.fields[name].widget.attrs.setdefault("inputmode", "text")

    def clean_mobile(self) -> str:
        try:
            return letters.clean_mobile(self.cleaned_data.get("mobile"))
        except WorkflowError as error:
            raise forms.ValidationError(error.message) from None


@never_cache
def letter_new(request: HttpRequest, pk: int) -> HttpResponse:
    """/projects/<id>/letters/new/: no account needed. A refused letter stores nothing."""
    project = get_object_or_404(Project.objects.select_related("neighbourhood"), pk=pk)
    status = 200
    refusal = ""
    form = LetterForm()
    if request.method == "POST":
        if request.POST.get(HONEYPOT):
            # Only a script fills the hidden field: answered as if sent, nothing stored.
            request.session[SENT_KEY] = letters.new_code()
            return _go(request, reverse("letter-sent", args=[project.pk]))
        address = client_ip(request)
        refused = letters.sending_refusal(project, address)
        if refused is not None:
            # One too many: said before any photo is read; what was typed stays in the form.
            form = LetterForm(initial=request.POST.dict())
            refusal, status = refused.message, refused.status_code
        else:
            form = LetterForm(request.POST, request.FILES)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    letter = letters.send_letter(
                        project=project,
                        summary=data["summary"],
                        details=data["details"],
                        building=data["building"],
                        unit=data["unit"],
                        mobile=data["mobile"],
                        photos=data["photos"],
                        sender_address=address,
                    )
                except WorkflowError as error:
                    _show(form, error)
                    status = error.status_code
                else:
                    request.session[SENT_KEY] = letter.code
                    return _go(request, reverse("letter-sent", args=[project.pk]))
            else:
                status = 400
    return render(
        request,
        "supervision/letters/new.html",
        {"project": project, "form": form, "refusal": refusal},
        status=status,
    )


@never_cache
@require_safe
def letter_sent(request: HttpRequest, pk: int) -> HttpResponse:
    """The 查询码 of the letter this browser just sent, big, with the tracking link."""
    project = get_object_or_404(Project, pk=pk)
    code = request.session.get(SENT_KEY)
    if not code:
        return redirect(project)
    track = reverse("letter-track", args=[code])
    return render(
        request,
        "supervision/letters/sent.html",
        {
            "project": project,
            "code": spaced(code),
            "track_url": track,
            "track_link": request.build_absolute_uri(track),
        },
    )


# --- the resident follows it ------------------------------------------------------------------


def _guess_key(request: HttpRequest) -> str:
    return f"letter-guess:{client_ip(request)}"


def _wrong_guess(request: HttpRequest) -> None:
    key = _guess_key(request)
    cache.add(key, 0, GUESS_WINDOW)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, GUESS_WINDOW)


def _letter_by_code(request: HttpRequest, code: str, queryset=None):
    """The letter of ``code``, or (None, message, status); wrong codes are counted per address."""
    if cache.get(_guess_key(request), 0) >= GUESSES_ALLOWED:
        return None, _("查询码输错次数太多，请 15 分钟后再试。"), 429
    code = letters.normalise_code(code)
    queryset = queryset if queryset is not None else Letter.objects.all()
    letter = queryset.filter(code=code).first() if len(code) == letters.CODE_LENGTH else None
    if letter is None:
        _wrong_guess(request)
        return None, _("没有找到这个查询码，请核对发信后显示的 8 位查询码。"), 404
    return letter, "", 200


def _private(response: HttpResponse) -> HttpResponse:
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Cache-Control"] = "private, no-store"
    return response


@never_cache
@require_safe
def letter_track(request: HttpRequest, code: str) -> HttpResponse:
    """/letters/<code>/: the letter, its answer, or the issue it became and that issue's public
    progress (status, reference, deadline; after-photos only when the issue is public). Never a
    name or a number."""
    letter, error, status = _letter_by_code(
        request,
        code,
        Letter.objects.select_related("project", "issue").prefetch_related("photos"),
    )
    if letter is None:
        return _private(
            render(request, "supervision/letters/missing.html", {"error": error}, status=status)
        )
    issue = letter.issue
    due = letter.triage_due_at
    after = []
    if issue is not None and issue.is_public:
        after = list(issue.photos.filter(kind=Photo.Kind.AFTER).order_by("pk"))
    return _private(
        render(
            request,
            "supervision/letters/track.html",
            {
                "letter": letter,
                "code": spaced(letter.code),
                "issue": issue,
                "after": after,
                "photos": list(letter.photos.all()),
                "overdue": letter.is_open and due is not None and due < timezone.now(),
            },
        )
    )


@require_safe
def letter_photo(request: HttpRequest, code: str, pk: int, thumbnail: bool = False) -> FileResponse:
    """A letter's photo, for whoever holds its 查询码 (the resident, the project's supervisors)."""
    letter, error, status = _letter_by_code(request, code)
    if letter is None:
        return _private(HttpResponse(error, status=status, content_type="text/plain"))
    item = get_object_or_404(letter.photos.all(), pk=pk)
    return serve_private_file(item.thumbnail if thumbnail else item.image)


# --- the supervisors triage ----------------------------------------------------------------------


def _serving(request: HttpRequest) -> None:
    if not services.is_serving_supervisor(request.user):
        raise PermissionDenied(_("只有在任的群众监督员可以处理居民来信。"))


@login_required
@never_cache
@require_safe
def letter_inbox(request: HttpRequest) -> HttpResponse:
    """/me/letters/: the letters of the projects I watch, those waiting first (oldest first)."""
    _serving(request)
    mine = letters_for(request.user).select_related("project").annotate(photo_count=Count("photos"))
    waiting = list(
        mine.filter(status=Letter.Status.NEW).order_by("created_at", "pk")[:WAITING_SHOWN]
    )
    handled = list(
        mine.exclude(status=Letter.Status.NEW)
        .select_related("issue")
        .order_by("-handled_at", "-pk")[:HANDLED_SHOWN]
    )
    return render(
        request,
        "supervision/letters/inbox.html",
        {
            "waiting": waiting,
            "handled": handled,
            "more": len(waiting) == WAITING_SHOWN,
            "now": timezone.now(),
        },
    )


def _letter_for(request: HttpRequest, pk: int) -> Letter:
    """The letter if it is of a project the user watches (else 404); a supervisor whose
    appointment ended is refused (403)."""
    letter = get_object_or_404(
        letters_for(request.user).select_related("project", "issue", "handled_by"), pk=pk
    )
    _serving(request)
    return letter


class LetterStepForm(forms.Form):
    """A triage step's fields; ``run`` calls the one service behind it."""

    step = ""
    label = ""
    button_class = "btn-primary"
    multipart = False

    def __init__(self, *args, letter: Letter, **kwargs):
        self.letter = letter
        kwargs.setdefault("auto_id", f"{self.step}-%s")
        super().__init__(*args, **kwargs)

    def run(self, user):  # pragma: no cover - every subclass defines it
        raise NotImplementedError


class AnswerForm(LetterStepForm):
    step, label = "answer", gettext_lazy("答复居民")
    text = forms.CharField(
        label=gettext_lazy("答复内容（居民凭查询码可以看到，不显示您的姓名）"),
        max_length=letters.MAX_DETAILS,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def run(self, user):
        return letters.answer_letter(self.letter, actor=user, text=self.cleaned_data["text"])


class FileForm(LetterStepForm):
    step, label, multipart = "file", gettext_lazy("转为问题（代居民反映）"), True
    category = forms.ChoiceField(
        label=gettext_lazy("问题类别"), choices=Issue.Category.choices, widget=forms.RadioSelect
    )
    urgency = forms.ChoiceField(
        label=gettext_lazy("紧急程度"),
        choices=Issue.Urgency.choices,
        initial=Issue.Urgency.NORMAL,
        required=False,  # 一般 unless said
        widget=forms.RadioSelect,
    )
    title = forms.CharField(label=gettext_lazy("一句话说明问题"), max_length=100)
    description = forms.CharField(
        label=gettext_lazy("详细情况"),
        max_length=services.MAX_TEXT,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    building = forms.CharField(label=gettext_lazy("楼栋"), max_length=20, required=False)
    households = forms.IntegerField(
        label=gettext_lazy("代表多少户居民（居民意见填写）"),
        min_value=1,
        max_value=10000,
        required=False,
    )
    photos = PhotosField(
        label=gettext_lazy("补充现场照片（可选）"),
        help_text=gettext_lazy("来信的照片会一起带上。"),
    )

    def __init__(self, *args, letter: Letter, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "title": letter.summary,
                "description": letter.details,
                "building": letter.building,
                "urgency": Issue.Urgency.NORMAL,
            },
        )
        super().__init__(*args, letter=letter, **kwargs)

    def run(self, user):
        d = self.cleaned_data
        return letters.file_letter_as_issue(
            self.letter,
            actor=user,
            category=d["category"],
            urgency=d["urgency"] or Issue.Urgency.NORMAL,
            title=d["title"],
            description=d["description"],
            building=d["building"],
            households=d["households"],
            photos=d["photos"],
        )


class SupportForm(LetterStepForm):
    step, label = "support", gettext_lazy("附议到已有问题")
    issue = forms.TypedChoiceField(label=gettext_lazy("说的是哪个问题"), coerce=int, choices=())

    def __init__(self, *args, letter: Letter, **kwargs):
        super().__init__(*args, letter=letter, **kwargs)
        issues = (
            Issue.objects.filter(project=letter.project_id)
            .exclude(status__in=Issue.FINAL_STATUSES)
            .only("pk", "reference", "title", "status")
            .order_by("-created_at", "-pk")[:SUPPORT_CHOICES]
        )
        self.fields["issue"].choices = [("", _("（请选择本项目未办结的问题）"))] + [
            (issue.pk, f"{issue.reference} {issue.title}（{issue.get_status_display()}）")
            for issue in issues
        ]

    def run(self, user):
        issue = Issue.objects.filter(
            project=self.letter.project_id, pk=self.cleaned_data["issue"]
        ).first()
        if issue is None:
            raise WorkflowError(_("只能附议到同一个项目的问题。"), status_code=400, field="issue")
        return letters.add_letter_as_support(self.letter, actor=user, issue=issue)


class DeclineForm(LetterStepForm):
    step, label, button_class = "decline", gettext_lazy("不予采纳"), "btn-outline-danger"
    reason = forms.CharField(
        label=gettext_lazy("原因（居民凭查询码可以看到）"),
        max_length=letters.MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def run(self, user):
        return letters.decline_letter(self.letter, actor=user, reason=self.cleaned_data["reason"])


STEP_FORMS: dict[str, type[LetterStepForm]] = {
    form.step: form for form in (AnswerForm, FileForm, SupportForm, DeclineForm)
}


def _triage(
    request: HttpRequest,
    letter: Letter,
    *,
    bound: dict | None = None,
    refusal: str = "",
    status: int = 200,
) -> HttpResponse:
    bound = bound or {}
    step_forms = []
    if letter.is_open:
        step_forms = [bound.get(step) or form(letter=letter) for step, form in STEP_FORMS.items()]
    events = list(
        letter.events.exclude(kind=LetterEvent.Kind.SENT)
        .select_related("actor")
        .order_by("created_at", "pk")
    )
    return render(
        request,
        "supervision/letters/triage.html",
        {
            "letter": letter,
            "code": spaced(letter.code),
            "photos": list(letter.photos.all()),
            "events": events,
            "step_forms": step_forms,
            "open_step": next(iter(bound), ""),
            "refusal": refusal,
        },
        status=status,
    )


@login_required
@never_cache
@require_safe
def letter_triage(request: HttpRequest, pk: int) -> HttpResponse:
    """/me/letters/<id>/: one letter, its masked number, and the four ways to handle it."""
    return _triage(request, _letter_for(request, pk))


@login_required
@never_cache
@require_POST
def letter_step(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """POST one triage step. Refusals change nothing and say why on the letter's page."""
    letter = _letter_for(request, pk)
    step = action
    refused = letters.refusal(request.user, letter, step)
    if refused is not None:
        # Refuse first: no point asking to fix the fields, or reading photos, of such a step.
        return _triage(request, letter, refusal=refused.message, status=refused.status_code)
    form = STEP_FORMS[step](request.POST, request.FILES, letter=letter)
    if not form.is_valid():
        return _triage(
            request,
            letter,
            bound={step: form},
            refusal=_("请按提示修改后再提交。"),
            status=400,
        )
    try:
        form.run(request.user)
    except WorkflowError as error:
        letter = _letter_for(request, pk)
        if getattr(error, "field", None) in form.fields:
            _show(form, error)
            return _triage(
                request, letter, bound={step: form}, refusal=error.message, status=error.status_code
            )
        return _triage(request, letter, refusal=error.message, status=error.status_code)
    messages.success(request, _("已%(step)s。") % {"step": form.label})
    return _go(request, reverse("letter-triage", args=[letter.pk]))
