"""问效: the household satisfaction survey after acceptance. Households answer with their
consultation codes (or a supervisor enters their paper forms), results are public per area, and
the dashboard ranks contractors and subdistricts by them. Each test checks the response, then
what was saved."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.utils import timezone

from supervision import surveys
from supervision.models import (
    Consultation,
    Household,
    Project,
    ScopeItem,
    Survey,
    SurveyAnswer,
    SurveyAreaAnswer,
)
from supervision.services import WorkflowError

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
S, B, U = "satisfied", "basically_satisfied", "unsatisfied"


def today() -> date:
    return timezone.localdate()


def households_for(project: Project, n: int = 12, prefix: str = "A") -> list[Household]:
    consultation = Consultation.objects.create(
        project=project,
        title="改造意愿征询",
        opens_on=today() - timedelta(days=200),
        closes_on=today() - timedelta(days=180),
    )
    return [
        Household.objects.create(
            consultation=consultation,
            building="1幢",
            unit="1单元",
            room=f"{100 + i}",
            code=f"{prefix}{ALPHABET[i]}QRSTUVWXYZ"[:12],
        )
        for i in range(n)
    ]


def accept(project: Project) -> Project:
    project.status = Project.Status.ACCEPTED
    project.acceptance_actual = today() - timedelta(days=5)
    project.save(update_fields=["status", "acceptance_actual"])
    ScopeItem.objects.create(project=project, area=ScopeItem.Area.BUILDING, description="外墙")
    ScopeItem.objects.create(project=project, area=ScopeItem.Area.ROADS, description="停车位")
    return project


@pytest.fixture
def setup(world):
    accept(world.project)
    homes = households_for(world.project)
    survey = surveys.open_survey(
        world.project, actor=world.bureau, opens_on=today(), closes_on=today() + timedelta(days=14)
    )
    return world, survey, homes


def answer_post(overall=S, building=S, roads=B, conduct=S, comment="") -> dict:
    return {
        "overall": overall,
        "area-building": building,
        "area-roads": roads,
        "conduct": conduct,
        "comment": comment,
    }


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- opening and closing -----------------------------------------------------------------------


def test_bureau_opens_a_survey_on_an_accepted_project_with_its_renovated_areas(world):
    accept(world.project)
    households_for(world.project)
    client = Client()
    client.force_login(world.bureau)
    response = client.post(
        f"/projects/{world.project.pk}/survey/new/",
        {"opens_on": today(), "closes_on": today() + timedelta(days=7)},
    )
    survey = Survey.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/surveys/{survey.pk}/"
    assert survey.areas == ["building", "roads"] and survey.created_by == world.bureau


def test_survey_before_acceptance_is_refused_in_chinese(world):
    households_for(world.project)
    client = Client()
    client.force_login(world.bureau)
    response = client.post(
        f"/projects/{world.project.pk}/survey/new/",
        {"opens_on": today(), "closes_on": today() + timedelta(days=7)},
    )
    assert response.status_code == 409
    assert "项目验收后才能发起满意度调查" in response.content.decode()
    assert not Survey.objects.exists()


def test_survey_without_households_is_refused(world):
    accept(world.project)
    with pytest.raises(WorkflowError, match="还没有导入住户"):
        surveys.open_survey(world.project, actor=world.bureau, opens_on=today(), closes_on=today())


def test_second_running_survey_is_refused(setup):
    world, _survey, _homes = setup
    with pytest.raises(WorkflowError, match="未结束的满意度调查"):
        surveys.open_survey(world.project, actor=world.bureau, opens_on=today(), closes_on=today())
    assert Survey.objects.count() == 1


@pytest.mark.parametrize("who", ["alice", "handler", "builder"])
def test_only_the_bureau_opens_and_closes(setup, who):
    world, survey, _homes = setup
    actor = getattr(world, who)
    with pytest.raises(WorkflowError) as refusal:
        surveys.close_survey(survey, actor=actor)
    assert refusal.value.status_code == 403 and "住建局" in refusal.value.message
    client = Client()
    client.force_login(actor)
    assert client.post(f"/surveys/{survey.pk}/close/").status_code == 403
    assert client.get(f"/projects/{world.project.pk}/survey/new/").status_code == 403
    survey.refresh_from_db()
    assert survey.closed_at is None


def test_bureau_closes_early_and_a_second_close_says_so(setup):
    world, survey, _homes = setup
    client = Client()
    client.force_login(world.bureau)
    response = client.post(f"/surveys/{survey.pk}/close/")
    assert response.status_code == 302
    survey.refresh_from_db()
    assert survey.closed_at is not None and survey.closed_by == world.bureau
    response = client.post(f"/surveys/{survey.pk}/close/", follow=True)
    assert "这份调查已经结束了" in response.content.decode()


# --- households answer by code ------------------------------------------------------------------


def test_household_answers_with_its_code_and_the_code_never_travels_in_an_address(setup):
    world, survey, homes = setup
    client = Client()
    response = client.post(f"/surveys/{survey.pk}/", {"code": homes[0].code.lower()})
    assert response.status_code == 302 and homes[0].code not in response["Location"]
    page = client.get(f"/surveys/{survey.pk}/").content.decode()
    assert "1幢1单元100室 的评价" in page.replace(" ", " ") or "的评价" in page
    response = client.post(f"/surveys/{survey.pk}/", answer_post(comment="楼道灯很亮"))
    assert response.status_code == 302
    assert "已收到" in messages_of(response)[0]
    answer = SurveyAnswer.objects.get()
    assert (answer.household, answer.overall, answer.conduct, answer.entered_by) == (
        homes[0],
        S,
        S,
        None,
    )
    assert dict(answer.areas.values_list("area", "rating")) == {"building": S, "roads": B}


def test_answering_again_changes_the_one_answer_in_place(setup):
    world, survey, homes = setup
    client = Client()
    client.post(f"/surveys/{survey.pk}/", {"code": homes[0].code})
    client.post(f"/surveys/{survey.pk}/", answer_post())
    first = SurveyAnswer.objects.get()
    client.post(f"/surveys/{survey.pk}/", {"code": homes[0].code})
    client.post(f"/surveys/{survey.pk}/", answer_post(overall=U, roads=U))
    answer = SurveyAnswer.objects.get()
    assert answer.pk == first.pk and answer.overall == U
    assert SurveyAreaAnswer.objects.filter(answer=answer).count() == 2
    assert answer.areas.get(area="roads").rating == U


def test_wrong_code_is_refused_in_chinese_and_nothing_changes(setup):
    world, survey, homes = setup
    response = Client().post(f"/surveys/{survey.pk}/", {"code": "ZZZZ-ZZZZ-ZZZZ", **answer_post()})
    assert response.status_code == 400
    assert "投票码不正确" in response.content.decode()
    assert not SurveyAnswer.objects.exists()


def test_code_of_another_projects_household_is_refused(setup):
    world, survey, _homes = setup
    stranger = households_for(world.other_project, 1, prefix="B")[0]
    response = Client().post(f"/surveys/{survey.pk}/", {"code": stranger.code, **answer_post()})
    assert response.status_code == 400
    assert "不属于本项目的住户" in response.content.decode()
    with pytest.raises(WorkflowError, match="不属于本项目"):
        surveys.answer_survey(survey, stranger, surveys.Answers(S, S, {"building": S, "roads": S}))
    assert not SurveyAnswer.objects.exists()


def test_too_many_wrong_codes_stop_even_a_right_one(setup, settings):
    world, survey, homes = setup
    client = Client()
    for _ in range(10):
        client.post(f"/surveys/{survey.pk}/", {"code": "WRONGWRONGWR"})
    response = client.post(f"/surveys/{survey.pk}/", {"code": homes[0].code, **answer_post()})
    assert response.status_code == 429 and "输错次数太多" in response.content.decode()
    assert not SurveyAnswer.objects.exists()


def test_answer_after_the_close_is_refused_and_the_old_answer_stays(setup):
    world, survey, homes = setup
    surveys.answer_survey(survey, homes[0], surveys.Answers(S, S, {"building": S, "roads": S}))
    client = Client()
    client.post(f"/surveys/{survey.pk}/", {"code": homes[0].code})
    surveys.close_survey(survey, actor=world.bureau)
    response = client.post(f"/surveys/{survey.pk}/", answer_post(overall=U))
    assert response.status_code == 409
    assert "结束，不能再提交或修改" in response.content.decode()
    assert SurveyAnswer.objects.get().overall == S


def test_answer_after_the_closing_date_is_refused(setup):
    world, survey, homes = setup
    Survey.objects.filter(pk=survey.pk).update(
        opens_on=today() - timedelta(days=20), closes_on=today() - timedelta(days=1)
    )
    survey.refresh_from_db()
    with pytest.raises(WorkflowError, match="结束"):
        surveys.answer_survey(survey, homes[0], surveys.Answers(S, S, {"building": S, "roads": S}))
    assert not SurveyAnswer.objects.exists()


def test_answer_before_the_opening_is_refused(setup):
    world, survey, homes = setup
    Survey.objects.filter(pk=survey.pk).update(
        opens_on=today() + timedelta(days=1), closes_on=today() + timedelta(days=9)
    )
    survey.refresh_from_db()
    with pytest.raises(WorkflowError, match="开始，请届时再填写"):
        surveys.answer_survey(survey, homes[0], surveys.Answers(S, S, {"building": S, "roads": S}))


def test_an_unanswered_area_is_sent_back_with_why(setup):
    world, survey, homes = setup
    client = Client()
    client.post(f"/surveys/{survey.pk}/", {"code": homes[0].code})
    data = answer_post()
    del data["area-roads"]
    response = client.post(f"/surveys/{survey.pk}/", data)
    assert response.status_code == 400 and "请选择一项" in response.content.decode()
    with pytest.raises(WorkflowError, match="道路交通和停车"):
        surveys.answer_survey(survey, homes[0], surveys.Answers(S, S, {"building": S}))
    assert not SurveyAnswer.objects.exists()


# --- 代录 -----------------------------------------------------------------------------------------


def test_projects_supervisor_enters_a_paper_form_marked_with_their_name(setup):
    world, survey, homes = setup
    client = Client()
    client.force_login(world.alice)
    response = client.post(
        f"/surveys/{survey.pk}/paper/", {"household": homes[3].pk, **answer_post(overall=B)}
    )
    assert response.status_code == 302
    answer = SurveyAnswer.objects.get()
    assert (answer.household, answer.entered_by, answer.overall) == (homes[3], world.alice, B)


def test_supervisor_of_another_project_cannot_enter_paper_forms(setup):
    world, survey, homes = setup
    client = Client()
    client.force_login(world.bob)
    response = client.post(
        f"/surveys/{survey.pk}/paper/", {"household": homes[3].pk, **answer_post()}
    )
    assert response.status_code == 404
    with pytest.raises(WorkflowError, match="没有受聘监督这个项目") as refusal:
        surveys.answer_survey(
            survey,
            homes[3],
            surveys.Answers(S, S, {"building": S, "roads": S}),
            entered_by=world.bob,
        )
    assert refusal.value.status_code == 403
    assert not SurveyAnswer.objects.exists()


def test_staff_cannot_enter_paper_forms(setup):
    world, survey, homes = setup
    client = Client()
    client.force_login(world.handler)
    assert client.get(f"/surveys/{survey.pk}/paper/").status_code == 403


def test_paper_form_does_not_overwrite_a_households_own_answer(setup):
    world, survey, homes = setup
    surveys.answer_survey(survey, homes[0], surveys.Answers(S, S, {"building": S, "roads": S}))
    client = Client()
    client.force_login(world.alice)
    response = client.post(
        f"/surveys/{survey.pk}/paper/", {"household": homes[0].pk, **answer_post(overall=U)}
    )
    assert response.status_code == 409
    assert "已经自己在线填写" in response.content.decode()
    answer = SurveyAnswer.objects.get()
    assert answer.overall == S and answer.entered_by is None


# --- results ------------------------------------------------------------------------------------


def ten_answers(world, survey, homes):
    """8 households online, 2 from paper: overall 6 满意, 2 基本满意, 2 不满意."""
    overall = [S] * 6 + [B] * 2 + [U] * 2
    for i, home in enumerate(homes[:8]):
        surveys.answer_survey(
            survey,
            home,
            surveys.Answers(overall[i], S, {"building": S, "roads": U if i < 4 else B}, "好"),
        )
    for i, home in enumerate(homes[8:10], start=8):
        surveys.answer_survey(
            survey,
            home,
            surveys.Answers(overall[i], B, {"building": B, "roads": U}),
            entered_by=world.alice,
        )


def test_public_results_show_counts_and_shares_per_area_without_households(setup):
    world, survey, homes = setup
    ten_answers(world, survey, homes)
    result = surveys.results(survey)
    assert (result.households, result.answers, result.paper) == (12, 10, 2)
    rows = {r.key: r for r in result.rows}
    assert (rows["overall"].satisfied, rows["overall"].basically, rows["overall"].unsatisfied) == (
        6,
        2,
        2,
    )
    assert rows["overall"].share == 80
    assert rows["roads"].share == 40 and rows["building"].share == 100
    page = Client().get(f"/surveys/{survey.pk}/").content.decode()
    assert "参与户数 10 / 12" in page and "80%" in page and "道路交通和停车" in page
    assert "其中代录纸质问卷 2 份" in page
    for home in homes:
        assert home.code not in page and f"{home.room}室" not in page


def test_project_page_links_to_the_survey(setup):
    world, survey, _homes = setup
    page = Client().get(f"/projects/{world.project.pk}/").content.decode()
    assert f"/surveys/{survey.pk}/" in page and "满意度调查" in page


def test_dashboard_ranks_contractors_and_subdistricts_by_satisfaction(setup):
    world, survey, homes = setup
    ten_answers(world, survey, homes)
    accept(world.other_project)
    others = households_for(world.other_project, 2, prefix="C")
    other = surveys.open_survey(
        world.other_project, actor=world.bureau, opens_on=today(), closes_on=today()
    )
    for home in others:
        surveys.answer_survey(other, home, surveys.Answers(S, S, {"building": S, "roads": S}))
    ranking = surveys.rankings()
    assert [(r["name"], r["share"], r["answers"]) for r in ranking["contractors"]] == [
        ("安居建筑", 100, 2),
        ("宏程建设", 80, 10),
    ]
    assert [r["name"] for r in ranking["subdistricts"]] == ["玉海街道", "安阳街道"]
    client = Client()
    client.force_login(world.bureau)
    page = client.get("/dashboard/").content.decode()
    assert "居民满意度排行" in page and "宏程建设" in page and "80%" in page


def test_dashboard_ranking_is_cached_until_the_next_answer(setup, django_assert_max_num_queries):
    world, survey, homes = setup
    ten_answers(world, survey, homes)
    surveys.rankings()
    with django_assert_max_num_queries(0):
        surveys.rankings()


# --- concurrency --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_answers_of_one_household_at_once_leave_one_row(world):
    if connection.vendor == "sqlite" and "memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("threads need a shared database")
    accept(world.project)
    homes = households_for(world.project, 1)
    survey = surveys.open_survey(
        world.project, actor=world.bureau, opens_on=today(), closes_on=today()
    )
    errors = []

    def go(rating):
        try:
            surveys.answer_survey(
                survey, homes[0], surveys.Answers(rating, S, {"building": S, "roads": S})
            )
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=go, args=(r,)) for r in (S, U)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert SurveyAnswer.objects.count() == 1
    assert SurveyAreaAnswer.objects.count() == 2


# --- fuzz: the new forms never answer with a server error ---------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from .test_fuzz import ANYTHING, DATES, Fuzzer, drop_none, fuzz, maybe  # noqa: E402

RATING = st.one_of(st.sampled_from([S, B, U]), ANYTHING)


@pytest.fixture
def survey_fuzzer(world):
    fuzzer = Fuzzer(world)
    accept(world.project)
    homes = households_for(world.project, 3, prefix="F")
    survey = surveys.open_survey(
        world.project, actor=world.bureau, opens_on=today(), closes_on=today() + timedelta(days=3)
    )
    return fuzzer, survey, homes


def _answer_fields(data) -> dict:
    return drop_none(
        {
            "overall": data.draw(maybe(RATING)),
            "area-building": data.draw(maybe(RATING)),
            "area-roads": data.draw(maybe(RATING)),
            "conduct": data.draw(maybe(RATING)),
            "comment": data.draw(maybe(ANYTHING)),
            "leave": data.draw(maybe(st.sampled_from(["", "1", "x"]))),
        }
    )


@fuzz(40)
@given(data=st.data())
def test_fuzz_survey_code_and_answer_forms(survey_fuzzer, data):
    fuzzer, survey, homes = survey_fuzzer
    code = data.draw(st.one_of(st.sampled_from([h.code for h in homes]), ANYTHING))
    role = data.draw(st.sampled_from(["anon", "alice", "bureau"]))
    first, second = fuzzer.send_in_turn(
        role,
        [
            ("POST", f"/surveys/{survey.pk}/", drop_none({"code": code})),
            ("POST", f"/surveys/{survey.pk}/", _answer_fields(data)),
        ],
    )
    assert first.status_code in (200, 302, 400, 429) and second.status_code in (
        200,
        302,
        400,
        409,
        429,
    )


@fuzz(30)
@given(data=st.data())
def test_fuzz_survey_paper_form(survey_fuzzer, data):
    fuzzer, survey, homes = survey_fuzzer
    form = _answer_fields(data)
    form["household"] = data.draw(st.one_of(st.sampled_from([h.pk for h in homes]), ANYTHING))
    role = data.draw(st.sampled_from(["alice", "alice", "bob", "handler"]))
    response = fuzzer.send(role, "POST", f"/surveys/{survey.pk}/paper/", drop_none(form))
    assert response.status_code in (200, 302, 400, 403, 404, 409)


@fuzz(30)
@given(
    opens=maybe(st.one_of(DATES, ANYTHING)),
    closes=maybe(st.one_of(DATES, ANYTHING)),
    role=st.sampled_from(["bureau", "bureau", "handler", "alice"]),
)
def test_fuzz_survey_open_and_close(survey_fuzzer, opens, closes, role):
    fuzzer, survey, _homes = survey_fuzzer
    project = survey.project_id
    response = fuzzer.send(
        role,
        "POST",
        f"/projects/{project}/survey/new/",
        drop_none({"opens_on": opens, "closes_on": closes}),
    )
    assert response.status_code in (200, 302, 400, 403, 409)
    response = fuzzer.send(role, "POST", f"/surveys/{survey.pk}/close/", {"x": opens or ""})
    assert response.status_code in (302, 403)


def test_the_open_form_shows_today_and_two_weeks_on_in_its_date_boxes(world, client):
    """The date boxes showed mm/dd/yyyy: a date input reads only YYYY-MM-DD."""
    accept(world.project)
    households_for(world.project)
    client.force_login(world.bureau)
    page = client.get(f"/projects/{world.project.pk}/survey/new/").content.decode()
    assert f'value="{today():%Y-%m-%d}"' in page
    assert f'value="{today() + timedelta(days=14):%Y-%m-%d}"' in page
