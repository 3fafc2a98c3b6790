"""巡查 and 群众监督员: the patrol checklist, a problem found on patrol turned into an issue, the
list of projects nobody patrols, and appointing, listing and dismissing supervisors. Each test
checks the response, then what was saved."""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import IntegrityError
from django.test import Client
from django.utils import timezone

from accounts.models import User
from api.tokens import create_token
from supervision import residents, services
from supervision.models import Issue, Patrol, PatrolCheck, PatrolPhoto, Project, Supervisor
from supervision.panel import AppointForm

from .factories import PASSWORD, image_file, make_neighbourhood, make_project, make_supervisor

Check = Patrol.Check
SUPERVISORS = "/panel/supervision/supervisor/"
FENCING_NOTE = "北侧围挡倒了一段，行人可以直接进入施工区。"


@pytest.fixture
def phone():
    """A second browser."""
    return Client()


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


# --- helpers -----------------------------------------------------------------------------------


def page_of(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def field_errors(page: str, name: str) -> str:
    """The error text crispy renders under the field ``name`` (empty when it has none)."""
    match = re.search(rf'id="error_\d+_id_{re.escape(name)}"[^>]*>(.*?)</', page, re.S)
    return match.group(1) if match else ""


def patrol_form(project, **problems) -> dict:
    """Every item ok except ``problems``: item → (note, photos)."""
    data = {"project": project.pk, "note": "总体文明施工。"}
    for value in Check.values:
        data[f"check-{value}"] = "ok"
    for value, (note, photos) in problems.items():
        data[f"check-{value}"] = "problem"
        data[f"note-{value}"] = note
        if photos:
            data[f"photos-{value}"] = photos
    return data


def all_ok(**problems) -> list[residents.CheckInput]:
    return [
        residents.CheckInput(
            item=value,
            ok=value not in problems,
            note=problems.get(value, ""),
            photos=[image_file()] if value in problems else [],
        )
        for value in Check.values
    ]


def dismissed(world):
    return make_supervisor(
        "dave",
        world.project.neighbourhood,
        [world.project],
        is_active=False,
        dismissed_on=date(2024, 1, 1),
    )


@pytest.fixture
def fencing_problem(world, django_capture_on_commit_callbacks) -> PatrolCheck:
    """Alice's patrol of her project: the fencing is down (with a photo), the rest is fine."""
    with django_capture_on_commit_callbacks(execute=True):
        patrol = residents.log_patrol(
            supervisor=world.alice, project=world.project, checks=all_ok(fencing=FENCING_NOTE)
        )
    return patrol.checks.get(item=Check.FENCING)


# --- logging a patrol --------------------------------------------------------------------------


def test_supervisor_logs_a_patrol_with_one_problem_and_its_photo(
    world, client, django_capture_on_commit_callbacks
):
    client.force_login(world.alice)
    form = patrol_form(world.project, fencing=(FENCING_NOTE, [image_file("围挡.jpg")]))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/patrols/new/", form)

    patrol = Patrol.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/patrols/{patrol.pk}/"
    assert (patrol.project, patrol.supervisor, patrol.note) == (
        world.project,
        world.alice,
        "总体文明施工。",
    )
    checks = {check.item: check for check in patrol.checks.all()}
    assert set(checks) == set(Check.values)
    assert len(checks) == 8
    assert [item for item, check in checks.items() if not check.ok] == [Check.FENCING]
    assert checks[Check.FENCING].note == FENCING_NOTE
    photo = PatrolPhoto.objects.get()
    assert photo.check_item == checks[Check.FENCING]
    assert default_storage.exists(photo.image.name)
    assert default_storage.exists(photo.thumbnail.name)

    page = page_of(client.get(response["Location"]))
    assert "巡查记录已保存" in page
    assert FENCING_NOTE in page
    assert f"/patrols/photos/{photo.pk}/thumb/" in page
    assert client.get(f"/patrols/photos/{photo.pk}/").status_code == 200


def test_a_problem_without_a_note_is_refused_next_to_the_field(world, client):
    client.force_login(world.alice)
    response = client.post("/patrols/new/", patrol_form(world.project, fencing=("  ", None)))

    assert response.status_code == 400
    page = page_of(response)
    assert "有问题时请写明情况" in field_errors(page, "note-fencing")
    assert field_errors(page, "note-dust") == ""
    assert not Patrol.objects.exists()
    assert not PatrolCheck.objects.exists()


def test_a_project_the_supervisor_does_not_watch_is_not_offered_and_is_refused(world, client):
    client.force_login(world.alice)
    page = page_of(client.get("/patrols/new/"))
    assert f'value="{world.project.pk}"' in page
    assert f'value="{world.other_project.pk}"' not in page

    response = client.post("/patrols/new/", patrol_form(world.other_project))
    assert response.status_code == 400
    assert response.context["form"].errors["project"]
    with pytest.raises(services.WorkflowError, match="没有受聘监督这个项目") as refusal:
        residents.log_patrol(supervisor=world.alice, project=world.other_project, checks=all_ok())
    assert refusal.value.status_code == 403
    assert not Patrol.objects.exists()
    assert not PatrolCheck.objects.exists()


@pytest.mark.parametrize("who", ["handler", "bureau", "dismissed"])
def test_only_a_serving_supervisor_logs_patrols(world, client, who):
    user = dismissed(world) if who == "dismissed" else getattr(world, who)
    client.force_login(user)
    assert client.get("/patrols/new/").status_code == 403
    assert client.post("/patrols/new/", patrol_form(world.project)).status_code == 403
    with pytest.raises(services.WorkflowError) as refusal:
        residents.log_patrol(supervisor=user, project=world.project, checks=all_ok())
    assert refusal.value.status_code == 403
    assert not Patrol.objects.exists()


def test_anonymous_visitor_is_sent_to_login_from_the_patrol_form(world, client):
    response = client.post("/patrols/new/", patrol_form(world.project))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/patrols/new/")
    assert not Patrol.objects.exists()


# --- a problem becomes an issue ----------------------------------------------------------------


def test_a_problem_found_on_patrol_becomes_a_prefilled_issue(
    world, client, fencing_problem, django_capture_on_commit_callbacks
):
    url = f"/patrols/{fencing_problem.patrol_id}/checks/{fencing_problem.pk}/issue/"
    client.force_login(world.alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)

    issue = Issue.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/issues/{issue.pk}/"
    assert issue.reporter == world.alice
    assert issue.project == world.project
    assert issue.category == Issue.Category.SAFETY
    assert issue.title == "巡查发现：围挡"
    assert issue.description == FENCING_NOTE
    assert issue.status == Issue.Status.SUBMITTED
    photo = issue.photos.get()
    assert default_storage.exists(photo.image.name)
    assert photo.image.name != fencing_problem.photos.get().image.name  # a copy, not shared
    fencing_problem.refresh_from_db()
    assert fencing_problem.issue == issue

    page = page_of(client.get(f"/patrols/{fencing_problem.patrol_id}/"))
    assert f"已转为问题 {issue.reference}" in page


def test_turning_the_same_problem_into_an_issue_twice_gives_the_same_issue(
    world, client, fencing_problem, django_capture_on_commit_callbacks
):
    url = f"/patrols/{fencing_problem.patrol_id}/checks/{fencing_problem.pk}/issue/"
    client.force_login(world.alice)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url)
        second = client.post(url)

    issue = Issue.objects.get()
    assert first["Location"] == second["Location"] == f"/issues/{issue.pk}/"
    assert issue.photos.count() == 1


