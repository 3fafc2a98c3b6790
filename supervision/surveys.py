"""问效于民: the household satisfaction survey after acceptance.

The bureau opens and closes it; a household answers with the code it got for the consultation
(or a serving supervisor of the project enters its paper form, 代录); the results are public per
project and per area, and the dashboard ranks contractors and subdistricts by them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from . import notifications, residents, services
from .access import watches
from .models import (
    PROJECT_COUNTY,
    Household,
    Project,
    Survey,
    SurveyAnswer,
    SurveyAreaAnswer,
    SurveyEvent,
    in_programme,
    programme,
    project_county,
)
from .models.surveys import Rating
from .services import WorkflowError

audit = logging.getLogger("audit")

RATINGS = [value for value, _label in Rating.choices]
GOOD = (Rating.SATISFIED, Rating.BASICALLY_SATISFIED)
RANKING_VERSION_KEY = "surveys:ranking-version"


def is_accepted(project: Project) -> bool:
    return project.status == Project.Status.ACCEPTED or project.acceptance_actual is not None


def project_households(project: Project | int) -> QuerySet[Household]:
    """The households imported for the project's consultations: the survey's respondents."""
    project_id = project if isinstance(project, int) else project.pk
    return Household.objects.filter(consultation__project_id=project_id)


def _refuse_unless_bureau(actor, message: str, project: Project | int) -> None:
    """Only the bureau, and only of the project's county (another county's does not exist)."""
    if not (actor is not None and actor.is_active and actor.is_bureau):
        raise WorkflowError(message, status_code=403)
    if not in_programme(actor, project_county(project)):
        raise WorkflowError(_("这个项目不在本地的改造计划内。"), status_code=404)


def _bump_ranking() -> None:
    try:
        cache.incr(RANKING_VERSION_KEY)
    except ValueError:
        cache.set(RANKING_VERSION_KEY, time.time_ns(), None)


# --- the bureau opens and closes ---------------------------------------------------------------


def open_survey(project: Project, *, actor, opens_on: date, closes_on: date) -> Survey:
    """开启调查: only the bureau, only after acceptance, only with households to ask, and one
    survey at a time per project. The areas asked about are those the project renovated."""
    _refuse_unless_bureau(actor, _("只有住建局可以发起满意度调查。"), project)
    if closes_on < opens_on:
        raise WorkflowError(_("截止日期不能早于开始日期。"), status_code=400, field="closes_on")
    if closes_on < timezone.localdate():
        raise WorkflowError(_("截止日期不能早于今天。"), status_code=400, field="closes_on")
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if not is_accepted(locked):
            raise WorkflowError(_("项目验收后才能发起满意度调查。"))
        if not project_households(locked).exists():
            raise WorkflowError(
                _("这个项目还没有导入住户，无法按户调查。请先在意愿征询中导入住户。")
            )
        running = [s for s in locked.surveys.all() if not s.is_closed()]
        if running:
            raise WorkflowError(_("这个项目已有一份未结束的满意度调查。"))
        areas = sorted(set(locked.scope_items.values_list("area", flat=True)))
        survey = Survey.objects.create(
            project=locked,
            opens_on=opens_on,
            closes_on=closes_on,
            areas=areas,
            created_by=actor,
        )
        SurveyEvent.objects.create(
            created_at=timezone.now(), survey=survey, kind=SurveyEvent.Kind.OPENED, actor=actor
        )
        today = timezone.localdate()
        notifications.notify_about_project(
            [s.user for s in locked.supervisors.select_related("user") if s.is_serving(today)],
            project=locked,
            text=_(
                "「%(project)s」的满意度调查已开始，%(d)s 截止。不会上网的住户，可以请您代录纸质问卷。"
            )
            % {"project": locked.name, "d": closes_on},
            url=survey.get_absolute_url(),
            topic=f"survey:{survey.pk}",
        )
    audit.info("survey opened survey=%s project=%s by=%s", survey.pk, project.pk, actor.username)
    return survey


def close_survey(survey: Survey, *, actor) -> Survey:
    """提前结束: the bureau ends a survey before its date; answers stay as they are."""
    _refuse_unless_bureau(actor, _("只有住建局可以结束满意度调查。"), survey.project_id)
    with transaction.atomic():
        locked = Survey.objects.select_for_update().get(pk=survey.pk)
        if locked.is_closed():
            raise WorkflowError(_("这份调查已经结束了。"))
        locked.closed_at = timezone.now()
        locked.closed_by = actor
        locked.save(update_fields=["closed_at", "closed_by", "updated_at"])
        SurveyEvent.objects.create(
            created_at=timezone.now(), survey=locked, kind=SurveyEvent.Kind.CLOSED, actor=actor
        )
    audit.info("survey closed survey=%s by=%s", survey.pk, actor.username)
    survey.closed_at, survey.closed_by = locked.closed_at, actor
    return survey


# --- households answer -------------------------------------------------------------------------


def household_by_code(survey: Survey, code: str) -> Household:
    """The household of ``code`` among the project's households; why not, in Chinese."""
    household = (
        Household.objects.filter(code=residents.normalise_code(code))
        .select_related("consultation")
        .first()
    )
    if household is None:
        raise WorkflowError(_("投票码不正确，请核对通知单上的 12 位投票码。"), status_code=400)
    if household.consultation.project_id != survey.project_id:
        raise WorkflowError(_("这个投票码不属于本项目的住户，不能参加本次调查。"), status_code=400)
    return household


