"""意愿征询: households and their codes, one ballot per household, the 2/3 rule, paper ballots
(代录), printed slips and adopting the result. Each test checks the response, then what was saved."""

from __future__ import annotations

import csv
import io
import random
import re
import threading
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from openpyxl import Workbook

from supervision import residents, services, views
from supervision.models import (
    Ballot,
    BallotAnswer,
    Consultation,
    ConsultationItem,
    Household,
    ScopeItem,
)

from .factories import make_supervisor, make_world

Kind = ConsultationItem.Kind
CONSULTATIONS = "/panel/supervision/consultation/"
FACADE_OPTIONS = "真石漆\n普通涂料"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # wrong codes are counted in the cache
    yield
    cache.clear()


# --- helpers -----------------------------------------------------------------------------------


def page_of(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def today() -> date:
    return timezone.localdate()


def make_consultation(project, *, state: str = "open", **fields) -> Consultation:
    """A consultation that is ``open`` (today is inside it), ``closed`` or ``upcoming``."""
    opens_on, closes_on = {
        "open": (today() - timedelta(days=3), today() + timedelta(days=3)),
        "closed": (today() - timedelta(days=10), today() - timedelta(days=1)),
        "upcoming": (today() + timedelta(days=1), today() + timedelta(days=8)),
    }[state]
    fields.setdefault("title", "兴业大厦改造意愿征询")
    return Consultation.objects.create(
        project=project, opens_on=opens_on, closes_on=closes_on, **fields
    )


def add_item(
    consultation, text: str = "外墙翻新", *, kind=Kind.SCOPE, **fields
) -> ConsultationItem:
    if kind == Kind.SCOPE:
        fields.setdefault("area", "building")
    fields.setdefault("position", consultation.items.count())
    return ConsultationItem.objects.create(
        consultation=consultation, kind=kind, text=text, **fields
    )


def add_households(consultation, n: int, building: str = "1幢") -> list[Household]:
    return [
        Household.objects.create(
            consultation=consultation,
            building=building,
            unit="1单元",
            room=f"{101 + i}",
            code=residents.new_code(),
        )
        for i in range(n)
    ]


def all_agree(consultation, agree: bool = True, option: str = "") -> dict:
    return {item.pk: (agree, option) for item in consultation.items.all()}


def vote(consultation, households, agreeing: int) -> None:
    """Each household votes on every item: the first ``agreeing`` agree, the others do not."""
    for i, household in enumerate(households):
        residents.cast_ballot(consultation, household, all_agree(consultation, i < agreeing))


def close(consultation) -> Consultation:
    """The consultation's period ends yesterday (ballots were cast while it was open)."""
    Consultation.objects.filter(pk=consultation.pk).update(
        opens_on=today() - timedelta(days=10), closes_on=today() - timedelta(days=1)
    )
    consultation.refresh_from_db()
    return consultation


def ballot_form(consultation, code: str = "", agree: str = "yes", **options) -> dict:
    data = {f"item-{item.pk}": agree for item in consultation.items.all()}
    data.update({f"option-{pk}": option for pk, option in options.items()})
    if code:
        data["code"] = code
    return data


def act(client, url: str, action: str, *objects):
    """Post a changelist action on ``objects``, as the panel's action bar does."""
    return client.post(
        url, {"action": action, "_selected_action": [obj.pk for obj in objects], "index": "0"}
    )


def dismissed_supervisor(world):
    return make_supervisor(
        "carol",
        world.project.neighbourhood,
        [world.project],
        is_active=False,
        dismissed_on=date(2024, 1, 1),
    )


@pytest.fixture
def consultation(world):
    consultation = make_consultation(world.project)
    add_item(consultation, "外墙翻新", options=FACADE_OPTIONS, budget=Decimal("120.50"))
    return consultation


# --- the 2/3 rule ------------------------------------------------------------------------------


def test_two_thirds_voting_and_two_thirds_of_them_agreeing_is_adopted(world, consultation):
    households = add_households(consultation, 9)
    vote(consultation, households[:6], agreeing=4)

    result = residents.results(consultation)
    assert (result.households, result.ballots) == (9, 6)
    assert result.participation == Fraction(2, 3)
    assert result.quorum
    (item,) = result.items
    assert (item.agree, item.approval) == (4, Fraction(2, 3))
    assert item.adopted


def test_one_ballot_short_of_two_thirds_is_not_adopted_even_if_all_agree(world, consultation):
    households = add_households(consultation, 9)
    vote(consultation, households[:5], agreeing=5)

    result = residents.results(consultation)
    assert result.participation == Fraction(5, 9)
    assert not result.quorum
    (item,) = result.items
    assert (item.agree, item.approval) == (5, Fraction(1))
    assert not item.adopted


def test_half_of_the_ballots_agreeing_is_not_adopted(world, consultation):
    households = add_households(consultation, 9)
    vote(consultation, households[:6], agreeing=3)

    result = residents.results(consultation)
    assert result.quorum
    (item,) = result.items
    assert (item.agree, item.approval) == (3, Fraction(1, 2))
    assert not item.adopted


def test_no_ballots_yet_is_nothing_adopted(world, consultation):
    add_households(consultation, 9)
    result = residents.results(consultation)
    assert (result.ballots, result.quorum) == (0, False)
    assert result.items[0].approval is None
    assert not result.items[0].adopted


def test_a_consultation_with_its_own_rule_of_one_half_is_judged_by_it(world):
    consultation = make_consultation(
        world.project,
        participation_numerator=1,
        participation_denominator=2,
        approval_numerator=1,
        approval_denominator=2,
    )
    lift = add_item(consultation, "加装电梯")
    parking = add_item(consultation, "增设停车位", area="roads")
    households = add_households(consultation, 12)
    for i, household in enumerate(households[:6]):  # 6 of 12 vote
        residents.cast_ballot(
            consultation, household, {lift.pk: (i < 3, ""), parking.pk: (i < 2, "")}
        )

    result = residents.results(consultation)
    assert result.participation == Fraction(1, 2)
    assert result.quorum
    adopted = {r.item.text: r.adopted for r in result.items}
    assert adopted == {"加装电梯": True, "增设停车位": False}  # 3/6 agree, 2/6 agree


def test_result_page_shows_the_rule_of_the_consultation(world, client):
    consultation = make_consultation(
        world.project,
        participation_numerator=1,
        participation_denominator=2,
        approval_numerator=3,
        approval_denominator=5,
    )
    add_item(consultation)
    page = page_of(client.get(consultation.get_absolute_url()))
    assert "参与户数达到 1/2，且参与户中同意的达到 3/5，该事项通过" in page


# --- adopting the result -----------------------------------------------------------------------


@pytest.fixture
def decided(world):
    """A closed consultation: 6 of 9 households voted; every item was agreed by 4 of them,
    except 绿化 (3 of 6). The option 真石漆 won 3 to 1."""
    consultation = make_consultation(world.project)
    renovate = add_item(consultation, "是否同意改造", kind=Kind.RENOVATE)
    facade = add_item(consultation, "外墙翻新", options=FACADE_OPTIONS, budget=Decimal("120.50"))
    greenery = add_item(consultation, "补种绿化", area="landscape")
    managed = add_item(consultation, "引入物业管理", kind=Kind.MANAGEMENT)
    households = add_households(consultation, 9)
    for i, household in enumerate(households[:6]):
        residents.cast_ballot(
            consultation,
            household,
            {
                renovate.pk: (i < 4, ""),
                facade.pk: (i < 4, "真石漆" if i < 3 else ("普通涂料" if i == 3 else "")),
                greenery.pk: (i < 3, ""),
                managed.pk: (i < 4, ""),
            },
        )
    return close(consultation)


def test_bureau_adopts_the_closed_result_and_only_adopted_scope_items_join_the_project(
    world, client, decided
):
    client.force_login(world.bureau)
    response = act(client, CONSULTATIONS, "apply_results", decided)

    assert response.status_code == 302
    assert messages_of(response) == [f"{decided}：1 项改造内容已纳入项目。"]
    (scope,) = ScopeItem.objects.filter(project=world.project)
    assert scope.area == "building"
    assert scope.description == "外墙翻新（真石漆）"
    assert scope.budget == Decimal("120.50")
    decided.refresh_from_db()
    assert decided.applied_at is not None


def test_result_is_adopted_only_once(world, client, decided):
    first = residents.apply_result(decided, actor=world.handler)
    assert [s.description for s in first] == ["外墙翻新（真石漆）"]

    client.force_login(world.bureau)
    response = act(client, CONSULTATIONS, "apply_results", decided)
    assert messages_of(response) == [f"{decided}：这次征询的结果已经采纳过了。"]
    with pytest.raises(services.WorkflowError, match="已经采纳过"):
        residents.apply_result(Consultation.objects.get(pk=decided.pk), actor=world.bureau)
    assert ScopeItem.objects.filter(project=world.project).count() == 1


def test_result_cannot_be_adopted_before_the_close(world, client, consultation):
    vote(consultation, add_households(consultation, 3), agreeing=3)
    client.force_login(world.bureau)
    response = act(client, CONSULTATIONS, "apply_results", consultation)

    assert messages_of(response) == [f"{consultation}：征询还没有截止，截止后才能采纳结果。"]
    with pytest.raises(services.WorkflowError) as refusal:
        residents.apply_result(consultation, actor=world.bureau)
    assert refusal.value.status_code == 409
    assert not ScopeItem.objects.exists()
    consultation.refresh_from_db()
    assert consultation.applied_at is None


def test_staff_of_another_subdistrict_cannot_adopt_the_result(world, client, decided):
    client.force_login(world.other_staff)
    act(client, CONSULTATIONS, "apply_results", decided)
    assert client.get(f"{CONSULTATIONS}{decided.pk}/change/").status_code == 404
    assert not ScopeItem.objects.exists()
    decided.refresh_from_db()
    assert decided.applied_at is None


def test_a_supervisor_cannot_adopt_the_result(world, client, decided):
    with pytest.raises(services.WorkflowError) as refusal:
        residents.apply_result(decided, actor=world.alice)
    assert refusal.value.status_code == 403
    assert "只有住建局或街道" in refusal.value.message

    client.force_login(world.alice)
    response = act(client, CONSULTATIONS, "apply_results", decided)
    assert response.status_code in (302, 403, 404)
    assert not response.get("Location", "").startswith(CONSULTATIONS)

    assert not ScopeItem.objects.exists()
    decided.refresh_from_db()
    assert decided.applied_at is None


# --- one ballot per household ------------------------------------------------------------------


def test_voting_again_changes_the_one_ballot(world, consultation):
    (household,) = add_households(consultation, 1)
    first = residents.cast_ballot(consultation, household, all_agree(consultation, True, "真石漆"))
    second = residents.cast_ballot(consultation, household, all_agree(consultation, False, ""))

    assert second.pk == first.pk
    assert Ballot.objects.filter(household=household).count() == 1
    answers = list(BallotAnswer.objects.filter(ballot=first).values_list("agree", "option"))
    assert answers == [(False, "")]
    assert residents.results(consultation).items[0].agree == 0


def test_the_database_refuses_a_second_ballot_for_a_household(world, consultation):
    (household,) = add_households(consultation, 1)
    Ballot.objects.create(household=household, consultation=consultation)
    with pytest.raises(IntegrityError), transaction.atomic():
        Ballot.objects.create(household=household, consultation=consultation)
    assert Ballot.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_votes_at_once_for_one_household_leave_one_ballot(on_postgres):
    world = make_world()
    consultation = make_consultation(world.project)
    item = add_item(consultation, "外墙翻新", options=FACADE_OPTIONS)
    (household,) = add_households(consultation, 1)
    barrier = threading.Barrier(2)
    errors = []

    def cast(agree: bool):
        try:
            barrier.wait()
            residents.cast_ballot(
                Consultation.objects.get(pk=consultation.pk),
                Household.objects.get(pk=household.pk),
                {item.pk: (agree, "")},
            )
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=cast, args=(agree,)) for agree in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Ballot.objects.filter(household=household).count() == 1
    assert BallotAnswer.objects.filter(ballot__household=household).count() == 1


