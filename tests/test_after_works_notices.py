"""After the works, people hear about what is theirs to do: the supervisors invited to an
acceptance, a 回头看 that falls due, a survey they can help households answer. Each notice comes
once, however often the sweep runs, and opening it leads to the page where the work is done. A
survey keeps its own history: opened, answered, changed, closed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from supervision import acceptance, surveys, warranty
from supervision.models import (
    Household,
    Notification,
    Patrol,
    Project,
    ReturnVisit,
    ScopeItem,
    SurveyEvent,
)
from supervision.services import WorkflowError

from .factories import PASSWORD, make_supervisor
from .test_surveys import households_for

pytestmark = pytest.mark.django_db
S, B = "satisfied", "basically_satisfied"


def today():
    return timezone.localdate()


def households(project: Project, n: int = 4) -> list[Household]:
    return households_for(project, n, prefix="N")


def notices(user) -> list[Notification]:
    return list(Notification.objects.shown_to(user).filter(project__isnull=False))


# --- the acceptance invitation -----------------------------------------------------------------


def test_the_supervisors_invited_to_an_acceptance_hear_of_it_once(world, client):
    w = world
    Project.objects.filter(pk=w.project.pk).update(status=Project.Status.COMPLETED)
    carol = make_supervisor("carol", w.project.neighbourhood, [w.project])
    homes = households(w.project)
    held = acceptance.schedule_acceptance(
        w.project,
        actor=w.bureau,
        held_on=today() + timedelta(days=3),
        place="兴业大厦小区广场",
        households=homes[:3],
    )
    for person in (w.alice, carol):
        [notice] = notices(person)
        assert "竣工验收" in notice.text and "兴业大厦小区广场" in notice.text
    # Not the bureau who scheduled it, nor a supervisor of another project.
    assert notices(w.bureau) == [] and notices(w.bob) == []

    client.login(username="alice", password=PASSWORD)
    assert "竣工验收" in client.get(reverse("notifications")).content.decode()
    [notice] = notices(w.alice)
    opened = client.post(reverse("notification-open", args=[notice.pk]))
    assert opened.status_code == 302
    assert opened["Location"] == reverse("acceptance-opinion", args=[held.pk])
    notice.refresh_from_db()
    assert notice.read_at is not None


def test_someone_else_cannot_open_a_notice_that_is_not_theirs(world, client):
    w = world
    Project.objects.filter(pk=w.project.pk).update(status=Project.Status.COMPLETED)
    acceptance.schedule_acceptance(
        w.project,
        actor=w.bureau,
        held_on=today() + timedelta(days=3),
        place="广场",
        households=households(w.project)[:1],
    )
    [notice] = notices(w.alice)
    client.login(username="bob", password=PASSWORD)
    assert client.post(reverse("notification-open", args=[notice.pk])).status_code == 404
    notice.refresh_from_db()
    assert notice.read_at is None


# --- 回头看 ------------------------------------------------------------------------------------


def accepted_days_ago(project: Project, days: int) -> None:
    Project.objects.filter(pk=project.pk).update(
        status=Project.Status.ACCEPTED, acceptance_actual=today() - timedelta(days=days)
    )
    project.refresh_from_db()


def test_a_return_visit_reminds_the_supervisors_when_its_window_opens_and_only_once(world):
    w = world
    # Six months after acceptance is still 60 days off: booked, but nobody is reminded yet.
    accepted_days_ago(w.project, 120)
    warranty.schedule_return_visits()
    assert ReturnVisit.objects.filter(project=w.project).exists()
    assert notices(w.alice) == []
    # 20 days before it is due, the window is open: alice hears of it, once.
    accepted_days_ago(w.project, 163)
    ReturnVisit.objects.all().delete()
    warranty.schedule_return_visits()
    warranty.schedule_return_visits()
    [notice] = notices(w.alice)
    assert "回头看" in notice.text and "验收后 6 个月" in notice.text
    assert notice.url == f"{reverse('patrol-new')}?project={w.project.pk}"
    assert notices(w.bob) == []


def test_a_visit_already_done_by_a_patrol_reminds_nobody(world):
    w = world
    accepted_days_ago(w.project, 163)
    Patrol.objects.create(project=w.project, supervisor=w.alice)
    warranty.schedule_return_visits()
    assert notices(w.alice) == []


def test_a_warranty_about_to_end_names_the_item(world):
    w = world
    ends = today() + timedelta(days=20)
    accepted = warranty.add_months(ends + timedelta(days=1), -24)
    Project.objects.filter(pk=w.project.pk).update(
        status=Project.Status.ACCEPTED, acceptance_actual=accepted
    )
    ScopeItem.objects.create(
        project=w.project, area=ScopeItem.Area.LANDSCAPE, description="绿化补种"
    )
    warranty.schedule_return_visits()
    texts = [n.text for n in notices(w.alice)]
    assert any("绿化补种" in t and "保修期" in t for t in texts), texts


# --- the survey --------------------------------------------------------------------------------


@pytest.fixture
def survey(world):
    w = world
    accepted_days_ago(w.project, 5)
    ScopeItem.objects.create(project=w.project, area=ScopeItem.Area.BUILDING, description="外墙")
    w.homes = households(w.project)
    return surveys.open_survey(
        w.project, actor=w.bureau, opens_on=today(), closes_on=today() + timedelta(days=14)
    )


def test_opening_a_survey_asks_the_supervisors_to_help_with_paper_forms(world, survey):
    [notice] = notices(world.alice)
    assert "满意度调查" in notice.text and "代录" in notice.text
    assert notice.url == survey.get_absolute_url()


def test_the_survey_keeps_its_history(world, survey):
    w = world
    answers = surveys.Answers(overall=S, conduct=S, areas={"building": S})
    surveys.answer_survey(survey, w.homes[0], answers)
    surveys.answer_survey(survey, w.homes[0], surveys.Answers(B, S, {"building": B}))
    surveys.answer_survey(survey, w.homes[1], answers, entered_by=w.alice)
    surveys.close_survey(survey, actor=w.bureau)
    history = list(survey.events.values_list("kind", "actor__username", "household_id"))
    assert history == [
        ("opened", "zhujianju", None),
        ("answered", None, w.homes[0].pk),
        ("changed", None, w.homes[0].pk),
        ("answered", "alice", w.homes[1].pk),
        ("closed", "zhujianju", None),
    ]


def test_a_refused_answer_leaves_no_history(world, survey):
    w = world
    surveys.close_survey(survey, actor=w.bureau)
    before = SurveyEvent.objects.count()
    with pytest.raises(WorkflowError):
        surveys.answer_survey(survey, w.homes[0], surveys.Answers(S, S, {"building": S}))
    assert SurveyEvent.objects.count() == before


# --- 我的 --------------------------------------------------------------------------------------


def test_me_lists_the_visits_due_within_its_query_budget(
    world, client, django_assert_max_num_queries
):
    w = world
    accepted_days_ago(w.project, 163)
    ScopeItem.objects.create(project=w.project, area=ScopeItem.Area.BUILDING, description="外墙")
    warranty.schedule_return_visits()
    ReturnVisit.objects.create(
        project=w.other_project, reason=ReturnVisit.Reason.SIX_MONTHS, due_on=today()
    )
    client.login(username="alice", password=PASSWORD)
    client.get(reverse("me"))
    with django_assert_max_num_queries(12):
        page = client.get(reverse("me")).content.decode()
    assert "data-return-visits" in page and "验收后 6 个月" in page
    assert w.other_project.name not in page  # another project's visit is not alice's
    _projects, visits = warranty.with_due_visits(w.alice.supervisor.projects.all())
    assert [v.pk for v in visits] == [v.pk for v in warranty.due_visits_for(w.alice)]
    # Once patrolled, the visit leaves 我的.
    Patrol.objects.create(project=w.project, supervisor=w.alice)
    assert "data-return-visits" not in client.get(reverse("me")).content.decode()