@dataclass(frozen=True)
class Answers:
    overall: str
    conduct: str
    areas: dict[str, str]
    comment: str = ""


def answer_survey(
    survey: Survey, household: Household, answers: Answers, *, entered_by=None
) -> SurveyAnswer:
    """Record (or change in place, until the close) a household's answer. ``entered_by`` is the
    project's serving supervisor entering a paper form; a household that answered online itself
    is not overwritten from paper."""
    if (
        Household.objects.filter(
            pk=household.pk, consultation__project_id=survey.project_id
        ).count()
        != 1
    ):
        raise WorkflowError(_("这个投票码不属于本项目的住户，不能参加本次调查。"), status_code=400)
    if entered_by is not None:
        if not services.is_serving_supervisor(entered_by):
            raise WorkflowError(_("只有在任的群众监督员可以代录纸质问卷。"), status_code=403)
        if not watches(entered_by, survey.project_id):
            raise WorkflowError(_("您没有受聘监督这个项目，不能代录它的问卷。"), status_code=403)
    missing = [
        label
        for key, label in [("overall", _("总体评价")), ("conduct", _("安全、文明施工"))]
        if getattr(answers, key) not in RATINGS
    ]
    missing += [
        label for area, label in survey.area_choices() if answers.areas.get(area) not in RATINGS
    ]
    if missing:
        raise WorkflowError(
            _("请对每一项都作出评价：%(items)s") % {"items": "、".join(missing)}, status_code=400
        )
    comment = (answers.comment or "").replace("\x00", "").strip()[:500]
    try:
        with transaction.atomic():
            locked = Survey.objects.select_for_update().get(pk=survey.pk)
            if locked.is_closed():
                raise WorkflowError(
                    _("调查已于 %(d)s 结束，不能再提交或修改。") % {"d": _end_day(locked)}
                )
            if not locked.is_open():
                raise WorkflowError(
                    _("调查将于 %(d)s 开始，请届时再填写。") % {"d": locked.opens_on}
                )
            answer = (
                SurveyAnswer.objects.select_for_update()
                .filter(survey=locked, household=household)
                .first()
            )
            if answer is not None and entered_by is not None and answer.entered_by_id is None:
                raise WorkflowError(_("这一户已经自己在线填写，不能用纸质问卷覆盖。"))
            fields = {
                "overall": answers.overall,
                "conduct": answers.conduct,
                "comment": comment,
                "entered_by": entered_by,
            }
            SurveyEvent.objects.create(
                created_at=timezone.now(),
                survey=locked,
                kind=SurveyEvent.Kind.ANSWERED if answer is None else SurveyEvent.Kind.CHANGED,
                actor=entered_by,
                household=household,
            )
            if answer is None:
                answer = SurveyAnswer.objects.create(survey=locked, household=household, **fields)
            else:
                for name, value in fields.items():
                    setattr(answer, name, value)
                answer.save(update_fields=[*fields, "updated_at"])
                answer.areas.all().delete()
            SurveyAreaAnswer.objects.bulk_create(
                [
                    SurveyAreaAnswer(answer=answer, area=area, rating=answers.areas[area])
                    for area, _label in locked.area_choices()
                ]
            )
            transaction.on_commit(_bump_ranking)
    except IntegrityError:
        # The same household twice at once: the other answer was saved first; ours goes over it.
        return answer_survey(survey, household, answers, entered_by=entered_by)
    return answer


def _end_day(survey: Survey) -> date:
    if survey.closed_at is not None:
        return min(survey.closes_on, timezone.localdate(survey.closed_at))
    return survey.closes_on


# --- results -----------------------------------------------------------------------------------