@pytest.mark.parametrize(
    ("state", "reason"), [("closed", "截止，不能再投票"), ("upcoming", "开始，请届时再投票")]
)
def test_voting_outside_the_period_is_refused(world, client, state, reason):
    consultation = make_consultation(world.project, state=state)
    add_item(consultation)
    (household,) = add_households(consultation, 1)

    response = client.post(
        consultation.get_absolute_url(), ballot_form(consultation, household.code)
    )
    assert response.status_code == 409
    assert reason in page_of(response)
    with pytest.raises(services.WorkflowError, match=reason):
        residents.cast_ballot(consultation, household, all_agree(consultation))
    assert not Ballot.objects.exists()
    assert not BallotAnswer.objects.exists()


def test_a_code_of_another_consultation_is_refused(world, client, consultation):
    other = make_consultation(world.other_project, title="玉海楼小区征询")
    add_item(other)
    (foreign,) = add_households(other, 1)
    add_households(consultation, 1)

    response = client.post(consultation.get_absolute_url(), ballot_form(consultation, foreign.code))
    assert response.status_code == 400
    assert "投票码不正确" in page_of(response)
    with pytest.raises(services.WorkflowError, match="投票码与本次征询不符") as refusal:
        residents.cast_ballot(consultation, foreign, all_agree(consultation))
    assert refusal.value.status_code == 400
    assert not Ballot.objects.exists()
    assert not BallotAnswer.objects.exists()


def test_an_option_that_is_not_offered_is_refused(world, client, consultation):
    (household,) = add_households(consultation, 1)
    item = consultation.items.get()

    response = client.post(
        consultation.get_absolute_url(),
        ballot_form(consultation, household.code, **{str(item.pk): "大理石"}),
    )
    assert response.status_code == 400
    assert response.context["form"].errors[f"option-{item.pk}"]
    with pytest.raises(services.WorkflowError, match="没有这个选项") as refusal:
        residents.cast_ballot(consultation, household, {item.pk: (True, "大理石")})
    assert refusal.value.status_code == 400
    assert not Ballot.objects.exists()
    assert not BallotAnswer.objects.exists()


def test_a_ballot_missing_an_item_is_refused(world, client, consultation):
    second = add_item(consultation, "加装电梯")
    (household,) = add_households(consultation, 1)
    data = ballot_form(consultation, household.code)
    del data[f"item-{second.pk}"]

    response = client.post(consultation.get_absolute_url(), data)
    assert response.status_code == 400
    assert response.context["form"].errors[f"item-{second.pk}"]
    answers = all_agree(consultation)
    del answers[second.pk]
    with pytest.raises(services.WorkflowError, match="请对每一项都作出选择：加装电梯"):
        residents.cast_ballot(consultation, household, answers)
    assert not Ballot.objects.exists()
    assert not BallotAnswer.objects.exists()


def test_a_refused_change_keeps_the_earlier_ballot(world, consultation):
    (household,) = add_households(consultation, 1)
    item = consultation.items.get()
    residents.cast_ballot(consultation, household, {item.pk: (True, "真石漆")})
    with pytest.raises(services.WorkflowError):
        residents.cast_ballot(consultation, household, {item.pk: (False, "大理石")})
    assert list(BallotAnswer.objects.values_list("agree", "option")) == [(True, "真石漆")]


# --- the consultation page ---------------------------------------------------------------------


def test_anyone_sees_participation_and_the_result_table(world, client, consultation):
    households = add_households(consultation, 9)
    vote(consultation, households[:6], agreeing=4)

    response = client.get(consultation.get_absolute_url())
    assert response.status_code == 200
    page = page_of(response)
    assert "参与户数 6 / 9（67%）" in page
    assert "参与率已达到要求" in page
    row = re.search(r"<tr>\s*<th scope=\"row\">外墙翻新</th>(.*?)</tr>", page, re.S).group(1)
    assert "<td>4</td>" in row
    assert "67%" in row
    assert "投票中" in row and "通过" not in row  # a verdict only once the vote has closed
    assert 'name="code"' in page  # the code box, not a ballot
    assert 'name="item-' not in page
    assert not any(h.code in page for h in households)


def test_a_valid_code_opens_the_households_ballot(world, client, consultation):
    (household,) = add_households(consultation, 1)
    item = consultation.items.get()

    response = client.post(consultation.get_absolute_url(), {"code": household.code})
    assert response.status_code == 302
    assert response["Location"] == consultation.get_absolute_url()  # no code in the address
    page = page_of(client.get(response["Location"]))
    assert "1幢1单元101室 的选票" in page
    assert f'name="item-{item.pk}"' in page
    assert f'name="option-{item.pk}"' in page
    assert household.code not in page  # remembered in the session, not written into the page


def test_a_code_typed_in_lower_case_with_dashes_is_recognised(world, client, consultation):
    (household,) = add_households(consultation, 1)
    typed = "-".join(household.code[i : i + 4] for i in (0, 4, 8)).lower()
    response = client.post(consultation.get_absolute_url(), {"code": typed}, follow=True)
    assert response.status_code == 200
    assert response.context["household"] == household


def test_posting_the_ballot_records_it_and_returns_to_the_ballot(world, client, consultation):
    (household,) = add_households(consultation, 1)
    item = consultation.items.get()

    response = client.post(
        consultation.get_absolute_url(),
        ballot_form(consultation, household.code, **{str(item.pk): "真石漆"}),
    )
    assert response.status_code == 302
    assert response["Location"] == consultation.get_absolute_url()
    ballot = Ballot.objects.get()
    assert (ballot.household, ballot.consultation, ballot.entered_by) == (
        household,
        consultation,
        None,
    )
    assert list(ballot.answers.values_list("item", "agree", "option")) == [
        (item.pk, True, "真石漆")
    ]

    page = page_of(client.get(response["Location"]))
    assert "已收到 1幢1单元101室 的选票，截止前可以修改" in page
    assert "已投票，截止前可以修改" in page
    assert "参与户数 1 / 1" in page