def test_another_supervisor_cannot_turn_the_problem_into_an_issue(world, client, fencing_problem):
    world.bob.supervisor.projects.add(world.project)
    client.force_login(world.bob)
    url = f"/patrols/{fencing_problem.patrol_id}/checks/{fencing_problem.pk}/issue/"
    assert client.post(url).status_code == 404
    with pytest.raises(services.WorkflowError) as refusal:
        residents.patrol_problem_to_issue(fencing_problem, actor=world.bob)
    assert refusal.value.status_code == 403
    assert not Issue.objects.exists()


def test_a_check_that_was_fine_cannot_become_an_issue(world, client, fencing_problem):
    fine = fencing_problem.patrol.checks.get(item=Check.DUST)
    client.force_login(world.alice)
    response = client.post(f"/patrols/{fine.patrol_id}/checks/{fine.pk}/issue/")
    assert response.status_code == 302
    assert response["Location"] == f"/patrols/{fine.patrol_id}/"
    assert messages_of(response) == ["这一项巡查正常，没有问题可以反映。"]
    assert not Issue.objects.exists()


def test_a_check_of_another_patrol_in_the_address_is_404(world, client, fencing_problem):
    other = residents.log_patrol(supervisor=world.alice, project=world.project, checks=all_ok())
    client.force_login(world.alice)
    response = client.post(f"/patrols/{other.pk}/checks/{fencing_problem.pk}/issue/")
    assert response.status_code == 404
    assert not Issue.objects.exists()


