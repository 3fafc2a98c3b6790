"""The demo world people meet with `make run`."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from supervision import demo
from supervision.models import Issue, IssueEvent, Photo, Project, ScopeItem, Supervisor

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(settings):
    settings.DEMO_DATA_ALLOWED = True
    demo.load()


def counts():
    return {
        model.__name__: model.objects.count()
        for model in (User, Project, ScopeItem, Supervisor, Issue, IssueEvent, Photo)
    }


def test_demo_loads_twice_without_duplicates(loaded):
    before = counts()
    demo.load()
    assert counts() == before


def test_demo_has_the_2023_batch(loaded):
    batch = Project.objects.filter(year=2023)
    assert batch.count() == 29
    assert batch.filter(to_complete_this_year=True).count() == 25
    assert batch.filter(neighbourhood__name="兴业大厦").exists()
    subdistricts = set(batch.values_list("neighbourhood__subdistrict__name", flat=True))
    assert subdistricts == {"安阳街道", "玉海街道", "锦湖街道"}


def test_demo_accounts_log_in(loaded, client):
    for username in [
        "jiandu01",
        "jiandu25",
        "zhujianju",
        "anyang",
        "yuhai",
        "jinhu",
        "shigong01",
        "admin",
    ]:
        assert client.login(username=username, password="renovate-2023"), username
        client.logout()
    assert Supervisor.objects.filter(is_active=True).count() == 25


def test_demo_issues_cover_every_state_with_events_and_photos(loaded):
    assert set(Issue.objects.values_list("status", flat=True)) == set(Issue.Status.values)
    for issue in Issue.objects.all():
        assert issue.events.exists()
    assert Photo.objects.filter(kind=Photo.Kind.BEFORE).exists()
    assert Photo.objects.filter(kind=Photo.Kind.AFTER).exists()


def test_demo_refuses_in_production(settings):
    settings.DEMO_DATA_ALLOWED = False
    with pytest.raises(CommandError, match="开发模式"):
        call_command("load_demo")
    assert not Project.objects.exists()