def share(good: int, total: int) -> int | None:
    """满意+基本满意 as a whole percentage, None when nobody answered."""
    return round(100 * good / total) if total else None


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    satisfied: int
    basically: int
    unsatisfied: int

    @property
    def total(self) -> int:
        return self.satisfied + self.basically + self.unsatisfied

    @property
    def share(self) -> int | None:
        return share(self.satisfied + self.basically, self.total)


@dataclass(frozen=True)
class Results:
    households: int
    answers: int
    paper: int
    rows: list[Row]  # overall, each area, conduct
    comments: list[str]
    state: str

    @property
    def participation(self) -> int | None:
        return share(self.answers, self.households)


def _counts(queryset, field: str) -> dict[str, int]:
    return dict(queryset.values_list(field).annotate(n=Count("pk")).values_list(field, "n"))


def results(survey: Survey, *, comments: int = 20) -> Results:
    """Counts per question and the share 满意+基本满意; no household identities."""
    answers = survey.answers.all()
    totals = answers.aggregate(n=Count("pk"), paper=Count("pk", filter=Q(entered_by__isnull=False)))
    overall = _counts(answers, "overall")
    conduct = _counts(answers, "conduct")
    by_area: dict[str, dict[str, int]] = {}
    for area, rating, n in (
        SurveyAreaAnswer.objects.filter(answer__survey=survey)
        .values_list("area", "rating")
        .annotate(n=Count("pk"))
        .values_list("area", "rating", "n")
    ):
        by_area.setdefault(area, {})[rating] = n

    def row(key: str, label: str, counts: dict[str, int]) -> Row:
        return Row(
            key,
            label,
            counts.get(Rating.SATISFIED, 0),
            counts.get(Rating.BASICALLY_SATISFIED, 0),
            counts.get(Rating.UNSATISFIED, 0),
        )

    rows = [row("overall", _("总体评价"), overall)]
    rows += [row(area, label, by_area.get(area, {})) for area, label in survey.area_choices()]
    rows.append(row("conduct", _("施工单位安全、文明施工"), conduct))
    texts = list(
        answers.exclude(comment="")
        .order_by("-updated_at")
        .values_list("comment", flat=True)[:comments]
    )
    return Results(
        project_households(survey.project_id).count(),
        totals["n"],
        totals["paper"],
        rows,
        texts,
        survey.state(),
    )


def rankings(user=None) -> dict:
    """Contractors and subdistricts by overall 满意率 of every survey answer, best first; two
    grouped queries, cached until the next answer. With ``user``, only the answers of their
    programme (``models.programme``: a county's bureau sees its county's, the oversight those
    below it); two subdistricts of one name in two counties (城关街道) stay apart."""
    condition = programme(user, f"survey__project__{PROJECT_COUNTY}") if user else None
    version = cache.get_or_set(RANKING_VERSION_KEY, time.time_ns, None)
    scope = "all" if condition is None else f"{user.role}-{user.region_id}-{user.is_active}"
    key = f"surveys:ranking:{version}:{scope}"
    value = cache.get(key)
    if value is None:
        answers = (
            SurveyAnswer.objects.all()
            if condition is None
            else SurveyAnswer.objects.filter(condition)
        )
        value = {
            "contractors": _ranked(
                "survey__project__contractor__name",
                answers.filter(survey__project__contractor__isnull=False),
                "survey__project__contractor",
            ),
            "subdistricts": _ranked(
                "survey__project__neighbourhood__subdistrict__name",
                answers,
                "survey__project__neighbourhood__subdistrict",
            ),
        }
        cache.set(key, value, 24 * 3600)
    return value


def _ranked(field: str, answers: QuerySet[SurveyAnswer], pk: str) -> list[dict]:
    """One row per ``pk`` (a contractor, a subdistrict), named by ``field``."""
    rows = [
        {
            "name": row[field],
            "projects": row["projects"],
            "answers": row["n"],
            "satisfied": row["satisfied"],
            "basically": row["basically"],
            "unsatisfied": row["n"] - row["satisfied"] - row["basically"],
            "share": share(row["satisfied"] + row["basically"], row["n"]),
        }
        for row in answers.values(pk, field)
        .annotate(
            n=Count("pk"),
            projects=Count("survey__project", distinct=True),
            satisfied=Count("pk", filter=Q(overall=Rating.SATISFIED)),
            basically=Count("pk", filter=Q(overall=Rating.BASICALLY_SATISFIED)),
        )
        .order_by(field, pk)
    ]
    rows.sort(key=lambda r: (-(r["share"] or 0), -r["satisfied"], -r["answers"], r["name"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows
