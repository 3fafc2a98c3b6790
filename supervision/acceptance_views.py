"""Pages of 竣工验收 with residents: the public A4 record, scheduling (the bureau or the
subdistrict office), a representative's view by household code, an invited supervisor's view
or a paper one entered (代录), a reservation turned into a 「验收遗留」 issue, and the close."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from . import acceptance as service
from .forms import PhotosField
from .models import (
    Acceptance,
    AcceptancePhoto,
    AcceptanceView,
    Household,
    Issue,
    Project,
    in_programme,
    project_county,
)
from .residents import normalise_code
from .security import as_id, client_ip, serve_private_file
from .services import WorkflowError
from .views import qr_svg

GUESSES_ALLOWED = 10
GUESS_WINDOW = 15 * 60
OPINIONS = [
    (AcceptanceView.Opinion.AGREE, gettext_lazy("同意验收")),
    (AcceptanceView.Opinion.RESERVATION, gettext_lazy("有保留意见")),
]


class ScheduleForm(forms.Form):
    held_on = forms.DateField(
        label=gettext_lazy("验收日期"), widget=forms.DateInput(attrs={"type": "date"})
    )
    place = forms.CharField(label=gettext_lazy("地点"), max_length=100)
    households = forms.ModelMultipleChoiceField(
        label=gettext_lazy("居民代表（从征询住户中选择）"),
        queryset=Household.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["households"].queryset = service.representative_choices(project)

    def clean_held_on(self):
        day = self.cleaned_data["held_on"]
        if day < timezone.localdate():
            raise forms.ValidationError(_("验收日期不能早于今天。"))
        if day.year > timezone.localdate().year + 2:
            raise forms.ValidationError(_("验收日期太远了，请核对。"))
        return day


class OpinionForm(forms.Form):
    opinion = forms.ChoiceField(
        label=gettext_lazy("意见"), choices=OPINIONS, widget=forms.RadioSelect
    )
    note = forms.CharField(
        label=gettext_lazy("说明（有保留意见时必填）"),
        required=False,
        max_length=service.MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    photos = PhotosField(label=gettext_lazy("照片（可选）"))


class SignForm(OpinionForm):
    code = forms.CharField(label=gettext_lazy("投票码（通知单上的 12 位码）"), max_length=40)

    field_order = ["code", "opinion", "note", "photos"]


class LeftoverForm(forms.Form):
    deadline = forms.DateField(
        label=gettext_lazy("整改期限"), widget=forms.DateInput(attrs={"type": "date"})
    )


def _go(request: HttpRequest, url: str) -> HttpResponse:
    """After a successful POST: a redirect, or for the upload script (issue-form.js, which sends
    the photos with a progress bar) the address to go to."""
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        response = HttpResponse(status=200)
        response["X-Location"] = url
        return response
    return redirect(url)


def _views_of(acceptance: Acceptance) -> list[AcceptanceView]:
    return list(
        acceptance.views.select_related("user", "household", "issue", "entered_by")
        .prefetch_related("photos")
        .order_by("-role", "pk")  # supervisors, then representatives
    )


def _record_context(request: HttpRequest, project: Project, acceptance: Acceptance | None):
    user = request.user
    url = request.build_absolute_uri(project.get_absolute_url())
    context = {
        "project": project,
        "acceptance": acceptance,
        "rounds": list(project.acceptances.order_by("held_on", "pk")),
        "qr": qr_svg(url, scale=3),
        "page_url": url,
        "may_manage": service.may_manage(user, project),
        "today": timezone.localdate(),
    }
    if acceptance is None:
        return context
    views = _views_of(acceptance)
    open_issues = Issue.objects.filter(project=project).open()
    mine = next((v for v in views if user.is_authenticated and v.user_id == user.pk), None)
    context.update(
        {
            "views": views,
            "supervisor_views": [v for v in views if v.role == AcceptanceView.Role.SUPERVISOR],
            "representative_views": [
                v for v in views if v.role == AcceptanceView.Role.REPRESENTATIVE
            ],
            "tally": service.tally(acceptance, views),
            "open_issue_count": open_issues.count(),
            "open_issues": list(
                open_issues.visible_to(user).order_by("-urgency", "created_at")[:50]
            ),
            "visible_issue_ids": set(
                Issue.objects.visible_to(user)
                .filter(acceptance_view__acceptance=acceptance)
                .values_list("pk", flat=True)
            ),
            "invited": mine is not None and service.services.is_serving_supervisor(user),
            "leftover_form": LeftoverForm(),
        }
    )
    return context


@never_cache
@require_safe
def acceptance_record(request: HttpRequest, pk: int) -> HttpResponse:
    """验收记录: public, printable on A4. Representatives by building and unit, never by name."""
    project = get_object_or_404(
        Project.objects.select_related("neighbourhood__subdistrict", "contractor"), pk=pk
    )
    chosen = as_id(request.GET.get("round"))
    acceptances = project.acceptances.order_by("-held_on", "-pk")
    acceptance = get_object_or_404(acceptances, pk=chosen) if chosen else acceptances.first()
    return render(
        request,
        "supervision/acceptance/record.html",
        _record_context(request, project, acceptance),
    )


@login_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def acceptance_new(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    if not service.may_manage(request.user, project):
        raise Http404  # another scope's project: its management does not exist for them
    form = ScheduleForm(request.POST or None, project=project)
    error, status = "", 200
    if request.method == "POST":
        if form.is_valid():
            try:
                acceptance = service.schedule_acceptance(
                    project,
                    actor=request.user,
                    held_on=form.cleaned_data["held_on"],
                    place=form.cleaned_data["place"],
                    households=form.cleaned_data["households"],
                )
            except WorkflowError as refusal:
                error, status = refusal.message, refusal.status_code
            else:
                messages.success(request, _("已安排竣工验收，项目的监督员已列入受邀名单。"))
                return redirect(acceptance)
        else:
            status = 400
    return render(
        request,
        "supervision/acceptance/new.html",
        {"project": project, "form": form, "error": error},
        status=status,
    )


def _acceptance(pk: int) -> Acceptance:
    return get_object_or_404(Acceptance.objects.select_related("project"), pk=pk)


def _guesses_left(request: HttpRequest) -> int:
    return GUESSES_ALLOWED - cache.get(f"acceptance-guess:{client_ip(request)}", 0)


def _representative(acceptance: Acceptance, code: str | None) -> AcceptanceView | None:
    """The representative's view the household code (as typed) belongs to, if any."""
    code = (code or "").strip()
    if not code or len(code) > SignForm.base_fields["code"].max_length:
        return None
    return (
        acceptance.views.filter(household__code=normalise_code(code))
        .select_related("household")
        .first()
    )