# --- projects nobody patrols -------------------------------------------------------------------


def test_stale_list_shows_construction_projects_not_patrolled_within_the_days(world, client):
    residents.log_patrol(supervisor=world.alice, project=world.project, checks=all_ok())
    Patrol.objects.update(created_at=timezone.now() - timedelta(days=1))
    long_ago = make_project(make_neighbourhood(world.anyang, "新华小区"))
    world.alice.supervisor.projects.add(long_ago)
    residents.log_patrol(supervisor=world.alice, project=long_ago, checks=all_ok())
    Patrol.objects.filter(project=long_ago).update(created_at=timezone.now() - timedelta(days=20))
    make_project(make_neighbourhood(world.anyang, "已完工小区"), status=Project.Status.COMPLETED)

    client.force_login(world.bureau)
    response = client.get("/patrols/stale/", {"days": "14"})
    assert response.status_code == 200
    assert response.context["days"] == 14
    assert {p.name for p in response.context["projects"]} == {
        world.other_project.name,  # never patrolled
        long_ago.name,
    }
    page = page_of(response)
    assert "14 天内无人巡查的在建项目" in page
    assert "从未巡查" in page
    assert world.project.name not in page


def test_stale_list_puts_never_patrolled_projects_first(world, client):
    never = make_project(make_neighbourhood(world.anyang, "新华小区"))
    residents.log_patrol(supervisor=world.alice, project=world.project, checks=all_ok())
    Patrol.objects.update(created_at=timezone.now() - timedelta(days=30))
    client.force_login(world.bureau)
    names = [p.name for p in client.get("/patrols/stale/").context["projects"]]
    assert names == sorted([never.name, world.other_project.name]) + [world.project.name]


@pytest.mark.parametrize("days", ["abc", "0", "-3", "366", ""])
def test_stale_list_falls_back_to_fourteen_days(world, client, days):
    client.force_login(world.handler)
    response = client.get("/patrols/stale/", {"days": days})
    assert response.status_code == 200
    assert response.context["days"] == 14


def test_stale_list_is_not_for_supervisors(world, client):
    client.force_login(world.alice)
    assert client.get("/patrols/stale/").status_code == 403


# --- odd addresses never break a page -----------------------------------------------------------

HUGE = "9" * 30
ODD_ADDRESSES = [
    ("bureau", "/patrols/stale/?days={n}"),
    ("bureau", "/patrols/?project={n}"),
    ("alice", "/patrols/new/?project={n}"),
]


@pytest.mark.parametrize(("who", "url"), ODD_ADDRESSES)
@pytest.mark.parametrize("number", ["abc", "-1", "1.5", "0"])
def test_nonsense_numbers_in_the_address_are_not_a_server_error(world, client, who, url, number):
    client.force_login(getattr(world, who))
    assert client.get(url.format(n=number)).status_code == 200


@pytest.mark.parametrize(
    ("who", "url"),
    [
        ODD_ADDRESSES[0],
        ODD_ADDRESSES[1],
        ODD_ADDRESSES[2],
    ],
)
def test_a_huge_number_in_the_address_is_not_a_server_error(world, client, who, url):
    client.raise_request_exception = False
    client.force_login(getattr(world, who))
    assert client.get(url.format(n=HUGE)).status_code == 200


@pytest.mark.parametrize(("who", "url"), ODD_ADDRESSES)
def test_a_superscript_digit_in_the_address_is_not_a_server_error(world, client, who, url):
    client.raise_request_exception = False
    client.force_login(getattr(world, who))
    assert client.get(url.format(n="²")).status_code == 200


# --- appointing supervisors --------------------------------------------------------------------


def appointment(world, **fields) -> dict:
    data = {
        "display_name": "陈建国",
        "username": "chenjg",
        "mobile": "13900000009",
        "password": "jiandu-2024-pw",
        "neighbourhood": world.project.neighbourhood.pk,
        "projects": [world.project.pk],
        "appointed_on": "2024-04-01",
        "term_ends_on": "2027-03-31",
        "certificate_number": "RAJD-2024-009",
        "_save": "保存",
    }
    data.update(fields)
    return data


