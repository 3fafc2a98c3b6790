"""Pages of the satisfaction survey (问效): the public results and the household's answer by
code, a supervisor's paper entry (代录), and the bureau opening and closing it."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import services, surveys
from .access import in_programme_only, watches
from .models import (
    PROJECT_COUNTY,
    Household,
    Project,
    ScopeItem,
    Survey,
    SurveyAnswer,
    in_programme,
    project_county,
)
from .models.surveys import Rating
from .resident_views import PaperEntry, _guesses_left, _wrong_guess, enter_paper


class SurveyForm(forms.Form):
    """Overall, each renovated area, the contractor's conduct: 满意 / 基本满意 / 不满意."""

    comment = forms.CharField(
        label=gettext_lazy("意见建议（可选）"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, survey: Survey, answer: SurveyAnswer | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.survey = survey
        current = {a.area: a.rating for a in answer.areas.all()} if answer else {}
        questions = [("overall", _("总体上，您对这次改造满意吗？"), answer and answer.overall)]
        questions += [
            (f"area-{area}", label, current.get(area)) for area, label in survey.area_choices()
        ]
        questions.append(("conduct", _("施工单位的安全施工、文明施工"), answer and answer.conduct))
        fields = {}
        for name, label, initial in questions:
            fields[name] = forms.ChoiceField(
                label=label,
                choices=Rating.choices,
                widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
                initial=initial or None,
                error_messages={"required": _("请选择一项。")},
            )
        fields["comment"] = self.fields.pop("comment")
        if answer:
            fields["comment"].initial = answer.comment
        self.fields = fields

    def answers(self) -> surveys.Answers:
        data = self.cleaned_data
        return surveys.Answers(
            overall=data["overall"],
            conduct=data["conduct"],
            areas={area: data[f"area-{area}"] for area, _label in self.survey.area_choices()},
            comment=data.get("comment", ""),
        )

    def questions(self):
        return [self[name] for name in self.fields if name != "comment"]


SESSION_KEY = "survey-households"


def _session_household(request: HttpRequest, survey: Survey) -> Household | None:
    pk = request.session.get(SESSION_KEY, {}).get(str(survey.pk))
    if not pk:
        return None
    return surveys.project_households(survey.project_id).filter(pk=pk).first()


def _remember(request: HttpRequest, survey: Survey, household: Household | None) -> None:
    known = dict(request.session.get(SESSION_KEY, {}))
    if household is None:
        known.pop(str(survey.pk), None)
    else:
        known[str(survey.pk)] = household.pk
    request.session[SESSION_KEY] = known


def _answer_of(survey: Survey, household: Household | None) -> SurveyAnswer | None:
    if household is None:
        return None
    return (
        SurveyAnswer.objects.filter(survey=survey, household=household)
        .prefetch_related("areas")
        .first()
    )


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def survey(request: HttpRequest, pk: int) -> HttpResponse:
    """Anyone sees the results; a household posts its code (never in the address), is remembered
    in the session, and answers (and may change its answer until the close)."""
    item = get_object_or_404(
        Survey.objects.select_related("project__neighbourhood__subdistrict", "project__contractor"),
        pk=pk,
    )
    household = _session_household(request, item)
    typed, code_error, error, status = "", "", "", 200
    form = None
    if request.method == "POST":
        if request.POST.get("leave"):
            _remember(request, item, None)
            return redirect(item)
        typed = (request.POST.get("code") or "").strip()[:40]
        if typed:
            if _guesses_left(request) <= 0:
                code_error, status = (
                    _("投票码输错次数太多，请 15 分钟后再试，或联系社区工作人员。"),
                    429,
                )
            else:
                try:
                    household = surveys.household_by_code(item, typed)
                except services.WorkflowError as refusal:
                    _wrong_guess(request)
                    household, code_error, status = None, refusal.message, refusal.status_code
                else:
                    _remember(request, item, household)
        elif household is None:
            code_error, status = _("请输入投票码。"), 400
        if household is not None and not code_error:
            if "overall" not in request.POST:
                return redirect(item)  # the code alone: the form is on the page now
            form = SurveyForm(request.POST, survey=item, answer=_answer_of(item, household))
            if form.is_valid():
                try:
                    surveys.answer_survey(item, household, form.answers())
                except services.WorkflowError as refusal:
                    error, status = refusal.message, refusal.status_code
                else:
                    messages.success(
                        request, _("已收到 %(h)s 的评价，截止前可以修改。") % {"h": household}
                    )
                    return redirect(item)
            else:
                status = 400
    elif household is not None and item.is_open():
        form = SurveyForm(survey=item, answer=_answer_of(item, household))
    answered = form is not None and _answer_of(item, household) is not None
    return render(
        request,
        "supervision/surveys/survey.html",
        {
            "survey": item,
            "project": item.project,
            "result": surveys.results(item),
            "household": household,
            "answered": answered,
            "form": form,
            "code": typed if code_error else "",
            "code_error": code_error,
            "error": error,
            "is_open": item.is_open(),
            "can_close": request.user.is_authenticated
            and request.user.is_active
            and request.user.is_bureau
            and not item.is_closed()
            and in_programme(request.user, project_county(item.project)),
            "can_enter_paper": item.is_open()
            and services.is_serving_supervisor(request.user)
            and watches(request.user, item.project_id),
        },
        status=status,
    )


@login_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def survey_paper(request: HttpRequest, pk: int) -> HttpResponse:
    """A serving supervisor of the project enters a household's paper form (代录)."""
    item = get_object_or_404(Survey.objects.select_related("project"), pk=pk)
    form = SurveyForm(request.POST or None, survey=item)
    return enter_paper(
        request,
        item,
        households=surveys.project_households(item.project_id).order_by("building", "unit", "room"),
        form=form,
        record=lambda household: surveys.answer_survey(
            item, household, form.answers(), entered_by=request.user
        ),
        words=PaperEntry(
            refused=_("只有在任的群众监督员可以代录纸质问卷。"),
            choose=_("请选择是哪一户的问卷。"),
            entered=_("已代录 %(h)s 的纸质问卷（代录人：%(me)s）。"),
            template="supervision/surveys/paper.html",
            url_name="survey-paper",
            context_name="survey",
        ),
    )


class OpenSurveyForm(forms.Form):
    opens_on = forms.DateField(
        label=gettext_lazy("开始日期"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    closes_on = forms.DateField(
        label=gettext_lazy("截止日期"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


def _bureau_only(request: HttpRequest) -> None:
    if not (request.user.is_active and request.user.is_bureau):
        raise PermissionDenied(_("满意度调查由住建局发起和结束。"))


@login_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def survey_open(request: HttpRequest, pk: int) -> HttpResponse:
    """The bureau opens a survey on an accepted project."""
    _bureau_only(request)
    project = get_object_or_404(
        in_programme_only(request.user, Project.objects.all(), PROJECT_COUNTY), pk=pk
    )
    status = 200
    if request.method == "POST":
        form = OpenSurveyForm(request.POST)
        if form.is_valid():
            try:
                created = surveys.open_survey(
                    project,
                    actor=request.user,
                    opens_on=form.cleaned_data["opens_on"],
                    closes_on=form.cleaned_data["closes_on"],
                )
            except services.WorkflowError as refusal:
                if refusal.field in form.fields:
                    form.add_error(refusal.field, refusal.message)
                else:
                    form.add_error(None, refusal.message)
                status = refusal.status_code
            else:
                messages.success(request, _("满意度调查已发起。"))
                return redirect(created)
        else:
            status = 400
    else:
        today = timezone.localdate()
        form = OpenSurveyForm(initial={"opens_on": today, "closes_on": today + timedelta(days=14)})
    return render(
        request,
        "supervision/surveys/open.html",
        {
            "project": project,
            "form": form,
            "accepted": surveys.is_accepted(project),
            "households": surveys.project_households(project).count(),
            # What each household is asked, in the reader's language and its list separator.
            "asked": pgettext("list separator", "、").join(
                [
                    _("总体评价"),
                    *(
                        str(ScopeItem.Area(area).label)
                        for area in sorted(set(project.scope_items.values_list("area", flat=True)))
                    ),
                    _("施工单位安全文明施工"),
                ]
            ),
        },
        status=status,
    )


@login_required
@never_cache
@require_POST
def survey_close(request: HttpRequest, pk: int) -> HttpResponse:
    _bureau_only(request)
    surveys_here = in_programme_only(
        request.user, Survey.objects.all(), f"project__{PROJECT_COUNTY}"
    )
    item = get_object_or_404(surveys_here, pk=pk)
    try:
        surveys.close_survey(item, actor=request.user)
    except services.WorkflowError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, _("满意度调查已结束，结果保留公示。"))
    return redirect(item)