def test_posting_without_a_code_is_refused(world, client, consultation):
    add_households(consultation, 1)
    response = client.post(consultation.get_absolute_url(), ballot_form(consultation))
    assert response.status_code == 400
    assert "请输入投票码" in page_of(response)
    assert not Ballot.objects.exists()


def test_a_wrong_code_is_refused(world, client, consultation):
    add_households(consultation, 1)
    response = client.post(
        consultation.get_absolute_url(), ballot_form(consultation, "ABCD-EFGH-JKMN")
    )
    assert response.status_code == 400
    assert "投票码不正确" in page_of(response)
    assert not Ballot.objects.exists()


def test_after_ten_wrong_codes_the_address_is_locked_out_even_with_a_valid_code(
    world, client, consultation
):
    (household,) = add_households(consultation, 1)
    url = consultation.get_absolute_url()
    for i in range(10):
        response = client.post(url, {"code": f"WRONG{i:07d}"}, REMOTE_ADDR="10.0.0.7")
        assert response.status_code == 400, i

    response = client.post(url, ballot_form(consultation, household.code), REMOTE_ADDR="10.0.0.7")
    assert response.status_code == 429
    assert "投票码输错次数太多，请 15 分钟后再试" in page_of(response)
    assert not Ballot.objects.exists()

    # Another address is not held back by this one's guesses.
    response = client.post(url, ballot_form(consultation, household.code), REMOTE_ADDR="10.0.0.8")
    assert response.status_code == 302
    assert Ballot.objects.count() == 1


def test_nine_wrong_codes_still_let_the_right_one_in(world, client, consultation):
    (household,) = add_households(consultation, 1)
    url = consultation.get_absolute_url()
    for i in range(9):
        client.post(url, {"code": f"WRONG{i:07d}"})
    assert client.post(url, {"code": household.code}).status_code == 302


# --- issue 18: no verdict before the close; a wrong code stays; codes never in an address ------


def result_cells(page: str) -> list[str]:
    """The 结果 column of the result table, as text."""
    rows = re.findall(r"<tr>\s*<th scope=\"row\">.*?</tr>", page, re.S)
    return [re.sub(r"<[^>]+>", "", re.findall(r"<td>(.*?)</td>", row, re.S)[-1]) for row in rows]


def test_an_open_vote_with_no_ballots_is_in_progress_not_rejected(world, client, consultation):
    add_households(consultation, 9)

    page = page_of(client.get(consultation.get_absolute_url()))
    assert result_cells(page) == ["投票中"]
    assert "未通过" not in page
    assert "投票进行中" in page
    assert "目前投票情况（实时）" in page
    assert "截止后公布是否通过" in page
    (item,) = residents.results(consultation).items
    assert item.verdict == "pending"


def test_an_open_vote_already_past_the_rule_is_still_only_in_progress(world, client, consultation):
    households = add_households(consultation, 3)
    vote(consultation, households, agreeing=3)

    page = page_of(client.get(consultation.get_absolute_url()))
    assert result_cells(page) == ["投票中"]
    assert "参与率已达到要求" in page  # the live figures are shown, the verdict is not
    (item,) = residents.results(consultation).items
    assert item.adopted and item.verdict == "pending"


def test_an_upcoming_vote_shows_no_verdict(world, client):
    consultation = make_consultation(world.project, state="upcoming")
    add_item(consultation)
    add_households(consultation, 4)

    page = page_of(client.get(consultation.get_absolute_url()))
    assert result_cells(page) == ["未开始"]
    assert "未通过" not in page and 'name="code"' not in page


def test_only_a_closed_vote_says_adopted_or_not(world, client, decided):
    page = page_of(client.get(decided.get_absolute_url()))
    assert "征询结果" in page and "已截止" in page
    assert result_cells(page) == ["通过", "通过", "未通过", "通过"]
    verdicts = [r.verdict for r in residents.results(decided).items]
    assert verdicts == ["adopted", "adopted", "rejected", "adopted"]


def test_a_closed_vote_with_no_ballots_is_not_adopted(world, client):
    consultation = close(make_consultation(world.project))
    add_item(consultation)
    add_households(consultation, 4)

    page = page_of(client.get(consultation.get_absolute_url()))
    assert result_cells(page) == ["未通过"]
    assert "参与率未达 2/3" in page