def _wrong_guess(request: HttpRequest) -> None:
    key = f"acceptance-guess:{client_ip(request)}"
    cache.add(key, 0, GUESS_WINDOW)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, GUESS_WINDOW)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def acceptance_sign(request: HttpRequest, pk: int) -> HttpResponse:
    """A residents' representative records its view on a phone with its household code (the
    code of the consultation's notice; it travels in the POST body only)."""
    acceptance = _acceptance(pk)
    form = SignForm(request.POST or None, request.FILES or None)
    error, status = "", 200
    if request.method == "POST":
        if not acceptance.is_open:
            error, status = _("这次验收已经结束，不能再记录意见。"), 409
        elif _guesses_left(request) <= 0:
            error, status = _("投票码输错次数太多，请 15 分钟后再试，或请监督员代录。"), 429
        elif (household := _representative(acceptance, request.POST.get("code"))) is None:
            # A code that is no representative's is answered without reading any photo.
            form = SignForm(request.POST)
            if form.is_valid():
                _wrong_guess(request)
                form.add_error("code", _("投票码不正确，或这一户不是本次验收的居民代表。"))
            status = 400
        elif form.is_valid():
            try:
                view = service.record_view(
                    acceptance,
                    opinion=form.cleaned_data["opinion"],
                    note=form.cleaned_data["note"],
                    photos=form.cleaned_data["photos"],
                    household=household.household,
                )
            except WorkflowError as refusal:
                error, status = refusal.message, refusal.status_code
            else:
                messages.success(
                    request,
                    _("已记录 %(who)s 的意见：%(o)s。")
                    % {"who": view.public_name, "o": view.get_opinion_display()},
                )
                return _go(request, acceptance.get_absolute_url())
        else:
            status = 400
    return render(
        request,
        "supervision/acceptance/sign.html",
        {"acceptance": acceptance, "project": acceptance.project, "form": form, "error": error},
        status=status,
    )


