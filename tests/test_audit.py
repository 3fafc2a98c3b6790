"""Audit: master data keeps its history; logins, logouts and failures are logged without
passwords or full mobile numbers."""

import logging

import pytest
from django.core.cache import cache

from supervision.models import Project

from .factories import PASSWORD


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


def test_changes_to_a_project_are_kept_with_who_made_them(world):
    project = world.project
    project.status = Project.Status.COMPLETED
    project._history_user = world.bureau
    project.save()
    history = project.history.order_by("history_date")
    assert history.last().status == Project.Status.COMPLETED
    assert history.last().history_user == world.bureau
    assert history.count() >= 2


def test_logins_and_failures_are_logged_without_secrets(world, client, caplog):
    world.alice.mobile = "13900000123"
    world.alice.save(update_fields=["mobile"])
    with caplog.at_level(logging.INFO, logger="audit"):
        client.post(
            "/accounts/login/",
            {"username": "13900000123", "password": "wrong-secret-pw"},
            REMOTE_ADDR="10.2.3.4",
        )
        client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
        client.post("/accounts/logout/")
    text = "\n".join(record.getMessage() for record in caplog.records if record.name == "audit")
    assert "login failed login=139****0123 ip=10.2.3.4" in text
    assert "login ok user=alice" in text and "logout user=alice" in text
    assert "13900000123" not in text and "wrong-secret-pw" not in text and PASSWORD not in text


@pytest.mark.parametrize(
    ("who", "lands_on"),
    [
        ("alice", "/me/"),
        ("handler", "/panel/supervision/issue/"),
        ("builder", "/panel/supervision/issue/"),
        ("bureau", "/dashboard/"),
    ],
)
def test_each_role_lands_where_their_work_is_after_login(world, client, who, lands_on):
    user = getattr(world, who)
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == lands_on


def test_a_next_address_still_wins_over_the_landing_page(world, client):
    response = client.post(
        "/accounts/login/?next=/feed/", {"username": "alice", "password": PASSWORD}
    )
    assert response["Location"] == "/feed/"