def test_bureau_appoints_a_supervisor_with_an_account(world, client):
    client.force_login(world.bureau)
    response = client.post(f"{SUPERVISORS}add/", appointment(world))

    assert response.status_code == 302
    user = User.objects.get(username="chenjg")
    assert user.role == User.Role.SUPERVISOR
    assert (user.display_name, user.mobile, user.is_active) == ("陈建国", "13900000009", True)
    assert user.check_password("jiandu-2024-pw")
    supervisor = user.supervisor
    assert supervisor.neighbourhood == world.project.neighbourhood
    assert list(supervisor.projects.all()) == [world.project]
    assert (supervisor.appointed_on, supervisor.term_ends_on) == (
        date(2024, 4, 1),
        date(2027, 3, 31),
    )
    assert supervisor.certificate_number == "RAJD-2024-009"
    assert supervisor.is_active and supervisor.dismissed_on is None

    client.logout()
    assert client.login(username="13900000009", password="jiandu-2024-pw")
    assert services.is_serving_supervisor(user)


def test_the_appointment_form_creates_the_account_and_the_appointment_together(world):
    form = AppointForm(data=appointment(world))
    assert form.is_valid(), form.errors
    supervisor = residents.appoint_supervisor(actor=world.bureau, **form.cleaned_data)

    user = supervisor.user
    assert (user.username, user.role, user.mobile) == (
        "chenjg",
        User.Role.SUPERVISOR,
        "13900000009",
    )
    assert user.check_password("jiandu-2024-pw")
    assert list(supervisor.projects.all()) == [world.project]
    assert supervisor.certificate_number == "RAJD-2024-009"
    assert services.is_serving_supervisor(user)


def test_the_appointment_form_refuses_a_term_ending_before_it_starts(world):
    form = AppointForm(data=appointment(world, term_ends_on="2024-03-31"))
    assert not form.is_valid()
    assert not User.objects.filter(username="chenjg").exists()


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [("mobile", "13900000001", "这个手机号已有账号"), ("username", "alice", "这个登录名已被使用")],
)
def test_appointing_with_a_taken_mobile_or_username_is_refused(world, client, field, value, error):
    User.objects.filter(pk=world.alice.pk).update(mobile="13900000001")
    users, supervisors = User.objects.count(), Supervisor.objects.count()
    client.force_login(world.bureau)
    response = client.post(f"{SUPERVISORS}add/", appointment(world, **{field: value}))

    assert response.status_code == 200
    assert error in " ".join(response.context["adminform"].form.errors[field])
    assert error in page_of(response)
    assert (User.objects.count(), Supervisor.objects.count()) == (users, supervisors)


def test_staff_cannot_appoint_supervisors(world, client):
    client.force_login(world.handler)
    response = client.post(f"{SUPERVISORS}add/", appointment(world))
    assert response.status_code == 403
    assert not User.objects.filter(username="chenjg").exists()


def appointment_by(world, actor, **fields) -> Supervisor:
    """The appointment service called directly, with the form's data already cleaned."""
    data = {
        "display_name": "陈建国",
        "username": "chenjg",
        "mobile": "13900000009",
        "password": "jiandu-2024-pw",
        "neighbourhood": world.project.neighbourhood,
        "projects": [world.project],
        "appointed_on": date(2024, 4, 1),
        "term_ends_on": date(2027, 3, 31),
        "certificate_number": "RAJD-2024-009",
    }
    data.update(fields)
    return residents.appoint_supervisor(actor=actor, **data)


def test_the_appointment_records_who_made_it(world, client, caplog):
    client.force_login(world.bureau)
    with caplog.at_level(logging.INFO, logger="audit"):
        response = client.post(f"{SUPERVISORS}add/", appointment(world))

    assert response.status_code == 302
    supervisor = Supervisor.objects.get(user__username="chenjg")
    created = supervisor.history.get()
    assert created.history_type == "+"
    assert created.history_user == world.bureau
    assert "supervisor appointed user=chenjg certificate=RAJD-2024-009 by=zhujianju" in [
        record.getMessage() for record in caplog.records if record.name == "audit"
    ]


@pytest.mark.parametrize("who", ["handler", "builder", "alice"])
def test_only_the_bureau_may_appoint_through_the_service(world, who):
    users, supervisors = User.objects.count(), Supervisor.objects.count()
    with pytest.raises(services.WorkflowError) as refusal:
        appointment_by(world, getattr(world, who))

    assert refusal.value.status_code == 403
    assert refusal.value.message == "只有住建局可以聘任群众监督员。"
    assert (User.objects.count(), Supervisor.objects.count()) == (users, supervisors)