@login_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def acceptance_opinion(request: HttpRequest, pk: int) -> HttpResponse:
    """An invited supervisor records their own view, or a representative's paper form (代录)."""
    acceptance = _acceptance(pk)
    mine = service.invited_view(acceptance, request.user)
    pending = acceptance.views.filter(
        role=AcceptanceView.Role.REPRESENTATIVE, opinion=""
    ).select_related("household")
    form = OpinionForm(request.POST or None, request.FILES or None)
    error, status = "", 200
    if mine is None or not service.services.is_serving_supervisor(request.user):
        error, status = _("您不在这次验收的受邀名单中，不能记录意见。"), 403
        form = None
    elif request.method == "POST":
        chosen = as_id(request.POST.get("household"))
        on_paper = None
        if chosen:
            on_paper = next((v.household for v in pending if v.household_id == chosen), None)
            if on_paper is None:
                error, status = _("这一户不是本次验收的居民代表，或已经记录过意见。"), 409
        if not error and form.is_valid():
            try:
                service.record_view(
                    acceptance,
                    opinion=form.cleaned_data["opinion"],
                    note=form.cleaned_data["note"],
                    photos=form.cleaned_data["photos"],
                    actor=None if on_paper else request.user,
                    household=on_paper,
                    entered_by=request.user if on_paper else None,
                )
            except WorkflowError as refusal:
                error, status = refusal.message, refusal.status_code
            else:
                messages.success(request, _("意见已记录。"))
                return _go(request, acceptance.get_absolute_url())
        elif not error:
            status = 400
    return render(
        request,
        "supervision/acceptance/opinion.html",
        {
            "acceptance": acceptance,
            "project": acceptance.project,
            "form": form,
            "mine": mine,
            "pending": pending,
            "error": error,
        },
        status=status,
    )


def _refused(request: HttpRequest, acceptance: Acceptance, refusal: WorkflowError):
    context = _record_context(request, acceptance.project, acceptance)
    context["error"] = refusal.message
    return render(
        request, "supervision/acceptance/record.html", context, status=refusal.status_code
    )


@login_required
@require_POST
def acceptance_leftover(request: HttpRequest, pk: int, view: int) -> HttpResponse:
    acceptance = _acceptance(pk)
    row = get_object_or_404(acceptance.views.select_related("household", "issue"), pk=view)
    if service.invited_view(acceptance, request.user) is None:
        raise Http404  # only the acceptance's own supervisors carry its reservations
    form = LeftoverForm(request.POST)
    if not form.is_valid():
        return _refused(request, acceptance, WorkflowError(_("请填写整改期限。"), status_code=400))
    try:
        issue = service.file_leftover(
            row, actor=request.user, deadline=form.cleaned_data["deadline"]
        )
    except WorkflowError as refusal:
        return _refused(request, acceptance, refusal)
    messages.success(request, _("保留意见已转为验收遗留问题 %(ref)s。") % {"ref": issue.reference})
    return redirect(acceptance)


@login_required
@require_POST
def acceptance_close(request: HttpRequest, pk: int) -> HttpResponse:
    acceptance = _acceptance(pk)
    if not service.may_manage(request.user, acceptance.project):
        raise Http404
    try:
        service.close_acceptance(acceptance, actor=request.user)
    except WorkflowError as refusal:
        return _refused(request, acceptance, refusal)
    messages.success(request, acceptance.outcome)
    return redirect(acceptance)


@login_required
@require_safe
def acceptance_photo(request: HttpRequest, pk: int, thumbnail: bool = False) -> HttpResponse:
    """A photo of a view: for the supervisors and the bureau of the project's county (the
    oversight's below it), and the staff who manage it."""
    photo = get_object_or_404(
        AcceptancePhoto.objects.select_related(
            "view__acceptance__project__neighbourhood__subdistrict"
        ),
        pk=pk,
    )
    user = request.user
    project = photo.view.acceptance.project
    readers = user.is_bureau or user.is_supervisor or user.is_oversight
    if not (
        (readers and in_programme(user, project_county(project)))
        or service.may_manage(user, project.pk)
    ):
        raise Http404
    return serve_private_file(photo.thumbnail if thumbnail else photo.image)


def record_url(project: Project) -> str:
    return reverse("acceptance-record", args=[project.pk])
