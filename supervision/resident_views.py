"""Pages for residents deciding and supervisors patrolling: consultation ballots and results,
paper ballots (代录), printable code slips, patrol logs, and the supervisor directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Max, Prefetch, Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from . import photos as photo_intake
from . import residents, services
from .access import (
    consultations_managed_by,
    patrols_for,
    programme_at,
    watched_projects,
    watches,
)
from .forms import PhotosField, prepare_photo_fields
from .models import (
    PROJECT_COUNTY,
    Consultation,
    Department,
    Household,
    Patrol,
    PatrolCheck,
    PatrolPhoto,
    Project,
    Supervisor,
    department_projects,
    in_programme,
    programme,
)
from .security import as_id, client_ip, mask_mobile, serve_private_file
from .views import qr_svg

GUESSES_ALLOWED = 10
GUESS_WINDOW = 15 * 60


# --- consultations -----------------------------------------------------------------------------


class BallotForm(forms.Form):
    """One field per item: agree or not, and the preferred option where the item has some."""

    def __init__(self, *args, consultation: Consultation, ballot=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.items = list(consultation.items.all())
        current = {}
        if ballot is not None:
            current = {a.item_id: a for a in ballot.answers.all()}
        for item in self.items:
            answer = current.get(item.pk)
            self.fields[f"item-{item.pk}"] = forms.TypedChoiceField(
                # The question is the fieldset's legend; the choice says what is asked of them.
                label=_("您的意见"),
                choices=[("yes", _("同意")), ("no", _("不同意"))],
                widget=forms.RadioSelect,
                initial=None if answer is None else ("yes" if answer.agree else "no"),
            )
            options = item.option_list()
            if options:
                self.fields[f"option-{item.pk}"] = forms.ChoiceField(
                    label=_("倾向的方案"),
                    choices=[("", _("（不选）"))] + [(o, o) for o in options],
                    required=False,
                    initial=answer.option if answer else "",
                )

    def answers(self) -> dict[int, tuple[bool, str]]:
        return {
            item.pk: (
                self.cleaned_data[f"item-{item.pk}"] == "yes",
                self.cleaned_data.get(f"option-{item.pk}", "") or "",
            )
            for item in self.items
        }

    def rows(self):
        for item in self.items:
            yield (
                item,
                self[f"item-{item.pk}"],
                (self[f"option-{item.pk}"] if f"option-{item.pk}" in self.fields else None),
            )


def _client_ip(request: HttpRequest) -> str:
    return client_ip(request)


def _guesses_left(request: HttpRequest) -> int:
    return GUESSES_ALLOWED - cache.get(f"consult-guess:{_client_ip(request)}", 0)


def _wrong_guess(request: HttpRequest) -> None:
    key = f"consult-guess:{_client_ip(request)}"
    cache.add(key, 0, GUESS_WINDOW)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, GUESS_WINDOW)


def _household_for(request: HttpRequest, consultation: Consultation, code: str):
    """The household of ``code``, or an error message; wrong codes are counted per address."""
    if _guesses_left(request) <= 0:
        return None, _("投票码输错次数太多，请 15 分钟后再试，或联系社区工作人员。"), 429
    household = (
        Household.objects.filter(consultation=consultation, code=residents.normalise_code(code))
        .select_related("ballot")
        .first()
    )
    if household is None:
        _wrong_guess(request)
        return None, _("投票码不正确，请核对通知单上的 12 位投票码。"), 400
    return household, "", 200


# A household that proved its code is remembered in the session, per consultation, so that
# the code travels once, in a POST body, and never in an address (history, logs, Referer).
VOTER_SESSION_KEY = "consultation-voters"


def _session_household(request: HttpRequest, consultation: Consultation) -> Household | None:
    pk = request.session.get(VOTER_SESSION_KEY, {}).get(str(consultation.pk))
    if not pk:
        return None
    return (
        Household.objects.filter(consultation=consultation, pk=pk).select_related("ballot").first()
    )


def _remember_household(request: HttpRequest, consultation: Consultation, household) -> None:
    voters = dict(request.session.get(VOTER_SESSION_KEY, {}))
    voters[str(consultation.pk)] = household.pk
    request.session[VOTER_SESSION_KEY] = voters


def _forget_household(request: HttpRequest, consultation: Consultation) -> None:
    voters = dict(request.session.get(VOTER_SESSION_KEY, {}))
    if voters.pop(str(consultation.pk), None) is not None:
        request.session[VOTER_SESSION_KEY] = voters


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def consultation(request: HttpRequest, pk: int) -> HttpResponse:
    """Anyone sees participation n/N, approval per item and, once closed, the outcome. A
    household posts its code (never in the address), is remembered in the session, and votes
    (and may change its vote until the close). A wrong code is shown back in its field, with
    why beside it."""
    item = get_object_or_404(Consultation.objects.select_related("project"), pk=pk)
    household = _session_household(request, item)
    typed, code_error, error, status = "", "", "", 200
    form = None
    if request.method == "POST":
        if request.POST.get("leave"):
            _forget_household(request, item)
            return redirect(item)
        typed = (request.POST.get("code") or "").strip()[:40]
        if typed:
            found, code_error, status = _household_for(request, item, typed)
            household = found
            if found is not None:
                _remember_household(request, item, found)
        elif household is None:
            code_error, status = _("请输入投票码。"), 400
        if household is not None:
            if not any(key.startswith("item-") for key in request.POST):
                return redirect(item)  # the code alone: its ballot is on the page now
            form = BallotForm(
                request.POST, consultation=item, ballot=getattr(household, "ballot", None)
            )
            if form.is_valid():
                try:
                    residents.cast_ballot(item, household, form.answers())
                except services.WorkflowError as refusal:
                    error, status = refusal.message, refusal.status_code
                else:
                    messages.success(
                        request, _("已收到 %(h)s 的选票，截止前可以修改。") % {"h": household}
                    )
                    return redirect(item)
            else:
                status = 400
    elif household is not None and item.is_open():
        form = BallotForm(consultation=item, ballot=getattr(household, "ballot", None))
    return render(
        request,
        "supervision/consultation.html",
        {
            "consultation": item,
            "result": residents.results(item),
            "household": household,
            "form": form,
            "code": typed if code_error else "",
            "code_error": code_error,
            "error": error,
            "is_open": item.is_open(),
        },
        status=status,
    )


@dataclass(frozen=True)
class PaperEntry:
    """What a consultation's paper ballots and a survey's paper forms say differently."""

    refused: str  # to someone who is not a serving supervisor
    choose: str  # when no household is chosen
    entered: str  # the confirmation, with %(h)s (the household) and %(me)s (who entered it)
    template: str
    url_name: str
    context_name: str


def enter_paper(
    request: HttpRequest,
    item,
    *,
    households: QuerySet[Household],
    form: forms.Form,
    record: Callable[[Household], object],
    words: PaperEntry,
) -> HttpResponse:
    """代录: a serving supervisor of ``item``'s project enters a household's paper form, which
    ``record`` saves (marked with their name); refusals are shown on the form, in Chinese."""
    if not services.is_serving_supervisor(request.user):
        raise PermissionDenied(words.refused)
    if not watches(request.user, item.project_id):
        raise Http404  # only the project's own supervisors carry its paper forms
    household = None
    error, status = "", 200
    chosen = as_id(request.POST.get("household") or request.GET.get("household"))
    if chosen:
        household = households.filter(pk=chosen).first()
    if request.method == "POST":
        if household is None:
            error, status = words.choose, 400
        elif form.is_valid():
            try:
                record(household)
            except services.WorkflowError as refusal:
                error, status = refusal.message, refusal.status_code
            else:
                messages.success(request, words.entered % {"h": household, "me": request.user})
                return redirect(words.url_name, pk=item.pk)
        else:
            status = 400
    context = {"households": households, "household": household, "form": form, "error": error}
    return render(request, words.template, {words.context_name: item, **context}, status=status)


@login_required
@never_cache
def consultation_paper(request: HttpRequest, pk: int) -> HttpResponse:
    """A supervisor enters a paper ballot for a household (代录, marked with their name)."""
    item = get_object_or_404(Consultation.objects.select_related("project"), pk=pk)
    form = BallotForm(request.POST or None, consultation=item)
    return enter_paper(
        request,
        item,
        households=item.households.all(),
        form=form,
        record=lambda household: residents.cast_ballot(
            item, household, form.answers(), entered_by=request.user
        ),
        words=PaperEntry(
            refused=_("只有在任的群众监督员可以代录纸质选票。"),
            choose=_("请选择是哪一户的选票。"),
            entered=_("已代录 %(h)s 的纸质选票（代录人：%(me)s）。"),
            template="supervision/consultation_paper.html",
            url_name="consultation-paper",
            context_name="consultation",
        ),
    )


@login_required
@never_cache
@require_safe
def consultation_slips(request: HttpRequest, pk: int) -> HttpResponse:
    """Printable slips: each household's code, and a QR code of the consultation's page (the
    same on every slip: the code is typed there, never carried in an address)."""
    item = get_object_or_404(
        consultations_managed_by(request.user).select_related("project"), pk=pk
    )
    url = request.build_absolute_uri(item.get_absolute_url())
    return render(
        request,
        "supervision/consultation_slips.html",
        {
            "consultation": item,
            "households": item.households.all(),
            "url": url,
            "qr": qr_svg(url, scale=2),
        },
    )


# --- patrols -----------------------------------------------------------------------------------


class PatrolForm(forms.Form):
    # One allowance for all the items' pickers (the page's script shares it out too).
    max_photos = photo_intake.MAX_PHOTOS

    project = forms.ModelChoiceField(
        label=gettext_lazy("项目"),
        queryset=Project.objects.none(),
        empty_label=gettext_lazy("请选择项目"),
    )
    note = forms.CharField(
        label=gettext_lazy("总体情况（可选）"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
        for value, label in Patrol.Check.choices:
            self.fields[f"check-{value}"] = forms.ChoiceField(
                label=label,
                choices=[("ok", _("正常")), ("problem", _("有问题"))],
                initial="ok",
                widget=forms.RadioSelect,
            )
            self.fields[f"note-{value}"] = forms.CharField(
                label=_("问题说明"), required=False, max_length=500, widget=forms.TextInput
            )
            # Read together in ``clean``: nine photos for the whole patrol, not nine per item.
            self.fields[f"photos-{value}"] = PhotosField(label=_("照片"), prepare=False)

    def clean(self):
        data = super().clean()
        for value, _label in Patrol.Check.choices:
            if (
                data.get(f"check-{value}") == "problem"
                and not (data.get(f"note-{value}") or "").strip()
            ):
                self.add_error(f"note-{value}", _("有问题时请写明情况。"))
        prepare_photo_fields(self, [f"photos-{value}" for value, _label in Patrol.Check.choices])
        return data

    def checks(self) -> list[residents.CheckInput]:
        data = self.cleaned_data
        return [
            residents.CheckInput(
                item=value,
                ok=data[f"check-{value}"] == "ok",
                note=data.get(f"note-{value}", ""),
                photos=data.get(f"photos-{value}") or [],
            )
            for value, _label in Patrol.Check.choices
        ]

    def rows(self):
        for value, label in Patrol.Check.choices:
            yield (
                value,
                label,
                self[f"check-{value}"],
                self[f"note-{value}"],
                self[f"photos-{value}"],
            )


@login_required
@never_cache
def patrol_new(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not services.is_serving_supervisor(user):
        raise PermissionDenied(_("只有在任的群众监督员可以记录巡查。"))
    projects = watched_projects(user).order_by("name")
    status = 200
    if request.method == "POST":
        form = PatrolForm(request.POST, request.FILES, projects=projects)
        if form.is_valid():
            try:
                patrol = residents.log_patrol(
                    supervisor=user,
                    project=form.cleaned_data["project"],
                    checks=form.checks(),
                    note=form.cleaned_data["note"],
                )
            except services.WorkflowError as refusal:
                form.add_error(None, refusal.message)
                status = refusal.status_code
            else:
                messages.success(request, _("巡查记录已保存。"))
                return redirect(patrol)
        else:
            status = 400
    else:
        initial = {}
        project_id = as_id(request.GET.get("project"))
        if project_id and projects.filter(pk=project_id).exists():
            initial["project"] = project_id
        form = PatrolForm(initial=initial, projects=projects)
    return render(request, "supervision/patrol_new.html", {"form": form}, status=status)


class PatrolIssueForm(forms.Form):
    """转为问题反映 for a problem the patrol took no photo of: the photo its issue needs, added now
    (whether one is needed is the service's rule: it answers beside the field)."""

    photos = PhotosField(
        label=gettext_lazy("现场照片"),
        help_text=gettext_lazy("巡查时没有拍照；反映问题需要至少一张现场照片。"),
    )

    def __init__(self, *args, check: PatrolCheck, **kwargs):
        super().__init__(*args, prefix=f"check-{check.pk}", **kwargs)
        self.patrol_check = check


def _patrol_page(
    request: HttpRequest, pk: int, *, bound: PatrolIssueForm | None = None, status: int = 200
) -> HttpResponse:
    """A patrol and its checks; each problem of mine not yet an issue has its 转为问题 form, with
    a photo picker where the issue needs a photo the patrol did not take (``bound``: the one sent
    back with what to correct beside its field)."""
    patrol = get_object_or_404(
        patrols_for(request.user)
        .select_related("project", "supervisor")
        .prefetch_related(
            Prefetch(
                "checks",
                queryset=PatrolCheck.objects.prefetch_related("photos").select_related("issue"),
            )
        ),
        pk=pk,
    )
    checks = list(patrol.checks.all())
    for check in checks:
        check.photo_form = None
        if bound is not None and bound.patrol_check.pk == check.pk:
            check.photo_form = bound
        elif (
            not check.ok
            and not check.issue_id
            and patrol.supervisor_id == request.user.pk
            and residents.patrol_needs_photo(check)
        ):
            check.photo_form = PatrolIssueForm(check=check)
    context = {"patrol": patrol, "checks": checks}
    return render(request, "supervision/patrol_detail.html", context, status=status)


@login_required
@never_cache
@require_safe
def patrol_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _patrol_page(request, pk)


@login_required
@never_cache
@require_POST
def patrol_check_to_issue(request: HttpRequest, pk: int, check: int) -> HttpResponse:
    """One tap, with the photo the issue needs when the patrol took none. A refusal about the
    photo is shown beside that problem's picker; any other goes above the patrol."""
    item = get_object_or_404(
        PatrolCheck.objects.select_related("patrol__project", "issue"), pk=check, patrol_id=pk
    )
    if item.patrol.supervisor_id != request.user.pk:
        raise Http404
    form = PatrolIssueForm(request.POST, request.FILES, check=item)
    if not form.is_valid():
        return _patrol_page(request, pk, bound=form, status=400)
    try:
        issue = residents.patrol_problem_to_issue(
            item, actor=request.user, photos=form.cleaned_data["photos"]
        )
    except services.WorkflowError as refusal:
        if refusal.field not in form.fields:
            messages.error(request, refusal.message)
            return redirect(item.patrol)
        form.add_error(refusal.field, refusal.message)
        return _patrol_page(request, pk, bound=form, status=refusal.status_code)
    messages.success(
        request, _("已转为问题 %(ref)s，承办部门会在时限内签收。") % {"ref": issue.reference}
    )
    return redirect(issue)


@login_required
@never_cache
@require_safe
def patrol_list(request: HttpRequest) -> HttpResponse:
    """Patrol history, per project and per supervisor."""
    patrols = (
        patrols_for(request.user)
        .select_related("project", "supervisor")
        .annotate(problems=Count("checks", filter=Q(checks__ok=False)))
    )
    project_id = as_id(request.GET.get("project"))
    if project_id:
        patrols = patrols.filter(project_id=project_id)
    if request.GET.get("mine"):
        patrols = patrols.filter(supervisor=request.user)
    return render(
        request, "supervision/patrol_list.html", {"patrols": patrols.order_by("-created_at")[:100]}
    )


@login_required
@never_cache
@require_safe
def patrol_stale(request: HttpRequest) -> HttpResponse:
    """Projects under construction nobody has patrolled in N days (default 14)."""
    user = request.user
    if not (user.is_bureau or user.is_department_staff or user.is_oversight):
        raise PermissionDenied(_("这个清单供住建局和部门使用。"))
    days = as_id(request.GET.get("days", "14")) or 14
    days = days if days <= 365 else 14
    since = timezone.now() - timedelta(days=days)
    projects = Project.objects.filter(status=Project.Status.CONSTRUCTION)
    county = programme_at(request.user, PROJECT_COUNTY)  # the county's, not the province's
    if county is not None:
        projects = projects.filter(county)
    projects = (
        projects.annotate(last_patrol=Max("patrols__created_at"))
        .filter(Q(last_patrol__lt=since) | Q(last_patrol__isnull=True))
        .select_related("neighbourhood__subdistrict")
        .order_by(F("last_patrol").asc(nulls_first=True), "name")
    )
    return render(request, "supervision/patrol_stale.html", {"projects": projects, "days": days})


@login_required
@require_safe
def patrol_photo(request: HttpRequest, pk: int, thumbnail: bool = False) -> FileResponse:
    photo = get_object_or_404(
        PatrolPhoto.objects.filter(check_item__patrol__in=patrols_for(request.user).values("pk")),
        pk=pk,
    )
    return serve_private_file(photo.thumbnail if thumbnail else photo.image)


# --- supervisors -------------------------------------------------------------------------------


def _directory_projects(department) -> QuerySet[Project]:
    """The projects whose supervisors a department finds in the directory: those it works on
    (``department_projects``: one of the project's departments, or its contractor) or answers
    for under warranty; a subdistrict office also every project in its subdistrict."""
    own = department_projects(department.pk) | Q(scope_items__warranty_contractor=department.pk)
    if department.kind == department.Kind.SUBDISTRICT_OFFICE:
        own |= Q(neighbourhood__subdistrict=department.subdistrict_id)
    return Project.objects.filter(own).values("pk")


@login_required
@never_cache
@require_safe
def supervisor_directory(request: HttpRequest) -> HttpResponse:
    """群众监督员名录, as much as each desk needs and no more.

    - The bureau: every supervisor of its county with certificate, mobile number (whole), home
      neighbourhood,
      watched projects, issues, patrols and status.
    - A subdistrict office: the same, the mobile number masked, for the supervisors who live in
      its subdistrict (it manages them); the serving supervisors of the projects it works on who
      live elsewhere, by name only.
    - Every other department (contractors, supervising engineers, utilities, property managers):
      the names of the serving supervisors of its own projects, nothing else.
    """
    user = request.user
    if not (user.is_bureau or user.is_department_staff):
        raise PermissionDenied(_("监督员名录供住建局和部门使用。"))
    supervisors = Supervisor.objects.select_related("user").order_by(
        "-is_active", "certificate_number"
    )
    department = None if user.is_bureau else user.department
    county = programme(user, "neighbourhood__subdistrict__region")
    if department is None and county is not None:
        supervisors = supervisors.filter(county)  # the bureau's: its county's supervisors
    manages = None  # the subdistrict whose residents' details this desk sees; None: all or none
    if department is not None:
        serving_on_own = Q(is_active=True, projects__in=_directory_projects(department))
        if department.kind != department.Kind.SUBDISTRICT_OFFICE:
            rows = [{"name": str(s.user)} for s in supervisors.filter(serving_on_own).distinct()]
            return render(
                request,
                "supervision/supervisor_directory.html",
                {"rows": rows, "details": False},
            )
        manages = department.subdistrict_id
        supervisors = supervisors.filter(
            Q(neighbourhood__subdistrict=manages) | serving_on_own
        ).distinct()
    supervisors = (
        supervisors.select_related("neighbourhood__subdistrict")
        .prefetch_related("projects")
        .annotate(
            issue_count=Count("user__reported_issues", distinct=True),
            patrol_count=Count("user__patrols", distinct=True),
        )
    )
    rows = []
    for s in supervisors:
        if manages is not None and s.neighbourhood.subdistrict_id != manages:
            rows.append({"name": str(s.user)})
            continue
        rows.append(
            {
                "name": str(s.user),
                "supervisor": s,
                "mobile": mask_mobile(s.user.mobile) if manages else s.user.mobile,
            }
        )
    return render(request, "supervision/supervisor_directory.html", {"rows": rows, "details": True})


@login_required
@never_cache
@require_safe
def supervisor_certificate(request: HttpRequest, pk: int) -> HttpResponse:
    """聘书: the printable appointment certificate, for the bureau and for the supervisor."""
    supervisor = get_object_or_404(
        Supervisor.objects.select_related("user", "neighbourhood__subdistrict"), pk=pk
    )
    own = supervisor.user_id == request.user.pk
    county = supervisor.neighbourhood.subdistrict.region_id
    if not (own or (request.user.is_bureau and in_programme(request.user, county))):
        raise Http404
    # Signed by the bureau of the supervisor's county, which appointed them.
    issuer = (
        Department.objects.filter(region=county, kind=Department.Kind.BUREAU, is_active=True)
        .order_by("pk")
        .values_list("name", flat=True)
        .first()
    )
    return render(
        request,
        "supervision/supervisor_certificate.html",
        {"supervisor": supervisor, "issuer": issuer},
    )


def consultation_url(consultation: Consultation) -> str:
    return reverse("consultation", args=[consultation.pk])