def test_an_appointment_that_fails_leaves_no_account_behind(world):
    """The account and the appointment are made together or not at all: a certificate number
    already in use (two bureau clerks at once) leaves no orphan account."""
    taken = world.alice.supervisor.certificate_number
    users = User.objects.count()
    with pytest.raises(IntegrityError):
        appointment_by(world, world.bureau, certificate_number=taken)

    assert User.objects.count() == users
    assert not User.objects.filter(username="chenjg").exists()


# --- dismissing supervisors --------------------------------------------------------------------


def test_dismissal_keeps_the_record_and_closes_the_account(world, client, phone):
    issue = world.submit()
    phone.force_login(world.alice)  # Alice is logged in on her phone
    assert phone.get("/patrols/new/").status_code == 200
    client.force_login(world.bureau)
    response = client.post(
        SUPERVISORS,
        {"action": "dismiss", "_selected_action": [world.alice.supervisor.pk], "index": "0"},
    )

    assert response.status_code == 302
    assert messages_of(response) == ["已解聘 1 名监督员，账号已停用，反映和巡查记录都已保留。"]
    supervisor = Supervisor.objects.get(user=world.alice)
    assert not supervisor.is_active
    assert supervisor.dismissed_on == timezone.localdate()
    world.alice.refresh_from_db()
    assert not world.alice.is_active
    assert Issue.objects.get(pk=issue.pk).reporter == world.alice
    assert not services.is_serving_supervisor(world.alice)
    bob = Supervisor.objects.get(user=world.bob)
    assert bob.is_active  # only the selected one

    response = phone.get("/patrols/new/")
    assert response.status_code == 302  # her open session is over
    assert response["Location"].startswith("/accounts/login/")
    client.logout()
    assert not client.login(username="alice", password=PASSWORD)
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_bureau_dismisses_through_the_service_and_is_named_in_the_history(world, caplog):
    token, _key = create_token(world.alice, "手机")
    supervisor = world.alice.supervisor
    with caplog.at_level(logging.INFO, logger="audit"):
        assert residents.dismiss_supervisor(supervisor, actor=world.bureau) is True

    assert (supervisor.is_active, supervisor.dismissed_on) == (False, timezone.localdate())
    supervisor.refresh_from_db()
    assert not supervisor.is_active
    assert supervisor.dismissed_on == timezone.localdate()
    assert not User.objects.get(pk=world.alice.pk).is_active
    token.refresh_from_db()
    assert token.revoked_at is not None
    latest = supervisor.history.order_by("-history_date", "-history_id").first()
    assert (latest.is_active, latest.history_type) == (False, "~")
    assert latest.history_user == world.bureau
    certificate = supervisor.certificate_number
    assert (
        f"supervisor dismissed user=alice certificate={certificate} keys_revoked=1 by=zhujianju"
        in [record.getMessage() for record in caplog.records if record.name == "audit"]
    )
    assert Supervisor.objects.get(user=world.bob).is_active  # nobody else
    assert User.objects.get(pk=world.bob.pk).is_active


def test_dismissal_on_a_given_day(world):
    supervisor = world.alice.supervisor
    residents.dismiss_supervisor(supervisor, actor=world.bureau, on=date(2024, 6, 30))
    supervisor.refresh_from_db()
    assert supervisor.dismissed_on == date(2024, 6, 30)


@pytest.mark.parametrize("who", ["handler", "builder", "other_staff", "alice", "bob"])
def test_only_the_bureau_may_dismiss(world, who):
    token, _key = create_token(world.alice, "手机")
    supervisor = world.alice.supervisor
    entries = supervisor.history.count()
    with pytest.raises(services.WorkflowError) as refusal:
        residents.dismiss_supervisor(supervisor, actor=getattr(world, who))

    assert refusal.value.status_code == 403
    assert refusal.value.message == "只有住建局可以解聘群众监督员。"
    supervisor.refresh_from_db()
    assert supervisor.is_active and supervisor.dismissed_on is None
    assert User.objects.get(pk=world.alice.pk).is_active
    token.refresh_from_db()
    assert token.revoked_at is None
    assert supervisor.history.count() == entries


def test_a_deactivated_bureau_account_cannot_dismiss(world):
    User.objects.filter(pk=world.bureau.pk).update(is_active=False)
    bureau = User.objects.get(pk=world.bureau.pk)
    with pytest.raises(services.WorkflowError):
        residents.dismiss_supervisor(world.alice.supervisor, actor=bureau)
    assert Supervisor.objects.get(user=world.alice).is_active