def test_a_wrong_code_stays_in_the_field_with_the_reason_beside_it(world, client, consultation):
    add_households(consultation, 1)
    typed = "abcd-efgh-jkm"

    response = client.post(consultation.get_absolute_url(), {"code": typed})
    assert response.status_code == 400
    page = page_of(response)
    field = re.search(r"<input id=\"code\"[^>]*>", page).group(0)
    assert f'value="{typed}"' in field
    assert "is-invalid" in field and 'aria-describedby="code-error"' in field
    feedback = re.search(r'<div id="code-error"[^>]*>(.*?)</div>', page, re.S).group(1)
    assert feedback == "投票码不正确，请核对通知单上的 12 位投票码。"
    assert 'name="item-' not in page
    assert not Ballot.objects.exists()


def test_an_empty_code_is_asked_for_beside_the_field(world, client, consultation):
    response = client.post(consultation.get_absolute_url(), {"code": "  "})
    assert response.status_code == 400
    feedback = re.search(r'<div id="code-error"[^>]*>(.*?)</div>', page_of(response), re.S)
    assert feedback.group(1) == "请输入投票码。"


def test_the_code_box_posts_with_csrf_and_never_puts_the_code_in_an_address(world, consultation):
    from django.test import Client

    (household,) = add_households(consultation, 1)
    client = Client(enforce_csrf_checks=True)
    url = consultation.get_absolute_url()

    page = page_of(client.get(url))
    form = re.search(r"<form[^>]*>(?:(?!</form>).)*name=\"code\"", page, re.S).group(0)
    assert 'method="post"' in form
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    assert client.post(url, {"code": household.code}).status_code == 403  # no CSRF token

    response = client.post(url, {"code": household.code, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and "code" not in response["Location"]
    page = page_of(client.get(response["Location"]))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(url, {**ballot_form(consultation), "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and "code" not in response["Location"]
    assert Ballot.objects.get().household == household
    assert household.code not in page_of(client.get(url))


def test_a_code_in_the_address_opens_nothing(world, client, consultation):
    (household,) = add_households(consultation, 1)
    response = client.get(consultation.get_absolute_url(), {"code": household.code})
    assert response.status_code == 200
    assert response.context["household"] is None
    assert 'name="item-' not in page_of(response)


def test_another_household_on_the_same_phone_starts_over(world, client, consultation):
    first, second = add_households(consultation, 2)
    url = consultation.get_absolute_url()
    client.post(url, ballot_form(consultation, first.code))

    response = client.post(url, {"leave": "1"})
    assert response.status_code == 302
    page = page_of(client.get(url))
    assert 'name="item-' not in page and 'name="code"' in page
    client.post(url, ballot_form(consultation, second.code, agree="no"))
    assert sorted(Ballot.objects.values_list("household", flat=True)) == [first.pk, second.pk]


def test_a_wrong_code_does_not_fall_back_to_the_household_remembered(world, client, consultation):
    (household,) = add_households(consultation, 1)
    url = consultation.get_absolute_url()
    client.post(url, {"code": household.code})

    response = client.post(url, ballot_form(consultation, "WRONGWRONGWR"))
    assert response.status_code == 400
    assert "投票码不正确" in page_of(response)
    assert not Ballot.objects.exists()


def test_unknown_consultation_is_404(db, client):
    assert client.get("/consultations/999999/").status_code == 404
    assert client.post("/consultations/999999/", {"code": "ABCDEFGHJKMN"}).status_code == 404


# --- paper ballots (代录) ----------------------------------------------------------------------


def test_a_supervisor_enters_a_paper_ballot_in_their_name(world, client, consultation):
    households = add_households(consultation, 3)
    item = consultation.items.get()
    client.force_login(world.alice)
    data = ballot_form(consultation, **{str(item.pk): "普通涂料"})
    data["household"] = households[1].pk

    response = client.post(f"/consultations/{consultation.pk}/paper/", data)
    assert response.status_code == 302
    assert response["Location"] == f"/consultations/{consultation.pk}/paper/"
    ballot = Ballot.objects.get()
    assert ballot.household == households[1]
    assert ballot.entered_by == world.alice
    assert list(ballot.answers.values_list("agree", "option")) == [(True, "普通涂料")]

    client.logout()
    page = page_of(client.get(consultation.get_absolute_url()))
    assert "参与户数 1 / 3" in page
    assert "其中代录纸质选票 1 张" in page


def test_a_paper_ballot_needs_the_household(world, client, consultation):
    add_households(consultation, 1)
    client.force_login(world.alice)
    response = client.post(f"/consultations/{consultation.pk}/paper/", ballot_form(consultation))
    assert response.status_code == 400
    assert "请选择是哪一户的选票" in page_of(response)
    assert not Ballot.objects.exists()


@pytest.mark.parametrize("who", ["handler", "bureau", "dismissed"])
def test_only_a_serving_supervisor_enters_paper_ballots(world, client, consultation, who):
    (household,) = add_households(consultation, 1)
    user = dismissed_supervisor(world) if who == "dismissed" else getattr(world, who)
    client.force_login(user)
    data = {**ballot_form(consultation), "household": household.pk}

    assert client.get(f"/consultations/{consultation.pk}/paper/").status_code == 403
    assert client.post(f"/consultations/{consultation.pk}/paper/", data).status_code == 403
    with pytest.raises(services.WorkflowError) as refusal:
        residents.cast_ballot(consultation, household, all_agree(consultation), entered_by=user)
    assert refusal.value.status_code == 403
    assert not Ballot.objects.exists()
    assert not BallotAnswer.objects.exists()


def test_anonymous_visitor_is_sent_to_login_from_the_paper_ballot(world, client, consultation):
    (household,) = add_households(consultation, 1)
    url = f"/consultations/{consultation.pk}/paper/"
    response = client.post(url, {**ballot_form(consultation), "household": household.pk})
    assert response.status_code == 302
    assert response["Location"].startswith(f"/accounts/login/?next={url}")
    assert not Ballot.objects.exists()


def test_a_huge_household_number_for_a_paper_ballot_is_not_a_server_error(
    world, client, consultation
):
    client.force_login(world.alice)
    response = client.get(f"/consultations/{consultation.pk}/paper/", {"household": "9" * 30})
    assert response.status_code == 200


def test_a_superscript_digit_as_household_is_not_a_server_error(world, client, consultation):
    client.raise_request_exception = False
    client.force_login(world.alice)
    response = client.get(f"/consultations/{consultation.pk}/paper/", {"household": "²"})
    assert response.status_code == 200


# --- slips -------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["handler", "bureau"])
def test_staff_and_bureau_print_a_slip_with_every_code(world, client, consultation, who):
    households = add_households(consultation, 4)
    client.force_login(getattr(world, who))
    response = client.get(f"/consultations/{consultation.pk}/slips/")
    assert response.status_code == 200
    page = page_of(response)
    for household in households:
        assert household.code in page
    assert "?code=" not in page
    assert page.count("<svg") >= len(households)
    # Every slip's QR code carries the consultation's own address, and nothing else.
    url = f"http://testserver{consultation.get_absolute_url()}"
    assert page.count(views.qr_svg(url, scale=2)) == len(households)


def test_a_supervisor_cannot_print_the_slips(world, client, consultation):
    (household,) = add_households(consultation, 1)
    client.force_login(world.alice)
    response = client.get(f"/consultations/{consultation.pk}/slips/")
    assert response.status_code == 404  # outside their scope: as if it did not exist
    assert household.code not in page_of(response)


def test_staff_of_another_subdistrict_cannot_print_the_codes(world, client, consultation):
    (household,) = add_households(consultation, 1)
    client.force_login(world.other_staff)
    response = client.get(f"/consultations/{consultation.pk}/slips/")
    assert response.status_code in (403, 404)
    assert household.code not in page_of(response)


# --- importing households ----------------------------------------------------------------------


def import_url(consultation) -> str:
    return f"/panel/supervision/consultation/{consultation.pk}/import/"


def csv_upload(rows, *, encoding: str = "utf-8", name: str = "households.csv"):
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return SimpleUploadedFile(name, out.getvalue().encode(encoding), content_type="text/csv")


def xlsx_upload(rows, name: str = "households.xlsx"):
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return SimpleUploadedFile(name, out.getvalue())


def upload_households(client, consultation, upload):
    return client.post(import_url(consultation), {"file": upload})


def report_rows(page: str) -> list[tuple[int, str]]:
    table = page[page.index("导入结果") :]
    return [
        (int(number), why)
        for number, why in re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td></tr>", table)
    ]


GOOD_ROWS = [
    ["1幢", "1单元", "101"],
    ["1幢", "1单元", "102"],
    ["1幢", "2单元", "201"],
    ["2幢", "", "301"],
    ["3幢", "1单元", "101"],
]


def test_bureau_imports_households_and_sees_each_rejected_row_and_why(world, client):
    consultation = make_consultation(world.project)
    rows = [
        ["楼栋", "单元", "室"],
        *GOOD_ROWS,
        ["4幢", "1单元", ""],
        ["1幢", "1单元", "102"],
        ["5幢", "1单元", "1" * 21],
    ]
    client.force_login(world.bureau)
    response = upload_households(client, consultation, csv_upload(rows))

    assert response.status_code == 200
    page = page_of(response)
    assert "成功导入 5 户" in page
    assert report_rows(page) == [
        (7, "楼栋和室号不能为空"),
        (8, "与已有住户重复：1幢1单元102室"),
        (9, "内容过长（每格最多 20 个字）"),
    ]
    assert messages_of(response) == ["已导入 5 户，拒绝 3 行。"]
    saved = list(consultation.households.values_list("building", "unit", "room"))
    assert sorted(saved) == sorted(tuple(row) for row in GOOD_ROWS)


def test_importing_the_same_list_again_adds_nobody(world, client):
    consultation = make_consultation(world.project)
    client.force_login(world.bureau)
    upload_households(client, consultation, csv_upload(GOOD_ROWS))
    codes = set(consultation.households.values_list("code", flat=True))

    page = page_of(upload_households(client, consultation, csv_upload(GOOD_ROWS)))
    assert "成功导入 0 户" in page
    assert [number for number, _why in report_rows(page)] == [1, 2, 3, 4, 5]
    assert set(consultation.households.values_list("code", flat=True)) == codes


def test_an_excel_file_imports(world, client):
    consultation = make_consultation(world.project)
    rows = [
        ["楼栋", "单元", "室"],
        ["1幢", "1单元", 101],
        ["1幢", "1单元", 102],
        ["2幢", None, 301],
    ]
    client.force_login(world.bureau)
    page = page_of(upload_households(client, consultation, xlsx_upload(rows)))

    assert "成功导入 3 户" in page
    assert sorted(consultation.households.values_list("building", "unit", "room")) == [
        ("1幢", "1单元", "101"),
        ("1幢", "1单元", "102"),
        ("2幢", "", "301"),
    ]


def test_a_csv_saved_by_chinese_excel_in_gbk_imports(world, client):
    consultation = make_consultation(world.project)
    rows = [["楼栋", "单元", "室"], ["东区1幢", "一单元", "101室"], ["东区1幢", "二单元", "202室"]]
    client.force_login(world.bureau)
    page = page_of(upload_households(client, consultation, csv_upload(rows, encoding="gbk")))

    assert "成功导入 2 户" in page
    assert sorted(consultation.households.values_list("building", "unit", "room")) == [
        ("东区1幢", "一单元", "101室"),
        ("东区1幢", "二单元", "202室"),
    ]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("households.csv", random.Random(7).randbytes(4096), "无法识别文件编码"),
        ("households.xlsx", b"PK\x03\x04" + random.Random(8).randbytes(512), "无法读取这个 Excel"),
    ],
    ids=["binary", "broken-xlsx"],
)
def test_a_file_that_is_not_a_list_is_refused_clearly(world, client, name, data, reason):
    consultation = make_consultation(world.project)
    client.force_login(world.bureau)
    response = upload_households(client, consultation, SimpleUploadedFile(name, data))

    assert response.status_code == 200
    errors = response.context["form"].errors["file"]
    assert len(errors) == 1 and reason in errors[0]
    assert reason in page_of(response)
    assert "导入结果" not in page_of(response)
    assert not Household.objects.exists()


def test_codes_are_twelve_unambiguous_characters_and_unique(world, client):
    consultation = make_consultation(world.project)
    rows = [["楼栋", "单元", "室"]] + [["1幢", "1单元", str(100 + i)] for i in range(200)]
    client.force_login(world.bureau)
    upload_households(client, consultation, csv_upload(rows))

    codes = list(Household.objects.values_list("code", flat=True))
    assert len(codes) == 200
    assert len(set(codes)) == 200
    for code in codes:
        assert re.fullmatch(r"[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{12}", code), code
    assert not set("".join(codes)) & set("01IOL")


def test_staff_of_another_subdistrict_cannot_import_households(world, client):
    consultation = make_consultation(world.project)
    client.force_login(world.other_staff)
    response = client.post(import_url(consultation), {"file": csv_upload(GOOD_ROWS)})
    assert response.status_code == 404
    assert not Household.objects.exists()