def test_dismissing_twice_changes_nothing_the_second_time(world):
    supervisor = world.alice.supervisor
    assert residents.dismiss_supervisor(supervisor, actor=world.bureau, on=date(2024, 6, 30))
    entries = supervisor.history.count()
    stale = Supervisor.objects.get(pk=supervisor.pk)  # a second click from an older page
    stale.is_active = True

    assert residents.dismiss_supervisor(stale, actor=world.bureau) is False

    supervisor.refresh_from_db()
    assert supervisor.dismissed_on == date(2024, 6, 30)  # not moved to today
    assert supervisor.history.count() == entries


def test_the_panel_says_so_when_the_selected_supervisors_were_already_dismissed(world, client):
    former = dismissed(world).supervisor
    client.force_login(world.bureau)
    response = client.post(
        SUPERVISORS, {"action": "dismiss", "_selected_action": [former.pk], "index": "0"}
    )

    assert response.status_code == 302
    assert messages_of(response) == ["所选监督员都已解聘，没有变化。"]
    former.refresh_from_db()
    assert former.dismissed_on == date(2024, 1, 1)


def test_the_panel_dismissal_is_recorded_with_the_bureau_clerk(world, client):
    client.force_login(world.bureau)
    client.post(
        SUPERVISORS,
        {"action": "dismiss", "_selected_action": [world.alice.supervisor.pk], "index": "0"},
    )
    latest = Supervisor.objects.get(user=world.alice).history.order_by("-history_date").first()
    assert not latest.is_active
    assert latest.history_user == world.bureau


# --- the directory and the certificate ---------------------------------------------------------


@pytest.fixture
def with_mobiles(world):
    User.objects.filter(pk=world.alice.pk).update(mobile="13900000001")
    User.objects.filter(pk=world.bob.pk).update(mobile="13800000002")


def test_staff_see_the_directory_with_masked_mobiles(world, client, with_mobiles):
    """The 安阳 office manages the supervisors who live in 安阳 (alice), masked; bob lives in
    玉海 and watches none of its projects, so it does not see him at all."""
    client.force_login(world.handler)
    response = client.get("/supervisors/")
    assert response.status_code == 200
    page = page_of(response)
    assert "139****0001" in page
    assert "138****0002" not in page and "bob" not in page
    assert "13900000001" not in page
    assert "13800000002" not in page
    assert "/certificate/" not in page


def test_bureau_sees_the_directory_with_full_mobiles(world, client, with_mobiles):
    client.force_login(world.bureau)
    response = client.get("/supervisors/")
    assert response.status_code == 200
    page = page_of(response)
    assert "13900000001" in page
    assert "13800000002" in page
    assert f"/supervisors/{world.alice.supervisor.pk}/certificate/" in page


def test_supervisors_do_not_see_the_directory(world, client, with_mobiles):
    client.force_login(world.alice)
    response = client.get("/supervisors/")
    assert response.status_code == 403
    assert "13800000002" not in page_of(response)


@pytest.mark.parametrize(
    ("mobile", "masked"),
    [("13900000001", "139****0001"), (None, ""), ("", ""), ("12345", "****")],
)
def test_mask_mobile(mobile, masked):
    from supervision.resident_views import mask_mobile

    assert mask_mobile(mobile) == masked


def test_bureau_prints_the_certificate(world, client):
    client.force_login(world.bureau)
    response = client.get(f"/supervisors/{world.alice.supervisor.pk}/certificate/")
    assert response.status_code == 200
    page = page_of(response)
    assert "聘书" in page
    assert "证书编号：RAJD-alice" in page
    assert "聘期自 2023年4月3日 至 2099年4月2日" in page


@pytest.mark.parametrize("who", ["handler", "bob"])
def test_others_get_404_for_a_certificate(world, client, who):
    client.force_login(getattr(world, who))
    assert client.get(f"/supervisors/{world.alice.supervisor.pk}/certificate/").status_code == 404


def test_a_supervisor_prints_their_own_certificate_from_my_page(world, client):
    client.force_login(world.alice)
    url = f"/supervisors/{world.alice.supervisor.pk}/certificate/"
    assert url in client.get("/me/").content.decode()
    assert "证书编号：RAJD-alice" in client.get(url).content.decode()


def test_my_page_links_to_patrols_paper_ballots_and_settings(world, client):
    client.force_login(world.alice)
    page = client.get("/me/").content.decode()
    assert 'href="/patrols/new/"' in page and 'href="/patrols/?mine=on"' in page
    assert 'href="/me/settings/"' in page
    settings_page = client.get("/me/settings/").content.decode()
    assert 'href="/me/api-keys/"' in settings_page and "修改密码" in settings_page
